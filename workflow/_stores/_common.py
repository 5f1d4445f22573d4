"""What every store shares: the checksummed envelope, the parent rule, errors, names.

A checkpoint is stored as one *envelope*: the canonical JSON bytes of its metadata plus its
packed data (large sub-trees replaced by blob references). The envelope's sha256 is stored
next to it and verified on load; each blob is verified against its own hash by ``unpack``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

from pydantic import ValidationError

from workflow._checkpoint import SCHEMA_VERSION, Checkpoint, check_status, utcnow
from workflow._errors import CheckpointError
from workflow._serde import dumps, loads, pack, unpack

__all__ = (
    "MIN_BLOB_BYTES",
    "Encoded",
    "RunLockedError",
    "StoreBase",
    "StoreUsageError",
    "check_keep_last",
    "check_parent",
    "corrupt",
    "decode_checkpoint",
    "decode_write",
    "duplicate",
    "encode_checkpoint",
    "encode_write",
    "encode_writes",
    "fs_key",
    "locked",
    "moved_on",
    "not_latest",
    "now",
    "retention",
    "unknown_checkpoint",
    "unknown_run",
)

MIN_BLOB_BYTES = 1024
_CHECKPOINT = "ledgerflow.checkpoint"
_WRITE = "ledgerflow.write"


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record ready to store: envelope bytes, their sha256 hex, and the blobs it references."""

    payload: bytes
    checksum: str
    blobs: dict[str, bytes]


def _seal(envelope: dict[str, Any], blobs: dict[str, bytes]) -> Encoded:
    payload = dumps(envelope)
    return Encoded(payload, hashlib.sha256(payload).hexdigest(), blobs)


def encode_checkpoint(cp: Checkpoint, min_blob_bytes: int = MIN_BLOB_BYTES) -> Encoded:
    """Pack ``cp.data`` and seal it with ``cp``'s metadata."""
    packed, blobs = pack(cp.data, min_blob_bytes=min_blob_bytes)
    meta = cp.model_dump(mode="json", exclude={"data"})
    return _seal({"kind": _CHECKPOINT, "meta": meta, "data": packed}, blobs)


def encode_write(
    checkpoint_id: str, executor_id: str, data: dict[str, Any], min_blob_bytes: int = MIN_BLOB_BYTES
) -> Encoded:
    """Pack one pending write (an executor's result inside a superstep in flight)."""
    if not executor_id:
        raise ValueError("executor_id must be a non-empty string")
    packed, blobs = pack(data, min_blob_bytes=min_blob_bytes)
    envelope = {"kind": _WRITE, "checkpoint_id": checkpoint_id, "executor_id": executor_id}
    return _seal({**envelope, "data": packed}, blobs)


def encode_writes(
    checkpoint_id: str,
    writes: Mapping[str, dict[str, Any]] | None,
    min_blob_bytes: int = MIN_BLOB_BYTES,
) -> list[tuple[str, Encoded]]:
    """Pack the pending writes saved together with a checkpoint, in order.

    Everything is encoded before the store touches anything: a write that cannot be stored
    fails the whole ``save`` with nothing stored.
    """
    return [
        (executor_id, encode_write(checkpoint_id, executor_id, data, min_blob_bytes))
        for executor_id, data in (writes or {}).items()
    ]


def _open(payload: bytes, checksum: str, kind: str) -> dict[str, Any]:
    if hashlib.sha256(payload).hexdigest() != checksum:
        raise CheckpointError("its content fails its sha256 checksum (altered or truncated)")
    envelope = loads(payload)
    if type(envelope) is not dict or envelope.get("kind") != kind or "data" not in envelope:
        raise CheckpointError(f"it is not a {kind} record")
    return envelope


def decode_checkpoint(
    checkpoint_id: str, payload: bytes, checksum: str, get_blob: Callable[[str], bytes]
) -> Checkpoint:
    """Verify and rebuild a checkpoint; every failure is a ``CheckpointError`` naming it."""
    try:
        envelope = _open(payload, checksum, _CHECKPOINT)
        meta = envelope.get("meta")
        if type(meta) is not dict or meta.get("id") != checkpoint_id:
            raise CheckpointError("its metadata names another checkpoint")
    except CheckpointError as exc:
        raise corrupt(checkpoint_id, str(exc)) from None
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CheckpointError(
            f"checkpoint {checkpoint_id!r} has schema_version {version!r}, but this Ledgerflow "
            f"reads only version {SCHEMA_VERSION}; upgrade ledgerflow to load it"
        )
    try:
        data = unpack(envelope["data"], get_blob)
        return Checkpoint.model_validate({**meta, "data": data})
    except CheckpointError as exc:
        raise corrupt(checkpoint_id, str(exc)) from None
    except ValidationError as exc:
        raise corrupt(checkpoint_id, f"invalid metadata: {exc}") from None


def decode_write(
    checkpoint_id: str,
    executor_id: str | None,
    payload: bytes,
    checksum: str,
    get_blob: Callable[[str], bytes],
) -> tuple[str, dict[str, Any]]:
    """Verify and rebuild one pending write; returns ``(executor_id, data)``.

    Args:
        executor_id: the executor the caller expects, or ``None`` to take the record's own.
    """
    try:
        envelope = _open(payload, checksum, _WRITE)
        owner = envelope.get("executor_id")
        if type(owner) is not str or envelope.get("checkpoint_id") != checkpoint_id:
            raise CheckpointError("it names no executor or another checkpoint")
        if executor_id is not None and owner != executor_id:
            raise CheckpointError(f"it names executor {owner!r}")
        data = unpack(envelope["data"], get_blob)
        if type(data) is not dict:
            raise CheckpointError("its data is not an object")
        return owner, data
    except CheckpointError as exc:
        raise CheckpointError(
            f"a pending write of executor {executor_id or '?'} after checkpoint "
            f"{checkpoint_id!r} is corrupt: {exc}; resume from an earlier checkpoint instead"
        ) from None


def check_parent(cp: Checkpoint, latest: str | None, parent_run: str | None) -> bool:
    """Enforce the optimistic-concurrency rule of ``save``.

    Args:
        cp: the checkpoint being saved.
        latest: the run's current latest checkpoint id (``None``: no checkpoint yet).
        parent_run: the run that owns ``cp.parent_id`` (``None`` if it does not exist).

    Returns:
        Whether ``cp``'s parent is in the same run (so the parent's writes are now obsolete).
    """
    if cp.parent_id == latest:
        return latest is not None
    if latest is None and cp.parent_id is not None:
        if parent_run is None:
            raise CheckpointError(
                f"checkpoint {cp.id!r} names parent {cp.parent_id!r}, which does not exist; "
                "a fork must start from a stored checkpoint"
            )
        if parent_run != cp.run_id:
            return False  # a fork's first checkpoint
    raise moved_on(cp, latest)


def moved_on(cp: Checkpoint, latest: object) -> CheckpointError:
    """The error for a save whose parent is no longer its run's latest checkpoint."""
    return CheckpointError(
        f"run {cp.run_id!r} moved on: checkpoint {cp.id!r} names parent {cp.parent_id!r} but "
        f"the run's latest checkpoint is {latest!r}; another process may be executing it — "
        "load its latest checkpoint and resume from there"
    )


def unknown_checkpoint(checkpoint_id: str) -> CheckpointError:
    """The error for an id no run has; says where valid ids come from."""
    return CheckpointError(
        f"unknown checkpoint {checkpoint_id!r}; list a run's checkpoints with "
        "`ledgerflow checkpoints RUN_ID` (or store.list_checkpoints)"
    )


def corrupt(checkpoint_id: str, detail: str) -> CheckpointError:
    """The error for a stored checkpoint that fails verification."""
    return CheckpointError(
        f"checkpoint {checkpoint_id!r} is corrupt: {detail}; resume from (or fork off) an "
        "earlier checkpoint instead"
    )


def duplicate(checkpoint_id: str) -> CheckpointError:
    """The error for saving an id twice."""
    return CheckpointError(f"checkpoint {checkpoint_id!r} already exists; ids must be unique")


def not_latest(checkpoint_id: str, run_id: str, latest: str | None) -> CheckpointError:
    """The error for a pending write against a checkpoint its run has moved past."""
    return CheckpointError(
        f"run {run_id!r} moved on: cannot record a write after checkpoint {checkpoint_id!r}, "
        f"the run's latest checkpoint is {latest!r}"
    )


class StoreUsageError(CheckpointError, ValueError):
    """A store method got an argument it cannot accept (caught as ``ValueError`` too)."""


def unknown_run(run_id: str) -> CheckpointError:
    """The error for a run id the store has never recorded (bad input: also a ValueError)."""
    return StoreUsageError(
        f"unknown run {run_id!r}: the store has no record of it; list runs with "
        "`ledgerflow runs` (or store.list_runs)"
    )


def check_keep_last(keep_last: object) -> int:
    """Validate ``prune``'s ``keep_last``: an int >= 0."""
    if type(keep_last) is not int:
        raise StoreUsageError(
            f"keep_last must be an int >= 0 (how many of the newest checkpoints to keep), "
            f"got {keep_last!r}"
        )
    if keep_last < 0:
        raise StoreUsageError(
            f"keep_last must be >= 0, got {keep_last!r}; 0 deletes every checkpoint of the run"
        )
    return keep_last


def retention(older_than: object, status: object) -> tuple[dt.datetime, frozenset[str] | None]:
    """Validate ``prune_runs``'s arguments; returns the cutoff and the statuses (``None``: any).

    Raises:
        StoreUsageError: ``older_than`` is not a ``timedelta`` >= 0, or ``status`` names an
            unknown status or none at all.
    """
    if not isinstance(older_than, dt.timedelta):
        raise StoreUsageError(
            f"older_than must be a datetime.timedelta, e.g. timedelta(days=30), got {older_than!r}"
        )
    if older_than < dt.timedelta(0):
        raise StoreUsageError(
            f"older_than must not be negative, got {older_than!r}; timedelta(0) means every "
            "run not updated since now"
        )
    statuses: frozenset[str] | None = None
    if status is not None:
        single = isinstance(status, str | enum.Enum) or not isinstance(status, Iterable)
        items = [status] if single else list(cast(Iterable[object], status))
        if not items:
            raise StoreUsageError(
                "status is empty, which would match no run; pass None to prune runs of any status"
            )
        try:
            statuses = frozenset(check_status(item) for item in items)
        except ValueError as exc:
            raise StoreUsageError(str(exc)) from None
    return now() - older_than, statuses


class RunLockedError(CheckpointError):
    """Another owner holds the run's ``lock_run``: it is being executed."""


def locked(run_id: str, pid: object) -> CheckpointError:
    """The error for a run another owner is executing."""
    return RunLockedError(
        f"run {run_id!r} is being executed by another process (pid {pid}); wait for it to "
        "finish, or stop that process and resume again"
    )


_SAFE_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


def fs_key(name: str) -> str:
    """A file name for an id: the id itself when safe everywhere, else ``~`` + its sha256."""
    if _SAFE_KEY.fullmatch(name):
        return name
    return "~" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


_clock_lock = threading.Lock()
_last_now = utcnow()


def now() -> dt.datetime:
    """UTC now, strictly increasing within this process (so ``list_runs`` order is stable)."""
    global _last_now
    with _clock_lock:
        current = utcnow()
        if current <= _last_now:
            current = _last_now + dt.timedelta(microseconds=1)
        _last_now = current
        return current


class StoreBase:
    """Context-manager plumbing and the ``bytes_written`` counter every store has."""

    bytes_written: int
    """Payload and new-blob bytes this store object has written (for benchmarks)."""

    def __init__(self) -> None:
        self.bytes_written = 0

    async def aclose(self) -> None:
        """Release resources; overridden by stores that hold any."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
