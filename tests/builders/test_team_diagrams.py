"""Every team builder's workflow is drawn as its team: who can talk to whom."""

from __future__ import annotations

import re

from builders import (
    ConcurrentBuilder,
    GroupChatBuilder,
    HandoffBuilder,
    MagenticBuilder,
    SequentialBuilder,
)
from executors import FunctionAgent, MagenticManager
from visualize import to_mermaid
from workflow import Workflow


def agent(name: str) -> FunctionAgent:
    return FunctionAgent(name, f"the {name}", lambda messages: f"{name} says hi")


def edges(wf: Workflow) -> set[tuple[str, str]]:
    return set(re.findall(r"n_(\w+) -\S*-> n_(\w+)", to_mermaid(wf)))


def test_group_chat_is_a_star_around_its_manager() -> None:
    wf = GroupChatBuilder([agent("a"), agent("b")], max_rounds=2).build()
    found = edges(wf)
    manager = next(dst for src, dst in found if src == "start")
    assert {(manager, "a"), ("a", manager), (manager, "b"), ("b", manager)} <= found


def test_sequential_is_a_chain() -> None:
    wf = SequentialBuilder([agent("a"), agent("b"), agent("c")]).build()
    found = edges(wf)
    assert ("a", "b") in found
    assert ("b", "c") in found
    assert ("c", "a") not in found


def test_concurrent_fans_out_and_joins() -> None:
    wf = ConcurrentBuilder([agent("a"), agent("b")]).build()
    source = to_mermaid(wf)
    assert "join" in source  # the fan-in is drawn as a join point
    found = edges(wf)
    assert any(src == "a" for src, _ in found)
    assert any(src == "b" for src, _ in found)


def test_handoffs_are_the_edges() -> None:
    wf = HandoffBuilder(
        [agent("triage"), agent("billing"), agent("tech")],
        handoffs={"triage": ["billing", "tech"]},
    ).build()
    found = edges(wf)
    assert {("triage", "billing"), ("triage", "tech")} <= found
    assert ("billing", "tech") not in found


class _Done(MagenticManager):
    async def plan(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def replan(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def progress(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def final_answer(self, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def test_magentic_team_is_orchestrator_and_participants() -> None:
    wf = MagenticBuilder(
        participants=[agent("researcher"), agent("coder")], manager=_Done()
    ).build()
    source = to_mermaid(wf)
    found = edges(wf)
    orchestrator = next(dst for src, dst in found if src == "start")
    assert {(orchestrator, "researcher"), ("researcher", orchestrator)} <= found
    assert {(orchestrator, "coder"), ("coder", orchestrator)} <= found
    assert "orchestrator" in source
