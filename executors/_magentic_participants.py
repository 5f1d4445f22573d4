"""Magentic participants: how team members are wrapped, addressed and heard.

Agents become plain ``AgentExecutor`` nodes; executors (an ``AgentExecutor``, a
``HumanExecutor``, a ``CodeExecutor``...) are used as they are. A team reset goes to every
member with a handler for ``ConversationReset``. Each member is addressed in the richest
form it accepts: the conversation delta as ``list[ChatMessage]``, else one ``ChatMessage``
rendering it (a code executor runs its fenced blocks), else that text as ``str``. Whatever a
member sends back is read as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from workflow import Executor

from ._agent_executor import AgentExecutor, ConversationReset
from ._agents import AgentResponse
from ._chat import ChatMessage, Usage

__all__ = (
    "Member",
    "as_member",
    "as_participant",
    "render",
    "reply_text",
)

Mode = Literal["chat", "message", "text"]


def as_participant(item: Any) -> Executor:
    """The node for one team member: an executor as it is, an agent in an ``AgentExecutor``."""
    if isinstance(item, Executor):
        return item
    as_executor = getattr(item, "as_executor", None)
    if callable(as_executor):
        node: Executor = as_executor()  # e.g. Workflow.as_agent: the agent knows its node
        return node
    name = getattr(item, "name", None)
    if isinstance(name, str) and name and callable(getattr(item, "run", None)):
        return AgentExecutor(item)
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
