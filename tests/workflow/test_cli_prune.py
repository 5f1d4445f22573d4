"""``ledgerflow prune``: in process through ``main`` (fast), and once as the console script.

Ages are real: a run is made old by moving its ``updated_us`` back in the SQLite file, as if
it had last been touched weeks ago.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from workflow._checkpoint import Checkpoint
from workflow._service._eventlog import SQLiteEventLog
from workflow._stores import SQLiteCheckpointStore
from workflow.cli import main
from workflow.cli._prune import parse_age

LEDGERFLOW = Path(sys.executable).parent / "ledgerflow"
BIG = "x" * 20_000


def ckpt(run: str, n: int) -> Checkpoint:
    return Checkpoint(
        id=f"{run}.{n}",
        run_id=run,
        superstep=n,
        parent_id=f"{run}.{n - 1}" if n else None,
        workflow_name="wf",
        graph_hash="g",
        status="running",
        data={"n": n, "own": run * 3000, "shared": BIG},
    )


def make_store(path: Path, runs: dict[str, tuple[int, str, int]]) -> None:
    """``runs``: run id -> (checkpoints, status, age in days)."""

    async def fill() -> None:
        async with SQLiteCheckpointStore(path) as store:
            for run, (count, status, _) in runs.items():
                for n in range(count):
                    await store.save(ckpt(run, n))
                await store.set_status(run, "wf", status)

    anyio.run(fill)
    now_us = int(dt.datetime.now(dt.UTC).timestamp() * 1e6)
    with sqlite3.connect(path) as conn:
        for run, (_, _, days) in runs.items():
            back = int(days * 86_400 * 1e6)
            conn.execute("UPDATE runs SET updated_us = ? WHERE run_id = ?", (now_us - back, run))


def state(path: Path) -> dict[str, int]:
    """Run id -> how many checkpoints it has left."""
    with sqlite3.connect(path) as conn:
        runs = [r for (r,) in conn.execute("SELECT run_id FROM runs")]
        return {
            r: conn.execute("SELECT count(*) FROM checkpoints WHERE run_id = ?", (r,)).fetchone()[0]
            for r in runs
        }


def blobs(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT count(*) FROM blobs").fetchone()[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "runs.db"
    make_store(
        path,
        {
            "old-failed": (3, "failed", 40),
            "old-done": (3, "completed", 35),
            "recent": (4, "completed", 2),
            "new": (5, "awaiting_input", 0),
        },
    )
    return path


def prune(db: Path, *args: str) -> int:
    return main(["prune", "--store", f"sqlite:///{db}", *args])


def test_older_than_deletes_whole_old_runs_and_their_blobs(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert blobs(db) == 5  # BIG, and one "own" per run
    assert prune(db, "--older-than", "30d") == 0
    assert capsys.readouterr().out == "deleted 2 runs not updated for 30d\n"
    assert state(db) == {"recent": 4, "new": 5}
    assert blobs(db) == 3


def test_status_narrows_which_old_runs_go(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert prune(db, "--older-than", "1d", "--status", "failed, cancelled") == 0
    assert "deleted 1 runs (failed, cancelled) not updated for 1d" in capsys.readouterr().out
    assert state(db) == {"old-done": 3, "recent": 4, "new": 5}
    assert prune(db, "--older-than", "1d", "--status", "completed", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "runs_deleted": 2,
        "checkpoints_deleted": 0,
        "runs_trimmed": 0,
        "events_deleted": 0,
    }
    assert state(db) == {"new": 5}


def test_keep_last_trims_every_run_or_one(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert prune(db, "--run", "new", "--keep-last", "2") == 0
    assert capsys.readouterr().out == (
        "deleted 3 checkpoints of 1 runs, keeping the newest 2 of each\n"
    )
    assert state(db) == {"old-failed": 3, "old-done": 3, "recent": 4, "new": 2}
    assert prune(db, "--keep-last", "1", "--older-than", "30d", "--json") == 0
    assert json.loads(capsys.readouterr().out) == {
        "runs_deleted": 2,
        "checkpoints_deleted": 4,
        "runs_trimmed": 2,
        "events_deleted": 0,
    }
    assert state(db) == {"recent": 1, "new": 1}


def test_the_events_a_server_logged_go_with_their_runs(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = SQLiteEventLog(f"{db}.events")
    rows = [
        (run, seq, "{}") for run in ("old-failed", "old-done", "new", "starting") for seq in (1, 2)
    ]
    anyio.run(events.append, rows)
    anyio.run(events.aclose)
    assert prune(db, "--older-than", "30d", "--json") == 0
    assert json.loads(capsys.readouterr().out)["events_deleted"] == 4

    async def left() -> dict[str, int]:
        try:
            return {run: len(await events.read(run)) for run in ("old-failed", "new", "starting")}
        finally:
            await events.aclose()

    # "starting" has events but no checkpoint yet (a server just started it): kept
    assert anyio.run(left) == {"old-failed": 0, "new": 2, "starting": 2}


def test_no_event_log_is_created_by_pruning(db: Path) -> None:
    assert prune(db, "--older-than", "0s") == 0
    assert state(db) == {}
    assert not Path(f"{db}.events").exists()


def test_a_run_being_executed_is_left_alone(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def hold() -> tuple[int, int, int]:
        async with SQLiteCheckpointStore(db) as owner, owner.lock_run("old-failed"):
            return (
                await anyio.to_thread.run_sync(prune, db, "--older-than", "30d"),
                await anyio.to_thread.run_sync(prune, db, "--keep-last", "0"),
                await anyio.to_thread.run_sync(
                    prune, db, "--run", "old-failed", "--keep-last", "0"
                ),
            )

    assert anyio.run(hold) == (0, 0, 1)
    out, err = capsys.readouterr()
    assert "deleted 1 runs not updated for 30d" in out
    assert "deleted 9 checkpoints of 2 runs" in out
    assert "run 'old-failed' is being executed by another process" in err
    assert state(db) == {"old-failed": 3, "recent": 0, "new": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say what to prune: --older-than AGE, --keep-last N, or both"),
        (["--older-than", "30x"], "--older-than: cannot read '30x' as an age"),
        (["--older-than=-5d"], "--older-than: cannot read '-5d' as an age"),
        (["--older-than", "1d", "--status", "exploded"], "unknown run status 'exploded'"),
        (["--older-than", "1d", "--status", ","], "status is empty"),
        (["--keep-last", "-1"], "--keep-last must be 0 or more, got -1"),
        (["--run", "ghost", "--keep-last", "1"], "unknown run 'ghost'"),
        (["--run", "new"], "--run RUN_ID needs --keep-last N"),
        (["--run", "new", "--keep-last", "1", "--older-than", "1d"], "use one of them"),
        (["--status", "failed", "--keep-last", "1"], "give --older-than too"),
        (["--keep-last", "1", "--store", "redis://x"], "--store: unknown store URL scheme"),
    ],
)
def test_bad_input_is_a_usage_error_that_changes_nothing(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    before = state(db)
    assert prune(db, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("ledgerflow: error: ")
    assert message in err
    assert state(db) == before


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30d", dt.timedelta(days=30)),
        ("12h", dt.timedelta(hours=12)),
        ("90m", dt.timedelta(minutes=90)),
        ("1.5w", dt.timedelta(weeks=1.5)),
        ("0s", dt.timedelta(0)),
        (" 2D ", dt.timedelta(days=2)),
    ],
)
def test_ages(text: str, age: dt.timedelta) -> None:
    assert parse_age(text) == age


def test_the_console_script_prunes_the_default_store(tmp_path: Path) -> None:
    make_store(tmp_path / ".ledgerflow" / "runs.db", {"a": (3, "completed", 0)})
    done = subprocess.run(
        [str(LEDGERFLOW), "prune", "--keep-last", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == "deleted 2 checkpoints of 1 runs, keeping the newest 1 of each\n"
    assert state(tmp_path / ".ledgerflow" / "runs.db") == {"a": 1}


def test_vacuum_gives_the_freed_space_back_to_the_disk(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_store(db, {f"bulk{i}": (30, "completed", 60) for i in range(10)})
    grown = db.stat().st_size
    assert prune(db, "--older-than", "30d") == 0
    assert db.stat().st_size == grown  # SQLite keeps freed pages for reuse
    assert prune(db, "--keep-last", "1", "--vacuum") == 0
    out = capsys.readouterr().out
    assert out.endswith("ran VACUUM\n")
    assert db.stat().st_size < grown / 4
    assert state(db) == {"recent": 1, "new": 1}
    assert (
        not db.with_name("runs.db-wal").exists() or db.with_name("runs.db-wal").stat().st_size == 0
    )


def test_vacuum_on_a_file_store_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"file://{tmp_path}/files"
    assert main(["prune", "--store", url, "--older-than", "1d", "--vacuum", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vacuum"] is None
