"""A run's committed state, and the sink its events go to.

``RunState`` is everything a run has committed at a superstep boundary; a checkpoint is a
snapshot of it. ``EventSink`` collects a run's events and, when streaming, passes them on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._result import PendingRequest
from ._types import RunStatus
from .events import WorkflowEvent

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream

    from ._commit import InvocationRecord, RunSnapshot
    from ._runner import Invocation

__all__ = ("Delivery", "EventSink", "Reply", "RunState")

# (order key, send sequence, source id, message, is a human reply)
Delivery = tuple[int, int, str | None, Any, bool]


@dataclass(frozen=True, slots=True)
class Reply:
    """A human response on its way to the executor that asked."""

    request_id: str
    request: Any
    response: Any


@dataclass(slots=True)
class RunState:
    """Everything a run has committed; a checkpoint is a snapshot of this."""

    run_id: str
    superstep: int = 0
    seq: int = 0
    inbox: dict[str, list[Delivery]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    local: dict[str, dict[str, Any]] = field(default_factory=dict)
    fan_in: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    pending: dict[str, PendingRequest] = field(default_factory=dict)
    outputs: list[Any] = field(default_factory=list)
    # executors of the next superstep that already finished: live, or recorded before a crash
    done: dict[str, Invocation | InvocationRecord] = field(default_factory=dict)
    status: RunStatus = RunStatus.RUNNING
    checkpoint_id: str | None = None
    checkpoint_count: int = 0
    error: BaseException | None = None
    # executors whose breakpoint was just answered: not held again before they run (not
    # checkpointed; an answer stored but not yet acted on holds them once more, harmlessly)
    released: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        """Plain containers of the committed state (values as they are; encode to persist)."""
        return {
            "run_id": self.run_id,
            "superstep": self.superstep,
            "seq": self.seq,
            "inbox": [[eid, [list(d) for d in box]] for eid, box in self.inbox.items()],
            "state": self.state,
            "local": self.local,
            "fan_in": [[gi, list(bufs.items())] for gi, bufs in self.fan_in.items()],
            "pending": [r.fields() for r in self.pending.values()],
            "outputs": self.outputs,
            "status": self.status.value,
            "checkpoint_count": self.checkpoint_count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            run_id=data["run_id"],
            superstep=data["superstep"],
            seq=data["seq"],
            inbox={eid: [tuple(d) for d in box] for eid, box in data["inbox"]},
            state=dict(data["state"]),
            local={k: dict(v) for k, v in data["local"].items()},
            fan_in={int(gi): {s: list(m) for s, m in bufs} for gi, bufs in data["fan_in"]},
            pending={r.request_id: r for r in map(PendingRequest.from_fields, data["pending"])},
            outputs=list(data["outputs"]),
            status=RunStatus(data["status"]),
            checkpoint_count=data.get("checkpoint_count", 0),
        )

    def snapshot(self, status: RunStatus) -> RunSnapshot:
        """A frozen copy of the committed state, to checkpoint with ``status``."""
        from ._commit import RunSnapshot

        return RunSnapshot(
            self.run_id,
            self.superstep,
            self.seq,
            status,
            {eid: tuple(box) for eid, box in self.inbox.items()},
            dict(self.state),
            {eid: dict(values) for eid, values in self.local.items()} if self.local else {},
            {gi: {src: tuple(m) for src, m in bufs.items()} for gi, bufs in self.fan_in.items()}
            if self.fan_in
            else {},
            tuple(self.pending.values()),
            tuple(self.outputs),
        )

    def deliver(self, target: str, message: Any, *, reply: bool = False) -> None:
        """Queue an outside message (the run's input or a human reply) for ``target``."""
        self.inbox.setdefault(target, []).append((-1, self.seq, None, message, reply))
        self.seq += 1


class EventSink:
    """Collects a run's events and, when streaming, passes them on with backpressure."""

    __slots__ = ("_send", "_sent", "events", "streaming")

    def __init__(self, send: MemoryObjectSendStream[WorkflowEvent] | None = None) -> None:
        self.events: list[WorkflowEvent] = []
        self._send = send
        self._sent = 0
        self.streaming = send is not None

    def emit(self, event: WorkflowEvent) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        if self._send is None:
            return
        events = self.events
        while self._sent < len(events):
            await self._send.send(events[self._sent])
            self._sent += 1
