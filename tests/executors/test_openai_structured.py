"""OpenAIChatClient: structured output stepping down, token limits, idle stream timeouts.

The faults mimic real servers: llama-cpp-python's server answers a ``json_schema``
``response_format`` with an HTTP 500 validation error and honours ``json_object`` with a
``schema``; other servers refuse with a 400.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from executors import (
    ChatConfigError,
    ChatDelta,
    ChatMessage,
    ChatResponseError,
    ChatRetryError,
    ChatStatusError,
    OpenAIChatClient,
)

from .openai_server import OpenAITestServer, Reply, Stall, Status

MODEL = "test-model"
HI = [ChatMessage("user", "hi, answer in JSON")]
LLAMA_CPP_REFUSAL = Status(
    500,
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input should "
    "be 'text' or 'json_object' [type=literal_error, input_value='json_schema']",
)

pytestmark = pytest.mark.anyio


class Verdict(pydantic.BaseModel):
    ok: bool
    reason: str


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        yield srv
    assert srv.errors == []


def make_client(srv: OpenAITestServer, **overrides: Any) -> OpenAIChatClient:
    options: dict[str, Any] = {
        "api_key": "sk-test",
        "timeout": 5.0,
        "max_retries": 2,
        "initial_backoff": 0.01,
        "max_backoff": 0.05,
    }
    options.update(overrides)
    return OpenAIChatClient(MODEL, base_url=srv.base_url, **options)


def formats(srv: OpenAITestServer) -> list[Any]:
    return [r.body.get("response_format") for r in srv.completion_requests()]


VERDICT = '{"ok": true, "reason": "fine"}'


# --------------------------------------------------------------------------- structured output


async def test_llama_cpp_refusal_steps_down_once_and_is_remembered(
    server: OpenAITestServer,
) -> None:
    server.enqueue(LLAMA_CPP_REFUSAL, Reply(VERDICT), Reply(VERDICT))
    async with make_client(server) as client:
        assert client.structured_output == "json_schema"
        first = await client.get_response(HI, response_format=Verdict)
        assert client.structured_output == "json_object_schema"
        second = await client.get_response(HI, response_format=Verdict)
    assert first.parse(Verdict) == second.parse(Verdict) == Verdict(ok=True, reason="fine")
    sent = formats(server)
    assert len(sent) == 3  # the refusal was paid once, and the 500 was not retried
    assert sent[0]["type"] == "json_schema"
    schema = sent[0]["json_schema"]["schema"]
    assert sent[1] == sent[2] == {"type": "json_object", "schema": schema}
    assert sorted(schema["required"]) == ["ok", "reason"]


async def test_every_refusal_steps_down_to_plain_text(server: OpenAITestServer) -> None:
    refused = Status(400, "response_format is not supported")
    server.enqueue(refused, refused, refused, Reply(VERDICT), Reply(VERDICT))
    async with make_client(server) as client:
        response = await client.get_response(HI, response_format=Verdict)
        assert client.structured_output == "text"
        await client.get_response(HI, response_format={"type": "json_object"})
    assert response.parse(Verdict).ok is True
    sent = formats(server)
    assert [f and f["type"] for f in sent] == [
        "json_schema",
        "json_object",
        "json_object",
        None,
        None,
    ]
    assert "schema" in sent[1]
    assert "schema" not in sent[2]


async def test_a_json_object_request_starts_at_json_object(server: OpenAITestServer) -> None:
    server.enqueue(Status(422, "json_object unsupported"), Reply("{}"))
    async with make_client(server) as client:
        await client.get_response(HI, response_format={"type": "json_object"})
        assert client.structured_output == "text"
    assert formats(server) == [{"type": "json_object"}, None]


async def test_a_dict_json_schema_keeps_its_name_and_strictness(server: OpenAITestServer) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {"name": "ledger v2", "schema": {"type": "object"}, "strict": True},
    }
    async with make_client(server, structured_output="auto") as client:
        await client.get_response(HI, response_format=fmt)
    assert formats(server) == [
        {
            "type": "json_schema",
            "json_schema": {"name": "ledger_v2", "schema": {"type": "object"}, "strict": True},
        }
    ]


async def test_configured_level_skips_richer_steps(server: OpenAITestServer) -> None:
    async with make_client(server, structured_output="json_object_schema") as client:
        await client.get_response(HI, response_format=Verdict)
    [sent] = formats(server)
    assert sent["type"] == "json_object"
    assert sent["schema"]["properties"]["ok"]["type"] == "boolean"


async def test_a_transient_500_is_retried_not_taken_for_a_refusal(
    server: OpenAITestServer,
) -> None:
    server.enqueue(Status(500, "model is loading"), Reply(VERDICT))
    async with make_client(server) as client:
        await client.get_response(HI, response_format=Verdict)
        assert client.structured_output == "json_schema"
    assert [f["type"] for f in formats(server)] == ["json_schema", "json_schema"]


async def test_a_request_refused_for_another_reason_fails_with_the_real_error(
    server: OpenAITestServer,
) -> None:
    too_long = Status(400, "this request exceeds the context window")
    server.enqueue(too_long, too_long, too_long, too_long)
    async with make_client(server) as client:
        with pytest.raises(ChatStatusError, match="context window") as info:
            await client.get_response(HI, response_format=Verdict)
        assert client.structured_output == "json_schema"  # nothing worked: nothing learnt
    assert info.value.status_code == 400
    assert len(server.completion_requests()) == 4


async def test_an_unknown_format_is_sent_as_given_without_stepping_down(
    server: OpenAITestServer,
) -> None:
    server.enqueue(Status(400, "no such format"))
    async with make_client(server) as client:
        with pytest.raises(ChatStatusError, match="no such format"):
            await client.get_response(HI, response_format={"type": "grammar", "grammar": "x"})
    assert formats(server) == [{"type": "grammar", "grammar": "x"}]


async def test_bad_format_and_level_are_rejected(server: OpenAITestServer) -> None:
    async with make_client(server) as client:
        with pytest.raises(TypeError, match="response_format must be"):
            await client.get_response(HI, response_format=42)  # type: ignore[arg-type]
    with pytest.raises(ChatConfigError, match="structured_output"):
        make_client(server, structured_output="yaml")


# --------------------------------------------------------------------------- token limits


async def test_max_tokens_per_request_and_client_default(server: OpenAITestServer) -> None:
    async with make_client(server) as plain:
        await plain.get_response(HI)
    async with make_client(server, max_tokens=300) as client:
        await client.get_response(HI)
        await client.get_response(HI, max_tokens=40)
        stream = client.get_streaming_response(HI, max_tokens=50)
        async with contextlib.aclosing(stream):
            _ = [d async for d in stream]
    limits = [r.body.get("max_tokens") for r in server.completion_requests()]
    assert limits == [None, 300, 40, 50]
    with pytest.raises(ChatConfigError, match="max_tokens"):
        make_client(server, max_tokens=0)


# --------------------------------------------------------------------------- idle timeouts


async def collect(client: OpenAIChatClient) -> list[ChatDelta]:
    stream = client.get_streaming_response(HI)
    async with contextlib.aclosing(stream):
        return [d async for d in stream]


async def test_a_slow_steady_stream_is_never_cut(server: OpenAITestServer) -> None:
    # Eight chunks 0.15 s apart take longer than the idle timeout, but no gap does.
    server.enqueue(Reply("a b c d e f", chunk_delay=0.15))
    async with make_client(server, timeout=0.6, idle_timeout=0.6, max_retries=0) as client:
        deltas = await collect(client)
    assert "".join(d.text for d in deltas) == "a b c d e f"
    assert deltas[-1].finish_reason == "stop"


async def test_a_stream_silent_after_output_fails_naming_the_idle_timeout(
    server: OpenAITestServer,
) -> None:
    server.enqueue(Reply("one two three four", stall_after=3))
    seen: list[str] = []

    async def read(client: OpenAIChatClient) -> None:
        stream = client.get_streaming_response(HI)
        async with contextlib.aclosing(stream):
            async for delta in stream:
                seen.append(delta.text)

    async with make_client(server, idle_timeout=0.3) as client:
        with pytest.raises(ChatResponseError, match=r"no stream chunk for 0.3s") as info:
            await read(client)
    assert seen == ["one ", "two "]
    assert "broke after 2 chunks" in str(info.value)
    assert len(server.completion_requests()) == 1  # output was seen: never retried


async def test_a_stream_silent_before_output_is_retried(server: OpenAITestServer) -> None:
    server.enqueue(Reply("lost", stall_after=1), Reply("second try"))
    async with make_client(server, idle_timeout=0.3) as client:
        deltas = await collect(client)
    assert "".join(d.text for d in deltas) == "second try"
    assert len(server.completion_requests()) == 2


async def test_silent_streams_exhaust_retries(server: OpenAITestServer) -> None:
    server.enqueue(Stall(), Stall())
    async with make_client(server, timeout=0.3, max_retries=1) as client:
        with pytest.raises(ChatRetryError) as info:
            await collect(client)
    assert info.value.attempts == 2
    assert len(server.completion_requests()) == 2


# --------------------------------------------------------------------------- one retry layer


async def test_streams_are_not_retried_by_the_sdk_either(server: OpenAITestServer) -> None:
    server.enqueue(Status(503), Status(503), Reply("no"))
    async with make_client(server, max_retries=0) as client:
        with pytest.raises(ChatRetryError) as info:
            await collect(client)
    assert info.value.attempts == 1
    assert len(server.completion_requests()) == 1


async def test_attempts_are_exactly_max_retries_plus_one(server: OpenAITestServer) -> None:
    server.enqueue(*[Status(503)] * 10)
    async with make_client(server, max_retries=3) as client:
        with pytest.raises(ChatRetryError) as info:
            await client.get_response(HI)
    assert info.value.attempts == 4
    assert len(server.completion_requests()) == 4  # not (1 + sdk retries) * 4


async def test_a_500_validation_error_is_not_retried(server: OpenAITestServer) -> None:
    # llama-cpp-python answers a request it cannot validate (e.g. content null beside
    # tool_calls) with a 500; the same request would fail the same way.
    server.enqueue(Status(500, "6 validation errors:\n messages.2.content ..."), Reply("no"))
    async with make_client(server) as client:
        with pytest.raises(ChatStatusError, match="validation errors") as info:
            await client.get_response(HI)
    assert (info.value.status_code, info.value.attempts) == (500, 1)
    assert len(server.completion_requests()) == 1


async def test_a_stream_without_usage_counts_its_chunks_as_output_tokens(
    server: OpenAITestServer,
) -> None:
    server.enqueue(Reply("one two three", stream_usage=False), Reply("one two three"))
    async with make_client(server) as client:
        bare = await collect(client)
        reported = await collect(client)
    assert bare[-1].usage is not None
    assert (bare[-1].usage.input_tokens, bare[-1].usage.output_tokens) == (0, 3)
    assert reported[-1].usage is not None
    assert reported[-1].usage.output_tokens == 5  # what the server said wins
