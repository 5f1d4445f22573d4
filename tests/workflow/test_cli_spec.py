"""Specs on the command line: ``run``/``resume``/``viz`` take a spec file, ``spec schema``
prints the JSON Schema, ``spec check`` and ``spec dump`` read any target; bad specs are one
line on stderr naming the place in the document, exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from builders import load_spec
from visualize import to_mermaid

LEDGERFLOW = Path(sys.executable).parent / "ledgerflow"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

SPEC = """
kind: sequential
name: desk
description: Two agents answer in turn.
clients:
  script: {type: scripted, replies: [draft, final]}
agents:
  writer: {instructions: Write., client: script}
  editor: {instructions: Edit., client: script}
"""


def ledgerflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return subprocess.run(
        [str(LEDGERFLOW), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_run_and_viz_a_spec_file(tmp_path: Path) -> None:
    (tmp_path / "desk.yaml").write_text(SPEC)
    proc = ledgerflow("run", "desk.yaml", "--input", "a note", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "status: completed" in proc.stdout
    assert '"text": "final", "author": "editor"' in proc.stdout
    proc = ledgerflow("viz", "desk.yaml", "-o", "desk.mmd", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "desk.mmd").read_text().strip() == to_mermaid(load_spec(SPEC)).strip()


def test_a_paused_spec_run_resumes_in_another_process(tmp_path: Path) -> None:
    spec = str(EXAMPLES / "handoff.yaml")
    task = "The app crashes when I upload a photo."
    first = ledgerflow("run", spec, "--input", task, "--run-id", "r1", "--no-input", cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    assert "waiting: human:" in first.stdout
    request = first.stdout.split("waiting: ")[1].split(" from ")[0]
    again = ledgerflow("resume", spec, "r1", "--respond", f'{request}="3.2, 20 MB"', cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "update to 3.3" in again.stdout


def test_spec_schema_is_a_json_schema_of_every_kind(tmp_path: Path) -> None:
    proc = ledgerflow("spec", "schema", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["discriminator"]["mapping"]) == {
        "graph",
        "magentic",
        "group_chat",
        "sequential",
        "concurrent",
        "handoff",
    }
    openai = schema["$defs"]["OpenAIClientSpec"]["properties"]
    assert "api_key_env" in openai
    assert "api_key" not in openai
    assert schema["$defs"]["EdgeSpec"]["required"] == ["from"]
    # an editor's validator accepts every example spec and catches a typo
    jsonschema = pytest.importorskip("jsonschema")  # comes with the mcp extra
    import yaml

    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert len(examples) >= 5
    for path in examples:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path.name
    bad = yaml.safe_load((EXAMPLES / "group_chat.yaml").read_text())
    bad["selektor"] = "round_robin"
    assert list(validator.iter_errors(bad))


def test_spec_dump_writes_a_python_team_as_a_spec_that_runs(tmp_path: Path) -> None:
    proc = ledgerflow("spec", "dump", str(EXAMPLES / "group_chat.py") + ":build_team", cwd=tmp_path)
    assert proc.returncode == 2  # no such attribute: a usage error
    app = tmp_path / "team.py"
    app.write_text(
        "from builders import SequentialBuilder\n"
        "from executors import ChatAgent, ScriptedChatClient\n"
        "team = SequentialBuilder([ChatAgent('solo', 'Solo.', 'Be brief.', "
        "ScriptedChatClient(['done']))], name='solo').build()\n"
    )
    proc = ledgerflow("spec", "dump", "team.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "team.yaml").write_text(proc.stdout)
    assert "kind: sequential" in proc.stdout
    check = ledgerflow("spec", "check", "team.yaml", cwd=tmp_path)
    assert check.stdout.strip() == "solo: 1 nodes (solo), start solo"
    run = ledgerflow("run", "team.yaml", "--input", "go", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert '"text": "done"' in run.stdout
    as_json = ledgerflow("spec", "dump", "team.yaml", "--json", cwd=tmp_path)
    assert json.loads(as_json.stdout)["name"] == "solo"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kind: swarm\nname: x\n", "kind: unknown kind 'swarm'"),
        (SPEC.replace("client: script}\n  editor", "client: gpt}\n  editor"), "agents.writer"),
        ("kind: [graph\n", "not valid YAML"),
    ],
)
def test_a_bad_spec_is_one_line_naming_its_place(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "bad.yaml").write_text(spec)
    for args in (("run", "bad.yaml", "--input", "x"), ("viz", "bad.yaml", "-o", "x.mmd")):
        proc = ledgerflow(*args, cwd=tmp_path)
        assert proc.returncode == 2
        assert message in proc.stderr
        assert proc.stderr.startswith("ledgerflow: error: 'bad.yaml': ")
        assert "Traceback" not in proc.stderr
