"""Retention benchmark: fill a store with runs, prune each to its last checkpoint, measure.

Usage: python benchmarks/retention.py [STORE [RUNS [STEPS]]]   STORE: sqlite, postgres, file
(default: sqlite 1000 100; postgres needs DATABASE_URL, e.g. under .ci/with-postgres.sh).

One JSON line per store. Each run is a real workflow of STEPS executors in a chain carrying a
small message and a 2 KB text of its own (stored once per run as a blob), so a run commits
STEPS + 1 checkpoints. Then ``store.prune(run, keep_last=1)`` for every run (timed), bytes on
disk are read again, then after SQLite ``VACUUM`` / PostgreSQL ``VACUUM`` and ``VACUUM FULL``;
finally ``store.prune_runs(timedelta(0))`` deletes every run (timed).

Bytes on disk: SQLite, the database file plus its write-ahead log; PostgreSQL, the store's
tables with their indexes and TOAST (``pg_total_relation_size``); files, ``du -sb``.
SQLite fills with ``synchronous=NORMAL`` (no fsync per commit: the same bytes, much sooner).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from builders import WorkflowBuilder
from workflow import (
    FileCheckpointStore,
    PostgresCheckpointStore,
    SQLiteCheckpointStore,
    executor,
)


def chain(steps: int, store: Any) -> Any:
    async def step(x: dict[str, Any]) -> dict[str, Any]:
        return {"step": x["step"] + 1, "note": x["note"], "text": x["text"]}

    nodes = [executor(id=f"s{i}")(step) for i in range(steps)]
    b = WorkflowBuilder(
        start=nodes[0], name="retention", checkpoint_store=store, max_supersteps=steps + 10
    )
    for a, c in itertools.pairwise(nodes):
        b.add_edge(a, c)
    return b.build()


class Target:
    """One store under test: open it, and measure its bytes on disk."""

    def __init__(self, kind: str, root: str) -> None:
        self.kind = kind
        self.root = root
        self.schema = f"bench_{uuid.uuid4().hex[:10]}"
        self.dsn = os.environ.get("DATABASE_URL", "")

    def open(self) -> Any:
        if self.kind == "sqlite":
            return SQLiteCheckpointStore(f"{self.root}/runs.db", synchronous="NORMAL")
        if self.kind == "file":
            return FileCheckpointStore(f"{self.root}/files")
        return PostgresCheckpointStore(self.dsn, schema=self.schema)

    def _local_disk(self) -> int:
        if self.kind == "sqlite":
            paths = [f"{self.root}/runs.db", f"{self.root}/runs.db-wal"]
            return sum(os.path.getsize(p) for p in paths if os.path.exists(p))
        du = subprocess.run(["du", "-sb", f"{self.root}/files"], capture_output=True, text=True)
        return int(du.stdout.split()[0])

    async def disk(self) -> int:
        if self.kind != "postgres":
            return await asyncio.to_thread(self._local_disk)
        return int(
            await self._pg(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = $1 AND c.relkind = 'r'",
                self.schema,
            )
        )

    async def _pg(self, query: str, *args: Any) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    async def vacuum(self, full: bool = False) -> float:
        t0 = time.perf_counter()
        if self.kind == "sqlite":
            conn = sqlite3.connect(f"{self.root}/runs.db")
            try:
                conn.execute("VACUUM")
            finally:
                conn.close()  # the last connection: SQLite folds the log in and deletes it
        elif self.kind == "postgres":
            for table in ("runs", "checkpoints", "writes", "blobs", "refs"):
                await self._pg(f"VACUUM {'FULL ' if full else ''}{self.schema}.{table}")
        return time.perf_counter() - t0

    async def drop(self) -> None:
        if self.kind == "postgres":
            await self._pg(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


async def measure(kind: str, runs: int, steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"workload": "retention", "store": kind, "runs": runs, "steps": steps}
    if kind == "postgres" and not os.environ.get("DATABASE_URL"):
        out["unsupported"] = "set DATABASE_URL"
        return out
    root = tempfile.mkdtemp(prefix="lfretention-")
    target = Target(kind, root)
    try:
        store = target.open()
        wf = chain(steps, store)
        t0 = time.perf_counter()
        for i in range(runs):
            text = f"run {i}: " + "lorem ipsum " * 170  # ~2 KB, a blob of its own
            result = await wf.run({"step": 0, "note": f"r{i}", "text": text}, run_id=f"r{i}")
            assert result.outputs[-1]["step"] == steps, result
        out["fill_seconds"] = round(time.perf_counter() - t0, 2)
        out["checkpoints_before"] = runs * (steps + 1)
        out["bytes_written"] = store.bytes_written
        out["disk_before"] = await target.disk()

        t0 = time.perf_counter()
        deleted = 0
        for i in range(runs):
            deleted += await store.prune(f"r{i}", keep_last=1)
        secs = time.perf_counter() - t0
        assert deleted == runs * steps, deleted
        out["prune_seconds"] = round(secs, 3)
        out["prune_ms_per_run"] = round(secs / runs * 1000, 3)
        out["checkpoints_after"] = out["checkpoints_before"] - deleted
        assert len(await store.list_checkpoints("r0")) == 1
        out["disk_after_prune"] = await target.disk()  # SQLite: its log holds the deletes
        await store.aclose()
        out["disk_after_prune_closed"] = await target.disk()

        if kind == "sqlite":
            out["vacuum_seconds"] = round(await target.vacuum(), 3)
            out["disk_after_vacuum"] = await target.disk()
        if kind == "postgres":
            out["vacuum_seconds"] = round(await target.vacuum(), 3)
            out["disk_after_vacuum"] = await target.disk()
            out["vacuum_full_seconds"] = round(await target.vacuum(full=True), 3)
            out["disk_after_vacuum_full"] = await target.disk()

        store = target.open()
        t0 = time.perf_counter()
        gone = await store.prune_runs(dt.timedelta(0))
        out["prune_runs_seconds"] = round(time.perf_counter() - t0, 3)
        assert gone == runs, gone
        assert await store.list_runs() == []
        await store.aclose()
        out["disk_after_prune_runs"] = await target.disk()
    finally:
        await target.drop()
        shutil.rmtree(root, ignore_errors=True)
    out["python"] = sys.version.split()[0]
    return out


def main() -> None:
    kinds = [sys.argv[1]] if len(sys.argv) > 1 else ["sqlite", "postgres", "file"]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    for kind in kinds:
        print(json.dumps(asyncio.run(measure(kind, runs, steps))), flush=True)


if __name__ == "__main__":
    main()
