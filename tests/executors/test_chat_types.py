"""Chat vocabulary: messages, responses, truncation, parsing helpers, stream accumulation."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pydantic
import pytest

from executors import (
    ChatClient,
    ChatClientError,
    ChatConfigError,
    ChatDelta,
    ChatMessage,
    ChatParseError,
    ChatResponse,
    ChatResponseError,
    ChatRetryError,
    ChatStatusError,
    ChatStreamAccumulator,
    ChatTruncatedError,
    OpenAIChatClient,
    ScriptedChatClient,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    collect_response,
)


class Verdict(pydantic.BaseModel):
    ok: bool
    score: int


def test_message_is_positional_and_frozen() -> None:
    msg = ChatMessage("user", "hi", "alice")
    assert (msg.role, msg.text, msg.author) == ("user", "hi", "alice")
    with pytest.raises(pydantic.ValidationError):
        msg.text = "changed"  # type: ignore[misc]


def test_message_round_trips_through_json() -> None:
    call = ToolCall(id="c1", name="add", arguments='{"a": 1}')
    msg = ChatMessage("assistant", "", tool_calls=(call,))
    assert ChatMessage.model_validate_json(msg.model_dump_json()) == msg


def test_message_rejects_bad_role_and_misplaced_tool_fields() -> None:
    with pytest.raises(pydantic.ValidationError, match="role"):
        ChatMessage("robot", "hi")  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="tool_call_id"):
        ChatMessage("tool", "42")
    with pytest.raises(pydantic.ValidationError, match="only assistant"):
        ChatMessage("user", "x", tool_calls=(ToolCall(id="c", name="n"),))
    assert ChatMessage("tool", "42", tool_call_id="c1").tool_call_id == "c1"


def test_usage_adds_up() -> None:
    total = Usage(input_tokens=3, output_tokens=4) + Usage(input_tokens=10, output_tokens=1)
    assert total == Usage(input_tokens=13, output_tokens=5)
    assert total.total_tokens == 18


def test_response_message_is_the_assistant_turn() -> None:
    call = ToolCall(id="c1", name="search", arguments="{}")
    resp = ChatResponse("thinking", tool_calls=(call,), finish_reason="tool_calls")
    assert resp.message == ChatMessage("assistant", "thinking", tool_calls=(call,))
    assert not resp.truncated


def test_parse_validates_against_schema() -> None:
    resp = ChatResponse('{"ok": true, "score": 3}', finish_reason="stop")
    assert resp.parse(Verdict) == Verdict(ok=True, score=3)


def test_parse_tolerates_a_code_fence() -> None:
    resp = ChatResponse('```json\n{"ok": false, "score": 1}\n```', finish_reason="stop")
    assert resp.parse(Verdict) == Verdict(ok=False, score=1)


def test_parse_names_each_schema_problem() -> None:
    resp = ChatResponse('{"ok": "maybe"}', finish_reason="stop", model="m")
    with pytest.raises(ChatParseError) as info:
        resp.parse(Verdict)
    assert "ok:" in str(info.value)
    assert "score: Field required" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_parse_rejects_non_json() -> None:
    with pytest.raises(ChatParseError, match="not JSON"):
        ChatResponse("Sure! Here it is", finish_reason="stop").parse_json()


def test_truncated_response_is_never_parsed_as_complete() -> None:
    # Valid JSON that happens to close early must still be refused when the model was cut off.
    resp = ChatResponse('{"ok": true, "score": 3}', finish_reason="length", model="m")
    assert resp.truncated
    with pytest.raises(ChatTruncatedError, match="token limit") as info:
        resp.parse(Verdict)
    assert info.value.response is resp
    with pytest.raises(ChatTruncatedError):
        resp.parse_json()


def test_accumulator_assembles_interleaved_tool_call_fragments() -> None:
    acc = ChatStreamAccumulator()
    for delta in [
        ChatDelta(text="Let me "),
        ChatDelta(text="check."),
        ChatDelta(tool_calls=(ToolCallDelta(index=0, id="a", name="add", arguments='{"a"'),)),
        ChatDelta(tool_calls=(ToolCallDelta(index=1, id="b", name="mul"),)),
        ChatDelta(tool_calls=(ToolCallDelta(index=0, id="a", arguments=": 1}"),)),
        ChatDelta(tool_calls=(ToolCallDelta(index=1, arguments='{"x": 2}'),)),
        ChatDelta(finish_reason="tool_calls", usage=Usage(input_tokens=5, output_tokens=9)),
    ]:
        acc.add(delta)
    resp = acc.response()
    assert resp.text == "Let me check."
    assert resp.tool_calls == (
        ToolCall(id="a", name="add", arguments='{"a": 1}'),
        ToolCall(id="b", name="mul", arguments='{"x": 2}'),
    )
    assert resp.finish_reason == "tool_calls"
    assert resp.usage.total_tokens == 14


@pytest.mark.anyio
async def test_collect_response_consumes_a_stream() -> None:
    async def stream() -> AsyncIterator[ChatDelta]:
        yield ChatDelta(text="a")
        yield ChatDelta(text="b", finish_reason="length", model="m")

    resp = await collect_response(stream())
    assert (resp.text, resp.truncated, resp.model) == ("ab", True, "m")


def test_tool_spec_to_openai() -> None:
    spec = ToolSpec(name="now", description="Current time.", parameters={"type": "object"})
    assert spec.to_openai() == {
        "type": "function",
        "function": {
            "name": "now",
            "description": "Current time.",
            "parameters": {"type": "object"},
        },
    }


@pytest.mark.anyio
async def test_clients_satisfy_the_protocol() -> None:
    assert isinstance(ScriptedChatClient(["x"]), ChatClient)
    async with OpenAIChatClient("m", base_url="http://127.0.0.1:9/v1", api_key="k") as client:
        assert isinstance(client, ChatClient)
    assert not isinstance(object(), ChatClient)


def test_error_hierarchy() -> None:
    for cls in (
        ChatConfigError,
        ChatStatusError,
        ChatRetryError,
        ChatResponseError,
        ChatTruncatedError,
        ChatParseError,
    ):
        assert issubclass(cls, ChatClientError)
    assert issubclass(ChatConfigError, ValueError)
    assert issubclass(ChatParseError, ValueError)
