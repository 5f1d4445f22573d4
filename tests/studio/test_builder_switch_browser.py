"""A switch built on the builder's canvas in headless Chromium: two cases dragged from one
agent, the missing condition named at the switch's cases, fixed by picking a condition, a case
added and removed with the keyboard, saved, read back from disk as the same cases, and run on
scripted replies (the case whose condition holds is taken, the default is not)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.cli._load import load_spec_file

from . import test_builder_canvas as canvas_tests
from .conftest import SHOTS, Studio, shot
from .test_builder_canvas import card
from .test_builder_fans_browser import connect

TOOLS = '''
def urgent(reply: object) -> bool:
    """True when the reply says it is urgent."""
    return "urgent" in str(reply).lower()
'''

tab = canvas_tests.tab  # a 1280x800 page on this module's studio


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "teams"
    path.mkdir()
    # next to the spec: `ledgerflow run` imports it; not named tools.py, which this test
    # process has imported already from the other tests' folders
    (path / "routing.py").write_text(TOOLS)
    return path


@pytest.fixture
def canvas_studio(tmp_path: Path, folder: Path) -> Iterator[Studio]:
    server = Studio(
        f"sqlite:///{tmp_path / 'runs.db'}",
        tmp_path / "studio.log",
        [str(folder), "--tools", str(folder / "routing.py")],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_switch_cases_from_the_canvas(tab: Any, canvas_studio: Studio, folder: Path) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("router")
    tab.get_by_label("Team kind").select_option("graph")
    canvas = tab.get_by_role("region", name="Team canvas")
    library = tab.get_by_role("complementary", name="Library")
    for x, y in ((110, 150), (480, 70), (480, 250)):
        library.get_by_role("button", name="Agent", exact=True).drag_to(
            canvas, target_position={"x": x, "y": y}
        )
    card(tab, 1, "triage", "URGENT: the payment server is down.")
    card(tab, 2, "oncall", "Paging the on-call engineer now.")
    card(tab, 3, "backlog", "Filed for next week.")
    edges = tab.get_by_role("region", name="Edges and handoffs")
    edges.get_by_label("New edges make").select_option("switch")
    connect(tab, "triage", "backlog")  # the first case: the default
    connect(tab, "triage", "oncall")  # goes before the default, with no condition yet
    switch = edges.locator('[data-edge-kind="switch"]')
    switch.get_by_text("Switch from triage").wait_for()
    cases = switch.locator('[data-path="cases"]')
    # two cases without a condition: named at the switch's cases, its arrows dashed red
    cases.get_by_role("alert").filter(has_text="2 cases without a condition").wait_for()
    assert canvas.locator('line.invalid[data-kind="switch"]').count() == 2
    of = "of the switch from triage"
    assert switch.locator("li.case").count() == 2
    first = switch.get_by_label(f"Target of case 1 {of}")
    assert first.evaluate("e => e.selectedOptions[0].text") == "oncall"
    shot(tab, "builder-switch-error")
    switch.get_by_label(f"Condition of case 1 {of}").select_option("urgent")
    tab.get_by_text("Valid: ready to save.").wait_for()
    assert canvas.locator('text.wire-label:text("case 1: urgent")').count() == 1
    assert canvas.locator('text.wire-label:text("default")').count() == 1
    tab.get_by_role("region", name="Live diagram").get_by_role("img").wait_for()
    shot(tab, "builder-switch-valid")
    # the keyboard path: add a case (before the default), see the problem, remove it again
    switch.get_by_role("button", name="Add a case to the switch from triage").press("Enter")
    cases.get_by_role("alert").filter(has_text="2 cases without a condition").wait_for()
    assert switch.locator("li.case").count() == 3
    switch.get_by_role("button", name=f"Remove case 2 {of}").press("Enter")
    tab.get_by_text("Valid: ready to save.").wait_for()
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open router in the playground").wait_for()
    text = (folder / "router.yaml").read_text()
    assert "- from: triage\n  cases:\n  - when: urgent\n    to: oncall\n  - to: backlog\n" in text
    assert "urgent: routing:urgent" in text
    wf = load_spec_file(folder / "router.yaml")  # what `ledgerflow run` loads
    assert [g.kind for g in wf.graph.groups] == ["switch"]
    # read back from disk: the same cases, editable
    tab.goto(canvas_studio.url + "/#/")
    tab.get_by_role("link", name="Edit router in the builder").click()
    tab.get_by_role("group", name="Agent 3").get_by_label("Name").wait_for()
    switch = tab.get_by_role("region", name="Edges and handoffs").locator(
        '[data-edge-kind="switch"]'
    )
    tab.get_by_text("Valid: ready to save.").wait_for()
    assert switch.get_by_label(f"Condition of case 1 {of}").input_value() == "urgent"
    target = switch.get_by_label(f"Target of case 1 {of}")
    assert target.evaluate("e => e.selectedOptions[0].text") == "oncall"
    assert switch.get_by_label(f"Condition of case 2 {of}").input_value() == ""
    target = switch.get_by_label(f"Target of case 2 {of}")
    assert target.evaluate("e => e.selectedOptions[0].text") == "backlog"
    assert tab.get_by_text("The builder cannot show all").count() == 0
    shot(tab, "builder-switch-reloaded")
    tab.goto(canvas_studio.url + "/#/w/router")
    tab.get_by_label("Input").fill("The payment server is down!")
    tab.get_by_role("button", name="Run").click()
    outputs = tab.get_by_role("region", name="Outputs")
    outputs.get_by_text("Paging the on-call engineer now.").first.wait_for(timeout=30_000)
    assert tab.locator('[data-node-id="oncall"]').get_attribute("data-status") == "completed"
    assert tab.locator('[data-node-id="backlog"]').get_attribute("data-status") == "idle"
    shot(tab, "builder-switch-run")


def test_the_keyboard_alone_builds_a_switch_in_a_narrow_window(
    browser: Any, canvas_studio: Studio, folder: Path
) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(canvas_studio.url + "/#/new")
        page.get_by_label("Team name").fill("desk")
        page.get_by_label("Team kind").select_option("graph")
        library = page.get_by_role("complementary", name="Library")
        for _ in range(3):
            library.get_by_role("button", name="Agent", exact=True).focus()
            page.keyboard.press("Enter")
        card(page, 1, "triage", "Urgent.")
        card(page, 2, "oncall", "On it.")
        card(page, 3, "backlog", "Later.")
        page.get_by_label("New edges make").select_option("switch")
        for target in ("backlog", "oncall"):
            page.get_by_label("Edge from").select_option(label="triage")
            page.get_by_label("Edge to").select_option(label=target)
            page.get_by_role("button", name="Add edge").press("Enter")
        switch = page.locator('[data-edge-kind="switch"]')
        switch.locator('[data-path="cases"]').get_by_role("alert").wait_for()
        condition = switch.get_by_label("Condition of case 1 of the switch from triage")
        condition.focus()
        condition.select_option("urgent")
        page.get_by_text("Valid: ready to save.").wait_for()
        # the list was redrawn: the focus stayed on the field the person was using
        assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
            "Condition of case 1 of the switch from triage"
        )
        switch.scroll_into_view_if_needed()
        shot(page, "builder-switch-narrow")
        edges = page.get_by_role("region", name="Edges and handoffs")
        edges.screenshot(path=str(SHOTS / "builder-switch-narrow-edges.png"))
        canvas = page.get_by_role("region", name="Team canvas")
        canvas.screenshot(path=str(SHOTS / "builder-switch-narrow-canvas.png"))
        page.get_by_role("button", name="Save").press("Enter")
        page.get_by_role("link", name="Open desk in the playground").wait_for()
        assert "  cases:\n  - when: urgent\n    to: oncall\n  - to: backlog\n" in (
            (folder / "desk.yaml").read_text()
        )
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 440  # nothing forces a sideways scroll
    finally:
        context.close()
