"""MagenticBuilder: the graph it builds, and the input it refuses."""

from __future__ import annotations

import math
from typing import Any

import pytest

from builders import MagenticBuilder
from executors import (
    AgentExecutor,
    ChatMessage,
    FunctionAgent,
    MagenticContext,
    MagenticManager,
    ProgressLedger,
    TaskLedger,
)
from visualize import to_dot, to_mermaid
from workflow import Executor, GraphValidationError, Workflow, WorkflowContext, handler


class Quiet(MagenticManager):
    """Takes no arguments, as the contract promises for managers."""

    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        return TaskLedger("", "")

    async def replan(self, ctx: MagenticContext) -> TaskLedger:
        return TaskLedger("", "")

    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        raise NotImplementedError

    async def final_answer(self, ctx: MagenticContext) -> str:
        return ""


def agent(name: str) -> FunctionAgent:
    return FunctionAgent(name, f"{name} agent", lambda ms: "ok")


class Numbers(Executor):
    @handler
    async def on_number(self, n: int, ctx: WorkflowContext[int]) -> int:
        return n


def test_builds_a_star_around_the_orchestrator() -> None:
    plain = AgentExecutor(agent("bob"))
    wf = MagenticBuilder(participants=[agent("alice"), plain], manager=Quiet()).build()
    assert isinstance(wf, Workflow)
    assert wf.name == "magentic"
    assert wf.start_executor_id == "orchestrator"
    assert list(wf.executors) == ["orchestrator", "alice", "bob"]
    assert wf.executors["orchestrator"].kind == "orchestrator"
    assert type(wf.executors["alice"]) is AgentExecutor  # an agent becomes a plain node
    assert wf.executors["bob"] is plain  # an executor is used as it is, never re-wrapped
    edges = [(g.sources, g.targets) for g in wf.graph.groups]
    assert edges == [
        (("orchestrator",), ("alice",)),
        (("alice",), ("orchestrator",)),
        (("orchestrator",), ("bob",)),
        (("bob",), ("orchestrator",)),
    ]
    assert "orchestrator" in to_mermaid(wf)
    assert "hexagon" in to_dot(wf).source
    again = MagenticBuilder(participants=[agent("alice"), agent("bob")], manager=Quiet()).build()
    assert again.graph_hash == wf.graph_hash


def test_name_store_and_options_pass_through() -> None:
    wf = MagenticBuilder(
        participants=[agent("alice")],
        manager=Quiet(),
        name="team",
        checkpoint_store="a store",
        max_concurrency=2,
    ).build()
    assert (wf.name, wf.checkpoint_store, wf.max_concurrency) == ("team", "a store", 2)
    assert wf.max_supersteps >= 1000
    big = MagenticBuilder(participants=[agent("a")], manager=Quiet(), max_round_count=400).build()
    assert big.max_supersteps > 1600


@pytest.mark.parametrize(
    ("participants", "message"),
    [
        ([], "at least one participant"),
        ([agent("alice"), agent("alice")], "two participants are named 'alice'"),
        ([agent("orchestrator")], "named 'orchestrator'"),
        ([42], "neither an agent"),
        ([Numbers("numbers")], "'numbers' accepts"),
    ],
)
def test_bad_participants_are_graph_errors(participants: list[Any], message: str) -> None:
    with pytest.raises(GraphValidationError, match=message):
        MagenticBuilder(participants=participants, manager=Quiet()).build()


def test_duplicate_names_between_agent_and_executor() -> None:
    class Named(Executor):
        @handler
        async def on(self, m: list[ChatMessage], ctx: WorkflowContext[str]) -> str:
            return "x"

    with pytest.raises(GraphValidationError, match="'alice'"):
        MagenticBuilder(participants=[agent("alice"), Named("alice")], manager=Quiet()).build()


@pytest.mark.parametrize(
    "limits",
    [
        {"max_round_count": 0},
        {"max_round_count": 2.5},
        {"max_round_count": True},
        {"max_stall_count": -1},
        {"max_reset_count": -1},
        {"token_budget": 0},
        {"time_budget": 0},
        {"time_budget": -1.0},
        {"time_budget": math.inf},
        {"time_budget": math.nan},
    ],
)
def test_bad_limits_are_value_errors(limits: dict[str, Any]) -> None:
    name = next(iter(limits))
    with pytest.raises(ValueError, match=name):
        MagenticBuilder(participants=[agent("alice")], manager=Quiet(), **limits)


def test_manager_must_be_a_magentic_manager() -> None:
    with pytest.raises(TypeError, match="MagenticManager"):
        MagenticBuilder(participants=[agent("alice")], manager=object())  # type: ignore[arg-type]


def test_zero_stall_and_reset_limits_are_allowed() -> None:
    MagenticBuilder(
        participants=[agent("a")], manager=Quiet(), max_stall_count=0, max_reset_count=0
    ).build()


def test_descriptions_fill_in_and_must_name_participants() -> None:
    class Runner(Executor):
        @handler
        async def on(self, m: str, ctx: WorkflowContext[str]) -> str:
            return m

    wf = MagenticBuilder(
        participants=[agent("alice"), Runner("runner")],
        manager=Quiet(),
        descriptions={"runner": "runs things"},
    ).build()
    orchestrator: Any = wf.executors["orchestrator"]
    assert orchestrator.team == {"alice": "alice agent", "runner": "runs things"}
    with pytest.raises(GraphValidationError, match="descriptions names 'bob'"):
        MagenticBuilder(
            participants=[agent("alice")], manager=Quiet(), descriptions={"bob": "?"}
        ).build()
