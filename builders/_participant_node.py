"""``Participant``: the node through which every conversation builder gives a participant its
turns.

Every conversation builder gives each participant its turns through one node kind,
``Participant``, which wraps the participant's own executor (an ``AgentExecutor`` for an
agent, a ``HumanExecutor``, a ``WorkflowExecutor`` for a nested workflow, any executor):

* it receives the whole ``Conversation`` and gives the participant what it has not seen yet
  (agents and people keep their own history in their executor state) or, for anything
  else (a nested workflow starts a fresh child run per input), the whole conversation;
* whatever the participant sends, returns or yields becomes its reply, appended to the
  conversation with the participant as ``author``; a participant that asks outside the
  run (tool approval, a person's input, a nested workflow's question) pauses only itself,
  and its answer arrives through this node, which mirrors the participant's response
  handlers;
* then a ``TurnPolicy`` routes the conversation on: back to a group chat's manager, to
  the next in line, to the agent handed off to, or out as the workflow's output.

The participant's executor is not a node of the graph: the diagram shows one node per
participant, named after it, drawn as the participant's kind. Its executor state lives
under this node's, prefixed ``inner.``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Sequence
from typing import Any, ClassVar

import anyio.to_thread

from executors import (
    AgentError,
    AgentExecutor,
    AgentResponse,
    ChatMessage,
    CodeResult,
    HumanExecutor,
    Usage,
    WorkflowExecutor,
)
from workflow import Executor, FunctionExecutor, GraphValidationError, Workflow, WorkflowContext
from workflow.authoring import HandlerSpec, overlaps
from workflow.events import WorkflowEvent

from ._participant import Conversation, TurnPolicy, plain

__all__ = ("Participant", "participant_nodes")


def participant_nodes(items: Sequence[Any], *, pattern: str) -> dict[str, Executor]:
    """Each participant's own executor, by its (unique) name.

    Raises:
        GraphValidationError: No participants, or two with the same name.
    """
    if isinstance(items, str) or not isinstance(items, Sequence) or not items:
        raise GraphValidationError(
            f"{pattern} needs a non-empty list of participants, got {items!r}"
        )
    nodes: dict[str, Executor] = {}
    for item in items:
        name, node = _as_participant(item)
        if name in nodes:
            raise GraphValidationError(
                f"{pattern}: two participants are named {name!r}; participant names must be "
                "unique (they are node ids and message authors), so rename one of them"
            )
        nodes[name] = node
    return nodes


def _as_participant(item: Any) -> tuple[str, Executor]:
    as_executor = getattr(item, "as_executor", None)
    if not isinstance(item, Executor) and callable(as_executor):
        item = as_executor()  # e.g. AutoGen-style agents, which know their own node
    if isinstance(item, Workflow):
        return item.name, WorkflowExecutor(item, id=item.name)
    if isinstance(item, AgentExecutor):
        return item.agent_name, item
    if isinstance(item, Executor):
        name = getattr(item, "name", None)
        return (name if isinstance(name, str) and name else item.id), item
    if isinstance(getattr(item, "name", None), str) and callable(getattr(item, "run", None)):
        executor = AgentExecutor(item)
        return executor.agent_name, executor
    if callable(item):
        function = FunctionExecutor(item)
        return function.id, function
    raise TypeError(
        f"{item!r} cannot take part in a conversation: pass an agent (.name and async "
        "run(messages)), an executor, a Workflow or a function"
    )


class _Ready:
    """An awaitable that is already done, like the core context's return values."""

    __slots__ = ("value",)

    def __init__(self, value: Any = None) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, Any]:
        return self.value
        yield  # pragma: no cover - makes this a generator


class _TurnContext:
    """The context a participant's executor gets: what it sends or yields becomes its reply.

    Everything else (state, requests, events) goes to the node's real context; executor
    state is namespaced so the participant's keys never collide with the node's.
    """

    def __init__(self, ctx: WorkflowContext[Any], inner_id: str) -> None:
        self._ctx = ctx
        self._inner_id = inner_id
        self.source = ctx.source
        self.sent: list[Any] = []
        self.yielded: list[Any] = []
        self.asked = 0
        self.continued = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    @property
    def executor_id(self) -> str:
        return self._ctx.executor_id

    @property
    def run_id(self) -> str:
        return self._ctx.run_id

    @property
    def superstep(self) -> int:
        return self._ctx.superstep

    def send_message(self, message: Any, *, target: str | None = None) -> _Ready:
        if message is None:
            raise TypeError(f"participant {self.executor_id!r} sent None")
        if target is not None and target in (self._inner_id, self._ctx.executor_id):
            # A note to itself (e.g. an agent finishing a turn next superstep): deliver it to
            # this node, which hands it back to the participant's executor.
            self.continued += 1
            return _Ready(self._ctx.send_message(message, target=self._ctx.executor_id))
        self.sent.append(message)
        return _Ready()

    def yield_output(self, value: Any) -> _Ready:
        self.yielded.append(value)
        return _Ready()

    def get_state(self, key: str, default: Any = None) -> Any:
        return self._ctx.get_state(key, default)

    def set_state(self, key: str, value: Any) -> Any:
        return self._ctx.set_state(key, value)

    def get_executor_state(self, key: str, default: Any = None) -> Any:
        return self._ctx.get_executor_state(f"inner.{key}", default)

    def set_executor_state(self, key: str, value: Any) -> Any:
        return self._ctx.set_executor_state(f"inner.{key}", value)

    def request_info(self, payload: Any, *, response_type: Any = object) -> Any:
        self.asked += 1
        return self._ctx.request_info(payload, response_type=response_type)

    async def add_event(self, event: WorkflowEvent) -> None:
        await self._ctx.add_event(event)


_PENDING = "conversation"  # the conversation the participant is answering
_SEEN = "seen"  # how much of the conversation the participant's executor has seen


class Participant(Executor):
    """One participant's turns in a conversation (see the module docs).

    Args:
        inner: The participant's own executor.
        name: The participant's name: this node's id and its messages' author.
        policy: Where the conversation goes after each turn.
    """

    kind: ClassVar[str] = "agent"
    warm: ClassVar[bool] = True  # holds agents/clients: one long-lived copy on a cluster

    def __init__(self, inner: Executor, name: str, policy: TurnPolicy) -> None:
        super().__init__(name)
        self.inner = inner
        self.name = name
        self.policy = policy
        self.__dict__["kind"] = inner.kind  # drawn as what it wraps
        if isinstance(inner, WorkflowExecutor):
            self.workflow = inner.workflow  # checkpoint allowlist and diagrams look here
        # Agents and people keep their own history; anything else gets it all each turn.
        self._incremental = isinstance(inner, AgentExecutor | HumanExecutor)
        self._feed, self._inner_spec = _feeding(inner, name)
        outputs = tuple(policy.output_types)
        turn_inputs = (Conversation, str, ChatMessage, list)
        self._specs = (
            HandlerSpec(
                name="take_turn",
                func=self._take_turn,
                input_types=turn_inputs,
                output_types=outputs,
                takes_ctx=True,
                is_async=True,
                is_method=False,
            ),
            # The participant's other handlers, except any that would take a turn's messages.
            *(
                self._mirror(spec, outputs)
                for spec in inner.handler_specs()
                if spec.is_response
                or (
                    spec is not self._inner_spec
                    and spec.input_types is not None
                    and not overlaps(spec.input_types, turn_inputs)
                )
            ),
        )

    def __repr__(self) -> str:
        return f"Participant({self.name!r}, {self.inner!r})"

    def handler_specs(self) -> tuple[HandlerSpec, ...]:
        return self._specs

    def checkpoint_types(self) -> tuple[type, ...]:
        found: list[type] = [Conversation, ChatMessage, Usage, AgentResponse]
        for spec in self.inner.handler_specs():
            for group in (spec.input_types, spec.output_types, spec.response_types):
                found.extend(t for t in group or () if isinstance(t, type))
        found.extend(self.inner.checkpoint_types())
        return tuple(dict.fromkeys(found))

    # -- a turn ------------------------------------------------------------------------------
    async def _take_turn(self, message: Any, ctx: WorkflowContext[Any]) -> None:
        if isinstance(message, Conversation):
            conversation: Conversation | None = message
        else:  # the run's task: this participant opens the conversation
            conversation = await self.policy.start(
                self, Conversation.start(message, source=ctx.source), ctx
            )
        if conversation is None:
            return
        seen = await ctx.get_executor_state(_SEEN, 0) if self._incremental else 0
        given = conversation.messages[seen:]
        await ctx.set_executor_state(_PENDING, [plain(conversation), len(given)])
        turn = _TurnContext(ctx, self.inner.id)
        result = await _call(self._inner_spec, self.inner, (self._feed(given),), turn)
        await self._settle(turn, result, ctx)

    def _mirror(self, spec: HandlerSpec, outputs: tuple[type, ...]) -> HandlerSpec:
        """A handler of this node that passes on to one of the participant's handlers.

        Response handlers receive the answers to the participant's questions; other message
        handlers receive the notes it sends itself (both continue the pending turn).
        """

        async def answer(*args: Any) -> None:
            ctx: WorkflowContext[Any] = args[-1]
            turn = _TurnContext(ctx, self.inner.id)
            result = await _call(spec, self.inner, args[:-1], turn)
            await self._settle(turn, result, ctx)

        return HandlerSpec(
            name=f"inner_{spec.name}",
            func=answer,
            input_types=spec.input_types,
            output_types=outputs,
            takes_ctx=True,
            is_async=True,
            is_method=False,
            response_types=spec.response_types,
            is_response=spec.is_response,
        )

    async def _settle(self, turn: _TurnContext, result: Any, ctx: WorkflowContext[Any]) -> None:
        replies = [*turn.sent, *([] if result is None else [result])]
        if not replies and not turn.yielded and (turn.asked or turn.continued):
            return  # the turn goes on: an answer from outside, or its own note, comes back
        pending = await ctx.get_executor_state(_PENDING)
        if pending is None:
            raise AgentError(
                f"participant {self.name!r} answered, but no conversation was waiting for its "
                "answer in this run",
                agent_name=self.name,
            )
        before = Conversation.model_validate(pending[0])
        given = before.messages[len(before.messages) - pending[1] :]
        new, usage = self._reply(replies, given)
        ended = f"{self.name!r} ended the conversation" if turn.yielded else None
        after = before.after_turn(self.name, new, usage, ended)
        await ctx.set_executor_state(_PENDING, None)
        if self._incremental:
            await ctx.set_executor_state(_SEEN, len(after.messages))
        await self.policy.route(self, after, ctx)

    def _reply(
        self, replies: list[Any], given: list[ChatMessage]
    ) -> tuple[list[ChatMessage], Usage]:
        new: list[ChatMessage] = []
        usage = Usage()
        for value in replies:
            if isinstance(value, AgentResponse):
                messages = list(value.messages)
                usage = usage + value.usage
            elif isinstance(value, Conversation):
                messages = _after_prefix(value.messages, given)
                usage = usage + value.usage
            elif isinstance(value, ChatMessage):
                messages = [value]
            elif isinstance(value, str):
                messages = [ChatMessage("assistant", value)]
            elif isinstance(value, CodeResult):
                messages = [ChatMessage("user", value.text)]
            elif isinstance(value, list) and all(isinstance(m, ChatMessage) for m in value):
                messages = _after_prefix(value, given)  # a nested conversation's output
            else:
                raise TypeError(
                    f"participant {self.name!r} answered with {type(value).__name__} "
                    f"{value!r:.80}; a participant answers with an AgentResponse, a "
                    "ChatMessage, a list of them or a str"
                )
            new.extend(
                m if m.author else m.model_copy(update={"author": self.name}) for m in messages
            )
        if len(new) > 1 and new[-2].role == "tool" and _is_blank(new[-1]):
            new.pop()  # the empty answer closing a turn that ended in a tool (e.g. a handoff)
        return new, usage


def _is_blank(message: ChatMessage) -> bool:
    return message.role == "assistant" and not message.text and not message.tool_calls


def _after_prefix(messages: list[ChatMessage], given: list[ChatMessage]) -> list[ChatMessage]:
    """What a nested conversation added to the messages it was given."""
    if messages[: len(given)] == given:
        return list(messages[len(given) :])
    return list(messages)


def _as_list(given: list[ChatMessage]) -> Any:
    return list(given)


def _last(given: list[ChatMessage]) -> Any:
    return given[-1] if given else ChatMessage("user", "")


def _last_text(given: list[ChatMessage]) -> Any:
    return _last(given).text


def _feeding(inner: Executor, name: str) -> tuple[Callable[[list[ChatMessage]], Any], HandlerSpec]:
    """How to hand the participant its messages: a list, the last message, or its text."""
    specs = [s for s in inner.handler_specs() if not s.is_response]
    feeds: list[tuple[type, Callable[[list[ChatMessage]], Any]]] = [
        (list, _as_list),
        (ChatMessage, _last),
        (str, _last_text),
    ]
    for tp, feed in feeds:
        ranked = [(rank, spec) for spec in specs if (rank := spec.accepts(tp)) is not None]
        if ranked:
            return feed, min(ranked, key=lambda pair: pair[0])[1]
    raise GraphValidationError(
        f"participant {name!r} ({inner!r}) accepts none of list[ChatMessage], ChatMessage or "
        "str, so it cannot be given the conversation; add a handler for list[ChatMessage]"
    )


async def _call(spec: HandlerSpec, inner: Executor, args: tuple[Any, ...], ctx: Any) -> Any:
    fn = spec.func.__get__(inner) if spec.is_method else spec.func
    call_args = (*args, ctx) if spec.takes_ctx else args
    if spec.is_async:
        return await fn(*call_args)
    # A sync handler runs in a worker thread, as the scheduler would run it.
    return await anyio.to_thread.run_sync(functools.partial(fn, *call_args))
