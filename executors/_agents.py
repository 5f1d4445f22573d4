"""Agents: ``ChatAgent`` (a model with tools), ``FunctionAgent`` (a plain function), and the
``Agent`` protocol any user-defined agent satisfies.

An agent is configuration shared by every run: it keeps nothing between calls. A
``ChatAgent`` turn that must wait (for a person to approve a tool call) lives in an
``AgentTurn`` (``_agent_turn``), plain JSON-able data that ``AgentExecutor`` keeps in the
run's checkpointed executor state, so a paused turn survives a restart and continues
exactly where it stopped.

Decisions, documented here once:

* The tool loop is bounded: after ``max_tool_iterations`` rounds of tool calls, a model that
  still asks for tools gets ``ToolLoopLimitError`` (naming the agent and the limit) instead of
  looping on.
* A reply cut at the token limit (``finish_reason="length"``) ends the turn with
  ``AgentResponse.truncated=True``; tool calls in it are not run (their arguments may be cut
  too). Callers that need complete answers call ``response.raise_if_truncated()``.
* Bad tool arguments, unknown tools and tool exceptions go back to the model as tool error
  messages; the loop carries on.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from typing import Any, Protocol, TypeVar, runtime_checkable

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflow import WorkflowError, WorkflowTool, model_call_span, tool_call_span

from ._agent_turn import AgentTurn
from ._approval import ApprovalRequest
from ._chat import (
    ChatClient,
    ChatMessage,
    ChatResponse,
    ChatStreamAccumulator,
    ToolCall,
    Usage,
)
from ._tools import Tool, tool

__all__ = (
    "Agent",
    "AgentError",
    "AgentResponse",
    "AgentTurn",
    "ApprovalRequiredError",
    "ChatAgent",
    "FunctionAgent",
    "ToolLoopLimitError",
    "TruncatedResponseError",
)

DeltaCallback = Callable[[str], Awaitable[None]]
T = TypeVar("T")


@contextlib.asynccontextmanager
async def _closing(stream: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close a client's stream however we leave it, so its connection is released at once."""
    try:
        yield stream
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()


# --------------------------------------------------------------------------- results


class AgentResponse(BaseModel):
    """What one agent turn produced.

    Attributes:
        messages: The new messages of the turn (assistant replies, tool calls and results),
            each with ``author`` set to the agent's name.
        text: The final answer's text (derived from the last message with text when omitted).
        agent_name: The agent that answered.
        usage: Tokens spent on every model call of the turn.
        truncated: The final reply stopped at the token limit, so ``text`` is incomplete.
    """

    model_config = ConfigDict(frozen=True)

    messages: list[ChatMessage] = Field(default_factory=list)
    text: str = ""
    agent_name: str | None = None
    usage: Usage = Usage()
    truncated: bool = False

    @model_validator(mode="before")
    @classmethod
    def _derive_text(cls, data: Any) -> Any:
        # An agent that only lists its messages still gets a usable ``.text``.
        if isinstance(data, dict) and "text" not in data:
            for message in reversed(data.get("messages") or ()):
                text = message.text if isinstance(message, ChatMessage) else message.get("text")
                if text:
                    return {**data, "text": text}
        return data

    def raise_if_truncated(self) -> None:
        """Raises ``TruncatedResponseError`` when the answer stopped at the token limit."""
        if self.truncated:
            raise TruncatedResponseError(
                f"agent {self.agent_name!r} stopped at the model's token limit after "
                f"{len(self.text)} characters, so its answer is incomplete; raise the model's "
                "output token limit or ask for a shorter answer",
                response=self,
            )


# --------------------------------------------------------------------------- errors


class AgentError(WorkflowError):
    """Root of the errors agents raise on purpose (a ``WorkflowError``).

    Attributes:
        agent_name: The agent concerned.
    """

    def __init__(self, message: str, *, agent_name: str) -> None:
        super().__init__(message)
        self.agent_name = agent_name


class ToolLoopLimitError(AgentError):
    """The model kept calling tools past ``max_tool_iterations``.

    Attributes:
        limit: The agent's ``max_tool_iterations``.
        messages: What the turn produced before it was stopped.
    """

    def __init__(
        self, message: str, *, agent_name: str, limit: int, messages: list[ChatMessage]
    ) -> None:
        super().__init__(message, agent_name=agent_name)
        self.limit = limit
        self.messages = messages


class ApprovalRequiredError(AgentError):
    """``run`` reached a tool call that needs approval, which only a workflow can ask for.

    Attributes:
        requests: The calls waiting for a decision.
        turn: The paused turn; record decisions on it and ``advance`` it to continue.
    """

    def __init__(
        self, message: str, *, agent_name: str, requests: list[ApprovalRequest], turn: AgentTurn
    ) -> None:
        super().__init__(message, agent_name=agent_name)
        self.requests = requests
        self.turn = turn


class TruncatedResponseError(AgentError):
    """An agent's answer is incomplete (see ``AgentResponse.raise_if_truncated``).

    Attributes:
        response: The truncated response, for callers that want the partial text.
    """

    def __init__(self, message: str, *, response: AgentResponse) -> None:
        super().__init__(message, agent_name=response.agent_name or "")
        self.response = response


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Agent(Protocol):
    """Anything a workflow can use as an agent: a name, a description and ``run``."""

    @property
    def name(self) -> str:
        """Unique among the participants; the default node id and message author."""
        ...

    @property
    def description(self) -> str:
        """What the agent is good for (read by orchestrators choosing a speaker)."""
        ...

    async def run(self, messages: list[ChatMessage]) -> AgentResponse:
        """Answer the conversation ``messages``."""
        ...


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} needs a non-empty name, got {name!r}")
    return name


class FunctionAgent:
    """An agent made of one function ``fn(messages) -> str`` (sync or async).

    A sync function runs in a worker thread, so a slow one does not stall the workflow.
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        fn: Callable[[list[ChatMessage]], str | Awaitable[str]] | None = None,
    ) -> None:
        self.name = _check_name(name, "FunctionAgent")
        self.description = description
        if fn is None or not callable(fn):
            raise TypeError(
                f"FunctionAgent {name!r} needs fn=callable(messages) -> str, got {fn!r}"
            )
        self.fn = fn
        call = getattr(fn, "__call__", None)  # noqa: B004 - async callable objects count too
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(call)

    def __repr__(self) -> str:
        return f"FunctionAgent(name={self.name!r})"

    async def run(self, messages: list[ChatMessage]) -> AgentResponse:
        """Call the function and wrap its text as the agent's reply."""
        history = list(messages)
        if self._is_async:
            result: Any = await self.fn(history)  # type: ignore[misc]
        else:
            result = await anyio.to_thread.run_sync(functools.partial(self.fn, history))
            if inspect.isawaitable(result):
                result = await result
        if not isinstance(result, str):
            raise TypeError(
                f"FunctionAgent {self.name!r}: fn must return str, got "
                f"{type(result).__name__} {result!r:.80}"
            )
        message = ChatMessage("assistant", result, author=self.name)
        return AgentResponse(messages=[message], text=result, agent_name=self.name)


# --------------------------------------------------------------------------- chat agent


class ChatAgent:
    """A model with instructions and tools, answering in a bounded tool-calling loop.

    Args:
        name: Unique among the participants; authors the agent's messages.
        description: What the agent is good for.
        instructions: The system message sent first with every request.
        chat_client: The model to talk to (any ``ChatClient``).
        tools: ``Tool`` objects or plain typed functions (wrapped with ``@tool``).
        max_tool_iterations: Rounds of tool calls allowed per turn.
        max_tokens: Output token limit of each model request of a turn (``None``: the
            client's default); a reply cut there is reported as truncated.

    Raises:
        ValueError: An empty name, duplicate tool names or a negative limit.
    """

    def __init__(
        self,
        name: str,
        description: str = "",
        instructions: str = "",
        chat_client: ChatClient | None = None,
        *,
        tools: Iterable[Tool[Any, Any] | WorkflowTool | Callable[..., Any]] = (),
        max_tool_iterations: int = 10,
        max_tokens: int | None = None,
    ) -> None:
        self.name = _check_name(name, "ChatAgent")
        self.description = description
        self.instructions = instructions
        if chat_client is None:
            raise TypeError(f"ChatAgent {name!r} needs a chat_client (e.g. OpenAIChatClient)")
        self.chat_client = chat_client
        if max_tool_iterations < 0:
            raise ValueError(
                f"ChatAgent {name!r}: max_tool_iterations must be >= 0, got {max_tool_iterations!r}"
            )
        self.max_tool_iterations = max_tool_iterations
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"ChatAgent {name!r}: max_tokens must be >= 1, got {max_tokens!r}")
        self.max_tokens = max_tokens
        self._tools: dict[str, Tool[Any, Any]] = {}
        for item in tools:
            if isinstance(item, WorkflowTool):
                item = item.as_tool()  # a workflow offered as a tool (Workflow.as_tool)
            wrapped = item if isinstance(item, Tool) else tool(item)
            if wrapped.name in self._tools:
                raise ValueError(f"ChatAgent {name!r}: two tools are named {wrapped.name!r}")
            self._tools[wrapped.name] = wrapped
        self._specs = tuple(t.spec for t in self._tools.values())

    def __repr__(self) -> str:
        return f"ChatAgent(name={self.name!r}, tools={list(self._tools)!r})"

    @property
    def tools(self) -> tuple[Tool[Any, Any], ...]:
        """The tools offered to the model."""
        return tuple(self._tools.values())

    # -- one-shot use -----------------------------------------------------------------------
    async def run(self, messages: list[ChatMessage]) -> AgentResponse:
        """Answer ``messages``, running tools as the model asks.

        Raises:
            ApprovalRequiredError: A tool needs approval; run the agent in a workflow (its
                ``AgentExecutor`` asks a person) or decide on ``error.turn`` and ``advance``.
            ToolLoopLimitError: The model kept calling tools past ``max_tool_iterations``.
        """
        turn = self.start_turn(messages)
        await self.advance(turn)
        return self._finished(turn)

    async def run_stream(self, messages: list[ChatMessage]) -> AsyncIterator[str | AgentResponse]:
        """Like ``run``, yielding text pieces as the model writes them, then the response."""
        turn = self.start_turn(messages)
        async with contextlib.aclosing(self._drive(turn, stream=True)) as pieces:
            async for piece in pieces:
                yield piece
        yield self._finished(turn)

    def _finished(self, turn: AgentTurn) -> AgentResponse:
        if not turn.done:
            requests = self.approval_requests(turn)
            names = ", ".join(r.tool_name for r in requests)
            raise ApprovalRequiredError(
                f"agent {self.name!r} needs approval to call {names}; run it in a workflow "
                "(its AgentExecutor asks via request_info) or record decisions on error.turn "
                "and advance it",
                agent_name=self.name,
                requests=requests,
                turn=turn,
            )
        return turn.response()

    # -- resumable turns (used by AgentExecutor) --------------------------------------------
    def start_turn(self, messages: Sequence[ChatMessage]) -> AgentTurn:
        """A fresh turn answering ``messages``."""
        for i, message in enumerate(messages):
            if not isinstance(message, ChatMessage):
                raise TypeError(
                    f"agent {self.name!r}: message #{i + 1} is {type(message).__name__}, "
                    "not ChatMessage"
                )
        return AgentTurn(agent_name=self.name, history=list(messages))

    async def advance(self, turn: AgentTurn, *, on_delta: DeltaCallback | None = None) -> None:
        """Continue ``turn`` until it is done or waits for approval decisions.

        With ``on_delta`` the model's replies are streamed and each text piece is passed to
        it, in order.
        """
        async with contextlib.aclosing(self._drive(turn, stream=on_delta is not None)) as pieces:
            async for piece in pieces:
                if on_delta is not None:
                    await on_delta(piece)

    def approval_requests(
        self, turn: AgentTurn, *, only_new: bool = False
    ) -> list[ApprovalRequest]:
        """The pending calls that wait for a decision (``only_new``: not asked for before).

        With ``only_new``, the returned calls are marked as asked for.
        """
        out = []
        for call in turn.pending_calls():
            if not self._needs_approval(call) or call.id in turn.decisions:
                continue
            if only_new and call.id in turn.requested:
                continue
            found = self._tools[call.name]
            out.append(
                ApprovalRequest(
                    agent_name=self.name,
                    tool_name=call.name,
                    arguments=call.arguments,
                    call_id=call.id,
                    description=found.description,
                )
            )
            if only_new:
                turn.requested.append(call.id)
        return out

    async def run_decided_calls(self, turn: AgentTurn) -> bool:
        """Run the pending round of tool calls if every approval is in; ``True`` if it ran.

        Lets the executor commit the tools' results before the next model call, so a failure
        of that call never runs an approved tool twice.
        """
        calls = turn.pending_calls()
        if not calls or any(self._needs_approval(c) and c.id not in turn.decisions for c in calls):
            return False
        await self._run_calls(turn, calls)
        return True

    # -- the loop ---------------------------------------------------------------------------
    def _needs_approval(self, call: ToolCall) -> bool:
        found = self._tools.get(call.name)
        return found is not None and found.approval_mode == "always_require"

    async def _drive(self, turn: AgentTurn, *, stream: bool) -> AsyncGenerator[str, None]:
        while not turn.done:
            calls = turn.pending_calls()
            if calls:
                if any(self._needs_approval(c) and c.id not in turn.decisions for c in calls):
                    return  # paused: nothing of this round runs before every decision is in
                await self._run_calls(turn, calls)
                continue
            # A GenAI span per model request (free when nothing is traced); the generator is
            # always driven to its end or closed by the task that runs it (aclosing).
            with model_call_span(self._model_name) as span:
                if stream:
                    acc = ChatStreamAccumulator()
                    deltas = self.chat_client.get_streaming_response(
                        self._prompt(turn), tools=self._specs or None, max_tokens=self.max_tokens
                    )
                    async with _closing(deltas):
                        async for delta in deltas:
                            acc.add(delta)
                            if delta.text:
                                yield delta.text
                    reply = acc.response()
                else:
                    reply = await self.chat_client.get_response(
                        self._prompt(turn), tools=self._specs or None, max_tokens=self.max_tokens
                    )
                span.record_tokens(reply.usage.input_tokens, reply.usage.output_tokens)
            self._take(turn, reply)

    @functools.cached_property
    def _model_name(self) -> str:
        return str(getattr(self.chat_client, "model", None) or type(self.chat_client).__name__)

    def _take(self, turn: AgentTurn, reply: ChatResponse) -> None:
        turn.usage = turn.usage + reply.usage
        if reply.truncated:
            # Cut tool calls may have cut arguments, and an assistant message with calls but
            # no results would break the next request: keep only the text.
            turn.new_messages.append(ChatMessage("assistant", reply.text, author=self.name))
            turn.done = turn.truncated = True
            return
        if reply.tool_calls and turn.tool_rounds >= self.max_tool_iterations:
            names = ", ".join(c.name for c in reply.tool_calls)
            raise ToolLoopLimitError(
                f"agent {self.name!r} still called tools ({names}) after "
                f"{turn.tool_rounds} rounds of tool calls, its max_tool_iterations="
                f"{self.max_tool_iterations}; raise the limit or tell the model (in its "
                "instructions) when to stop calling tools",
                agent_name=self.name,
                limit=self.max_tool_iterations,
                messages=list(turn.new_messages),
            )
        turn.new_messages.append(
            ChatMessage("assistant", reply.text, author=self.name, tool_calls=reply.tool_calls)
        )
        if not reply.tool_calls:
            turn.done = True

    async def _run_calls(self, turn: AgentTurn, calls: tuple[ToolCall, ...]) -> None:
        # One at a time, in the model's order: results (and side effects) are deterministic.
        for call in calls:
            turn.new_messages.append(
                ChatMessage(
                    "tool", await self._call(turn, call), author=self.name, tool_call_id=call.id
                )
            )
        ids = {c.id for c in calls}
        # Models may reuse ids across rounds ("call_0"): a spent decision must not carry over.
        turn.decisions = {k: v for k, v in turn.decisions.items() if k not in ids}
        turn.requested = [k for k in turn.requested if k not in ids]
        turn.tool_rounds += 1

    async def _call(self, turn: AgentTurn, call: ToolCall) -> str:
        found = self._tools.get(call.name)
        if found is None:
            known = ", ".join(self._tools) or "none"
            return f"Error: there is no tool named {call.name!r}; available tools: {known}"
        if found.approval_mode == "always_require":
            decision = turn.decisions[call.id]
            if not decision.approved:
                why = f": {decision.reason}" if decision.reason else ""
                return f"Error: the user rejected this call of tool {call.name!r}{why}"
        with tool_call_span(call.name):
            outcome = await found.invoke(call.arguments)
        return outcome.text

    def _prompt(self, turn: AgentTurn) -> list[ChatMessage]:
        """The conversation as this agent's model sees it.

        Other agents' replies become user messages with their author (their tool traffic is
        dropped: those calls are not this model's), so each model only answers for itself.
        """
        out = [ChatMessage("system", self.instructions)] if self.instructions else []
        for message in turn.history:
            if message.role in ("user", "system") or message.author in (None, self.name):
                out.append(message)
            elif message.role == "assistant" and message.text:
                out.append(ChatMessage("user", message.text, author=message.author))
        out.extend(turn.new_messages)
        return out
