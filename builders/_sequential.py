"""``SequentialBuilder``: each participant answers once, in order.

The conversation code every conversation builder shares (``Participant``, ``Conversation``,
``TurnPolicy`` and the shared steps) is in ``builders._participant`` and
``builders._participant_node``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workflow import Workflow, WorkflowContext

from ._participant import Conversation, TurnPolicy, finish_or_send
from ._participant_node import Participant, participant_nodes
from ._workflow_builder import WorkflowBuilder

__all__ = ("SequentialBuilder",)


class _PassAlong(TurnPolicy):
    """Sequential: on to the next participant; the last one's conversation is the output."""

    output_types: tuple[type, ...] = (Conversation, list)

    def __init__(self, last: bool) -> None:
        self.last = last

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        reason = conversation.ended
        if reason is None and self.last:
            reason = f"every participant has spoken ({conversation.turns} turns)"
        await finish_or_send(ctx, conversation, reason)


class SequentialBuilder:
    """Each participant answers once, in order, seeing the whole conversation so far.

    The run's input (a ``str``, a ``ChatMessage`` or a list of them) is the task; the output
    is the conversation as ``list[ChatMessage]``, each reply authored by its participant.
    A participant that ends the conversation itself (a person typing ``exit``) ends it early.

    Args:
        participants: Agents, executors, workflows or functions; names must be unique.
        name: The workflow's name.
        checkpoint_store: Where runs are checkpointed.
    """

    def __init__(
        self,
        participants: Sequence[Any],
        *,
        name: str = "sequential",
        checkpoint_store: Any = None,
    ) -> None:
        self.participants = list(participants)
        self.name = name
        self.checkpoint_store = checkpoint_store

    def build(self) -> Workflow:
        """A workflow chaining the participants; raises ``GraphValidationError``."""
        inner = participant_nodes(self.participants, pattern="SequentialBuilder")
        count = len(inner)
        nodes = [
            Participant(executor, name, _PassAlong(last=i == count - 1))
            for i, (name, executor) in enumerate(inner.items())
        ]
        builder = WorkflowBuilder(
            start=nodes[0], name=self.name, checkpoint_store=self.checkpoint_store
        )
        for node in nodes[1:]:
            builder.add_executor(node)
        if len(nodes) > 1:
            builder.add_chain(nodes)
        return builder.build()
