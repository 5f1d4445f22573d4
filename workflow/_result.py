"""What a run returns: status, outputs, pending human requests, events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import WorkflowError
from ._types import RunStatus
from .events import WorkflowEvent

__all__ = ("NestedQuestion", "PendingRequest", "RunResult")


@dataclass(frozen=True, slots=True)
class PendingRequest:
    """A question an executor asked with ``ctx.request_info``, still unanswered.

    A question asked inside a nested workflow shows the asker's own ``payload`` and
    ``response_type``, and its path as ``executor_id`` (``"outer/inner"``); ``via`` then
    says which node of this run takes the answer and the envelope it receives as the
    request (``None`` for this run's own executors).
    """

    request_id: str
    executor_id: str
    payload: Any
    response_type: Any = object
    via: tuple[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def owner(self) -> str:
        """The executor of this run the answer is delivered to."""
        return self.via[0] if self.via is not None else self.executor_id

    def fields(self) -> dict[str, Any]:
        """Its fields by name, values as they are (``via`` as ``{"owner", "envelope"}``)."""
        return {
            "request_id": self.request_id,
            "executor_id": self.executor_id,
            "payload": self.payload,
            "response_type": self.response_type,
            "via": None if self.via is None else {"owner": self.via[0], "envelope": self.via[1]},
        }

    @classmethod
    def from_fields(cls, data: Mapping[str, Any] | Sequence[Any]) -> PendingRequest:
        """Inverse of :meth:`fields`; also reads the positional form older code wrote,
        ``[id, executor, payload, type(, owner, envelope)]`` (the one place that knows it)."""
        if isinstance(data, Mapping):
            via = data.get("via")
            return cls(
                data["request_id"],
                data["executor_id"],
                data["payload"],
                data["response_type"],
                None if via is None else (via["owner"], via["envelope"]),
            )
        if len(data) not in (4, 6):
            raise ValueError(
                f"a positional request has 4 or 6 fields, not {len(data)}: {list(data)!r}"
            )
        via = (data[4], data[5]) if len(data) > 4 else None
        return cls(data[0], data[1], data[2], data[3], via)


@dataclass(frozen=True, slots=True)
class NestedQuestion:
    """What a node holding a nested workflow asks on behalf of the child's executor ``path``.

    Passed as ``ctx.request_info``'s payload (so wrappers of a context see an ordinary
    question); the context unwraps it into a ``PendingRequest`` showing ``payload`` under
    ``path``, whose answer comes back to the node as a reply to ``envelope``.
    """

    path: str
    payload: Any
    envelope: Any


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
