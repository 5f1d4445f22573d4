"""The plumbing around the real server: the venv script and the command runner fail clearly."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_venv_script_can_be_skipped_and_does_nothing_then(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "LEDGERFLOW_SKIP_LLM": "1", "LEDGERFLOW_LLM_VENV": str(tmp_path / "v")}
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "llm-venv.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert not (tmp_path / "v").exists()


def test_the_runner_names_the_missing_venv_and_how_to_build_it(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "LEDGERFLOW_LLM_VENV": str(tmp_path / "nowhere")}
    done = subprocess.run(
        [sys.executable, "-m", "tests.llm.local_server", "--", "true"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert str(tmp_path / "nowhere") in done.stderr
    assert ".ci/llm-venv.sh" in done.stderr


def test_the_runner_needs_a_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.llm.local_server"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert "usage:" in done.stderr
