"""What one run did, reduced to what a diagram can show: node status and edge traffic.

A ``RunOverlay`` comes from a ``RunResult`` (its events), from a checkpoint (the ``"overlay"``
entry the runner records in ``checkpoint.data``), from that entry as a plain mapping, or from
``(run_id, store)`` (the run's latest checkpoint). Keys are executor ids, namespaced with ``/``
inside sub-workflows; edge keys are ``"source->target"``.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from workflow import CheckpointError, RunResult
from workflow.events import (
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    MessageDropped,
)

__all__ = ("RunOverlay", "load_overlay", "overlay_from")

STATUSES = ("completed", "failed", "waiting", "running")
# The pending-write key under which the core records which executor failed a run, and why.
FAILURE_KEY = "!failed"
T = TypeVar("T")


class UnknownRunError(CheckpointError, LookupError):
    """The store has no checkpoint of the run asked for: a ``CheckpointError``, as an unknown
    run is for ``resume``, and also the ``LookupError`` it was before it joined the tree."""


@dataclass(frozen=True, slots=True)
class RunOverlay:
    """Per-executor status and per-edge message counts of one run.

    Attributes:
        status: Executor id to ``"completed"``, ``"failed"``, ``"waiting"`` (for input) or
            ``"running"`` (started, never finished: the run was cancelled or crashed).
            Executors absent from it were never reached.
        messages: ``"source->target"`` to the number of messages delivered along that edge.
        errors: Executor id to the error that failed it.
        invocations: Executor id to how many supersteps it ran in.
        dropped: ``"source->target"`` to messages the target had no handler for.
        exact: False when ``messages`` was inferred from which executors ran in consecutive
            supersteps (counts supersteps, not messages); the diagram then marks counts ``~``.
        run_id: The run, for the caption.
        run_status: How the run ended, for the caption.
        note: Shown in the caption, e.g. when a checkpoint recorded no overlay.
    """

    status: Mapping[str, str] = field(default_factory=dict)
    messages: Mapping[str, int] = field(default_factory=dict)
    errors: Mapping[str, str] = field(default_factory=dict)
    invocations: Mapping[str, int] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)
    exact: bool = True
    run_id: str | None = None
    run_status: str | None = None
    note: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **extra: Any) -> RunOverlay:
        """Read the runner's ``{"status", "messages", "errors"}`` entry (unknown keys ignored)."""

        def table(key: str, conv: Callable[[Any], T]) -> dict[str, T]:
            raw = data.get(key) or {}
            if not isinstance(raw, Mapping):
                raise ValueError(f"run overlay entry {key!r} must be a mapping, got {raw!r:.80}")
            return {str(k): conv(v) for k, v in raw.items()}

        status = table("status", str)
        unknown = sorted({s for s in status.values() if s not in STATUSES})
        if unknown:
            raise ValueError(
                f"run overlay has unknown status {unknown[0]!r}; expected one of {STATUSES!r}"
            )
        fields: dict[str, Any] = {
            "status": status,
            "messages": table("messages", int),
            "errors": table("errors", str),
            "invocations": table("invocations", int),
            "dropped": table("dropped", int),
        }
        for key in ("run_id", "run_status", "note"):
            if data.get(key) is not None:
                fields[key] = str(data[key])
        fields.update(extra)
        return cls(**fields)


def overlay_from(run: Any, pairs: Iterable[tuple[str, str]] = ()) -> RunOverlay:
    """Turn whatever ``run=`` was given into a ``RunOverlay``.

    Args:
        run: A ``RunOverlay``, a ``RunResult``, a checkpoint (any object with a ``.data``
            mapping), the overlay mapping itself, or ``(run_id, store)``.
        pairs: The graph's ``(source, target)`` pairs, used to infer edge traffic from a
            ``RunResult`` whose events do not say who sent what.

    Raises:
        TypeError: ``run`` is none of the above.
        RuntimeError: ``(run_id, store)`` was given inside a running event loop.
    """
    if isinstance(run, RunOverlay):
        return run
    if isinstance(run, RunResult):
        return from_result(run, pairs)
    if isinstance(run, tuple) and len(run) == 2 and isinstance(run[0], str):
        run_id, store = run
        return _blocking(lambda: load_overlay(run_id, store))
    data = getattr(run, "data", None)
    if isinstance(data, Mapping):
        return from_checkpoint(run)
    if isinstance(run, Mapping):
        return RunOverlay.from_mapping(run)
    raise TypeError(
        f"run= must be a RunResult, a Checkpoint, an overlay mapping or (run_id, store), "
        f"got {type(run).__name__} {run!r:.80}"
    )


async def load_overlay(run_id: str, store: Any, checkpoint_id: str | None = None) -> RunOverlay:
    """The overlay of ``run_id`` (up to ``checkpoint_id``) from ``store``'s records.

    Adds up the per-superstep records of the run's checkpoints (``history_overlay``), with
    failures and pending requests, and the run's own status. Use this from async code, then
    pass the result as ``run=``: ``render`` is synchronous and cannot drive an async store
    inside a running event loop.

    Raises:
        CheckpointError: the store has no checkpoint for ``run_id`` (also a ``LookupError``).
            Or ``checkpoint_id`` is not one of the run's checkpoints.
    """
    with _store_read(store, "read the latest checkpoint", run_id):
        latest = await store.latest(run_id)
    if latest is None:
        raise UnknownRunError(f"no checkpoint of run {run_id!r} in {store!r}; check the run id")
    with _store_read(store, "list checkpoints", run_id):
        chain = await store.list_checkpoints(run_id)
    writes: Mapping[str, Mapping[str, Any]] = {}
    if checkpoint_id is not None:
        ids = [c.id for c in chain]
        if checkpoint_id not in ids:
            raise CheckpointError(
                f"checkpoint {checkpoint_id!r} is not part of run {run_id!r}; pick one of {ids!r}"
            )
        chain = chain[: ids.index(checkpoint_id) + 1]
    elif chain:  # the latest checkpoint's pending writes: who finished or failed after it
        with _store_read(store, "read pending writes", run_id):
            writes = await store.get_writes(chain[-1].id)
    with _store_read(store, "list runs", run_id):
        runs = await store.list_runs()
    status = next((str(r.status) for r in runs if r.run_id == run_id), None)
    note = f"up to checkpoint {checkpoint_id}" if checkpoint_id is not None else None
    data = history_overlay(chain, writes)
    return RunOverlay.from_mapping(data, run_id=run_id, run_status=status, note=note)


@contextlib.contextmanager
def _store_read(store: Any, what: str, run_id: str) -> Iterator[None]:
    """The store's own failure (``OSError``, a driver error) as a ``CheckpointError`` naming
    the call, as the engine reports it (the core keeps its helper private)."""
    try:
        yield
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint store {type(store).__name__} failed to {what} for run {run_id!r}: "
            f"{exc!r}; nothing was changed: draw the run again once the store works"
        ) from exc


def history_overlay(
    chain: Sequence[Any], writes: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Add up a run's checkpoints (oldest first) into an overlay mapping.

    Each checkpoint's ``data["overlay"]`` records one superstep (``ran``, ``messages``); the
    last one's pending requests mark executors ``"waiting"``; ``writes`` (the pending writes
    after the last checkpoint) mark executors that finished since, and the failure record
    (key ``"!failed"``) the one that failed and why.
    """
    status: dict[str, str] = {}
    messages: Counter[str] = Counter()
    invocations: Counter[str] = Counter()
    for checkpoint in chain:
        overlay = checkpoint.data.get("overlay")
        if not isinstance(overlay, Mapping):
            continue
        for eid in overlay.get("ran") or ():
            status[str(eid)] = "completed"
            invocations[str(eid)] += 1
        for edge, count in (overlay.get("messages") or {}).items():
            messages[str(edge)] += int(count)
    if chain:
        for eid in _pending(chain[-1].data):
            status[eid] = "waiting"
    errors: dict[str, str] = {}
    for eid, record in (writes or {}).items():
        if eid == FAILURE_KEY:
            failed = str(record.get("executor_id"))
            status[failed] = "failed"
            errors[failed] = str(record.get("error"))
        elif eid.startswith("#"):  # an eager commit: the invocations it recorded
            for item in record.get("commits") or ():
                done = str(item.get("executor_id"))
                status[done] = "completed"
                invocations[done] += 1
        else:
            status[eid] = "completed"
    return {
        "status": status,
        "messages": dict(messages),
        "errors": errors,
        "invocations": dict(invocations),
    }


def from_checkpoint(checkpoint: Any) -> RunOverlay:
    """What one checkpoint records for diagrams (``data["overlay"]``).

    A full overlay (``status``/``messages``/``errors``) is used as is. The core records a
    per-superstep delta (``ran``/``messages``): alone it shows that superstep and the pending
    requests, and the caption says so; ``(run_id, store)`` or ``load_overlay`` add up the run.
    """
    data: Mapping[str, Any] = checkpoint.data
    label = f"checkpoint {getattr(checkpoint, 'id', '?')} (superstep {checkpoint.superstep})"
    known: dict[str, Any] = {"note": label}
    if getattr(checkpoint, "run_id", None) is not None:
        known["run_id"] = str(checkpoint.run_id)
    if getattr(checkpoint, "status", None) is not None:
        known["run_status"] = str(checkpoint.status)
    raw = data.get("overlay")
    if raw is None:
        return RunOverlay(**{**known, "note": f"{label} recorded no run overlay"})
    if not isinstance(raw, Mapping):
        raise ValueError(f"{label}: data['overlay'] must be a mapping, got {raw!r:.80}")
    if "ran" not in raw:
        extra = {k: v for k, v in known.items() if raw.get(k) is None}
        return RunOverlay.from_mapping(raw, **extra)
    status = {str(eid): "completed" for eid in raw.get("ran") or ()}
    for request in _pending(data):
        status[request] = "waiting"
    known["note"] = f"{label}: this superstep only; load_overlay(run_id, store) adds up the run"
    return RunOverlay.from_mapping({"status": status, "messages": raw.get("messages")}, **known)


def _pending(data: Mapping[str, Any]) -> list[str]:
    """Executor ids with pending requests in a checkpoint's encoded run state (best effort).

    A request is recorded as a list ``[request_id, executor_id, ...]`` or as a mapping with
    an ``"executor_id"``; anything else is skipped (a diagram is no place to fail a load).
    """
    run = data.get("run")
    pending = run.get("pending") if isinstance(run, Mapping) else None
    found = []
    for request in pending or ():
        if isinstance(request, list | tuple) and len(request) > 1 and isinstance(request[1], str):
            found.append(request[1])
        elif isinstance(request, Mapping) and isinstance(request.get("executor_id"), str):
            found.append(request["executor_id"])
    return found


def from_result(result: RunResult, pairs: Iterable[tuple[str, str]] = ()) -> RunOverlay:
    """Read statuses, errors and traffic from a result's events.

    Only the events of the call that returned ``result`` are there: after a resume, what ran
    before the pause shows as not reached (a checkpoint overlay covers the whole run).
    """
    status: dict[str, str] = {}
    errors: dict[str, str] = {}
    invocations: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    ran: dict[int, list[str]] = {}
    finished: dict[int, set[str]] = {}
    exact = False
    for event in result.events:
        match event:
            case ExecutorInvoked(executor_id=eid, superstep=step):
                status[eid] = "running"
                invocations[eid] += 1
                ran.setdefault(step, []).append(eid)
            case ExecutorCompleted(executor_id=eid, superstep=step):
                status[eid] = "completed"
                finished.setdefault(step, set()).add(eid)
                sent = getattr(event, "messages", None)  # target -> count, once the core has it
                if isinstance(sent, Mapping):
                    exact = True
                    scope = eid.rpartition("/")[0]  # a sub-workflow's events are namespaced
                    for target, count in sent.items():
                        dst = f"{scope}/{target}" if scope else str(target)
                        messages[f"{eid}->{dst}"] += int(count)
            case ExecutorFailed(executor_id=eid, error=error):
                status[eid] = "failed"
                errors[eid] = error
            case MessageDropped(source_id=src, target_id=dst):
                dropped[f"{src}->{dst}"] += 1
            case _:
                pass
    for request in result.pending_requests:
        status[request.executor_id] = "waiting"
    if not exact:
        messages = _infer(pairs, ran, finished)
    return RunOverlay(
        status=status,
        messages=dict(messages),
        errors=errors,
        invocations=dict(invocations),
        dropped=dict(dropped),
        exact=exact or not messages,
        run_id=result.run_id,
        run_status=str(result.status),
    )


def _infer(
    pairs: Iterable[tuple[str, str]], ran: Mapping[int, list[str]], finished: Mapping[int, set[str]]
) -> Counter[str]:
    """Count supersteps in which ``target`` ran right after ``source`` finished.

    A delivery always lands in the superstep after its sender finished, so this is exact for
    a target with one possible sender per superstep and an upper bound otherwise.
    """
    preds: dict[str, list[str]] = {}
    for src, dst in dict.fromkeys(pairs):
        preds.setdefault(dst, []).append(src)
    counts: Counter[str] = Counter()
    for step, targets in ran.items():
        before = finished.get(step - 1, set())
        for dst in targets:
            for src in preds.get(dst, ()):
                if src in before:
                    counts[f"{src}->{dst}"] += 1
    return counts


def _blocking(load: Callable[[], Awaitable[T]]) -> T:
    """Run an async store call from sync code; refuse inside a running event loop."""
    try:
        anyio.get_current_task()
    except RuntimeError:  # no event loop here: we may start one
        pass
    else:
        raise RuntimeError(
            "run=(run_id, store) needs to load from an async store, which a synchronous call "
            "cannot do inside a running event loop; use `overlay = await "
            "visualize.load_overlay(run_id, store)` and pass run=overlay"
        )

    async def main() -> T:
        return await load()

    return anyio.run(main)
