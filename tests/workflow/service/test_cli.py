"""``ledgerflow serve`` from the command line: targets, a directory, bind safety."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

from tests.conftest import require_service
from tests.workflow.service.conftest import ROOT, TERMINAL, wait_status


def test_serve_a_directory_of_targets(make_server: Any, tmp_path: Any) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "a.py").write_text(
        "from tests.workflow.service.apps import pipeline\nwf = pipeline()\n"
    )
    (flows / "b.py").write_text(
        "from tests.workflow.service.apps import approval\nwf = approval()\n"
    )
    (flows / "notes.py").write_text("x = 1\n")  # defines no workflow: skipped, said on stderr
    (flows / "README.txt").write_text("not a target")
    srv = make_server(f"sqlite:///{tmp_path}/runs.db", cli_targets=[str(flows)])
    with srv.client() as c:
        assert {w["name"] for w in c.get("/api/workflows").json()} == {"pipeline", "approval"}
        run_id = c.post("/api/workflows/pipeline/runs", json={"input": "cli"}).json()["run_id"]
        assert wait_status(c, run_id, TERMINAL)["outputs"] == ["<CLI!>"]
        if shutil.which("dot") is not None or os.environ.get("CI", "").lower() == "true":
            require_service(shutil.which("dot") is not None, "graphviz's dot is not installed")
            svg = c.get("/api/workflows/pipeline/diagram.svg")
            assert svg.status_code == 200
            assert b"<svg" in svg.content
            assert b"exclaim" in svg.content  # visualize drew the real graph
    srv.stop()
    assert "skipping" in srv.output()
    assert "notes.py" in srv.output()


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LEDGERFLOW_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "workflow.cli", "serve", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_other_addresses_without_a_token() -> None:
    done = _serve("--host", "0.0.0.0")
    assert done.returncode == 2
    assert "without a token" in done.stderr
    assert "--token" in done.stderr


def test_serve_usage_errors_exit_2() -> None:
    assert _serve("--store", "nope://x").returncode == 2
    bad_port = _serve("--port", "0")
    assert bad_port.returncode == 2
    assert "--port 0: expected 1-65535" in bad_port.stderr
    missing = _serve("does/not/exist.py")
    assert missing.returncode == 2
    assert "exist.py" in missing.stderr


def test_studio_checks_its_port_like_serve(tmp_path: Any) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "workflow.cli", "studio", str(tmp_path), "--port", "70000"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--port 70000: expected 1-65535" in done.stderr
