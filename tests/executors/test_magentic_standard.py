"""StandardMagenticManager on a ScriptedChatClient: full runs, bad ledgers, retries, parsing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from builders import MagenticBuilder
from executors import (
    ChatAgent,
    ChatDelta,
    ChatMessage,
    ChatResponse,
    FinalAnswer,
    FunctionAgent,
    MagenticLedgerError,
    MagenticPrompts,
    MagenticTokenLimits,
    ProgressLedgerUpdated,
    ScriptedChatClient,
    StandardMagenticManager,
    ToolSpec,
    Usage,
    progress_ledger_format,
)
from executors._magentic_ledger import PROGRESS_FIELDS, parse_progress_ledger
from workflow import RunStatus, events

pytestmark = pytest.mark.anyio
TEAM = {"alice": "researcher", "bob": "reviewer"}


def ledger_json(
    speaker: Any = "alice",
    instruction: str = "look it up",
    *,
    satisfied: bool = False,
    loop: bool = False,
    progress: bool = True,
) -> str:
    return json.dumps(
        {
            "is_request_satisfied": {"answer": satisfied, "reason": "checked"},
            "is_in_loop": {"answer": loop, "reason": "checked"},
            "is_progress_being_made": {"answer": progress, "reason": "checked"},
            "next_speaker": {"answer": speaker, "reason": "best placed"},
            "instruction_or_question": {"answer": instruction, "reason": "next step"},
        }
    )


def team() -> list[FunctionAgent]:
    return [
        FunctionAgent("alice", "finds facts", lambda ms: "alice: the answer is 42"),
        FunctionAgent("bob", "reviews", lambda ms: "bob: 42 checks out"),
    ]


def scripted(*progress: str | ChatResponse) -> ScriptedChatClient:
    """Facts, plan, the given progress replies, then a final answer."""
    return ScriptedChatClient(
        ["1. FACTS GIVEN OR VERIFIED: none", "- alice looks it up", *progress, "It is 42."]
    )


async def run(client: Any, **options: Any) -> Any:
    manager = StandardMagenticManager(client, **options)
    return await MagenticBuilder(participants=team(), manager=manager).build().run("what is it?")


async def test_full_run_with_chat_agents_driven_by_messages() -> None:
    def brain(messages: list[ChatMessage]) -> str:
        last = messages[-1].text
        if "take stock" in last and "FACTS TO LOOK UP" in last:
            return "1. FACTS GIVEN OR VERIFIED: the question\n2. FACTS TO LOOK UP: the value"
        if "bullet list" in last and "plan" in last:
            return "- alice: look up the value\n- bob: check it"
        if "five keys" in last:
            said = {m.author for m in messages if m.role == "user" and m.author}
            if "bob" in said:
                return ledger_json(satisfied=True)
            if "alice" in said:
                return f"Sure.\n```json\n{ledger_json('bob', 'check the value')}\n```"
            return ledger_json("alice", "look up the value")
        if "final answer" in last:
            return "The value is 42, checked by bob."
        raise AssertionError(f"unexpected prompt: {last[:200]}")

    brain_client = ScriptedChatClient(brain)
    alice = ChatAgent(
        "alice", "looks things up", "You research.", ScriptedChatClient(lambda ms: "It is 42.")
    )
    bob = ChatAgent("bob", "checks", "You review.", ScriptedChatClient(lambda ms: "Confirmed."))
    manager = StandardMagenticManager(brain_client)
    wf = MagenticBuilder(participants=[alice, bob], manager=manager).build()
    result = await wf.run("What is the value?")
    result.raise_for_status()
    assert result.outputs == ["The value is 42, checked by bob."]
    (final,) = [e for e in result.events if isinstance(e, FinalAnswer)]
    assert final.reason == "satisfied"
    progress = [e for e in result.events if isinstance(e, ProgressLedgerUpdated)]
    assert [p.ledger.speakers for p in progress[:2]] == [["alice"], ["bob"]]
    deltas = [e for e in result.events if isinstance(e, events.AgentDelta)]
    assert {d.agent_name for d in deltas} == {"alice", "bob"}
    # the facts prompt carries the task; the progress prompt names the team
    first = brain_client.calls[0]
    assert first[0].role == "system"
    assert "What is the value?" in first[-1].text
    progress_call = brain_client.calls[2]
    assert "'alice', 'bob'" in progress_call[-1].text
    # bob's model saw alice's answer and the orchestrator's instruction
    bob_call = bob.chat_client.calls[0]  # type: ignore[attr-defined]
    assert [m.text for m in bob_call][-2:] == ["It is 42.", "check the value"]


async def test_malformed_ledger_is_retried_with_the_error_fed_back() -> None:
    literal = ledger_json(satisfied=True).replace("true", "True").replace("false", "False")
    literal = literal.replace('"', "'")
    client = scripted(
        "I think alice should go next.",
        "Here you go:\n" + ledger_json("alice") + "\nHope that helps.",
        literal,
    )
    result = await run(client)
    result.raise_for_status()
    assert result.outputs == ["It is 42."]
    retry = client.calls[3]
    assert retry[-2] == ChatMessage("assistant", "I think alice should go next.")
    assert "cannot be used" in retry[-1].text
    assert "no JSON object" in retry[-1].text
    assert client.remaining == 0


async def test_ledger_naming_an_unknown_speaker_is_retried() -> None:
    client = scripted(
        ledger_json("mallory"), ledger_json(["alice", "bob"]), ledger_json(satisfied=True)
    )
    result = await run(client)
    result.raise_for_status()
    feedback = client.calls[3][-1].text
    assert "'mallory'" in feedback
    assert "'alice'" in feedback
    updates = [e for e in result.events if isinstance(e, ProgressLedgerUpdated)]
    assert updates[0].ledger.speakers == ["alice", "bob"]


async def test_truncated_reply_counts_as_bad() -> None:
    good = ledger_json("alice")
    cut = ChatResponse(good[:60], finish_reason="length")
    also_cut = ChatResponse(good, finish_reason="length")  # even complete-looking JSON
    client = scripted(cut, also_cut, good, ledger_json(satisfied=True))
    result = await run(client)
    result.raise_for_status()
    assert "cut off at the token limit" in client.calls[3][-1].text
    assert "cut off at the token limit" in client.calls[4][-1].text


async def test_exhausted_retries_fail_the_run_with_a_typed_error() -> None:
    client = scripted(*["not json"] * 3, ledger_json("nobody"))
    result = await run(client, max_ledger_retries=3)
    assert result.status is RunStatus.FAILED
    error = result.error.__cause__
    assert isinstance(error, MagenticLedgerError)
    assert error.attempts == 4
    assert len(error.errors) == 4
    assert "'nobody'" in error.errors[-1]
    assert error.last_reply == ledger_json("nobody")
    assert "max_ledger_retries=3" in str(error)
    assert client.remaining == 1  # never asked for more than 1 + max_ledger_retries ledgers


async def test_zero_retries_fail_at_once() -> None:
    client = scripted("nope")
    result = await run(client, max_ledger_retries=0)
    assert isinstance(result.error.__cause__, MagenticLedgerError)
    assert len(client.calls) == 3


async def test_truncated_text_answers_are_reasked_then_fail() -> None:
    cut = ChatResponse("1. FACTS GIVEN", finish_reason="length")
    client = ScriptedChatClient([cut, "facts", "- plan", ledger_json(satisfied=True), "done"])
    result = await run(client)
    result.raise_for_status()
    assert "briefer" in client.calls[1][-1].text
    failing = ScriptedChatClient([cut, cut])
    result = await run(failing, max_ledger_retries=1)
    assert isinstance(result.error.__cause__, MagenticLedgerError)
    assert "facts" in str(result.error.__cause__)


class Recording:
    """A ChatClient that records response_format and delegates to a script."""

    def __init__(self, inner: ScriptedChatClient) -> None:
        self.inner = inner
        self.formats: list[Any] = []

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        self.formats.append(response_format)
        return await self.inner.get_response(messages, tools=tools, max_tokens=max_tokens)

    def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        return self.inner.get_streaming_response(messages, tools=tools, max_tokens=max_tokens)


async def test_json_mode_usage_and_overridden_prompts() -> None:
    client = Recording(scripted(ledger_json(satisfied=True)))
    prompts = MagenticPrompts(final_answer="Wrap up {task} because: {stop_note}")
    manager = StandardMagenticManager(client, prompts=prompts)
    wf = MagenticBuilder(participants=team(), manager=manager, token_budget=10_000).build()
    result = await wf.run("what is it?")
    result.raise_for_status()
    assert client.formats == [None, None, progress_ledger_format(["alice", "bob"]), None]
    last = client.inner.calls[-1][-1].text
    assert last == "Wrap up what is it? because: The team judged the request to be met."


async def test_each_request_kind_has_its_token_limit_and_the_ledger_its_schema() -> None:
    client = scripted(ledger_json(satisfied=True))
    limits = MagenticTokenLimits(facts=11, plan=22, ledger=33, final_answer=44)
    result = await run(client, max_tokens=limits)
    result.raise_for_status()
    assert client.limits == [11, 22, 33, 44]
    fmt = client.formats[2]
    assert isinstance(fmt, dict)
    assert fmt["type"] == "json_schema"
    schema = fmt["json_schema"]["schema"]
    assert sorted(schema["required"]) == sorted(PROGRESS_FIELDS)
    speaker = schema["properties"]["next_speaker"]["properties"]["answer"]["anyOf"]
    assert speaker[0] == {"type": "string", "enum": ["alice", "bob"]}
    flag = schema["properties"]["is_in_loop"]["properties"]["answer"]
    assert flag == {"type": "boolean"}
    assert (await run(scripted(ledger_json(satisfied=True)))).status is RunStatus.COMPLETED
    custom = scripted(ledger_json(satisfied=True))
    await run(custom, response_format={"type": "json_object"})
    assert custom.formats[2] == {"type": "json_object"}
    assert StandardMagenticManager(custom).max_tokens == MagenticTokenLimits()
    with pytest.raises(ValueError, match="ledger must be >= 1"):
        MagenticTokenLimits(ledger=0)


async def test_manager_tokens_count_against_the_budget() -> None:
    wordy = ChatResponse(ledger_json("alice"), usage=Usage(input_tokens=500), finish_reason="stop")
    client = scripted(wordy)
    manager = StandardMagenticManager(client)
    wf = MagenticBuilder(participants=team(), manager=manager, token_budget=100).build()
    result = await wf.run("what is it?")
    assert result.status is RunStatus.COMPLETED
    (final,) = [e for e in result.events if isinstance(e, FinalAnswer)]
    assert final.reason == "budget"
    assert "used up its budget" in client.calls[-1][-1].text


def test_parse_progress_ledger_is_robust_but_strict() -> None:
    fenced = f"```json\n{ledger_json('bob')}\n```"
    assert parse_progress_ledger(fenced, TEAM).speakers == ["bob"]
    single = json.loads(ledger_json(["bob"]))
    assert parse_progress_ledger(json.dumps(single), TEAM).next_speaker.answer == "bob"
    yes = json.loads(ledger_json())
    yes["is_in_loop"]["answer"] = "No"
    yes["is_progress_being_made"]["answer"] = "yes"
    parsed = parse_progress_ledger(json.dumps(yes), TEAM)
    assert parsed.is_in_loop.answer is False
    assert parsed.is_progress_being_made.answer is True
    assert not parsed.stalled
    satisfied = json.loads(ledger_json(satisfied=True, speaker=""))
    assert parse_progress_ledger(json.dumps(satisfied), TEAM).satisfied

    missing = json.loads(ledger_json())
    del missing["next_speaker"]
    missing["is_in_loop"] = {"answer": False}
    with pytest.raises(ValueError, match="next_speaker is missing") as info:
        parse_progress_ledger(json.dumps(missing), TEAM)
    assert 'is_in_loop must be an object with "answer" and "reason"' in str(info.value)
    maybe = json.loads(ledger_json())
    maybe["is_request_satisfied"]["answer"] = "maybe"
    with pytest.raises(ValueError, match="true or false"):
        parse_progress_ledger(json.dumps(maybe), TEAM)
    with pytest.raises(ValueError, match="empty"):
        parse_progress_ledger(ledger_json(instruction=" "), TEAM)
    with pytest.raises(ValueError, match="not an object"):
        parse_progress_ledger("[1, 2]", TEAM)
    with pytest.raises(ValueError, match="no JSON object"):
        parse_progress_ledger("{oops", TEAM)
    with pytest.raises(ValueError, match=r">= 0"):
        StandardMagenticManager(ScriptedChatClient([]), max_ledger_retries=-1)


async def test_plan_review_feedback_redoes_only_the_plan() -> None:
    from executors import PlanReviewResponse

    client = ScriptedChatClient(
        ["facts v1", "- alice alone", "- alice, then bob checks", ledger_json(satisfied=True), "ok"]
    )
    manager = StandardMagenticManager(client)
    wf = MagenticBuilder(participants=team(), manager=manager, plan_review=True).build()
    paused = await wf.run("what is it?")
    (request,) = paused.pending_requests
    again = await wf.resume(
        paused.run_id, responses={request.request_id: PlanReviewResponse.revise("add a check")}
    )
    (second,) = again.pending_requests
    assert second.payload.ledger.facts == "facts v1"
    assert second.payload.ledger.plan == "- alice, then bob checks"
    assert "add a check" in client.calls[2][-1].text
    assert client.calls[2][-2] == ChatMessage("assistant", "facts v1")
    done = await wf.resume(
        again.run_id, responses={second.request_id: PlanReviewResponse.approve()}
    )
    done.raise_for_status()
    assert "- alice, then bob checks" in client.calls[3][1].text  # the new plan opens the history


async def test_stall_replan_updates_facts_and_plan_from_the_history() -> None:
    client = scripted(
        ledger_json("alice"),
        ledger_json("alice", progress=False),
        "facts v2: alice keeps failing",
        "- bob instead",
        ledger_json(satisfied=True),
    )
    manager = StandardMagenticManager(client)
    wf = MagenticBuilder(participants=team(), manager=manager, max_stall_count=0).build()
    result = await wf.run("what is it?")
    result.raise_for_status()
    facts_call, plan_call = client.calls[4], client.calls[5]
    assert "has not managed to finish" in facts_call[-1].text
    assert any("alice: the answer is 42" in m.text for m in facts_call)  # saw what happened
    assert "what got in the way" in plan_call[-1].text
    assert "facts v2: alice keeps failing" in client.calls[6][1].text  # the new ledger message
    assert len(client.calls[6]) == 3  # system, the new ledger, the prompt: history was cleared
