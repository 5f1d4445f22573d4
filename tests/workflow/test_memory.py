"""Bounded memory without a store: what a workflow keeps for in-process resume.

Waiting runs are kept up to ``max_paused_runs`` (oldest evicted first, with a clear error
when an evicted run is resumed); failed, cancelled and out-of-supersteps runs only the
``max_failed_runs`` latest; completed runs never. ``benchmarks/long_lived.py`` measures the
memory of 100,000 such runs; here the policy itself is checked.
"""

from __future__ import annotations

import anyio
import pytest

from builders import WorkflowBuilder
from workflow import (
    CheckpointError,
    Executor,
    InMemoryCheckpointStore,
    RunStatus,
    Workflow,
    WorkflowContext,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


class Mixed(Executor):
    """Input decides the run's fate: ``ask`` pauses, ``fail`` fails, ``hang`` waits, else done."""

    def __init__(self) -> None:
        super().__init__(id="mixed")
        self.failing = True

    @handler
    async def on(self, text: str, ctx: WorkflowContext[str]) -> None:
        if text == "ask":
            await ctx.request_info(text, response_type=str)
        elif text == "fail" and self.failing:
            raise RuntimeError("asked to fail")
        elif text == "hang":
            await anyio.sleep_forever()
        else:
            await ctx.yield_output(text)

    @response_handler
    async def on_reply(self, request: str, reply: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(reply)


def mixed(**kw: int) -> tuple[Workflow, Mixed]:
    node = Mixed()
    return WorkflowBuilder(start=node, **kw).build(), node  # type: ignore[arg-type]


async def answer(wf: Workflow, run_id: str, reply: str = "ok") -> RunStatus:
    paused = await wf.resume(run_id, responses={"mixed:1:1": reply})
    return paused.status


async def test_waiting_runs_beyond_the_cap_are_evicted_oldest_first() -> None:
    wf, _ = mixed(max_paused_runs=3)
    for i in range(5):
        assert (await wf.run("ask", run_id=f"w{i}")).status is RunStatus.AWAITING_INPUT
    assert len(wf._paused) == 3
    for evicted in ("w0", "w1"):
        with pytest.raises(
            CheckpointError, match=rf"run '{evicted}' was evicted.*max_paused_runs=3"
        ):
            await answer(wf, evicted)
    for kept in ("w2", "w3", "w4"):
        assert await answer(wf, kept) is RunStatus.COMPLETED
    assert len(wf._paused) == 0


async def test_failed_and_cancelled_runs_keep_only_the_latest_for_a_retry() -> None:
    wf, node = mixed(max_failed_runs=2)
    for i in range(3):
        assert (await wf.run("fail", run_id=f"f{i}")).status is RunStatus.FAILED
    with anyio.CancelScope() as scope:
        scope.cancel()
        await wf.run("hang", run_id="c0")
    assert len(wf._paused) == 2  # f2 and c0: f0 and f1 were pushed out
    with pytest.raises(
        CheckpointError, match=r"run 'f0' was evicted from memory \(failed.*max_failed_runs=2"
    ):
        await wf.resume("f0")
    node.failing = False
    retried = await wf.resume("f2")  # the retry runs what had not finished
    assert retried.status is RunStatus.COMPLETED
    assert retried.outputs == ["fail"]


async def test_completed_runs_are_never_kept() -> None:
    wf, _ = mixed()
    for i in range(20):
        assert (await wf.run("done", run_id=f"d{i}")).status is RunStatus.COMPLETED
    assert len(wf._paused) == 0
    with pytest.raises(CheckpointError, match="unknown run 'd0'"):
        await wf.resume("d0")


async def test_answered_runs_leave_and_a_failed_answer_keeps_the_run() -> None:
    wf, _ = mixed(max_paused_runs=10)
    await wf.run("ask", run_id="a")
    with pytest.raises(TypeError):
        await wf.resume("a", responses={"mixed:1:1": 42})  # wrong type: the run stays
    assert "a" in wf._paused
    assert await answer(wf, "a") is RunStatus.COMPLETED
    assert "a" not in wf._paused


async def test_many_mixed_runs_stay_within_the_caps() -> None:
    wf, _ = mixed(max_paused_runs=7, max_failed_runs=3)
    for i in range(299):  # ends on a completed run: 7 waiting and 3 failed are kept
        kind = ("ask", "fail", "done", "answered")[i % 4]
        result = await wf.run("ask" if kind == "answered" else kind, run_id=f"m{i}")
        if kind == "answered":
            assert await answer(wf, result.run_id) is RunStatus.COMPLETED
        assert len(wf._paused) <= 10
    assert len(wf._paused) == 10


async def test_a_store_keeps_everything_and_the_cache_stays_empty() -> None:
    store = InMemoryCheckpointStore()
    wf, _ = mixed(max_paused_runs=1)
    wf = wf.with_store(store)
    for i in range(3):
        await wf.run("ask", run_id=f"s{i}")
    assert len(wf._paused) == 0
    assert await answer(wf, "s0") is RunStatus.COMPLETED  # no eviction with a store


@pytest.mark.parametrize("bad", [-1, 1.5, None])
def test_caps_must_be_non_negative_ints(bad: object) -> None:
    with pytest.raises(ValueError, match="max_paused_runs must be an int >= 0"):
        WorkflowBuilder(start=Mixed(), max_paused_runs=bad).build()  # type: ignore[arg-type]
