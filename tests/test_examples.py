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
    "mcp_tools.py": "The MCP tool says: 6 words; most common: the=2, cat=2",
    "workflow_as_agent.py": "Via the research tool: Summary: ledgers date to Mesopotamia.",
    "semantic_kernel.py": "Tomorrow: sunny and 21 C in Paris.",
    "review.py": "published: Ledgers (ship it)",
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


# Each team example also exists as a spec (examples/*.yaml), run by the ledgerflow command.
SPECS = {
    "group_chat.yaml": ("Write a palindrome checker in Python.", '"text": "APPROVED"'),
    "handoff.yaml": ("I was charged twice for invoice 1042.", "refunded 49.00 EUR"),
    "magentic_team.yaml": ("Which warehouse shipped the most?", "North had the highest"),
    "sequential.yaml": ("A note for our new kettle.", "Approved: short"),
    "concurrent.yaml": ("Name our new kettle.", "Steamline: clear"),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_example_spec_runs(name: str, tmp_path: pathlib.Path) -> None:
    task, expected = SPECS[name]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    ledgerflow = pathlib.Path(sys.executable).parent / "ledgerflow"
    proc = subprocess.run(
        [str(ledgerflow), "run", str(ROOT / "examples" / name), "--input", task, "--no-input"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "status: completed" in proc.stdout
    assert expected in proc.stdout


@pytest.mark.parametrize(
    ("spec", "module", "build"),
    [
        ("group_chat.yaml", "group_chat", "build(clients())"),
        ("handoff.yaml", "handoff", "build(models())"),
        ("magentic_team.yaml", "magentic_team", "build_team()"),
    ],
)
def test_example_spec_is_its_python_twin(spec: str, module: str, build: str) -> None:
    # the spec and the Python example build the same team: same diagram, same spec
    code = (
        "import sys, json; sys.path.insert(0, 'examples');"
        f"from {module} import *; from builders import dump_spec, load_spec;"
        "from visualize import to_mermaid;"
        f"a = {build}; b = load_spec('examples/{spec}', allow_imports=True);"
        "da, db = dump_spec(a), dump_spec(b); db.pop('description');"
        "print(to_mermaid(a) == to_mermaid(b), da == db)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["True", "True"]
