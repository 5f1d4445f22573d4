"""serve_paused: memory per run waiting for human input, through the server.

Usage: python benchmarks/serve_memory.py [N [STORE_URL]]   (default 1000, SQLite)
Starts N runs (100 at a time) that each stop on a request, waits until all are awaiting
input, and reads the server process's resident memory before and after. A waiting run lives in
the store, not in the server, so this is mostly what the server's caches grow by. Then answers
one to check it continues.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from typing import Any

import httpx2
from _serve_common import rss_bytes, server


async def settled(client: httpx2.AsyncClient, run_id: str, wanted: set[str]) -> dict[str, Any]:
    """Poll the run until its status is one of ``wanted`` (HTTP has no event to wait on)."""
    while True:
        run: dict[str, Any] = (await client.get(f"/api/runs/{run_id}")).json()
        if run["status"] in wanted:
            return run
        await asyncio.sleep(0.02)


async def measure(url: str, pid: int, n: int) -> dict[str, object]:
    limits = httpx2.Limits(max_connections=50)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        await client.post("/api/workflows/ask/runs", json={"input": -1})  # warm the caches
        await asyncio.sleep(0.5)
        gc.collect()
        before = rss_bytes(pid)
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(50)

        async def start(i: int) -> str:
            async with sem:
                r = await client.post("/api/workflows/ask/runs", json={"input": i})
                return str(r.json()["run_id"])

        ids: list[str] = []
        for batch in range(0, n, 100):  # in batches, so RSS shows what waiting runs keep,
            new = await asyncio.gather(*(start(i) for i in range(batch, min(n, batch + 100))))
            for run_id in new:  # not the peak of a thousand executing at once
                await settled(client, run_id, {"awaiting_input"})
            ids += new
        waiting = await client.get("/api/runs", params={"status": "awaiting_input"})
        assert {r["run_id"] for r in waiting.json()} >= set(ids)
        seconds = time.perf_counter() - t0
        await asyncio.sleep(1.0)  # let the event log flush and handles go
        after = rss_bytes(pid)
        run = (await client.get(f"/api/runs/{ids[0]}")).json()
        rid = run["pending_requests"][0]["request_id"]
        await client.post(f"/api/runs/{ids[0]}/responses", json={rid: True})
        done = await settled(client, ids[0], {"completed"})
    per_run = (after - before) / n
    return {
        "seconds": round(seconds, 3),
        "server_rss_mb": round(after / 2**20, 1),
        "bytes_per_waiting_run": round(per_run),
        "ok": done["outputs"] == [True],
    }


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    store = sys.argv[2] if len(sys.argv) > 2 else None
    with server(store, "ask") as (url, pid):
        out = asyncio.run(measure(url, pid, n))
    line = {"engine": "ledgerflow", "workload": "serve_paused", "n": n}
    line["store"] = (store or "sqlite").split(":")[0]
    print(json.dumps({**line, **out}), flush=True)


if __name__ == "__main__":
    main()
