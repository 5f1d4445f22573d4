"""Two-agent chat: ``a`` answers first, then they alternate, each at most ``max_turns`` times."""

from __future__ import annotations

import pytest

from builders import ConversationFinished, TextMention, two_agent_chat, two_agent_workflow
from executors import ChatAgent, FunctionAgent, HumanExecutor, ScriptedChatClient
from workflow import GraphValidationError, InMemoryCheckpointStore, RunResult, RunStatus

pytestmark = pytest.mark.anyio


def counter(name: str) -> FunctionAgent:
    return FunctionAgent(name, "", lambda m: f"{name} #{len(m)}")


def transcript(result: RunResult) -> list[tuple[str | None, str]]:
    assert result.status is RunStatus.COMPLETED, result.error
    (conversation,) = result.outputs
    return [(m.author, m.text) for m in conversation]


def reason(result: RunResult) -> str:
    (event,) = [e for e in result.events if isinstance(e, ConversationFinished)]
    return event.reason


async def test_they_alternate_and_each_speaks_at_most_max_turns_times() -> None:
    result = await two_agent_chat(counter("a"), counter("b"), "hello", max_turns=2)
    assert transcript(result) == [
        (None, "hello"),
        ("a", "a #1"),
        ("b", "b #2"),
        ("a", "a #3"),
        ("b", "b #4"),
    ]
    assert reason(result) == "max_turns=2: 'a' has had its 2 turns"
    one = await two_agent_chat(counter("a"), counter("b"), "hello", max_turns=1)
    assert [author for author, _ in transcript(one)] == [None, "a", "b"]


async def test_a_termination_condition_ends_it_early() -> None:
    client = ScriptedChatClient(["let me think", "done. TERMINATE"])
    solver = ChatAgent("solver", "", "Solve it.", client)
    result = await two_agent_chat(
        solver, counter("critic"), "2+2?", max_turns=5, termination=TextMention("TERMINATE")
    )
    assert transcript(result)[-1] == ("solver", "done. TERMINATE")
    assert reason(result) == "TextMention('TERMINATE'): said by 'solver'"


async def test_a_person_as_b_is_asked_and_can_end_the_chat() -> None:
    store = InMemoryCheckpointStore()
    wf = two_agent_workflow(counter("bot"), HumanExecutor("me"), checkpoint_store=store)
    first = await wf.run("hi", run_id="p1")
    (request,) = first.pending_requests
    second = await wf.resume("p1", responses={request.request_id: "more"})
    (request,) = second.pending_requests
    # the same chat, rebuilt (same graph): a store-backed run resumes anywhere
    rebuilt = two_agent_workflow(counter("bot"), HumanExecutor("me"), checkpoint_store=store)
    done = await rebuilt.resume("p1", responses={request.request_id: "exit"})
    assert transcript(done) == [(None, "hi"), ("bot", "bot #1"), ("me", "more"), ("bot", "bot #3")]
    assert reason(done) == "'me' ended the conversation"


async def test_the_workflow_is_reusable_and_validated() -> None:
    wf = two_agent_workflow(counter("a"), counter("b"), max_turns=1)
    assert wf.graph.successors["a"] == {"b"}
    assert wf.graph.successors["b"] == {"a"}
    first, second = await wf.run("x"), await wf.run("y")
    assert transcript(first)[0] == (None, "x")
    assert transcript(second)[0] == (None, "y")
    with pytest.raises(GraphValidationError, match="two participants are named 'a'"):
        two_agent_workflow(counter("a"), counter("a"))
    with pytest.raises(ValueError, match="max_turns"):
        two_agent_workflow(counter("a"), counter("b"), max_turns=0)
