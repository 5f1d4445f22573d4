"""WorkflowExecutor: a whole workflow as one node of another.

Outputs become the node's messages, events stream through the parent with namespaced ids,
requests surface as the parent's and are answered through the parent's resume, state
checkpoints with the parent (also across processes), failures fail the parent's node.
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from builders import WorkflowBuilder
from executors import WorkflowExecutor
from executors._workflow_executor import SubWorkflowRequest
from tests.loop_event import LoopEvent
from tests.workflow import crash_worker as cw
from workflow import (
    Executor,
    ExecutorFailedError,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowContext,
    events,
    executor,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Question:
    text: str


class Split(Executor):
    """Emits each word of its input as a separate output."""

    @handler
    async def on(self, text: str, ctx: WorkflowContext[Any]) -> None:
        for word in text.split():
            await ctx.yield_output(word)


class Upper(Executor):
    @handler
    async def on(self, text: str, ctx: WorkflowContext[str]) -> str:
        return text.upper()


class Gather(Executor):
    """Collects everything it receives (in order) into the run state and outputs it."""

    @handler
    async def on(self, text: str, ctx: WorkflowContext[Any]) -> None:
        seen = [*await ctx.get_state("gathered", []), text]
        await ctx.set_state("gathered", seen)
        await ctx.yield_output(text)


class Ask(Executor):
    """Outputs ``early``, asks two questions; each answer becomes an output."""

    def __init__(self, id: str = "ask", calls: collections.Counter[str] | None = None) -> None:
        super().__init__(id)
        self.calls = calls if calls is not None else collections.Counter()

    @handler
    async def on(self, topic: str, ctx: WorkflowContext[str]) -> None:
        self.calls["asked"] += 1
        await ctx.yield_output(f"early {topic}")
        await ctx.request_info(Question(f"approve {topic}?"), response_type=bool)
        await ctx.request_info(Question(f"name for {topic}?"), response_type=str)

    @response_handler
    async def on_bool(self, request: Question, answer: bool, ctx: WorkflowContext[str]) -> str:
        self.calls["answered"] += 1
        return f"{request.text}={answer}"

    @response_handler
    async def on_str(self, request: Question, answer: str, ctx: WorkflowContext[str]) -> str:
        self.calls["answered"] += 1
        return f"{request.text}={answer}"


def asking_child(calls: collections.Counter[str] | None = None) -> Workflow:
    ask = Ask(calls=calls)
    return WorkflowBuilder(start=ask, name="asking").add_edge(ask, Upper("upper")).build()


def parent_of(child: Workflow, store: Any = None, **kw: Any) -> Workflow:
    sub = WorkflowExecutor(child, id="sub")
    return (
        WorkflowBuilder(start=sub, name="parent", checkpoint_store=store, **kw)
        .add_edge(sub, Gather("gather"))
        .build()
    )


# --------------------------------------------------------------------------- outputs, events


async def test_child_outputs_become_the_nodes_messages_in_order() -> None:
    child = WorkflowBuilder(start=Split("split"), name="splitter").build()
    result = await parent_of(child).run("a b c")
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == ["a", "b", "c"]
    gathered = [e for e in result.events if isinstance(e, events.ExecutorInvoked)]
    assert [e.executor_id for e in gathered] == ["sub", "sub/split", "gather"]


async def test_child_events_stream_live_through_the_parent_namespaced() -> None:
    release = LoopEvent()

    class Talker(Executor):
        @handler
        async def on(self, text: str, ctx: WorkflowContext[str]) -> str:
            await ctx.add_event(
                events.AgentDelta(
                    run_id=ctx.run_id, superstep=ctx.superstep, executor_id=self.id, text="hi"
                )
            )
            await release.wait()  # only the consumer seeing the delta lets the child go on
            return text

    talker = Talker("talker")
    child = WorkflowBuilder(start=talker, name="talk").add_edge(talker, Upper("upper")).build()
    wf = parent_of(child)
    seen: list[events.WorkflowEvent] = []
    with anyio.fail_after(10):
        async with contextlib.aclosing(wf.run_stream("x", run_id="p")) as stream:
            async for event in stream:
                seen.append(event)
                if isinstance(event, events.AgentDelta):
                    release.set()
    assert isinstance(seen[0], events.RunStarted)
    assert isinstance(seen[-1], events.RunFinished)
    assert seen[-1].status is RunStatus.COMPLETED
    # one run: the child's RunStarted/RunFinished/superstep events stay inside the node
    assert sum(isinstance(e, events.RunStarted) for e in seen) == 1
    assert sum(isinstance(e, events.RunFinished) for e in seen) == 1
    assert {e.run_id for e in seen} == {"p"}
    ids = [
        (type(e).__name__, e.executor_id)
        for e in seen
        if isinstance(e, events.ExecutorInvoked | events.ExecutorCompleted | events.AgentDelta)
    ]
    assert ids == [
        ("ExecutorInvoked", "sub"),
        ("ExecutorInvoked", "sub/talker"),
        ("AgentDelta", "sub/talker"),
        ("ExecutorCompleted", "sub/talker"),
        ("ExecutorInvoked", "sub/upper"),
        ("ExecutorCompleted", "sub/upper"),
        ("ExecutorCompleted", "sub"),
        ("ExecutorInvoked", "gather"),
        ("ExecutorCompleted", "gather"),
    ]
    outputs = [e for e in seen if isinstance(e, events.OutputEmitted)]
    assert [(e.executor_id, e.data) for e in outputs] == [("gather", "X")]


async def test_child_ids_in_other_event_fields_are_namespaced_too() -> None:
    """``ExecutorCompleted.messages`` targets and ``MessageDropped`` ids name child nodes."""

    class Wrong(Executor):
        @handler
        async def on(self, text: str, ctx: WorkflowContext[Any]) -> Any:
            await ctx.send_message(1)  # upper has no handler for int: dropped
            return text

    wrong = Wrong("wrong")
    child = WorkflowBuilder(start=wrong, name="drops").add_edge(wrong, Upper("upper")).build()
    result = await parent_of(child).run("x")
    assert result.outputs == ["X"]
    dropped = [e for e in result.events if isinstance(e, events.MessageDropped)]
    assert [(e.source_id, e.target_id) for e in dropped] == [("sub/wrong", "sub/upper")]
    done = {
        e.executor_id: dict(e.messages)
        for e in result.events
        if isinstance(e, events.ExecutorCompleted)
    }
    assert done["sub/wrong"] == {"sub/upper": 1}
    assert done["sub"] == {"gather": 1}


async def test_forwarded_child_events_carry_the_parents_superstep() -> None:
    child = WorkflowBuilder(start=Upper("upper"), name="up").build()
    result = await parent_of(child).run("x")
    by_id = {
        e.executor_id: e.superstep for e in result.events if isinstance(e, events.ExecutorInvoked)
    }
    assert by_id["sub/upper"] == by_id["sub"] == 1


# --------------------------------------------------------------------------- human input


async def test_child_requests_surface_and_are_answered_through_the_parent() -> None:
    calls: collections.Counter[str] = collections.Counter()
    wf = parent_of(asking_child(calls))
    first = await wf.run("db", run_id="h")
    assert first.status is RunStatus.AWAITING_INPUT
    assert first.outputs == ["early db"]  # sent on before the child paused
    approve, name = first.pending_requests
    # the person answering sees the child's own question, under the asker's full path
    assert approve.executor_id == "sub/ask"
    assert approve.payload == Question("approve db?")
    assert approve.response_type is bool
    assert name.executor_id == "sub/ask"
    assert name.payload == Question("name for db?")
    assert name.response_type is str
    assert approve.via is not None
    envelope = approve.via[1]
    assert isinstance(envelope, SubWorkflowRequest)
    assert approve.via[0] == "sub"
    assert envelope.child_request_id == "ask:1:1"
    infos = [e for e in first.events if isinstance(e, events.RequestInfo)]
    assert [e.request_id for e in infos] == [approve.request_id, name.request_id]
    assert [e.executor_id for e in infos] == ["sub/ask", "sub/ask"]
    assert [e.payload for e in infos] == [approve.payload, name.payload]

    with pytest.raises(TypeError, match="must be bool"):
        await wf.resume("h", responses={approve.request_id: "sure"})
    second = await wf.resume("h", responses={approve.request_id: True})
    assert second.status is RunStatus.AWAITING_INPUT
    assert [r.request_id for r in second.pending_requests] == [name.request_id]
    third = await wf.resume("h", responses={name.request_id: "pg"})
    assert third.status is RunStatus.COMPLETED
    # early was sent once (before the pause), the answers after it
    assert third.outputs == ["early db", "APPROVE DB?=TRUE", "NAME FOR DB?=PG"]
    assert calls == {"asked": 1, "answered": 2}


async def test_both_requests_of_a_child_answered_at_once() -> None:
    wf = parent_of(asking_child())
    first = await wf.run("db", run_id="both")
    answers = dict(zip((r.request_id for r in first.pending_requests), (False, "x"), strict=True))
    done = await wf.resume("both", responses=answers)
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["early db", "APPROVE DB?=FALSE", "NAME FOR DB?=X"]


async def test_two_child_runs_in_one_node_wait_and_resume_independently() -> None:
    @executor
    async def fan(topic: str, ctx: WorkflowContext[str]) -> None:
        for part in topic.split():
            await ctx.send_message(part)

    sub = WorkflowExecutor(asking_child(), id="sub")
    wf = (
        WorkflowBuilder(start=fan, name="two")
        .add_edge(fan, sub)
        .add_edge(sub, Gather("gather"))
        .build()
    )
    first = await wf.run("a b", run_id="two")
    assert len(first.pending_requests) == 4
    children = {r.via[1].child_run_id for r in first.pending_requests if r.via}
    assert children == {"two/sub/1", "two/sub/2"}
    b_only = {
        r.request_id: (True if r.response_type is bool else "bee")
        for r in first.pending_requests
        if r.via and r.via[1].child_run_id == "two/sub/2"
    }
    second = await wf.resume("two", responses=b_only)
    assert second.status is RunStatus.AWAITING_INPUT
    assert {r.via[1].child_run_id for r in second.pending_requests if r.via} == {"two/sub/1"}
    assert second.outputs == ["early a", "early b", "APPROVE B?=TRUE", "NAME FOR B?=BEE"]
    rest = {
        r.request_id: (False if r.response_type is bool else "ay") for r in second.pending_requests
    }
    third = await wf.resume("two", responses=rest)
    assert third.status is RunStatus.COMPLETED
    assert third.outputs[-2:] == ["APPROVE A?=FALSE", "NAME FOR A?=AY"]


# --------------------------------------------------------------------------- checkpoints


async def test_a_paused_child_checkpoints_with_the_parent(tmp_path: Path) -> None:
    calls: collections.Counter[str] = collections.Counter()
    first = await parent_of(asking_child(calls), SQLiteCheckpointStore(tmp_path / "a.db")).run(
        "db", run_id="c"
    )
    assert first.status is RunStatus.AWAITING_INPUT
    approve, name = (r.request_id for r in first.pending_requests)
    # new objects over the same file: everything the child needs came from the checkpoint
    again = parent_of(asking_child(calls), SQLiteCheckpointStore(tmp_path / "a.db"))
    second = await again.resume("c", responses={approve: False})
    assert second.status is RunStatus.AWAITING_INPUT
    third = await parent_of(asking_child(calls), SQLiteCheckpointStore(tmp_path / "a.db")).resume(
        "c", responses={name: "n"}
    )
    assert third.status is RunStatus.COMPLETED
    assert third.outputs == ["early db", "APPROVE DB?=FALSE", "NAME FOR DB?=N"]
    assert calls == {"asked": 1, "answered": 2}


@pytest.mark.parametrize(
    ("workflow", "asker"), [("nested", "outer/sub0/asker"), ("nested2", "outer/sub1/sub0/asker")]
)
def test_a_childs_request_is_answered_from_a_new_process(
    tmp_path: Path, workflow: str, asker: str
) -> None:
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    first = cw.run_worker(workflow, url, "n1")["result"]
    assert first["status"] == "awaiting_input"
    (approve, path, payload), (comment, _, _) = first["pending"]
    assert path == asker  # the full path down to the executor that asked
    assert payload == {"Question": {"text": "approve deploy?"}}  # its own question
    wrong = cw.run_worker(workflow, url, "n1", "--respond", f"{approve}=3")
    assert wrong["error"]["type"] == "TypeError"
    second = cw.run_worker(workflow, url, "n1", "--respond", f"{approve}=true")["result"]
    assert second["status"] == "awaiting_input"
    assert [p[0] for p in second["pending"]] == [comment]
    third = cw.run_worker(workflow, url, "n1", "--respond", f'{comment}="soon"')["result"]
    assert third["status"] == "completed"
    assert third["outputs"] == ["APPROVE DEPLOY? -> YES", "COMMENT ON DEPLOY? -> SOON"]


# --------------------------------------------------------------------------- failures, nesting


async def test_a_failing_child_fails_the_parents_node() -> None:
    @executor(id="boom")
    async def boom(text: str) -> str:
        raise ValueError(f"bad {text}")

    child = WorkflowBuilder(start=Upper("upper"), name="fails").add_edge("upper", boom).build()
    result = await parent_of(child).run("x", run_id="f")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "sub"
    inner = result.error.__cause__
    assert isinstance(inner, ExecutorFailedError)
    assert inner.executor_id == "boom"
    assert isinstance(inner.__cause__, ValueError)
    assert "bad X" in str(inner.__cause__)
    failed = [e.executor_id for e in result.events if isinstance(e, events.ExecutorFailed)]
    assert failed == ["sub/boom", "sub"]


async def test_a_child_that_runs_out_of_supersteps_fails_the_node() -> None:
    @executor(id="spin")
    async def spin(n: int) -> int:
        return n + 1

    child = WorkflowBuilder(start=spin, name="spinner", max_supersteps=5).add_edge(spin, spin)
    sub = WorkflowExecutor(child.build(), id="sub")
    result = await WorkflowBuilder(start=sub, name="p").build().run(0)
    assert result.status is RunStatus.FAILED
    assert "max_supersteps" in str(result.error)


async def test_nested_two_levels_outputs_events_and_answers(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "n.db")
    wf = cw.build_nested(store, levels=2)
    first = await wf.run("x", run_id="deep")
    assert first.status is RunStatus.AWAITING_INPUT
    invoked = [e.executor_id for e in first.events if isinstance(e, events.ExecutorInvoked)]
    assert invoked == ["outer", "outer/sub1", "outer/sub1/sub0", "outer/sub1/sub0/asker"]
    approve, comment = first.pending_requests
    # two levels down, the question is still the asker's own, under its full path
    assert approve.executor_id == "outer/sub1/sub0/asker"
    assert approve.payload == cw.Question("approve x?")
    assert approve.response_type is bool
    assert comment.payload == cw.Question("comment on x?")
    assert comment.response_type is str
    fresh = cw.build_nested(SQLiteCheckpointStore(tmp_path / "n.db"), levels=2)
    done = await fresh.resume(
        "deep", responses={approve.request_id: False, comment.request_id: "k"}
    )
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["APPROVE X? -> NO", "COMMENT ON X? -> K"]
    invoked = [e.executor_id for e in done.events if isinstance(e, events.ExecutorInvoked)]
    assert "outer/sub1/sub0/shout" in invoked
    assert "outer/sub1/after0" in invoked
