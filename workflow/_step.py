"""One superstep's invocations on the runner's side: what each produced, routed, and the
order their live events reach the stream in.

The backend returns an ``InvocationOutcome``; the runner routes it (``_routing``) into an
``Invocation``'s deliveries, fan-in contributions, outputs and drops, and turns a finished
one into a commit record (``_commit.InvocationRecord``). ``_Step`` releases concurrent
executors' events in graph order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._commit import InvocationRecord, count_sent
from ._result import PendingRequest
from ._runstate import Delivery, EventSink
from .events import WorkflowEvent

if TYPE_CHECKING:
    from ._edges import EdgeGroup
    from ._executor import Executor

__all__ = ("Invocation",)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Invocation:
    """One executor handling its deliveries of one superstep, and what it produced (routed).

    The runner's side of an invocation: the backend returns an ``InvocationOutcome``, which
    the runner routes into deliveries, fan-in contributions, outputs and drops here.
    """

    __slots__ = (
        "buffer",
        "deliveries",
        "dropped",
        "error",
        "fan_in",
        "inbox",
        "live",
        "local_writes",
        "node",
        "outputs",
        "replayed",
        "requests",
        "sink",
        "state_writes",
    )

    def __init__(self, sink: EventSink, node: Executor, inbox: list[Delivery]) -> None:
        self.sink = sink
        self.node = node
        self.inbox = inbox
        self.live = True
        self.buffer: list[WorkflowEvent] | None = None  # events held back while not live
        self.replayed = False
        self.error: BaseException | None = None
        self.outputs: list[Any] = []
        self.state_writes: Mapping[str, Any] = _EMPTY
        self.local_writes: Mapping[str, Any] = _EMPTY
        self.requests: Sequence[PendingRequest] = ()
        self.deliveries: list[tuple[str, int, Any]] = []
        self.fan_in: list[tuple[int, Any]] = []
        self.dropped: list[tuple[str, str, str]] = []

    def record(
        self, run_id: str, superstep: int, groups: Sequence[EdgeGroup], concurrent: bool
    ) -> InvocationRecord:
        """This finished invocation as a frozen commit record.

        The containers are copies; the write mappings are the outcome's, which nothing
        mutates once the backend returned them.
        """
        fan_in = tuple(self.fan_in)
        deliveries = tuple(self.deliveries)
        sent = (
            count_sent(deliveries, [groups[gi].targets[0] for gi, _ in fan_in])
            if fan_in
            else count_sent(deliveries)
        )
        return InvocationRecord(
            run_id,
            self.node.id,
            superstep,
            deliveries,
            fan_in,
            tuple(self.outputs),
            self.state_writes,
            self.local_writes,
            tuple(self.requests),
            tuple(self.dropped),
            sent,
            concurrent,
        )

    @classmethod
    def replay(cls, sink: EventSink, node: Executor, record: InvocationRecord) -> Invocation:
        """An invocation that already finished (recorded before a crash or failure)."""
        inv = cls(sink, node, [])
        inv.replayed = True
        inv.deliveries = list(record.deliveries)
        inv.fan_in = list(record.fan_in)
        inv.outputs = list(record.outputs)
        inv.state_writes = dict(record.state_writes)
        inv.local_writes = dict(record.local_writes)
        inv.requests = list(record.requests)
        inv.dropped = list(record.dropped)
        return inv

    async def emit(self, event: WorkflowEvent) -> None:
        """The event channel a backend passes this invocation's events through."""
        if self.live:
            sink = self.sink
            sink.emit(event)
            if sink.streaming:
                await sink.flush()
        elif self.buffer is None:
            self.buffer = [event]
        else:
            self.buffer.append(event)


class _Step:
    """Releases concurrent executors' live events in graph order (the head streams live)."""

    __slots__ = ("finished", "head", "invs", "sink")

    def __init__(self, invs: list[Invocation], sink: EventSink) -> None:
        self.invs = invs
        self.sink = sink
        self.head = 0
        self.finished = [False] * len(invs)
        for inv in invs[1:]:
            inv.live = False

    def done(self, index: int) -> None:
        self.finished[index] = True
        invs = self.invs
        while self.head < len(invs) and self.finished[self.head]:
            self.head += 1
            if self.head < len(invs):
                nxt = invs[self.head]
                if nxt.buffer is not None:
                    for event in nxt.buffer:
                        self.sink.emit(event)
                    nxt.buffer = None
                nxt.live = True


def _delivery_key(d: Delivery) -> tuple[int, int]:
    return (d[0], d[1])
