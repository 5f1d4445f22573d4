"""With a checkpoint store, ``build()`` refuses types that could never be checkpointed.

Without the check such a workflow builds, runs its first superstep, and fails at the first
checkpoint; with it the build names the executor, the handler, the type and the fix.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import pydantic
import pytest

from builders import WorkflowBuilder
from executors import WorkflowExecutor
from workflow import (
    Executor,
    GraphValidationError,
    InMemoryCheckpointStore,
    RunStatus,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


class Plain:
    """A class the serializer cannot store (not a dataclass, model or Enum)."""

    def __init__(self, n: int) -> None:
        self.n = n


@dataclass
class Holder:
    plain: Plain


@dataclass
class Point:
    x: int
    tags: list[str]


class Color(enum.Enum):
    RED = "red"


class Model(pydantic.BaseModel):
    points: list[Point]
    color: Color | None = None


@executor(id="takes_plain")
async def takes_plain(p: Plain) -> None:
    return None


@executor(id="sends_plain")
async def sends_plain(n: int, ctx: WorkflowContext[Plain]) -> None:
    await ctx.send_message(Plain(n))


@executor(id="takes_holder")
async def takes_holder(h: Holder) -> None:
    return None


class AsksForPlain(Executor):
    @handler
    async def on(self, n: int, ctx: WorkflowContext[int]) -> None:
        await ctx.request_info(n, response_type=Plain)

    @response_handler
    async def on_reply(self, request: int, reply: Plain, ctx: WorkflowContext[int]) -> None:
        await ctx.yield_output(reply.n)


@executor(id="color")
async def color_node(c: Color) -> None:
    return None


def store() -> InMemoryCheckpointStore:
    return InMemoryCheckpointStore()


def test_a_handler_input_that_cannot_be_checkpointed_fails_the_build() -> None:
    with pytest.raises(GraphValidationError) as info:
        WorkflowBuilder(start=takes_plain, name="wf", checkpoint_store=store()).build()
    text = str(info.value)
    assert "workflow 'wf' has a checkpoint_store" in text
    assert "executor 'takes_plain', handler 'takes_plain' accepts <class" in text
    assert "make it a dataclass, a pydantic model or an Enum" in text
    assert "or build without checkpoint_store" in text


def test_an_output_type_and_a_dataclass_field_are_checked() -> None:
    with pytest.raises(GraphValidationError) as info:
        WorkflowBuilder(start=sends_plain, checkpoint_store=store()).add_edge(
            sends_plain, takes_plain
        ).build()
    text = str(info.value)
    assert "executor 'sends_plain', handler 'sends_plain' sends <class" in text
    assert "executor 'takes_plain', handler 'takes_plain' accepts <class" in text
    with pytest.raises(GraphValidationError) as info:
        WorkflowBuilder(start=takes_holder, checkpoint_store=store()).build()
    text = str(info.value)
    assert "executor 'takes_holder', handler 'takes_holder' accepts Holder, which holds" in text
    assert "Plain'>, which cannot be checkpointed" in text  # the culprit in the dataclass


def test_a_response_type_is_checked() -> None:
    expected = r"'on_reply' expects the response <class .*Plain'>"
    with pytest.raises(GraphValidationError, match=expected):
        WorkflowBuilder(start=AsksForPlain(id="ask"), checkpoint_store=store()).build()


def test_extra_types_and_nested_workflows_are_checked() -> None:
    with pytest.raises(GraphValidationError, match=r"types= lists <class .*Plain'>"):
        WorkflowBuilder(start=color_node, checkpoint_store=store(), types=[Plain]).build()
    inner = WorkflowBuilder(start=takes_plain, name="inner").build()  # no store: fine
    with pytest.raises(GraphValidationError, match="executor 'inner/takes_plain'"):
        WorkflowBuilder(start=WorkflowExecutor(inner), checkpoint_store=store()).build()


def test_binding_a_store_later_checks_too() -> None:
    wf = WorkflowBuilder(start=takes_plain).build()  # no store: nothing to check
    with pytest.raises(GraphValidationError, match=r"accepts <class .*Plain'>"):
        wf.with_store(store())


async def test_checkpointable_types_build_and_run() -> None:
    @executor(id="ok")
    async def ok(m: Model | list[Point] | None, ctx: WorkflowContext[dict[str, Point]]) -> None:
        await ctx.yield_output(m)

    wf = WorkflowBuilder(start=ok, checkpoint_store=store()).build()
    model = Model(points=[Point(1, ["a"])], color=Color.RED)
    result = await wf.run(model)
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == [model]
