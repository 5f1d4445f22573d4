"""Sequential: each participant once, in order, seeing the conversation so far."""

from __future__ import annotations

import pytest

from builders import ConversationFinished, GroupChatBuilder, SequentialBuilder
from executors import ChatAgent, ChatMessage, FunctionAgent, HumanExecutor, ScriptedChatClient
from workflow import GraphValidationError, RunResult, RunStatus, executor

pytestmark = pytest.mark.anyio


def counter(name: str) -> FunctionAgent:
    return FunctionAgent(name, f"{name} speaks", lambda m: f"{name} #{len(m)}")


def transcript(result: RunResult) -> list[tuple[str | None, str]]:
    assert result.status is RunStatus.COMPLETED, result.error
    (conversation,) = result.outputs
    return [(m.author, m.text) for m in conversation]


async def test_each_participant_answers_once_in_order() -> None:
    wf = SequentialBuilder([counter("a"), counter("b"), counter("c")]).build()
    result = await wf.run("the task")
    assert transcript(result) == [(None, "the task"), ("a", "a #1"), ("b", "b #2"), ("c", "c #3")]
    (event,) = [e for e in result.events if isinstance(e, ConversationFinished)]
    assert event.reason == "every participant has spoken (3 turns)"
    assert event.executor_id == "c"
    assert wf.graph.successors["a"] == {"b"}
    assert wf.graph.successors["c"] == frozenset()


async def test_models_see_everything_said_before_them() -> None:
    client = ScriptedChatClient(["a draft", "a review"])
    writer = ChatAgent("writer", "writes", "Write.", client)
    reviewer = ChatAgent("reviewer", "reviews", "Review.", client)
    result = await SequentialBuilder([writer, reviewer]).build().run("a haiku")
    assert transcript(result)[1:] == [("writer", "a draft"), ("reviewer", "a review")]
    seen_by_reviewer = client.calls[1]
    assert [(m.role, m.text) for m in seen_by_reviewer] == [
        ("system", "Review."),
        ("user", "a haiku"),
        ("user", "a draft"),  # another agent's reply, shown as input to this one
    ]


async def test_functions_and_executors_that_take_text_are_participants() -> None:
    def echo(messages: list[ChatMessage]) -> str:
        return f"echo of {messages[-1].text}"

    @executor(id="shout")
    def shout(text: str) -> str:
        return text.upper()

    result = await SequentialBuilder([echo, shout]).build().run(ChatMessage("user", "hi"))
    assert transcript(result) == [(None, "hi"), ("echo", "echo of hi"), ("shout", "ECHO OF HI")]


async def test_a_person_in_line_pauses_or_ends_the_sequence() -> None:
    wf = SequentialBuilder([counter("a"), HumanExecutor("you"), counter("b")]).build()
    first = await wf.run("t", run_id="s1")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    done = await wf.resume("s1", responses={request.request_id: "fine"})
    assert transcript(done) == [(None, "t"), ("a", "a #1"), ("you", "fine"), ("b", "b #3")]
    again = await wf.run("t", run_id="s2")
    stopped = await wf.resume("s2", responses={again.pending_requests[0].request_id: "exit"})
    assert transcript(stopped) == [(None, "t"), ("a", "a #1")]


async def test_a_group_chat_nested_as_a_step() -> None:
    debate = GroupChatBuilder([counter("pro"), counter("con")], max_rounds=2, name="debate")
    wf = SequentialBuilder([counter("intro"), debate.build(), counter("judge")]).build()
    assert transcript(await wf.run("topic")) == [
        (None, "topic"),
        ("intro", "intro #1"),
        ("pro", "pro #2"),
        ("con", "con #3"),
        ("judge", "judge #4"),
    ]


async def test_invalid_participants_are_reported() -> None:
    with pytest.raises(GraphValidationError, match="two participants are named 'a'"):
        SequentialBuilder([counter("a"), counter("a")]).build()

    @executor(id="numbers")
    def numbers(value: int) -> int:
        return value

    with pytest.raises(GraphValidationError, match="accepts none of"):
        SequentialBuilder([numbers]).build()
    with pytest.raises(TypeError, match="cannot take part"):
        SequentialBuilder([42]).build()


async def test_a_single_participant() -> None:
    result = await SequentialBuilder([counter("solo")]).build().run("t")
    assert transcript(result) == [(None, "t"), ("solo", "solo #1")]
