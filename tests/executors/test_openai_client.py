"""The real ``OpenAIChatClient`` end to end against a local OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import pydantic
import pytest

from executors import (
    ChatConfigError,
    ChatDelta,
    ChatMessage,
    ChatResponseError,
    ChatRetryError,
    ChatStatusError,
    ChatTruncatedError,
    OpenAIChatClient,
    ToolCall,
    Usage,
    collect_response,
    tool,
)

from .openai_server import (
    Behaviour,
    Disconnect,
    Malformed,
    OpenAITestServer,
    Reply,
    Reset,
    Stall,
    Status,
)

KEY = "sk-test-LEAKCHECK-7f3a9c1e5b"
MODEL = "test-model"
HI = [ChatMessage("user", "hi")]


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        yield srv
    assert srv.errors == []


def make_client(srv: OpenAITestServer, **overrides: Any) -> OpenAIChatClient:
    options: dict[str, Any] = {
        "api_key": KEY,
        "timeout": 5.0,
        "max_retries": 3,
        "initial_backoff": 0.01,
        "max_backoff": 0.05,
    }
    options.update(overrides)
    return OpenAIChatClient(MODEL, base_url=srv.base_url, **options)


async def collect_deltas(client: OpenAIChatClient) -> list[ChatDelta]:
    stream = client.get_streaming_response(HI)
    async with contextlib.aclosing(stream):
        return [delta async for delta in stream]


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


class Verdict(pydantic.BaseModel):
    ok: bool
    reason: str


# --------------------------------------------------------------------------- happy paths


@pytest.mark.anyio
async def test_plain_reply_usage_and_request(server: OpenAITestServer) -> None:
    server.enqueue(Reply("Hello there", prompt_tokens=11, completion_tokens=2))
    async with make_client(server) as client:
        resp = await client.get_response(
            [ChatMessage("system", "be brief"), ChatMessage("user", "hi")]
        )
    assert resp.text == "Hello there"
    assert resp.usage == Usage(input_tokens=11, output_tokens=2)
    assert resp.finish_reason == "stop"
    assert resp.model == MODEL
    assert not resp.truncated
    (request,) = server.completion_requests()
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body["model"] == MODEL
    assert request.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    assert "tools" not in request.body
    assert not request.body.get("stream")


@pytest.mark.anyio
async def test_message_mapping(server: OpenAITestServer) -> None:
    call = ToolCall(id="call_1", name="add", arguments='{"a": 1, "b": 2}')
    messages = [
        ChatMessage("user", "add", author="alice_1"),
        ChatMessage("user", "hello", author="Dr. Who"),  # not a valid OpenAI name: dropped
        ChatMessage("assistant", "", author="calc", tool_calls=(call,)),
        ChatMessage("tool", "3", tool_call_id="call_1"),
    ]
    async with make_client(server) as client:
        await client.get_response(messages)
    sent = server.completion_requests()[0].body["messages"]
    assert sent[0] == {"role": "user", "content": "add", "name": "alice_1"}
    assert sent[1] == {"role": "user", "content": "hello"}
    assert sent[2] == {
        "role": "assistant",
        "content": "",
        "name": "calc",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
            }
        ],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": "call_1", "content": "3"}


@pytest.mark.anyio
async def test_tool_call_round_trip(server: OpenAITestServer) -> None:
    server.enqueue(
        Reply(None, tool_calls=(("call_9", "add", '{"a": 20, "b": 22}'),)),
        Reply("The answer is 42."),
    )
    history = [ChatMessage("user", "What is 20 + 22?")]
    async with make_client(server) as client:
        first = await client.get_response(history, tools=[add.spec])
        assert first.finish_reason == "tool_calls"
        assert first.text == ""
        assert first.tool_calls == (
            ToolCall(id="call_9", name="add", arguments='{"a": 20, "b": 22}'),
        )
        outcome = await add.invoke(first.tool_calls[0].arguments)
        history += [first.message, ChatMessage("tool", outcome.text, tool_call_id="call_9")]
        second = await client.get_response(history, tools=[add.spec])
    assert second.text == "The answer is 42."
    req1, req2 = server.completion_requests()
    assert req1.body["tools"] == [add.to_openai()]
    assert req2.body["messages"][-1] == {"role": "tool", "tool_call_id": "call_9", "content": "42"}
    assert req2.body["messages"][-2]["tool_calls"][0]["id"] == "call_9"


@pytest.mark.anyio
async def test_structured_output_request_and_parse(server: OpenAITestServer) -> None:
    server.enqueue(Reply('{"ok": true, "reason": "fine"}'), Reply("{}"))
    async with make_client(server) as client:
        resp = await client.get_response(HI, response_format=Verdict)
        await client.get_response(HI, response_format={"type": "json_object"})
    assert resp.parse(Verdict) == Verdict(ok=True, reason="fine")
    req1, req2 = server.completion_requests()
    fmt = req1.body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Verdict"
    assert fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["ok", "reason"]
    assert req2.body["response_format"] == {"type": "json_object"}


@pytest.mark.anyio
async def test_extra_body_is_merged(server: OpenAITestServer) -> None:
    async with make_client(server, extra_body={"top_k": 5}) as client:
        await client.get_response(HI)
    assert server.completion_requests()[0].body["top_k"] == 5


@pytest.mark.anyio
async def test_streaming_text(server: OpenAITestServer) -> None:
    server.enqueue(Reply("one two three", prompt_tokens=4, completion_tokens=3))
    async with make_client(server) as client:
        deltas = await collect_deltas(client)
    assert [d.text for d in deltas[:-1]] == ["one ", "two ", "three"]
    final = deltas[-1]
    assert (final.finish_reason, final.usage, final.model) == (
        "stop",
        Usage(input_tokens=4, output_tokens=3),
        MODEL,
    )
    assert all(d.finish_reason is None for d in deltas[:-1])
    body = server.completion_requests()[0].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


@pytest.mark.anyio
async def test_streaming_tool_call_fragments(server: OpenAITestServer) -> None:
    args_a, args_b = '{"a": 1, "b": 2}', '{"a": 30, "b": 12}'
    server.enqueue(Reply("", tool_calls=(("c1", "add", args_a), ("c2", "add", args_b))))
    async with make_client(server) as client:
        deltas = await collect_deltas(client)
        resp = await collect_response(_replay(deltas))
    # Arguments really arrived in pieces, and were reassembled by index.
    fragments = [f for d in deltas for f in d.tool_calls if f.arguments]
    assert len(fragments) > 2
    assert resp.tool_calls == (
        ToolCall(id="c1", name="add", arguments=args_a),
        ToolCall(id="c2", name="add", arguments=args_b),
    )
    assert resp.finish_reason == "tool_calls"


async def _replay(deltas: list[ChatDelta]) -> Any:
    for delta in deltas:
        yield delta


@pytest.mark.anyio
async def test_custom_http_client_is_used() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(
            200,
            json={
                "model": "mock",
                "choices": [{"message": {"content": "mocked"}, "finish_reason": "stop"}],
            },
        )

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    async with OpenAIChatClient(
        MODEL, base_url="http://mock.invalid/v1", api_key=KEY, http_client=http
    ) as client:
        resp = await client.get_response(HI)
    assert resp.text == "mocked"
    assert seen == ["http://mock.invalid/v1/chat/completions"]


# --------------------------------------------------------------------------- faults


@pytest.mark.anyio
@pytest.mark.parametrize(
    "fault",
    [
        Status(429),
        Status(408),
        Status(500),
        Status(503),
        Reset(),
        Malformed(),
        Malformed(b"<html>Bad gateway</html>", "text/html"),
    ],
    ids=lambda f: type(f).__name__ + str(getattr(f, "code", getattr(f, "content_type", ""))),
)
async def test_transient_faults_are_retried(server: OpenAITestServer, fault: Behaviour) -> None:
    server.enqueue(fault, Reply("recovered"))
    async with make_client(server) as client:
        resp = await client.get_response(HI)
    assert resp.text == "recovered"
    assert len(server.completion_requests()) == 2


@pytest.mark.anyio
async def test_stall_times_out_and_retries(
    server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="executors._openai")
    server.enqueue(Stall(10), Reply("late but fine"))
    async with make_client(server, timeout=0.3) as client:
        resp = await client.get_response(HI)
    assert resp.text == "late but fine"
    (warning,) = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert "attempt 1/4 failed (timed out after 0.3s)" in warning  # not a 10 s wait
    assert len(server.completion_requests()) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_fail_at_once(server: OpenAITestServer, status: int) -> None:
    server.enqueue(Status(status, message="nope"), Reply("never reached"))
    async with make_client(server) as client:
        with pytest.raises(ChatStatusError) as info:
            await client.get_response(HI)
    err = info.value
    assert (err.status_code, err.attempts, err.model) == (status, 1, MODEL)
    assert f"HTTP {status}" in str(err)
    assert repr(MODEL) in str(err)
    assert "nope" in str(err)
    assert len(server.completion_requests()) == 1


@pytest.mark.anyio
async def test_exhausted_retries_raise_typed_error(server: OpenAITestServer) -> None:
    server.enqueue(Status(503), Status(502), Status(503), Reply("too late"))
    async with make_client(server, max_retries=2) as client:
        with pytest.raises(ChatRetryError) as info:
            await client.get_response(HI)
    err = info.value
    assert (err.status_code, err.attempts) == (503, 3)
    assert "after 3 attempts" in str(err)
    assert "HTTP 503" in str(err)
    assert repr(MODEL) in str(err)
    assert len(server.completion_requests()) == 3


@pytest.mark.anyio
async def test_sdk_does_not_retry_behind_our_back(server: OpenAITestServer) -> None:
    server.enqueue(Status(503), Reset(), Reply("no"))
    async with make_client(server, max_retries=0) as client:
        with pytest.raises(ChatRetryError) as info:
            await client.get_response(HI)
    assert info.value.attempts == 1
    assert len(server.completion_requests()) == 1


@pytest.mark.anyio
async def test_connection_failures_exhaust_with_no_status(server: OpenAITestServer) -> None:
    server.enqueue(Reset(), Reset())
    async with make_client(server, max_retries=1) as client:
        with pytest.raises(ChatRetryError, match="connection failed") as info:
            await client.get_response(HI)
    assert (info.value.status_code, info.value.attempts) == (None, 2)


@pytest.mark.anyio
def retry_delays(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The delays the client chose before each retry, as its warning states them."""
    return [
        record.getMessage().rpartition("retrying in ")[2]
        for record in caplog.records
        if "retrying in" in record.getMessage()
    ]


@pytest.mark.anyio
async def test_retry_after_is_honoured(
    server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="executors._openai")
    server.enqueue(Status(429, retry_after=0.4), Reply("ok"))
    async with make_client(server, initial_backoff=0.0, max_backoff=5.0) as client:
        assert (await client.get_response(HI)).text == "ok"
    assert retry_delays(caplog) == ["0.40s"]  # the server's wait, not the 0 s backoff
    assert len(server.completion_requests()) == 2


@pytest.mark.anyio
async def test_retry_after_is_capped_by_max_backoff(
    server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="executors._openai")
    server.enqueue(Status(503, retry_after=60), Reply("ok"))
    async with make_client(server, max_backoff=0.05) as client:
        assert (await client.get_response(HI)).text == "ok"
    assert retry_delays(caplog) == ["0.05s"]  # capped, not the server's 60 s


@pytest.mark.anyio
async def test_malformed_body_is_retried_only_once(server: OpenAITestServer) -> None:
    server.enqueue(Malformed(), Malformed(b'{"object": "not a completion"}'), Reply("unused"))
    async with make_client(server, max_retries=5) as client:
        with pytest.raises(ChatResponseError, match="did not return a chat completion"):
            await client.get_response(HI)
    assert len(server.completion_requests()) == 2


@pytest.mark.anyio
async def test_truncation_is_reported(server: OpenAITestServer) -> None:
    server.enqueue(
        Reply('{"ok": true, "reason": "cut', finish_reason="length"),
        Reply("partial stream", finish_reason="length"),
    )
    async with make_client(server) as client:
        resp = await client.get_response(HI, response_format=Verdict)
        streamed = await collect_response(client.get_streaming_response(HI))
    assert resp.truncated
    with pytest.raises(ChatTruncatedError):
        resp.parse(Verdict)
    assert streamed.truncated
    assert streamed.text == "partial stream"


@pytest.mark.anyio
async def test_stream_cut_after_output_raises(server: OpenAITestServer) -> None:
    server.enqueue(Disconnect(Reply("one two three four five"), after_chunks=3), Reply("x"))
    received: list[str] = []

    async def consume(client: OpenAIChatClient) -> None:
        stream = client.get_streaming_response(HI)
        async with contextlib.aclosing(stream):
            async for delta in stream:
                received.append(delta.text)

    async with make_client(server) as client:
        with pytest.raises(ChatResponseError, match="broke after 2 chunks"):
            await consume(client)
    assert received == ["one ", "two "]
    assert len(server.completion_requests()) == 1  # never silently restarted


@pytest.mark.anyio
async def test_stream_cut_before_output_is_retried(server: OpenAITestServer) -> None:
    server.enqueue(Disconnect(after_chunks=1), Status(500), Reply("whole answer"))
    async with make_client(server) as client:
        deltas = await collect_deltas(client)
    assert "".join(d.text for d in deltas) == "whole answer"
    assert len(server.completion_requests()) == 3


@pytest.mark.anyio
async def test_malformed_stream_chunk_after_output_raises(server: OpenAITestServer) -> None:
    server.enqueue(Reply("a b c d", malformed_chunk_after=3))
    async with make_client(server) as client:
        with pytest.raises(ChatResponseError, match="broke after"):
            await collect_deltas(client)


@pytest.mark.anyio
async def test_stream_error_event_before_output_is_retried(server: OpenAITestServer) -> None:
    server.enqueue(Reply("lost", error_event_after=1), Reply("second try"))
    async with make_client(server) as client:
        deltas = await collect_deltas(client)
    assert "".join(d.text for d in deltas) == "second try"
    assert len(server.completion_requests()) == 2


@pytest.mark.anyio
async def test_stream_error_event_after_output_names_the_error(server: OpenAITestServer) -> None:
    server.enqueue(Reply("a b c", error_event_after=2))
    async with make_client(server) as client:
        with pytest.raises(ChatResponseError, match="model overloaded"):
            await collect_deltas(client)


# --------------------------------------------------------------------------- secrets and config


@pytest.mark.anyio
async def test_api_key_never_leaks(
    server: OpenAITestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.enqueue(
        Status(401, echo_authorization=True),  # a server that echoes the key back
        Status(503, echo_authorization=True),
        Status(503, echo_authorization=True),
    )
    client = make_client(server, max_retries=1)
    texts = [str(client), repr(client), repr(vars(client))]
    async with client:
        for expected in (ChatStatusError, ChatRetryError):
            with pytest.raises(expected) as info:
                await client.get_response(HI)
            err: BaseException | None = info.value
            while err is not None:  # the whole chain a traceback would print
                texts += [str(err), repr(err)]
                err = err.__cause__ or err.__context__
    texts += [record.getMessage() for record in caplog.records]
    # The key did reach the server (the test is not vacuous) and was echoed back ...
    assert server.completion_requests()[0].headers["authorization"] == f"Bearer {KEY}"
    assert any("***" in text for text in texts)
    # ... yet no message, repr or log line shows it.
    leaks = [text for text in texts if KEY in text]
    assert leaks == []


@pytest.mark.anyio
async def test_env_vars_are_the_fallback(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    async with OpenAIChatClient(MODEL, initial_backoff=0.01) as client:
        assert client.base_url == server.base_url
        await client.get_response(HI)
    assert server.completion_requests()[0].headers["authorization"] == "Bearer sk-from-env"


def test_missing_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ChatConfigError, match="OPENAI_API_KEY"):
        OpenAIChatClient(MODEL)


@pytest.mark.anyio
async def test_local_server_needs_no_key(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with OpenAIChatClient(MODEL, base_url=server.base_url) as client:
        await client.get_response(HI)
    auth = server.completion_requests()[0].headers["authorization"]
    assert auth.startswith("Bearer ")
    assert len(auth) > len("Bearer ")


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ChatConfigError, match="max_retries"):
        OpenAIChatClient(MODEL, base_url="http://127.0.0.1:9/v1", max_retries=-1)
