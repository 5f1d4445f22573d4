"""Agents on their own: the ChatAgent tool loop, truncation, approvals, FunctionAgent, protocol."""

from __future__ import annotations

import json

import pytest

from executors import (
    Agent,
    AgentResponse,
    AgentTurn,
    ApprovalRequiredError,
    ApprovalResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    FunctionAgent,
    ScriptedChatClient,
    ToolCall,
    ToolLoopLimitError,
    TruncatedResponseError,
    Usage,
    tool,
)

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


def calls(*items: tuple[str, str, str]) -> ChatResponse:
    """A scripted reply asking for tool calls ``(id, name, arguments JSON)``."""
    return ChatResponse(
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in items),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=10, output_tokens=3),
    )


def tool_messages(messages: list[ChatMessage]) -> list[str]:
    return [m.text for m in messages if m.role == "tool"]


async def test_tool_loop_runs_tools_and_answers() -> None:
    client = ScriptedChatClient([calls(("c1", "add", '{"a": 2, "b": 3}')), "2 + 3 = 5"])
    agent = ChatAgent("calc", "adds numbers", "You add.", client, tools=[add])
    response = await agent.run([ChatMessage("user", "what is 2 + 3?")])
    assert response.text == "2 + 3 = 5"
    assert response.agent_name == "calc"
    assert [m.role for m in response.messages] == ["assistant", "tool", "assistant"]
    assert all(m.author == "calc" for m in response.messages)
    assert response.messages[1] == ChatMessage("tool", "5", author="calc", tool_call_id="c1")
    assert not response.truncated
    # The model saw the instructions first, then the question, then its call and the result.
    second = client.calls[1]
    assert second[0] == ChatMessage("system", "You add.")
    assert second[1] == ChatMessage("user", "what is 2 + 3?")
    assert second[-1].role == "tool"
    assert client.tools[0] == (add.spec,)


async def test_plain_functions_become_tools_and_names_must_be_unique() -> None:
    def double(x: int) -> int:
        """Double x."""
        return 2 * x

    client = ScriptedChatClient([calls(("c1", "double", '{"x": 21}')), "42"])
    agent = ChatAgent("a", chat_client=client, tools=[double])
    assert [t.name for t in agent.tools] == ["double"]
    response = await agent.run([ChatMessage("user", "double 21")])
    assert tool_messages(response.messages) == ["42"]
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        ChatAgent("b", chat_client=client, tools=[add, add])
    with pytest.raises(TypeError, match="needs a chat_client"):
        ChatAgent("c")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"a": "two", "b": 3}', "invalid arguments for tool 'add'"),
        ('{"a": 2', "not valid JSON"),
        ('{"a": 2, "b": 3, "c": 4}', "invalid arguments for tool 'add'"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
async def test_bad_tool_arguments_go_back_to_the_model(arguments: str, expected: str) -> None:
    client = ScriptedChatClient(
        [calls(("c1", "add", arguments)), calls(("c2", "add", '{"a": 2, "b": 3}')), "5"]
    )
    agent = ChatAgent("calc", chat_client=client, tools=[add])
    response = await agent.run([ChatMessage("user", "2+3")])
    first, second = tool_messages(response.messages)
    assert first.startswith("Error:")
    assert expected in first
    assert second == "5"
    assert response.text == "5"
    # The model was shown the error before it retried.
    assert client.calls[1][-1].text == first


async def test_tool_exceptions_and_unknown_tools_go_back_to_the_model() -> None:
    client = ScriptedChatClient(
        [calls(("c1", "explode", '{"reason": "x"}'), ("c2", "nope", "{}")), "sorry"]
    )
    agent = ChatAgent("a", chat_client=client, tools=[explode, add])
    response = await agent.run([ChatMessage("user", "go")])
    boom, unknown = tool_messages(response.messages)
    assert boom == "Error: RuntimeError('boom: x')"
    assert unknown == "Error: there is no tool named 'nope'; available tools: explode, add"
    assert response.text == "sorry"


async def test_tool_loop_is_bounded() -> None:
    client = ScriptedChatClient(lambda _: calls(("c1", "add", '{"a": 1, "b": 1}')))
    agent = ChatAgent("looper", chat_client=client, tools=[add], max_tool_iterations=2)
    with pytest.raises(ToolLoopLimitError, match=r"'looper'.*max_tool_iterations=2") as info:
        await agent.run([ChatMessage("user", "go")])
    assert info.value.limit == 2
    assert info.value.agent_name == "looper"
    assert len(client.calls) == 3  # two rounds ran, the third request for tools was refused
    assert tool_messages(info.value.messages) == ["2", "2"]


async def test_zero_tool_iterations_refuses_the_first_call() -> None:
    client = ScriptedChatClient([calls(("c1", "add", "{}"))])
    agent = ChatAgent("a", chat_client=client, tools=[add], max_tool_iterations=0)
    with pytest.raises(ToolLoopLimitError):
        await agent.run([ChatMessage("user", "go")])
    with pytest.raises(ValueError, match="max_tool_iterations must be >= 0"):
        ChatAgent("a", chat_client=client, max_tool_iterations=-1)


async def test_truncated_reply_is_marked_and_refused_as_complete() -> None:
    client = ScriptedChatClient([ChatResponse("The answer is forty", finish_reason="length")])
    agent = ChatAgent("a", chat_client=client)
    response = await agent.run([ChatMessage("user", "q")])
    assert response.truncated
    assert response.text == "The answer is forty"
    with pytest.raises(TruncatedResponseError, match="token limit") as info:
        response.raise_if_truncated()
    assert info.value.response is response


async def test_truncated_tool_calls_are_not_run() -> None:
    ran: list[int] = []

    @tool
    def record(n: int) -> int:
        """Record n."""
        ran.append(n)
        return n

    cut = ChatResponse(
        tool_calls=(ToolCall(id="c1", name="record", arguments='{"n": 1'),), finish_reason="length"
    )
    agent = ChatAgent("a", chat_client=ScriptedChatClient([cut]), tools=[record])
    response = await agent.run([ChatMessage("user", "q")])
    assert response.truncated
    assert ran == []
    assert response.messages == [ChatMessage("assistant", "", author="a")]


async def test_usage_adds_up_over_model_calls() -> None:
    last = ChatResponse("5", finish_reason="stop", usage=Usage(input_tokens=20, output_tokens=1))
    client = ScriptedChatClient([calls(("c1", "add", '{"a": 2, "b": 3}')), last])
    response = await ChatAgent("a", chat_client=client, tools=[add]).run([ChatMessage("user", "q")])
    assert response.usage == Usage(input_tokens=30, output_tokens=4)


async def test_run_stream_yields_text_then_the_response() -> None:
    client = ScriptedChatClient([calls(("c1", "add", '{"a": 2, "b": 3}')), "it is 5"])
    agent = ChatAgent("a", chat_client=client, tools=[add])
    items = [item async for item in agent.run_stream([ChatMessage("user", "q")])]
    assert items[:-1] == ["it ", "is ", "5"]
    final = items[-1]
    assert isinstance(final, AgentResponse)
    assert final.text == "it is 5"
    assert tool_messages(final.messages) == ["5"]


async def test_other_agents_speak_as_users_and_their_tool_traffic_is_dropped() -> None:
    client = ScriptedChatClient(["ok"])
    agent = ChatAgent("critic", chat_client=client)
    other_call = ToolCall(id="x1", name="search", arguments="{}")
    history = [
        ChatMessage("user", "write a poem"),
        ChatMessage("assistant", "", author="writer", tool_calls=(other_call,)),
        ChatMessage("tool", "results", author="writer", tool_call_id="x1"),
        ChatMessage("assistant", "Roses are red", author="writer"),
        ChatMessage("assistant", "earlier critique", author="critic"),
    ]
    await agent.run(history)
    assert client.calls[0] == [
        ChatMessage("user", "write a poem"),
        ChatMessage("user", "Roses are red", author="writer"),
        ChatMessage("assistant", "earlier critique", author="critic"),
    ]


async def test_approval_outside_a_workflow_pauses_the_turn() -> None:
    ran: list[int] = []

    @tool(approval_mode="always_require")
    def pay(amount: int) -> str:
        """Pay someone."""
        ran.append(amount)
        return f"paid {amount}"

    client = ScriptedChatClient([calls(("c1", "pay", '{"amount": 7}')), "done"])
    agent = ChatAgent("payer", chat_client=client, tools=[pay])
    with pytest.raises(ApprovalRequiredError, match="needs approval to call pay") as info:
        await agent.run([ChatMessage("user", "pay 7")])
    assert ran == []
    (request,) = info.value.requests
    assert (request.tool_name, request.arguments, request.call_id) == ("pay", '{"amount": 7}', "c1")
    assert request.description == "Pay someone."
    turn = AgentTurn.model_validate_json(info.value.turn.model_dump_json())  # plain data
    assert turn.record_decision(request, ApprovalResponse.approve())
    assert not turn.record_decision(request, ApprovalResponse.approve())  # a duplicate
    await agent.advance(turn)
    assert turn.done
    assert ran == [7]
    assert turn.response().text == "done"


async def test_decisions_must_match_the_pending_call_exactly() -> None:
    @tool(approval_mode="always_require")
    def pay(amount: int) -> str:
        """Pay."""
        return "paid"

    client = ScriptedChatClient([calls(("c1", "pay", '{"amount": 7}'))])
    agent = ChatAgent("payer", chat_client=client, tools=[pay])
    turn = agent.start_turn([ChatMessage("user", "pay")])
    await agent.advance(turn)
    (request,) = agent.approval_requests(turn)
    forged = request.model_copy(update={"arguments": '{"amount": 7000}'})
    with pytest.raises(ValueError, match="approve the exact call"):
        turn.record_decision(forged, ApprovalResponse.approve())
    stale = request.model_copy(update={"call_id": "c9"})
    with pytest.raises(ValueError, match="no pending tool call 'c9'"):
        turn.record_decision(stale, ApprovalResponse.approve())
    assert json.loads(turn.model_dump_json())["decisions"] == {}


async def test_function_agent_sync_and_async() -> None:
    def shout(messages: list[ChatMessage]) -> str:
        return messages[-1].text.upper()

    async def whisper(messages: list[ChatMessage]) -> str:
        return messages[-1].text.lower()

    class Echo:
        async def __call__(self, messages: list[ChatMessage]) -> str:
            return messages[-1].text

    hi = [ChatMessage("user", "Hi There")]
    loud = await FunctionAgent("loud", "shouts", shout).run(hi)
    assert loud.text == "HI THERE"
    assert loud.messages == [ChatMessage("assistant", "HI THERE", author="loud")]
    assert (await FunctionAgent("quiet", fn=whisper).run(hi)).text == "hi there"
    assert (await FunctionAgent("echo", fn=Echo()).run(hi)).text == "Hi There"


async def test_function_agent_checks_its_function() -> None:
    def bad(messages: list[ChatMessage]) -> str:
        return 42  # type: ignore[return-value]

    with pytest.raises(TypeError, match="fn must return str, got int 42"):
        await FunctionAgent("bad", fn=bad).run([])
    with pytest.raises(TypeError, match="needs fn="):
        FunctionAgent("none")
    with pytest.raises(ValueError, match="non-empty name"):
        FunctionAgent("", fn=bad)


def test_agent_protocol_and_response_text() -> None:
    class Mine:
        name = "mine"
        description = "custom"

        async def run(self, messages: list[ChatMessage]) -> AgentResponse:
            return AgentResponse(messages=[ChatMessage("assistant", "hello")])

    client = ScriptedChatClient([])
    for agent in (Mine(), FunctionAgent("f", fn=str), ChatAgent("c", chat_client=client)):
        assert isinstance(agent, Agent)
    derived = AgentResponse(
        messages=[ChatMessage("assistant", "a"), ChatMessage("tool", "", tool_call_id="x")]
    )
    assert derived.text == "a"
    assert AgentResponse(messages=[ChatMessage("assistant", "a")], text="b").text == "b"
    assert AgentResponse.model_validate_json(derived.model_dump_json()) == derived


async def test_max_tokens_goes_with_every_request_of_a_turn() -> None:
    call = ToolCall(id="c1", name="add", arguments='{"a": 1, "b": 2}')
    client = ScriptedChatClient([ChatResponse("", tool_calls=(call,)), "3"])

    @tool
    def add(a: int, b: int) -> int:
        """Add.

        Args:
            a: One.
            b: Two.
        """
        return a + b

    brief = ChatAgent("brief", "adds", "Add.", client, tools=[add], max_tokens=32)
    await brief.run([ChatMessage("user", "1 + 2?")])
    assert client.limits == [32, 32]
    streamed = ScriptedChatClient(["ok"])
    async for _ in ChatAgent("s", "", "", streamed, max_tokens=8).run_stream(
        [ChatMessage("user", "hi")]
    ):
        pass
    assert streamed.limits == [8]
    assert ChatAgent("d", "", "", streamed).max_tokens is None
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        ChatAgent("bad", "", "", streamed, max_tokens=0)
