"""Events of a Magentic run, one frozen slotted dataclass per kind (match on the class).

Participants add their own: ``AgentDelta`` and ``AgentResponded`` from agents, ``CodeExecuted``
from a code executor.
"""

from __future__ import annotations

from dataclasses import dataclass

from workflow.events import WorkflowEvent

from ._magentic_ledger import ProgressLedger, StopReason, TaskLedger

__all__ = ("FinalAnswer", "PlanCreated", "ProgressLedgerUpdated", "Replanned", "StallDetected")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanCreated(WorkflowEvent):
    """The manager made the run's first task ledger (facts and plan)."""

    executor_id: str
    ledger: TaskLedger


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressLedgerUpdated(WorkflowEvent):
    """The manager assessed round ``round_count``; ``stall_count`` is the counter after it."""

    executor_id: str
    round_count: int
    stall_count: int
    ledger: ProgressLedger


@dataclass(frozen=True, slots=True, kw_only=True)
class StallDetected(WorkflowEvent):
    """The stall counter passed ``max_stall_count``: the team resets (or stops, if out of resets).

    ``reset_count`` counts this reset.
    """

    executor_id: str
    round_count: int
    stall_count: int
    reset_count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Replanned(WorkflowEvent):
    """The manager revised the task ledger, after a stall or a reviewer's ``feedback``."""

    executor_id: str
    ledger: TaskLedger
    reset_count: int
    feedback: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalAnswer(WorkflowEvent):
    """The run's answer (also its output) and why the run stopped."""

    executor_id: str
    text: str
    reason: StopReason
