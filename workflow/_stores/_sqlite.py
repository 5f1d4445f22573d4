"""SQLite checkpoint store: the embedded default (one file, many runs and processes).

Design:
    * One connection per store object, used by one worker thread at a time (a
      ``threading.Lock``), so calls stay off the event loop without a connection per thread;
      the fsync of a ``synchronous=FULL`` commit dominates the cost of a save anyway.
    * WAL journal, ``BEGIN IMMEDIATE`` for every write (no read-to-write upgrade deadlocks
      between processes), a busy timeout, one transaction per commit.
    * Blobs live in their own table keyed by sha256; ``refs`` records which checkpoint (and
      which pending write, by executor id) uses which blob, so pruning can drop exactly the
      blobs nothing references any more.
    * The write-ahead log is folded back into the database and cut to zero bytes when the
      last run this store object executes releases its lock and the log exceeds 256 KB (and
      when the store closes), so what stays on disk between runs is about what was written,
      not up to 1 MB of old log.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio.to_thread

from workflow._checkpoint import Checkpoint, RunInfo, check_status
from workflow._errors import CheckpointError

from ._common import (
    MIN_BLOB_BYTES,
    Encoded,
    StoreBase,
    check_keep_last,
    check_parent,
    decode_checkpoint,
    decode_write,
    duplicate,
    encode_checkpoint,
    encode_write,
    encode_writes,
    fs_key,
    locked,
    not_latest,
    now,
    retention,
    unknown_checkpoint,
    unknown_run,
)
from ._flock import release, run_lock, try_lock
from ._sqlite_db import (
    RUNS_PER_TX,
    SWEEP_ALL,
    SWEEP_SOME,
    UPSERT_RUN,
    chunks,
    connect,
    from_us,
    transaction,
    us,
)

__all__ = ("SQLiteCheckpointStore",)

_WAL_KEEP = 256 * 1024  # log bytes a finished run may leave behind (cut beyond that)

T = TypeVar("T")


class SQLiteCheckpointStore(StoreBase):
    """Checkpoints in one SQLite file (created, with its directory, on first use).

    Args:
        path: the database file.
        synchronous: ``"FULL"`` fsyncs every commit (survives power loss); ``"NORMAL"`` only
            survives process crashes, for a much cheaper save.
        min_blob_bytes: sub-trees at least this large (canonical JSON) are stored once.
        busy_timeout: seconds to wait for another process's write transaction.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["FULL", "NORMAL", "EXTRA"] = "FULL",
        min_blob_bytes: int = MIN_BLOB_BYTES,
        busy_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(
                f"synchronous must be 'FULL', 'NORMAL' or 'EXTRA', not {synchronous!r}"
            )
        self.path = Path(path)
        self._synchronous = synchronous
        self._min_blob_bytes = min_blob_bytes
        self._busy_timeout = busy_timeout
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._active = 0  # runs this object is executing (lock_run held)
        self._count_lock = threading.Lock()  # guards _active; never held across I/O

    def __repr__(self) -> str:
        return f"SQLiteCheckpointStore({str(self.path)!r})"

    # -- plumbing ------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return connect(self.path, self._busy_timeout, self._synchronous)

    def _with_conn(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            if self._closed:
                raise CheckpointError(f"{self!r} is closed")
            try:
                if self._conn is None:
                    self._conn = self._open()
                return fn(self._conn)
            except sqlite3.Error as exc:
                raise CheckpointError(f"SQLite store {str(self.path)!r}: {exc}") from exc

    async def _call(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn)

    def _put_blobs(self, conn: sqlite3.Connection, blobs: dict[str, bytes]) -> int:
        if not blobs:
            return 0
        hashes = list(blobs)
        have: set[str] = set()
        for chunk in chunks(hashes):
            marks = ",".join("?" * len(chunk))
            have.update(
                h for (h,) in conn.execute(f"SELECT hash FROM blobs WHERE hash IN ({marks})", chunk)
            )
        new = [(h, blobs[h]) for h in hashes if h not in have]
        conn.executemany("INSERT INTO blobs (hash, data) VALUES (?, ?)", new)
        return sum(len(data) for _, data in new)

    @staticmethod
    def _blobs_of(conn: sqlite3.Connection, where: str, *args: Any) -> dict[str, bytes]:
        query = "SELECT DISTINCT b.hash, b.data FROM refs r JOIN blobs b ON b.hash = r.hash"
        return dict(conn.execute(f"{query} WHERE {where}", args).fetchall())

    # -- writes --------------------------------------------------------------------------

    async def save(
        self, checkpoint: Checkpoint, *, writes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        """See ``CheckpointStore.save``."""

        def work() -> None:
            enc = encode_checkpoint(checkpoint, self._min_blob_bytes)
            encoded = encode_writes(checkpoint.id, writes, self._min_blob_bytes)
            self._with_conn(lambda conn: self._save(conn, checkpoint, enc, encoded))

        await self._call(work)

    def _save(
        self,
        conn: sqlite3.Connection,
        cp: Checkpoint,
        enc: Encoded,
        writes: list[tuple[str, Encoded]],
    ) -> None:
        with transaction(conn):
            latest, parent_run = conn.execute(
                "SELECT (SELECT latest_checkpoint_id FROM runs WHERE run_id = ?), "
                "(SELECT run_id FROM checkpoints WHERE id = ?)",
                (cp.run_id, cp.parent_id),
            ).fetchone()
            same_run = check_parent(cp, latest, parent_run)
            written = self._put_blobs(conn, enc.blobs)
            try:
                conn.execute(
                    "INSERT INTO checkpoints (id, run_id, superstep, parent_id, created_at, "
                    "checksum, payload) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        cp.id,
                        cp.run_id,
                        cp.superstep,
                        cp.parent_id,
                        cp.created_at.isoformat(),
                        enc.checksum,
                        enc.payload,
                    ),
                )
            except sqlite3.IntegrityError:
                raise duplicate(cp.id) from None
            if enc.blobs:
                conn.executemany(
                    "INSERT OR IGNORE INTO refs (checkpoint_id, executor_id, hash) "
                    "VALUES (?, '', ?)",
                    [(cp.id, h) for h in enc.blobs],
                )
            unreferenced: set[str] = set()
            if same_run:  # the superstep after the parent is committed: its writes are obsolete
                conn.execute("DELETE FROM writes WHERE checkpoint_id = ?", (cp.parent_id,))
                where = "checkpoint_id = ? AND executor_id <> ''"
                unreferenced = self._drop_refs(conn, where, (cp.parent_id or "",))
            conn.execute(UPSERT_RUN, (cp.run_id, cp.workflow_name, cp.status, us(now()), cp.id))
            for executor_id, w in writes:  # recorded in the same transaction as the checkpoint
                written += self._put_blobs(conn, w.blobs) + len(w.payload)
                self._insert_write(conn, cp.id, cp.run_id, executor_id, w)
            self._sweep(conn, unreferenced)  # after the inserts: a reused blob stays
        self.bytes_written += written + len(enc.payload)  # under self._lock

    async def put_write(self, checkpoint_id: str, executor_id: str, data: dict[str, Any]) -> None:
        """See ``CheckpointStore.put_write``."""

        def work() -> None:
            enc = encode_write(checkpoint_id, executor_id, data, self._min_blob_bytes)
            self._with_conn(lambda conn: self._put_write(conn, checkpoint_id, executor_id, enc))

        await self._call(work)

    def _put_write(
        self, conn: sqlite3.Connection, checkpoint_id: str, executor_id: str, enc: Encoded
    ) -> None:
        with transaction(conn):
            row = conn.execute(
                "SELECT c.run_id, r.latest_checkpoint_id FROM checkpoints c "
                "JOIN runs r ON r.run_id = c.run_id WHERE c.id = ?",
                (checkpoint_id,),
            ).fetchone()
            if row is None:
                raise unknown_checkpoint(checkpoint_id)
            if row[1] != checkpoint_id:
                raise not_latest(checkpoint_id, row[0], row[1])
            written = self._put_blobs(conn, enc.blobs)
            key = (checkpoint_id, executor_id)
            conn.execute("DELETE FROM writes WHERE checkpoint_id = ? AND executor_id = ?", key)
            replaced = self._drop_refs(conn, "checkpoint_id = ? AND executor_id = ?", key)
            self._insert_write(conn, checkpoint_id, row[0], executor_id, enc)
            self._sweep(conn, replaced)  # a re-run's write: what only the old one used goes
        self.bytes_written += written + len(enc.payload)  # under self._lock

    @staticmethod
    def _insert_write(
        conn: sqlite3.Connection, checkpoint_id: str, run_id: str, executor_id: str, enc: Encoded
    ) -> None:
        conn.execute(
            "INSERT INTO writes (checkpoint_id, run_id, executor_id, checksum, payload) "
            "VALUES (?, ?, ?, ?, ?)",
            (checkpoint_id, run_id, executor_id, enc.checksum, enc.payload),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO refs (checkpoint_id, executor_id, hash) VALUES (?, ?, ?)",
            [(checkpoint_id, executor_id, h) for h in enc.blobs],
        )

    async def set_status(self, run_id: str, workflow_name: str, status: str) -> None:
        """See ``CheckpointStore.set_status``."""
        status = check_status(status)

        def upsert(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                conn.execute(
                    "INSERT INTO runs (run_id, workflow_name, status, updated_us) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET "
                    "status = excluded.status, updated_us = excluded.updated_us",
                    (run_id, workflow_name, status, us(now())),
                )

        await self._call(lambda: self._with_conn(upsert))

    @staticmethod
    def _drop_refs(conn: sqlite3.Connection, where: str, args: Sequence[str]) -> set[str]:
        """Delete the ``refs`` rows matching ``where``; returns the blobs they named."""
        query = f"SELECT DISTINCT hash FROM refs WHERE {where}"
        named = {h for (h,) in conn.execute(query, args)}
        conn.execute(f"DELETE FROM refs WHERE {where}", args)
        return named

    @staticmethod
    def _sweep(conn: sqlite3.Connection, candidates: set[str]) -> None:
        """Delete those of ``candidates`` no ref names any more (not a scan of every blob)."""
        for chunk in chunks(sorted(candidates)):
            conn.execute(SWEEP_SOME.format(marks=",".join("?" * len(chunk))), chunk)

    @staticmethod
    def _delete_runs(conn: sqlite3.Connection, run_ids: Sequence[str]) -> None:
        """Delete whole runs and every blob nothing references any more (in a transaction).

        A bulk delete scans every blob, so it also collects what older versions of this store
        left behind (they did not sweep when a pending write was superseded).
        """
        for chunk in chunks(run_ids):
            marks = ",".join("?" * len(chunk))
            conn.execute(
                "DELETE FROM refs WHERE checkpoint_id IN "
                f"(SELECT id FROM checkpoints WHERE run_id IN ({marks}))",
                chunk,
            )
            for table in ("writes", "checkpoints", "runs"):
                conn.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", chunk)
        conn.execute(SWEEP_ALL)

    async def delete_run(self, run_id: str) -> None:
        """See ``CheckpointStore.delete_run``."""

        def delete(conn: sqlite3.Connection) -> None:
            with transaction(conn):
                self._delete_runs(conn, [run_id])

        await self._call(lambda: self._after_delete(self._with_conn(delete)))

    async def prune(self, run_id: str, keep_last: int) -> int:
        """See ``CheckpointStore.prune``."""
        keep_last = check_keep_last(keep_last)

        def prune(conn: sqlite3.Connection) -> int:
            with transaction(conn):
                if (
                    conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                    is None
                ):
                    raise unknown_run(run_id)
                ids = [
                    cid
                    for (cid,) in conn.execute(
                        "SELECT id FROM checkpoints WHERE run_id = ? ORDER BY seq", (run_id,)
                    )
                ]
                dropped = ids[: max(len(ids) - keep_last, 0)]
                unreferenced: set[str] = set()
                for chunk in chunks(dropped):
                    marks = ",".join("?" * len(chunk))
                    unreferenced |= self._drop_refs(conn, f"checkpoint_id IN ({marks})", chunk)
                    conn.execute(f"DELETE FROM writes WHERE checkpoint_id IN ({marks})", chunk)
                    conn.execute(f"DELETE FROM checkpoints WHERE id IN ({marks})", chunk)
                if dropped and len(dropped) == len(ids):
                    conn.execute(
                        "UPDATE runs SET latest_checkpoint_id = NULL WHERE run_id = ?", (run_id,)
                    )
                self._sweep(conn, unreferenced)
                return len(dropped)

        def work() -> int:
            # no log truncation here: prune is called run after run, and the fsync it costs
            # would dominate; the log stays bounded and is cut when a run ends or on close
            if keep_last:  # the run keeps its latest checkpoint: safe even while it executes
                return self._with_conn(prune)
            fd, holder = try_lock(self._lock_path(run_id))  # would cut a live run's chain
            if holder is not None:
                raise locked(run_id, holder)
            try:
                return self._with_conn(prune)
            finally:
                release(fd)

        return await self._call(work)

    async def prune_runs(
        self, older_than: dt.timedelta, status: str | Iterable[str] | None = None
    ) -> int:
        """See ``CheckpointStore.prune_runs``: runs whose lock file is held are skipped."""
        cutoff, statuses = retention(older_than, status)
        where = "updated_us < ?"
        args: list[Any] = [us(cutoff)]
        if statuses is not None:
            where += f" AND status IN ({','.join('?' * len(statuses))})"
            args += sorted(statuses)

        def candidates(conn: sqlite3.Connection) -> list[str]:
            query = f"SELECT run_id FROM runs WHERE {where} ORDER BY updated_us"
            return [r for (r,) in conn.execute(query, args)]

        def delete(conn: sqlite3.Connection, run_ids: list[str]) -> list[str]:
            with transaction(conn):  # updated since it was listed (resumed, say): it stays
                marks = ",".join("?" * len(run_ids))
                query = f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND {where}"
                still = [r for (r,) in conn.execute(query, [*run_ids, *args])]
                self._delete_runs(conn, still)
            return still

        def work() -> int:
            found = self._with_conn(candidates)
            deleted = 0
            for start in range(0, len(found), RUNS_PER_TX):
                held: dict[str, int] = {}
                gone: set[str] = set()
                try:
                    for run_id in found[start : start + RUNS_PER_TX]:
                        fd, holder = try_lock(self._lock_path(run_id))
                        if holder is None:  # else a live owner executes it: never pruned
                            held[run_id] = fd
                    batch = list(held)
                    if batch:
                        gone.update(self._with_conn(functools.partial(delete, run_ids=batch)))
                    deleted += len(gone)
                finally:
                    for run_id, fd in held.items():
                        release(fd, self._lock_path(run_id) if run_id in gone else None)
            return self._after_delete(deleted)

        return await self._call(work)

    # -- reads ---------------------------------------------------------------------------

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        """See ``CheckpointStore.get_writes``."""

        def fetch(conn: sqlite3.Connection) -> tuple[list[Any], dict[str, bytes]]:
            with transaction(conn, write=False):
                rows = conn.execute(
                    "SELECT executor_id, checksum, payload FROM writes WHERE checkpoint_id = ? "
                    "ORDER BY seq",
                    (checkpoint_id,),
                ).fetchall()
                blobs = (
                    self._blobs_of(
                        conn, "r.checkpoint_id = ? AND r.executor_id <> ''", checkpoint_id
                    )
                    if rows
                    else {}
                )
            return rows, blobs

        def work() -> dict[str, dict[str, Any]]:
            rows, blobs = self._with_conn(fetch)
            return {
                ex: decode_write(checkpoint_id, ex, payload, checksum, blobs.__getitem__)[1]
                for ex, checksum, payload in rows
            }

        return await self._call(work)

    async def list_runs(self) -> list[RunInfo]:
        """See ``CheckpointStore.list_runs``."""

        def fetch(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                "SELECT run_id, workflow_name, status, updated_us, latest_checkpoint_id "
                "FROM runs ORDER BY updated_us DESC, run_id"
            ).fetchall()

        rows = await self._call(lambda: self._with_conn(fetch))
        return [
            RunInfo(
                run_id=r, workflow_name=w, status=s, updated_at=from_us(u), latest_checkpoint_id=c
            )
            for r, w, s, u, c in rows
        ]

    def _fetch(
        self, conn: sqlite3.Connection, where: str, arg: str
    ) -> tuple[list[Any], dict[str, bytes]]:
        with transaction(conn, write=False):
            rows = conn.execute(
                f"SELECT id, checksum, payload FROM checkpoints WHERE {where} ORDER BY seq", (arg,)
            ).fetchall()
            blobs = (
                self._blobs_of(
                    conn,
                    "r.executor_id = '' AND r.checkpoint_id IN "
                    f"(SELECT id FROM checkpoints WHERE {where})",
                    arg,
                )
                if rows
                else {}
            )
        return rows, blobs

    def _read(self, where: str, arg: str) -> list[Checkpoint]:
        rows, blobs = self._with_conn(lambda conn: self._fetch(conn, where, arg))
        return [
            decode_checkpoint(cid, payload, checksum, blobs.__getitem__)
            for cid, checksum, payload in rows
        ]

    async def list_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """See ``CheckpointStore.list_checkpoints``."""
        return await self._call(lambda: self._read("run_id = ?", run_id))

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """See ``CheckpointStore.load``."""
        found = await self._call(lambda: self._read("id = ?", checkpoint_id))
        if not found:
            raise unknown_checkpoint(checkpoint_id)
        return found[0]

    async def latest(self, run_id: str) -> Checkpoint | None:
        """See ``CheckpointStore.latest``."""
        where = "id = (SELECT latest_checkpoint_id FROM runs WHERE run_id = ?)"
        found = await self._call(lambda: self._read(where, run_id))
        return found[0] if found else None

    # -- ownership and lifetime ----------------------------------------------------------

    def _lock_path(self, run_id: str) -> Path:
        return self.path.with_name(self.path.name + ".locks") / f"{fs_key(run_id)}.lock"

    @asynccontextmanager
    async def lock_run(self, run_id: str) -> AsyncIterator[None]:
        """See ``CheckpointStore.lock_run``: ``flock`` on ``<db>.locks/<run>.lock``.

        When the last run this object executes lets go, the write-ahead log is truncated,
        after the lock is released (whoever waits for the run need not wait for that too).
        """
        entered = False
        try:
            async with run_lock(self._lock_path(run_id), run_id):
                with self._count_lock:
                    self._active += 1
                entered = True
                try:
                    yield
                finally:
                    with self._count_lock:
                        self._active -= 1
        finally:
            if entered:
                with anyio.CancelScope(shield=True):  # a cancelled run still tidies up
                    await anyio.to_thread.run_sync(self._truncate_large_wal)

    def _truncate_large_wal(self) -> None:
        """Cut the log once it holds more than ``_WAL_KEEP`` bytes (what a run may leave).

        Small runs (a few commits) skip the checkpoint and its fsync: what they leave is
        bounded, and the run's end (which callers may be waiting for) stays quick.
        """
        try:
            size = os.stat(self.path.with_name(self.path.name + "-wal")).st_size
        except OSError:
            return
        if size > _WAL_KEEP:
            self._truncate_wal()

    def _after_delete(self, result: T) -> T:
        """Bulk deletes go through the log too: cut it back unless a run of this object runs."""
        self._truncate_wal()
        return result

    def _truncate_wal(self) -> None:
        """Fold the log into the database and cut it to zero bytes, if nobody is in the way.

        Best effort and never waits: with the busy timeout at zero, a reader or writer in
        another process makes SQLite copy what it can and leave the log for a later call.
        """
        with self._lock:
            conn = self._conn
            with self._count_lock:
                busy = self._active > 0
            if conn is None or self._closed or busy:
                return
            try:
                conn.execute("PRAGMA busy_timeout=0")
                try:
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                finally:
                    conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
            except sqlite3.Error:
                pass  # a busy or locked log is simply truncated another time

    async def vacuum(self) -> None:
        """Rebuild the database file so the space deletes freed returns to the disk.

        SQLite's ``VACUUM``: it holds the write lock for the whole rebuild (other processes'
        commits wait, up to ``busy_timeout``) and needs free disk about the database's size.
        """

        def vacuum(conn: sqlite3.Connection) -> None:
            conn.execute("VACUUM")

        await self._call(lambda: self._after_delete(self._with_conn(vacuum)))

    async def aclose(self) -> None:
        """Close the connection; later calls raise ``CheckpointError``."""

        def close() -> None:
            with self._lock:
                self._closed = True
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

        await anyio.to_thread.run_sync(close)
