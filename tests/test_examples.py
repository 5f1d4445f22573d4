"""Every example runs offline, exits 0 and prints what it promises."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXPECTED = {
    "pipeline.py": "the=3",
    "map_reduce.py": "top words:",
    "router.py": "fixed after 2 attempts",
    "nested.py": "PUBLISHED: The story of ledgers.",
    "demo.py": "final answer (satisfied)",
    "magentic_team.py": "final answer (satisfied)",
    # the proxy also saw the assistant's code message, which went through the code node
    "two_agent_chat.py": "user_proxy's conversation: assistant -> code -> user_proxy -> assistant",
    "tool_approval.py": "",
    "group_chat.py": "",
    "handoff.py": "",
    "autogen_classic.py": "",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, tmp_path: pathlib.Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert EXPECTED[name] in proc.stdout
