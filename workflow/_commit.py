"""The commit record: what a run committed, as frozen plain data, and who may consume it.

The scheduler (``_runner``, and any other loop that commits invocations, like eager
scheduling) produces these records; durability (``_durable``) consumes them through the
narrow ``Durability`` protocol below and never sees the scheduler, its event sink or the
workflow. The records are named tuples: immutable plain data, and the cheapest records Python
builds (a durable run makes one per invocation and per superstep). Three records:

- ``InvocationRecord``: one finished invocation (executor id, superstep, its routed sends
  with their targets, fan-in contributions, outputs, state writes, requests, drops, and the
  message count per target). A per-invocation durable commit is written from it alone.
- ``RunSnapshot``: everything the run has committed at a boundary (what a checkpoint holds).
- ``SuperstepRecord``: one committed superstep: who ran, messages per edge, the status after
  it (by the one rule the scheduler keeps), and the snapshot.

``RunEnd`` says how the run ended. ``CommitContext`` is what durability may use while the run
goes: announce an event, tell the observer, and start a write in the background.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ._result import PendingRequest
from ._types import RunStatus

if TYPE_CHECKING:
    from ._observer import Observer
    from ._runstate import Delivery
    from .events import WorkflowEvent

__all__ = (
    "CommitContext",
    "Durability",
    "EagerCommit",
    "InvocationRecord",
    "NoDurability",
    "RunEnd",
    "RunSnapshot",
    "SuperstepRecord",
    "count_sent",
)

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def count_sent(
    deliveries: tuple[tuple[str, int, Any], ...] | list[tuple[str, int, Any]],
    fan_in_targets: tuple[str, ...] | list[str] = (),
) -> dict[str, int]:
    """Messages sent per target: the one place an invocation's per-edge counts are made."""
    sent: dict[str, int] = {}
    for d in deliveries:
        dst = d[0]
        sent[dst] = sent.get(dst, 0) + 1
    for dst in fan_in_targets:
        sent[dst] = sent.get(dst, 0) + 1
    return sent


class InvocationRecord(NamedTuple):
    """One finished invocation, routed: what committing it changes.

    Attributes:
        run_id: The run it belongs to.
        executor_id: The executor that ran.
        superstep: The superstep it ran in.
        deliveries: ``(target, order key, message)`` per routed send, in send order.
        fan_in: ``(fan-in group index, message)`` per contribution to a fan-in buffer.
        outputs: Values it yielded, in order.
        state_writes: Run-wide state keys it wrote.
        local_writes: Its own state keys it wrote.
        requests: Questions it asked.
        dropped: ``(target, message type, reason)`` per message routing dropped.
        messages: Messages sent per target (deliveries and fan-in contributions).
        concurrent: Whether siblings ran beside it (then its record is worth a pending write:
            alone, the checkpoint that follows is its record).
    """

    run_id: str
    executor_id: str
    superstep: int
    deliveries: tuple[tuple[str, int, Any], ...] = ()
    fan_in: tuple[tuple[int, Any], ...] = ()
    outputs: tuple[Any, ...] = ()
    state_writes: Mapping[str, Any] = _EMPTY
    local_writes: Mapping[str, Any] = _EMPTY
    requests: tuple[PendingRequest, ...] = ()
    dropped: tuple[tuple[str, str, str], ...] = ()
    messages: Mapping[str, int] = _EMPTY
    concurrent: bool = False


class EagerCommit(NamedTuple):
    """One invocation in an eager commit: enough to replay it on top of a checkpoint.

    Attributes:
        record: What it produced.
        taken: How many deliveries it handled, from the head of its executor's inbox (an
            executor never runs twice at once, so they are still there at commit).
    """

    record: InvocationRecord
    taken: int


class RunSnapshot(NamedTuple):
    """Everything a run has committed at a boundary: what one checkpoint holds.

    The containers are copies (the run goes on); the values in them are the committed values.

    Attributes:
        run_id: The run.
        superstep: The last committed superstep.
        seq: The next send sequence number (keeps delivery order stable across a resume).
        status: The status to record with it.
        inbox: Messages in flight, per target executor, in delivery order.
        state: Run-wide state.
        local: Executors' own state, per executor id.
        fan_in: Fan-in buffers: per group index, per source, the messages waiting.
        pending: Unanswered requests.
        outputs: Outputs so far.
    """

    run_id: str
    superstep: int
    seq: int
    status: RunStatus
    inbox: Mapping[str, tuple[Delivery, ...]]
    state: Mapping[str, Any]
    local: Mapping[str, Mapping[str, Any]]
    fan_in: Mapping[int, Mapping[str, tuple[Any, ...]]]
    pending: tuple[PendingRequest, ...]
    outputs: tuple[Any, ...]


class SuperstepRecord(NamedTuple):
    """One committed superstep.

    Attributes:
        superstep: The superstep just committed.
        ran: Executors that ran in it, in graph order.
        messages: Messages sent per edge, ``{"source->target": count}`` (fan-in included).
        status: The run's status after it (``RUNNING`` while messages are in flight).
        snapshot: The run's committed state after it (its ``status`` is ``status``).
    """

    superstep: int
    ran: tuple[str, ...]
    messages: Mapping[str, int]
    status: RunStatus
    snapshot: RunSnapshot


class RunEnd(NamedTuple):
    """How a run (or this process's part of it) ended.

    Attributes:
        run_id: The run.
        status: Its final status.
        failed_executor: The executor whose failure ended it, if one did.
        error: ``repr`` of the error that ended it (an executor's own error, not the wrapper).
    """

    run_id: str
    status: RunStatus
    failed_executor: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CommitContext:
    """What durability may use while a run goes, given once when it starts.

    Attributes:
        emit: Adds an event to the run's stream (``CheckpointSaved``).
        observer: The run's observer, if any (checkpoint timings, trace context).
        spawn: Starts a coroutine function in the run's background task group (asynchronous
            durability only; ``None`` when durability said it writes in the foreground).
    """

    emit: Callable[[WorkflowEvent], None]
    observer: Observer | None = None
    spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], object] | None = None


class Durability(Protocol):
    """What the scheduler tells whoever makes a run durable (a store, a test double).

    Every call gets frozen records; an implementation keeps its own bookkeeping (checkpoint
    ids) and reports ``checkpoint_id``, the run's latest committed checkpoint.
    """

    # a trace to link the run to (the checkpoint's trace context, on resume)
    trace_link: dict[str, str] | None
    # writes checkpoints in ``CommitContext.spawn``'s background while the run goes on
    background: bool

    @property
    def checkpoint_id(self) -> str | None:
        """The latest checkpoint this run has (``None`` before the first)."""
        ...

    async def started(self, snapshot: RunSnapshot, ctx: CommitContext) -> None:
        """The run is about to execute its first superstep of this process."""
        ...

    async def invocation_finished(self, record: InvocationRecord) -> BaseException | None:
        """Record a finished invocation at once (a pending write).

        Returns an error that fails that invocation (what it produced cannot be recorded,
        e.g. a value the checkpoint serializer refuses); raises ``CheckpointError`` when the
        store fails (the run ends ``FAILED``).
        """
        ...

    async def superstep_committed(self, record: SuperstepRecord) -> None:
        """Commit a checkpoint of ``record.snapshot``."""
        ...

    async def paused(self, snapshot: RunSnapshot) -> None:
        """Commit a checkpoint of a run stopped at a breakpoint (its request is pending)."""
        ...

    async def eager_committed(
        self,
        commits: tuple[EagerCommit, ...],
        messages: Mapping[str, int],
        status: RunStatus,
        snapshot: Callable[[], RunSnapshot],
        full: bool,
    ) -> bool:
        """Commit finished eager invocations (in commit order) durably.

        Either as one pending write against the latest checkpoint (replayed on resume), or
        as a new checkpoint of ``snapshot()`` (the run's state with them applied; it must be
        called before the first ``await``). ``full`` asks for a checkpoint. Returns whether a
        checkpoint was written.
        """
        ...

    async def finished(self, end: RunEnd) -> None:
        """Record the run's final status."""
        ...


class NoDurability:
    """A ``Durability`` that records nothing: a base for doubles that watch a few calls."""

    trace_link: dict[str, str] | None = None
    background = False

    @property
    def checkpoint_id(self) -> str | None:
        return None

    async def started(self, snapshot: RunSnapshot, ctx: CommitContext) -> None:
        return None

    async def invocation_finished(self, record: InvocationRecord) -> BaseException | None:
        return None

    async def superstep_committed(self, record: SuperstepRecord) -> None:
        return None

    async def paused(self, snapshot: RunSnapshot) -> None:
        return None

    async def eager_committed(
        self,
        commits: tuple[EagerCommit, ...],
        messages: Mapping[str, int],
        status: RunStatus,
        snapshot: Callable[[], RunSnapshot],
        full: bool,
    ) -> bool:
        return False

    async def finished(self, end: RunEnd) -> None:
        return None
