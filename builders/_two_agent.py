"""Two-agent chat: ``a`` answers the message, then ``a`` and ``b`` take turns.

The classic pair as a two-node workflow (``a <-> b``), the conversation passed back and
forth. It stops when the next speaker has had its ``max_turns`` turns, when a termination
condition holds (checked on the message and after every turn; its state travels with the
conversation), or when a participant ends it itself (a ``HumanExecutor`` answered
``exit``). The output is the conversation as ``list[ChatMessage]``.
"""

from __future__ import annotations

from typing import Any

from workflow import RunResult, Workflow, WorkflowContext

from ._participant import Conversation, Task, TurnPolicy, end_reason, finish_or_send
from ._participant_node import Participant, participant_nodes
from ._termination import TerminationCondition, as_condition
from ._workflow_builder import WorkflowBuilder

__all__ = ("two_agent_chat", "two_agent_workflow")


class _Alternate(TurnPolicy):
    """After a turn, the other one speaks, unless the chat is over."""

    output_types: tuple[type, ...] = (Conversation,)

    def __init__(
        self, other: str, max_turns: int | None, termination: TerminationCondition | None
    ) -> None:
        self.other = other
        self.max_turns = max_turns
        self.termination = termination

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        reason, conversation = await end_reason(self.termination, conversation, ctx)
        limit = self.max_turns
        if reason is None and limit is not None and conversation.spoken.get(self.other, 0) >= limit:
            reason = f"max_turns={limit}: {self.other!r} has had its {limit} turns"
        await finish_or_send(ctx, conversation, reason, target=self.other)


def two_agent_workflow(
    a: Any,
    b: Any,
    *,
    max_turns: int | None = None,
    termination: Any = None,
    name: str = "two_agent_chat",
    checkpoint_store: Any = None,
) -> Workflow:
    """The two-agent chat as a reusable ``Workflow`` (its input is the opening message).

    Args:
        a: Answers the opening message (an agent, executor, workflow or function).
        b: Answers ``a``.
        max_turns: Most turns per participant (``None``: no limit).
        termination: A condition or a function of the conversation.
        name: The workflow's name.
        checkpoint_store: Where runs are checkpointed.

    Raises:
        GraphValidationError: The two have the same name.
    """
    if max_turns is not None and (not isinstance(max_turns, int) or max_turns < 1):
        raise ValueError(f"max_turns must be a positive int or None, got {max_turns!r}")
    condition = as_condition(termination)
    (first, first_node), (second, second_node) = participant_nodes(
        [a, b], pattern="two_agent_chat"
    ).items()
    node_a = Participant(first_node, first, _Alternate(second, max_turns, condition))
    node_b = Participant(second_node, second, _Alternate(first, max_turns, condition))
    return (
        WorkflowBuilder(
            start=node_a,
            name=name,
            checkpoint_store=checkpoint_store,
            max_supersteps=max(1000, 2 * (max_turns or 0) + 2),
        )
        .add_edge(node_a, node_b)
        .add_edge(node_b, node_a)
        .build()
    )


async def two_agent_chat(
    a: Any,
    b: Any,
    message: Task,
    *,
    max_turns: int | None = None,
    termination: Any = None,
    run_id: str | None = None,
    checkpoint_store: Any = None,
) -> RunResult:
    """Run a two-agent chat: ``a`` answers ``message`` first, then they alternate.

    Returns the ``RunResult``; its output is the conversation (``list[ChatMessage]``). A
    chat that pauses for a person's input ends ``AWAITING_INPUT``: answer it with
    ``two_agent_workflow(...)``'s ``resume`` (build the workflow yourself to keep it).
    """
    wf = two_agent_workflow(
        a, b, max_turns=max_turns, termination=termination, checkpoint_store=checkpoint_store
    )
    return await wf.run(message, run_id=run_id)
