"""Checkpoints written by an earlier release load and resume with today's code.

The stores under ``fixtures/`` were written by the code of 2026-12-04 (see
``fixtures/workflows.py``): a run failed mid-chain, a fan-in failed mid-superstep with
siblings' pending writes, a run paused for two answers, a nested workflow paused (its
requests in the old ``SubWorkflowRequest`` form), and an agent conversation paused at a
person. Each is copied (resuming writes) and resumed to completion. ``fixtures/unversioned/``
holds the same runs written by the code of the commit record, the last unversioned layout
(positional pending requests; nested requests already in the asker's own form), and
``fixtures/v2/`` by the first code of the typed payload, version 2 (``workflow/_schema.py``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.workflow.fixtures import workflows as fx
from workflow import FileCheckpointStore, RunStatus, Workflow

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent / "fixtures"


# every set of stores written by an older layout, each test run on each
SETS = ["", "unversioned", "v2"]


@pytest.fixture(params=SETS, ids=lambda s: s or "2026-12-04")
def fixture_set(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def restore(name: str, tmp_path: Path, fixture_set: str = "") -> Workflow:
    where = tmp_path / name
    shutil.copytree(FIXTURES / fixture_set / name, where)
    return fx.BUILDERS[name](FileCheckpointStore(where))


async def test_a_run_failed_mid_chain_resumes_from_its_checkpoint(
    tmp_path: Path, fixture_set: str
) -> None:
    wf = restore("plain", tmp_path, fixture_set)
    done = await wf.resume("plain")
    assert done.status is RunStatus.COMPLETED, done.error
    note, seen = done.outputs[-1]
    assert note == fx.Note("start>a>b>c", 3)
    assert seen == ["a", "b", "c"]


async def test_a_fan_in_failed_mid_superstep_reruns_only_the_failed_worker(
    tmp_path: Path, fixture_set: str
) -> None:
    wf = restore("fanin", tmp_path, fixture_set)
    done = await wf.resume("fanin")
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.outputs == [[40, 41, 42]]
    ran = [e.executor_id for e in done.events if type(e).__name__ == "ExecutorInvoked"]
    assert ran.count("w1") == 1  # w0 and w2 were pending writes: not run again
    finished = [e.executor_id for e in done.events if type(e).__name__ == "ExecutorCompleted"]
    assert "total" in finished


async def test_a_run_paused_for_answers_resumes_with_them(tmp_path: Path, fixture_set: str) -> None:
    wf = restore("human", tmp_path, fixture_set)
    first = await wf.resume("human")  # nothing answered: still waiting, nothing lost
    assert first.status is RunStatus.AWAITING_INPUT
    ids = {r.payload: r for r in first.pending_requests}
    approve = ids[fx.Question("approve db?")]
    name = ids[fx.Question("name db?")]
    assert (approve.executor_id, approve.response_type) == ("ask", bool)
    assert name.response_type is str
    done = await wf.resume("human", responses={approve.request_id: True, name.request_id: "pg"})
    assert done.status is RunStatus.COMPLETED, done.error
    assert sorted(done.outputs) == ["approve db? True", "name db? pg"]


async def test_a_nested_run_paused_in_the_old_form_is_answered(tmp_path: Path) -> None:
    wf = restore("nested", tmp_path)
    first = await wf.resume("nested")
    assert first.status is RunStatus.AWAITING_INPUT
    # written before nested requests showed the asker's own question: the envelope form
    by_type = {r.response_type: r for r in first.pending_requests}
    assert set(by_type) == {bool, str}
    assert all(r.executor_id == "outer" for r in first.pending_requests)
    done = await wf.resume(
        "nested",
        responses={by_type[bool].request_id: False, by_type[str].request_id: "x"},
    )
    assert done.status is RunStatus.COMPLETED, done.error


async def test_an_agent_conversation_paused_at_a_person_continues(
    tmp_path: Path, fixture_set: str
) -> None:
    wf = restore("agents", tmp_path, fixture_set)
    first = await wf.resume("agents")
    (request,) = first.pending_requests
    done = await wf.resume("agents", responses={request.request_id: "make it rhyme"})
    assert done.status is RunStatus.COMPLETED, done.error
    (conversation,) = done.outputs[-1:]
    texts = [m.text for m in conversation]
    assert texts[:4] == ["a poem", "draft one", "make it rhyme", "edited"]


@pytest.mark.parametrize("fixture_set", ["unversioned", "v2"])
async def test_a_nested_run_paused_in_the_askers_form_is_answered(
    tmp_path: Path, fixture_set: str
) -> None:
    wf = restore("nested", tmp_path, fixture_set)
    first = await wf.resume("nested")
    assert first.status is RunStatus.AWAITING_INPUT
    by_type = {r.response_type: r for r in first.pending_requests}
    assert set(by_type) == {bool, str}
    assert {r.executor_id for r in first.pending_requests} == {"outer/ask"}
    assert by_type[bool].payload == fx.Question("approve db?")
    done = await wf.resume(
        "nested",
        responses={by_type[bool].request_id: True, by_type[str].request_id: "pg"},
    )
    assert done.status is RunStatus.COMPLETED, done.error
    assert sorted(done.outputs) == ["approve db? True", "name db? pg"]
