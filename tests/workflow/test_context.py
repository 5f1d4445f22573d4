"""WorkflowContext: messages, targets, outputs, state visibility, source."""

from __future__ import annotations

import pytest

from builders import WorkflowBuilder
from workflow import Executor, ExecutorFailedError, RunStatus, WorkflowContext, executor, handler

pytestmark = pytest.mark.anyio


async def test_return_value_is_forwarded_and_sink_returns_become_outputs() -> None:
    @executor
    async def a(x: int) -> int:
        return x + 1

    @executor
    async def b(x: int) -> str:
        return f"b{x}"

    result = await WorkflowBuilder(start=a).add_edge(a, b).build().run(1)
    assert result.outputs == ["b2"]


async def test_send_message_to_one_target() -> None:
    @executor
    async def router(x: int, ctx: WorkflowContext[int]) -> None:
        await ctx.send_message(x, target="right")

    @executor
    async def left(x: int) -> str:
        return "left"

    @executor
    async def right(x: int) -> str:
        return "right"

    wf = WorkflowBuilder(start=router).add_fan_out_edges(router, [left, right]).build()
    assert (await wf.run(1)).outputs == ["right"]


async def test_send_to_a_non_successor_fails_naming_it() -> None:
    @executor
    async def router(x: int, ctx: WorkflowContext[int]) -> None:
        await ctx.send_message(x, target="nowhere")

    @executor
    async def left(x: int) -> None: ...

    result = await WorkflowBuilder(start=router).add_edge(router, left).build().run(1)
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert "'nowhere', which is not one of its successors (left)" in str(result.error)


async def test_state_is_visible_to_writer_at_once_and_to_others_next_superstep() -> None:
    seen: dict[str, object] = {}

    @executor
    async def start(x: int) -> int:
        return x

    @executor
    async def writer(x: int, ctx: WorkflowContext[int]) -> int:
        await ctx.set_state("k", "v")
        seen["writer"] = await ctx.get_state("k")
        return x

    @executor
    async def peer(x: int, ctx: WorkflowContext[int]) -> int:
        seen["peer same step"] = await ctx.get_state("k", "unset")
        return x

    @executor
    async def later(xs: list[int], ctx: WorkflowContext) -> None:
        seen["later"] = await ctx.get_state("k")

    wf = (
        WorkflowBuilder(start=start)
        .add_fan_out_edges(start, [writer, peer])
        .add_fan_in_edges([writer, peer], later)
        .build()
    )
    await wf.run(0)
    assert seen == {"writer": "v", "peer same step": "unset", "later": "v"}


async def test_source_of_the_current_message() -> None:
    sources: list[str | None] = []

    class Probe(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            sources.append(ctx.source)
            if x < 2:
                await ctx.send_message(x + 1)

    a, b = Probe("a"), Probe("b")
    await WorkflowBuilder(start=a).add_edge(a, b).add_edge(b, a).build().run(0)
    assert sources == [None, "a", "b"]


async def test_runs_do_not_share_state() -> None:
    class Counter(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            count = await ctx.get_executor_state("count", 0)
            await ctx.set_executor_state("count", count + 1)
            await ctx.yield_output(count + 1)

    wf = WorkflowBuilder(start=Counter("c")).build()
    assert (await wf.run(1)).outputs == [1]
    assert (await wf.run(1)).outputs == [1]
