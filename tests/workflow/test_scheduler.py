"""Supersteps: concurrency, ordering, failures, retries, timeouts, limits, cancellation."""

from __future__ import annotations

import anyio
import pytest

from builders import WorkflowBuilder
from tests.loop_event import LoopEvent
from workflow import (
    Executor,
    ExecutorFailedError,
    RetryPolicy,
    RunStatus,
    WorkflowContext,
    WorkflowError,
    events,
    executor,
    handler,
)

pytestmark = pytest.mark.anyio


@executor
async def start(x: int) -> int:
    return x


def sleeper(name: str, delay: float, log: list[str] | None = None) -> Executor:
    async def f(x: int) -> str:
        await anyio.sleep(delay)
        if log is not None:
            log.append(name)
        return name

    return executor(id=name)(f)


def fan(workers: list[Executor], **kw: object) -> WorkflowBuilder:
    return WorkflowBuilder(start=start, **kw).add_fan_out_edges(start, workers)  # type: ignore[arg-type]


async def test_ready_executors_run_concurrently() -> None:
    """Each worker waits until all 20 have started: only concurrent execution completes."""
    started: list[str] = []
    everyone = LoopEvent()

    def waiter(name: str) -> Executor:
        async def f(x: int) -> str:
            started.append(name)
            if len(started) == 20:
                everyone.set()
            # a deadlock guard, not a speed check: run one at a time, the first waits forever
            with anyio.fail_after(60):
                await everyone.wait()
            return name

        return executor(id=name)(f)

    wf = fan([waiter(f"w{i}") for i in range(20)]).build()
    result = await wf.run(0)
    assert result.status is RunStatus.COMPLETED, result.error
    assert sorted(started) == sorted(f"w{i}" for i in range(20))


async def test_max_concurrency_bounds_parallelism() -> None:
    running = 0
    peak = 0

    def probe(name: str) -> Executor:
        async def f(x: int) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await anyio.sleep(0.02)
            running -= 1

        return executor(id=name)(f)

    wf = fan([probe(f"p{i}") for i in range(8)], max_concurrency=3).build()
    await wf.run(0)
    assert peak == 3


async def test_outputs_and_events_follow_graph_order_not_finish_order() -> None:
    finished: list[str] = []
    fast_done = LoopEvent()

    @executor(id="slow")
    async def slow(x: int) -> str:
        await fast_done.wait()  # finishes after fast, whatever the scheduler does
        finished.append("slow")
        return "slow"

    @executor(id="fast")
    async def fast(x: int) -> str:
        finished.append("fast")
        fast_done.set()
        return "fast"

    wf = fan([slow, fast]).build()
    result = await wf.run(0, run_id="r")
    assert finished == ["fast", "slow"]
    assert result.outputs == ["slow", "fast"]
    completed = [e.executor_id for e in result.events if isinstance(e, events.ExecutorCompleted)]
    assert completed == ["start", "slow", "fast"]


async def test_same_input_same_event_sequence() -> None:
    wf = fan([sleeper("a", 0.02), sleeper("b", 0.0), sleeper("c", 0.01)]).build()
    first = (await wf.run(1, run_id="same")).events
    second = (await wf.run(1, run_id="same")).events
    assert first == second
    assert isinstance(first[0], events.RunStarted)
    assert isinstance(first[-1], events.RunFinished)


async def test_deliveries_ordered_by_edge_then_send_order() -> None:
    received: list[object] = []
    a_sent = LoopEvent()

    @executor
    async def a(x: int, ctx: WorkflowContext[str]) -> None:
        await ctx.send_message("a1")
        await ctx.send_message("a2")
        a_sent.set()

    @executor
    async def b(x: int, ctx: WorkflowContext[str]) -> None:
        await a_sent.wait()  # b sends last in time, yet its edge was added first
        await ctx.send_message("b1")

    @executor
    async def sink(x: str) -> None:
        received.append(x)

    wf = (
        WorkflowBuilder(start=start)
        .add_fan_out_edges(start, [b, a])
        .add_edge(b, sink)
        .add_edge(a, sink)
        .build()
    )
    await wf.run(0)
    assert received == ["b1", "a1", "a2"]  # edge b->sink was added first


async def test_failing_executor_siblings_commit_and_run_fails() -> None:
    @executor
    async def boom(x: int) -> str:
        raise RuntimeError("kaput")

    wf = fan([sleeper("ok", 0.02), boom]).build()
    result = await wf.run(0, run_id="run-1")
    assert result.status is RunStatus.FAILED
    err = result.error
    assert isinstance(err, ExecutorFailedError)
    assert (err.executor_id, err.superstep, err.run_id) == ("boom", 2, "run-1")
    assert "'boom'" in str(err)
    assert isinstance(err.__cause__, RuntimeError)
    assert result.outputs == ["ok"]  # the sibling finished and kept its result
    kinds = [type(e).__name__ for e in result.events]
    assert "ExecutorFailed" in kinds
    assert kinds[-1] == "RunFinished"
    with pytest.raises(ExecutorFailedError):
        result.raise_for_status()


async def test_retry_policy_retries_then_succeeds_without_double_sends() -> None:
    attempts = 0

    @executor
    async def flaky(x: int, ctx: WorkflowContext[str]) -> None:
        nonlocal attempts
        attempts += 1
        await ctx.yield_output(f"attempt {attempts}")
        if attempts < 3:
            raise ConnectionError("try again")

    wf = (
        WorkflowBuilder(start=flaky)
        .add_executor(flaky, retry=RetryPolicy(max_attempts=3, initial_delay=0.001))
        .build()
    )
    result = await wf.run(0)
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == ["attempt 3"]  # failed attempts left nothing behind


async def test_retry_gives_up_after_max_attempts_and_respects_retry_on() -> None:
    calls = 0

    @executor
    async def always(x: int) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("no")

    policy = RetryPolicy(max_attempts=2, initial_delay=0.001, retry_on=(ValueError,))
    result = await WorkflowBuilder(start=always).add_executor(always, retry=policy).build().run(0)
    assert result.status is RunStatus.FAILED
    assert calls == 2

    calls = 0
    only_io = RetryPolicy(max_attempts=5, initial_delay=0.001, retry_on=(OSError,))
    await WorkflowBuilder(start=always).add_executor(always, retry=only_io).build().run(0)
    assert calls == 1


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts must be >= 1"):
        RetryPolicy(max_attempts=0)


async def test_timeout_fails_the_executor_naming_it() -> None:
    slow = sleeper("slow", 5)
    wf = WorkflowBuilder(start=slow).add_executor(slow, timeout=0.05).build()
    result = await wf.run(0)  # finishing its 5 s sleep would complete the run
    assert result.status is RunStatus.FAILED
    assert "executor 'slow' exceeded its timeout of 0.05s" in str(result.error.__cause__)


async def test_max_supersteps_ends_with_status_not_hang() -> None:
    class Forever(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            await ctx.send_message(x + 1)

    f = Forever("f")
    result = await WorkflowBuilder(start=f, max_supersteps=7).add_edge(f, f).build().run(0)
    assert result.status is RunStatus.MAX_SUPERSTEPS
    assert isinstance(result.events[-1], events.RunFinished)
    assert result.events[-1].status is RunStatus.MAX_SUPERSTEPS
    assert sum(isinstance(e, events.SuperstepCompleted) for e in result.events) == 7
    with pytest.raises(WorkflowError, match="max_supersteps"):
        result.raise_for_status()


async def test_cancellation_mid_superstep_is_prompt() -> None:
    wf = fan([sleeper("a", 30), sleeper("b", 30)]).build()
    with anyio.move_on_after(0.1):  # a run that ignored it would complete after 30 s
        await wf.run(0, run_id="c1")
    # without a store the cancelled run stays resumable in this process
    assert wf._paused["c1"].status is RunStatus.CANCELLED


async def test_leaving_the_stream_early_cancels_the_run() -> None:
    wf = fan([sleeper("a", 30)]).build()
    seen = []
    async for event in wf.run_stream(0, run_id="s1"):
        seen.append(event)
        if isinstance(event, events.ExecutorInvoked) and event.executor_id == "a":
            break
    with anyio.fail_after(30):  # the cancelled run records itself as it unwinds
        while "s1" not in wf._paused:  # noqa: ASYNC110 (no event to wait on here)
            await anyio.sleep(0.01)
    assert wf._paused["s1"].status is RunStatus.CANCELLED


async def test_stream_yields_every_event_ending_with_run_finished() -> None:
    wf = fan([sleeper("a", 0), sleeper("b", 0)]).build()
    streamed = [e async for e in wf.run_stream(0, run_id="x")]
    ran = await wf.run(0, run_id="x")
    assert streamed == ran.events
    assert isinstance(streamed[-1], events.RunFinished)


async def test_start_input_of_wrong_type_fails_before_anything_runs() -> None:
    ran = False

    @executor
    async def ints(x: int) -> None:
        nonlocal ran
        ran = True

    with pytest.raises(TypeError, match=r"start executor 'ints' accepts int, not str"):
        await WorkflowBuilder(start=ints).build().run("nope")
    assert not ran


def test_run_sync() -> None:
    assert WorkflowBuilder(start=start).build().run_sync(4).outputs == [4]


async def test_concurrent_runs_of_one_workflow_are_isolated() -> None:
    class Acc(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            total = await ctx.get_state("total", 0) + x
            await ctx.set_state("total", total)
            await anyio.sleep(0.01)
            if x > 1:
                await ctx.send_message(x - 1)
            else:
                await ctx.yield_output(await ctx.get_state("total"))

    acc = Acc("acc")
    wf = WorkflowBuilder(start=acc).add_edge(acc, acc).build()
    results: dict[int, list[object]] = {}

    async def one(n: int) -> None:
        results[n] = (await wf.run(n)).outputs

    async with anyio.create_task_group() as tg:
        for n in (3, 4, 5):
            tg.start_soon(one, n)
    assert results == {3: [6], 4: [10], 5: [15]}
