"""The builder's fan-out and fan-in edges without a browser: the problems each names at its
place in the draft, the spec they save as, that spec read back as the same draft, and a run
of it on scripted replies (the fan-in's agent hears every source)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from . import test_builder_drafts as drafts
from .test_builder_drafts import agent, paths

client, folder = drafts.client, drafts.folder  # the drafts' fixtures: a studio app, its tools


def panel(edges: list[dict[str, Any]], kind: str = "graph") -> dict[str, Any]:
    return {
        "name": "panel",
        "kind": kind,
        "agents": [
            agent("lead", "Draft: launch on Monday."),
            agent("legal", "Legal: fine."),
            agent("finance", "Finance: within budget."),
            agent("editor", "Editor: ship it."),
        ],
        "edges": edges,
    }


FANS = [
    {"from": "lead", "to": ["legal", "finance"]},
    {"from": ["legal", "finance"], "to": "editor"},
]


def run(workflow: Any, text: str) -> Any:
    """Run on a thread of its own: the package's browser keeps an event loop in this one."""
    import anyio

    found: list[Any] = []
    worker = threading.Thread(target=lambda: found.append(anyio.run(workflow.run, text)))
    worker.start()
    worker.join(60)
    return found[0]


def test_fan_out_and_fan_in_save_read_back_and_run(client: Any, folder: Path) -> None:
    draft = panel(FANS)
    answer = client.post("/api/studio/validate", json=draft).json()
    assert answer["ok"], answer
    assert "- from: lead\n  to:\n  - legal\n  - finance\n" in answer["spec"]
    assert client.post("/api/studio/teams", json=draft).status_code == 201
    text = (folder / "panel.yaml").read_text()
    assert "- from:\n  - legal\n  - finance\n  to: editor\n" in text
    back = client.get("/api/studio/teams/panel").json()
    assert back["editable"], back["reason"]
    assert back["draft"]["edges"] == FANS
    from workflow.cli._load import load_spec_file

    wf = load_spec_file(folder / "panel.yaml")  # what `ledgerflow run` loads
    assert sorted(g.kind for g in wf.graph.groups) == ["fan_in", "fan_out"]
    result = run(wf, "Plan the launch.")
    assert result.status.value == "completed", result.error
    assert [m.text for m in result.outputs[-1].messages] == ["Editor: ship it."]
    # the fan-in's agent ran once, on the list of both replies (an agent used to refuse it)
    invoked = [type(e).__name__ for e in result.events if getattr(e, "executor_id", "") == "editor"]
    assert invoked.count("ExecutorInvoked") == 1


def test_a_fan_out_selection_is_a_studio_function(client: Any, folder: Path) -> None:
    edges = [{"from": "lead", "to": ["legal", "finance"], "select": "lookup"}]
    draft = {**panel(edges), "agents": panel(edges)["agents"][:3]}
    answer = client.post("/api/studio/validate", json=draft).json()
    assert answer["ok"], answer
    assert "select: lookup" in answer["spec"]
    assert "lookup: tools:lookup" in answer["spec"]


@pytest.mark.parametrize(
    ("edges", "kind", "path", "words"),
    [
        (
            [FANS[0], {"from": ["legal"], "to": "editor"}, {"from": "finance", "to": "editor"}],
            "graph",
            "edges[1].from",
            "two or more sources",
        ),
        (
            [{"from": "lead", "to": ["legal", "nobody"]}, FANS[1]],
            "graph",
            "edges[0].to[1]",
            "'nobody' is not a member",
        ),
        (
            [{"from": "lead", "to": ["legal", "legal", "finance"]}, FANS[1]],
            "graph",
            "edges[0].to[1]",
            "twice",
        ),
        (
            [{"from": "lead", "to": ["legal", "lead"]}, FANS[1]],
            "graph",
            "edges[0].to",
            "itself",
        ),
        (
            [{"from": "lead", "to": ["legal", "finance"], "select": "nope"}, FANS[1]],
            "graph",
            "edges[0].select",
            "'nope'",
        ),
        (FANS, "handoff", "edges[0]", "only a graph"),
    ],
)
def test_a_fan_problem_names_its_part_of_the_edge(
    client: Any, edges: list[dict[str, Any]], kind: str, path: str, words: str
) -> None:
    answer = client.post("/api/studio/validate", json=panel(edges, kind))
    assert path in paths(answer), answer.json()
    assert words in " ".join(p["message"] for p in answer.json()["problems"])
