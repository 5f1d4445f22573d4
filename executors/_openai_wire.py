"""The chat completions wire format: our messages out, completions and stream chunks in.

Parsing is strict about shape (a body that is not a chat completion raises
``MalformedResponse``, which the retry policy maps to ``ChatResponseError``) and lenient about
the small differences between compatible servers (arguments sent as an object, missing ids).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ._chat import (
    ChatDelta,
    ChatMessage,
    ChatResponse,
    ChatResponseError,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = ("MalformedResponse", "StreamParser", "parse_completion", "plural", "to_openai_message")

_NAME_OK = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class MalformedResponse(Exception):
    """A 2xx answer that is not a chat completion (internal: mapped to ChatResponseError)."""


def plural(n: int, noun: str) -> str:
    """``"1 attempt"``, ``"2 attempts"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def to_openai_message(message: ChatMessage) -> dict[str, Any]:
    """Maps a ``ChatMessage`` to the chat completions wire format."""
    out: dict[str, Any] = {"role": message.role}
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["content"] = message.text
        return out
    if message.role == "assistant" and message.tool_calls:
        # "" rather than null: OpenAI accepts both beside tool_calls, llama-cpp-python's
        # server rejects null (a 500 validation error).
        out["content"] = message.text
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    else:
        out["content"] = message.text
    # OpenAI rejects names outside this pattern; the author is then simply left out.
    if message.author and _NAME_OK.match(message.author):
        out["name"] = message.author
    return out


class _WireFunction(BaseModel):
    name: str | None = None
    arguments: str | dict[str, Any] | None = None


class _WireToolCall(BaseModel):
    index: int | None = None
    id: str | None = None
    function: _WireFunction | None = None


class _WireMessage(BaseModel):
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[_WireToolCall] | None = None


class _WireChoice(BaseModel):
    index: int = 0
    message: _WireMessage | None = None
    delta: _WireMessage | None = None
    finish_reason: str | None = None


class _WireUsage(BaseModel):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0


class _WireCompletion(BaseModel):
    model: str | None = None
    choices: list[_WireChoice] | None = None
    usage: _WireUsage | None = None


def _usage(wire: _WireUsage | None) -> Usage:
    if wire is None:
        return Usage()
    return Usage(input_tokens=wire.prompt_tokens or 0, output_tokens=wire.completion_tokens or 0)


def _arguments_text(arguments: str | dict[str, Any] | None) -> str:
    # Some compatible servers send arguments as an object instead of JSON text.
    if isinstance(arguments, dict):
        return json.dumps(arguments)
    return arguments or ""


def _validate(data: Any, what: str) -> _WireCompletion:
    try:
        return _WireCompletion.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<body>'}: {e['msg']}" for e in exc.errors()
        )
        raise MalformedResponse(
            f"{what} does not look like a chat completion: {problems}"
        ) from None


def parse_completion(content: bytes, model: str) -> ChatResponse:
    """Parses a non-streamed completion body, failing clearly on anything unexpected."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        preview = content[:120].decode(errors="replace")
        raise MalformedResponse(f"body is not JSON ({exc}): {preview!r}") from None
    wire = _validate(data, "body")
    if not wire.choices or wire.choices[0].message is None:
        raise MalformedResponse("body has no choices[0].message")
    choice = wire.choices[0]
    message = choice.message
    assert message is not None
    calls = tuple(
        ToolCall(
            id=call.id or f"call_{i}",
            name=(call.function.name if call.function else None) or "",
            arguments=_arguments_text(call.function.arguments if call.function else None) or "{}",
        )
        for i, call in enumerate(message.tool_calls or ())
    )
    return ChatResponse(
        message.content if message.content is not None else (message.refusal or ""),
        tool_calls=calls,
        usage=_usage(wire.usage),
        finish_reason=choice.finish_reason,
        model=wire.model or model,
    )


class StreamParser:
    """Turns stream chunks into deltas and remembers what the final delta must carry."""

    def __init__(self, model: str) -> None:
        self.requested_model = model
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.chunks_yielded = 0

    def feed(self, data: Mapping[str, Any]) -> list[ChatDelta]:
        """The deltas one chunk carries (possibly none: role-only and usage chunks)."""
        wire = _validate(data, "stream chunk")
        if wire.model:
            self.model = wire.model
        if wire.usage is not None:
            self.usage = _usage(wire.usage)
        out: list[ChatDelta] = []
        for choice in wire.choices or ():
            if choice.index != 0:
                continue
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            frags = tuple(
                ToolCallDelta(
                    index=call.index if call.index is not None else i,
                    id=call.id,
                    name=call.function.name if call.function else None,
                    arguments=_arguments_text(call.function.arguments if call.function else None),
                )
                for i, call in enumerate(delta.tool_calls or ())
            )
            if delta.content or frags:
                out.append(ChatDelta(text=delta.content or "", tool_calls=frags))
        return out

    def finish(self) -> ChatDelta:
        """The closing delta (finish reason, usage, model); raises if the stream was cut.

        Without a usage chunk from the server, the output tokens are counted as the chunks
        received (a lower bound) and the input tokens as 0 (unknown).
        """
        if self.finish_reason is None:
            raise ChatResponseError(
                f"stream from model {self.requested_model!r} ended without a finish_reason "
                f"after {plural(self.chunks_yielded, 'chunk')}; the connection was probably cut",
                model=self.requested_model,
            )
        # Some servers (llama-cpp-python) never report usage in a stream. Each chunk carries at
        # least one token (llama.cpp sends exactly one), so the chunk count is a lower bound
        # of the output tokens; token budgets then see something rather than nothing.
        usage = self.usage or Usage(output_tokens=self.chunks_yielded)
        return ChatDelta(
            finish_reason=self.finish_reason,
            usage=usage,
            model=self.model or self.requested_model,
        )
