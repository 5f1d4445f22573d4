"""The one retry policy of ``OpenAIChatClient`` (the SDK's own retries are switched off).

- retried: HTTP 408, 409, 429 and 5xx, connection errors and timeouts, with exponential
  backoff ``initial_backoff * 2**n`` capped at ``max_backoff`` (no jitter, so runs are
  reproducible); a ``Retry-After`` (or ``retry-after-ms``) header replaces the computed delay,
  capped at ``max_backoff`` too;
- a 200 whose body is not a chat completion (malformed JSON, wrong shape) is retried once: a
  proxy hiccup can cut one body, but an endpoint that sends two is not OpenAI-compatible and
  more attempts would only add latency; then ``ChatResponseError``;
- never retried: 400, 401, 403, 404, 422 and other 4xx (``ChatStatusError`` at once), a 500
  whose message is a validation error (llama-cpp-python's answer to a request it cannot
  parse), and a refused ``response_format`` (the client steps down to a simpler one instead, see
  ``_openai_formats``);
- at most ``max_retries + 1`` requests; then ``ChatRetryError`` naming model, status and
  attempt count;
- a stream is retried only until its first chunk is yielded; a stream cut (or silent for
  ``idle_timeout``) after that raises ``ChatResponseError``, since the caller has already seen
  part of the answer.

Why this layer and not the SDK's ``max_retries``: ours knows about streams that already
yielded, malformed bodies and refused response formats, and its errors name the model and the
attempt count; running both would multiply attempts (``(1 + sdk) * (1 + ours)`` requests).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, NoReturn

import anyio

from ._chat import ChatResponseError, ChatRetryError, ChatStatusError
from ._openai_wire import MalformedResponse, plural

__all__ = ("Attempts", "FormatRefused", "RetryPolicy", "Secret", "StreamIdle")

_log = logging.getLogger("executors._openai")
_RETRYABLE = frozenset({408, 409, 429})
# Words in a 5xx error that mean "this server cannot do that response_format", not "try later"
# (llama-cpp-python answers a json_schema response_format with a 500 validation error).
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "input should be")


class Secret:
    """Holds the API key for scrubbing without ever printing it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "'***'"

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by ``***``."""
        return text.replace(self._value, "***") if len(self._value) >= 4 else text


class FormatRefused(Exception):
    """The endpoint refused the request's ``response_format`` (internal: the client steps down).

    Attributes:
        detail: The endpoint's reason, scrubbed.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class StreamIdle(Exception):
    """No chunk arrived within ``idle_timeout`` seconds (internal: classified as a timeout)."""


@dataclass
class Attempts:
    """Per-call retry bookkeeping."""

    count: int = 0
    malformed: int = 0
    sleeps: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Failure:
    retryable: bool
    status: int | None
    detail: str
    retry_after: float | None = None
    malformed: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Classifies failures, sleeps between attempts and raises the final typed error.

    Attributes:
        model: Named in every message.
        endpoint: Returns the base URL, named in every message.
        secret: Scrubbed from every message.
        timeout: Seconds per non-streamed attempt (named when one times out).
        idle_timeout: Seconds a stream may stay silent (named when one does).
        max_retries: Retries after the first attempt.
        initial_backoff: Delay before the first retry, doubled each time.
        max_backoff: Cap on any delay, including a server's ``Retry-After``.
    """

    model: str
    endpoint: Callable[[], str]
    secret: Secret
    timeout: float
    idle_timeout: float
    max_retries: int
    initial_backoff: float
    max_backoff: float

    async def after_failure(
        self, exc: Exception, attempts: Attempts, *, format_sent: bool = False
    ) -> None:
        """Sleeps before the next attempt, or raises the final typed error.

        Raises:
            FormatRefused: ``format_sent`` and the endpoint refused the response format.
        """
        if format_sent and (refusal := self.format_refusal(exc)) is not None:
            raise FormatRefused(refusal)
        failure = self.classify(exc)
        if failure is None:
            raise exc
        if failure.malformed:
            attempts.malformed += 1
        max_attempts = self.max_retries + 1
        retry = failure.retryable and attempts.count < max_attempts and attempts.malformed < 2
        if not retry:
            self.raise_final(failure, attempts.count, exc)
        delay = self.delay(attempts.count, failure.retry_after)
        _log.warning(
            "model %r attempt %d/%d failed (%s); retrying in %.2fs",
            self.model,
            attempts.count,
            max_attempts,
            failure.detail,
            delay,
        )
        attempts.sleeps.append(delay)
        await anyio.sleep(delay)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_backoff)
        return float(min(self.initial_backoff * 2 ** (attempt - 1), self.max_backoff))

    def format_refusal(self, exc: BaseException) -> str | None:
        """The reason, when ``exc`` says the endpoint cannot honour the ``response_format``.

        A 400, 415 or 422 counts whatever its text (stepping down costs one fast request, and
        a request refused for another reason is refused again at the last step, with the real
        error); a 5xx counts only when its text is about the response format.
        """
        import openai

        if not isinstance(exc, openai.APIStatusError):
            return None
        status = exc.status_code
        message = _error_message(exc)
        about_format = any(word in message.lower() for word in _FORMAT_WORDS)
        if status in (400, 415, 422) or (status >= 500 and about_format):
            return self.secret.scrub(f"HTTP {status}{_phrase(status)}: {message}")
        return None

    def classify(self, exc: BaseException) -> _Failure | None:
        """What went wrong and whether another attempt may help; ``None``: not ours to handle."""
        import openai

        if isinstance(exc, MalformedResponse):
            return _Failure(True, None, self.secret.scrub(str(exc)), malformed=True)
        if isinstance(exc, json.JSONDecodeError):  # a malformed SSE chunk
            return _Failure(True, None, f"malformed stream chunk ({exc})", malformed=True)
        if isinstance(exc, StreamIdle):
            return _Failure(True, None, f"no stream chunk for {self.idle_timeout:g}s")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            message = _error_message(exc)
            detail = f"HTTP {status}{_phrase(status)}: {message}"
            # Some servers (llama-cpp-python) answer a request they cannot validate with a
            # 500: the same request would fail the same way, so it is not retried.
            invalid = status == 500 and "validation error" in message.lower()
            return _Failure(
                (status in _RETRYABLE or status >= 500) and not invalid,
                status,
                self.secret.scrub(detail),
                retry_after=_retry_after(exc.response.headers),
            )
        if isinstance(exc, openai.APITimeoutError):
            return _Failure(True, None, f"timed out after {self.timeout:g}s")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            why = str(exc) if cause is None else f"{type(cause).__name__}: {cause}"
            if cause is not None and not str(cause):
                why = f"{type(cause).__name__}: the server reset or closed the connection"
            return _Failure(True, None, self.secret.scrub(f"connection failed ({why})"))
        if isinstance(exc, openai.APIError):  # an error event inside a 200 stream
            detail = f"the server reported an error: {_error_message(exc)}"
            return _Failure(True, None, self.secret.scrub(detail))
        return None

    def raise_final(self, failure: _Failure, attempts: int, exc: Exception) -> NoReturn:
        """Raises the typed error for a failure that will not be retried."""
        where = f"model {self.model!r} at {self.endpoint()}"
        tries = plural(attempts, "attempt")
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
        raise error from self.safe_cause(exc)

    def raise_interrupted(self, exc: Exception, chunks: int) -> NoReturn:
        """Raises for a stream that broke after ``chunks`` deltas reached the caller."""
        failure = self.classify(exc)
        detail = failure.detail if failure is not None else self.secret.scrub(repr(exc))
        raise ChatResponseError(
            f"stream from model {self.model!r} at {self.endpoint()} broke after "
            f"{plural(chunks, 'chunk')}: {detail}; the partial answer is incomplete",
            model=self.model,
        ) from self.safe_cause(exc)

    def safe_cause(self, exc: Exception) -> Exception | None:
        """``exc`` to chain as ``__cause__``, unless its text would leak the key."""
        text = f"{exc} {exc!r}"
        return None if self.secret.scrub(text) != text else exc


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
