"""What a run returns: status, outputs, pending human requests, events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ._errors import WorkflowError
from ._types import RunStatus
from .events import WorkflowEvent

__all__ = ("PendingRequest", "RunResult")


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A question an executor asked with ``ctx.request_info``, still unanswered."""

    request_id: str
    executor_id: str
    payload: Any
    response_type: Any = object


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run (or its latest resumption) ended."""

    run_id: str
    status: RunStatus
    outputs: list[Any] = field(default_factory=list)
    pending_requests: list[PendingRequest] = field(default_factory=list)
    error: BaseException | None = None
    events: list[WorkflowEvent] = field(default_factory=list)
    checkpoint_id: str | None = None

    @property
    def output(self) -> Any:
        """The last output (``None`` when there is none): the usual answer of a workflow."""
        return self.outputs[-1] if self.outputs else None

    def raise_for_status(self) -> RunResult:
        """Raise unless the run completed or is waiting for input; returns self for chaining."""
        if self.status is RunStatus.FAILED:
            if self.error is not None:
                raise self.error
            raise WorkflowError(f"run {self.run_id!r} failed")
        if self.status is RunStatus.CANCELLED:
            raise WorkflowError(f"run {self.run_id!r} was cancelled")
        if self.status is RunStatus.MAX_SUPERSTEPS:
            raise WorkflowError(
                f"run {self.run_id!r} stopped at its max_supersteps limit with messages still "
                "in flight; raise max_supersteps or add a guard that ends the loop"
            )
        return self
