# ruff: noqa: F811  (the imported ``kit`` fixture is requested by parameter name)
"""Time travel: ``resume(..., state_updates=...)`` forks a run with edited run-wide state.

Every test that needs history runs on every store (the conformance suite's ``kit`` fixture:
memory, SQLite, files, PostgreSQL).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builders import WorkflowBuilder
from workflow import (
    Executor,
    RunStatus,
    Workflow,
    WorkflowContext,
    WorkflowError,
    handler,
    response_handler,
)
from workflow.cli import main

from .test_stores import Kit, kit  # noqa: F401  (the store fixture, parametrized over stores)

pytestmark = pytest.mark.anyio


class Add(Executor):
    """Adds run-wide ``bonus`` (0 if unset) to what it gets; records that it saw it."""

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        bonus = await ctx.get_state("bonus", 0)
        await ctx.set_state(f"seen {self.id}", x)
        if self.id == "a":
            await ctx.set_state("bonus", 1)
        if self.id == "c":
            await ctx.yield_output(x + bonus)
        else:
            await ctx.send_message(x + bonus)


def chain(store: Any) -> Workflow:
    a, b, c = Add("a"), Add("b"), Add("c")
    return (
        WorkflowBuilder(start=a, name="history", checkpoint_store=store)
        .add_edge(a, b)
        .add_edge(b, c)
        .build()
    )


class Opaque:
    """Not a type any checkpoint can hold."""


async def test_fork_with_state_updates_leaves_the_original_untouched(kit: Kit) -> None:
    wf = chain(kit.store)
    first = await wf.run(10, run_id="orig")
    assert first.outputs == [12]  # 10 (+0 at a) +1 at b +1 at c
    history = await kit.store.list_checkpoints("orig")
    after_a = next(c for c in history if c.superstep == 1)

    fork = await wf.resume("orig", checkpoint_id=after_a.id, state_updates={"bonus": 100})
    assert fork.status is RunStatus.COMPLETED
    assert fork.run_id != "orig"
    assert fork.outputs == [210]  # 10 +100 at b +100 at c
    forked = await kit.store.list_checkpoints(fork.run_id)
    assert forked[0].parent_id == after_a.id
    assert forked[0].data["run"]["state"]  # the edit is in the fork's first checkpoint
    assert await kit.store.list_checkpoints("orig") == history  # untouched


async def test_a_key_the_workflow_never_wrote_is_allowed(kit: Kit) -> None:
    wf = chain(kit.store)
    await wf.run(1, run_id="orig")
    after_a = (await kit.store.list_checkpoints("orig"))[1]
    fork = await wf.resume(
        "orig", checkpoint_id=after_a.id, state_updates={"note": {"by": "a person", "n": [1, 2]}}
    )
    assert fork.outputs == [3]
    latest = await kit.store.latest(fork.run_id)
    assert latest is not None
    resumed = await wf.resume(fork.run_id)  # completed: the recorded result
    assert resumed.outputs == [3]


async def test_a_value_that_cannot_be_checkpointed_is_refused_naming_the_key(kit: Kit) -> None:
    wf = chain(kit.store)
    await wf.run(1, run_id="orig")
    history = await kit.store.list_checkpoints("orig")
    runs_before = [r.run_id for r in await kit.store.list_runs()]
    with pytest.raises(WorkflowError, match=r"state_updates\['bad'\].*cannot be checkpointed"):
        await wf.resume("orig", checkpoint_id=history[1].id, state_updates={"bad": Opaque()})
    with pytest.raises(TypeError, match="state keys are strings"):
        await wf.resume("orig", checkpoint_id=history[1].id, state_updates={3: 1})  # type: ignore[dict-item]
    assert [r.run_id for r in await kit.store.list_runs()] == runs_before  # nothing started
    assert await kit.store.list_checkpoints("orig") == history


async def test_without_a_checkpoint_id_the_fork_starts_from_the_latest(kit: Kit) -> None:
    class Ask(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            await ctx.request_info(x, response_type=int)

        @response_handler
        async def answered(self, asked: int, answer: int, ctx: WorkflowContext[int]) -> None:
            await ctx.yield_output(asked + answer + await ctx.get_state("bonus", 0))

    wf = WorkflowBuilder(start=Ask("ask"), name="asks", checkpoint_store=kit.store).build()
    paused = await wf.run(1, run_id="orig")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    latest = await kit.store.latest("orig")
    assert latest is not None
    fork = await wf.resume(
        "orig", responses={request.request_id: 10}, state_updates={"bonus": 1000}
    )
    assert fork.run_id != "orig"
    assert fork.outputs == [1011]
    assert (await kit.store.list_checkpoints(fork.run_id))[0].parent_id == latest.id
    # the original still waits, and answering it there knows nothing of the fork's edit
    original = await wf.resume("orig", responses={request.request_id: 10})
    assert original.outputs == [11]


async def test_resume_stream_takes_state_updates(kit: Kit) -> None:
    wf = chain(kit.store)
    await wf.run(10, run_id="orig")
    after_b = (await kit.store.list_checkpoints("orig"))[2]
    async with wf.resume_stream(
        "orig", checkpoint_id=after_b.id, state_updates={"bonus": 5}
    ) as events:
        seen = [e async for e in events]
    outputs = [e.data for e in seen if type(e).__name__ == "OutputEmitted"]
    assert outputs == [16]  # b already added 1 (11): +5 at c
    assert type(seen[-1]).__name__ == "RunFinished"


async def test_without_a_store_the_updates_apply_to_the_run_kept_in_memory() -> None:
    class Ask(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            await ctx.request_info(x, response_type=int)

        @response_handler
        async def answered(self, asked: int, answer: int, ctx: WorkflowContext[int]) -> None:
            await ctx.yield_output(asked + answer + await ctx.get_state("bonus", 0))

    wf = WorkflowBuilder(start=Ask("ask"), name="asks").build()
    paused = await wf.run(1, run_id="mem")
    (request,) = paused.pending_requests
    with pytest.raises(TypeError, match="must be a mapping"):
        await wf.resume("mem", state_updates=[("bonus", 1)])  # type: ignore[arg-type]
    done = await wf.resume("mem", responses={request.request_id: 2}, state_updates={"bonus": 7})
    assert done.run_id == "mem"
    assert done.outputs == [10]


APP = """
from builders import WorkflowBuilder
from workflow import SQLiteCheckpointStore
from tests.workflow.test_history import chain

wf = chain(None)
"""


def test_cli_resume_state_forks_with_the_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(APP)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["run", "app.py:wf", "--input", "10", "--run-id", "orig", "--store", store]) == 0
    capsys.readouterr()
    assert main(["checkpoints", "orig", "--store", store, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    after_a = rows[1]["checkpoint_id"]
    code = main(
        [
            "resume", "app.py:wf", "orig", "--store", store,
            "--checkpoint", after_a, "--state", "bonus=100",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "output: 210" in out
    assert "run: orig.fork-" in out
    assert main(["resume", "app.py:wf", "orig", "--store", store, "--state", "bonus"]) != 0
    assert "--state 'bonus': expected KEY=JSON" in capsys.readouterr().err
