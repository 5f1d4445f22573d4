"""build() rejects broken graphs with messages that name the culprit and the fix."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from builders import WorkflowBuilder
from workflow import (
    Case,
    Default,
    Executor,
    GraphValidationError,
    WorkflowContext,
    executor,
    handler,
)


@dataclass
class Document:
    text: str


@executor
async def a(x: int) -> int:
    return x


@executor
async def b(x: int) -> int:
    return x


@executor
async def c(x: int) -> int:
    return x


@executor
async def parse(x: int) -> str:
    return str(x)


@executor
async def score(doc: Document) -> float:
    return 1.0


def test_unknown_executor_id() -> None:
    with pytest.raises(
        GraphValidationError, match=r"direct edge 'a' -> 'ghost': unknown executor 'ghost'"
    ):
        WorkflowBuilder(start=a).add_edge(a, "ghost").build()


def test_duplicate_ids() -> None:
    other = executor(id="a")(b.func)
    with pytest.raises(
        GraphValidationError, match=r"duplicate executor id 'a'.*give one of them another id"
    ):
        WorkflowBuilder(start=a).add_edge(a, other).build()


def test_unreachable_executor() -> None:
    with pytest.raises(GraphValidationError, match=r"not reachable from start 'a': 'c'"):
        WorkflowBuilder(start=a).add_edge(a, b).add_edge(c, b).build()


def test_no_start() -> None:
    with pytest.raises(GraphValidationError, match="no start executor"):
        WorkflowBuilder().add_edge(a, b).build()


def test_type_incompatible_edge_names_both_ends_and_the_fix() -> None:
    with pytest.raises(GraphValidationError) as info:
        WorkflowBuilder(start=parse).add_edge(parse, score).build()
    message = str(info.value)
    assert "edge 'parse' -> 'score': 'parse' sends str but 'score' accepts only Document" in message
    assert "add a handler for str in 'score' or convert in 'parse'" in message


def test_context_type_parameter_declares_outputs() -> None:
    @executor
    async def sender(x: int, ctx: WorkflowContext[str]) -> None:
        await ctx.send_message(str(x))

    with pytest.raises(
        GraphValidationError, match="'sender' sends str but 'score' accepts only Document"
    ):
        WorkflowBuilder(start=sender).add_edge(sender, score).build()


def test_explicit_handler_output_declares_outputs() -> None:
    class Explicit(Executor):
        @handler(output=bytes)
        async def on(self, x: int, ctx: WorkflowContext) -> None: ...

    with pytest.raises(GraphValidationError, match="sends bytes"):
        WorkflowBuilder(start=Explicit("e")).add_edge("e", score).build()


def test_unknown_outputs_are_not_checked() -> None:
    @executor
    async def vague(x: int, ctx: WorkflowContext) -> None: ...

    WorkflowBuilder(start=vague).add_edge(vague, score).build()  # no error: may send anything


def test_switch_case_needs_exactly_one_default() -> None:
    with pytest.raises(GraphValidationError, match="exactly one Default, got 0"):
        WorkflowBuilder(start=a).add_switch_case_edge_group(a, [Case(lambda x: True, b)]).build()
    with pytest.raises(GraphValidationError, match="exactly one Default, got 2"):
        WorkflowBuilder(start=a).add_switch_case_edge_group(a, [Default(b), Default(c)]).build()


def test_fan_in_needs_two_sources_and_a_list_handler() -> None:
    with pytest.raises(GraphValidationError, match="a fan-in needs at least two sources, got 1"):
        WorkflowBuilder(start=a).add_edge(a, b).add_fan_in_edges([b], c).build()
    with pytest.raises(GraphValidationError, match="'c' receives a list but accepts only int"):
        WorkflowBuilder(start=a).add_fan_out_edges(a, [b, parse]).add_fan_in_edges(
            [b, parse], c
        ).build()


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(GraphValidationError) as info:
        WorkflowBuilder(start=a).add_edge(a, "ghost").add_edge(c, b).build()
    assert "unknown executor 'ghost'" in str(info.value)
    assert "not reachable" in str(info.value)


def test_executor_without_handlers() -> None:
    class Empty(Executor):
        pass

    with pytest.raises(GraphValidationError, match="has no handlers"):
        WorkflowBuilder(start=Empty("empty")).build()


def test_validation_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no start"):
        WorkflowBuilder().build()


def test_ten_thousand_executors_validate_quickly() -> None:
    nodes = [executor(id=f"n{i}")(a.func) for i in range(10_000)]
    builder = WorkflowBuilder(start=nodes[0])
    for x, y in itertools.pairwise(nodes):
        builder.add_edge(x, y)
    wf = builder.build()  # how fast: benchmarks/bench.py measures it (no clock in tests)
    assert len(wf.executors) == 10_000
