"""``ScriptedChatClient``: a deterministic ``ChatClient`` for tests and offline demos.

It replays scripted replies (or asks a function), so a workflow with agents runs the same way
every time without a model. Token usage is a word count: rough, but deterministic and non-zero,
so token budgets can be exercised.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from ._chat import (
    ChatClientError,
    ChatDelta,
    ChatMessage,
    ChatResponse,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

__all__ = ("Reply", "ReplyFunction", "ScriptedChatClient")

Reply = str | ChatResponse
ReplyFunction = Callable[[list[ChatMessage]], Reply | Awaitable[Reply]]

_WORD_BOUNDARY = re.compile(r"(?<=\s)(?=\S)")


class ScriptedChatClient:
    """Answers from a script: a list of replies consumed in order, or a function of the messages.

    A ``str`` reply becomes a plain answer (``finish_reason="stop"``); a ``ChatResponse`` is
    returned as given, which is how tool calls, truncation or custom usage are scripted.

    Args:
        replies: The replies in order, or ``fn(messages) -> str | ChatResponse`` (sync or async).
        model: Reported as the responding model.

    Attributes:
        calls: The messages of every request, oldest first.
        tools: The tool specs offered with every request, parallel to ``calls``.
        limits: The ``max_tokens`` of every request, parallel to ``calls`` (not enforced: a
            script's reply is what it is; script ``finish_reason="length"`` to test truncation).
        formats: The ``response_format`` of every request, parallel to ``calls``.
    """

    def __init__(
        self, replies: Iterable[Reply] | ReplyFunction, *, model: str = "scripted"
    ) -> None:
        self.model = model
        self.calls: list[list[ChatMessage]] = []
        self.tools: list[tuple[ToolSpec, ...]] = []
        self.limits: list[int | None] = []
        self.formats: list[type[BaseModel] | dict[str, Any] | None] = []
        self._fn: ReplyFunction | None = None
        self._replies: list[Reply] = []
        if isinstance(replies, str | ChatResponse):
            raise TypeError(
                f"ScriptedChatClient takes a list of replies, got one reply {replies!r}; "
                "wrap it in a list"
            )
        if callable(replies):
            self._fn = replies
        else:
            self._replies = list(replies)
            for i, reply in enumerate(self._replies):
                if not isinstance(reply, str | ChatResponse):
                    raise TypeError(
                        f"scripted reply #{i + 1} must be a str or ChatResponse, got {reply!r}"
                    )
        self._next = 0

    def __repr__(self) -> str:
        if self._fn is not None:
            return f"ScriptedChatClient({self._fn!r}, calls={len(self.calls)})"
        return f"ScriptedChatClient(replies={len(self._replies)}, used={self._next})"

    @property
    def remaining(self) -> int | None:
        """Replies not yet used, or ``None`` when a function answers."""
        return None if self._fn is not None else len(self._replies) - self._next

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        """Returns the next scripted reply.

        Raises:
            ChatClientError: Every scripted reply has been used.
        """
        history = list(messages)
        self.calls.append(history)
        self.tools.append(tuple(tools or ()))
        self.limits.append(max_tokens)
        self.formats.append(response_format)
        reply = await self._reply(history)
        if isinstance(reply, ChatResponse):
            return reply
        if not isinstance(reply, str):
            raise TypeError(
                f"the reply function of ScriptedChatClient must return str or ChatResponse, "
                f"got {reply!r}"
            )
        return ChatResponse(
            reply,
            finish_reason="stop",
            model=self.model,
            usage=Usage(
                input_tokens=sum(_words(m.text) for m in history),
                output_tokens=_words(reply),
            ),
        )

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """Yields the next reply word by word, each tool call as two fragments, then the end."""
        response = await self.get_response(messages, tools=tools, max_tokens=max_tokens)
        for piece in _WORD_BOUNDARY.split(response.text):
            if piece:
                yield ChatDelta(text=piece)
        for index, call in enumerate(response.tool_calls):
            yield ChatDelta(tool_calls=(ToolCallDelta(index=index, id=call.id, name=call.name),))
            yield ChatDelta(tool_calls=(ToolCallDelta(index=index, arguments=call.arguments),))
        yield ChatDelta(
            finish_reason=response.finish_reason
            or ("tool_calls" if response.tool_calls else "stop"),
            usage=response.usage,
            model=response.model or self.model,
        )

    async def _reply(self, history: list[ChatMessage]) -> Reply:
        if self._fn is not None:
            result = self._fn(history)
            if inspect.isawaitable(result):
                result = await result
            return result
        if self._next >= len(self._replies):
            raise ChatClientError(
                f"ScriptedChatClient ran out of replies: {len(self._replies)} scripted, and "
                f"call #{len(self.calls)} asked for one more; script more replies or pass a "
                "function",
                model=self.model,
            )
        reply = self._replies[self._next]
        self._next += 1
        return reply


def _words(text: str) -> int:
    return len(text.split())
