"""The team builder end to end in headless Chromium: build, save, load from disk, run; bad input."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.cli._load import load_spec_file

from .conftest import ROOT, TARGETS, Studio, shot


@pytest.fixture
def teams(tmp_path: Path) -> Path:
    folder = tmp_path / "teams"
    folder.mkdir()
    shutil.copy(ROOT / "examples" / "concurrent.yaml", folder)  # a directory target must load
    return folder


@pytest.fixture
def builder_studio(tmp_path: Path, teams: Path) -> Iterator[Studio]:
    targets = [str(teams), *TARGETS[:2]]
    server = Studio(f"sqlite:///{tmp_path / 'runs.db'}", tmp_path / "studio.log", targets)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tab(browser: Any, builder_studio: Studio) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        yield page
    finally:
        context.close()


def agent(page: Any, n: int, name: str, instructions: str, reply: str) -> None:
    card = page.get_by_role("group", name=f"Agent {n}")
    card.get_by_label("Name").fill(name)
    card.get_by_label("Description").fill(f"The {name}.")
    card.get_by_label("Instructions").fill(instructions)
    card.get_by_label("Client").fill("scripted")
    card.get_by_label("Replies").fill(reply)


def test_build_a_two_agent_team_save_it_and_run_it(
    tab: Any, builder_studio: Studio, teams: Path
) -> None:
    tab.goto(builder_studio.url + "/")
    tab.get_by_role("link", name="New team").click()
    tab.get_by_label("Team name").fill("duo")
    tab.get_by_label("Team kind").select_option("group_chat")
    tab.get_by_label("Max rounds").fill("2")
    tab.get_by_role("button", name="Add agent").click()
    agent(tab, 1, "writer", "Write one line.", "A kettle that sings.")
    tab.get_by_role("button", name="Add agent").click()
    agent(tab, 2, "critic", "Judge the line.", "Approved: it sings.")
    shot(tab, "builder-draft")
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open duo in the playground").wait_for()
    shot(tab, "builder-saved")
    wf = load_spec_file(teams / "duo.yaml")  # what `ledgerflow run` loads
    assert wf.name == "duo"
    assert {"writer", "critic"} <= set(wf.graph.executors)
    tab.get_by_role("link", name="Open duo in the playground").click()
    tab.get_by_label("Input").fill("Name our kettle")
    tab.get_by_role("button", name="Run").click()
    outputs = tab.get_by_role("region", name="Outputs")
    outputs.get_by_text("Approved: it sings.").first.wait_for(timeout=30_000)
    shot(tab, "builder-run")
    tab.goto(builder_studio.url + "/")
    tab.get_by_role("link", name="duo", exact=True).wait_for()


def test_a_bad_draft_shows_errors_at_the_fields_and_writes_nothing(
    tab: Any, builder_studio: Studio, teams: Path
) -> None:
    before = sorted(p.name for p in teams.iterdir())
    tab.goto(builder_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("twins")
    for n in (1, 2):
        tab.get_by_role("button", name="Add agent").click()
        agent(tab, n, "same", "Say it.", "hi")
    tab.get_by_role("button", name="Save").click()
    tab.get_by_text("Not saved.").wait_for()
    shot(tab, "builder-duplicate")
    card = tab.get_by_role("group", name="Agent 2")
    card.get_by_role("alert").filter(has_text="two agents are named 'same'").first.wait_for()
    shot(tab, "builder-duplicate")
    card.get_by_label("Name").fill("other")
    card.get_by_label("Client").fill("bogus")
    tab.get_by_role("button", name="Save").click()
    card.get_by_role("alert").filter(has_text="bogus").wait_for()
    assert (
        tab.get_by_role("group", name="Agent 1")
        .get_by_role("alert")
        .filter(has_text="bogus")
        .count()
        == 0
    )
    shot(tab, "builder-unknown-client")
    tab.get_by_label("Team name").fill("../evil")
    card.get_by_label("Client").fill("scripted")
    tab.get_by_role("button", name="Save").click()
    tab.locator(".team").get_by_role("alert").filter(has_text="not a valid name").wait_for()
    assert sorted(p.name for p in teams.iterdir()) == before
    assert not (teams.parent / "evil.yaml").exists()
