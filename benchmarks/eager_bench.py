"""Eager scheduling benchmarks: one JSON line per (workload, scheduling), each in a fresh process.

Usage: python benchmarks/eager_bench.py [WORKLOAD [N [SCHEDULING]]]   (no arguments: all)

- ``eager_skew``: a fast branch of ten 10 ms steps beside a slow one. ``slow_steps`` 100 ms
  steps on the slow branch (1: "one 100 ms step"; 10: a slow branch as long as the fast
  one). ``seconds`` is the whole run; ``fast_seconds`` is when the fast branch's output
  arrived (read from the event stream), the latency eager scheduling is for.
- ``chain`` and ``fanout``: ``benchmarks/bench.py``'s workloads, in either mode (eager must
  stay within 1.5x of superstep).
- ``durable_fanout_memory`` / ``durable_fanout_sqlite``: N executors sleeping 0-200 ms each
  (seeded) behind one fan-out and a fan-in, with that store: ``checkpoints`` written,
  ``pending_writes`` recorded, ``bytes`` written (in-memory store) and ``seconds``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import chain, fanout

from builders import WorkflowBuilder
from workflow import Workflow, executor
from workflow.events import OutputEmitted, RunFinished


def skew(scheduling: str, slow_steps: int) -> Workflow:
    @executor(id="start")
    async def start(x: int) -> int:
        return x

    def step(name: str, delay: float) -> Any:
        async def run(x: int) -> int:
            await asyncio.sleep(delay)
            return x + 1

        return executor(id=name)(run)

    fast = [step(f"fast{i}", 0.01) for i in range(10)]
    slow = [step(f"slow{i}", 0.1) for i in range(slow_steps)]
    b = WorkflowBuilder(start=start, name="skew", scheduling=scheduling)
    b.add_edge(start, fast[0]).add_edge(start, slow[0])
    for branch in (fast, slow):
        for a, c in itertools.pairwise(branch):
            b.add_edge(a, c)
    return b.build()


def sleepy(n: int, scheduling: str, store: Any) -> Workflow:
    @executor(id="start")
    async def start(x: int) -> int:
        return x

    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return sum(xs)

    def worker(i: int) -> Any:
        delay = random.Random(i).uniform(0, 0.2)

        async def run(x: int) -> int:
            await asyncio.sleep(delay)
            return x + 1

        return executor(id=f"w{i}")(run)

    workers = [worker(i) for i in range(n)]
    b = WorkflowBuilder(start=start, name="sleepy", scheduling=scheduling, checkpoint_store=store)
    return b.add_fan_out_edges(start, workers).add_fan_in_edges(workers, total).build()


async def durable(workload: str, n: int, scheduling: str, out: dict[str, Any]) -> dict[str, Any]:
    from workflow import InMemoryCheckpointStore, SQLiteCheckpointStore

    puts = [0]

    def counting(store: Any) -> Any:
        put = store.put_write

        async def counted(*args: Any, **kw: Any) -> None:
            puts[0] += 1
            await put(*args, **kw)

        store.put_write = counted
        return store

    with tempfile.TemporaryDirectory() as tmp:
        if workload.endswith("sqlite"):
            store = counting(SQLiteCheckpointStore(Path(tmp) / "runs.db"))
        else:
            store = counting(InMemoryCheckpointStore())
        try:
            wf = sleepy(n, scheduling, store)
            t0 = time.perf_counter()
            result = await wf.run(0, run_id="bench")
            secs = time.perf_counter() - t0
            history = await store.list_checkpoints("bench")
        finally:
            await store.aclose()
    out.update(
        seconds=round(secs, 3),
        checkpoints=len(history),
        pending_writes=puts[0],
        bytes=getattr(store, "bytes_written", None),
        ok=result.outputs == [n],
    )
    return out


def _in_mode(wf: Workflow, scheduling: str) -> Workflow:
    return Workflow(wf.graph, max_supersteps=wf.max_supersteps, scheduling=scheduling)  # type: ignore[arg-type]


async def measure(workload: str, n: int, scheduling: str) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": "ledgerflow", "workload": workload, "n": n}
    out["scheduling"] = scheduling
    if workload == "eager_skew":
        wf = skew(scheduling, n)
        t0 = time.perf_counter()
        fast_at = None
        async with wf.run_stream(0) as events:
            async for event in events:
                if isinstance(event, OutputEmitted) and event.executor_id == "fast9":
                    fast_at = time.perf_counter() - t0
                if isinstance(event, RunFinished):
                    status = event.status
        secs = time.perf_counter() - t0
        out.update(
            seconds=round(secs, 4),
            fast_seconds=round(fast_at, 4) if fast_at is not None else None,
            ok=str(status) == "completed",
        )
        return out
    if workload.startswith("durable_fanout"):
        return await durable(workload, n, scheduling, out)
    if workload == "chain":
        wf, expected = _in_mode(chain(n), scheduling), n
    elif workload == "fanout":
        wf, expected = _in_mode(fanout(n, 0.0), scheduling), n * (n - 1)
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    t0 = time.perf_counter()
    result = await wf.run(0)
    secs = time.perf_counter() - t0
    warm = []
    for _ in range(5):
        t1 = time.perf_counter()
        await wf.run(0)
        warm.append(time.perf_counter() - t1)
    out.update(
        seconds=round(secs, 6),
        seconds_warm=round(sorted(warm)[len(warm) // 2], 6),
        ok=result.outputs == [expected],
        python=platform.python_version(),
    )
    return out


SUITE = [
    ("eager_skew", 1),
    ("eager_skew", 10),
    ("chain", 1000),
    ("fanout", 1000),
    ("durable_fanout_memory", 1000),
    ("durable_fanout_sqlite", 1000),
]


def main() -> None:
    if len(sys.argv) >= 2:
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
        modes = [sys.argv[3]] if len(sys.argv) > 3 else ["superstep", "eager"]
        for mode in modes:
            print(json.dumps(asyncio.run(measure(sys.argv[1], n, mode))), flush=True)
        return
    for workload, n in SUITE:  # each in a fresh process
        for mode in ("superstep", "eager"):
            subprocess.run([sys.executable, __file__, workload, str(n), mode], check=False)


if __name__ == "__main__":
    main()
