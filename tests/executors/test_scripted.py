"""``ScriptedChatClient``: deterministic replies, recorded calls, word-by-word streaming."""

from __future__ import annotations

import contextlib

import pytest

from executors import (
    ChatClientError,
    ChatMessage,
    ChatResponse,
    ScriptedChatClient,
    ToolCall,
    Usage,
    collect_response,
    tool,
)


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@pytest.mark.anyio
async def test_replies_in_order_and_calls_recorded() -> None:
    client = ScriptedChatClient(["first", "second"], model="fake")
    r1 = await client.get_response([ChatMessage("user", "one two three")], tools=[add.spec])
    r2 = await client.get_response([ChatMessage("user", "again")])
    assert (r1.text, r2.text) == ("first", "second")
    assert r1.finish_reason == "stop"
    assert r1.model == "fake"
    assert r1.usage == Usage(input_tokens=3, output_tokens=1)
    assert client.calls == [[ChatMessage("user", "one two three")], [ChatMessage("user", "again")]]
    assert client.tools == [(add.spec,), ()]
    assert client.remaining == 0


@pytest.mark.anyio
async def test_exhausted_script_names_the_count() -> None:
    client = ScriptedChatClient(["only", "two"])
    await client.get_response([ChatMessage("user", "a")])
    await client.get_response([ChatMessage("user", "b")])
    with pytest.raises(ChatClientError, match=r"2 scripted, and call #3"):
        await client.get_response([ChatMessage("user", "c")])


@pytest.mark.anyio
async def test_scripted_tool_calls_are_returned_as_given() -> None:
    call = ToolCall(id="c1", name="add", arguments='{"a": 2, "b": 3}')
    client = ScriptedChatClient([ChatResponse(tool_calls=(call,), finish_reason="tool_calls")])
    resp = await client.get_response([ChatMessage("user", "2+3?")])
    assert resp.tool_calls == (call,)
    assert (await add.invoke(resp.tool_calls[0].arguments)).text == "5"


@pytest.mark.anyio
async def test_reply_functions_sync_and_async() -> None:
    def shout(messages: list[ChatMessage]) -> str:
        return messages[-1].text.upper()

    async def count(messages: list[ChatMessage]) -> ChatResponse:
        return ChatResponse(str(len(messages)), finish_reason="stop")

    assert (await ScriptedChatClient(shout).get_response([ChatMessage("user", "hey")])).text == (
        "HEY"
    )
    msgs = [ChatMessage("system", "s"), ChatMessage("user", "u")]
    assert (await ScriptedChatClient(count).get_response(msgs)).text == "2"


def test_a_bare_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="wrap it in a list"):
        ScriptedChatClient("hello")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_streaming_is_word_by_word_and_deterministic() -> None:
    text = "Hello  brave\nnew world "
    chunks: list[list[str]] = []
    for _ in range(2):
        client = ScriptedChatClient([text])
        stream = client.get_streaming_response([ChatMessage("user", "hi")])
        async with contextlib.aclosing(stream):
            deltas = [d async for d in stream]
        chunks.append([d.text for d in deltas[:-1]])
        assert deltas[-1].finish_reason == "stop"
        assert deltas[-1].usage == Usage(input_tokens=1, output_tokens=4)
    assert chunks[0] == chunks[1] == ["Hello  ", "brave\n", "new ", "world "]
    assert "".join(chunks[0]) == text


@pytest.mark.anyio
async def test_streamed_tool_calls_reassemble() -> None:
    calls = (
        ToolCall(id="c1", name="add", arguments='{"a": 1, "b": 2}'),
        ToolCall(id="c2", name="add", arguments='{"a": 3, "b": 4}'),
    )
    scripted = ChatResponse("Adding.", tool_calls=calls, finish_reason="tool_calls")
    client = ScriptedChatClient([scripted])
    resp = await collect_response(client.get_streaming_response([ChatMessage("user", "go")]))
    assert resp.text == "Adding."
    assert resp.tool_calls == calls
    assert resp.finish_reason == "tool_calls"
