"""Chat vocabulary shared by every chat client: messages, responses, deltas, errors.

Clients (``OpenAIChatClient``, ``ScriptedChatClient``) and agents speak only these types, so
an agent never depends on a vendor SDK and a test can swap in the scripted client.

Error hierarchy::

    ChatClientError                  anything a chat client raises on purpose
    ├── ChatConfigError (ValueError) the client cannot be built (e.g. no API key)
    ├── ChatStatusError              the endpoint refused the request (400/401/403/404/422)
    ├── ChatRetryError               transient failures (429, 5xx, timeouts) outlasted retries
    ├── ChatResponseError            the endpoint answered something unusable
    │                                (malformed JSON, a stream cut short)
    ├── ChatTruncatedError           the answer hit the token limit (finish_reason="length")
    └── ChatParseError (ValueError)  a complete answer is not the JSON that was asked for
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from workflow import WorkflowError

__all__ = (
    "ChatClient",
    "ChatClientError",
    "ChatConfigError",
    "ChatDelta",
    "ChatMessage",
    "ChatParseError",
    "ChatResponse",
    "ChatResponseError",
    "ChatRetryError",
    "ChatStatusError",
    "ChatStreamAccumulator",
    "ChatTruncatedError",
    "Role",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "collect_response",
)

Role = Literal["system", "user", "assistant", "tool"]
_M = TypeVar("_M", bound=BaseModel)


# --------------------------------------------------------------------------- errors


class ChatClientError(WorkflowError):
    """Root of every error a chat client raises deliberately (a ``WorkflowError``).

    Attributes:
        model: The model the request was for, when known.
    """

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class ChatConfigError(ChatClientError, ValueError):
    """The client is misconfigured, so no request could ever succeed."""


class ChatStatusError(ChatClientError):
    """The endpoint refused the request with a status that retrying cannot fix.

    Attributes:
        status_code: The HTTP status.
        attempts: How many requests were made (1: these are never retried).
    """

    def __init__(self, message: str, *, model: str | None, status_code: int, attempts: int) -> None:
        super().__init__(message, model=model)
        self.status_code = status_code
        self.attempts = attempts


class ChatRetryError(ChatClientError):
    """Transient failures persisted through every allowed attempt.

    Attributes:
        status_code: The last HTTP status, or ``None`` for a connection error or timeout.
        attempts: How many requests were made.
    """

    def __init__(
        self, message: str, *, model: str | None, status_code: int | None, attempts: int
    ) -> None:
        super().__init__(message, model=model)
        self.status_code = status_code
        self.attempts = attempts


class ChatResponseError(ChatClientError):
    """The endpoint answered, but not with a usable completion (bad JSON, a cut stream)."""


class ChatTruncatedError(ChatClientError):
    """The answer stopped at the token limit, so it must not be read as complete.

    Attributes:
        response: The truncated response, for callers that want the partial text.
    """

    def __init__(self, message: str, *, response: ChatResponse) -> None:
        super().__init__(message, model=response.model)
        self.response = response


class ChatParseError(ChatClientError, ValueError):
    """A complete answer is not valid JSON or does not match the requested schema."""


# --------------------------------------------------------------------------- data


class ToolSpec(BaseModel):
    """What a chat client needs to offer one tool to a model.

    Attributes:
        name: The name the model calls the tool by.
        description: When and why to use the tool; the model reads this.
        parameters: JSON schema of the arguments object.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}

    def to_openai(self) -> dict[str, Any]:
        """Returns the entry for the ``tools`` list of an OpenAI chat completion request."""
        function: dict[str, Any] = {"name": self.name, "parameters": self.parameters}
        if self.description:
            function["description"] = self.description
        return {"type": "function", "function": function}


class ToolCall(BaseModel):
    """A model's request to run one tool.

    Attributes:
        id: Pairs the call with its result message (``ChatMessage.tool_call_id``).
        name: The tool to run.
        arguments: The arguments as JSON text, exactly as the model wrote them (may be invalid;
            the tool validates them and tells the model what was wrong).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"


class ChatMessage(BaseModel):
    """One message of a conversation.

    ``ChatMessage("user", "hi")`` works positionally. A ``tool`` message answers the assistant
    tool call named by ``tool_call_id``; only assistant messages carry ``tool_calls``.

    Attributes:
        role: Who speaks, in the model's terms.
        text: The content.
        author: The speaking agent's or person's name in multi-agent chats.
        tool_calls: Tool calls requested by an assistant message.
        tool_call_id: The call a ``tool`` message answers.
    """

    model_config = ConfigDict(frozen=True)

    role: Role
    text: str = ""
    author: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    def __init__(self, role: Role, text: str = "", author: str | None = None, **data: Any) -> None:
        super().__init__(role=role, text=text, author=author, **data)

    @model_validator(mode="after")
    def _check_tool_fields(self) -> ChatMessage:
        # Failing here names the bad message; failing at the endpoint would be a vague 400.
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not role {self.role!r}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs the tool_call_id of the call it answers")
        return self


class Usage(BaseModel):
    """Token counts of one or more model calls; add them to total a conversation."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)


class ChatResponse(BaseModel):
    """A model's complete answer to one request.

    ``ChatResponse("hi")`` works positionally. Check ``truncated`` before trusting ``text``:
    a response cut at the token limit looks like an answer but is not one, and the ``parse``
    helpers refuse it.

    Attributes:
        text: The assistant text ("" when the model only called tools).
        tool_calls: Tools the model wants run.
        usage: Tokens spent.
        finish_reason: Why generation stopped (``"stop"``, ``"tool_calls"``, ``"length"``...).
        model: The model that actually answered.
    """

    model_config = ConfigDict(frozen=True)

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage = Usage()
    finish_reason: str | None = None
    model: str | None = None

    def __init__(self, text: str = "", **data: Any) -> None:
        super().__init__(text=text, **data)

    @property
    def truncated(self) -> bool:
        """Whether generation stopped at the token limit, leaving the answer incomplete."""
        return self.finish_reason == "length"

    @property
    def message(self) -> ChatMessage:
        """The assistant message to append to the conversation."""
        return ChatMessage("assistant", self.text, tool_calls=self.tool_calls)

    def raise_if_truncated(self) -> None:
        """Raises ``ChatTruncatedError`` when the answer stopped at the token limit."""
        if self.truncated:
            raise ChatTruncatedError(
                f"model {self.model!r} stopped at the token limit (finish_reason='length') "
                f"after {len(self.text)} characters, so the answer is incomplete; raise the "
                "output token limit or ask for a shorter answer",
                response=self,
            )

    def parse_json(self) -> Any:
        """Returns the answer decoded as JSON (a surrounding code fence is tolerated).

        Raises:
            ChatTruncatedError: The answer is truncated.
            ChatParseError: The text is not JSON.
        """
        self.raise_if_truncated()
        text = self.text
        if fenced := _FENCE.match(text):
            text = fenced.group("body")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ChatParseError(
                f"model {self.model!r} answered with text that is not JSON ({exc}): "
                f"{_preview(self.text)}",
                model=self.model,
            ) from None

    def parse(self, schema: type[_M]) -> _M:
        """Returns the answer validated as ``schema``.

        Raises:
            ChatTruncatedError: The answer is truncated.
            ChatParseError: The text is not JSON or does not match ``schema``; the message
                lists each problem, ready to be fed back to the model.
        """
        data = self.parse_json()
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ChatParseError(
                f"model {self.model!r} answered JSON that does not match "
                f"{schema.__name__}: {problems}",
                model=self.model,
            ) from None


def _preview(text: str, limit: int = 200) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --------------------------------------------------------------------------- streaming


class ToolCallDelta(BaseModel):
    """A fragment of a streamed tool call; fragments with the same ``index`` form one call.

    Attributes:
        index: Which tool call of the response this fragment belongs to.
        id: The call id (usually only on the first fragment).
        name: The tool name (usually only on the first fragment).
        arguments: A piece of the JSON arguments text, to be concatenated.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChatDelta(BaseModel):
    """One streamed chunk of a response.

    The last chunk of a stream carries ``finish_reason``, ``usage`` and ``model``; earlier ones
    carry text and tool-call fragments.
    """

    model_config = ConfigDict(frozen=True)

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None


class ChatStreamAccumulator:
    """Folds ``ChatDelta`` chunks into a ``ChatResponse``.

    Useful when a caller forwards each chunk (e.g. as an event) and still needs the whole
    response at the end.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self._finish_reason: str | None = None
        self._usage = Usage()
        self._model: str | None = None

    def add(self, delta: ChatDelta) -> None:
        """Adds one chunk."""
        self._text.append(delta.text)
        for frag in delta.tool_calls:
            call = self._calls.setdefault(frag.index, ["", "", ""])
            # Some servers repeat id and name on every fragment: keep the first, never concatenate.
            if frag.id and not call[0]:
                call[0] = frag.id
            if frag.name and not call[1]:
                call[1] = frag.name
            call[2] += frag.arguments
        if delta.finish_reason is not None:
            self._finish_reason = delta.finish_reason
        if delta.usage is not None:
            self._usage = self._usage + delta.usage
        if delta.model is not None:
            self._model = delta.model

    def response(self) -> ChatResponse:
        """Returns the response assembled so far."""
        calls = tuple(
            ToolCall(id=c[0] or f"call_{i}", name=c[1], arguments=c[2] or "{}")
            for i, c in sorted(self._calls.items())
        )
        return ChatResponse(
            "".join(self._text),
            tool_calls=calls,
            usage=self._usage,
            finish_reason=self._finish_reason,
            model=self._model,
        )


async def collect_response(stream: AsyncIterable[ChatDelta]) -> ChatResponse:
    """Consumes a stream of deltas and returns the assembled ``ChatResponse``."""
    acc = ChatStreamAccumulator()
    async for delta in stream:
        acc.add(delta)
    return acc.response()


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class ChatClient(Protocol):
    """Anything that can answer a conversation: a real endpoint or a script.

    ``response_format`` asks for structured output: a pydantic model class (the answer must
    validate as that model; read it with ``ChatResponse.parse``) or a raw OpenAI
    ``response_format`` dict such as ``{"type": "json_object"}``. ``max_tokens`` caps the
    answer's length for this request (``None``: the client's own default); callers set it per
    kind of request (a ledger, a plan, an agent's turn), since a small model may otherwise
    ramble until a timeout.
    """

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        """Returns the model's complete answer to ``messages``."""
        ...

    def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """Yields the answer as it is generated; the last chunk has finish_reason and usage."""
        ...
