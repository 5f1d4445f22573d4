"""serve_runs: 1,000 runs of a 3-node pipeline started concurrently over HTTP.

Usage: python benchmarks/serve_runs.py [N [STORE_URL]]   (default 1000, SQLite in a temp dir)
Prints one JSON line: runs/s (first POST to last run completed) and POST latency percentiles.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx2
from _serve_common import cpu_seconds, p99, server


async def measure(url: str, pid: int, n: int) -> dict[str, object]:
    cpu0, mine0 = cpu_seconds(pid), time.process_time()
    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        latencies: list[float] = []

        async def start(i: int) -> str:
            t0 = time.perf_counter()
            r = await client.post("/api/workflows/pipeline/runs", json={"input": f"run {i}"})
            latencies.append(time.perf_counter() - t0)
            assert r.status_code == 201, r.text
            return str(r.json()["run_id"])

        t0 = time.perf_counter()
        ids = await asyncio.gather(*(start(i) for i in range(n)))
        posted = time.perf_counter() - t0
        while True:
            done = await client.get("/api/runs", params={"status": "completed"})
            finished = {r["run_id"] for r in done.json()}
            if finished >= set(ids):
                break
            await asyncio.sleep(0.2)
        total = time.perf_counter() - t0
        sample = (await client.get(f"/api/runs/{ids[-1]}")).json()
    return {
        "runs_per_s": round(n / total, 1),
        "seconds": round(total, 3),
        "post_seconds": round(posted, 3),
        "post_p50_ms": round(sorted(latencies)[len(latencies) // 2] * 1000, 1),
        "post_p99_ms": round(p99(latencies) * 1000, 1),
        "server_cpu_ms_per_run": round((cpu_seconds(pid) - cpu0) * 1000 / n, 2),
        "client_cpu_ms_per_run": round((time.process_time() - mine0) * 1000 / n, 2),
        "ok": sample["outputs"] == [f"RUN {n - 1} -- ledgerflow"],
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    store = sys.argv[2] if len(sys.argv) > 2 else None
    with server(store, "pipeline") as (url, pid):
        out = asyncio.run(measure(url, pid, n))
    line = {"engine": "ledgerflow", "workload": "serve_runs", "n": n}
    line["store"] = (store or "sqlite").split(":")[0]
    print(json.dumps({**line, **out}), flush=True)


if __name__ == "__main__":
    main()
