"""The Magentic team on a real local model: ledgers in schema, limits kept, checkpoints resume."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from builders import MagenticBuilder
from executors import (
    ChatAgent,
    FinalAnswer,
    MagenticTokenLimits,
    OpenAIChatClient,
    PlanReviewRequest,
    PlanReviewResponse,
    ProgressLedgerUpdated,
    StandardMagenticManager,
)
from executors._magentic_ledger import PROGRESS_FIELDS, parse_progress_ledger
from workflow import RunStatus, SQLiteCheckpointStore, Workflow

from .conftest import Recorder

pytestmark = [pytest.mark.anyio, pytest.mark.llm, pytest.mark.timeout(900)]
TASK = "Which is heavier, a kilogram of feathers or a kilogram of iron? Answer briefly."
LIMITS = MagenticTokenLimits(facts=48, plan=48, ledger=512, final_answer=48)
REASONS = {"satisfied", "max_rounds", "max_resets", "budget"}


def team(client: Any) -> list[ChatAgent]:
    return [
        ChatAgent(
            "physicist",
            "knows about mass and weight",
            "You answer physics questions in one sentence.",
            client,
            max_tool_iterations=0,
        ),
        ChatAgent(
            "critic",
            "checks answers",
            "You check the last answer in one sentence.",
            client,
            max_tool_iterations=0,
        ),
    ]


def build(manager_client: Any, client: Any, **options: Any) -> Workflow:
    return MagenticBuilder(
        participants=team(client),
        manager=StandardMagenticManager(manager_client, max_tokens=LIMITS),
        max_stall_count=1,
        max_reset_count=1,
        **options,
    ).build()


def ledger_replies(recorder: Recorder) -> list[str]:
    return [
        response.text
        for fmt, response in recorder.exchanges
        if isinstance(fmt, dict) and fmt.get("json_schema", {}).get("name") == "progress_ledger"
    ]


async def test_the_team_runs_to_completion_with_every_ledger_in_schema(
    client: OpenAIChatClient,
) -> None:
    manager = Recorder(client)
    result = await build(manager, client, max_round_count=2).run(TASK)
    assert result.status is RunStatus.COMPLETED, result.error
    (final,) = [e for e in result.events if isinstance(e, FinalAnswer)]
    assert final.reason in REASONS
    assert result.outputs == [final.text]
    updates = [e for e in result.events if isinstance(e, ProgressLedgerUpdated)]
    assert 1 <= len(updates) <= 2  # max_round_count holds
    replies = ledger_replies(manager)
    # A reply may be asked for again (say, an empty instruction), within the retry bound...
    assert len(updates) <= len(replies) <= len(updates) * 4
    names = ["physicist", "critic"]
    for text in replies:
        # ...but every one is in schema: bare JSON, the five entries, typed answers.
        data = json.loads(text)
        assert set(data) == set(PROGRESS_FIELDS)
        assert all(set(data[key]) == {"answer", "reason"} for key in PROGRESS_FIELDS)
        assert all(isinstance(data[key]["answer"], bool) for key in PROGRESS_FIELDS[:3])
        speaker = data["next_speaker"]["answer"]
        assert set(speaker if isinstance(speaker, list) else [speaker]) <= set(names)
        assert isinstance(data["instruction_or_question"]["answer"], str)
    parsed = [parse_progress_ledger(text, dict.fromkeys(names, "")) for text in replies[-1:]]
    assert parsed == [updates[-1].ledger]
    assert client.structured_output == "json_object_schema"  # llama.cpp's way, learnt once
    assert all(r.usage.output_tokens <= 512 for _, r in manager.exchanges)


async def test_a_reviewed_plan_resumes_from_its_checkpoint(
    client: OpenAIChatClient, tmp_path: pathlib.Path
) -> None:
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    try:
        paused = await build(
            client, client, max_round_count=1, plan_review=True, checkpoint_store=store
        ).run(TASK, run_id="reviewed")
        assert paused.status is RunStatus.AWAITING_INPUT, paused.error
        (request,) = paused.pending_requests
        assert isinstance(request.payload, PlanReviewRequest)
        assert await store.list_checkpoints("reviewed")
        # a fresh workflow object, as a new process would build it, picks the run up
        done = await build(
            client, client, max_round_count=1, plan_review=True, checkpoint_store=store
        ).resume("reviewed", responses={request.request_id: PlanReviewResponse.approve()})
    finally:
        await store.aclose()
    assert done.status is RunStatus.COMPLETED, done.error
    (final,) = [e for e in done.events if isinstance(e, FinalAnswer)]
    assert final.reason in REASONS
    assert len([e for e in done.events if isinstance(e, ProgressLedgerUpdated)]) <= 1
