"""The PostgreSQL store's table layout and helpers: driver import, lock keys, redaction.

Kept apart from ``_postgres.py`` (the store's operations) so each stays a readable size.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = (
    "IDENT",
    "LAYOUT",
    "RUNS_PER_TX",
    "ddl",
    "load_asyncpg",
    "lock_holder",
    "lock_key",
    "redact",
)

LAYOUT = "1"
RUNS_PER_TX = 200  # prune_runs: advisory locks one transaction holds (the lock table is shared)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def load_asyncpg() -> Any:
    """The ``asyncpg`` module, or an ``ImportError`` saying which extra installs it."""
    try:
        import asyncpg
    except ImportError as exc:
        raise ImportError(
            "PostgresCheckpointStore needs asyncpg: pip install ledgerflow[postgres]"
        ) from exc
    return asyncpg


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key for ``parts``."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_holder(conn: Any, key: int) -> str:
    """The pid of the ``lock_run`` owner holding advisory lock ``key`` (from its app name)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    name = await conn.fetchval(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
        "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid "
        "AND l.objsubid = 1",
        unsigned >> 32,
        unsigned & 0xFFFFFFFF,
    )
    found = re.search(r"pid=(\d+)", name or "")
    return found.group(1) if found else "unknown"


def redact(dsn: str) -> str:
    """``dsn`` without its password, for error messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def ddl(schema: str) -> list[str]:
    """The statements that create a store's schema and tables (idempotent)."""
    s = f'"{schema}"'
    return [
        f"CREATE SCHEMA IF NOT EXISTS {s}",
        f"CREATE TABLE IF NOT EXISTS {s}.meta (key text PRIMARY KEY, value text NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS {s}.runs (run_id text PRIMARY KEY,
            workflow_name text NOT NULL, status text NOT NULL,
            updated_at timestamptz NOT NULL, latest_checkpoint_id text)""",
        f"CREATE INDEX IF NOT EXISTS runs_updated ON {s}.runs (updated_at)",
        f"""CREATE TABLE IF NOT EXISTS {s}.checkpoints (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id text NOT NULL UNIQUE,
            run_id text NOT NULL, superstep integer NOT NULL, parent_id text,
            created_at timestamptz NOT NULL, checksum text NOT NULL, payload bytea NOT NULL)""",
        f"CREATE INDEX IF NOT EXISTS checkpoints_run ON {s}.checkpoints (run_id, seq)",
        f"""CREATE TABLE IF NOT EXISTS {s}.writes (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            checkpoint_id text NOT NULL, run_id text NOT NULL, executor_id text NOT NULL,
            checksum text NOT NULL, payload bytea NOT NULL,
            UNIQUE (checkpoint_id, executor_id))""",
        f"CREATE INDEX IF NOT EXISTS writes_run ON {s}.writes (run_id)",
        f"""CREATE TABLE IF NOT EXISTS {s}.blobs (
            hash text PRIMARY KEY, data bytea NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS {s}.refs (checkpoint_id text NOT NULL,
            executor_id text NOT NULL, hash text NOT NULL,
            PRIMARY KEY (checkpoint_id, executor_id, hash))""",
        f"CREATE INDEX IF NOT EXISTS refs_hash ON {s}.refs (hash)",
        f"INSERT INTO {s}.meta VALUES ('layout', '{LAYOUT}') ON CONFLICT DO NOTHING",
    ]
