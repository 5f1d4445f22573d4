"""Human approval of tool calls: the question a paused agent asks, and the answer it expects.

A tool declared with ``approval_mode="always_require"`` never runs on the model's say-so
alone. The agent's executor pauses the run with one ``ApprovalRequest`` per such call (via
``ctx.request_info``) and continues when the matching ``ApprovalResponse`` arrives. Both are
plain pydantic data, so a paused run can be checkpointed, and answered from another process.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ("ApprovalRequest", "ApprovalResponse")


class ApprovalRequest(BaseModel):
    """A tool call waiting for a person's decision.

    Attributes:
        agent_name: The agent whose model asked for the call.
        tool_name: The tool to run.
        arguments: The call's arguments as JSON text, exactly as the tool will receive them.
        call_id: The model's id of the call, pairing the decision with it.
        description: What the tool does (its description), shown to the person deciding.
    """

    model_config = ConfigDict(frozen=True)

    agent_name: str
    tool_name: str
    arguments: str
    call_id: str
    description: str = ""


class ApprovalResponse(BaseModel):
    """A person's decision on one ``ApprovalRequest``.

    Attributes:
        approved: Whether the tool may run (once, with exactly the requested arguments).
        reason: Why, passed to the model; most useful with a rejection.
    """

    model_config = ConfigDict(frozen=True)

    approved: bool
    reason: str = ""

    @classmethod
    def approve(cls, reason: str = "") -> ApprovalResponse:
        """Let the call run."""
        return cls(approved=True, reason=reason)

    @classmethod
    def reject(cls, reason: str = "") -> ApprovalResponse:
        """Refuse the call; the model is told, with ``reason``, instead of getting a result."""
        return cls(approved=False, reason=reason)
