"""A run's trace: the engine's OpenTelemetry spans, recorded per run by the studio."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient

from builders import load_spec
from workflow import SQLiteCheckpointStore
from workflow._service import create_app
from workflow._service._studio import studio_routes
from workflow.cli._studio import static_dir


def reply(text: str, tokens_in: int, tokens_out: int) -> dict[str, Any]:
    return {"text": text, "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out}}


SPEC = {
    "kind": "sequential",
    "name": "pair",
    "clients": {
        "a": {"type": "scripted", "replies": [reply("first", 7, 3)]},
        "b": {"type": "scripted", "replies": [reply("second", 11, 5)]},
    },
    "agents": {"a": {"client": "a"}, "b": {"client": "b"}},
}


CHAT = {
    "kind": "group_chat",
    "name": "chat",
    "clients": {
        "a": {"type": "scripted", "replies": ["one"]},
        "b": {"type": "scripted", "replies": ["two"]},
        "pick": {"type": "scripted", "replies": [reply("a", 20, 1), reply("b", 30, 1)]},
    },
    "agents": {"a": {"client": "a"}, "b": {"client": "b"}},
    "selector": {"client": "pick"},
    "max_rounds": 2,
}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    routes = studio_routes(static_dir())
    served = [load_spec(SPEC), load_spec(CHAT)]
    app = create_app(served, store, adopt_interval=None, route_factories=[routes])
    with TestClient(app) as test_client:
        yield test_client


def finished(client: Any, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        record: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        if record["status"] not in ("running", "pending"):
            return record
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def test_a_runs_trace_has_its_spans_durations_and_tokens(client: Any) -> None:
    run_id = client.post("/api/workflows/pair/runs", json={"input": "go"}).json()["run_id"]
    assert finished(client, run_id)["status"] == "completed"
    trace = client.get(f"/api/runs/{run_id}/trace").json()
    assert trace["recorded"]
    assert trace["complete"]
    names = [s["name"] for s in trace["spans"]]
    assert names[0] == "workflow.run"
    assert {"workflow.superstep", "executor.process", "chat scripted"} <= set(names)
    calls = [s for s in trace["spans"] if s["name"] == "chat scripted"]
    assert sorted(s["attributes"]["gen_ai.usage.input_tokens"] for s in calls) == [7, 11]
    assert (trace["model_calls"], trace["input_tokens"], trace["output_tokens"]) == (2, 18, 8)
    ids = {s["span_id"] for s in trace["spans"]}
    assert all(s["parent_id"] in ids for s in trace["spans"][1:])  # one tree under the run
    assert all(s["duration_ms"] >= 0 for s in trace["spans"])
    run = trace["spans"][0]
    assert all(run["start_ns"] <= s["start_ns"] <= s["end_ns"] <= run["end_ns"] for s in calls)
    other = client.post("/api/workflows/pair/runs", json={"input": "again"}).json()["run_id"]
    finished(client, other)
    assert {
        s["span_id"] for s in client.get(f"/api/runs/{other}/trace").json()["spans"]
    } & ids == set()


def test_an_unknown_run_has_no_trace(client: Any) -> None:
    answer = client.get("/api/runs/nope/trace")
    assert answer.status_code == 404


def test_a_group_chats_model_speaker_selection_is_traced_too(client: Any) -> None:
    run_id = client.post("/api/workflows/chat/runs", json={"input": "go"}).json()["run_id"]
    assert finished(client, run_id)["status"] == "completed"
    spans = client.get(f"/api/runs/{run_id}/trace").json()["spans"]
    by_id = {s["span_id"]: s for s in spans}
    picks = [
        s
        for s in spans
        if s["name"] == "chat scripted"
        and by_id[s["parent_id"]]["attributes"].get("ledgerflow.executor.id") == "manager"
    ]
    assert [s["attributes"]["gen_ai.usage.input_tokens"] for s in picks] == [20, 30]
