"""The Studio's routes without a browser: the page's files, graphs, checkpoints, bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient

from workflow import SQLiteCheckpointStore
from workflow._service import create_app
from workflow._service._studio import studio_routes
from workflow.cli._studio import static_dir

from .apps import ask, judge


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    app = create_app(
        [judge, ask], store, adopt_interval=None, route_factories=[studio_routes(static_dir())]
    )
    with TestClient(app) as test_client:
        yield test_client


def test_the_page_and_its_modules_are_served_with_a_same_origin_policy(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert 'src="/studio/app.js"' in page.text
    for name in ("app.js", "api.js", "run.js", "graph.js", "dom.js", "style.css"):
        assert client.get(f"/studio/{name}").status_code == 200, name
    for bad in ("nope.js", "..%2Fapp.js", "__init__.py"):
        response = client.get(f"/studio/{bad}")
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"


def test_graph_json_lists_executors_and_edges_in_order(client: Any) -> None:
    graph = client.get("/api/workflows/judge/graph").json()
    assert graph["start"] == "setup"
    assert [n["id"] for n in graph["nodes"]] == ["setup", "decide"]
    assert graph["edges"] == [{"source": "setup", "target": "decide"}]
    missing = client.get("/api/workflows/nope/graph")
    assert missing.status_code == 404
    assert "'nope'" in missing.json()["error"]["message"]


def test_a_checkpoint_shows_state_and_waiting_messages(client: Any) -> None:
    run_id = client.post("/api/workflows/judge/runs", json={"input": 5}).json()["run_id"]
    for _ in range(200):
        if client.get(f"/api/runs/{run_id}").json()["status"] == "completed":
            break
        time.sleep(0.05)
    checkpoints = client.get(f"/api/runs/{run_id}/checkpoints").json()
    after_setup = next(c for c in checkpoints if c["superstep"] == 1)
    view = client.get(f"/api/runs/{run_id}/checkpoints/{after_setup['checkpoint_id']}").json()
    assert view["state"] == {"threshold": 10}
    assert view["messages"] == [{"source": "setup", "target": "decide", "data": 5}]
    unknown = client.get(f"/api/runs/{run_id}/checkpoints/{run_id}@999")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "unknown_checkpoint"
    other = client.post("/api/workflows/ask/runs", json={"input": "Ada"}).json()["run_id"]
    foreign = client.get(f"/api/runs/{other}/checkpoints/{after_setup['checkpoint_id']}")
    assert foreign.status_code == 404  # a checkpoint of another run is not this run's
