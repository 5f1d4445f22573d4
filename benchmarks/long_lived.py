"""long_lived: memory of one process after many mixed runs, with and without a store.

Usage: python benchmarks/long_lived.py [N] [--store none|memory|sqlite] [--prune-every K]
    [--every M] [--backend asyncio|trio]

One workflow object runs N runs in a cycle of four kinds, as a long-lived server would:
completed, failed, cancelled, and paused for input then answered. Memory is read after
1,000 runs (the process is warm) and again after N: resident set size from /proc and the
bytes tracemalloc sees allocated by Python. A flat line means growth near zero (a few
hundred KB of allocator noise). Without a store the workflow keeps, by design, at most the
100 latest failed or cancelled runs for an in-process retry (``max_failed_runs``); answered
runs are not kept. With ``--store sqlite`` every run is checkpointed to a SQLite file
(``synchronous="NORMAL"``); the database on disk grows, the process should not (the lines
give the database's bytes, and the per-run lock files kept until ``prune_runs``). With
``--store memory`` (``InMemoryCheckpointStore``) the checkpoints live in the process, so the
heap grows by what the store holds (reported as ``store_bytes``) unless ``--prune-every K``
deletes the finished runs every K runs (``prune_runs``), as a server's retention would.

A cancelled run is cancelled once its handler is inside ``sleep_forever`` (it sets an event
first), not after ``anyio.wait_all_tasks_blocked()``: on asyncio that helper sleeps 0.1 s
whenever a task is runnable, which a store's worker-thread call makes likely, and that sleep
was ~97% of the time of a SQLite run (105 ms per cancelled run against 2-7 ms for the others).

Prints a ``progress`` JSON line every ``--every`` runs (so a run stopped early still says
something) and a summary line at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import gc
import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

from builders import WorkflowBuilder
from workflow import (
    CheckpointStore,
    Executor,
    InMemoryCheckpointStore,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowContext,
    handler,
    response_handler,
)

KINDS = ("completed", "failed", "cancelled", "answered")
FIRST = 1_000


class Mixed(Executor):
    """The input picks the run's fate; ``parked`` is set once a cancelled run is waiting."""

    parked: anyio.Event | None = None

    @handler
    async def on(self, kind: str, ctx: WorkflowContext[str]) -> None:
        await ctx.set_state("kind", kind)
        if kind == "answered":
            await ctx.request_info(kind, response_type=str)
        elif kind == "failed":
            raise RuntimeError("this run fails on purpose")
        elif kind == "cancelled":
            if self.parked is not None:
                self.parked.set()
            await anyio.sleep_forever()
        else:
            await ctx.yield_output(kind)

    @response_handler
    async def on_reply(self, request: str, reply: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(reply)


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


async def _one(wf: Workflow, mixed: Mixed, i: int) -> None:
    kind = KINDS[i % len(KINDS)]
    run_id = f"r{i}"
    if kind == "cancelled":
        mixed.parked = parked = anyio.Event()
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(wf.run, kind, run_id=run_id))
                await parked.wait()
                scope.cancel()
        return
    result = await wf.run(kind, run_id=run_id)
    if kind == "answered":
        (request,) = result.pending_requests
        result = await wf.resume(run_id, responses={request.request_id: "ok"})
        assert result.status is RunStatus.COMPLETED, result
    elif kind == "failed":
        assert result.status is RunStatus.FAILED, result
    else:
        assert result.status is RunStatus.COMPLETED, result


def _disk(tmp: str) -> dict[str, int]:
    """What the SQLite store leaves on disk: the database files, and the per-run lock files
    (counted, with the blocks they take: a file holding a few bytes still takes one)."""
    root = Path(tmp)
    files = blocks = 0
    if (root / "runs.db.locks").is_dir():
        # one entry at a time: a list of them raised the RSS this reports (+4.4 MB at 20,000)
        with os.scandir(root / "runs.db.locks") as entries:
            for entry in entries:
                files += 1
                blocks += entry.stat().st_blocks  # 512-byte blocks
    return {
        "db_bytes": sum(p.stat().st_size for p in root.iterdir() if p.is_file()),
        "lock_files": files,
        "lock_kb": blocks // 2,
    }


def _store_bytes(store: CheckpointStore | None) -> int | None:
    """Payload bytes an in-memory store holds (checkpoints, pending writes, blobs)."""
    if not isinstance(store, InMemoryCheckpointStore):
        return None
    held = sum(len(r.payload) for r in store._checkpoints.values())
    held += sum(len(r.payload) for ws in store._writes.values() for r in ws.values())
    return held + sum(len(b) for b in store._blobs.values())


def _point(
    label: str, runs: int, t0: float, wf: Workflow, store: CheckpointStore | None
) -> dict[str, Any]:
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    point = {
        "runs": runs,
        "rss_kb": _rss_kb(),
        "traced_kb": round(current / 1024),
        "kept_in_memory": len(wf._paused),
        "seconds": round(time.perf_counter() - t0, 2),
        "label": label,
    }
    held = _store_bytes(store)
    if held is not None:
        point["store_bytes"] = held
    return point


def _open(store_kind: str, tmp: str) -> CheckpointStore | None:
    if store_kind == "sqlite":
        return SQLiteCheckpointStore(Path(tmp) / "runs.db", synchronous="NORMAL")
    return InMemoryCheckpointStore() if store_kind == "memory" else None


async def main(n: int, store_kind: str, prune_every: int, every: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = _open(store_kind, tmp)
        mixed = Mixed(id="mixed")
        wf = WorkflowBuilder(start=mixed, name="long", checkpoint_store=store).build()
        tracemalloc.start()
        t0 = time.perf_counter()
        first: dict[str, Any] = {}
        for i in range(n):
            await _one(wf, mixed, i)
            if store is not None and prune_every and (i + 1) % prune_every == 0:
                await store.prune_runs(dt.timedelta(0))  # every run so far has ended
            if i + 1 == FIRST:
                first = _point("warm", FIRST, t0, wf, store)
            if every and (i + 1) % every == 0 and i + 1 != n:
                point = _point("progress", i + 1, t0, wf, store)
                if store_kind == "sqlite":
                    point |= _disk(tmp)
                print(
                    json.dumps({"workload": "long_lived", "store": store_kind, **point}), flush=True
                )
        last = _point("end", n, t0, wf, store)
        line = {
            "engine": "ledgerflow",
            "workload": "long_lived",
            "store": store_kind,
            "prune_every": prune_every,
            "n": n,
            "after_1000": first,
            f"after_{n}": last,
            "rss_growth_kb": last["rss_kb"] - first["rss_kb"],
            "traced_growth_kb": last["traced_kb"] - first["traced_kb"],
        }
        if store is not None:
            if store_kind == "sqlite":
                line |= _disk(tmp)
            await store.aclose()
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--store", choices=("none", "memory", "sqlite"), default="none")
    parser.add_argument("--prune-every", type=int, default=0, metavar="K")
    parser.add_argument("--every", type=int, default=10_000, metavar="M")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    if args.n < FIRST:
        parser.error(f"N must be at least {FIRST}")
    if args.prune_every < 0 or args.every < 0:
        parser.error("--prune-every and --every must be 0 (never) or more")
    anyio.run(main, args.n, args.store, args.prune_every, args.every, backend=args.backend)
