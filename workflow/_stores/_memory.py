"""In-process checkpoint store for tests and notebooks.

It still seals every record into checksummed canonical bytes and packs blobs exactly like the
durable stores, so data that would fail to serialize (or dedupe) there fails (or dedupes) here.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from workflow._checkpoint import Checkpoint, RunInfo, check_status

from ._common import (
    MIN_BLOB_BYTES,
    StoreBase,
    check_keep_last,
    check_parent,
    decode_checkpoint,
    decode_write,
    duplicate,
    encode_checkpoint,
    encode_write,
    encode_writes,
    locked,
    not_latest,
    now,
    retention,
    unknown_checkpoint,
    unknown_run,
)

__all__ = ("InMemoryCheckpointStore",)


@dataclass
class _Record:
    run_id: str
    checksum: str
    payload: bytes
    refs: frozenset[str]


@dataclass
class _Run:
    workflow_name: str
    status: str
    updated_at: Any
    latest: str | None = None
    checkpoints: list[str] = field(default_factory=list)


class InMemoryCheckpointStore(StoreBase):
    """Checkpoints in this process's memory; gone when it exits.

    Args:
        min_blob_bytes: sub-trees at least this large (canonical JSON) are stored once.
    """

    def __init__(self, *, min_blob_bytes: int = MIN_BLOB_BYTES) -> None:
        super().__init__()
        self._min_blob_bytes = min_blob_bytes
        self._lock = threading.Lock()  # callers may share the store across threads and loops
        self._runs: dict[str, _Run] = {}
        self._checkpoints: dict[str, _Record] = {}
        self._blobs: dict[str, bytes] = {}
        self._writes: dict[str, dict[str, _Record]] = {}
        self._held: set[str] = set()

    def _store_blobs(self, blobs: dict[str, bytes]) -> None:
        for digest, data in blobs.items():
            if digest not in self._blobs:
                self._blobs[digest] = data
                self.bytes_written += len(data)

    async def save(
        self, checkpoint: Checkpoint, *, writes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        """See ``CheckpointStore.save``."""
        enc = encode_checkpoint(checkpoint, self._min_blob_bytes)
        encoded = encode_writes(checkpoint.id, writes, self._min_blob_bytes)
        with self._lock:
            run = self._runs.get(checkpoint.run_id)
            parent = self._checkpoints.get(checkpoint.parent_id or "")
            same_run = check_parent(
                checkpoint, run.latest if run else None, parent.run_id if parent else None
            )
            if checkpoint.id in self._checkpoints:
                raise duplicate(checkpoint.id)
            self._store_blobs(enc.blobs)
            self._checkpoints[checkpoint.id] = _Record(
                checkpoint.run_id, enc.checksum, enc.payload, frozenset(enc.blobs)
            )
            self.bytes_written += len(enc.payload)
            if same_run:
                self._writes.pop(checkpoint.parent_id or "", None)
            if encoded:
                for _, w in encoded:
                    self._store_blobs(w.blobs)
                    self.bytes_written += len(w.payload)
                self._writes[checkpoint.id] = {
                    ex: _Record(checkpoint.run_id, w.checksum, w.payload, frozenset(w.blobs))
                    for ex, w in encoded
                }
            if run is None:
                run = self._runs[checkpoint.run_id] = _Run(checkpoint.workflow_name, "", None)
            run.workflow_name = checkpoint.workflow_name
            run.status = checkpoint.status
            run.updated_at = now()
            run.latest = checkpoint.id
            run.checkpoints.append(checkpoint.id)

    async def put_write(self, checkpoint_id: str, executor_id: str, data: dict[str, Any]) -> None:
        """See ``CheckpointStore.put_write``."""
        enc = encode_write(checkpoint_id, executor_id, data, self._min_blob_bytes)
        with self._lock:
            record = self._checkpoints.get(checkpoint_id)
            if record is None:
                raise unknown_checkpoint(checkpoint_id)
            latest = self._runs[record.run_id].latest
            if latest != checkpoint_id:
                raise not_latest(checkpoint_id, record.run_id, latest)
            self._store_blobs(enc.blobs)
            writes = self._writes.setdefault(checkpoint_id, {})
            writes.pop(executor_id, None)
            writes[executor_id] = _Record(
                record.run_id, enc.checksum, enc.payload, frozenset(enc.blobs)
            )
            self.bytes_written += len(enc.payload)

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        """See ``CheckpointStore.get_writes``."""
        with self._lock:
            writes = dict(self._writes.get(checkpoint_id, {}))
            refs = {h for record in writes.values() for h in record.refs}
            blobs = {h: self._blobs[h] for h in refs if h in self._blobs}
        return {
            ex: decode_write(checkpoint_id, ex, r.payload, r.checksum, blobs.__getitem__)[1]
            for ex, r in writes.items()
        }

    async def set_status(self, run_id: str, workflow_name: str, status: str) -> None:
        """See ``CheckpointStore.set_status``."""
        status = check_status(status)
        with self._lock:
            run = self._runs.setdefault(run_id, _Run(workflow_name, status, None))
            run.status = status
            run.updated_at = now()

    async def list_runs(self) -> list[RunInfo]:
        """See ``CheckpointStore.list_runs``."""
        with self._lock:
            infos = [
                RunInfo(
                    run_id=run_id,
                    workflow_name=run.workflow_name,
                    status=run.status,
                    updated_at=run.updated_at,
                    latest_checkpoint_id=run.latest,
                )
                for run_id, run in self._runs.items()
            ]
        return sorted(infos, key=lambda info: info.updated_at, reverse=True)

    def _load(self, checkpoint_id: str) -> Checkpoint:
        with self._lock:
            record = self._checkpoints.get(checkpoint_id)
            if record is None:
                raise unknown_checkpoint(checkpoint_id)
            blobs = {h: self._blobs[h] for h in record.refs if h in self._blobs}
        return decode_checkpoint(checkpoint_id, record.payload, record.checksum, blobs.__getitem__)

    async def list_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """See ``CheckpointStore.list_checkpoints``."""
        with self._lock:
            run = self._runs.get(run_id)
            ids = list(run.checkpoints) if run else []
        return [self._load(cid) for cid in ids]

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """See ``CheckpointStore.load``."""
        return self._load(checkpoint_id)

    async def latest(self, run_id: str) -> Checkpoint | None:
        """See ``CheckpointStore.latest``."""
        with self._lock:
            run = self._runs.get(run_id)
            latest = run.latest if run else None
        return None if latest is None else self._load(latest)

    def _sweep(self) -> None:
        live: set[str] = set()
        for record in self._checkpoints.values():
            live |= record.refs
        for writes in self._writes.values():
            for record in writes.values():
                live |= record.refs
        for digest in self._blobs.keys() - live:
            del self._blobs[digest]

    def _drop_run(self, run_id: str) -> None:
        run = self._runs.pop(run_id, None)
        for cid in run.checkpoints if run else ():
            self._checkpoints.pop(cid, None)
            self._writes.pop(cid, None)

    async def delete_run(self, run_id: str) -> None:
        """See ``CheckpointStore.delete_run``."""
        with self._lock:
            self._drop_run(run_id)
            self._sweep()

    async def prune(self, run_id: str, keep_last: int) -> int:
        """See ``CheckpointStore.prune``."""
        keep_last = check_keep_last(keep_last)
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise unknown_run(run_id)
            if keep_last == 0 and run_id in self._held:
                raise locked(run_id, os.getpid())
            cut = max(len(run.checkpoints) - keep_last, 0)
            dropped, run.checkpoints = run.checkpoints[:cut], run.checkpoints[cut:]
            for cid in dropped:
                self._checkpoints.pop(cid, None)
                self._writes.pop(cid, None)
            if not run.checkpoints:
                run.latest = None
            if dropped:
                self._sweep()
            return len(dropped)

    async def prune_runs(
        self, older_than: dt.timedelta, status: str | Iterable[str] | None = None
    ) -> int:
        """See ``CheckpointStore.prune_runs`` (a run is live while ``lock_run`` holds it)."""
        cutoff, statuses = retention(older_than, status)
        with self._lock:
            doomed = [
                run_id
                for run_id, run in self._runs.items()
                if run.updated_at < cutoff
                and (statuses is None or run.status in statuses)
                and run_id not in self._held
            ]
            for run_id in doomed:
                self._drop_run(run_id)
            if doomed:
                self._sweep()
            return len(doomed)

    @asynccontextmanager
    async def lock_run(self, run_id: str) -> AsyncIterator[None]:
        """See ``CheckpointStore.lock_run`` (owners are tasks of this process)."""
        with self._lock:
            if run_id in self._held:
                raise locked(run_id, os.getpid())
            self._held.add(run_id)
        try:
            yield
        finally:
            with self._lock:
                self._held.discard(run_id)

    async def aclose(self) -> None:
        """Nothing to release; the data stays readable."""
