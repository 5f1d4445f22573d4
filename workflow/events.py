"""Events a run emits, one frozen slotted dataclass per kind.

Consumers ``match`` on the class, never on a string tag. Every event carries ``run_id`` and
``superstep``; the order of events is deterministic for the same inputs: executors of one
superstep report in graph order, whatever order they finished in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._types import RunStatus

__all__ = (
    "AgentDelta",
    "BreakpointHit",
    "CheckpointSaved",
    "ExecutorCompleted",
    "ExecutorFailed",
    "ExecutorInvoked",
    "MessageDropped",
    "OutputEmitted",
    "RequestInfo",
    "RunFinished",
    "RunStarted",
    "SuperstepCompleted",
    "SuperstepStarted",
    "WorkflowEvent",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowEvent:
    """Base of every event."""

    run_id: str
    superstep: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted(WorkflowEvent):
    """Always the first event of a run (also of a resumed one)."""

    workflow_name: str
    resumed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SuperstepStarted(WorkflowEvent):
    """The executors in ``executor_ids`` are about to run concurrently."""

    executor_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SuperstepCompleted(WorkflowEvent):
    """Every executor of the superstep finished and its results were committed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorInvoked(WorkflowEvent):
    """An executor starts handling its deliveries of this superstep."""

    executor_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorCompleted(WorkflowEvent):
    """An executor handled all its deliveries; its messages and state writes are committed.

    ``messages`` counts what it sent, per target (fan-in contributions included).
    """

    executor_id: str
    messages: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorFailed(WorkflowEvent):
    """An executor raised (after retries); its messages and state writes were discarded."""

    executor_id: str
    error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDropped(WorkflowEvent):
    """A message reached a target with no handler for its type."""

    source_id: str
    target_id: str
    message_type: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputEmitted(WorkflowEvent):
    """A workflow output, in emission order."""

    executor_id: str
    data: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInfo(WorkflowEvent):
    """An executor asked for outside input; the run will pause once nothing else can run."""

    request_id: str
    executor_id: str
    payload: Any
    response_type: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakpointHit(WorkflowEvent):
    """The run stopped before ``executor_id`` ran (``pause_before``); ``superstep`` is the one
    about to start. Answer ``request_id`` with ``None`` (``resume(responses=...)``) to go on."""

    executor_id: str
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointSaved(WorkflowEvent):
    """A checkpoint was committed durably (or, with async durability, handed to the store)."""

    checkpoint_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentDelta(WorkflowEvent):
    """A streamed piece of a model's reply."""

    executor_id: str
    text: str
    agent_name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished(WorkflowEvent):
    """Always the last event of a run; ``status`` says how it ended."""

    status: RunStatus
    error: str | None = None
    pending_requests: tuple[Any, ...] = ()
