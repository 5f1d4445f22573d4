"""Run overlays: statuses, errors and edge traffic from results, checkpoints and stores."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest

from visualize import RunOverlay, load_overlay, to_dot, to_mermaid
from visualize._overlay import overlay_from
from workflow import RunResult, RunStatus
from workflow.events import ExecutorCompleted, ExecutorFailed, ExecutorInvoked

from . import graphs
from .test_diagrams import check_golden, dot_check

OVERLAY = {
    "status": {
        "parse": "completed",
        "writer": "completed",
        "search": "completed",
        "merge": "completed",
        "score": "completed",
        "fix": "failed",
        "approve": "waiting",
    },
    "messages": {
        "parse->writer": 2,
        "parse->search": 2,
        "writer->merge": 2,
        "search->merge": 1,
        "merge->score": 1,
        "score->fix": 1,
    },
    "errors": {"fix": "ValueError('cannot fix 6')"},
    "invocations": {"parse": 2, "writer": 2},
    "run_id": "run-1",
    "run_status": "failed",
}


def node_line(source: str, name: str) -> str:
    found = re.search(rf"^\t+{name} \[.*?\]$", source, flags=re.MULTILINE | re.DOTALL)
    assert found, name
    return found.group(0)


def test_overlay_mapping_golden() -> None:
    wf = graphs.pipeline()
    check_golden("pipeline_overlay.dot", to_dot(wf, run=OVERLAY).source)
    check_golden("pipeline_overlay.mmd", to_mermaid(wf, run=OVERLAY))


def test_overlay_renders_through_dot() -> None:
    dot_check(to_dot(graphs.pipeline(), run=OVERLAY).source)


def test_overlay_colours_counts_and_errors() -> None:
    source = to_dot(graphs.pipeline(), run=OVERLAY).source
    assert 'fillcolor="#fee2e2"' in node_line(source, "fix")  # failed
    assert "failed: ValueError(&#x27;cannot fix 6&#x27;)" in node_line(source, "fix")
    assert "error: ValueError('cannot fix 6')" in node_line(source, "fix")  # tooltip
    assert 'fillcolor="#fef3c7"' in node_line(source, "approve")  # waiting
    assert "waiting for input" in node_line(source, "approve")
    assert 'style="filled,rounded,dashed"' in node_line(source, "publish")  # never reached
    assert "not reached" in node_line(source, "publish")
    assert "completed \u00d72" in node_line(source, "writer")
    assert "parse -> writer [label=<<b>\u00d72</b>>" in source
    # a join fires once per message from every source: min(2, 1)
    assert "merge -> score [label=<<b>\u00d71</b>>" in source
    mermaid = to_mermaid(graphs.pipeline(), run=OVERLAY)
    assert 'n_parse ==>|"\u00d72"| n_writer' in mermaid
    assert "class n_fix lf_failed" in mermaid
    assert "class n_approve lf_waiting" in mermaid
    assert 'title: "review pipeline \u00b7 run run-1 \u00b7 failed"' in mermaid


@pytest.mark.anyio
async def test_overlay_from_run_result_golden() -> None:
    wf = graphs.pipeline()
    # "abcde" -> merge "abcde!+ABCDE" (12 chars) -> publish -> reviewer -> (no "again!") end
    result = await wf.run("abcde", run_id="fixed-run")
    assert result.status is RunStatus.COMPLETED
    overlay = overlay_from(result, [p for g in wf.graph.groups for p in g.pairs()])
    assert overlay.status == {
        "parse": "completed",
        "writer": "completed",
        "search": "completed",
        "merge": "completed",
        "score": "completed",
        "publish": "completed",
        "reviewer": "completed",
    }
    assert overlay.exact  # ExecutorCompleted.messages says who sent what
    source = to_dot(wf, run=result).source
    assert "parse -> writer [label=<<b>\u00d71</b>>" in source
    assert "supersteps with traffic" not in source
    check_golden("pipeline_run.dot", source)
    check_golden("pipeline_run.mmd", to_mermaid(wf, run=result))


@pytest.mark.anyio
async def test_failed_and_waiting_runs() -> None:
    wf = graphs.pipeline()
    # "a" -> "a!+A" (4 chars) -> approve, which asks for input
    waiting = await wf.run("a", run_id="w")
    assert waiting.status is RunStatus.AWAITING_INPUT
    assert overlay_from(waiting).status["approve"] == "waiting"
    assert "waiting for input" in to_dot(wf, run=waiting).source

    # "ab" -> "ab!+AB" (6 chars) -> default case -> fix, which raises
    failed = await wf.run("ab", run_id="f")
    assert failed.status is RunStatus.FAILED
    overlay = overlay_from(failed)
    assert overlay.status["fix"] == "failed"
    assert overlay.errors["fix"] == "ValueError('cannot fix 6')"
    source = to_dot(wf, run=failed).source
    assert "failed: ValueError(&#x27;cannot fix 6&#x27;)" in node_line(source, "fix")
    assert "error: ValueError('cannot fix 6')" in node_line(source, "fix")
    assert "not reached" in node_line(source, "publish")
    check_golden("pipeline_failed.mmd", to_mermaid(wf, run=failed))


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletedWithCounts(ExecutorCompleted):
    """What ``ExecutorCompleted`` looks like once the core reports messages per target."""

    messages: dict[str, int] = field(default_factory=dict)


def test_exact_counts_when_events_carry_them() -> None:
    events: list[Any] = [
        CompletedWithCounts(run_id="r", superstep=1, executor_id="parse", messages={"writer": 3}),
    ]
    result = RunResult(run_id="r", status=RunStatus.COMPLETED, events=events)
    overlay = overlay_from(result)
    assert overlay.exact
    assert overlay.messages == {"parse->writer": 3}
    assert "parse -> writer [label=<<b>\u00d73</b>>" in to_dot(graphs.pipeline(), run=result).source


@dataclass
class FakeCheckpoint:
    id: str
    run_id: str
    superstep: int
    data: dict[str, Any]


class FakeStore:
    def __init__(self, checkpoints: dict[str, FakeCheckpoint]) -> None:
        self.checkpoints = checkpoints

    async def latest(self, run_id: str) -> FakeCheckpoint | None:
        await anyio.lowlevel.checkpoint()
        return self.checkpoints.get(run_id)

    def __repr__(self) -> str:
        return "FakeStore()"


def test_overlay_from_checkpoint() -> None:
    checkpoint = FakeCheckpoint("c7", "run-9", 4, {"overlay": {"status": {"parse": "completed"}}})
    overlay = overlay_from(checkpoint)
    assert overlay.status == {"parse": "completed"}
    assert overlay.run_id == "run-9"
    assert overlay.note == "checkpoint c7 (superstep 4)"
    bare = overlay_from(FakeCheckpoint("c1", "run-9", 0, {}))
    assert bare.status == {}
    assert bare.note == "checkpoint c1 (superstep 0) recorded no run overlay"
    assert "recorded no run overlay" in to_mermaid(graphs.pipeline(), run=bare)


def test_overlay_from_a_checkpoint_delta() -> None:
    """The core records what each superstep did; one checkpoint alone shows that much."""
    data = {
        "overlay": {"ran": ["merge"], "messages": {"merge->score": 1}},
        "run": {"pending": [["approve:4:1", "approve", "payload"]]},
    }
    checkpoint = FakeCheckpoint("c4", "run-9", 4, data)
    overlay = overlay_from(checkpoint)
    assert overlay.status == {"merge": "completed", "approve": "waiting"}
    assert overlay.messages == {"merge->score": 1}
    assert overlay.note is not None
    assert "this superstep only" in overlay.note
    # a pending request recorded as a mapping reads the same
    keyed = {**data, "run": {"pending": [{"request_id": "r1", "executor_id": "approve"}]}}
    assert overlay_from(FakeCheckpoint("c4", "run-9", 4, keyed)).status == overlay.status


def durable_pipeline() -> tuple[Any, Any]:
    from workflow import InMemoryCheckpointStore

    store = InMemoryCheckpointStore()
    return graphs.pipeline().with_store(store), store


def test_overlay_from_run_id_and_store() -> None:
    wf, store = durable_pipeline()
    waiting = anyio.run(functools.partial(wf.run, "a", run_id="w"))
    assert waiting.status is RunStatus.AWAITING_INPUT
    failed = anyio.run(functools.partial(wf.run, "ab", run_id="f"))
    assert failed.status is RunStatus.FAILED
    source = to_dot(wf, run=("w", store)).source
    assert "waiting for input" in node_line(source, "approve")
    assert "completed" in node_line(source, "merge")
    assert "not reached" in node_line(source, "fix")
    assert "merge -> score [label=<<b>\u00d71</b>>" in source
    assert "run w · awaiting_input" in source
    source = to_dot(wf, run=("f", store)).source
    assert "failed: ValueError(&#x27;cannot fix 6&#x27;)" in node_line(source, "fix")
    assert "run f · failed" in source
    with pytest.raises(LookupError, match="no checkpoint of run 'nope'"):
        to_dot(wf, run=("nope", store))
    with pytest.raises(LookupError, match="no checkpoint of run 'nope'"):
        to_dot(wf, run=("nope", FakeStore({})))


@pytest.mark.anyio
async def test_store_tuple_inside_event_loop_says_what_to_do() -> None:
    wf, store = durable_pipeline()
    await wf.run("a", run_id="w")
    with pytest.raises(RuntimeError, match=r"await visualize\.load_overlay"):
        to_dot(wf, run=("w", store))
    overlay = await load_overlay("w", store)
    assert overlay.status["approve"] == "waiting"
    assert isinstance(overlay, RunOverlay)
    assert "waiting for input" in to_dot(wf, run=overlay).source
    first = (await store.list_checkpoints("w"))[1].id
    early = await load_overlay("w", store, checkpoint_id=first)
    assert early.status == {"parse": "completed"}
    assert early.note == f"up to checkpoint {first}"
    from workflow import CheckpointError

    with pytest.raises(CheckpointError, match=r"checkpoint 'f@1' is not part of run 'w'"):
        await load_overlay("w", store, checkpoint_id="f@1")


def test_bad_overlays() -> None:
    with pytest.raises(TypeError, match="run= must be a RunResult"):
        to_dot(graphs.pipeline(), run=42)
    with pytest.raises(ValueError, match="unknown status 'done'"):
        to_dot(graphs.pipeline(), run={"status": {"parse": "done"}})
    with pytest.raises(ValueError, match="'messages' must be a mapping"):
        to_dot(graphs.pipeline(), run={"messages": [1, 2]})


def test_child_statuses_left_plain_when_not_recorded() -> None:
    """A sub-workflow's own status shows; its children are not all marked 'not reached'."""
    source = to_dot(graphs.nested(), run={"status": {"first": "completed", "write": "completed"}})
    text = source.source
    assert "not reached" in node_line(text, "last")
    assert "not reached" not in node_line(text, "write_intro")
    nested_run = {"status": {"write": "completed", "write/intro": "completed"}}
    text = to_dot(graphs.nested(), run=nested_run).source
    assert "completed" in node_line(text, "write_intro")
    assert "not reached" in node_line(text, "write_outro")


def test_sub_workflow_events_colour_the_cluster() -> None:
    """Child events arrive namespaced (``write/intro``), as ``WorkflowExecutor`` forwards them."""
    events: list[Any] = [
        ExecutorInvoked(run_id="r", superstep=1, executor_id="first"),
        ExecutorCompleted(run_id="r", superstep=1, executor_id="first"),
        ExecutorInvoked(run_id="r", superstep=2, executor_id="write"),
        ExecutorInvoked(run_id="r", superstep=2, executor_id="write/intro"),
        CompletedWithCounts(
            run_id="r", superstep=2, executor_id="write/intro", messages={"refine": 1}
        ),
        ExecutorInvoked(run_id="r", superstep=2, executor_id="write/refine"),
        ExecutorFailed(run_id="r", superstep=2, executor_id="write/refine", error="boom"),
        ExecutorFailed(run_id="r", superstep=2, executor_id="write", error="child failed"),
    ]
    result = RunResult(run_id="r", status=RunStatus.FAILED, events=events)
    overlay = overlay_from(result)
    assert overlay.messages == {"write/intro->write/refine": 1}
    source = to_dot(graphs.nested(), run=result).source
    assert "completed" in node_line(source, "write_intro")
    assert "not reached" in node_line(source, "write_outro")
    assert "write_intro -> write_refine_draft [label=<<b>\u00d71</b>>" in source
    assert "failed: child failed" in source
    assert 'color="#b91c1c"' in source.split("subgraph cluster_write {")[1].split("\n")[1]


@pytest.mark.anyio
async def test_real_sub_workflow_run_overlay() -> None:
    from builders import WorkflowBuilder
    from executors import WorkflowExecutor

    draft, polish = graphs.passthrough("draft"), graphs.passthrough("polish")
    inner = WorkflowBuilder(start=draft, name="inner").add_edge(draft, polish).build()
    first, last = graphs.passthrough("first"), graphs.passthrough("last")
    write = WorkflowExecutor(inner, id="write")
    wf = WorkflowBuilder(start=first, name="real").add_chain([first, write, last]).build()
    result = await wf.run("abcdef", run_id="real")
    assert result.status is RunStatus.COMPLETED, result.error
    source = to_dot(wf, run=result).source
    assert "subgraph cluster_write {" in source
    assert "completed" in node_line(source, "write_draft")  # child events are namespaced
    assert "completed" in node_line(source, "write_polish")
    assert "completed" in node_line(source, "last")
    dot_check(source)
