"""``OpenAIChatClient``: any OpenAI-compatible chat completions endpoint behind ``ChatClient``.

Retry policy (this layer is the only one that retries: the SDK client is built with
``max_retries=0`` so attempts are never multiplied):

- retried: HTTP 408, 409, 429 and 5xx, connection errors and timeouts, with exponential
  backoff ``initial_backoff * 2**n`` capped at ``max_backoff`` (no jitter, so runs are
  reproducible); a ``Retry-After`` (or ``retry-after-ms``) header replaces the computed delay,
  capped at ``max_backoff`` too;
- a 200 whose body is not a chat completion (malformed JSON, wrong shape) is retried once: a
  proxy hiccup can cut one body, but an endpoint that sends two is not OpenAI-compatible and
  more attempts would only add latency; then ``ChatResponseError``;
- never retried: 400, 401, 403, 404, 422 and other 4xx (``ChatStatusError`` at once);
- at most ``max_retries + 1`` requests; then ``ChatRetryError`` naming model, status and
  attempt count;
- a stream is retried only until its first chunk is yielded; a stream cut after that raises
  ``ChatResponseError``, since the caller has already seen part of the answer.

The API key is kept inside the SDK client and scrubbed from every message this module writes;
an SDK error whose text contains it is not chained as ``__cause__``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

import anyio
from pydantic import BaseModel, ValidationError

from ._chat import (
    ChatConfigError,
    ChatDelta,
    ChatMessage,
    ChatResponse,
    ChatResponseError,
    ChatRetryError,
    ChatStatusError,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

if TYPE_CHECKING:
    import httpx2

__all__ = ("OpenAIChatClient",)

_log = logging.getLogger(__name__)
_NAME_OK = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_RETRYABLE = frozenset({408, 409, 429})
_PLACEHOLDER_KEY = "no-key-needed"  # local endpoints ignore the key, the SDK insists on one


class _MalformedResponse(Exception):
    """A 2xx answer that is not a chat completion (internal: mapped to ChatResponseError)."""


class _Secret:
    """Holds the API key for scrubbing without ever printing it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "'***'"

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if len(self._value) >= 4 else text


@dataclass
class _Attempts:
    """Per-call retry bookkeeping."""

    count: int = 0
    malformed: int = 0


@dataclass(frozen=True)
class _Failure:
    retryable: bool
    status: int | None
    detail: str
    retry_after: float | None = None
    malformed: bool = False


class OpenAIChatClient:
    """A ``ChatClient`` for OpenAI and any OpenAI-compatible server (vLLM, Ollama, LiteLLM...).

    Args:
        model: Model name sent with every request.
        base_url: Endpoint root such as ``http://localhost:8000/v1``; default
            ``OPENAI_BASE_URL``, else OpenAI's.
        api_key: Default ``OPENAI_API_KEY``. Without any key a placeholder is sent when a
            ``base_url`` is set (local servers need none); otherwise construction fails.
        timeout: Seconds per attempt.
        max_retries: Retries after the first attempt for transient failures.
        initial_backoff: Delay before the first retry, doubled each time.
        max_backoff: Cap on any delay, including a server's ``Retry-After``.
        http_client: An ``httpx2.AsyncClient`` to send requests with (proxies, a test transport).
        extra_body: Extra JSON fields merged into every request (e.g. vendor sampling options).

    Raises:
        ChatConfigError: No API key and no ``base_url``, or a negative setting.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        initial_backoff: float = 0.5,
        max_backoff: float = 20.0,
        http_client: httpx2.AsyncClient | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ChatConfigError("OpenAIChatClient needs a model name, got ''")
        for name, value in (
            ("timeout", timeout),
            ("max_retries", max_retries),
            ("initial_backoff", initial_backoff),
            ("max_backoff", max_backoff),
        ):
            if value < 0:
                raise ChatConfigError(f"{name} must be >= 0, got {value!r}", model=model)
        self.model = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        key = api_key or os.environ.get("OPENAI_API_KEY") or ""
        if not key:
            if self.base_url is None:
                raise ChatConfigError(
                    f"no API key for model {model!r}: pass api_key=... or set the "
                    "OPENAI_API_KEY environment variable (a local server needs only base_url=)",
                    model=model,
                )
            key = _PLACEHOLDER_KEY
        self._secret = _Secret(key)
        self.timeout = timeout
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.extra_body = dict(extra_body or {})

        import openai  # lazily: keeps `import executors` cheap

        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,  # we retry; SDK retries would multiply attempts
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatClient(model={self.model!r}, base_url={self.base_url!r})"

    async def aclose(self) -> None:
        """Closes the HTTP connections (including a given ``http_client``)."""
        await self._client.close()

    async def __aenter__(self) -> OpenAIChatClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ----------------------------------------------------------------- ChatClient

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
    ) -> ChatResponse:
        """Returns the model's answer, retrying transient failures (see the module docs).

        Raises:
            ChatStatusError: The endpoint refused the request (bad request, auth, no model).
            ChatRetryError: Transient failures outlasted ``max_retries``.
            ChatResponseError: The endpoint's answer was not a chat completion.
        """
        params = self._params(messages, tools, response_format)
        attempts = _Attempts()
        while True:
            attempts.count += 1
            try:
                raw = await self._client.chat.completions.with_raw_response.create(**params)
                return _parse_completion(raw.http_response.content, self.model)
            except Exception as exc:
                failed = exc
            # Handled outside the except block so a scrubbed error gets no implicit __context__.
            await self._after_failure(failed, attempts)

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """Yields text and tool-call fragments as they arrive, then one final chunk.

        The final chunk carries ``finish_reason``, ``usage`` and ``model``. Close the iterator
        (``contextlib.aclosing``) when leaving early so the connection is released at once.

        Raises:
            ChatStatusError: As for ``get_response``.
            ChatRetryError: As for ``get_response``.
            ChatResponseError: A chunk was malformed, or the stream broke after yielding.
        """
        params = self._params(messages, tools, None)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        attempts = _Attempts()
        while True:
            attempts.count += 1
            failed: Exception | None = None
            try:
                stream = await self._client.chat.completions.create(**params)
            except Exception as exc:
                failed = exc
            if failed is not None:  # handled outside the except block: no implicit __context__
                await self._after_failure(failed, attempts)
                continue
            parser = _StreamParser(self.model)
            async with stream:
                while True:
                    deltas: list[ChatDelta] = []
                    try:
                        chunk = await stream.__anext__()
                        deltas = parser.feed(chunk.to_dict(warnings=False))
                    except StopAsyncIteration:
                        break
                    except Exception as exc:
                        failed = exc
                    if failed is not None:
                        if self._classify(failed) is None:
                            raise failed
                        if parser.chunks_yielded == 0:
                            break  # nothing seen yet: a retry is invisible to the caller
                        self._raise_interrupted(failed, parser)
                    for delta in deltas:
                        parser.chunks_yielded += 1
                        yield delta
            if failed is not None:
                await self._after_failure(failed, attempts)
                continue
            yield parser.finish()
            return

    # ----------------------------------------------------------------- request building

    def _params(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        response_format: type[BaseModel] | dict[str, Any] | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [_to_openai_message(m) for m in messages],
        }
        if tools:
            params["tools"] = [t.to_openai() for t in tools]
        if response_format is not None:
            params["response_format"] = _response_format(response_format)
        if self.extra_body:
            params["extra_body"] = self.extra_body
        return params

    # ----------------------------------------------------------------- retries

    async def _after_failure(self, exc: Exception, attempts: _Attempts) -> None:
        """Sleeps before the next attempt, or raises the final typed error."""
        failure = self._classify(exc)
        if failure is None:
            raise exc
        if failure.malformed:
            attempts.malformed += 1
        max_attempts = self.max_retries + 1
        retry = failure.retryable and attempts.count < max_attempts and attempts.malformed < 2
        if not retry:
            self._raise_final(failure, attempts.count, exc)
        delay = self._delay(attempts.count, failure.retry_after)
        _log.warning(
            "model %r attempt %d/%d failed (%s); retrying in %.2fs",
            self.model,
            attempts.count,
            max_attempts,
            failure.detail,
            delay,
        )
        await anyio.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return float(min(self.initial_backoff * 2 ** (attempt - 1), self.max_backoff))

    def _classify(self, exc: BaseException) -> _Failure | None:
        import openai

        if isinstance(exc, _MalformedResponse):
            return _Failure(True, None, self._secret.scrub(str(exc)), malformed=True)
        if isinstance(exc, json.JSONDecodeError):  # a malformed SSE chunk
            return _Failure(True, None, f"malformed stream chunk ({exc})", malformed=True)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = f"HTTP {status}{_phrase(status)}: {_error_message(exc)}"
            return _Failure(
                status in _RETRYABLE or status >= 500,
                status,
                self._secret.scrub(detail),
                retry_after=_retry_after(exc.response.headers),
            )
        if isinstance(exc, openai.APITimeoutError):
            return _Failure(True, None, f"timed out after {self.timeout:g}s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            why = str(exc) if cause is None else f"{type(cause).__name__}: {cause}"
            if cause is not None and not str(cause):
                why = f"{type(cause).__name__}: the server reset or closed the connection"
            return _Failure(True, None, self._secret.scrub(f"connection failed ({why})"))
        if isinstance(exc, openai.APIError):  # an error event inside a 200 stream
            detail = f"the server reported an error: {_error_message(exc)}"
            return _Failure(True, None, self._secret.scrub(detail))
        return None

    def _raise_final(self, failure: _Failure, attempts: int, exc: Exception) -> NoReturn:
        where = f"model {self.model!r} at {self._endpoint()}"
        tries = _plural(attempts, "attempt")
        error: Exception
        if failure.malformed:
            error = ChatResponseError(
                f"{where} did not return a chat completion ({failure.detail}) after {tries}; "
                "check that base_url points at an OpenAI-compatible /v1 endpoint",
                model=self.model,
            )
        elif failure.retryable:
            error = ChatRetryError(
                f"{where} failed after {tries}: {failure.detail}; the endpoint may be "
                "overloaded or down, retry later or raise max_retries/timeout",
                model=self.model,
                status_code=failure.status,
                attempts=attempts,
            )
        else:
            assert failure.status is not None
            error = ChatStatusError(
                f"{where} refused the request after {tries}: {failure.detail}; "
                f"{_status_hint(failure.status)}",
                model=self.model,
                status_code=failure.status,
                attempts=attempts,
            )
        raise error from self._safe_cause(exc)

    def _raise_interrupted(self, exc: Exception, parser: _StreamParser) -> NoReturn:
        failure = self._classify(exc)
        detail = failure.detail if failure is not None else self._secret.scrub(repr(exc))
        raise ChatResponseError(
            f"stream from model {self.model!r} at {self._endpoint()} broke after "
            f"{_plural(parser.chunks_yielded, 'chunk')}: {detail}; "
            "the partial answer is incomplete",
            model=self.model,
        ) from self._safe_cause(exc)

    def _safe_cause(self, exc: Exception) -> Exception | None:
        # Chaining keeps the SDK detail for debugging, unless its text would leak the key.
        return None if self._secret.scrub(f"{exc} {exc!r}") != f"{exc} {exc!r}" else exc

    def _endpoint(self) -> str:
        return str(self._client.base_url).rstrip("/")


# --------------------------------------------------------------------------- mapping


def _to_openai_message(message: ChatMessage) -> dict[str, Any]:
    """Maps a ``ChatMessage`` to the chat completions wire format."""
    out: dict[str, Any] = {"role": message.role}
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        out["content"] = message.text
        return out
    if message.role == "assistant" and message.tool_calls:
        out["content"] = message.text or None
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


def _response_format(fmt: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    """Builds ``response_format``: strict JSON schema structured output for a model class."""
    if isinstance(fmt, dict):
        return fmt
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        from openai.lib import type_to_response_format_param

        param: dict[str, Any] = dict(type_to_response_format_param(fmt))  # type: ignore[arg-type]
        schema = dict(param["json_schema"])
        schema["name"] = re.sub(r"[^a-zA-Z0-9_-]", "_", fmt.__name__)[:64]
        param["json_schema"] = schema
        return param
    raise TypeError(f"response_format must be a pydantic model class or a dict, got {fmt!r}")


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return str(getattr(exc, "message", exc))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Reads ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _phrase(status: int) -> str:
    try:
        return f" {HTTPStatus(status).phrase}"
    except ValueError:
        return ""


def _status_hint(status: int) -> str:
    if status == 401:
        return "check the API key (OPENAI_API_KEY or api_key=)"
    if status == 403:
        return "the key lacks access to this model or endpoint"
    if status == 404:
        return "check the model name and that base_url ends in /v1"
    return "fix the request (messages, tools or response_format) before retrying"


# --------------------------------------------------------------------------- parsing


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
        raise _MalformedResponse(
            f"{what} does not look like a chat completion: {problems}"
        ) from None


def _parse_completion(content: bytes, model: str) -> ChatResponse:
    """Parses a non-streamed completion body, failing clearly on anything unexpected."""
    try:
        data = json.loads(content)
    except ValueError as exc:
        preview = content[:120].decode(errors="replace")
        raise _MalformedResponse(f"body is not JSON ({exc}): {preview!r}") from None
    wire = _validate(data, "body")
    if not wire.choices or wire.choices[0].message is None:
        raise _MalformedResponse("body has no choices[0].message")
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


class _StreamParser:
    """Turns stream chunks into deltas and remembers what the final delta must carry."""

    def __init__(self, model: str) -> None:
        self.requested_model = model
        self.model: str | None = None
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.chunks_yielded = 0

    def feed(self, data: Mapping[str, Any]) -> list[ChatDelta]:
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
        if self.finish_reason is None:
            raise ChatResponseError(
                f"stream from model {self.requested_model!r} ended without a finish_reason "
                f"after {_plural(self.chunks_yielded, 'chunk')}; the connection was probably cut",
                model=self.requested_model,
            )
        return ChatDelta(
            finish_reason=self.finish_reason,
            usage=self.usage or Usage(),
            model=self.model or self.requested_model,
        )
