"""``AgentTurn``: a ``ChatAgent`` turn in progress, as plain JSON-able data.

``AgentExecutor`` keeps a turn paused for tool approval in the run's checkpointed executor
state (dumped, never pickled), so the turn survives a restart and ``ChatAgent.advance``
continues it exactly where it stopped. Re-exported from ``_agents`` as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from ._approval import ApprovalRequest, ApprovalResponse
from ._chat import ChatMessage, ToolCall, Usage

if TYPE_CHECKING:
    from ._agents import AgentResponse

__all__ = ("AgentTurn",)


class AgentTurn(BaseModel):
    """A ``ChatAgent`` turn in progress: everything needed to continue it, as plain data.

    Attributes:
        agent_name: The agent taking the turn.
        history: The conversation the turn answers.
        new_messages: What the turn has produced so far.
        usage: Tokens spent so far.
        tool_rounds: Rounds of tool calls run so far (bounded by ``max_tool_iterations``).
        decisions: Approval decisions received for pending calls, by call id.
        requested: Pending calls whose approval has already been asked for.
        done: The turn has its final answer.
        truncated: The final answer stopped at the token limit.
    """

    agent_name: str
    history: list[ChatMessage]
    new_messages: list[ChatMessage] = Field(default_factory=list)
    usage: Usage = Usage()
    tool_rounds: int = 0
    decisions: dict[str, ApprovalResponse] = Field(default_factory=dict)
    requested: list[str] = Field(default_factory=list)
    done: bool = False
    truncated: bool = False

    def pending_calls(self) -> tuple[ToolCall, ...]:
        """Tool calls of the latest assistant message that have no result yet."""
        answered = set()
        for message in reversed(self.new_messages):
            if message.role == "tool":
                answered.add(message.tool_call_id)
            elif message.role == "assistant":
                return tuple(c for c in message.tool_calls if c.id not in answered)
        return ()

    def record_decision(self, request: ApprovalRequest, response: ApprovalResponse) -> bool:
        """Store a decision; ``False`` if that call was already decided (a duplicate).

        Raises:
            ValueError: No pending call matches the request's id, tool and exact arguments.
        """
        call = next((c for c in self.pending_calls() if c.id == request.call_id), None)
        if call is None:
            pending = ", ".join(repr(c.id) for c in self.pending_calls()) or "none"
            raise ValueError(
                f"agent {self.agent_name!r} has no pending tool call {request.call_id!r} "
                f"(pending: {pending}); the approval belongs to another turn or run"
            )
        if (call.name, call.arguments) != (request.tool_name, request.arguments):
            raise ValueError(
                f"approval for call {request.call_id!r} of agent {self.agent_name!r} names "
                f"{request.tool_name}({request.arguments}) but the model asked for "
                f"{call.name}({call.arguments}); approve the exact call that was requested"
            )
        if call.id in self.decisions:
            return False
        self.decisions[call.id] = response
        return True

    def response(self) -> AgentResponse:
        """The finished turn as an ``AgentResponse``."""
        from ._agents import AgentError, AgentResponse  # not at the top: _agents imports this

        if not self.done:
            raise AgentError(
                f"the turn of agent {self.agent_name!r} has not finished yet; call "
                "ChatAgent.advance(turn) until it is done",
                agent_name=self.agent_name,
            )
        final = self.new_messages[-1].text if self.new_messages else ""
        return AgentResponse(
            messages=list(self.new_messages),
            text=final,
            agent_name=self.agent_name,
            usage=self.usage,
            truncated=self.truncated,
        )
