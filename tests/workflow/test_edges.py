"""Edge kinds: direct, conditional, fan-out, fan-in, switch-case, chains, cycles."""

from __future__ import annotations

import pytest

from builders import WorkflowBuilder
from tests.loop_event import LoopEvent
from workflow import Case, Default, Executor, RunStatus, WorkflowContext, executor, handler

pytestmark = pytest.mark.anyio


def _const(name: str) -> Executor:
    async def f(x: int) -> str:
        return name

    return executor(id=name)(f)


@executor
async def src(x: int) -> int:
    return x


async def test_conditional_edges_sync_and_async_predicates() -> None:
    async def is_big(x: int) -> bool:
        return x > 10

    small, big = _const("small"), _const("big")
    wf = (
        WorkflowBuilder(start=src)
        .add_edge(src, small, condition=lambda x: x <= 10)
        .add_edge(src, big, condition=is_big)
        .build()
    )
    assert (await wf.run(3)).outputs == ["small"]
    assert (await wf.run(30)).outputs == ["big"]


async def test_fan_out_to_all_and_with_selection() -> None:
    a, b, c = _const("a"), _const("b"), _const("c")
    everyone = WorkflowBuilder(start=src).add_fan_out_edges(src, [a, b, c]).build()
    assert (await everyone.run(1)).outputs == ["a", "b", "c"]

    picky = (
        WorkflowBuilder(start=src)
        .add_fan_out_edges(src, [a, b, c], selection_func=lambda x, ids: ids[x:])
        .build()
    )
    assert (await picky.run(2)).outputs == ["c"]
    assert (await picky.run(1)).outputs == ["b", "c"]


async def test_fan_out_selection_naming_unknown_target_fails() -> None:
    a, b = _const("a"), _const("b")
    wf = (
        WorkflowBuilder(start=src)
        .add_fan_out_edges(src, [a, b], selection_func=lambda x, ids: ["zz"])
        .build()
    )
    result = await wf.run(1)
    assert result.status is RunStatus.FAILED
    assert "returned unknown target(s) ['zz']" in str(result.error)


async def test_fan_in_orders_by_source_list_not_finish_time() -> None:

    fast_done = LoopEvent()
    finished: list[str] = []

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

    @executor
    async def join(items: list[str]) -> str:
        return "+".join(items)

    wf = (
        WorkflowBuilder(start=src)
        .add_fan_out_edges(src, [slow, fast])
        .add_fan_in_edges([slow, fast], join)
        .build()
    )
    assert (await wf.run(0)).outputs == ["slow+fast"]
    assert finished == ["fast", "slow"]


async def test_fan_in_waits_for_every_source_across_supersteps() -> None:
    @executor
    async def quick(x: int) -> str:
        return "quick"

    @executor
    async def hop(x: int) -> int:
        return x

    @executor
    async def late(x: int) -> str:
        return "late"

    @executor
    async def join(items: list[str]) -> str:
        return ",".join(items)

    wf = (
        WorkflowBuilder(start=src)
        .add_fan_out_edges(src, [quick, hop])
        .add_edge(hop, late)
        .add_fan_in_edges([quick, late], join)
        .build()
    )
    result = await wf.run(0)
    assert result.outputs == ["quick,late"]


async def test_switch_case_first_match_then_default() -> None:
    neg, small, other = _const("neg"), _const("small"), _const("other")
    wf = (
        WorkflowBuilder(start=src)
        .add_switch_case_edge_group(
            src, [Case(lambda x: x < 0, neg), Case(lambda x: x < 10, small), Default(other)]
        )
        .build()
    )
    assert (await wf.run(-1)).outputs == ["neg"]  # first matching case, not every match
    assert (await wf.run(5)).outputs == ["small"]
    assert (await wf.run(50)).outputs == ["other"]


async def test_self_loop_with_guard() -> None:
    class Countdown(Executor):
        @handler
        async def tick(self, n: int, ctx: WorkflowContext[int]) -> None:
            if n == 0:
                await ctx.yield_output("done")
            else:
                await ctx.send_message(n - 1)

    c = Countdown("c")
    result = await WorkflowBuilder(start=c).add_edge(c, c).build().run(5)
    assert result.outputs == ["done"]
    assert sum(type(e).__name__ == "SuperstepStarted" for e in result.events) == 6


async def test_predicate_exception_fails_the_run_naming_the_edge() -> None:
    def broken(x: int) -> bool:
        raise ValueError("bad predicate")

    a = _const("a")
    result = await WorkflowBuilder(start=src).add_edge(src, a, condition=broken).build().run(1)
    assert result.status is RunStatus.FAILED
    assert "condition of direct edge 'src' -> 'a' raised ValueError('bad predicate')" in str(
        result.error
    )
    assert isinstance(result.error.__cause__, Exception)


async def test_message_no_handler_accepts_is_dropped_with_event_or_fails_when_strict() -> None:
    @executor
    async def anything(x: int) -> object:
        return "text" if x else 0

    @executor
    async def ints_only(x: int) -> str:
        return "got int"

    builder = WorkflowBuilder(start=anything).add_edge(anything, ints_only)
    result = await builder.build().run(1)
    dropped = [e for e in result.events if type(e).__name__ == "MessageDropped"]
    assert result.status is RunStatus.COMPLETED
    assert len(dropped) == 1
    assert (dropped[0].source_id, dropped[0].target_id, dropped[0].message_type) == (
        "anything",
        "ints_only",
        "str",
    )

    strict = WorkflowBuilder(start=anything, strict=True).add_edge(anything, ints_only).build()
    failed = await strict.run(1)
    assert failed.status is RunStatus.FAILED
    assert "'ints_only' has no handler for str" in str(failed.error)
