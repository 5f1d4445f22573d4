"""Handler declaration and most-specific-type dispatch."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import anyio
import pytest

from builders import WorkflowBuilder
from workflow import Executor, GraphValidationError, RunStatus, WorkflowContext, executor, handler

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Animal:
    name: str


@dataclass(frozen=True)
class Dog(Animal):
    pass


class Zoo(Executor):
    @handler
    async def any_value(self, msg: object, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"object:{msg!r}")

    @handler
    async def animal(self, msg: Animal, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"animal:{msg.name}")

    @handler
    async def dog(self, msg: Dog, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"dog:{msg.name}")

    @handler
    async def number(self, msg: int | str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"union:{msg}")

    @handler
    async def exact_int(self, msg: int, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"int:{msg}")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Dog("rex"), "dog:rex"),  # subclass beats base class
        (Animal("cat"), "animal:cat"),
        (3, "int:3"),  # a concrete type beats a union containing it
        ("x", "union:x"),
        (True, "int:True"),  # bool is an int: the nearest class in its MRO wins
        (2.5, "object:2.5"),  # object comes last
    ],
)
async def test_most_specific_handler_wins(message: object, expected: str) -> None:
    wf = WorkflowBuilder(start=Zoo("zoo")).build()
    result = await wf.run(message)
    assert result.outputs == [expected]


def test_tied_handlers_are_a_build_error() -> None:
    class Tied(Executor):
        @handler
        async def a(self, msg: int, ctx: WorkflowContext) -> None: ...

        @handler
        async def b(self, msg: int, ctx: WorkflowContext) -> None: ...

    with pytest.raises(GraphValidationError, match=r"'tied': handlers 'a' and 'b' both accept int"):
        WorkflowBuilder(start=Tied("tied")).build()


def test_handler_without_annotation_is_rejected() -> None:
    class Bare(Executor):
        @handler
        async def a(self, msg, ctx: WorkflowContext) -> None:  # type: ignore[no-untyped-def]
            ...

    with pytest.raises(TypeError, match="parameter 'msg' has no type annotation"):
        WorkflowBuilder(start=Bare("bare")).build()


async def test_function_executors_sync_async_with_and_without_ctx() -> None:
    @executor
    def sync_plain(x: int) -> int:
        return x + 1

    @executor
    async def async_plain(x: int) -> int:
        return x * 10

    @executor(id="with_ctx")
    async def with_ctx(x: int, ctx: WorkflowContext[int]) -> None:
        await ctx.send_message(x + 5)

    @executor
    def sync_ctx(x: int, ctx: WorkflowContext[int]) -> None:
        ctx.yield_output(x)  # context calls work without await in sync code

    assert sync_plain.id == "sync_plain"
    assert with_ctx.id == "with_ctx"
    wf = (
        WorkflowBuilder(start=sync_plain)
        .add_chain([sync_plain, async_plain, with_ctx, sync_ctx])
        .build()
    )
    assert (await wf.run(1)).outputs == [25]


async def test_sync_executor_runs_off_the_event_loop() -> None:
    """A blocking sync function must not stall its concurrent siblings."""
    entered, started = threading.Event(), threading.Event()
    seen: list[str] = []

    @executor
    def blocker(x: int) -> str:
        entered.set()
        assert started.wait(5), "the async sibling never ran while the sync one blocked"
        return "sync"

    @executor
    async def sibling(x: int) -> str:
        # resumes only if the loop is free while blocker blocks
        assert await anyio.to_thread.run_sync(entered.wait, 5)
        started.set()
        return "async"

    @executor
    async def split(x: int) -> int:
        return x

    @executor
    async def collect(x: str) -> None:
        seen.append(x)

    wf = (
        WorkflowBuilder(start=split)
        .add_fan_out_edges(split, [blocker, sibling])
        .add_edge(blocker, collect)
        .add_edge(sibling, collect)
        .build()
    )
    result = await wf.run(0)
    assert result.status is RunStatus.COMPLETED
    assert seen == ["sync", "async"]  # delivered in edge order, not finish order


async def test_future_annotations_are_resolved() -> None:
    # this module uses `from __future__ import annotations`; dispatch must still see Dog
    wf = WorkflowBuilder(start=Zoo("z")).build()
    assert wf.executors["z"].can_handle(Dog("a"))
