"""The team builder's canvas end to end in headless Chromium, from nothing: drag two agents
and a tool from the library, see the validation error at the node no edge reaches, drag an
edge, save, edit the file on disk and see the change, run on scripted replies, approve the
tool call, read the output. Also the keyboard path (no pointer at all) and a narrow window."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workflow.cli._load import load_spec_file

from .conftest import SHOTS, Studio, shot

TOOLS = '''
from executors import tool


@tool(approval_mode="always_require")
def transfer(to: str, amount: int) -> str:
    """Send money from the company account."""
    return f"sent {amount} EUR to {to}"


def unhappy(reply: object) -> bool:
    """True while the critic has not approved."""
    return "approved" not in str(reply).lower()
'''
CALL = '{"tool_calls": [{"name": "transfer", "arguments": {"to": "alice", "amount": 250}}]}'


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "teams"
    path.mkdir()
    (path / "tools.py").write_text(TOOLS)  # next to the specs: `ledgerflow run` imports it
    return path


@pytest.fixture
def canvas_studio(tmp_path: Path, folder: Path) -> Iterator[Studio]:
    tools = folder / "tools.py"
    server = Studio(
        f"sqlite:///{tmp_path / 'runs.db'}",
        tmp_path / "studio.log",
        [str(folder), "--tools", str(tools)],
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tab(browser: Any, canvas_studio: Studio) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.requested = requested
    try:
        yield page
    finally:
        context.close()


def card(page: Any, n: int, name: str, replies: str) -> Any:
    group = page.get_by_role("group", name=f"Agent {n}")
    group.get_by_label("Name").fill(name)
    group.get_by_label("Description").fill(f"The {name}.")
    group.get_by_label("Replies").fill(replies)
    return group


def node(page: Any, name: str) -> Any:
    return page.get_by_role("region", name="Team canvas").locator(f'[data-node-id="{name}"]')


def test_drag_a_team_together_fix_it_save_edit_on_disk_and_run(
    tab: Any, canvas_studio: Studio, folder: Path
) -> None:
    tab.goto(canvas_studio.url + "/")
    tab.get_by_role("link", name="New team").click()
    tab.get_by_label("Team name").fill("payday")
    tab.get_by_label("Team kind").select_option("graph")
    canvas = tab.get_by_role("region", name="Team canvas")
    library = tab.get_by_role("complementary", name="Library")
    library.get_by_role("button", name="Agent", exact=True).drag_to(
        canvas, target_position={"x": 120, "y": 80}
    )
    library.get_by_role("button", name="Agent", exact=True).drag_to(
        canvas, target_position={"x": 520, "y": 80}
    )
    card(tab, 1, "treasurer", f"{CALL}\nPaid alice.")
    card(tab, 2, "auditor", "Audit ok: one payment of 250 EUR.")
    library.get_by_role("button", name="Tool: transfer").drag_to(node(tab, "treasurer"))
    assert tab.get_by_role("group", name="Agent 1").get_by_label("transfer").is_checked()
    # the draft is checked as it changes: the agent no edge reaches is marked where it is
    node(tab, "auditor").get_by_role("alert").filter(has_text="not reachable").wait_for()
    shot(tab, "builder-canvas-error")
    port = node(tab, "treasurer").get_by_role("button", name="Connect treasurer to another member")
    port.drag_to(node(tab, "auditor"))
    tab.get_by_role("list", name="Edges").get_by_text("treasurer \u2192 auditor").wait_for()
    tab.get_by_text("Valid: ready to save.").wait_for()
    assert node(tab, "auditor").get_by_role("alert").is_hidden()
    diagram = tab.get_by_role("region", name="Live diagram").get_by_role("img")
    diagram.wait_for()
    assert canvas.locator('line[data-edge="treasurer->auditor"]').count() == 1
    shot(tab, "builder-canvas-valid")
    SHOTS.mkdir(parents=True, exist_ok=True)  # the top of the page, for docs/studio.png
    clip = {"x": 0, "y": 0, "width": 1280, "height": 1080}
    tab.screenshot(path=str(SHOTS / "builder-overview.png"), full_page=True, clip=clip)
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open payday in the playground").wait_for()
    path = folder / "payday.yaml"
    wf = load_spec_file(path)  # what `ledgerflow run` loads (the tool through imports)
    assert list(wf.graph.executors) == ["treasurer", "auditor"]
    # an edit on disk shows up in the builder (the page has no unsaved changes, so it reloads)
    path.write_text(path.read_text().replace("The auditor.", "Checks every payment twice."))
    auditor = tab.get_by_role("group", name="Agent 2")
    tab.get_by_text("payday.yaml changed on disk: reloaded.").wait_for()
    assert auditor.get_by_label("Description").input_value() == "Checks every payment twice."
    shot(tab, "builder-canvas-reloaded")
    # with edits of its own not saved, the page does not overwrite them: it offers to reload
    auditor.get_by_label("Instructions").fill("Check twice.")
    path.write_text(path.read_text().replace("Checks every payment twice.", "Checks it all."))
    tab.get_by_role("button", name="Reload from disk").click()
    tab.get_by_role("button", name="Reload from disk").wait_for(state="detached")  # reloaded
    assert auditor.get_by_label("Description").input_value() == "Checks it all."
    assert auditor.get_by_label("Instructions").input_value() == ""
    tab.get_by_role("link", name="Open payday in the playground").click()
    tab.get_by_label("Input").fill("Pay alice 250 EUR")
    tab.get_by_role("button", name="Run").click()
    tab.get_by_role("button", name="Approve").click()
    outputs = tab.get_by_role("region", name="Outputs")
    outputs.get_by_text("Audit ok: one payment of 250 EUR.").first.wait_for(timeout=30_000)
    shot(tab, "builder-canvas-run")
    # the run's trace: the engine's spans, with durations and the model calls' tokens
    trace = tab.get_by_role("region", name="Trace")
    trace.locator('tr[data-span="execute_tool transfer"]').wait_for()
    assert trace.locator('tr[data-span="chat scripted"]').count() == 3  # 2 treasurer, 1 auditor
    assert trace.locator('tr[data-span="workflow.run"]').count() >= 1
    assert "ms" in trace.locator('tr[data-span="executor.process"]').first.inner_text()
    trace.get_by_text("3 model calls").wait_for()
    trace.scroll_into_view_if_needed()
    shot(tab, "run-trace")
    tab.goto(canvas_studio.url + "/")
    tab.get_by_role("link", name="Edit payday in the builder").wait_for()
    path.write_text(path.read_text().replace("name: payday", "name: payday\ndescription: Pays.", 1))
    tab.get_by_text("Pays.", exact=True).wait_for()  # the gallery redraws on its own
    shot(tab, "gallery-after-edit")
    origin = canvas_studio.url + "/"
    assert all(url.startswith(origin) or url.startswith("data:") for url in tab.requested), [
        u for u in tab.requested if not u.startswith(origin)
    ]


def test_the_keyboard_alone_builds_a_handoff_team_in_a_narrow_window(
    browser: Any, canvas_studio: Studio, folder: Path
) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 800})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    try:
        tab.goto(canvas_studio.url + "/#/new")
        tab.get_by_label("Team name").fill("desk")
        tab.get_by_label("Team kind").select_option("handoff")
        library = tab.get_by_role("complementary", name="Library")
        for _ in range(2):
            library.get_by_role("button", name="Agent", exact=True).focus()
            tab.keyboard.press("Enter")
        card(tab, 1, "triage", "Over to billing.")
        card(tab, 2, "billing", "Refunded.")
        tab.get_by_label("Edge from").select_option(label="triage")
        tab.get_by_label("Edge to").select_option(label="billing")
        tab.get_by_role("button", name="Add edge").press("Enter")
        tab.get_by_role("list", name="Edges").get_by_text("triage \u2192 billing").wait_for()
        tab.get_by_role("group", name="Agent 1").get_by_label("transfer").check()
        box = node(tab, "billing")  # the boxes move with the arrow keys too
        before = box.evaluate("e => e.offsetTop")
        box.focus()
        tab.keyboard.press("ArrowDown")
        tab.keyboard.press("Shift+ArrowDown")
        assert box.evaluate("e => e.offsetTop") == before + 50
        tab.get_by_text("Valid: ready to save.").wait_for()
        shot(tab, "builder-narrow")
        tab.get_by_role("button", name="Save").press("Enter")
        tab.get_by_role("link", name="Open desk in the playground").wait_for()
        assert "handoffs:\n  triage:\n  - billing" in (folder / "desk.yaml").read_text()
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 440  # nothing forces a sideways scroll
    finally:
        context.close()


def test_a_loop_needs_a_condition_on_one_of_its_edges(tab: Any, canvas_studio: Studio) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("loop")
    tab.get_by_label("Team kind").select_option("graph")
    for _ in range(2):
        tab.get_by_role("button", name="Add agent").click()
    card(tab, 1, "writer", "A draft.")
    card(tab, 2, "critic", "Approved.")
    tab.get_by_label("Edge from").select_option(label="writer")
    tab.get_by_label("Edge to").select_option(label="critic")
    tab.get_by_role("button", name="Add edge").click()
    tab.get_by_label("Edge from").select_option(label="critic")
    tab.get_by_label("Edge to").select_option(label="writer")
    tab.get_by_role("button", name="Add edge").click()
    edges = tab.get_by_role("region", name="Edges and handoffs")
    edges.get_by_role("alert").filter(has_text="loop").wait_for()
    shot(tab, "builder-loop-error")
    edges.get_by_label("Condition of critic \u2192 writer").select_option("unhappy")
    tab.get_by_text("Valid: ready to save.").wait_for()
    canvas = tab.get_by_role("region", name="Team canvas")
    assert canvas.locator("text.wire-label").text_content() == "when unhappy"
    shot(tab, "builder-loop-condition")
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open loop in the playground").wait_for()


def test_team_options_aggregator_and_stop_text(
    tab: Any, canvas_studio: Studio, folder: Path
) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("panel")
    tab.get_by_label("Team kind").select_option("concurrent")
    for _ in range(3):
        tab.get_by_role("button", name="Add agent").click()
    card(tab, 1, "optimist", "It will work.")
    card(tab, 2, "pessimist", "It will not.")
    card(tab, 3, "judge", "Both have a point.")
    tab.get_by_label("Aggregator").select_option(label="agent judge")
    tab.get_by_text("Valid: ready to save.").wait_for()
    spec = tab.get_by_role("region", name="Live diagram").locator(".spec-text")
    assert "aggregator: judge" in spec.text_content()
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open panel in the playground").wait_for()
    text = (folder / "panel.yaml").read_text()
    assert "participants:\n- optimist\n- pessimist\naggregator: judge" in text
    tab.get_by_label("Team kind").select_option("group_chat")
    tab.get_by_label("Stop when a message mentions").fill("a point")
    tab.get_by_text("Valid: ready to save.").wait_for()
    spec.get_by_text("text_mention: a point").wait_for(state="attached")
    # who speaks next: round robin, or a model with its own client
    tab.get_by_label("Speaker selection").select_option("model")
    selector = tab.get_by_role("group", name="Speaker selector's model client")
    selector.get_by_label("Selector client").fill("gpt")
    selector.get_by_role("alert").first.wait_for()
    selector.get_by_label("Selector client").fill("scripted")
    selector.get_by_label("Selector replies").fill("pessimist\noptimist")
    spec.get_by_text("client: speaker_selector").wait_for(state="attached")
    shot(tab, "builder-options")


def test_an_openai_compatible_client_dragged_onto_an_agent(
    tab: Any, canvas_studio: Studio, folder: Path
) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("remote")
    tab.get_by_label("Team kind").select_option("sequential")
    canvas = tab.get_by_role("region", name="Team canvas")
    library = tab.get_by_role("complementary", name="Library")
    library.get_by_role("button", name="Agent", exact=True).drag_to(
        canvas, target_position={"x": 150, "y": 90}
    )
    library.get_by_role("button", name="OpenAI-compatible model client").drag_to(
        node(tab, "agent_1")
    )
    group = tab.get_by_role("group", name="Agent 1")
    assert group.get_by_label("Client").input_value() == "openai"
    assert node(tab, "agent_1").get_by_text("openai").is_visible()
    group.get_by_label("Model").fill("qwen2.5-0.5b")
    group.get_by_label("Base URL").fill("http://127.0.0.1:8080/v1")
    group.get_by_label("API key environment variable").fill("sk-live key")  # a key, not a name
    field = group.locator('[data-path="client.api_key_env"]')
    field.get_by_role("alert").wait_for()
    assert "sk-live" not in field.get_by_role("alert").inner_text()  # never echoed
    group.get_by_label("API key environment variable").fill("LOCAL_LLM_KEY")
    tab.get_by_text("Valid: ready to save.").wait_for()
    shot(tab, "builder-openai")
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open remote in the playground").wait_for()
    text = (folder / "remote.yaml").read_text()
    assert "api_key_env: LOCAL_LLM_KEY" in text
    assert "base_url: http://127.0.0.1:8080/v1" in text


def test_a_magentic_team_with_its_managers_client_and_plan_review(
    tab: Any, canvas_studio: Studio
) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("led")
    tab.get_by_label("Team kind").select_option("magentic")
    tab.get_by_role("button", name="Add agent").click()
    card(tab, 1, "researcher", "Found it.")
    manager = tab.get_by_role("group", name="Manager's model client")
    manager.get_by_label("Manager client").fill("gpt")  # no such client type
    manager.get_by_role("alert").first.wait_for()
    shot(tab, "builder-magentic-error")
    manager.get_by_label("Manager client").fill("scripted")
    manager.get_by_label("Manager replies").fill("plan")
    tab.get_by_label("Plan review (a person approves or revises the plan)").check()
    tab.get_by_text("Valid: ready to save.").wait_for()
    spec = tab.get_by_role("region", name="Live diagram").locator(".spec-text")
    spec.get_by_text("plan_review: true").wait_for(state="attached")
    assert "client: magentic_manager" in spec.text_content()


def test_a_person_in_a_handoff_team_is_asked_during_the_run(
    tab: Any, canvas_studio: Studio, folder: Path
) -> None:
    tab.goto(canvas_studio.url + "/#/new")
    tab.get_by_label("Team name").fill("desk")
    tab.get_by_label("Team kind").select_option("handoff")
    canvas = tab.get_by_role("region", name="Team canvas")
    library = tab.get_by_role("complementary", name="Library")
    library.get_by_role("button", name="Agent", exact=True).drag_to(
        canvas, target_position={"x": 120, "y": 90}
    )
    library.get_by_role("button", name="Person", exact=True).drag_to(
        canvas, target_position={"x": 520, "y": 90}
    )
    handoff = '{"tool_calls": [{"name": "handoff_to_customer", "arguments": {}}]}'
    card(tab, 1, "triage", handoff)
    tab.get_by_role("group", name="Person 1").get_by_label("Name").fill("customer")
    library.get_by_role("button", name="Tool: transfer").drag_to(node(tab, "customer"))
    library.get_by_text("customer is a person").wait_for()  # tools go to agents only
    port = node(tab, "triage").get_by_role("button", name="Connect triage to another member")
    port.drag_to(node(tab, "customer"))
    tab.get_by_text("Valid: ready to save.").wait_for()
    shot(tab, "builder-person")
    tab.get_by_role("button", name="Save").click()
    tab.get_by_role("link", name="Open desk in the playground").click()
    tab.get_by_label("Input").fill("My parcel is late.")
    tab.get_by_role("button", name="Run").click()
    tab.get_by_label("Answer").wait_for(timeout=30_000)  # the person is asked
    graph = tab.locator('[data-node-id="customer"]')
    assert graph.get_attribute("data-status") == "waiting"
    shot(tab, "builder-person-asked")
    text = (folder / "desk.yaml").read_text()
    assert "customer:\n    human:\n      human_input_mode: ALWAYS" in text
