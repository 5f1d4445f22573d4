"""Handoff: transfers through generated tools, people in the loop, loops stopped by conditions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from builders import (
    ConversationFinished,
    HandoffBuilder,
    HandoffError,
    HandoffTo,
    MaxMessages,
)
from executors import (
    AgentResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    FunctionAgent,
    HumanExecutor,
    HumanInputRequest,
    ScriptedChatClient,
    ToolCall,
    tool,
)
from workflow import GraphValidationError, RunResult, RunStatus

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]


def hand_to(target: str, call_id: str = "h1") -> ChatResponse:
    return ChatResponse(tool_calls=(ToolCall(id=call_id, name=f"handoff_to_{target}"),))


def transcript(result: RunResult) -> list[tuple[str | None, str, str]]:
    assert result.status is RunStatus.COMPLETED, result.error
    (conversation,) = result.outputs
    return [(m.author, m.role, m.text) for m in conversation]


def reason(result: RunResult) -> str:
    (event,) = [e for e in result.events if isinstance(e, ConversationFinished)]
    return event.reason


@tool
def lookup_invoice(number: str) -> str:
    """Find an invoice."""
    return f"invoice {number}: paid twice"


async def test_a_chain_of_handoffs_through_generated_tools() -> None:
    triage_model = ScriptedChatClient([hand_to("billing")])
    billing_model = ScriptedChatClient(
        [
            ChatResponse(
                tool_calls=(ToolCall(id="t1", name="lookup_invoice", arguments='{"number": "7"}'),)
            ),
            "Refunded the second charge.",
        ]
    )
    triage = ChatAgent("triage", "routes requests", "Route the customer.", triage_model)
    billing = ChatAgent(
        "billing", "Handles invoices and refunds.", "", billing_model, tools=[lookup_invoice]
    )
    support = ChatAgent("support", "fixes technical problems", "", ScriptedChatClient([]))
    wf = HandoffBuilder([triage, billing, support], {"triage": ["billing", "support"]}).build()
    result = await wf.run("I was charged twice")
    assert transcript(result) == [
        (None, "user", "I was charged twice"),
        ("triage", "assistant", ""),
        ("triage", "tool", "Transferred the conversation to billing."),
        ("billing", "assistant", ""),
        ("billing", "tool", "invoice 7: paid twice"),
        ("billing", "assistant", "Refunded the second charge."),
    ]
    assert reason(result) == "'billing' answered without handing off"
    # the transfer is intercepted: triage's model is not asked again after the handoff
    assert len(triage_model.calls) == 1
    offered = {spec.name: spec.description for spec in triage_model.tools[0]}
    assert offered["handoff_to_billing"] == (
        "Hand the conversation over to billing, who handles invoices and refunds."
    )
    assert "handoff_to_support" in offered
    assert [t.name for t in billing_model.tools[0]] == ["lookup_invoice"]  # no handoffs of its own
    assert [t.name for t in triage.tools] == []  # the agent passed in is unchanged
    # the allowed handoffs are the graph's edges (so diagrams show them)
    assert wf.graph.successors["triage"] == {"billing", "support"}
    assert wf.graph.successors["billing"] == frozenset()


async def test_a_handoff_to_a_person_pauses_and_their_answer_goes_back() -> None:
    support_model = ScriptedChatClient([hand_to("human"), "Then reinstall the app."])
    triage = ChatAgent("triage", "routes", "", ScriptedChatClient([hand_to("support")]))
    support = ChatAgent("support", "fixes technical problems", "", support_model)
    human = HumanExecutor("human")
    wf = HandoffBuilder(
        [triage, support, human], {"triage": ["support"], "support": ["human"]}
    ).build()
    assert wf.graph.successors["human"] == {"support"}
    first = await wf.run("the app crashes", run_id="h1")
    assert first.status is RunStatus.AWAITING_INPUT, first.error
    (request,) = first.pending_requests
    assert isinstance(request.payload, HumanInputRequest)
    assert request.executor_id == "human"
    done = await wf.resume("h1", responses={request.request_id: "I already restarted it"})
    assert [(a, t) for a, role, t in transcript(done) if role != "tool" and t] == [
        (None, "the app crashes"),
        ("human", "I already restarted it"),
        ("support", "Then reinstall the app."),
    ]
    # support saw the person's answer as the latest user input
    assert support_model.calls[1][-1] == ChatMessage(
        "user", "I already restarted it", author="human"
    )


async def test_a_handoff_loop_is_stopped_by_a_condition() -> None:
    ping = ChatAgent("ping", "", "", ScriptedChatClient(lambda m: hand_to("pong", f"p{len(m)}")))
    pong = ChatAgent("pong", "", "", ScriptedChatClient(lambda m: hand_to("ping", f"q{len(m)}")))
    wf = HandoffBuilder(
        [ping, pong], {"ping": ["pong"], "pong": ["ping"]}, termination=MaxMessages(9)
    ).build()
    result = await wf.run("go")
    conversation = transcript(result)
    assert len(conversation) == 9
    assert [a for a, role, _ in conversation if role == "tool"] == ["ping", "pong", "ping", "pong"]
    assert reason(result) == "MaxMessages(9): the conversation has 9 messages"


async def test_handoff_to_stops_before_the_transfer() -> None:
    triage = ChatAgent("triage", "", "", ScriptedChatClient([hand_to("human")]))
    wf = HandoffBuilder(
        [triage, HumanExecutor("human")], {"triage": ["human"]}, termination=HandoffTo("human")
    ).build()
    result = await wf.run("help")
    assert result.status is RunStatus.COMPLETED
    assert not result.pending_requests
    assert reason(result) == "HandoffTo('human'): 'triage' handed off to 'human'"


async def test_agents_without_tools_hand_off_by_message() -> None:
    async def route(messages: list[ChatMessage]) -> AgentResponse:
        call = ChatMessage("assistant", "", tool_calls=(ToolCall(id="x", name="handoff_to_b"),))
        return AgentResponse(messages=[call])

    class Router:
        name = "a"
        description = "routes"

        async def run(self, messages: list[ChatMessage]) -> AgentResponse:
            return await route(messages)

    b = FunctionAgent("b", "", lambda m: "b here")
    wf = HandoffBuilder([Router(), b], {"a": ["b"]}).build()
    assert [(a, t) for a, _, t in transcript(await wf.run("hi"))] == [
        (None, "hi"),
        ("a", ""),
        ("b", "b here"),
    ]
    wrong = HandoffBuilder([Router(), FunctionAgent("c", "", str)], {"a": ["c"]}).build()
    result = await wrong.run("hi")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error and result.error.__cause__, HandoffError)


async def test_invalid_handoffs_are_reported() -> None:
    a, b = FunctionAgent("a", "", str), FunctionAgent("b", "", str)
    with pytest.raises(GraphValidationError, match="'a' may hand off to 'z', not a participant"):
        HandoffBuilder([a, b], {"a": ["z", "b"]}).build()
    with pytest.raises(GraphValidationError, match="may not hand off to itself"):
        HandoffBuilder([a, b], {"a": ["a", "b"]}).build()
    with pytest.raises(GraphValidationError, match="start 'q' is not a participant"):
        HandoffBuilder([a, b], {"a": ["b"]}, start="q").build()
    with pytest.raises(GraphValidationError, match="not reachable"):
        HandoffBuilder([a, b], {}).build()
    with pytest.raises(GraphValidationError, match="two participants are named 'a'"):
        HandoffBuilder([a, FunctionAgent("a", "", str)]).build()


async def test_start_elsewhere_and_the_task_meets_the_condition() -> None:
    a = FunctionAgent("a", "", lambda m: "from a")
    b = FunctionAgent("b", "", lambda m: "from b")
    wf = HandoffBuilder([a, b], {"b": ["a"]}, start="b").build()
    assert transcript(await wf.run("hi"))[-1] == ("b", "assistant", "from b")
    stopped = HandoffBuilder([a, b], {"a": ["b"]}, termination=MaxMessages(1)).build()
    result = await stopped.run("hi")
    assert transcript(result) == [(None, "user", "hi")]


def test_the_example_runs_offline() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "handoff.py")],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "[triage] calls handoff_to_billing({})" in done.stdout
    assert "[billing] calls lookup_invoice" in done.stdout
    assert "(human is asked: Which app version" in done.stdout
    assert "=> 7 messages, last from tech_support" in done.stdout
