"""``HandoffBuilder``: agents pass the conversation to each other through handoff tools.

Each allowed handoff ``a -> b`` is an edge of the graph (so the diagram shows who may hand
off to whom) and, for a ``ChatAgent``, a generated tool ``handoff_to_b`` on a copy of ``a``
(the agent you passed is not changed). When the model calls it, the turn ends there: the
tool's result records the transfer, the model is not asked again, and the whole
conversation goes to ``b``. Other agents hand off by answering with an assistant message
that calls ``handoff_to_b`` (a ``ToolCall``); a call naming a participant ``a`` may not hand
off to fails the run with ``HandoffError``.

A participant that answers without handing off ends the conversation: its reply is the
last message of the output. A person (a ``HumanExecutor`` participant) handed the
conversation pauses the run with a request for their input; their reply goes back to the
participant that handed off to them (or, without one, to the first they may hand off to).
Termination conditions are checked on the task and after every turn, before any transfer,
so ``HandoffTo("human")`` stops a conversation instead of paging someone; their state
travels with the conversation.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from executors import (
    AgentExecutor,
    ChatAgent,
    ChatDelta,
    ChatMessage,
    ChatResponse,
    Tool,
    ToolSpec,
)
from workflow import Executor, GraphValidationError, Workflow, WorkflowContext, WorkflowError

from ._participant import Conversation, TurnPolicy, end_reason, finish_or_send
from ._participant_node import Participant, participant_nodes
from ._termination import TerminationCondition, as_condition
from ._workflow_builder import WorkflowBuilder

__all__ = ("HandoffBuilder", "HandoffError", "handoff_tool_name")

_PREFIX = "handoff_to_"


class HandoffError(WorkflowError):
    """A participant handed off to someone it may not hand off to."""


def handoff_tool_name(target: str) -> str:
    """The name of the tool that hands the conversation to ``target``."""
    return f"{_PREFIX}{target}"


def _transfer_tool(target: str, description: str) -> Tool[[], str]:
    def transfer() -> str:
        return f"Transferred the conversation to {target}."

    about = f"Hand the conversation over to {target}"
    about += f", who {description[0].lower()}{description[1:]}" if description else ""
    return Tool(transfer, name=handoff_tool_name(target), description=about.rstrip(".") + ".")


class _StopAfterHandoff:
    """A chat client that ends an agent's turn right after a handoff tool has run.

    The agent's tool loop would ask the model again once the tool result is in; here the
    model is not called and the turn ends with an empty answer, which the participant
    node leaves out of the shared conversation.
    """

    def __init__(self, client: Any, names: frozenset[str]) -> None:
        self.client = client
        self.names = names
        self.model = getattr(client, "model", None)

    def _handed_off(self, messages: Sequence[ChatMessage]) -> bool:
        answered: set[str] = set()
        for message in reversed(messages):
            if message.role == "tool" and message.tool_call_id:
                answered.add(message.tool_call_id)
                continue
            return message.role == "assistant" and any(
                c.name in self.names and c.id in answered for c in message.tool_calls
            )
        return False

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        if self._handed_off(messages):
            return ChatResponse("", finish_reason="stop", model=self.model)
        response: ChatResponse = await self.client.get_response(
            messages, tools=tools, response_format=response_format, max_tokens=max_tokens
        )
        return response

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        if self._handed_off(messages):
            yield ChatDelta(finish_reason="stop", model=self.model)
            return
        stream = self.client.get_streaming_response(messages, tools=tools, max_tokens=max_tokens)
        async for delta in stream:
            yield delta


def _with_handoffs(agent: ChatAgent, targets: dict[str, str]) -> ChatAgent:
    """A copy of ``agent`` that also has a handoff tool per target."""
    tools = [_transfer_tool(name, description) for name, description in targets.items()]
    clash = {t.name for t in tools} & {t.name for t in agent.tools}
    if clash:
        raise GraphValidationError(
            f"HandoffBuilder: agent {agent.name!r} already has tool(s) {sorted(clash)!r}; "
            "handoff tools are generated, so rename those tools"
        )
    return ChatAgent(
        agent.name,
        agent.description,
        agent.instructions,
        _StopAfterHandoff(agent.chat_client, frozenset(t.name for t in tools)),
        tools=[*agent.tools, *tools],
        # The handoff round must not be the one that trips the agent's tool-loop limit.
        max_tool_iterations=agent.max_tool_iterations + 1,
        max_tokens=agent.max_tokens,
    )


class _Handoff(TurnPolicy):
    """After a turn: transfer on a handoff call, ask the person back, or end."""

    output_types: tuple[type, ...] = (Conversation,)

    def __init__(
        self,
        targets: list[str],
        termination: TerminationCondition | None,
        *,
        human: bool,
    ) -> None:
        self.targets = targets
        self.termination = termination
        self.human = human

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        target = self._target(node, conversation)
        reason, conversation = await end_reason(self.termination, conversation, ctx)
        if reason is None and target is None:
            reason = f"{node.name!r} answered without handing off"
        await finish_or_send(ctx, conversation, reason, target=target)

    def _target(self, node: Participant, conversation: Conversation) -> str | None:
        if self.human:  # a person answers whoever handed them the conversation
            previous = conversation.previous_speaker
            if previous in self.targets:
                return previous
            return self.targets[0] if self.targets else None
        for message in conversation.new:
            for call in message.tool_calls:
                if not call.name.startswith(_PREFIX):
                    continue
                target = call.name[len(_PREFIX) :]
                if target not in self.targets:
                    raise HandoffError(
                        f"participant {node.name!r} handed off to {target!r}, but it may hand "
                        f"off only to {self.targets!r}; add {target!r} to "
                        f"handoffs[{node.name!r}] or fix the participant"
                    )
                return target
        return None


class HandoffBuilder:
    """Agents that hand the conversation to each other; see the module docs.

    Args:
        participants: Agents, people (``HumanExecutor``), executors or workflows; names
            must be unique.
        handoffs: ``{name: [names it may hand off to]}``. A person with no entry answers
            whoever may hand off to them.
        start: The participant that gets the task (default: the first).
        termination: A condition or a function of the conversation.
        name: The workflow's name.
        checkpoint_store: Where runs are checkpointed.
        max_supersteps: The run's superstep limit (one per turn).
    """

    def __init__(
        self,
        participants: Sequence[Any],
        handoffs: Mapping[str, Sequence[str]] | None = None,
        *,
        start: str | None = None,
        termination: Any = None,
        name: str = "handoff",
        checkpoint_store: Any = None,
        max_supersteps: int = 1000,
    ) -> None:
        self.participants = list(participants)
        self.handoffs = {k: list(v) for k, v in (handoffs or {}).items()}
        self.start = start
        self.termination = as_condition(termination)
        self.name = name
        self.checkpoint_store = checkpoint_store
        self.max_supersteps = max_supersteps

    def build(self) -> Workflow:
        """One node per participant, one edge per allowed handoff; may raise
        GraphValidationError."""
        inner = participant_nodes(self.participants, pattern="HandoffBuilder")
        routes = self._routes(inner)
        nodes: dict[str, Participant] = {}
        for name, executor in inner.items():
            human = executor.kind == "human"
            if isinstance(executor, AgentExecutor) and isinstance(executor.agent, ChatAgent):
                targets = {t: _describe(inner[t]) for t in routes[name]}
                agent = _with_handoffs(executor.agent, targets) if targets else executor.agent
                executor = AgentExecutor(agent, stream=executor.stream)
            policy = _Handoff(routes[name], self.termination, human=human)
            nodes[name] = Participant(executor, name, policy)
        first = self.start if self.start is not None else next(iter(inner))
        if first not in nodes:
            raise GraphValidationError(
                f"HandoffBuilder: start {first!r} is not a participant; choose one of "
                f"{list(nodes)!r}"
            )
        builder = WorkflowBuilder(
            start=nodes[first],
            name=self.name,
            checkpoint_store=self.checkpoint_store,
            max_supersteps=self.max_supersteps,
        )
        for name, node in nodes.items():
            builder.add_executor(node)
            for target in routes[name]:
                builder.add_edge(node, nodes[target])
        return builder.build()

    def _routes(self, inner: dict[str, Executor]) -> dict[str, list[str]]:
        problems = []
        for source, targets in self.handoffs.items():
            if source not in inner:
                problems.append(f"handoffs names {source!r}, which is not a participant")
            for target in targets:
                if target not in inner:
                    problems.append(f"{source!r} may hand off to {target!r}, not a participant")
                elif target == source:
                    problems.append(f"{source!r} may not hand off to itself")
        if problems:
            raise GraphValidationError(
                "HandoffBuilder: " + "; ".join(problems) + f" (participants: {list(inner)!r})"
            )
        routes = {name: list(dict.fromkeys(self.handoffs.get(name, ()))) for name in inner}
        for name, executor in inner.items():
            if executor.kind == "human" and name not in self.handoffs:
                routes[name] = [s for s, targets in routes.items() if name in targets]
        return routes


def _describe(executor: Executor) -> str:
    agent = getattr(executor, "agent", None)
    text = getattr(agent if agent is not None else executor, "description", "")
    return text if isinstance(text, str) else ""
