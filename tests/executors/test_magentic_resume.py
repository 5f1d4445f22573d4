"""A Magentic run interrupted mid-way (cancelled, or its process SIGKILLed) resumes from its
checkpoint with a fresh workflow object and ends exactly as an uninterrupted run."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import signal
import sys
from typing import Any

import anyio
import pytest

from builders import MagenticBuilder
from executors import ChatMessage, FunctionAgent, MagenticContext, ProgressLedger
from tests.executors.test_magentic import ScriptManager, ledger
from tests.loop_event import LoopEvent
from workflow import (
    InMemoryCheckpointStore,
    RunResult,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    events,
)

pytestmark = pytest.mark.anyio
ROOT = pathlib.Path(__file__).resolve().parents[2]
BLOCK_ON = "finish the report"


def decide(ctx: MagenticContext) -> ProgressLedger:
    """Six rounds: a solo turn, a parallel turn, a stall that resets, then the finish."""
    if ctx.reset_count == 0:
        return {
            1: ledger("alice", "gather the numbers"),
            2: ledger(["alice", "bob"], "compare notes"),
        }.get(ctx.round_count) or ledger("bob", "check again", progress=False)
    if ctx.round_count == 5:
        return ledger("alice", BLOCK_ON)
    return ledger(satisfied=True)


def build(store: Any, *, hold: Any = None) -> Workflow:
    """The team; ``hold(messages)`` (if given) runs before alice answers ``BLOCK_ON``."""

    async def alice(messages: list[ChatMessage]) -> str:
        if hold is not None and messages[-1].text == BLOCK_ON:
            await hold(messages)
        return f"alice holds {len(messages)}: {messages[-1].text}"

    def bob(messages: list[ChatMessage]) -> str:
        return f"bob holds {len(messages)}"

    team = [FunctionAgent("alice", "gathers", alice), FunctionAgent("bob", "checks", bob)]
    return MagenticBuilder(
        participants=team,
        manager=ScriptManager(decide),
        max_stall_count=1,
        checkpoint_store=store,
        name="resumable-team",
    ).build()


def comparable(result: RunResult, since: int) -> list[Any]:
    """Events from superstep ``since`` on, without run ids and checkpoint bookkeeping."""
    skip = (events.RunStarted, events.RunFinished, events.CheckpointSaved)
    return [
        dataclasses.replace(e, run_id="-")
        for e in result.events
        if e.superstep >= since and not isinstance(e, skip)
    ]


def first_step(result: RunResult) -> int:
    return next(e.superstep for e in result.events if isinstance(e, events.SuperstepStarted))


async def uninterrupted() -> RunResult:
    result = await build(InMemoryCheckpointStore()).run("write the report", run_id="straight")
    result.raise_for_status()
    # after the reset alice holds only the new ledger and the instruction: her context was cleared
    assert result.outputs == [f"[satisfied] alice holds 2: {BLOCK_ON}"]
    return result


async def test_cancelled_run_resumes_with_a_fresh_workflow_and_matches() -> None:
    expected = await uninterrupted()
    store = InMemoryCheckpointStore()
    reached = LoopEvent()

    async def hold(messages: list[ChatMessage]) -> None:
        reached.set()
        await anyio.sleep_forever()

    first = build(store, hold=hold)
    async with anyio.create_task_group() as tg:

        async def go() -> None:
            await first.run("write the report", run_id="interrupted")

        tg.start_soon(go)
        with anyio.fail_after(10):
            await reached.wait()
        tg.cancel_scope.cancel()
    (info,) = await store.list_runs()
    assert info.status == RunStatus.CANCELLED.value

    resumed = await build(store).resume("interrupted")
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.outputs == expected.outputs
    since = first_step(resumed)
    assert since > 5  # it really stopped late in the run
    assert comparable(resumed, since) == comparable(expected, since)
    assert any(isinstance(e, events.RunStarted) and e.resumed for e in resumed.events)


def child(db: str, marker: str) -> None:
    """Run in a subprocess: start the run and hang once alice is asked to finish."""

    async def hold(messages: list[ChatMessage]) -> None:
        await anyio.Path(marker).write_text("reached")
        await anyio.sleep_forever()

    wf = build(SQLiteCheckpointStore(db), hold=hold)
    anyio.run(functools.partial(wf.run, "write the report", run_id="killed"))


@pytest.mark.timeout(60)
async def test_sigkilled_run_resumes_from_sqlite_and_matches(tmp_path: pathlib.Path) -> None:
    expected = await uninterrupted()
    db, marker = tmp_path / "runs.db", tmp_path / "reached"
    code = (
        "import sys; from tests.executors.test_magentic_resume import child; "
        "child(sys.argv[1], sys.argv[2])"
    )
    proc = await anyio.open_process(
        [sys.executable, "-c", code, str(db), str(marker)], cwd=ROOT, stdout=None, stderr=None
    )
    try:
        with anyio.fail_after(30):
            while not await anyio.Path(marker).exists():
                assert proc.returncode is None, f"child exited early with {proc.returncode}"
                await anyio.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = SQLiteCheckpointStore(db)
    try:
        resumed = await build(store).resume("killed")
    finally:
        await store.aclose()
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.outputs == expected.outputs
    since = first_step(resumed)
    assert since > 5
    assert comparable(resumed, since) == comparable(expected, since)


async def test_plan_review_answered_from_a_fresh_workflow_and_store() -> None:
    store = InMemoryCheckpointStore()

    def reviewed() -> Workflow:
        manager = ScriptManager(lambda ctx: ledger(satisfied=ctx.round_count > 1))
        team = [FunctionAgent("alice", "", lambda ms: f"alice holds {len(ms)}")]
        return MagenticBuilder(
            participants=team, manager=manager, plan_review=True, checkpoint_store=store
        ).build()

    paused = await reviewed().run("task", run_id="review")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    from executors import PlanReviewResponse

    again = await reviewed().resume(
        "review", responses={request.request_id: PlanReviewResponse.revise("more detail")}
    )
    (second,) = again.pending_requests
    assert second.payload.ledger.plan == "plan #0 more detail"
    done = await reviewed().resume(
        "review", responses={second.request_id: PlanReviewResponse.approve()}
    )
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["[satisfied] alice holds 2"]
