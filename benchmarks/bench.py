"""Ledgerflow benchmarks: one JSON line per workload, same workloads as ../shared/peer-bench.

Usage: python benchmarks/bench.py [WORKLOAD [N]]   (no arguments: the whole suite)

Each measurement runs in this process after a warm-up build; peak RSS is read from
/proc/self/status (VmHWM after resetting it), like the peer harness does.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from builders import WorkflowBuilder
from workflow import Executor, WorkflowContext, executor, handler, response_handler

PAYLOAD = "x" * (100 * 1024)


def _status_kb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return float(line.split()[1])
    return float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def chain(n: int, store: Any = None, payload: bool = False) -> Any:
    async def add_one(x: Any) -> Any:
        if payload:
            return {"value": x["value"] + 1, "payload": x["payload"]}
        return x + 1

    nodes = [executor(id=f"n{i}")(add_one) for i in range(n)]
    b = WorkflowBuilder(
        start=nodes[0], name=f"chain{n}", checkpoint_store=store, max_supersteps=n + 10
    )
    for a, c in itertools.pairwise(nodes):
        b.add_edge(a, c)
    return b.build()


def fanout(n: int, sleep: float) -> Any:
    @executor(id="source")
    async def source(x: int) -> int:
        return x

    def make(i: int) -> Any:
        async def worker(x: int) -> int:
            if sleep:
                await asyncio.sleep(sleep)
            return i * 2

        return executor(id=f"w{i}")(worker)

    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return sum(xs)

    workers = [make(i) for i in range(n)]
    return (
        WorkflowBuilder(start=source, name="fanout")
        .add_fan_out_edges(source, workers)
        .add_fan_in_edges(workers, total)
        .build()
    )


class Step(Executor):
    def __init__(self, id: str, limit: int) -> None:
        super().__init__(id)
        self.limit = limit

    @handler
    async def step(self, x: int, ctx: WorkflowContext[int]) -> None:
        if x + 1 >= self.limit:
            await ctx.yield_output(x + 1)
        else:
            await ctx.send_message(x + 1)


def loop(n: int) -> Any:
    a, b = Step("a", n), Step("b", n)
    return (
        WorkflowBuilder(start=a, name="loop", max_supersteps=n + 10)
        .add_edge(a, b)
        .add_edge(b, a)
        .build()
    )


class Ask(Executor):
    @handler
    async def on(self, x: int, ctx: WorkflowContext) -> None:
        await ctx.request_info({"question": x}, response_type=bool)

    @response_handler
    async def reply(self, q: dict[str, int], ok: bool, ctx: WorkflowContext[int]) -> None:
        await ctx.yield_output(q["question"])


async def paused_runs(n: int) -> dict[str, Any]:
    """N runs paused for human input at once, kept in memory for an in-process resume."""
    # all N (and the probe) stay resumable: raise the in-memory cap (default 10,000) to fit
    wf = WorkflowBuilder(start=Ask("ask"), name="paused", max_paused_runs=n + 1).build()
    gc.collect()
    before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    for i in range(n):
        await wf.run(i, run_id=f"r{i}")
    secs = time.perf_counter() - t0
    gc.collect()
    per_run = (_status_kb("VmRSS") - before) * 1024 / n
    first = (await wf.run(0, run_id="probe")).pending_requests[0].request_id
    done = await wf.resume("probe", responses={first: True})
    return {
        "seconds": round(secs, 6),
        "bytes_per_paused_run": round(per_run),
        "runs_fit_in_1gb": int(2**30 / per_run) if per_run > 0 else None,
        "ok": len(wf._paused) == n and done.outputs == [0],
    }


async def seam_overhead(n: int, kind: str) -> dict[str, Any]:
    """What a test backend costs per invocation: a chain of n hops, local vs ``kind``.

    ``roundtrip`` encodes every request and outcome with the checkpoint serializer (to JSON
    bytes and back), as a remote backend must: the price of that line, before any network.
    ``threads`` runs each invocation on a worker thread's event loop: the price of two
    thread hops (there and back) per invocation, as a thread-pool backend pays.
    """
    from workflow.authoring import RoundTripBackend, ThreadBackend

    wf = chain(n)
    backend: Any = RoundTripBackend() if kind == "roundtrip" else ThreadBackend()
    await wf.run(0)
    await wf.run(0, backend=backend)
    best: dict[str, float] = {}
    for name, kw in (("local", {}), (kind, {"backend": backend})):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            result = await wf.run(0, **kw)
            times.append(time.perf_counter() - t0)
            assert result.outputs == [n]
        best[name] = min(times)
    per = {k: v / n * 1e6 for k, v in best.items()}
    out = {
        "seconds": round(best[kind], 6),
        "us_per_invocation_local": round(per["local"], 2),
        f"us_per_invocation_{kind}": round(per[kind], 2),
        "overhead_us_per_invocation": round(per[kind] - per["local"], 2),
        "ok": True,
    }
    if kind == "roundtrip":
        out["wire_bytes_per_invocation"] = round(backend.bytes / backend.invocations)
    return out


def build_big(n: int) -> float:
    nodes = [executor(id=f"n{i}")(_ident) for i in range(n)]
    t0 = time.perf_counter()
    b = WorkflowBuilder(start=nodes[0], name="big")
    for a, c in itertools.pairwise(nodes):
        b.add_edge(a, c)
    b.build()
    return time.perf_counter() - t0


async def _ident(x: int) -> int:
    return x


async def measure(workload: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {"engine": "ledgerflow", "workload": workload, "n": n}
    run: Callable[[], Awaitable[Any]]
    expected: Any
    extra: dict[str, Any] = {}
    tmp = tempfile.mkdtemp(prefix="lfbench-")
    if workload == "chain":
        wf = chain(n)
        run, expected = (lambda: wf.run(0)), n
    elif workload in ("fanout", "sleep_concurrency"):
        wf = fanout(n, 0.1 if workload == "sleep_concurrency" else 0.0)
        run, expected = (lambda: wf.run(0)), n * (n - 1)
    elif workload == "loop":
        wf = loop(n)
        run, expected = (lambda: wf.run(0)), n
    elif workload == "throughput":
        wf = chain(3)

        async def many() -> Any:
            ok = 0
            for _ in range(n):
                r = await wf.run(0)
                ok += r.outputs == [3]
            return ok

        run, expected = many, n
    elif workload == "paused_runs":
        out.update(await paused_runs(n))
        return out
    elif workload in ("roundtrip", "threads"):
        out.update(await seam_overhead(n, workload))
        return out
    elif workload == "build":
        secs = build_big(n)
        out.update(seconds=round(secs, 6), ok=True)
        return out
    elif workload.startswith("checkpoint_"):
        from workflow import store_from_url  # type: ignore[attr-defined]

        kind = workload.removeprefix("checkpoint_")
        url = {
            "memory": "memory://",
            "file": f"file://{tmp}/ckpt",
            "sqlite": f"sqlite:///{tmp}/runs.db",
            "postgres": os.environ.get("DATABASE_URL", ""),
        }[kind]
        if not url:
            out.update(seconds=None, unsupported="set DATABASE_URL")
            return out
        store = store_from_url(url)
        wf = chain(n, store=store, payload=True)
        run, expected = (lambda: wf.run({"value": 0, "payload": PAYLOAD})), n

        def file_bytes() -> int:
            """Bytes on disk after the run (SQLite: database plus write-ahead log)."""
            if kind == "sqlite":
                total = 0
                for suffix in ("", "-wal"):
                    p = f"{tmp}/runs.db{suffix}"
                    total += os.path.getsize(p) if os.path.exists(p) else 0
                return total
            if kind == "file":
                du = subprocess.run(["du", "-sb", f"{tmp}/ckpt"], capture_output=True, text=True)
                return int(du.stdout.split()[0])
            return 0

        extra["file_bytes"] = file_bytes
        extra["store"] = store
    else:
        raise SystemExit(f"unknown workload {workload!r}")

    gc.collect()
    _reset_peak()
    t0 = time.perf_counter()
    result = await run()
    secs = time.perf_counter() - t0
    value = result if isinstance(result, int) else (result.outputs[-1] if result.outputs else None)
    if isinstance(value, dict):
        value = value.get("value")
    out.update(
        seconds=round(secs, 6),
        peak_rss_mb=round(_status_kb("VmHWM") / 1024, 1),
        ok=value == expected,
    )
    if workload in ("chain", "loop") or workload.startswith("checkpoint"):
        out["us_per_hop"] = round(secs / n * 1e6, 2)
    if workload == "throughput":
        out["runs_per_sec"] = round(n / secs, 1)
    if "store" in extra:
        # like the peers' figure: serialized checkpoint bytes the store wrote (blobs once)
        out["bytes_written"] = int(getattr(extra["store"], "bytes_written", 0))
        if extra["file_bytes"]():
            out["file_bytes"] = extra["file_bytes"]()
    elif secs < 5:
        t0 = time.perf_counter()
        await run()
        out["seconds_warm"] = round(time.perf_counter() - t0, 6)
    out["python"] = platform.python_version()
    return out


SUITE = [
    ("chain", 100),
    ("chain", 1000),
    ("fanout", 100),
    ("fanout", 1000),
    ("sleep_concurrency", 100),
    ("sleep_concurrency", 1000),
    ("loop", 1000),
    ("loop", 10000),
    ("throughput", 1000),
    ("build", 10000),
    ("roundtrip", 1000),
    ("threads", 1000),
    ("checkpoint_memory", 100),
    ("checkpoint_file", 100),
    ("checkpoint_sqlite", 100),
    ("checkpoint_postgres", 100),
]


def main() -> None:
    if len(sys.argv) >= 2:
        n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
        print(json.dumps(asyncio.run(measure(sys.argv[1], n))), flush=True)
        return
    for workload, n in SUITE:  # each in a fresh process, so peak RSS is per workload
        subprocess.run([sys.executable, __file__, workload, str(n)], check=False)


if __name__ == "__main__":
    main()
