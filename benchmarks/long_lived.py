"""long_lived: memory of one process after many mixed runs, with and without a store.

Usage: python benchmarks/long_lived.py [N] [--store none|sqlite] [--backend asyncio|trio]

One workflow object runs N runs in a cycle of four kinds, as a long-lived server would:
completed, failed, cancelled, and paused for input then answered. Memory is read after
1,000 runs (the process is warm) and again after N: resident set size from /proc and the
bytes tracemalloc sees allocated by Python. A flat line means growth near zero (a few
hundred KB of allocator noise). Without a store the workflow keeps, by design, at most the
100 latest failed or cancelled runs for an in-process retry (``max_failed_runs``); answered
runs are not kept. With ``--store sqlite`` every run is checkpointed to a SQLite file
(``synchronous="NORMAL"``); the database on disk grows, the process should not.

Prints one JSON line per measurement point.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

from builders import WorkflowBuilder
from workflow import (
    Executor,
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
    """The input picks the run's fate."""

    @handler
    async def on(self, kind: str, ctx: WorkflowContext[str]) -> None:
        await ctx.set_state("kind", kind)
        if kind == "answered":
            await ctx.request_info(kind, response_type=str)
        elif kind == "failed":
            raise RuntimeError("this run fails on purpose")
        elif kind == "cancelled":
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


async def _one(wf: Workflow, i: int) -> None:
    kind = KINDS[i % len(KINDS)]
    run_id = f"r{i}"
    if kind == "cancelled":
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(functools.partial(wf.run, kind, run_id=run_id))
                await anyio.wait_all_tasks_blocked()
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


def _dir_bytes(path: str) -> int:
    return sum(p.stat().st_size for p in Path(path).iterdir())


def _point(label: str, runs: int, t0: float, wf: Workflow) -> dict[str, Any]:
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    return {
        "runs": runs,
        "rss_kb": _rss_kb(),
        "traced_kb": round(current / 1024),
        "kept_in_memory": len(wf._paused),
        "seconds": round(time.perf_counter() - t0, 2),
        "label": label,
    }


async def main(n: int, store_kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = (
            SQLiteCheckpointStore(Path(tmp) / "runs.db", synchronous="NORMAL")
            if store_kind == "sqlite"
            else None
        )
        wf = WorkflowBuilder(start=Mixed(id="mixed"), name="long", checkpoint_store=store).build()
        tracemalloc.start()
        t0 = time.perf_counter()
        first: dict[str, Any] = {}
        for i in range(n):
            await _one(wf, i)
            if i + 1 == FIRST:
                first = _point("warm", FIRST, t0, wf)
        last = _point("end", n, t0, wf)
        line = {
            "engine": "ledgerflow",
            "workload": "long_lived",
            "store": store_kind,
            "n": n,
            "after_1000": first,
            f"after_{n}": last,
            "rss_growth_kb": last["rss_kb"] - first["rss_kb"],
            "traced_growth_kb": last["traced_kb"] - first["traced_kb"],
        }
        if store is not None:
            line["db_bytes"] = _dir_bytes(tmp)
            await store.aclose()
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--store", choices=("none", "sqlite"), default="none")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    args = parser.parse_args()
    if args.n < FIRST:
        parser.error(f"N must be at least {FIRST}")
    anyio.run(main, args.n, args.store, backend=args.backend)
