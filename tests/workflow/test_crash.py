"""Crash safety: SIGKILLed worker processes, resumed in new processes, on SQLite and files.

Every process here is a real child (``crash_worker.py``) killed with SIGKILL, so no cleanup,
``finally`` or ``atexit`` of the engine runs: what survives is only what the store committed.
"""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from tests.workflow import crash_worker as cw
from workflow import store_from_url

STORES = ("sqlite", "file")
KILLS_PER_STORE = 12


def wait_for(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes] | None = None,
    within: float = 30.0,
) -> None:
    """Poll ``condition`` (another process changes what it reads: nothing to wait on) until
    it holds; fail naming ``what`` if ``proc`` exits first or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while not condition():
        if proc is not None:
            assert proc.poll() is None, f"worker exited while waiting for {what}: " + str(
                cw.outcome(proc)
            )
        assert time.monotonic() < deadline, f"{what} did not happen within {within:.0f} s"
        time.sleep(0.02)


def store_url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return f"file://{tmp_path / 'store'}"


@pytest.mark.timeout(120)
def test_sigkill_at_random_points_then_resume_matches_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    """40 supersteps (13 rounds of head -> 3 workers -> fan-in join, then done), killed at
    seeded random moments and resumed in a new process each time, on SQLite and on files.

    Each executor appends ``"<executor> <superstep> <attempt>"`` to a log and fsyncs it before
    returning, and records that attempt number in the run state under its key (so the attempt
    travels inside the very result the engine commits: checkpoint or pending write).

    The invariant checked, for every (executor, superstep) key:

    1. The log's lines for the key are attempts 1..n, and the result the run finally holds is
       attempt n: the committed result is the last execution; the n-1 before it were lost to a
       kill *before* their result was recorded (a kill between the fsync of the log line and
       the commit is the only way to get a repeat).
    2. Whenever a kill found a result of the key committed (in the latest checkpoint or in a
       pending write after it), that same attempt is the final one: nothing whose result had
       been committed ever ran again, and no committed result was lost.
    3. Every key ran (66 of them), and the outputs equal those of an uninterrupted run.
    """
    rng = random.Random(20240611)
    summaries = {}
    for kind in STORES:
        base = tmp_path / kind
        base.mkdir()
        summaries[kind] = cw.soak(store_url(kind, base), base, rng, KILLS_PER_STORE)
    assert sum(s["kills"] for s in summaries.values()) >= 20
    # kills land mid fan-out (some workers recorded, others not) in a good share of cases
    assert sum(s["with_pending"] for s in summaries.values()) >= 1, summaries


def test_sigkill_with_async_durability_still_never_reruns_a_committed_result(
    tmp_path: Path,
) -> None:
    """Async durability may lose the checkpoint in flight (so more re-runs), never more:
    pending writes are recorded only once their checkpoint is, so the invariant holds."""
    summary = cw.soak(
        store_url("sqlite", tmp_path), tmp_path, random.Random(7), 6, "--durability", "async"
    )
    assert summary["kills"] == 6


@pytest.mark.parametrize("kind", STORES)
def test_sigkill_mid_superstep_reruns_only_the_unfinished_sibling(
    tmp_path: Path, kind: str
) -> None:
    """``fast`` finished and is recorded; ``gate`` is still waiting when the process dies."""
    url, log, go = store_url(kind, tmp_path), str(tmp_path / "log"), str(tmp_path / "go")
    proc = cw.spawn("siblings", url, "s1", "--log", log, "--go", go)
    try:
        wait_for(
            lambda: "fast" in anyio.run(pending_writes, url, "s1"),
            "the pending write of fast's result",
            proc,
        )
        assert {e for e, _, _ in cw.read_log(log)} == {"fast", "gate"}
    finally:
        cw.kill(proc)
    Path(go).touch()
    report = cw.run_worker("siblings", url, "s1", "--log", log, "--go", go)
    assert report["result"]["status"] == "completed"
    assert report["result"]["outputs"] == ["fast:7", "gate:7"]
    assert cw.read_log(log) == [("fast", 2, 1), ("gate", 2, 1), ("gate", 2, 2)]


async def pending_writes(url: str, run_id: str) -> set[str]:
    store = store_from_url(url)
    try:
        latest = await store.latest(run_id)
        return set(await store.get_writes(latest.id)) if latest is not None else set()
    finally:
        await store.aclose()


@pytest.mark.parametrize("kind", STORES)
def test_two_processes_resuming_one_run_exactly_one_proceeds(tmp_path: Path, kind: str) -> None:
    url, log, go = store_url(kind, tmp_path), str(tmp_path / "log"), str(tmp_path / "go")
    first = cw.spawn("siblings", url, "c1", "--log", log, "--go", go)
    try:  # leave the run crashed mid-superstep, so both resumes have work to do
        wait_for(
            lambda: len(cw.read_log(log)) >= 2 and "fast" in anyio.run(pending_writes, url, "c1"),
            "fast and gate to start and fast's result to be recorded",
            first,
        )
    finally:
        cw.kill(first)
    a = cw.spawn("siblings", url, "c1", "--log", log, "--go", go)
    try:
        # a holds the run once its gate is waiting for the file
        wait_for(lambda: len(cw.read_log(log)) >= 3, "the resumed gate to start", a)
        b = cw.run_worker("siblings", url, "c1", "--log", log, "--go", go)
        assert "CheckpointError" in b["error"]["kinds"], b["error"]
        assert "'c1' is being executed by another process" in b["error"]["message"]
        assert f"pid {a.pid}" in b["error"]["message"]
        Path(go).touch()
        done = cw.outcome(a)
    finally:
        cw.kill(a)
    assert done["result"]["status"] == "completed"
    assert done["result"]["outputs"] == ["fast:7", "gate:7"]
    # the loser ran nothing: gate ran once before the crash and once in the winner
    assert cw.read_log(log) == [("fast", 2, 1), ("gate", 2, 1), ("gate", 2, 2)]
    again = cw.run_worker("siblings", url, "c1", "--log", log, "--go", go)
    assert again["result"]["status"] == "completed"
    assert again["result"]["outputs"] == ["fast:7", "gate:7"]
    assert len(cw.read_log(log)) == 3


@pytest.mark.parametrize("kind", STORES)
def test_requests_survive_restarts_and_are_answered_from_new_processes(
    tmp_path: Path, kind: str
) -> None:
    url = store_url(kind, tmp_path)
    first = cw.run_worker("human", url, "h1")["result"]
    assert first["status"] == "awaiting_input"
    (approve, _, p1), (comment, _, p2) = first["pending"]
    assert p1 == {"Question": {"text": "approve deploy?"}}
    assert p2 == {"Question": {"text": "comment on deploy?"}}
    # a wrong type is refused before anything is stored; the run stays resumable
    wrong = cw.run_worker("human", url, "h1", "--respond", f'{approve}="yes please"')
    assert wrong["error"]["type"] == "TypeError"
    assert "must be bool" in wrong["error"]["message"]
    # answering one leaves the other pending, across processes
    second = cw.run_worker("human", url, "h1", "--respond", f"{approve}=true")["result"]
    assert second["status"] == "awaiting_input"
    assert [p[0] for p in second["pending"]] == [comment]
    assert second["outputs"] == ["APPROVE DEPLOY? -> YES"]
    third = cw.run_worker("human", url, "h1", "--respond", f'{comment}="ship it"')["result"]
    assert third["status"] == "completed"
    assert third["outputs"] == ["APPROVE DEPLOY? -> YES", "COMMENT ON DEPLOY? -> SHIP IT"]
