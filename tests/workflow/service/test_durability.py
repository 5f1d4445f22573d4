"""Runs outlive the server: kill -9 and restart, graceful restart, two servers on one Postgres."""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

from tests.workflow.service.conftest import TERMINAL, read_events, wait_status


def _check_replay(events: list[tuple[int, dict[str, Any]]], run_id: str) -> list[dict[str, Any]]:
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    assert all(e["run_id"] == run_id for _, e in events)
    assert events[-1][1]["type"] == "RunFinished"
    assert events[-1][1]["status"] == "completed"
    return [e for _, e in events if e["type"] == "RunStarted"]


def test_kill_9_mid_run_then_restart_resumes_and_the_stream_replays(
    make_server: Any, tmp_path: Any
) -> None:
    store = f"sqlite:///{tmp_path}/runs.db"
    first = make_server(store, tick=0.1)
    with first.client() as c:
        run_id = c.post("/api/workflows/slow/runs", json={"input": 25}).json()["run_id"]
        seen = read_events(
            c, run_id, stop=lambda e: e["type"] == "CheckpointSaved" and e["superstep"] >= 5
        )
    first.kill()
    second = make_server(store, tick=0.01)
    with second.client() as c:
        run = wait_status(c, run_id, TERMINAL)
        assert run["status"] == "completed"
        assert run["outputs"] == [25]
        events = read_events(c, run_id)
    starts = _check_replay(events, run_id)
    assert [s["resumed"] for s in starts] == [False, True]
    # what the killed server logged is replayed as it was streamed (a prefix of it: the last
    # few milliseconds before the kill may be lost), then the resumed execution follows
    resumed_at = next(i for i, (_, e) in enumerate(events) if e["type"] == "RunStarted" and i)
    assert events[:resumed_at] == seen[:resumed_at]
    assert resumed_at >= 5  # (how much depends on the machine's load at the kill)
    supersteps = [e["superstep"] for _, e in events if e["type"] == "SuperstepCompleted"]
    assert supersteps[-1] == 26
    assert len(supersteps) - len(set(supersteps)) <= 2  # at most the step in flight ran again


def test_a_graceful_restart_resumes_runs_in_progress(make_server: Any, tmp_path: Any) -> None:
    store = f"sqlite:///{tmp_path}/runs.db"
    first = make_server(store, tick=0.1)
    with first.client() as c:
        run_id = c.post("/api/workflows/slow/runs", json={"input": 15}).json()["run_id"]
        read_events(c, run_id, stop=lambda e: e["type"] == "SuperstepCompleted")
    first.stop()  # SIGTERM: the run is stopped, not cancelled for good
    second = make_server(store, tick=0.01)
    with second.client() as c:
        assert run_id in {r["run_id"] for r in c.get("/api/runs").json()}
        run = wait_status(c, run_id, TERMINAL)
        assert run["status"] == "completed"
        assert run["outputs"] == [15]
        starts = _check_replay(read_events(c, run_id), run_id)
        assert [s["resumed"] for s in starts] == [False, True]


def test_two_servers_on_one_postgres_never_execute_a_run_at_once(
    make_server: Any, postgres_dsn: str
) -> None:
    sep = "&" if "?" in postgres_dsn else "?"
    store = f"{postgres_dsn}{sep}schema=svc_{uuid.uuid4().hex[:8]}"
    a = make_server(store, tick=0.05)
    b = make_server(store, tick=0.05)
    with a.client() as ca, b.client() as cb:
        ids = [
            ca.post("/api/workflows/slow/runs", json={"input": 80}).json()["run_id"]
            for _ in range(4)
        ]
        # b sees them (one store) and follows a's stream, but cannot execute them: a holds them
        for run_id in ids:
            assert ca.get(f"/api/runs/{run_id}").json()["status"] == "running"
            wait_status(cb, run_id, {"running"})
        read_events(cb, ids[-1], stop=lambda e: e["type"] == "SuperstepCompleted")
        time.sleep(1.2)  # b looks for orphaned runs every 0.5 s
        a.kill()
        for run_id in ids:
            run = wait_status(cb, run_id, TERMINAL)
            assert run["status"] == "completed"
            assert run["outputs"] == [80]
            starts = _check_replay(read_events(cb, run_id), run_id)
            # started once by a, resumed once by b after the kill: never by both
            assert [s["resumed"] for s in starts] == [False, True]
            history = cb.get(f"/api/runs/{run_id}/checkpoints").json()
            for parent, child in itertools.pairwise(history):
                assert child["parent_id"] == parent["checkpoint_id"]  # one line, no branches
