"""The builder's switch edges without a browser: cases in order with conditions and one
default, the problems named at the switch or its case, the spec they save as, read back as the
same draft, and a run on scripted replies that takes the case whose condition holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from . import test_builder_drafts as drafts
from .test_builder_drafts import agent, paths
from .test_builder_fans import run

client, folder = drafts.client, drafts.folder  # the drafts' fixtures: a studio app, its tools


def router(cases: list[dict[str, Any]], kind: str = "graph") -> dict[str, Any]:
    return {
        "name": "router",
        "kind": kind,
        "agents": [
            agent("triage", "Still broken: route it."),
            agent("fixer", "Fixed."),
            agent("archive", "Archived."),
        ],
        "edges": [{"from": "triage", "cases": cases}],
    }


CASES = [{"when": "unhappy", "to": "fixer"}, {"to": "archive"}]


def test_a_switch_saves_reads_back_and_runs_the_case_that_holds(client: Any, folder: Path) -> None:
    draft = router(CASES)
    answer = client.post("/api/studio/validate", json=draft).json()
    assert answer["ok"], answer
    assert client.post("/api/studio/teams", json=draft).status_code == 201
    text = (folder / "router.yaml").read_text()
    assert "cases:\n  - when: unhappy\n    to: fixer\n  - to: archive\n" in text
    assert "unhappy: tools:unhappy" in text
    back = client.get("/api/studio/teams/router").json()
    assert back["editable"], back["reason"]
    assert back["draft"]["edges"] == draft["edges"]
    from workflow.cli._load import load_spec_file

    wf = load_spec_file(folder / "router.yaml")  # what `ledgerflow run` loads
    assert [g.kind for g in wf.graph.groups] == ["switch"]
    result = run(wf, "A ticket.")
    assert result.status.value == "completed", result.error
    ran = [e.executor_id for e in result.events if type(e).__name__ == "ExecutorInvoked"]
    assert ran == ["triage", "fixer"]  # no "approved" in the reply: case 1 holds, not the default


@pytest.mark.parametrize(
    ("cases", "kind", "path", "words"),
    [
        ([{"to": "fixer"}, {"to": "archive"}], "graph", "edges[0].cases", "2 cases without"),
        (
            [{"when": "unhappy", "to": "fixer"}, {"when": "unhappy", "to": "archive"}],
            "graph",
            "edges[0].cases",
            "0 cases without",
        ),
        ([], "graph", "edges[0].cases", "has no cases"),
        (
            [{"when": "nope", "to": "fixer"}, {"to": "archive"}],
            "graph",
            "edges[0].cases[0].when",
            "'nope'",
        ),
        ([CASES[0], {"to": "nobody"}], "graph", "edges[0].cases[1].to", "'nobody' is not a member"),
        (CASES, "handoff", "edges[0]", "only a graph"),
    ],
)
def test_a_switch_problem_names_the_switch_or_its_case(
    client: Any, cases: list[dict[str, Any]], kind: str, path: str, words: str
) -> None:
    answer = client.post("/api/studio/validate", json=router(cases, kind))
    assert path in paths(answer), answer.json()
    assert words in " ".join(p["message"] for p in answer.json()["problems"])


def test_the_switch_targets_count_as_reachable(client: Any) -> None:
    draft = router([{"to": "fixer"}, {"to": "archive"}])  # two defaults: one problem, not three
    assert paths(client.post("/api/studio/validate", json=draft)) == ["edges[0].cases"]
