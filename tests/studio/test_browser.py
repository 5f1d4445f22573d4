"""End to end in headless Chromium: gallery, playground, live run view, requests, history."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from .conftest import Studio, shot


def expect_status(page: Any, node: str, status: str) -> None:
    page.wait_for_selector(f'[data-node-id="{node}"][data-status="{status}"]', timeout=30_000)


def test_gallery_lists_each_workflow_as_a_link_with_its_diagram(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/")
    link = page.get_by_role("link", name="review", exact=True)
    link.wait_for()
    for name in ("payer", "writing_desk", "slow", "ask"):
        assert page.get_by_role("link", name=name, exact=True).count() == 1
    assert page.get_by_text("A writer drafts, an editor tightens").count() == 1
    page.wait_for_selector('img[alt="Diagram of review"]')
    shot(page, "gallery")
    link.click()
    page.get_by_label("Input").wait_for()
    assert page.get_by_role("button", name="Run").count() == 1
    assert page.locator('[data-node-id="review"][data-status="idle"]').count() == 1


def test_run_an_approval_from_the_playground_and_read_the_output(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/review")
    page.get_by_label("Input").fill("ledgers")
    shot(page, "playground")
    page.get_by_role("button", name="Run").click()
    expect_status(page, "write", "completed")
    expect_status(page, "review", "waiting")
    assert page.locator('[data-edge="write→review"]').get_attribute("data-count") == "1"
    page.get_by_role("button", name="Approve").wait_for()
    shot(page, "run-waiting")
    page.get_by_label("Reason (optional)").fill("ship it")
    page.get_by_role("button", name="Approve").click()
    outputs = page.get_by_role("region", name="Outputs")
    outputs.get_by_text("published: Ledgers (ship it)").wait_for()
    expect_status(page, "review", "completed")
    assert page.get_by_role("button", name="Approve").count() == 0
    shot(page, "run-done")


def test_a_tool_call_is_approved_and_the_agent_reports_it(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/payer")
    page.get_by_label("Input").fill("Pay alice 250 EUR")
    page.get_by_role("button", name="Run").click()
    form = page.get_by_role("form", name=re.compile("Request"))
    form.get_by_text("transfer").first.wait_for()
    assert '\\"amount\\": 250' in form.inner_text() or '"amount": 250' in form.inner_text()
    form.get_by_role("button", name="Approve").click()
    page.get_by_role("region", name="Outputs").get_by_text("sent 250 EUR to alice").first.wait_for()


def test_a_typed_answer_is_sent_from_the_answer_field(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/ask")
    page.get_by_label("Input").fill("Ada")
    page.get_by_role("button", name="Run").click()
    page.get_by_text("What is Ada's favourite colour?").wait_for()
    assert page.get_by_role("button", name="Approve").count() == 0
    page.get_by_label("Answer").fill("teal")
    page.get_by_role("button", name="Send").click()
    page.get_by_role("region", name="Outputs").get_by_text("colour: teal").wait_for()


def test_reload_mid_run_and_the_live_view_carries_on(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/slow")
    page.get_by_label("Input").fill("go")
    page.get_by_role("button", name="Run").click()
    expect_status(page, "first", "completed")
    page.reload()
    expect_status(page, "first", "completed")  # rebuilt from the stream's replay
    page.get_by_role("region", name="Outputs").get_by_text("GO A B C").wait_for(timeout=30_000)
    for node in ("first", "second", "third", "last"):
        expect_status(page, node, "completed")
    assert page.locator('[data-edge="third→last"]').get_attribute("data-count") == "1"


def test_after_a_restart_the_run_is_in_the_history(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/review")
    page.get_by_label("Input").fill("restarts")
    page.get_by_role("button", name="Run").click()
    page.get_by_role("button", name="Approve").wait_for()
    run_id = page.url.split("#/runs/")[1]
    studio.restart()
    page.goto(studio.url + "/#/runs")
    page.get_by_role("link", name=run_id).wait_for()
    shot(page, "runs")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile("status=completed"))
    page.get_by_text("0 runs").wait_for()
    page.get_by_label("Status").select_option("awaiting_input")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name=run_id).click()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("region", name="Outputs").get_by_text("published: Restarts").wait_for()
    # spans live in the studio's memory: only the part after the restart is traced, and it says so
    trace = page.get_by_role("region", name="Trace")
    trace.get_by_text("Part of this run ran before this studio process started").wait_for()
    assert trace.locator('tr[data-span="workflow.run"]').count() == 1


def test_fork_from_a_checkpoint_runs_again_from_there(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/review")
    page.get_by_label("Input").fill("forks")
    page.get_by_role("button", name="Run").click()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("region", name="Outputs").get_by_text("published: Forks").wait_for()
    original = page.url.split("#/runs/")[1]
    checkpoints = page.get_by_role("region", name="Checkpoints")
    checkpoints.get_by_role("button", name="Fork").first.wait_for()
    shot(page, "checkpoints")
    # the checkpoint after the draft was written: the fork asks again, and this time we reject
    written = checkpoints.locator("li", has_text="superstep 1 ").first
    written.get_by_role("button", name="Fork").click()
    page.wait_for_url(re.compile(re.escape(original + ".fork-")))
    page.get_by_role("button", name="Reject").click()
    page.get_by_role("region", name="Outputs").get_by_text("rejected: Forks").wait_for()
    with urllib.request.urlopen(f"{studio.url}/api/runs/{original}") as response:
        assert json.load(response)["outputs"] == ["published: Forks (no note)"]


def test_every_request_the_page_makes_goes_to_the_studio(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/")
    page.get_by_role("link", name="review", exact=True).click()
    page.get_by_label("Input").fill("origins")
    page.get_by_role("button", name="Run").click()
    page.get_by_role("button", name="Approve").click()
    page.get_by_role("region", name="Outputs").get_by_text("published").wait_for()
    page.get_by_role("link", name="Runs").click()
    page.get_by_role("table").wait_for()
    assert page.requested, "the page made no requests at all?"
    foreign = [url for url in page.requested if not url.startswith(studio.url + "/")]
    assert foreign == []


def test_narrow_window_and_keyboard(browser: Any, studio: Studio) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 800})
    page = context.new_page()
    try:
        page.goto(studio.url + "/")
        page.get_by_role("link", name="ask", exact=True).wait_for()
        for _ in range(40):  # tab to the "ask" link and follow it with Enter
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "ask":
                break
        page.keyboard.press("Enter")
        page.get_by_label("Input").focus()
        page.keyboard.type("Grace")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")  # the Run button
        page.get_by_label("Answer").wait_for()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"the page scrolls sideways in a narrow window ({width}px)"
        shot(page, "narrow-run")
    finally:
        context.close()


def test_fork_with_an_edited_state_value_changes_the_outcome(page: Any, studio: Studio) -> None:
    page.goto(studio.url + "/#/w/judge")
    page.get_by_label("Input").fill("5")
    page.get_by_role("button", name="Run").click()
    outputs = page.get_by_role("region", name="Outputs")
    outputs.get_by_text("5 is small (threshold 10)").wait_for()
    original = page.url.split("#/runs/")[1]
    checkpoints = page.get_by_role("region", name="Checkpoints")
    after_setup = checkpoints.locator("li", has_text="superstep 1 ").first
    after_setup.get_by_role("button", name="State").click()
    threshold = page.get_by_label("threshold", exact=True)
    assert threshold.input_value() == "10"
    assert "setup → decide: 5" in checkpoints.inner_text()  # the message waiting there
    shot(page, "checkpoint-state")
    threshold.fill("1")
    page.get_by_role("button", name="Fork with these values").click()
    page.wait_for_url(re.compile(re.escape(original + ".fork-")))
    page.get_by_role("region", name="Outputs").get_by_text("5 is big (threshold 1)").wait_for()
    compare = page.get_by_role("region", name="Compare with the original")
    compare.get_by_text("5 is small (threshold 10)").wait_for()
    assert compare.get_by_text("5 is big (threshold 1)").count() == 1
    shot(page, "fork-compare")
    with urllib.request.urlopen(f"{studio.url}/api/runs/{original}") as response:
        assert json.load(response)["outputs"] == ["5 is small (threshold 10)"]


def test_a_magentic_run_shows_its_plan_rounds_and_agents_messages(
    page: Any, studio: Studio
) -> None:
    page.goto(studio.url + "/#/w/magentic_team")
    page.get_by_label("Input").fill("Find the median of 3, 1, 2 and check it.")
    page.get_by_role("button", name="Run").click()
    ledger = page.get_by_role("region", name="Ledger")
    ledger.get_by_text("Facts and plan").wait_for(timeout=60_000)
    ledger.get_by_text("Round 1").wait_for(timeout=60_000)
    page.locator('[data-status="completed"], [data-status="waiting"]').first.wait_for()
    messages = page.get_by_role("region", name="Messages")
    assert messages.locator("article.bubble").count() >= 1
    turns = page.get_by_role("region", name="Model calls")
    turns.get_by_text(re.compile(r"researcher: \d+ tokens in, \d+ out")).first.wait_for()
    shot(page, "magentic")


def test_a_magentic_plan_review_is_its_own_form_approve_or_revise(
    page: Any, studio: Studio
) -> None:
    page.goto(studio.url + "/#/w/reviewed_team")
    page.get_by_label("Input").fill("Which warehouse shipped the most in Q1 2024?")
    page.get_by_role("button", name="Run").click()
    review = page.get_by_role("form", name=re.compile("^Plan review"))
    review.get_by_role("heading", name="Review the plan").wait_for(timeout=60_000)
    # the manager's facts and plan requests are model calls in the run's trace
    trace = page.get_by_role("region", name="Trace")
    trace.locator('tr[data-span^="chat "]').nth(1).wait_for()
    plan = review.get_by_label("Plan", exact=True)
    assert "researcher:" in plan.input_value()
    assert review.get_by_label("Answer").count() == 0  # not the generic answer form
    review.get_by_role("button", name="Revise").click()
    review.get_by_role("alert").filter(has_text="Edit the plan").wait_for()  # nothing to send yet
    plan.fill(plan.input_value() + "\n- critic: say which figures were adjusted")
    review.get_by_text("You changed the plan").wait_for()
    shot(page, "plan-review")
    review.get_by_role("button", name="Revise").click()
    revised = page.get_by_role("form", name=re.compile("^Plan review"))
    revised.get_by_role("heading", name="Review the revised plan").wait_for(timeout=60_000)
    shot(page, "plan-review-revised")
    revised.get_by_role("button", name="Approve").click()
    ledger = page.get_by_role("region", name="Ledger")
    ledger.get_by_text("Round 1").first.wait_for(timeout=60_000)
    assert page.get_by_role("form", name=re.compile("^Plan review")).count() == 0
    page.get_by_role("button", name="Cancel").click()
