"""``ConcurrentBuilder``: every participant answers the same task at once, then one result.

The graph fans out from a dispatcher to every participant and fans back in to a collector:
the participants run in the same superstep, so concurrently, and the collector gets their
conversations in participant order. Each participant's *reply* is its final message (the
last one with text, authored by the participant).

Without an aggregator the output is the replies, ``list[ChatMessage]`` in participant
order. An aggregator function ``fn(replies) -> result`` (sync or async) makes the output
its result; an aggregator agent is given the task followed by the replies and its final
message is the output.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread

from executors import ChatMessage
from workflow import Executor, GraphValidationError, Workflow, WorkflowContext, handler

from ._participant import Conversation, TurnPolicy
from ._participant_node import Participant, participant_nodes
from ._workflow_builder import WorkflowBuilder

__all__ = ("ConcurrentBuilder",)

Aggregator = Callable[[list[ChatMessage]], Any]


class _Dispatch(Executor):
    """Turns the task into the conversation every participant answers."""

    @handler
    async def on_task(
        self, task: str | ChatMessage | list[ChatMessage], ctx: WorkflowContext[Conversation]
    ) -> Conversation:
        return Conversation.start(task, source=ctx.source)


class _Answer(TurnPolicy):
    """Concurrent: each participant's conversation goes on to the collector."""

    output_types: tuple[type, ...] = (Conversation,)

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        await ctx.send_message(conversation)


class _FinalMessage(TurnPolicy):
    """An aggregator agent's final message is the output."""

    output_types: tuple[type, ...] = (ChatMessage,)

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        await ctx.yield_output(_final(conversation.new, node.name))


def _final(messages: Sequence[ChatMessage], name: str) -> ChatMessage:
    for message in reversed(messages):
        if message.text and message.role != "tool":
            return message
    return ChatMessage("assistant", "", author=name)


class _Collect(Executor):
    """Receives every participant's conversation (in participant order) and combines them."""

    def __init__(
        self, id: str, names: list[str], aggregator: Aggregator | None, agent: str | None
    ) -> None:
        super().__init__(id)
        self.names = names
        self.aggregator = aggregator
        self.agent = agent  # the aggregator agent's node, which gets the task and the replies

    @handler
    async def on_replies(self, answers: list[Conversation], ctx: WorkflowContext[Any]) -> None:
        """Pick each participant's reply; aggregate them or emit them as they are."""
        replies = [_final(c.new, name) for name, c in zip(self.names, answers, strict=True)]
        fn = self.aggregator
        if self.agent is not None:
            first = answers[0]
            task = first.messages[: len(first.messages) - first.added]
            await ctx.send_message(Conversation(messages=[*task, *replies]), target=self.agent)
        elif fn is None:
            await ctx.yield_output(replies)
        else:
            # A sync aggregator runs in a worker thread, so a slow one stalls nothing else.
            result: Any = (
                fn(replies)
                if inspect.iscoroutinefunction(fn)
                else await anyio.to_thread.run_sync(fn, replies)
            )
            if inspect.isawaitable(result):
                result = await result
            await ctx.yield_output(result)


class ConcurrentBuilder:
    """Every participant answers the task concurrently; see the module docs.

    Args:
        participants: Agents, executors, workflows or functions; names must be unique.
        aggregator: ``None``, a function of the replies, or an agent.
        name: The workflow's name.
        checkpoint_store: Where runs are checkpointed.
    """

    def __init__(
        self,
        participants: Sequence[Any],
        aggregator: Any = None,
        *,
        name: str = "concurrent",
        checkpoint_store: Any = None,
    ) -> None:
        self.participants = list(participants)
        self.aggregator = aggregator
        self.name = name
        self.checkpoint_store = checkpoint_store

    def build(self) -> Workflow:
        """Dispatcher, participants, collector (and aggregator); raises GraphValidationError."""
        inner = participant_nodes(self.participants, pattern="ConcurrentBuilder")
        reserved = {"dispatcher", "collector", "gather"}
        agent = self.aggregator if _is_agent(self.aggregator) else None
        if agent is not None:
            reserved.add(agent.name)
        clash = reserved & set(inner)
        if clash:
            raise GraphValidationError(
                f"ConcurrentBuilder: participant name(s) {sorted(clash)!r} are taken by the "
                "dispatcher, the collector or the aggregator; rename them"
            )
        if self.aggregator is not None and agent is None and not callable(self.aggregator):
            raise TypeError(
                f"aggregator {self.aggregator!r} is neither a function of the replies nor an agent"
            )
        policy = _Answer()
        nodes = [Participant(executor, name, policy) for name, executor in inner.items()]
        dispatch = _Dispatch("dispatcher")
        collect = _Collect(
            "collector",
            list(inner),
            None if agent is not None else self.aggregator,
            agent.name if agent is not None else None,
        )
        builder = WorkflowBuilder(
            start=dispatch, name=self.name, checkpoint_store=self.checkpoint_store
        )
        builder.add_fan_out_edges(dispatch, nodes)
        if len(nodes) > 1:
            builder.add_fan_in_edges(nodes, collect)
        else:  # a fan-in needs two sources; one participant still reaches the collector a list
            builder.add_edge(nodes[0], _Wrap("gather")).add_edge("gather", collect)
        if agent is not None:
            ((name, executor),) = participant_nodes([agent], pattern="ConcurrentBuilder").items()
            builder.add_edge(collect, Participant(executor, name, _FinalMessage()))
        return builder.build()


class _Wrap(Executor):
    """Puts a single participant's conversation in a list, as a fan-in would."""

    @handler
    async def on_answer(
        self, answer: Conversation, ctx: WorkflowContext[list[Conversation]]
    ) -> list[Conversation]:
        return [answer]


def _is_agent(value: Any) -> bool:
    return isinstance(getattr(value, "name", None), str) and callable(getattr(value, "run", None))
