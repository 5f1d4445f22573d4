"""Fan-out and fan-in edges built on the builder's canvas in headless Chromium: a fan-in with
one source is named at its sources, fixed by dragging a second edge, saved, read back from
disk as the same edges, edited with the keyboard, and run on scripted replies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow.cli._load import load_spec_file

from . import test_builder_canvas as canvas_tests
from .conftest import Studio, shot
from .test_builder_canvas import card, node

# the canvas tests' fixtures: a studio on a folder with tools.py, and a 1280x800 page
canvas_studio, folder, tab = canvas_tests.canvas_studio, canvas_tests.folder, canvas_tests.tab


def connect(page: Any, source: str, target: str) -> None:
    port = node(page, source).get_by_role("button", name=f"Connect {source} to another member")
    port.drag_to(node(page, target))


def test_fan_out_and_fan_in_from_the_canvas(tab: Any, canvas_studio: Studio, folder: Path) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("panel")
    tab.get_by_label("Team kind").select_option("graph")
    canvas = tab.get_by_role("region", name="Team canvas")
    library = tab.get_by_role("complementary", name="Library")
    for x, y in ((110, 150), (450, 70), (450, 250), (800, 150)):
        library.get_by_role("button", name="Agent", exact=True).drag_to(
            canvas, target_position={"x": x, "y": y}
        )
    card(tab, 1, "lead", "Draft: launch on Monday.")
    card(tab, 2, "legal", "Legal: fine.")
    card(tab, 3, "finance", "Finance: within budget.")
    card(tab, 4, "editor", "Editor: legal and finance agree, ship it.")
    edges = tab.get_by_role("region", name="Edges and handoffs")
    edges.get_by_label("New edges make").select_option("fan_out")
    connect(tab, "lead", "legal")
    connect(tab, "lead", "finance")
    fan_out = edges.locator('[data-edge-kind="fan_out"]')
    fan_out.get_by_text("Fan-out from lead to").wait_for()
    assert fan_out.locator(".chip").all_inner_texts() == ["legal \u00d7", "finance \u00d7"]
    edges.get_by_label("New edges make").select_option("fan_in")
    connect(tab, "legal", "editor")
    # a fan-in with one source: the loader's rule, named at the fan-in's sources
    fan_in = edges.locator('[data-edge-kind="fan_in"]')
    sources = fan_in.locator('[data-path="from"]')
    sources.get_by_role("alert").filter(has_text="two or more sources").wait_for()
    assert canvas.locator('line.invalid[data-edge="legal->editor"]').count() == 1
    shot(tab, "builder-fan-in-error")
    connect(tab, "finance", "editor")
    tab.get_by_text("Valid: ready to save.").wait_for()
    assert sources.get_by_role("alert").is_hidden()
    assert canvas.locator('line[data-kind="fan_out"]').count() == 2
    assert canvas.locator('line[data-kind="fan_in"]').count() == 2
    tab.get_by_role("region", name="Live diagram").get_by_role("img").wait_for()
    shot(tab, "builder-fans-valid")
    # the keyboard path: remove a source with its button, add it back with the form
    fan_in.get_by_role("button", name="Remove finance from the fan-in to editor").press("Enter")
    sources.get_by_role("alert").filter(has_text="two or more sources").wait_for()
    tab.get_by_label("Edge from").select_option(label="finance")
    tab.get_by_label("Edge to").select_option(label="editor")
    tab.get_by_role("button", name="Add edge").press("Enter")
    tab.get_by_text("Valid: ready to save.").wait_for()
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open panel in the playground").wait_for()
    text = (folder / "panel.yaml").read_text()
    assert "- from: lead\n  to:\n  - legal\n  - finance\n" in text
    assert "- from:\n  - legal\n  - finance\n  to: editor\n" in text
    wf = load_spec_file(folder / "panel.yaml")  # what `ledgerflow run` loads
    assert sorted(g.kind for g in wf.graph.groups) == ["fan_in", "fan_out"]
    # read back from disk: the same edges, editable
    tab.goto(canvas_studio.url + "/#/")
    tab.get_by_role("link", name="Edit panel in the builder").click()
    tab.get_by_role("group", name="Agent 4").get_by_label("Name").wait_for()
    edges = tab.get_by_role("region", name="Edges and handoffs")
    assert edges.locator('[data-edge-kind="fan_out"] .chip').all_inner_texts() == [
        "legal \u00d7",
        "finance \u00d7",
    ]
    assert edges.locator('[data-edge-kind="fan_in"] .chip').all_inner_texts() == [
        "legal \u00d7",
        "finance \u00d7",
    ]
    tab.get_by_text("Valid: ready to save.").wait_for()
    assert tab.get_by_text("The builder cannot show all").count() == 0
    assert canvas.locator('line[data-kind="fan_in"]').count() == 2
    shot(tab, "builder-fans-reloaded")
    tab.goto(canvas_studio.url + "/#/w/panel")
    tab.get_by_label("Input").fill("Plan the launch.")
    tab.get_by_role("button", name="Run").click()
    outputs = tab.get_by_role("region", name="Outputs")
    outputs.get_by_text("Editor: legal and finance agree, ship it.").first.wait_for(timeout=30_000)
    assert tab.locator('[data-node-id="editor"]').get_attribute("data-status") == "completed"
    shot(tab, "builder-fans-run")
