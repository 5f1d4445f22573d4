"""A real service on loopback: ``python -m tests.workflow.service.server`` in a subprocess.

Tests drive it with real clients (httpx2, the openai client) and read its SSE streams with the
small reader below; the process can be killed with SIGKILL and started again on the same store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx2 = pytest.importorskip("httpx2")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

ROOT = Path(__file__).resolve().parents[3]
TERMINAL = {"completed", "failed", "cancelled", "max_supersteps"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One service process; ``start`` waits until it answers, ``kill`` is SIGKILL."""

    def __init__(
        self,
        store: str,
        *,
        token: str | None = None,
        tick: float = 0.05,
        cli_targets: list[str] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.extra = extra or []
        self.store = store
        self.cli_targets = cli_targets
        self.token = token
        self.tick = tick
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: Any = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "tests.workflow.service.server", self.store, str(self.port)]
        if self.cli_targets is not None:  # through the real command line
            cmd = [sys.executable, "-m", "workflow.cli", "serve", *self.cli_targets]
            cmd += ["--store", self.store, "--port", str(self.port)]
        if self.token:
            cmd += ["--token", self.token]
        cmd += self.extra
        env = {**os.environ, "SERVICE_TEST_TICK": str(self.tick), "PYTHONPATH": str(ROOT)}
        self.log = tempfile.TemporaryFile()  # not a pipe: a full pipe would block the server
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.output()}")
            try:
                httpx2.get(self.url + "/openapi.json", headers=self.headers(), timeout=1)
                return self
            except httpx2.TransportError:
                time.sleep(0.05)
        raise RuntimeError("server did not start in 60 s")

    def output(self) -> str:
        """What the server wrote on stderr so far."""
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self) -> Any:
        return httpx2.Client(base_url=self.url, headers=self.headers(), timeout=30)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def close(self) -> None:
        self.stop()
        if self.log is not None:
            self.log.close()


@pytest.fixture
def make_server() -> Iterator[Any]:
    started: list[Server] = []

    def make(store: str, **kwargs: Any) -> Server:
        server = Server(store, **kwargs)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("service") / "runs.db"
    srv = Server(f"sqlite:///{path}").start()
    yield srv
    srv.close()


def read_events(
    client: Any,
    run_id: str,
    *,
    last_id: int | None = None,
    stop: Any = None,
    timeout: float = 60,
) -> list[tuple[int, dict[str, Any]]]:
    """Read a run's SSE stream until it ends (or ``stop(event)`` is true)."""
    headers = {"Last-Event-ID": str(last_id)} if last_id is not None else {}
    found: list[tuple[int, dict[str, Any]]] = []
    seq, data = None, None
    with client.stream(
        "GET", f"/api/runs/{run_id}/events", headers=headers, timeout=timeout
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: "):
                data = json.loads(line[6:])
            elif line == "" and data is not None:
                assert seq is not None
                found.append((seq, data))
                if stop is not None and stop(data):
                    break
                seq, data = None, None
    return found


def wait_status(client: Any, run_id: str, wanted: set[str], timeout: float = 60) -> dict[str, Any]:
    """Poll ``GET /api/runs/{id}`` until its status is one of ``wanted``."""
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        if body.get("status") in wanted or time.monotonic() > deadline:
            assert body.get("status") in wanted, body
            return body
        time.sleep(0.05)
