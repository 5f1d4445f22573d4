"""The SQLite store's table layout, connection set-up and SQL helpers.

Kept apart from ``_sqlite.py`` (the store's operations) so each stays a readable size.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from workflow._errors import CheckpointError

__all__ = (
    "CHUNK",
    "RUNS_PER_TX",
    "SWEEP_ALL",
    "SWEEP_SOME",
    "UPSERT_RUN",
    "chunks",
    "connect",
    "from_us",
    "transaction",
    "us",
)

LAYOUT = 1  # PRAGMA user_version of the table layout below
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, workflow_name TEXT NOT NULL, status TEXT NOT NULL,
        updated_us INTEGER NOT NULL, latest_checkpoint_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS runs_updated ON runs (updated_us)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, run_id TEXT NOT NULL,
        superstep INTEGER NOT NULL, parent_id TEXT, created_at TEXT NOT NULL,
        checksum TEXT NOT NULL, payload BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS checkpoints_run ON checkpoints (run_id, seq)",
    """CREATE TABLE IF NOT EXISTS writes (
        seq INTEGER PRIMARY KEY, checkpoint_id TEXT NOT NULL, run_id TEXT NOT NULL,
        executor_id TEXT NOT NULL, checksum TEXT NOT NULL, payload BLOB NOT NULL,
        UNIQUE (checkpoint_id, executor_id))""",
    "CREATE INDEX IF NOT EXISTS writes_run ON writes (run_id)",
    "CREATE TABLE IF NOT EXISTS blobs (hash TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS refs (
        checkpoint_id TEXT NOT NULL, executor_id TEXT NOT NULL, hash TEXT NOT NULL,
        PRIMARY KEY (checkpoint_id, executor_id, hash)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS refs_hash ON refs (hash)",
)
UPSERT_RUN = """INSERT INTO runs (run_id, workflow_name, status, updated_us, latest_checkpoint_id)
    VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id) DO UPDATE SET
    workflow_name = excluded.workflow_name, status = excluded.status,
    updated_us = excluded.updated_us, latest_checkpoint_id = excluded.latest_checkpoint_id"""
SWEEP_ALL = "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM refs WHERE refs.hash = blobs.hash)"
SWEEP_SOME = (
    "DELETE FROM blobs WHERE hash IN ({marks}) AND NOT EXISTS "
    "(SELECT 1 FROM refs WHERE refs.hash = blobs.hash)"
)
CHUNK = 500  # stay far below SQLite's bound-parameter limit
RUNS_PER_TX = 200  # prune_runs: lock files held open at once, well below the fd limit


def us(moment: dt.datetime) -> int:
    """Microseconds since the epoch: how ``runs.updated_us`` stores a time."""
    return int(moment.timestamp() * 1_000_000)


def from_us(micros: int) -> dt.datetime:
    """The aware UTC time ``micros`` (microseconds since the epoch) stands for."""
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    """``items`` in slices small enough to bind as parameters."""
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@contextmanager
def transaction(conn: sqlite3.Connection, *, write: bool = True) -> Iterator[None]:
    """One transaction; ``BEGIN IMMEDIATE`` for writes (no read-to-write upgrade deadlock)."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def connect(path: Path, busy_timeout: float, synchronous: str) -> sqlite3.Connection:
    """Open ``path`` in WAL mode, creating its tables (layout ``LAYOUT``) on first use."""
    conn = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=False,
    )
    try:
        # Switching a new file to WAL takes an exclusive lock that SQLite's busy handler
        # does not wait for: processes opening the same fresh file at once must retry.
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # Fold the log back into the database every ~1 MB of pages and cut the file to
        # that size afterwards: the log stays small instead of growing to SQLite's 4 MB.
        conn.execute("PRAGMA wal_autocheckpoint=256")
        conn.execute("PRAGMA journal_size_limit=1048576")
        with transaction(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > LAYOUT:
                raise CheckpointError(
                    f"{path} was written by a newer Ledgerflow (layout {version}, this "
                    f"one knows {LAYOUT}); upgrade ledgerflow to use it"
                )
            if version < LAYOUT:
                for statement in SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={LAYOUT}")
    except BaseException:
        conn.close()
        raise
    return conn
