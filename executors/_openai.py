"""``OpenAIChatClient``: any OpenAI-compatible chat completions endpoint behind ``ChatClient``.

The client is split along its seams: this module builds requests and drives attempts;
``_openai_retry`` is the one retry policy (the SDK client is built with ``max_retries=0`` so
attempts are never multiplied); ``_openai_formats`` steps structured output down until the
endpoint accepts it; ``_openai_wire`` maps messages out and completions in.

Limits that fit generation: ``max_tokens`` bounds every answer (a caller passes one per kind
of request; the client's own applies otherwise), a non-streamed attempt may take ``timeout``
seconds, and a stream may run as long as tokens keep coming, but fails when none arrives for
``idle_timeout`` seconds. A deadline for a whole run belongs to the run (``Timeout``
termination, a Magentic time budget), not to one request.

The API key is kept inside the SDK client and scrubbed from every message this package writes;
an SDK error whose text contains it is not chained as ``__cause__``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel

from ._chat import ChatConfigError, ChatDelta, ChatMessage, ChatResponse, ToolSpec
from ._openai_formats import LEVELS, StructuredLevel, structured_request
from ._openai_retry import Attempts, FormatRefused, RetryPolicy, Secret, StreamIdle
from ._openai_wire import StreamParser, parse_completion, to_openai_message

if TYPE_CHECKING:
    import httpx2

__all__ = ("OpenAIChatClient",)

_log = logging.getLogger(__name__)
_PLACEHOLDER_KEY = "no-key-needed"  # local endpoints ignore the key, the SDK insists on one


class OpenAIChatClient:
    """A ``ChatClient`` for OpenAI and any OpenAI-compatible server (vLLM, Ollama, llama.cpp...).

    Args:
        model: Model name sent with every request.
        base_url: Endpoint root such as ``http://localhost:8000/v1``; default
            ``OPENAI_BASE_URL``, else OpenAI's.
        api_key: Default ``OPENAI_API_KEY``. Without any key a placeholder is sent when a
            ``base_url`` is set (local servers need none); otherwise construction fails.
        timeout: Seconds per non-streamed attempt (generation included), and to connect.
        idle_timeout: Seconds a stream may go without a chunk before the attempt fails;
            default ``timeout``. A stream that keeps producing tokens is never cut.
        max_retries: Retries after the first attempt for transient failures.
        initial_backoff: Delay before the first retry, doubled each time.
        max_backoff: Cap on any delay, including a server's ``Retry-After``.
        max_tokens: Output token limit for requests whose caller gives none (``None``: the
            server's default, which for a small local model may be "until the context is full").
        structured_output: The richest ``response_format`` to try for a schema: ``"auto"``
            (= ``"json_schema"``, stepping down when refused), or one of
            ``"json_object_schema"``, ``"json_object"``, ``"text"`` for an endpoint known to
            accept no more.
        http_client: An ``httpx2.AsyncClient`` to send requests with (proxies, a test transport).
        extra_body: Extra JSON fields merged into every request (e.g. vendor sampling options).

    Raises:
        ChatConfigError: No API key and no ``base_url``, a negative setting, or an unknown
            ``structured_output``.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        idle_timeout: float | None = None,
        max_retries: int = 3,
        initial_backoff: float = 0.5,
        max_backoff: float = 20.0,
        max_tokens: int | None = None,
        structured_output: Literal["auto"] | StructuredLevel = "auto",
        http_client: httpx2.AsyncClient | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ChatConfigError("OpenAIChatClient needs a model name, got ''")
        idle = timeout if idle_timeout is None else idle_timeout
        for name, value in (
            ("timeout", timeout),
            ("idle_timeout", idle),
            ("max_retries", max_retries),
            ("initial_backoff", initial_backoff),
            ("max_backoff", max_backoff),
        ):
            if value < 0:
                raise ChatConfigError(f"{name} must be >= 0, got {value!r}", model=model)
        if max_tokens is not None and max_tokens < 1:
            raise ChatConfigError(f"max_tokens must be >= 1, got {max_tokens!r}", model=model)
        if structured_output != "auto" and structured_output not in LEVELS:
            raise ChatConfigError(
                f"structured_output must be 'auto' or one of {LEVELS!r}, got {structured_output!r}",
                model=model,
            )
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
        self.max_tokens = max_tokens
        self.extra_body = dict(extra_body or {})
        self._floor = 0 if structured_output == "auto" else LEVELS.index(structured_output)

        import openai  # lazily: keeps `import executors` cheap

        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,  # the policy below retries; SDK retries would multiply attempts
            http_client=http_client,
        )
        self.retry = RetryPolicy(
            model=model,
            endpoint=self._endpoint,
            secret=Secret(key),
            timeout=timeout,
            idle_timeout=idle,
            max_retries=max_retries,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatClient(model={self.model!r}, base_url={self.base_url!r})"

    @property
    def timeout(self) -> float:
        """Seconds per non-streamed attempt."""
        return self.retry.timeout

    @property
    def idle_timeout(self) -> float:
        """Seconds a stream may go without a chunk."""
        return self.retry.idle_timeout

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self.retry.max_retries

    @property
    def structured_output(self) -> StructuredLevel:
        """The richest ``response_format`` the next schema request starts with.

        Starts at ``"json_schema"`` (under ``"auto"``) and moves down once the endpoint has
        refused a step and accepted the next one.
        """
        return LEVELS[self._floor]

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
        max_tokens: int | None = None,
    ) -> ChatResponse:
        """Returns the model's answer, retrying transient failures (see ``_openai_retry``).

        A ``response_format`` with a schema is stepped down (see ``_openai_formats``) when
        the endpoint refuses it; the answer then may need the tolerant parsing the caller does
        anyway (``ChatResponse.parse`` accepts a fenced reply).

        Raises:
            ChatStatusError: The endpoint refused the request (bad request, auth, no model).
            ChatRetryError: Transient failures outlasted ``max_retries``.
            ChatResponseError: The endpoint's answer was not a chat completion.
        """
        params = self._params(messages, tools, max_tokens)
        if response_format is None:
            return await self._complete(params, format_sent=False)
        request = structured_request(response_format)
        steps = request.levels(self._floor)
        for n, level in enumerate(steps):
            fmt = request.param(level)
            attempt = dict(params)
            if fmt is not None:
                attempt["response_format"] = fmt
            may_step_down = fmt is not None and n < len(steps) - 1
            try:
                response = await self._complete(attempt, format_sent=may_step_down)
            except FormatRefused as refused:
                _log.info(
                    "model %r at %s refused response_format %s (%s); trying %s",
                    self.model,
                    self._endpoint(),
                    LEVELS[level],
                    refused.detail,
                    LEVELS[steps[n + 1]],
                )
                continue
            if n > 0 and level > self._floor:
                self._floor = level  # remember: later requests skip the refused steps
            return response
        raise AssertionError("the last step sends no response_format, so it is never refused")

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """Yields text and tool-call fragments as they arrive, then one final chunk.

        The final chunk carries ``finish_reason``, ``usage`` and ``model``. Close the iterator
        (``contextlib.aclosing``) when leaving early so the connection is released at once.

        Raises:
            ChatStatusError: As for ``get_response``.
            ChatRetryError: As for ``get_response``, also when no chunk came for
                ``idle_timeout`` seconds before any was yielded.
            ChatResponseError: A chunk was malformed, or the stream broke (or went silent)
                after yielding.
        """
        import httpx2

        params = self._params(messages, tools, max_tokens)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        idle = self.retry.idle_timeout
        params["timeout"] = httpx2.Timeout(idle, connect=self.retry.timeout)
        attempts = Attempts()
        while True:
            attempts.count += 1
            failed: Exception | None = None
            try:
                stream = await self._client.chat.completions.create(**params)
            except Exception as exc:
                failed = exc
            if failed is not None:  # handled outside the except block: no implicit __context__
                await self.retry.after_failure(failed, attempts)
                continue
            parser = StreamParser(self.model)
            async with stream:
                while True:
                    deltas: list[ChatDelta] = []
                    try:
                        with anyio.fail_after(idle):
                            chunk = await stream.__anext__()
                        deltas = parser.feed(chunk.to_dict(warnings=False))
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        failed = StreamIdle()
                    except Exception as exc:
                        failed = exc
                    if failed is not None:
                        if self.retry.classify(failed) is None:
                            raise failed
                        if parser.chunks_yielded == 0:
                            break  # nothing seen yet: a retry is invisible to the caller
                        self.retry.raise_interrupted(failed, parser.chunks_yielded)
                    for delta in deltas:
                        parser.chunks_yielded += 1
                        yield delta
            if failed is not None:
                await self.retry.after_failure(failed, attempts)
                continue
            yield parser.finish()
            return

    # ----------------------------------------------------------------- internals

    async def _complete(self, params: dict[str, Any], *, format_sent: bool) -> ChatResponse:
        attempts = Attempts()
        while True:
            attempts.count += 1
            try:
                raw = await self._client.chat.completions.with_raw_response.create(**params)
                return parse_completion(raw.http_response.content, self.model)
            except Exception as exc:
                failed = exc
            # Handled outside the except block so a scrubbed error gets no implicit __context__.
            await self.retry.after_failure(failed, attempts, format_sent=format_sent)

    def _params(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec] | None,
        max_tokens: int | None,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [to_openai_message(m) for m in messages],
        }
        if tools:
            params["tools"] = [t.to_openai() for t in tools]
        limit = max_tokens if max_tokens is not None else self.max_tokens
        if limit is not None:
            if limit < 1:
                raise ChatConfigError(f"max_tokens must be >= 1, got {limit!r}", model=self.model)
            params["max_tokens"] = limit
        if self.extra_body:
            params["extra_body"] = self.extra_body
        return params

    def _endpoint(self) -> str:
        return str(self._client.base_url).rstrip("/")
