"""The Studio in headless Chromium: the runs page over a full store, and live event delay.

    python benchmarks/studio_bench.py runs [RUNS]      # RUNS runs in the store (default 1000)
    python benchmarks/studio_bench.py events [RATE] [SECONDS]   # default 500 events/s for 4 s

Prints one JSON line per measurement. ``runs``: milliseconds from navigation to the runs table
shown (the page asks for the latest 200). ``events``: a run emits AgentDelta events at RATE
per second, each carrying its send time; an observer in the page notes when each reaches the
screen (the text node appears), and the delay's p50/p95/max are reported. Same clock on both
sides (one machine). Needs /usr/bin/chromium and Playwright (the dev extra).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builders import WorkflowBuilder  # noqa: E402
from workflow import WorkflowContext, executor  # noqa: E402
from workflow.events import AgentDelta  # noqa: E402

RATE = float(os.environ.get("STUDIO_BENCH_RATE", "500"))
SECONDS = float(os.environ.get("STUDIO_BENCH_SECONDS", "4"))


@executor
async def noop(n: int, ctx: WorkflowContext) -> None:
    await ctx.yield_output(n)


quick = WorkflowBuilder(start=noop, name="quick").build()


@executor
async def chatter(text: str, ctx: WorkflowContext) -> None:
    await anyio.sleep(1.5)  # the page subscribes first
    count = int(RATE * SECONDS)
    start = time.time()
    for i in range(count):
        due = start + i / RATE
        delay = due - time.time()
        if delay > 0:
            await anyio.sleep(delay)
        stamp = f"|{time.time() * 1000:.1f}"
        await ctx.add_event(AgentDelta(run_id="", superstep=0, executor_id="chatter", text=stamp))
    await ctx.yield_output(f"{count} events")


chatty = WorkflowBuilder(start=chatter, name="chatty").build()

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def studio(store: str, target: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "workflow.cli", "studio", target, "--no-browser"]
    cmd += ["--port", str(port), "--store", store]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/api/workflows", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the studio did not start")


def bench_runs(n: int) -> None:
    from playwright.sync_api import sync_playwright

    from workflow import SQLiteCheckpointStore

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "runs.db"

        async def fill() -> None:
            wf = quick.with_store(SQLiteCheckpointStore(db))
            for i in range(n):
                await wf.run(i)

        anyio.run(fill)
        proc, url = studio(f"sqlite:///{db}", "benchmarks/studio_bench.py:quick")
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                times = []
                for _ in range(3):
                    t0 = time.perf_counter()
                    page.goto(url + "/#/runs")
                    page.wait_for_selector("table.runs tbody tr")
                    times.append((time.perf_counter() - t0) * 1000)
                    page.goto("about:blank")
                browser.close()
        finally:
            proc.terminate()
            proc.wait()
    print(
        json.dumps(
            {
                "bench": "studio_runs_page",
                "runs": n,
                "ms": [round(t) for t in times],
                "median_ms": round(statistics.median(times)),
            }
        )
    )


OBSERVER = """
window.__delays = [];
new MutationObserver((records) => {
  const now = performance.timeOrigin + performance.now();
  for (const r of records) for (const node of r.addedNodes) {
    if (node.nodeType === 3 && node.data.startsWith("|"))
      window.__delays.push(now - parseFloat(node.data.slice(1)));
  }
}).observe(document, {subtree: true, childList: true});
"""


def bench_events() -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        proc, url = studio(
            f"sqlite:///{Path(tmp) / 'runs.db'}", "benchmarks/studio_bench.py:chatty"
        )
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.add_init_script(OBSERVER)
                page.goto(url + "/#/w/chatty")
                page.get_by_label("Input").fill("go")
                page.get_by_role("button", name="Run").click()
                page.get_by_role("region", name="Outputs").get_by_text("events").wait_for(
                    timeout=120_000
                )
                delays = sorted(page.evaluate("window.__delays"))
                browser.close()
        finally:
            proc.terminate()
            proc.wait()
    p = lambda q: round(delays[min(len(delays) - 1, int(q * len(delays)))], 1)  # noqa: E731
    print(
        json.dumps(
            {
                "bench": "studio_event_delay",
                "rate_per_s": RATE,
                "events": len(delays),
                "expected": int(RATE * SECONDS),
                "p50_ms": p(0.5),
                "p95_ms": p(0.95),
                "max_ms": round(delays[-1], 1),
            }
        )
    )


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "runs"
    if what == "runs":
        bench_runs(int(sys.argv[2]) if len(sys.argv) > 2 else 1000)
    else:
        bench_events()
