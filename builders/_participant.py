"""The conversation every conversation builder passes around, and the turn protocol.

``Conversation`` is the message that travels between the nodes of a conversation workflow
(its checkpoint type name is ``builders._participant:Conversation``: keep it in this module).
A ``TurnPolicy`` decides where it goes after each turn (one per pattern: back to a group
chat's manager, to the next in line, to the agent handed off to, or out as the workflow's
output); the shared steps below are the parts every policy uses. The node that gives each
participant its turns is ``Participant`` in ``builders._participant_node``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from executors import ChatMessage, Usage
from workflow import WorkflowContext

from ._termination import ConversationFinished, ConversationView, TerminationCondition

if TYPE_CHECKING:
    from ._participant_node import Participant

__all__ = (
    "Conversation",
    "Task",
    "TurnPolicy",
    "check_termination",
    "end_reason",
    "finish_conversation",
    "finish_or_send",
    "plain",
    "task_messages",
)

Task = str | ChatMessage | list[ChatMessage]


def plain(value: Any) -> Any:
    """JSON data with sorted keys (models dumped), which checkpoints store most compactly."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: plain(value[k]) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class Conversation(BaseModel):
    """The conversation as it travels between the nodes of a conversation workflow.

    Attributes:
        messages: The whole conversation, the task first.
        added: How many trailing messages the last turn added (at the start: the task's).
        speaker: Who spoke last (``None``: nobody yet).
        previous_speaker: Who spoke before them.
        usage: Tokens spent by the last turn.
        turns: Speaker turns taken.
        spoken: Turns taken per participant.
        termination: The termination condition's state, for patterns without a manager.
        ended: Why a participant ended the conversation itself (a person typing ``exit``).
    """

    model_config = ConfigDict(frozen=True)

    messages: list[ChatMessage] = Field(default_factory=list)
    added: int = 0
    speaker: str | None = None
    previous_speaker: str | None = None
    usage: Usage = Usage()
    turns: int = 0
    spoken: dict[str, int] = Field(default_factory=dict)
    termination: Any = None
    ended: str | None = None

    @classmethod
    def start(cls, task: Task, *, source: str | None = None) -> Conversation:
        """A conversation holding only the task."""
        messages = task_messages(task, source)
        return cls(messages=messages, added=len(messages))

    @property
    def new(self) -> list[ChatMessage]:
        """The messages the last turn added."""
        return self.messages[len(self.messages) - self.added :]

    def after_turn(
        self, speaker: str, new: list[ChatMessage], usage: Usage, ended: str | None
    ) -> Conversation:
        """The conversation once ``speaker`` has said ``new``."""
        return self.model_copy(
            update={
                "messages": [*self.messages, *new],
                "added": len(new),
                "speaker": speaker,
                "previous_speaker": self.speaker,
                "usage": usage,
                "turns": self.turns + 1,
                "spoken": {**self.spoken, speaker: self.spoken.get(speaker, 0) + 1},
                "ended": ended,
            }
        )


def task_messages(task: Any, source: str | None) -> list[ChatMessage]:
    if isinstance(task, str):
        return [ChatMessage("user", task, author=source)]
    if isinstance(task, ChatMessage):
        return [task]
    if isinstance(task, list) and all(isinstance(m, ChatMessage) for m in task):
        return list(task)
    raise TypeError(
        f"a conversation's task must be a str, a ChatMessage or a list of ChatMessage, got "
        f"{type(task).__name__} {task!r:.80}"
    )


class TurnPolicy(Protocol):
    """Where a conversation goes after a participant's turn (one per pattern).

    A policy that subclasses it inherits ``start``: the task is answered unless the policy's
    ``termination`` condition (none by default) already holds on it.
    """

    output_types: tuple[type, ...]
    termination: TerminationCondition | None = None

    async def start(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> Conversation | None:
        """The task arrived at ``node``: the conversation to answer, or ``None`` if it ended."""
        reason, conversation = await check_termination(self.termination, conversation, ctx)
        if reason is not None:
            await finish_conversation(ctx, conversation.messages, 0, reason)
            return None
        return conversation

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        """Send the conversation on (or end it) after ``node``'s turn."""
        ...


# --------------------------------------------------------------------------- shared steps


async def check_termination(
    condition: TerminationCondition | None, conversation: Conversation, ctx: WorkflowContext[Any]
) -> tuple[str | None, Conversation]:
    """Check ``condition`` on the last turn; its new state travels with the conversation."""
    if condition is None:
        return None, conversation
    state = conversation.termination
    if state is None:
        state = condition.initial_state()
    view = ConversationView(
        messages=conversation.messages,
        new=conversation.new,
        usage=conversation.usage,
        run_id=ctx.run_id,
    )
    reason, state = await condition.check(view, state)
    return reason, conversation.model_copy(update={"termination": state})


async def finish_conversation(
    ctx: WorkflowContext[Any], messages: list[ChatMessage], turns: int, reason: str
) -> None:
    """Say why the conversation ended, then emit it as the workflow's output."""
    await ctx.add_event(
        ConversationFinished(
            run_id=ctx.run_id,
            superstep=ctx.superstep,
            executor_id=ctx.executor_id,
            reason=reason,
            messages=len(messages),
            turns=turns,
        )
    )
    await ctx.yield_output(list(messages))


async def end_reason(
    condition: TerminationCondition | None, conversation: Conversation, ctx: WorkflowContext[Any]
) -> tuple[str | None, Conversation]:
    """Why the conversation ends after a turn (``condition`` holds, or the participant ended
    it), or ``None``; the conversation returned carries the condition's new state."""
    reason, conversation = await check_termination(condition, conversation, ctx)
    if reason is None and conversation.ended is not None:
        reason = conversation.ended
    return reason, conversation


async def finish_or_send(
    ctx: WorkflowContext[Any],
    conversation: Conversation,
    reason: str | None,
    *,
    target: str | None = None,
) -> None:
    """Finish the conversation for ``reason`` or, without one, send it on (to ``target``)."""
    if reason is not None:
        await finish_conversation(ctx, conversation.messages, conversation.turns, reason)
    else:
        await ctx.send_message(conversation, target=target)
