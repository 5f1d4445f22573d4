"""serve_events: one run emitting 10,000 events, read by 10 SSE subscribers at once.

Usage: python benchmarks/serve_events.py [EVENTS [SUBSCRIBERS [STORE_URL]]]
The run streams model-token events (AgentDelta) 100 per superstep, each carrying its emit
time (what a chat agent streams; nothing accumulates in the checkpoints); every subscriber reads
the whole stream (reconnecting with Last-Event-ID if the server cuts it off). Prints one JSON
line: events/s delivered (all subscribers together) and the p50/p99 delay from an output's
emission to its receipt (the engine hands a superstep's events over when the superstep ends).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx2
from _serve_common import cpu_seconds, p99, server

PER_STEP_EVENTS = 105  # 100 deltas + superstep, invoked, completed, checkpoint events


async def subscriber(client: httpx2.AsyncClient, run_id: str) -> dict[str, object]:
    last, count, reconnects, delays, done = 0, 0, -1, [], False
    while not done:
        reconnects += 1
        headers = {"Last-Event-ID": str(last)} if last else {}
        async with client.stream("GET", f"/api/runs/{run_id}/events", headers=headers) as r:
            seq = 0
            async for line in r.aiter_lines():
                if line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("data: "):
                    now = time.time()
                    event = json.loads(line[6:])
                    last, count = seq, count + 1
                    if event["type"] == "AgentDelta":
                        delays.append(now - float(event["text"]))
                    elif event["type"] == "RunFinished":
                        done = True
    return {"count": count, "reconnects": reconnects, "delays": delays, "at": time.perf_counter()}


async def measure(url: str, pid: int, events: int, subscribers: int) -> dict[str, object]:
    cpu0, mine0 = cpu_seconds(pid), time.process_time()
    outputs = max(1, events * 100 // PER_STEP_EVENTS)
    async with httpx2.AsyncClient(base_url=url, timeout=300) as client:
        t0 = time.perf_counter()
        r = await client.post("/api/workflows/emitter/runs", json={"input": outputs})
        run_id = r.json()["run_id"]
        results = await asyncio.gather(*(subscriber(client, run_id) for _ in range(subscribers)))
        total = max(float(x["at"]) for x in results) - t0  # type: ignore[arg-type]
        run = (await client.get(f"/api/runs/{run_id}")).json()
    delays = [d for x in results for d in x["delays"]]  # type: ignore[attr-defined]
    delivered = sum(int(x["count"]) for x in results)  # type: ignore[call-overload]
    return {
        "events_per_run": delivered // subscribers,
        "events_per_s": round(delivered / total),
        "seconds": round(total, 3),
        "delay_p50_ms": round(sorted(delays)[len(delays) // 2] * 1000, 1),
        "delay_p99_ms": round(p99(delays) * 1000, 1),
        "reconnects": sum(int(x["reconnects"]) for x in results),  # type: ignore[call-overload]
        "server_cpu_s": round(cpu_seconds(pid) - cpu0, 2),
        "client_cpu_s": round(time.process_time() - mine0, 2),
        "ok": run["status"] == "completed" and run["outputs"] == ["done"],
    }


def main() -> None:
    events = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    subscribers = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    store = sys.argv[3] if len(sys.argv) > 3 else None
    with server(store, "emitter") as (url, pid):
        out = asyncio.run(measure(url, pid, events, subscribers))
    line = {"engine": "ledgerflow", "workload": "serve_events", "n": events}
    line.update(subscribers=subscribers, store=(store or "sqlite").split(":")[0])
    print(json.dumps({**line, **out}), flush=True)


if __name__ == "__main__":
    main()
