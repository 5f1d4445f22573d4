"""A question asked inside a nested workflow is the parent's pending request, as asked.

The contract (API.md, "Streams, errors, state"): the child's own payload and response type,
an ``executor_id`` naming the full path (``"outer/inner"``), and answering it through the
parent's ``resume`` delivers the answer to the child. One and two levels deep, with and
without a store (a fresh definition resumes from the store, as another process would).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from builders import WorkflowBuilder
from executors import WorkflowExecutor
from workflow import (
    Executor,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowContext,
    events,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Ticket:
    title: str
    priority: int


class Triage(Executor):
    """Asks a person for a ticket (a dataclass answer), then outputs it."""

    @handler
    async def on(self, text: str, ctx: WorkflowContext) -> None:
        await ctx.request_info({"summary": text}, response_type=Ticket)

    @response_handler
    async def got(self, asked: dict[str, str], ticket: Ticket, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"{asked['summary']}: {ticket.title} (p{ticket.priority})")


def nest(inner: Workflow, levels: int, store: Any = None) -> Workflow:
    """``inner`` inside ``levels`` WorkflowExecutors: ids ``l{levels-1}``/.../``l0``."""
    wf = inner
    for level in range(levels):
        node = WorkflowExecutor(wf, id=f"l{level}")
        last = level == levels - 1
        wf = WorkflowBuilder(
            start=node, name=f"level{level}", checkpoint_store=store if last else None
        ).build()
    return wf


def triage_workflow() -> Workflow:
    return WorkflowBuilder(start=Triage("triage"), name="triage").build()


@pytest.mark.parametrize(("levels", "path"), [(1, "l0/triage"), (2, "l1/l0/triage")])
@pytest.mark.parametrize("with_store", [False, True])
async def test_the_question_is_the_childs_own_under_its_full_path(
    tmp_path: Path, levels: int, path: str, with_store: bool
) -> None:
    def build() -> Workflow:
        store = SQLiteCheckpointStore(tmp_path / "n.db") if with_store else None
        return nest(triage_workflow(), levels, store)

    wf = build()
    first = await wf.run("disk full", run_id="r")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    assert request.executor_id == path
    assert request.payload == {"summary": "disk full"}
    assert request.response_type is Ticket
    (info,) = [e for e in first.events if isinstance(e, events.RequestInfo)]
    assert (info.executor_id, info.payload, info.response_type) == (path, request.payload, Ticket)
    finished = [e for e in first.events if isinstance(e, events.RunFinished)]
    assert finished[-1].pending_requests == (request,)

    # a wrong answer is refused by the child's own type, and the run stays answerable
    with pytest.raises(TypeError, match="Ticket"):
        await wf.resume("r", responses={request.request_id: "not a ticket"})
    again = build() if with_store else wf  # from the store: a fresh definition
    done = await again.resume("r", responses={request.request_id: Ticket("purge logs", 1)})
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.outputs == ["disk full: purge logs (p1)"]
    invoked = [e.executor_id for e in done.events if isinstance(e, events.ExecutorInvoked)]
    assert invoked[-1] == path  # the answer reached the asker itself


async def test_questions_of_two_children_in_one_run_are_told_apart() -> None:
    left = WorkflowExecutor(triage_workflow(), id="left")
    right = WorkflowExecutor(triage_workflow(), id="right")

    class Split(Executor):
        @handler
        async def on(self, text: str, ctx: WorkflowContext[str]) -> None:
            await ctx.send_message(f"{text} A", target="left")
            await ctx.send_message(f"{text} B", target="right")

    split = Split("split")
    wf = (
        WorkflowBuilder(start=split, name="two")
        .add_edge(split, left)
        .add_edge(split, right)
        .build()
    )
    first = await wf.run("outage")
    by_path = {r.executor_id: r for r in first.pending_requests}
    assert set(by_path) == {"left/triage", "right/triage"}
    assert by_path["right/triage"].payload == {"summary": "outage B"}
    second = await wf.resume(
        first.run_id, responses={by_path["right/triage"].request_id: Ticket("reboot", 2)}
    )
    assert second.status is RunStatus.AWAITING_INPUT
    assert [r.executor_id for r in second.pending_requests] == ["left/triage"]
    assert second.outputs == ["outage B: reboot (p2)"]
    (left_request,) = second.pending_requests
    done = await wf.resume(first.run_id, responses={left_request.request_id: Ticket("wait", 3)})
    assert done.outputs[-1] == "outage A: wait (p3)"


async def test_a_diagram_shows_the_nested_asker_waiting(tmp_path: Path) -> None:
    from visualize import load_overlay

    store = SQLiteCheckpointStore(tmp_path / "o.db")
    first = await nest(triage_workflow(), 1, store).run("x", run_id="o")
    assert first.status is RunStatus.AWAITING_INPUT
    overlay = await load_overlay("o", store)
    assert overlay.status["l0/triage"] == "waiting"  # drawn inside l0's cluster
