"""``AgentExecutor``: an agent as a workflow node.

The node keeps each run's conversation in its checkpointed executor state, so one agent
object serves any number of concurrent runs and a paused run resumes in another process.
Every value it stores is plain JSON (dumped pydantic models), never a live object.

Executor state keys (per run):

* ``conversation``: the messages the agent has seen and said, before the current turn.
* ``usage``: tokens spent by the agent over the whole run.
* ``turn``: a ``ChatAgent`` turn paused for tool approval (``None`` otherwise).
* ``queued``: messages that arrived during such a pause; they start the next turn.

A ``ConversationReset`` clears ``conversation``, ``turn`` and ``queued`` (``usage`` is the
run's spend, so it stays); the next message starts a fresh conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from workflow import Executor, WorkflowContext, handler, response_handler
from workflow.events import AgentDelta, WorkflowEvent

from ._agent_turn import AgentTurn
from ._agents import Agent, AgentError, AgentResponse, ChatAgent
from ._approval import ApprovalRequest, ApprovalResponse
from ._chat import ChatMessage, Usage

__all__ = ("AgentExecutor", "AgentResponded", "ConversationReset", "to_messages")

Incoming = str | ChatMessage | list[ChatMessage | AgentResponse] | AgentResponse


class ConversationReset(BaseModel):
    """Tells a participant to forget its conversation of this run (a Magentic team reset).

    ``AgentExecutor`` and ``HumanExecutor`` handle it; an orchestrator sends it only to
    participants with a handler for it, so other executors never see it.
    """

    model_config = ConfigDict(frozen=True)

    reason: str = ""


class ContinueTurn(BaseModel):
    """An agent's note to itself: finish the turn whose approved tools just ran."""

    agent_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentResponded(WorkflowEvent):
    """A participant (agent or person) finished a turn; ``response`` is what it said."""

    executor_id: str
    agent_name: str
    response: AgentResponse


def to_messages(message: Incoming, *, source: str | None) -> list[ChatMessage]:
    """The chat messages an incoming workflow message adds to a conversation.

    A ``str`` from the run's input is the user speaking; from another executor, that
    executor is the author.
    """
    if isinstance(message, str):
        return [ChatMessage("user", message, author=source)]
    if isinstance(message, ChatMessage):
        return [message]
    if isinstance(message, AgentResponse):
        return list(message.messages)
    messages: list[ChatMessage] = []
    for i, item in enumerate(message):
        if isinstance(item, AgentResponse):  # a fan-in: one reply from each source, in order
            messages += item.messages
        elif isinstance(item, ChatMessage):
            messages.append(item)
        else:
            raise TypeError(
                f"a list sent to an agent must hold ChatMessage or AgentResponse, but item "
                f"#{i + 1} is {type(item).__name__} {item!r:.80}"
            )
    return messages


def plain(model: BaseModel) -> Any:
    """A model as plain JSON data with sorted keys, which checkpoints store most compactly."""
    return _sorted(model.model_dump(mode="json"))


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def dump(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """Messages as JSON-able data for executor state."""
    return [plain(m) for m in messages]


def load(data: list[dict[str, Any]] | None) -> list[ChatMessage]:
    """Messages back from executor state."""
    return [ChatMessage.model_validate(d) for d in data or ()]


class AgentExecutor(Executor):
    """Runs an agent on each message it receives and sends on the ``AgentResponse``.

    Accepts ``str``, ``ChatMessage``, ``AgentResponse``, and a list of those two (an
    upstream agent's messages join the conversation). A ``ChatAgent``'s replies are streamed
    as ``AgentDelta`` events, and its tool calls that need approval pause the run with an
    ``ApprovalRequest`` per call (answer with an ``ApprovalResponse``).

    Args:
        agent: A ``ChatAgent``, ``FunctionAgent`` or any object with ``.name``,
            ``.description`` and ``async run(messages) -> AgentResponse``.
        id: The node id; defaults to the agent's name.
        stream: Stream a ``ChatAgent``'s replies as ``AgentDelta`` events.
    """

    kind: ClassVar[str] = "agent"
    warm: ClassVar[bool] = True  # keeps its client/sandbox warm on a cluster backend

    def __init__(self, agent: Agent, id: str | None = None, *, stream: bool = True) -> None:
        name = getattr(agent, "name", None)
        if not isinstance(name, str) or not name or not callable(getattr(agent, "run", None)):
            raise TypeError(
                f"{agent!r} is not an agent: it needs a non-empty .name and an async "
                "run(messages) -> AgentResponse"
            )
        super().__init__(id if id is not None else name)
        self.agent = agent
        self.stream = stream

    @property
    def agent_name(self) -> str:
        return str(self.agent.name)

    @handler
    async def on_message(
        self, message: Incoming, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Add the message to the run's conversation and let the agent answer it."""
        incoming = to_messages(message, source=ctx.source)
        if await ctx.get_executor_state("turn") is not None:
            # A turn waits for approval: answer these after it, in arrival order.
            queued = await ctx.get_executor_state("queued") or []  # None once drained or reset
            await ctx.set_executor_state("queued", [*queued, *dump(incoming)])
            return None
        conversation = load(await ctx.get_executor_state("conversation")) + incoming
        await ctx.set_executor_state("conversation", dump(conversation))
        return await self._turns(ctx, self._start(conversation))

    @response_handler
    async def on_approval(
        self,
        request: ApprovalRequest,
        response: ApprovalResponse,
        ctx: WorkflowContext[AgentResponse],
    ) -> AgentResponse | None:
        """Record a person's decision; once every call of the round is decided, continue."""
        data = await ctx.get_executor_state("turn")
        if data is None or not isinstance(self.agent, ChatAgent):
            raise AgentError(
                f"executor {self.id!r} got an approval for call {request.call_id!r} but has no "
                "turn waiting for one in this run",
                agent_name=self.agent_name,
            )
        turn = AgentTurn.model_validate(data)
        turn.record_decision(request, response)
        if await self.agent.run_decided_calls(turn):
            # The approved tools ran: commit their results now and ask the model in the next
            # superstep, so a failing model call is retried without running the tools again.
            await ctx.set_executor_state("turn", plain(turn))
            await ctx.send_message(ContinueTurn(agent_name=self.agent_name), target=self.id)
            return None
        return await self._turns(ctx, turn)

    @handler
    async def on_continue(
        self, message: ContinueTurn, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Continue a turn whose approved tool calls ran in the previous superstep."""
        data = await ctx.get_executor_state("turn")
        if data is None:
            raise AgentError(
                f"executor {self.id!r} has no turn to continue in this run",
                agent_name=self.agent_name,
            )
        return await self._turns(ctx, AgentTurn.model_validate(data))

    @handler
    async def on_reset(
        self, message: ConversationReset, ctx: WorkflowContext[AgentResponse]
    ) -> None:
        """Forget the run's conversation, a turn paused for approval and queued messages."""
        for key in ("conversation", "turn", "queued"):
            await ctx.set_executor_state(key, None)

    # -- turns --------------------------------------------------------------------------------
    def _start(self, conversation: list[ChatMessage]) -> AgentTurn | list[ChatMessage]:
        if isinstance(self.agent, ChatAgent):
            return self.agent.start_turn(conversation)
        return conversation

    async def _turns(
        self, ctx: WorkflowContext[AgentResponse], work: AgentTurn | list[ChatMessage]
    ) -> AgentResponse | None:
        """Run turns until one pauses or none is queued; send all but the last response."""
        last: AgentResponse | None = None
        while True:
            response = await self._one_turn(ctx, work)
            if response is None:
                break
            if last is not None:
                await ctx.send_message(last)
            last = response
            queued = load(await ctx.get_executor_state("queued"))
            if not queued:
                break
            await ctx.set_executor_state("queued", None)
            conversation = load(await ctx.get_executor_state("conversation")) + queued
            await ctx.set_executor_state("conversation", dump(conversation))
            work = self._start(conversation)
        return last

    async def _one_turn(
        self, ctx: WorkflowContext[AgentResponse], work: AgentTurn | list[ChatMessage]
    ) -> AgentResponse | None:
        agent = self.agent
        if isinstance(work, AgentTurn):
            assert isinstance(agent, ChatAgent)

            async def on_delta(text: str) -> None:
                await ctx.add_event(
                    AgentDelta(
                        run_id=ctx.run_id,
                        superstep=ctx.superstep,
                        executor_id=ctx.executor_id,
                        text=text,
                        agent_name=agent.name,
                    )
                )

            await agent.advance(work, on_delta=on_delta if self.stream else None)
            if not work.done:
                for request in agent.approval_requests(work, only_new=True):
                    await ctx.request_info(request, response_type=ApprovalResponse)
                await ctx.set_executor_state("turn", plain(work))
                return None
            await ctx.set_executor_state("turn", None)
            response = work.response()
        else:
            response = await agent.run(list(work))
            if not isinstance(response, AgentResponse):
                raise TypeError(
                    f"agent {self.agent_name!r}: run() must return AgentResponse, got "
                    f"{type(response).__name__} {response!r:.80}"
                )
            response = _stamp(response, self.agent_name)
        conversation = load(await ctx.get_executor_state("conversation")) + response.messages
        await ctx.set_executor_state("conversation", dump(conversation))
        usage = Usage.model_validate(await ctx.get_executor_state("usage", {})) + response.usage
        await ctx.set_executor_state("usage", plain(usage))
        await ctx.add_event(
            AgentResponded(
                run_id=ctx.run_id,
                superstep=ctx.superstep,
                executor_id=ctx.executor_id,
                agent_name=self.agent_name,
                response=response,
            )
        )
        return response


def _stamp(response: AgentResponse, name: str) -> AgentResponse:
    """Fill in the agent's name where a user-defined agent left it out."""
    if response.agent_name is not None and all(m.author for m in response.messages):
        return response
    author = response.agent_name or name
    messages = [
        m if m.author else m.model_copy(update={"author": author}) for m in response.messages
    ]
    return response.model_copy(update={"agent_name": author, "messages": messages})
