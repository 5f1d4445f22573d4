"""A real ``ledgerflow studio`` on loopback and a real headless Chromium driving it.

The browser is Debian's ``/usr/bin/chromium`` (installed by ``make test`` through
.ci/system-deps.sh), driven by Playwright for Python; Playwright's own browser download is never
used. Every page a test visits is saved as a screenshot under ``out/studio/`` to look at.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "out" / "studio"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
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
TARGETS = [
    "examples/review.py",
    "tests/studio/apps.py:payer",
    "examples/sequential.yaml",
    "tests/studio/apps.py:slow",
    "tests/studio/apps.py:ask",
    "tests/studio/apps.py:judge",
    "examples/magentic_team.yaml",
    "tests/studio/apps.py:reviewed",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Studio:
    """``ledgerflow studio`` in a subprocess; ``restart`` keeps the store and the port."""

    def __init__(self, store: str, log: Path, targets: list[str]) -> None:
        self.store = store
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.targets = targets
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Studio:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "workflow.cli", "studio", *self.targets, "--no-browser"]
        cmd += ["--port", str(self.port), "--store", self.store]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"studio exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/api/workflows", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"studio did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    server = Studio(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "studio.log", TARGETS)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Package scope, not session: sync_playwright keeps an asyncio loop running in this thread
# until it exits, and every later anyio test then fails with "Cannot run the event loop
# while another loop is running" (the whole suite after tests/studio did, in CI).
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    require_service(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM} (apt install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_service(False, "Playwright for Python is not installed (the dev extra has it)")
        raise
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, studio: Studio) -> Iterator[Any]:
    """A 1280x800 page that records every request it makes (``page.requested``)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    tab.requested = requested
    try:
        yield tab
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    """Save what the page shows now as out/studio/NAME.png (a test artifact to look at)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
