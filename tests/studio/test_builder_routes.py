"""The team builder's route without a browser: a draft saved as a spec, bad drafts refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient

from workflow import SQLiteCheckpointStore
from workflow._service import create_app
from workflow._service._studio import studio_routes
from workflow.cli._load import load_spec_file
from workflow.cli._studio import _teams, static_dir

from .apps import judge


def draft(**changes: Any) -> dict[str, Any]:
    agents = [
        {
            "name": "writer",
            "description": "Drafts.",
            "instructions": "Write it.",
            "client": {"type": "scripted", "replies": ["a draft"]},
        },
        {
            "name": "critic",
            "description": "Checks.",
            "instructions": "Check it.",
            "client": {"type": "scripted", "replies": ["looks good"]},
        },
    ]
    base = {"name": "duo", "kind": "group_chat", "agents": agents, "options": {"max_rounds": 2}}
    return {**base, **changes}


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return tmp_path / "teams"


@pytest.fixture
def client(tmp_path: Path, saved: Path) -> Iterator[Any]:
    saved.mkdir()
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    routes = studio_routes(static_dir(), teams=_teams(saved, {}))
    app = create_app([judge], store, adopt_interval=None, route_factories=[routes])
    with TestClient(app) as test_client:
        yield test_client


def test_a_saved_draft_is_a_spec_file_and_a_served_workflow(client: Any, saved: Path) -> None:
    answer = client.post("/api/studio/teams", json=draft())
    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "duo"
    wf = load_spec_file(saved / "duo.yaml")
    assert wf.name == "duo"
    assert "duo" in [w["name"] for w in client.get("/api/workflows").json()]
    assert client.get("/api/workflows/duo/graph").json()["start"]
    again = client.post("/api/studio/teams", json=draft())
    assert again.status_code == 422
    assert again.json()["error"]["problems"][0]["path"] == "name"


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"name": "../evil"}, "name"),
        ({"kind": "swarm"}, "kind"),
        ({"agents": []}, "agents"),
        ({"agents": [draft()["agents"][0], draft()["agents"][0]]}, "agents[1].name"),
        (
            {"agents": [{**draft()["agents"][0], "client": {"type": "bogus"}}]},
            "agents.writer.client",
        ),
        (
            {
                "agents": [
                    {
                        **draft()["agents"][0],
                        "client": {"type": "openai", "model": "m", "api_key_env": "sk-123 key"},
                    }
                ]
            },
            "agents.writer.client.api_key_env",
        ),
        ({"options": {"max_rounds": 0}}, "max_rounds"),
    ],
)
def test_a_bad_draft_names_its_field_and_writes_nothing(
    client: Any, saved: Path, changes: dict[str, Any], path: str
) -> None:
    answer = client.post("/api/studio/teams", json=draft(**changes))
    assert answer.status_code == 422, answer.text
    assert path in [p["path"] for p in answer.json()["error"]["problems"]]
    assert list(saved.iterdir()) == []
    assert "sk-123" not in answer.text  # a key typed in the wrong field is never echoed
