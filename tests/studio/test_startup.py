"""``ledgerflow studio`` starts from nothing: an empty or not-yet-existing team directory."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from .conftest import Studio

pytest.importorskip("starlette")


def _get(url: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        data: list[dict[str, object]] = json.load(answer)
        return data


def _save(url: str, team: str) -> int:
    draft = {
        "name": team,
        "kind": "sequential",
        "agents": [{"name": "solo", "client": {"type": "scripted", "replies": ["hi"]}}],
    }
    request = urllib.request.Request(
        url + "/api/studio/teams",
        data=json.dumps(draft).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        status: int = answer.status
        return status


@pytest.mark.parametrize("exists", [True, False], ids=["empty", "missing"])
def test_the_studio_starts_on_an_empty_or_missing_directory(tmp_path: Path, exists: bool) -> None:
    folder = tmp_path / "teams" / "mine"
    if exists:
        folder.mkdir(parents=True)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "half.yaml").write_text("kind: graph\nname: [")  # skipped, not fatal
    server = Studio(
        f"sqlite:///{tmp_path / 'runs.db'}",
        tmp_path / "studio.log",
        [str(folder), str(tmp_path / "broken")],
    )
    server.start()
    try:
        assert _get(server.url + "/api/workflows") == []
        assert folder.is_dir()
        assert _save(server.url, "first") == 201
        assert (folder / "first.yaml").is_file()
        assert [w["name"] for w in _get(server.url + "/api/workflows")] == ["first"]
    finally:
        server.stop()
    assert "skipping" in (tmp_path / "studio.log").read_text()
