"""The installed ``ledgerflow`` console script, end to end in subprocesses.

Each test works in its own temporary directory (the default store is
``sqlite:///.ledgerflow/runs.db`` relative to it) with small workflow files written here.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import workflow
from tests.conftest import require_service
from workflow.cli import jsonable, parse_responses, split_target

LEDGERFLOW = Path(sys.executable).parent / "ledgerflow"

needs_stores = pytest.mark.skipif(
    not hasattr(workflow, "store_from_url"),
    reason="runs need the checkpoint stores: workflow.store_from_url is not exported yet",
)

APP = """
from builders import WorkflowBuilder
from workflow import Executor, WorkflowContext, executor, handler, response_handler


class Approve(Executor):
    @handler
    async def ask(self, draft: str, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(f"publish {draft!r}?", response_type=str)

    @response_handler
    async def answered(self, request: str, answer: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"{answer}: {request}")


@executor(id="draft")
async def draft(topic: str) -> str:
    if topic == "boom":
        raise ValueError("cannot write about boom")
    return f"a post about {topic}"


approve = Approve("approve")
wf = WorkflowBuilder(start=draft, name="publish").add_edge(draft, approve).build()
"""

COUNTER = """
from builders import WorkflowBuilder
from workflow import executor


@executor(id="double")
async def double(n: int) -> int:
    return n * 2


def build():
    return WorkflowBuilder(start=double, name="double").build()


async def build_async():
    return build()


def not_a_workflow():
    return 42


def needs_args(x):
    return build()
"""


def ledgerflow(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    require_service(LEDGERFLOW.exists(), f"console script not installed at {LEDGERFLOW}")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("LEDGERFLOW_TRACEBACK", None)
    return subprocess.run(
        [str(LEDGERFLOW), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
        check=False,
    )


def one_error_line(done: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The command failed with ``code`` and said so in one line, without a traceback."""
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "counter.py").write_text(COUNTER)
    return tmp_path


def fields(stdout: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        key, _, value = line.partition(": ")
        found.setdefault(key, []).append(value)
    return found


# -- end to end with the store ------------------------------------------------------------------
@needs_stores
def test_run_wait_resume_complete(app: Path) -> None:
    done = ledgerflow(app, "run", "app.py", "--input", "cats", "--run-id", "r1")
    assert done.returncode == 3, done.stderr
    out = fields(done.stdout)
    assert out["run"] == ["r1"]
    assert out["status"] == ["awaiting_input"]
    (waiting,) = out["waiting"]
    request_id = waiting.split(" ", 1)[0]
    assert f"ledgerflow resume app.py r1 --respond '{request_id}=\"...\"'" in waiting
    assert (app / ".ledgerflow" / "runs.db").exists()

    done = ledgerflow(app, "resume", "app.py", "r1", "--respond", f'{request_id}="yes"')
    assert done.returncode == 0, done.stderr
    out = fields(done.stdout)
    assert out["status"] == ["completed"]
    assert out["output"] == ["yes: publish 'a post about cats'?"]

    again = ledgerflow(app, "resume", "app.py", "r1")  # completed: the recorded result
    assert again.returncode == 0, again.stderr
    assert fields(again.stdout)["output"] == ["yes: publish 'a post about cats'?"]

    runs = ledgerflow(app, "runs", "--json")
    assert runs.returncode == 0, runs.stderr
    (row,) = [json.loads(line) for line in runs.stdout.splitlines()]
    assert (row["run_id"], row["workflow"], row["status"]) == ("r1", "publish", "completed")
    table = ledgerflow(app, "runs")
    assert table.stdout.splitlines()[0].split() == ["RUN_ID", "WORKFLOW", "STATUS", "UPDATED_AT"]

    checkpoints = ledgerflow(app, "checkpoints", "r1", "--json")
    assert checkpoints.returncode == 0, checkpoints.stderr
    rows = [json.loads(line) for line in checkpoints.stdout.splitlines()]
    assert [r["superstep"] for r in rows] == sorted(r["superstep"] for r in rows)
    assert rows[0]["superstep"] == "0"
    assert rows[0]["parent_id"] == "-"

    viz = ledgerflow(app, "viz", "app.py", "-o", "run.mmd", "--run", "r1")
    assert viz.returncode == 0, viz.stderr
    assert "title:" in (app / "run.mmd").read_text()


@needs_stores
def test_json_event_stream(app: Path) -> None:
    done = ledgerflow(app, "run", "app.py", "--input", "cats", "--json", "--store", "memory://")
    assert done.returncode == 3, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "RunStarted"
    assert events[0]["workflow_name"] == "publish"
    assert events[-1] == {**events[-1], "event": "RunFinished", "status": "awaiting_input"}
    (request,) = [e for e in events if e["event"] == "RequestInfo"]
    assert request["response_type"] == "str"
    assert request["payload"] == "publish 'a post about cats'?"
    assert all("run_id" in e and "superstep" in e for e in events)


@needs_stores
def test_failed_run(app: Path) -> None:
    done = ledgerflow(app, "run", "app.py", "--input", "boom")
    line = one_error_line(done, 1, "failed", "cannot write about boom")
    assert line.startswith("ledgerflow: run ")
    assert fields(done.stdout)["status"] == ["failed"]
    run_id = fields(done.stdout)["run"][0]
    viz = ledgerflow(app, "viz", "app.py", "-o", "failed.mmd", "--run", run_id)
    assert viz.returncode == 0, viz.stderr
    assert f"run {run_id} · failed" in (app / "failed.mmd").read_text()


@needs_stores
def test_json_input_and_attr_functions(app: Path) -> None:
    for attr in ("build", "build_async"):
        done = ledgerflow(app, "run", f"counter.py:{attr}", "--input", "21")
        assert done.returncode == 0, done.stderr
        assert fields(done.stdout)["output"] == ["42"]
    (app / "n.json").write_text("5")
    done = ledgerflow(app, "run", "counter.py:build", "--input", "@n.json")
    assert fields(done.stdout)["output"] == ["10"]


@needs_stores
def test_resume_errors(app: Path) -> None:
    one_error_line(ledgerflow(app, "resume", "app.py", "nope"), 2, "nope")
    done = ledgerflow(app, "run", "app.py", "--input", "cats", "--run-id", "r2")
    request_id = fields(done.stdout)["waiting"][0].split(" ", 1)[0]
    one_error_line(ledgerflow(app, "resume", "app.py", "r2", "--respond", "x:1:1=1"), 2, "x:1:1")
    wrong = ledgerflow(app, "resume", "app.py", "r2", "--respond", f"{request_id}=5")
    one_error_line(wrong, 2, "must be str")
    still = ledgerflow(app, "resume", "app.py", "r2", "--respond", f'{request_id}="ok"')
    assert still.returncode == 0, still.stderr  # the bad answer left the run waiting
    one_error_line(ledgerflow(app, "checkpoints", "missing-run"), 2, "unknown run 'missing-run'")
    one_error_line(ledgerflow(app, "viz", "app.py", "-o", "x.mmd", "--run", "missing"), 2)


@needs_stores
def test_interactive_prompt_on_a_terminal(app: Path) -> None:
    """On a TTY, ``run`` asks for the answer itself and finishes the run."""
    require_service(LEDGERFLOW.exists(), f"console script not installed at {LEDGERFLOW}")
    primary, secondary = os.openpty()
    proc = subprocess.Popen(
        [str(LEDGERFLOW), "run", "app.py", "--input", "cats"],
        cwd=app,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"(JSON, or plain text" in seen:
                os.write(primary, b"yes\n")
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(primary)
    text = seen.decode(errors="replace")
    assert answered, text
    assert code == 0, text
    assert "output: yes: publish 'a post about cats'?" in text


# -- no store needed ------------------------------------------------------------------------------
def test_viz_formats(app: Path) -> None:
    for name in ("g.mmd", "g.dot", "g.gv"):
        done = ledgerflow(app, "viz", "app.py", "-o", name, "--direction", "LR")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == name
    assert (app / "g.mmd").read_text().splitlines()[3] == "flowchart LR"
    assert "rankdir=LR" in (app / "g.dot").read_text()
    require_service(shutil.which("dot") is not None, "Graphviz `dot` is not installed")
    done = ledgerflow(app, "viz", "counter.py:build", "-o", "g.svg")
    assert done.returncode == 0, done.stderr
    assert (app / "g.svg").read_text().startswith("<?xml")


def test_viz_without_dot(app: Path) -> None:
    env_path = os.environ.get("PATH", "")
    try:
        os.environ["PATH"] = str(Path(sys.executable).parent)  # the venv, without dot
        done = ledgerflow(app, "viz", "app.py", "-o", "g.png")
    finally:
        os.environ["PATH"] = env_path
    one_error_line(done, 1, "apt-get install graphviz")


def test_bad_targets(app: Path) -> None:
    (app / "empty.py").write_text("def make():\n    return 1\n")
    (app / "two.py").write_text(APP + "\nother = wf.with_store(None)\n")
    (app / "broken.py").write_text("import not_a_module_anywhere\n")
    one_error_line(ledgerflow(app, "viz", "missing.py", "-o", "x.mmd"), 2, "no such file")
    empty = ledgerflow(app, "viz", "empty.py", "-o", "x.mmd")
    one_error_line(empty, 2, "defines no Workflow", "make")
    one_error_line(ledgerflow(app, "viz", "two.py", "-o", "x.mmd"), 2, "several", "wf, other")
    one_error_line(ledgerflow(app, "viz", "broken.py", "-o", "x.mmd"), 2, "ModuleNotFoundError")
    one_error_line(ledgerflow(app, "viz", "counter.py:nope", "-o", "x.mmd"), 2, "no attribute")
    one_error_line(
        ledgerflow(app, "viz", "counter.py:not_a_workflow", "-o", "x.mmd"), 2, "returned a int"
    )
    one_error_line(ledgerflow(app, "viz", "counter.py:needs_args", "-o", "x.mmd"), 2, "arguments")
    one_error_line(ledgerflow(app, "viz", "app.py", "-o", "x.jpg"), 2, "unknown suffix")
    assert not list(app.glob("x.*"))


def test_bad_arguments(app: Path) -> None:
    one_error_line(ledgerflow(app, "run", "app.py"), 2, "--input")
    one_error_line(ledgerflow(app, "run", "app.py", "--input", "@nope.json"), 2, "nope.json")
    (app / "bad.json").write_text("{nope")
    one_error_line(ledgerflow(app, "run", "app.py", "--input", "@bad.json"), 2, "not valid JSON")
    one_error_line(ledgerflow(app, "resume", "app.py", "r", "--respond", "novalue"), 2, "ID=JSON")
    one_error_line(
        ledgerflow(app, "resume", "app.py", "r", "--respond", "id=not json"), 2, "not valid JSON"
    )
    one_error_line(ledgerflow(app, "runs", "--store", "bogus://x"), 2, "--store", "bogus")
    done = ledgerflow(app, "frobnicate")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "invalid choice" in done.stderr


def test_empty_store_listing(app: Path) -> None:
    done = ledgerflow(app, "runs")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "no runs" in done.stderr


# -- helpers, in process -------------------------------------------------------------------------
def test_split_target(tmp_path: Path) -> None:
    assert split_target("app.py") == (Path("app.py"), None)
    assert split_target("dir/app.py:build") == (Path("dir/app.py"), "build")
    assert split_target("app.py:mod.attr") == (Path("app.py"), "mod.attr")
    assert split_target("C:\\x\\app.py") == (Path("C:\\x\\app.py"), None)
    odd = tmp_path / "weird:name.py"
    odd.write_text("")
    assert split_target(str(odd)) == (odd, None)


def test_parse_responses() -> None:
    assert parse_responses(['a:1:1="yes"', "b=5", 'c={"k": [1]}', 'd="x=1"']) == {
        "a:1:1": "yes",
        "b": 5,
        "c": {"k": [1]},
        "d": "x=1",
    }


def test_jsonable() -> None:
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int
        tags: tuple[str, ...]

    value: Any = {"p": Point(1, ("a",)), "t": int, "nan": float("nan"), 3: {1, 2} - {2}}
    assert jsonable(value) == {"p": {"x": 1, "tags": ["a"]}, "t": "int", "nan": "nan", "3": [1]}
    assert re.fullmatch(r"<object object at 0x[0-9a-f]+>", jsonable(object()))
