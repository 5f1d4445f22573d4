"""Examples (and so `make demo`) exit non-zero when their run fails.

Each example that can talk to a real model is pointed at a local OpenAI-compatible server
that refuses every request (HTTP 401): the run fails, and the process must say so in its exit
status, not only in its output.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.executors.openai_server import OpenAITestServer, Status

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture
def refusing_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        srv.enqueue(*[Status(401, "invalid api key")] * 50)
        yield srv
    assert srv.errors == []


def run_example(name: str, base_url: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(OPENAI_BASE_URL=base_url, OPENAI_MODEL="test-model")
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("demo.py", ": failed (executor 'orchestrator' failed"),
        ("magentic_team.py", "HTTP 401 Unauthorized"),
        ("group_chat.py", "=== run failed:"),
        ("handoff.py", "ChatStatusError"),
    ],
)
def test_a_failed_run_exits_non_zero(
    name: str, says: str, refusing_server: OpenAITestServer, tmp_path: pathlib.Path
) -> None:
    proc = run_example(name, refusing_server.base_url, tmp_path)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert says in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    assert refusing_server.completion_requests(), "the example never asked the model"
    assert "Traceback" not in proc.stderr or name == "handoff.py", proc.stderr[-2000:]


def test_make_demo_passes_the_exit_status_on() -> None:
    # `make demo` runs examples/demo.py directly (no `-` prefix, no `|| true`), so make fails
    # when the demo does; demo.py itself re-raises the team's SystemExit (runpy).
    recipe = subprocess.run(
        ["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout
    demo_lines = [line for line in recipe.splitlines() if "examples/demo.py" in line]
    assert demo_lines, recipe
    assert all("||" not in line and not line.startswith("-") for line in demo_lines)
