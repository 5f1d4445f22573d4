"""examples/magentic_team.py runs offline, and the same file drives a real OpenAI endpoint
(here a local OpenAI-compatible server) when OPENAI_API_KEY is set."""

from __future__ import annotations

import json
import os
import pathlib
import sys

import anyio
import pytest

from tests.executors.openai_server import OpenAITestServer, Reply
from workflow import SQLiteCheckpointStore

pytestmark = pytest.mark.anyio
EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "magentic_team.py"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env.update(extra)
    return env


async def _run(cwd: pathlib.Path, env: dict[str, str]) -> str:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, str(EXAMPLE)], cwd=cwd, env=env, check=False
        )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    return out


async def _runs(cwd: pathlib.Path) -> list[str]:
    store = SQLiteCheckpointStore(cwd / ".ledgerflow" / "runs.db")
    try:
        return [r.status for r in await store.list_runs()]
    finally:
        await store.aclose()


@pytest.mark.timeout(90)
async def test_offline_demo_solves_the_task_with_every_member(tmp_path: pathlib.Path) -> None:
    out = await _run(tmp_path, _env())
    for line in (
        "== round 1 (stall 0) -> researcher:",
        "-> coder:",
        "-> code:",
        "winner: north by 17.33 pallets/month over south",
        "-> critic:",
        "== final answer (satisfied)",
        "North had the highest average monthly shipments in Q1 2024, beating South by 17.33",
        "checkpoints: 10 in sqlite:///.ledgerflow/runs.db",
    ):
        assert line in out
    diagrams = list((tmp_path / ".ledgerflow").glob("magentic_team.*"))
    assert len(diagrams) == 1
    assert f"diagram: {diagrams[0].relative_to(tmp_path)}" in out
    assert await _runs(tmp_path) == ["completed"]


def _ledger(speaker: str, satisfied: bool) -> str:
    entry = {"answer": False, "reason": "r"}
    return json.dumps(
        {
            "is_request_satisfied": {"answer": satisfied, "reason": "r"},
            "is_in_loop": entry,
            "is_progress_being_made": {"answer": True, "reason": "r"},
            "next_speaker": {"answer": speaker, "reason": "r"},
            "instruction_or_question": {"answer": "Quote the figures.", "reason": "r"},
        }
    )


@pytest.mark.timeout(90)
async def test_same_file_talks_to_an_openai_endpoint(tmp_path: pathlib.Path) -> None:
    with OpenAITestServer() as server:
        search = ("call-1", "search_documents", json.dumps({"query": "Q1 2024 shipments"}))
        server.enqueue(
            Reply("1. FACTS GIVEN OR VERIFIED: none"),  # manager: facts
            Reply("- researcher: look it up"),  # manager: plan
            Reply(_ledger("researcher", False)),  # manager: round 1
            Reply(tool_calls=(search,)),  # researcher asks the tool
            Reply("North leads."),  # researcher answers
            Reply(_ledger("researcher", True)),  # manager: round 2, satisfied
            Reply("North had the highest average."),  # manager: final answer
        )
        env = _env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=server.base_url)
        out = await _run(tmp_path, env)
        requests = server.completion_requests()
    assert server.errors == []
    assert "== final answer (satisfied)\nNorth had the highest average." in out
    assert len(requests) == 7
    ledger_request = requests[2].body
    assert ledger_request["response_format"]["type"] == "json_schema"
    assert ledger_request["response_format"]["json_schema"]["name"] == "progress_ledger"
    assert ledger_request["max_tokens"] == 400
    assert requests[0].body["model"] == "gpt-4o-mini"
    tool_result = requests[4].body["messages"][-1]
    assert tool_result["role"] == "tool"
    assert (
        "warehouse_north.md: Q1 2024 shipments (pallets): January 1240" in (tool_result["content"])
    )
    assert await _runs(tmp_path) == ["completed"]
