"""Ray backend benchmarks: one JSON line per workload.

Usage: python benchmarks/ray_bench.py [ray_overhead [N] | ray_fanout [N] | ray_large_message [MB]]

Both start a cluster in this box like the tests do (a head that runs nothing and two 1-CPU
worker nodes, all on 127.0.0.1) and measure after a warm-up run:

- ``ray_overhead``: an N-invocation chain on ``RayBackend`` against N bare
  ``ray.get(f.remote(x))`` round trips on the same cluster (the floor any Ray user pays).
- ``ray_fanout``: N CPU-bound 50 ms executors fanned out over the two 1-CPU nodes, against
  the same workflow on ``LocalBackend`` (one process, so one core at a time for Python code);
  the driver's peak RSS for both, and the cores the machine left idle during each run (the
  two workers need two; the kernel shares CPU per session, and the whole cluster runs in
  this one). ``RAY_worker_niceness=0`` runs the workers at normal priority instead of
  Ray's nice 15 (each line records the niceness and the load average).
- ``ray_large_message``: an executor on one node sends MB megabytes (default 200) to an
  executor on the other: time and the driver's peak RSS above its baseline, with the message
  held in Ray's object store (the default), sent back through the driver
  (``large_message_bytes=None``), and held but with a SQLite checkpoint store (whose
  checkpoints need the value, so the driver fetches it).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from typing import Any

for _key, _value in {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}.items():
    os.environ.setdefault(_key, _value)

import anyio  # noqa: E402

from builders import WorkflowBuilder  # noqa: E402
from workflow import (  # noqa: E402
    LocalBackend,
    RayBackend,
    Resources,
    SQLiteCheckpointStore,
    executor,
)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def _cpu_counters() -> tuple[int, int]:
    """Machine-wide (idle, total) jiffies from /proc/stat (idle includes iowait)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def _idle_cores(before: tuple[int, int]) -> float:
    """Mean number of idle cores on the machine since ``before``."""
    idle, total = _cpu_counters()
    span = total - before[1]
    return round((os.cpu_count() or 1) * (idle - before[0]) / span, 2) if span else float("nan")


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


async def add_one(x: int) -> int:
    return x + 1


def chain(n: int) -> Any:
    nodes = [executor(id=f"n{i}")(add_one) for i in range(n)]
    b = WorkflowBuilder(start=nodes[0], name=f"chain{n}", max_supersteps=n + 10)
    for a, c in itertools.pairwise(nodes):
        b.add_edge(a, c)
    return b.build()


def burn(x: int) -> int:
    """50 ms of pure-Python CPU work (holds the GIL, so threads cannot overlap it)."""
    deadline = time.thread_time() + 0.05
    while time.thread_time() < deadline:
        x = (x * 31 + 7) % 1_000_003
    return x


def fanout(n: int) -> Any:
    @executor(id="spread")
    async def spread(x: int) -> int:
        return x

    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return len(xs)

    workers = [executor(id=f"w{i}")(burn) for i in range(n)]
    return (
        WorkflowBuilder(start=spread, name=f"fanout{n}")
        .add_fan_out_edges(spread, workers)
        .add_fan_in_edges(workers, total)
        .build()
    )


def emit(workload: str, n: int, **fields: Any) -> None:
    line = {
        "workload": workload,
        "n": n,
        "python": platform.python_version(),
        **fields,
        # Ray starts its workers at this nice level (15 unless RAY_worker_niceness is set)
        "worker_niceness": int(os.environ.get("RAY_worker_niceness", "15")),
        "load": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(line), flush=True)


def ray_overhead(n: int) -> None:
    import ray

    @ray.remote
    def f(x: int) -> int:
        return x + 1

    ray.get(f.remote(0))
    start = time.perf_counter()
    x = 0
    for _ in range(n):
        x = ray.get(f.remote(x))
    bare = time.perf_counter() - start
    wf = chain(n)
    backend = RayBackend()
    anyio.run(lambda: wf.run(0, backend=backend))  # warm-up: workers started, code shipped
    start = time.perf_counter()
    result = anyio.run(lambda: wf.run(0, backend=backend))
    ours = time.perf_counter() - start
    assert result.outputs == [n], result.outputs
    emit(
        "ray_overhead",
        n,
        ray_backend_s=round(ours, 3),
        bare_ray_get_s=round(bare, 3),
        ratio=round(ours / bare, 2),
        per_invocation_ms=round(ours / n * 1000, 2),
        bare_per_call_ms=round(bare / n * 1000, 2),
    )


def ray_fanout(n: int) -> None:
    wf = fanout(n)
    backend = RayBackend()
    anyio.run(lambda: wf.run(1, backend=backend))
    _reset_peak()
    cpu = _cpu_counters()
    start = time.perf_counter()
    remote = anyio.run(lambda: wf.run(1, backend=backend))
    on_ray = time.perf_counter() - start
    ray_idle = _idle_cores(cpu)
    ray_rss = _peak_rss_mb()
    _reset_peak()
    cpu = _cpu_counters()
    start = time.perf_counter()
    local = anyio.run(lambda: wf.run(1, backend=LocalBackend()))
    in_process = time.perf_counter() - start
    local_idle = _idle_cores(cpu)
    local_rss = _peak_rss_mb()
    assert remote.outputs == local.outputs == [n]
    emit(
        "ray_fanout",
        n,
        ray_s=round(on_ray, 3),
        local_s=round(in_process, 3),
        speedup=round(in_process / on_ray, 2),
        driver_peak_rss_mb_ray=round(ray_rss, 1),
        driver_peak_rss_mb_local=round(local_rss, 1),
        # cores the machine left idle meanwhile: Ray's two workers need two of them
        idle_cores_during_ray=ray_idle,
        idle_cores_during_local=local_idle,
    )


@executor(id="produce")
async def produce(n: int) -> bytes:
    return bytes([7]) * n


@executor(id="consume")
async def consume(data: bytes) -> str:
    return f"{len(data)} {hashlib.sha256(data).hexdigest()[:16]}"


def big_pipeline(store: Any = None) -> Any:
    return (
        WorkflowBuilder(start=produce, name="big", checkpoint_store=store)
        .add_executor(produce, resources=Resources(custom={"node_a": 1}))
        .add_executor(consume, resources=Resources(custom={"node_b": 1}))
        .add_edge(produce, consume)
        .build()
    )


def ray_large_message(mb: int) -> None:
    size = mb << 20
    want = [f"{size} {hashlib.sha256(bytes([7]) * size).hexdigest()[:16]}"]
    fields: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteCheckpointStore(os.path.join(tmp, "runs.db"))
        cases = {
            "held": (big_pipeline(), RayBackend()),
            "through_driver": (big_pipeline(), RayBackend(large_message_bytes=None)),
            "held_durable": (big_pipeline(store), RayBackend()),
        }
        for name, (wf, backend) in cases.items():
            anyio.run(functools.partial(wf.run, 1024, backend=backend))  # warm-up
            _reset_peak()
            base = _rss_mb()
            start = time.perf_counter()
            result = anyio.run(functools.partial(wf.run, size, backend=backend))
            took = time.perf_counter() - start
            assert result.outputs == want, (name, result.outputs, result.error)
            fields[f"{name}_s"] = round(took, 2)
            fields[f"{name}_driver_peak_rss_growth_mb"] = round(_peak_rss_mb() - base, 1)
        anyio.run(store.aclose)
    emit("ray_large_message", mb, **fields)


def main(argv: list[str]) -> None:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    for name in ("node_a", "node_b"):
        cluster.add_node(num_cpus=1, resources={name: 1})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        todo = {
            "ray_overhead": (ray_overhead, 1000),
            "ray_fanout": (ray_fanout, 200),
            "ray_large_message": (ray_large_message, 200),
        }
        names = [argv[0]] if argv else list(todo)
        for name in names:
            fn, default = todo[name]
            fn(int(argv[1]) if len(argv) > 1 else default)
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
