"""``HumanExecutor``: AutoGen's ALWAYS / TERMINATE / NEVER rules, in a chat with a bot."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from builders import WorkflowBuilder
from executors import (
    AgentResponded,
    ChatMessage,
    CodeResult,
    ConversationReset,
    FunctionAgent,
    HumanExecutor,
    HumanInputRequest,
)
from workflow import PendingRequest, RunResult, RunStatus, Workflow, WorkflowContext, executor

pytestmark = pytest.mark.anyio


def chat(bot_lines: Iterable[str], **human_options: Any) -> Workflow:
    """``bot`` speaks its lines in order; ``user`` answers each per its input mode."""
    lines = iter(bot_lines)
    bot = FunctionAgent("bot", "scripted", lambda messages: next(lines))
    human = HumanExecutor("user", **human_options)
    return (
        WorkflowBuilder(start=bot, max_supersteps=50)
        .add_edge(bot, human)
        .add_edge(human, bot)
        .build()
    )


def said(result: RunResult, who: str) -> list[str]:
    return [
        e.response.text
        for e in result.events
        if isinstance(e, AgentResponded) and e.agent_name == who
    ]


def only_request(result: RunResult) -> PendingRequest:
    assert result.status is RunStatus.AWAITING_INPUT, result.error
    (request,) = result.pending_requests
    assert isinstance(request.payload, HumanInputRequest)
    assert request.response_type is str
    return request


def transcript(result: RunResult) -> list[tuple[str | None, str]]:
    (conversation,) = result.outputs
    return [(m.author, m.text) for m in conversation]


async def test_never_auto_replies_until_terminate() -> None:
    wf = chat(
        ["one", "two", "done TERMINATE"], human_input_mode="NEVER", default_auto_reply="go on"
    )
    result = await wf.run("start")
    assert result.status is RunStatus.COMPLETED
    assert said(result, "user") == ["go on", "go on"]
    assert transcript(result) == [
        ("bot", "one"),
        ("user", "go on"),
        ("bot", "two"),
        ("user", "go on"),
        ("bot", "done TERMINATE"),
    ]


async def test_never_stops_at_the_auto_reply_limit() -> None:
    wf = chat(
        ["a", "b", "c", "d"],
        human_input_mode="NEVER",
        max_consecutive_auto_reply=2,
        auto_reply=lambda conversation: f"seen {len(conversation)}",
    )
    result = await wf.run("start")
    assert said(result, "user") == ["seen 1", "seen 3"]
    assert transcript(result)[-1] == ("bot", "c")


async def test_always_asks_every_turn() -> None:
    wf = chat(["hello", "how are you?", "bye TERMINATE"], human_input_mode="ALWAYS")
    first = only_request(await wf.run("start", run_id="a1"))
    payload = first.payload
    assert payload.reason == "always"
    assert not payload.is_termination
    assert payload.participant == "user"
    assert payload.conversation == [ChatMessage("assistant", "hello", author="bot")]
    assert "type 'exit'" in payload.prompt
    second = only_request(await wf.resume("a1", responses={first.request_id: "hi bot"}))
    assert [m.text for m in second.payload.conversation] == ["hello", "hi bot", "how are you?"]
    third = only_request(await wf.resume("a1", responses={second.request_id: "fine"}))
    assert third.payload.reason == "termination"
    assert third.payload.is_termination
    done = await wf.resume("a1", responses={third.request_id: ""})  # enter on TERMINATE: end
    assert done.status is RunStatus.COMPLETED
    assert [text for _, text in transcript(done)] == [
        "hello",
        "hi bot",
        "how are you?",
        "fine",
        "bye TERMINATE",
    ]


async def test_always_skip_auto_replies_and_exit_ends() -> None:
    wf = chat(["q1", "q2"], human_input_mode="ALWAYS", default_auto_reply="(auto)")
    first = only_request(await wf.run("start", run_id="a2"))
    second = only_request(await wf.resume("a2", responses={first.request_id: ""}))
    assert second.payload.conversation[-2] == ChatMessage("user", "(auto)", author="user")
    done = await wf.resume("a2", responses={second.request_id: " exit "})
    assert done.status is RunStatus.COMPLETED
    assert done.outputs[0][-1].text == "q2"


async def test_terminate_mode_asks_only_at_termination() -> None:
    wf = chat(
        ["one", "two TERMINATE", "three TERMINATE"],
        human_input_mode="TERMINATE",
        default_auto_reply="continue",
    )
    asked = only_request(await wf.run("start", run_id="t1"))
    assert asked.payload.reason == "termination"
    assert asked.payload.is_termination
    assert [m.text for m in asked.payload.conversation] == ["one", "continue", "two TERMINATE"]
    again = only_request(await wf.resume("t1", responses={asked.request_id: "one more thing"}))
    done = await wf.resume("t1", responses={again.request_id: ""})
    assert done.status is RunStatus.COMPLETED
    assert said(done, "user") == []  # this resumption only ended the chat
    assert [text for _, text in transcript(done)][-2:] == ["one more thing", "three TERMINATE"]


async def test_terminate_mode_asks_at_the_auto_reply_limit() -> None:
    wf = chat(
        ["a", "b", "c", "d TERMINATE"],
        human_input_mode="TERMINATE",
        max_consecutive_auto_reply=1,
        default_auto_reply="ok",
    )
    first = only_request(await wf.run("start", run_id="t2"))
    assert first.payload.reason == "auto_reply_limit"
    assert not first.payload.is_termination
    # Enter at the limit on a normal message: one more auto-reply, then asked again.
    second = only_request(await wf.resume("t2", responses={first.request_id: ""}))
    assert second.payload.reason == "auto_reply_limit"
    # A real answer resets the count: the next message is auto-replied without asking.
    third = only_request(await wf.resume("t2", responses={second.request_id: "keep going"}))
    assert third.payload.reason == "termination"
    assert [m.text for m in third.payload.conversation] == [
        "a", "ok", "b", "ok", "c", "keep going", "d TERMINATE",
    ]  # fmt: skip


async def test_code_results_are_the_auto_reply() -> None:
    @executor
    def run(task: str) -> CodeResult:
        return CodeResult(exit_code=0, stdout="55\n", stderr="")

    human = HumanExecutor("proxy", human_input_mode="NEVER", max_consecutive_auto_reply=1)
    wf = WorkflowBuilder(start=run).add_edge(run, human).build()
    result = await wf.run("fib(10)")
    assert said(result, "proxy") == ["exit code: 0\nstdout:\n55"]
    (reply,) = result.outputs  # at a sink, the reply (not a conversation: it did not end)
    assert reply.agent_name == "proxy"
    assert reply.messages[0].role == "user"


async def test_a_code_result_brings_the_message_it_answers() -> None:
    asked = ChatMessage("assistant", "```python\nprint(fib(10))\n```", author="assistant")

    @executor
    def run(task: str) -> CodeResult:
        return CodeResult(exit_code=0, stdout="55\n", stderr="", in_reply_to=(asked,))

    human = HumanExecutor("proxy", human_input_mode="ALWAYS")
    wf = WorkflowBuilder(start=run).add_edge(run, human).build()
    request = only_request(await wf.run("fib(10)", run_id="c1"))
    assert [(m.author, m.text) for m in request.payload.conversation] == [
        ("assistant", asked.text),
        ("run", "exit code: 0\nstdout:\n55"),
    ]
    done = await wf.resume("c1", responses={request.request_id: ""})  # "" : the auto-reply
    assert said(done, "proxy") == ["exit code: 0\nstdout:\n55"]


async def test_a_reset_forgets_the_conversation_and_the_auto_reply_count() -> None:
    seen: list[list[str]] = []

    def reply(conversation: list[ChatMessage]) -> str:
        seen.append([m.text for m in conversation])
        return "ok"

    @executor
    def talk(task: str, ctx: WorkflowContext[str | ConversationReset]) -> None:
        ctx.send_message("one")
        ctx.send_message(ConversationReset(reason="start over"))
        ctx.send_message("two")

    human = HumanExecutor(
        "proxy", human_input_mode="NEVER", max_consecutive_auto_reply=1, auto_reply=reply
    )
    result = await WorkflowBuilder(start=talk).add_edge(talk, human).build().run("go")
    # At the limit after "one", "two" would end the chat; after the reset it is answered.
    assert said(result, "proxy") == ["ok", "ok"]
    assert seen == [["one"], ["two"]]


async def test_custom_termination_and_validation() -> None:
    wf = chat(["bye!"], human_input_mode="NEVER", is_termination_msg=lambda m: "bye" in m.text)
    result = await wf.run("start")
    assert transcript(result) == [("bot", "bye!")]
    with pytest.raises(ValueError, match="human_input_mode must be one of"):
        HumanExecutor(human_input_mode="SOMETIMES")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_consecutive_auto_reply must be >= 0"):
        HumanExecutor(max_consecutive_auto_reply=-1)
    assert HumanExecutor().kind == "human"


async def test_replies_must_be_text() -> None:
    wf = chat(["hello"], human_input_mode="ALWAYS")
    request = only_request(await wf.run("start", run_id="s1"))
    with pytest.raises(TypeError, match="must be str"):
        await wf.resume("s1", responses={request.request_id: 42})
    assert (await wf.resume("s1", responses={request.request_id: "exit"})).outputs
