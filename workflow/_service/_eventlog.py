"""Where the service keeps each run's events, so a stream replays after a restart.

A checkpoint store holds a run's state, not what it emitted; the service logs the encoded
events beside it, keyed by ``(run_id, seq)``: in memory for ``memory://``, in an SQLite file
next to an SQLite store (``runs.db`` -> ``runs.db.events``) or inside a file store's directory,
and in a table of the same PostgreSQL database for a Postgres store (so servers sharing the
database share the streams too). Writes are batched by the caller; a crash loses at most the
last unflushed batch, and the resumed run emits its events again from its last checkpoint.
Deleting runs from the store (``ledgerflow prune``) deletes their logged events too
(``forget``), so the log never outlives the history it replays.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.to_thread

__all__ = ("EventLog", "MemoryEventLog", "PostgresEventLog", "SQLiteEventLog", "eventlog_for_url")

Row = tuple[str, int, str]  # run_id, seq, JSON body


class EventLog(Protocol):
    """Append-only per-run event records; every method is safe from concurrent tasks."""

    async def append(self, rows: list[Row]) -> None:
        """Store rows; a row whose ``(run_id, seq)`` exists is ignored."""
        ...

    async def read(self, run_id: str, after: int = 0) -> list[tuple[int, str]]:
        """The run's ``(seq, body)`` rows with ``seq > after``, in order."""
        ...

    async def last_seq(self, run_id: str) -> int:
        """The highest stored ``seq`` of the run (0 if none)."""
        ...

    async def forget(self, run_ids: Iterable[str]) -> int:
        """Delete every row of these runs (their history is gone); returns the rows deleted."""
        ...

    async def aclose(self) -> None:
        """Release the connection."""
        ...


class MemoryEventLog:
    """For ``memory://`` stores: the log lives as long as the server."""

    def __init__(self) -> None:
        self._runs: dict[str, dict[int, str]] = {}

    async def append(self, rows: list[Row]) -> None:
        for run_id, seq, body in rows:
            self._runs.setdefault(run_id, {}).setdefault(seq, body)

    async def read(self, run_id: str, after: int = 0) -> list[tuple[int, str]]:
        return sorted((s, b) for s, b in self._runs.get(run_id, {}).items() if s > after)

    async def last_seq(self, run_id: str) -> int:
        return max(self._runs.get(run_id, {0: ""}), default=0)

    async def forget(self, run_ids: Iterable[str]) -> int:
        return sum(len(self._runs.pop(run_id, {})) for run_id in set(run_ids))

    async def aclose(self) -> None:
        return None


class SQLiteEventLog:
    """One SQLite file (WAL), used from worker threads under a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                "body TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID"
            )
            self._conn = conn
        return self._conn

    def _call(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            return fn(self._db(), *args)

    async def append(self, rows: list[Row]) -> None:
        def write(db: sqlite3.Connection, rows: list[Row]) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?)", rows)

        if rows:
            await anyio.to_thread.run_sync(self._call, write, rows)

    async def read(self, run_id: str, after: int = 0) -> list[tuple[int, str]]:
        def query(db: sqlite3.Connection) -> list[tuple[int, str]]:
            cur = db.execute(
                "SELECT seq, body FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                (run_id, after),
            )
            return [(int(s), str(b)) for s, b in cur.fetchall()]

        result: list[tuple[int, str]] = await anyio.to_thread.run_sync(self._call, query)
        return result

    async def last_seq(self, run_id: str) -> int:
        def query(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT MAX(seq) FROM events WHERE run_id = ?", (run_id,)).fetchone()
            return int(row[0] or 0)

        result: int = await anyio.to_thread.run_sync(self._call, query)
        return result

    async def forget(self, run_ids: Iterable[str]) -> int:
        def delete(db: sqlite3.Connection, ids: list[tuple[str]]) -> int:
            with db:
                db.execute("BEGIN")
                before = db.total_changes
                db.executemany("DELETE FROM events WHERE run_id = ?", ids)
                return db.total_changes - before

        ids = [(run_id,) for run_id in sorted(set(run_ids))]
        if not ids:
            return 0
        result: int = await anyio.to_thread.run_sync(self._call, delete, ids)
        return result

    async def aclose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresEventLog:
    """A table ``ledgerflow_service.events`` in the store's database (asyncpg pool)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._pool: Any = None
        self._ready = anyio.Lock()

    async def _get(self) -> Any:
        async with self._ready:
            if self._pool is None:
                import asyncpg

                pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=3)
                async with pool.acquire() as conn:
                    # two servers starting at once: serialize the DDL on an advisory lock
                    await conn.execute("SELECT pg_advisory_lock(4242424242)")
                    try:
                        await conn.execute("CREATE SCHEMA IF NOT EXISTS ledgerflow_service")
                        await conn.execute(
                            "CREATE TABLE IF NOT EXISTS ledgerflow_service.events (run_id TEXT "
                            "NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL, "
                            "PRIMARY KEY (run_id, seq))"
                        )
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(4242424242)")
                self._pool = pool
            return self._pool

    async def append(self, rows: list[Row]) -> None:
        if not rows:
            return
        pool = await self._get()
        await pool.executemany(
            "INSERT INTO ledgerflow_service.events VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            rows,
        )

    async def read(self, run_id: str, after: int = 0) -> list[tuple[int, str]]:
        pool = await self._get()
        found = await pool.fetch(
            "SELECT seq, body FROM ledgerflow_service.events WHERE run_id = $1 AND seq > $2 "
            "ORDER BY seq",
            run_id,
            after,
        )
        return [(int(r["seq"]), str(r["body"])) for r in found]

    async def last_seq(self, run_id: str) -> int:
        pool = await self._get()
        value = await pool.fetchval(
            "SELECT MAX(seq) FROM ledgerflow_service.events WHERE run_id = $1", run_id
        )
        return int(value or 0)

    async def forget(self, run_ids: Iterable[str]) -> int:
        ids = sorted(set(run_ids))
        if not ids:
            return 0
        pool = await self._get()
        status = await pool.execute(
            "DELETE FROM ledgerflow_service.events WHERE run_id = ANY($1::text[])", ids
        )
        return int(str(status).rsplit(" ", 1)[-1])

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def eventlog_for_url(url: str) -> EventLog:
    """The event log that belongs beside the store ``url`` names (see the module docstring)."""
    scheme, _, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "sqlite":
        return SQLiteEventLog(rest.partition("?")[0][1:] + ".events")
    if scheme == "file":
        return SQLiteEventLog(Path(rest) / "events.db")
    if scheme in ("postgresql", "postgres", "postgresql+asyncpg"):
        parts = urlsplit("postgresql://" + rest)
        kept = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
        return PostgresEventLog(urlunsplit(parts._replace(query=kept)))
    return MemoryEventLog()
