"""Termination conditions: each one, combinations, reasons, and state kept per run."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from builders import (
    AllOf,
    AnyOf,
    ConversationFinished,
    ConversationView,
    External,
    FunctionCallMade,
    GroupChatBuilder,
    HandoffTo,
    MaxMessages,
    SourceMatch,
    TerminationCondition,
    TextMention,
    Timeout,
    TokenBudget,
)
from executors import ChatMessage, FunctionAgent, ToolCall, Usage
from tests.loop_event import LoopEvent
from workflow import InMemoryCheckpointStore, RunResult, RunStatus
from workflow._durable import registry_for
from workflow._serde import decode

pytestmark = pytest.mark.anyio

TASK = ChatMessage("user", "the task")


def said(author: str, text: str = "", **extra: Any) -> ChatMessage:
    return ChatMessage("assistant", text, author=author, **extra)


async def run_checks(
    condition: TerminationCondition,
    turns: list[list[ChatMessage]],
    *,
    usage: list[int] | None = None,
    clock: list[float] | None = None,
) -> list[str | None]:
    """Check the task, then each turn in order; the reasons, one per check."""
    messages = [TASK]
    state = condition.initial_state()
    view = ConversationView(messages=messages, new=[TASK], now=clock[0] if clock else time.time())
    reason, state = await condition.check(view, state)
    reasons = [reason]
    for i, new in enumerate(turns):
        messages = [*messages, *new]
        view = ConversationView(
            messages=messages,
            new=new,
            usage=Usage(output_tokens=usage[i] if usage else 0),
            now=clock[i + 1] if clock else time.time(),
        )
        reason, state = await condition.check(view, state)
        reasons.append(reason)
    return reasons


async def test_max_messages_counts_the_task() -> None:
    reasons = await run_checks(MaxMessages(3), [[said("a")], [said("b")], [said("c")]])
    assert reasons[:2] == [None, None]
    assert reasons[2] == "MaxMessages(3): the conversation has 3 messages"
    assert await run_checks(MaxMessages(1), []) == [
        "MaxMessages(1): the conversation has 1 messages"
    ]


async def test_text_mention_sees_the_task_and_new_messages_only() -> None:
    condition = TextMention("DONE")
    assert await run_checks(condition, [[said("a", "not yet")], [said("b", "DONE here")]]) == [
        None,
        None,
        "TextMention('DONE'): said by 'b'",
    ]
    view = ConversationView(
        messages=[ChatMessage("user", "DONE")], new=[ChatMessage("user", "DONE")]
    )
    assert (await condition.check(view, None))[0] == "TextMention('DONE'): said by the user"
    only_b = TextMention("DONE", sources=["b"])
    assert (await run_checks(only_b, [[said("a", "DONE")], [said("b", "DONE")]]))[1:] == [
        None,
        "TextMention('DONE'): said by 'b'",
    ]


async def test_token_budget_adds_up_every_turn() -> None:
    reasons = await run_checks(
        TokenBudget(10), [[said("a")], [said("b")], [said("c")]], usage=[4, 4, 4]
    )
    assert reasons == [None, None, None, "TokenBudget(10): 12 tokens spent"]


async def test_timeout_counts_from_the_first_check() -> None:
    turns = [[said("a")], [said("b")]]
    reasons = await run_checks(Timeout(5), turns, clock=[100.0, 103.0, 105.5])
    assert reasons == [None, None, "Timeout(5): 5.5s elapsed"]


async def test_handoff_function_call_and_source_match() -> None:
    handoff = said("triage", tool_calls=(ToolCall(id="1", name="handoff_to_billing"),))
    lookup = said("billing", tool_calls=(ToolCall(id="2", name="lookup"),))
    assert (await run_checks(HandoffTo("billing"), [[said("x")], [handoff]]))[1:] == [
        None,
        "HandoffTo('billing'): 'triage' handed off to 'billing'",
    ]
    assert (await run_checks(FunctionCallMade("lookup"), [[handoff], [lookup]]))[1:] == [
        None,
        "FunctionCallMade('lookup'): 'billing' called 'lookup'",
    ]
    assert (await run_checks(FunctionCallMade(), [[handoff]]))[1] is not None
    assert (await run_checks(SourceMatch("critic"), [[said("coder")], [said("critic")]]))[1:] == [
        None,
        "SourceMatch(['critic']): 'critic' spoke",
    ]


async def test_external_stops_running_conversations_not_later_ones() -> None:
    stop = External()
    state = stop.initial_state()
    view = ConversationView(messages=[TASK], new=[TASK], run_id="r1", now=100.0)
    reason, state = await stop.check(view, state)
    assert reason is None
    stop.set()
    later = ConversationView(messages=[TASK], new=[], run_id="r1", now=time.time() + 1)
    assert (await stop.check(later, state))[0] == "External(): stopped from outside"
    # a conversation starting after set() is not affected
    fresh = ConversationView(messages=[TASK], new=[TASK], run_id="r2", now=time.time() + 10)
    assert (await stop.check(fresh, None))[0] is None
    stop.reset()
    stop.set(run_id="r3")
    targeted = ConversationView(messages=[TASK], new=[TASK], run_id="r3", now=time.time() + 10)
    assert (await stop.check(targeted, None))[0] == "External(): stopped from outside (run 'r3')"
    assert (await stop.check(fresh, None))[0] is None


async def test_functions_are_conditions_and_combine() -> None:
    def long_enough(messages: list[ChatMessage]) -> bool:
        return len(messages) >= 3

    async def says_stop(messages: list[ChatMessage]) -> str | None:
        return "asked to stop" if "stop" in messages[-1].text else None

    either = MaxMessages(100) | says_stop
    assert isinstance(either, AnyOf)
    assert (await run_checks(either, [[said("a", "stop")]]))[1] == "asked to stop"
    both = TextMention("ok") & long_enough
    assert isinstance(both, AllOf)
    reasons = await run_checks(both, [[said("a", "ok")], [said("b", "later")]])
    # "ok" held at the first turn and is remembered; the length holds one turn later
    assert reasons == [None, None, "TextMention('ok'): said by 'a' and long_enough returned True"]
    with pytest.raises(TypeError, match="cannot combine"):
        MaxMessages(2) | 3  # type: ignore[operator]


async def test_any_of_keeps_every_part_counting() -> None:
    # the budget must see every turn even while the mention decides nothing
    condition = TextMention("never") | TokenBudget(6)
    reasons = await run_checks(condition, [[said("a")], [said("b")]], usage=[3, 3])
    assert reasons == [None, None, "TokenBudget(6): 6 tokens spent"]
    flat = MaxMessages(5) | TextMention("x") | TokenBudget(3)
    assert isinstance(flat, AnyOf)
    assert len(flat.parts) == 3
    assert repr(flat) == "MaxMessages(5) | TextMention('x') | TokenBudget(3)"
    assert repr((MaxMessages(5) | TextMention("x")) & TokenBudget(3)) == (
        "(MaxMessages(5) | TextMention('x')) & TokenBudget(3)"
    )


async def test_bad_arguments_are_refused() -> None:
    for make in (
        lambda: MaxMessages(0),
        lambda: TokenBudget(-1),
        lambda: Timeout(0),
        lambda: TextMention(""),
        lambda: SourceMatch([]),
        lambda: HandoffTo(""),
    ):
        with pytest.raises(ValueError):
            make()


# --------------------------------------------------------------------------- in a group chat


def counter(name: str) -> FunctionAgent:
    return FunctionAgent(name, f"{name} speaks", lambda messages: f"{name} #{len(messages)}")


def finished(result: RunResult) -> ConversationFinished:
    (event,) = [e for e in result.events if isinstance(e, ConversationFinished)]
    return event


async def test_the_final_event_says_why_and_the_workflow_is_reusable() -> None:
    wf = GroupChatBuilder(
        [counter("a"), counter("b")], termination=MaxMessages(4) | TextMention("b #4")
    ).build()
    for run_id in ("first", "second"):  # same condition objects, fresh state per run
        result = await wf.run("go", run_id=run_id)
        assert result.status is RunStatus.COMPLETED
        event = finished(result)
        assert event.reason == "MaxMessages(4): the conversation has 4 messages"
        assert (event.messages, event.turns, event.executor_id) == (4, 3, "manager")
        assert [m.author for m in result.outputs[0]] == [None, "a", "b", "a"]


async def test_a_task_that_already_meets_the_condition_ends_at_once() -> None:
    wf = GroupChatBuilder([counter("a")], termination=TextMention("STOP")).build()
    result = await wf.run("STOP right there")
    assert [m.text for m in result.outputs[0]] == ["STOP right there"]
    assert finished(result).turns == 0


async def test_stateful_condition_state_is_checkpointed_in_executor_state() -> None:
    store = InMemoryCheckpointStore()
    both = TextMention("a #2") & MaxMessages(5)
    wf = GroupChatBuilder([counter("a"), counter("b")], termination=both, checkpoint_store=store)
    result = await wf.build().run("go", run_id="s1")
    assert finished(result).reason == (
        "TextMention('a #2'): said by 'a' and MaxMessages(5): the conversation has 5 messages"
    )
    latest = await store.latest("s1")
    assert latest is not None
    local = decode(latest.data["run"]["local"], registry_for(wf.build()))
    state = local["manager"]["termination"]
    assert state["held"][0] == "TextMention('a #2'): said by 'a'"
    assert state["held"][1] is not None
    assert both.initial_state() == {"held": [None, None], "states": [None, None]}


async def test_external_set_from_outside_stops_a_running_group_chat() -> None:
    stop = External()
    turn_started = LoopEvent()
    release = LoopEvent()

    async def slow(messages: list[ChatMessage]) -> str:
        if len(messages) == 4:  # its second turn
            turn_started.set()
            await release.wait()
        return f"slow #{len(messages)}"

    team = [counter("a"), FunctionAgent("slow", "", slow)]
    wf = GroupChatBuilder(team, termination=stop, max_rounds=50).build()
    results: list[RunResult] = []

    async def run() -> None:
        results.append(await wf.run("go"))

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            await turn_started.wait()
            stop.set()  # e.g. a Stop button, while a turn is in progress
            release.set()
    (result,) = results
    assert result.status is RunStatus.COMPLETED
    assert finished(result).reason == "External(): stopped from outside"
    assert [m.author for m in result.outputs[0]] == [None, "a", "slow", "a", "slow"]
    # the same workflow runs normally afterwards
    stop_later = await wf.run("go again")
    assert finished(stop_later).reason.startswith("max_rounds=50")
