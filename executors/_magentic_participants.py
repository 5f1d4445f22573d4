"""Magentic participants: how team members are wrapped, addressed and heard.

Agents become ``ResettableAgentExecutor`` nodes so a team reset clears their conversation.
Each member is addressed in the richest form it accepts: the conversation delta as
``list[ChatMessage]``, else one ``ChatMessage`` rendering it (a code executor runs its
fenced blocks), else that text as ``str``. Whatever a member sends back is read as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workflow import Executor, WorkflowContext, handler

from ._agent_executor import AgentExecutor
from ._agents import AgentResponse
from ._chat import ChatMessage, Usage
from ._magentic_ledger import ConversationReset

__all__ = (
    "Member",
    "ResettableAgentExecutor",
    "as_member",
    "as_participant",
    "render",
    "reply_text",
)

Mode = Literal["chat", "message", "text"]


class ResettableAgentExecutor(AgentExecutor):
    """An ``AgentExecutor`` that forgets its run's conversation on ``ConversationReset``.

    Stop-gap until ``AgentExecutor`` handles a reset message itself; the builder wraps
    agents (and plain ``AgentExecutor`` nodes) in it so a team reset is real.
    """

    @handler
    async def on_reset(
        self, message: ConversationReset, ctx: WorkflowContext[AgentResponse]
    ) -> None:
        """Drop the conversation, a turn paused for approval and queued messages."""
        for key in ("conversation", "turn", "queued"):
            await ctx.set_executor_state(key, None)


def as_participant(item: Any) -> Executor:
    """The node for one team member: agents are wrapped so they can be reset."""
    if type(item) is AgentExecutor:
        return ResettableAgentExecutor(item.agent, id=item.id, stream=item.stream)
    if isinstance(item, Executor):
        return item
    name = getattr(item, "name", None)
    if isinstance(name, str) and name and callable(getattr(item, "run", None)):
        return ResettableAgentExecutor(item)
    raise TypeError(
        f"Magentic participant {item!r} is neither an agent (.name, .description and async "
        "run(messages)) nor an Executor; wrap it in one"
    )


@dataclass(frozen=True, slots=True)
class Member:
    """One team member as the orchestrator sees it."""

    name: str
    description: str
    mode: Mode
    resettable: bool


def as_member(ex: Executor, description: str | None = None) -> Member:
    agent = getattr(ex, "agent", None)
    if not description:
        description = getattr(agent, "description", None) or getattr(ex, "description", None)
    if not isinstance(description, str) or not description:
        doc = type(ex).__doc__ or ""
        description = doc.strip().splitlines()[0] if doc.strip() else ""
    mode: Mode
    if ex.can_handle([]):
        mode = "chat"
    elif ex.can_handle(ChatMessage("user", "")):
        mode = "message"
    elif ex.can_handle(""):
        mode = "text"
    else:
        raise TypeError(
            f"Magentic participant {ex.id!r} accepts {ex.input_types()!r}; it needs a handler "
            "for list[ChatMessage], ChatMessage or str to receive instructions"
        )
    return Member(ex.id, description, mode, ex.can_handle(ConversationReset()))


def reply_text(message: Any) -> tuple[str, Usage]:
    """What a participant said, whatever it sends (agents, code executors, functions)."""
    if isinstance(message, AgentResponse):
        return message.text, message.usage
    if isinstance(message, str):
        return message, Usage()
    if isinstance(message, list):
        return "\n\n".join(m.text for m in message if getattr(m, "text", "")), Usage()
    text = getattr(message, "text", None)
    return (text if isinstance(text, str) else str(message)), Usage()


def render(messages: list[ChatMessage]) -> str:
    return "\n\n".join(f"{m.author or m.role}:\n{m.text}" for m in messages)
