"""Shared by the serve_* benchmarks: start ``ledgerflow serve`` on loopback, read its memory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parents[1]
APP = "benchmarks/serve_app.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(store: str | None = None, *names: str) -> Iterator[tuple[str, int]]:
    """``ledgerflow serve`` on a free port; yields (base URL, pid); stops it on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="lfserve-") as tmp:
        store = store or f"sqlite:///{tmp}/runs.db"
        targets = [f"{APP}:{name}" for name in names]
        cmd = [sys.executable, "-m", "workflow.cli", "serve", *targets]
        cmd += ["--store", store, "--port", str(port)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with open(Path(tmp) / "server.log", "wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
            url = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        httpx2.get(url + "/openapi.json", timeout=1)
                        break
                    except httpx2.TransportError:
                        if proc.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError((Path(tmp) / "server.log").read_text()) from None
                        time.sleep(0.05)
                yield url, proc.pid
            finally:
                proc.terminate()
                proc.wait(30)


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process ``pid`` has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
