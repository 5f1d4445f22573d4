"""The builder's drafts without a browser: every team kind, edges, tools, live validation,
round trips through the spec file, and the folder watch (an edit on disk is served)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from starlette.testclient import TestClient

from workflow import SQLiteCheckpointStore
from workflow._service import create_app
from workflow._service._studio import studio_routes
from workflow._service._studio_teams import draft_to_spec, spec_to_draft
from workflow.cli._studio import _teams, load_tools, static_dir

TOOLS = '''
from executors import tool


@tool(approval_mode="always_require")
def transfer(to: str, amount: int) -> str:
    """Send money.

    Args:
        to: who.
        amount: euros.
    """
    return f"sent {amount} to {to}"


def lookup(key: str) -> str:
    """Look a key up."""
    return key


def unhappy(reply: object) -> bool:
    """True while the critic has not approved."""
    return "approved" not in str(reply).lower()
'''


def agent(name: str, *replies: str, tools: list[str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"The {name}.",
        "instructions": "Do it.",
        "client": {"type": "scripted", "replies": list(replies) or ["ok"]},
        "tools": tools or [],
    }


def team(kind: str, **more: Any) -> dict[str, Any]:
    return {"name": f"t_{kind}", "kind": kind, "agents": [agent("a"), agent("b")], **more}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "teams"
    path.mkdir()
    (path / "tools.py").write_text(TOOLS)
    return path


@pytest.fixture
def client(tmp_path: Path, folder: Path) -> Iterator[Any]:
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    teams = _teams(folder, load_tools([str(folder / "tools.py")]))
    app = create_app(
        [], store, adopt_interval=None, route_factories=[studio_routes(static_dir(), teams=teams)]
    )
    with TestClient(app) as test_client:
        yield test_client


def paths(answer: Any) -> list[str]:
    return [p["path"] for p in answer.json()["problems"]]


@pytest.mark.parametrize(
    "draft",
    [
        team("group_chat", options={"max_rounds": 2, "stop_text": "DONE"}),
        team("sequential"),
        team("concurrent"),
        {
            **team("concurrent", options={"aggregator": "c"}),
            "agents": [agent("a"), agent("b"), agent("c")],
        },
        team("concurrent", options={"aggregator": "lookup"}),
        team("handoff", edges=[{"from": "a", "to": "b"}], options={"stop_text": "BYE"}),
        team("graph", edges=[{"from": "a", "to": "b"}]),
        team(
            "graph",
            people=[{"name": "customer"}],
            edges=[{"from": "a", "to": "b"}, {"from": "b", "to": "customer"}],
        ),
        team(
            "handoff",
            people=[{"name": "customer"}],
            edges=[{"from": "a", "to": "b"}, {"from": "b", "to": "customer"}],
        ),
        team("group_chat", people=[{"name": "customer"}], options={"max_rounds": 3}),
        team(
            "group_chat",
            selector={"client": {"type": "scripted", "replies": ["a", "b"]}},
            options={"max_rounds": 2},
        ),
        team(
            "magentic",
            manager={"client": {"type": "scripted", "replies": ["{}"]}},
            options={"plan_review": True, "max_round_count": 3},
        ),
    ],
    ids=lambda d: d["kind"],
)
def test_every_kind_validates_with_a_diagram_and_saves(
    client: Any, folder: Path, draft: Any
) -> None:
    answer = client.post("/api/studio/validate", json=draft)
    assert answer.status_code == 200
    body = answer.json()
    assert body["ok"], body
    assert f"kind: {draft['kind']}" in body["spec"]
    assert body["diagram"] is None or "<svg" in body["diagram"]
    saved = client.post("/api/studio/teams", json=draft)
    assert saved.status_code == 201, saved.text
    back = client.get(f"/api/studio/teams/{draft['name']}").json()
    assert back["editable"], back["reason"]
    assert back["draft"]["kind"] == draft["kind"]
    assert [a["name"] for a in back["draft"]["agents"]] == [a["name"] for a in draft["agents"]]
    assert back["draft"]["options"] == {**draft.get("options", {})}
    assert back["draft"]["edges"] == draft.get("edges", [])
    assert back["draft"]["people"] == draft.get("people", [])
    assert back["draft"].get("selector") == draft.get("selector")
    imports = {name: f"tools:{name}" for name in ("lookup", "transfer", "unhappy")}
    assert draft_to_spec(back["draft"], imports) == draft_to_spec(draft, imports)


@pytest.mark.parametrize(
    ("draft", "path", "words"),
    [
        (team("graph"), "agents.b", "not reachable from start 'a'"),
        (team("graph", edges=[{"from": "a", "to": "c"}]), "edges[0].to", "'c' is not a member"),
        (team("graph", edges=[{"from": "a", "to": "a"}]), "edges[0]", "itself"),
        (
            team("graph", edges=[{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]),
            "edges",
            "loop",
        ),
        (team("sequential", edges=[{"from": "a", "to": "b"}]), "edges[0]", "no edges"),
        (
            team("graph", edges=[{"from": "a", "to": "b", "when": "nope"}]),
            "edges[0].when",
            "'nope'",
        ),
        (
            team("handoff", edges=[{"from": "a", "to": "b", "when": "unhappy"}]),
            "edges[0].when",
            "only a graph",
        ),
        (team("magentic"), "manager.client", "manager"),
        (team("group_chat", selector={"client": {"type": "gpt"}}), "selector.client", ""),
        (team("group_chat", selector={}), "selector.client", "needs a model client"),
        (team("graph", people=[{"name": "a"}]), "people[0].name", "two members"),
        (team("graph", people=[{"name": "p"}]), "people.p", "not reachable"),
        (team("concurrent", options={"aggregator": "zed"}), "aggregator", "neither"),
        (team("group_chat", options={"max_rounds": "2"}), "max_rounds", "expected int"),
        (team("group_chat", options={"max_rounds": 0}), "max_rounds", ""),
        (
            {**team("sequential"), "agents": [agent("a", tools=["nope"])]},
            "agents.a.tools[0]",
            "unknown tool 'nope'",
        ),
        (
            {**team("sequential"), "agents": [{**agent("a"), "client": {"type": "gpt"}}]},
            "agents.a.client",
            "",
        ),
        (
            {**team("sequential"), "agents": [{**agent("a"), "client": {"type": "scripted"}}]},
            "agents.a.client",
            "",
        ),
    ],
)
def test_a_problem_names_its_node_or_edge(client: Any, draft: Any, path: str, words: str) -> None:
    answer = client.post("/api/studio/validate", json=draft)
    assert answer.status_code == 200
    assert not answer.json()["ok"]
    assert path in paths(answer), answer.json()
    assert words in " ".join(p["message"] for p in answer.json()["problems"])
    assert client.post("/api/studio/teams", json=draft).status_code == 422


def test_tools_from_the_studio_go_into_the_spec_and_its_imports(client: Any, folder: Path) -> None:
    library = client.get("/api/studio/library").json()
    assert {t["name"]: t["description"] for t in library["tools"]} == {
        "lookup": "Look a key up.",
        "transfer": "Send money.",
        "unhappy": "True while the critic has not approved.",
    }
    draft = {**team("sequential"), "agents": [agent("a", tools=["transfer"]), agent("b")]}
    assert client.post("/api/studio/teams", json=draft).status_code == 201
    text = (folder / "t_sequential.yaml").read_text()
    assert "transfer: tools:transfer" in text
    from workflow.cli._load import load_spec_file

    wf = load_spec_file(folder / "t_sequential.yaml")  # what `ledgerflow run` does
    assert "a" in wf.graph.executors


def test_replace_overwrites_only_the_builders_own_file(client: Any, folder: Path) -> None:
    draft = team("sequential")
    assert client.post("/api/studio/teams", json=draft).status_code == 201
    draft["description"] = "Second take."
    assert client.post("/api/studio/teams", json=draft).status_code == 422  # no silent overwrite
    assert client.post("/api/studio/teams", json={**draft, "replace": True}).status_code == 201
    assert "Second take." in (folder / "t_sequential.yaml").read_text()
    listed = client.get("/api/workflows").json()
    assert [w["description"] for w in listed if w["name"] == "t_sequential"] == ["Second take."]


def bump(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_an_edit_on_disk_is_served_and_a_broken_one_reported(client: Any, folder: Path) -> None:
    assert client.post("/api/studio/teams", json=team("sequential")).status_code == 201
    first = client.get("/api/studio/teams").json()
    assert [t["name"] for t in first["teams"]] == ["t_sequential"]
    path = folder / "t_sequential.yaml"
    bump(path, path.read_text().replace("The a.", "Edited by hand."))
    import time

    time.sleep(0.25)  # the folder is looked at most every 0.2 s
    second = client.get("/api/studio/teams").json()
    assert second["version"] > first["version"]
    back = client.get("/api/studio/teams/t_sequential").json()
    assert back["draft"]["agents"][0]["description"] == "Edited by hand."
    graph = client.get("/api/workflows/t_sequential/graph")
    assert graph.status_code == 200
    bump(path, "kind: sequential\nname: t_sequential\nagents: {a: {client: missing}}\n")
    time.sleep(0.25)
    third = client.get("/api/studio/teams").json()
    assert "missing" in third["teams"][0]["error"]
    assert "t_sequential" in [w["name"] for w in client.get("/api/workflows").json()]  # old stays
    path.unlink()
    time.sleep(0.25)
    assert client.get("/api/studio/teams").json()["teams"] == []
    assert "t_sequential" not in [w["name"] for w in client.get("/api/workflows").json()]


def test_a_hand_written_spec_the_builder_cannot_edit_says_why() -> None:
    spec = {
        "kind": "graph",
        "name": "g",
        "clients": {"shared": {"type": "scripted", "replies": ["x"]}},
        "agents": {"a": {"client": "shared"}},
        "executors": {"a": {"agent": "a"}, "f": {"function": "f"}},
        "start": "a",
        "edges": [{"from": "a", "cases": [{"when": "ok", "to": "f"}, {"to": "a"}]}],
    }
    draft, reason = spec_to_draft(spec)
    assert reason is not None
    for words in ("client 'shared'", "not one of the agents"):
        assert words in reason
    assert draft["agents"][0]["client"] == {"type": "scripted", "replies": ["x"]}
    # its switch has a form now: it comes through as it is
    assert draft["edges"] == spec["edges"]


def test_oversized_drafts_are_refused(client: Any) -> None:
    crowd = {**team("sequential"), "agents": [agent(f"a{i}") for i in range(65)]}
    answer = client.post("/api/studio/validate", json=crowd)
    assert "agents" in paths(answer)
    assert "64 at most" in answer.json()["problems"][0]["message"]
    huge = client.post(
        "/api/studio/validate",
        content=b'{"name": "' + b"x" * 1_100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert huge.status_code == 413
    assert client.post("/api/studio/validate", content=b"{nope").status_code == 400


def test_a_loop_with_a_condition_is_a_valid_graph(client: Any, folder: Path) -> None:
    loop = [{"from": "a", "to": "b"}, {"from": "b", "to": "a", "when": "unhappy"}]
    answer = client.post("/api/studio/validate", json=team("graph", edges=loop))
    assert answer.json()["ok"], answer.json()
    assert client.post("/api/studio/teams", json=team("graph", edges=loop)).status_code == 201
    text = (folder / "t_graph.yaml").read_text()
    assert "when: unhappy" in text
    assert "unhappy: tools:unhappy" in text
    back = client.get("/api/studio/teams/t_graph").json()
    assert back["editable"]
    assert back["draft"]["edges"] == loop


def test_replace_never_overwrites_a_spec_with_parts_the_builder_cannot_show(
    client: Any, folder: Path
) -> None:
    assert client.post("/api/studio/teams", json=team("sequential")).status_code == 201
    path = folder / "t_sequential.yaml"
    hand = path.read_text().replace("client: b\n", "client: a\n")  # b now shares a's client
    bump(path, hand)
    import time

    time.sleep(0.25)
    client.get("/api/studio/teams")  # the folder is looked at
    answer = client.post("/api/studio/teams", json={**team("sequential"), "replace": True})
    assert answer.status_code == 422
    assert "cannot show" in answer.json()["error"]["message"]
    assert path.read_text() == hand


def test_a_file_that_did_not_load_at_start_up_is_listed_with_a_reason(
    tmp_path: Path, folder: Path
) -> None:
    (folder / "broken.yaml").write_text("kind: sequential\nname: broken\nagents: {a: {}}\n")
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    teams = _teams(folder, {})
    routes = studio_routes(static_dir(), teams=teams)
    app = create_app([], store, adopt_interval=None, route_factories=[routes])
    with TestClient(app) as test_client:
        listed = test_client.get("/api/studio/teams").json()["teams"]
        assert [(t["file"], t["name"]) for t in listed] == [("broken.yaml", "broken")]
        assert "did not load when the studio started" in listed[0]["error"]
