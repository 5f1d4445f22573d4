"""Concurrent: every participant answers the same task at once; replies in participant order."""

from __future__ import annotations

import anyio
import pytest

from builders import ConcurrentBuilder
from executors import ChatAgent, ChatMessage, FunctionAgent, ScriptedChatClient
from tests.loop_event import LoopEvent
from workflow import GraphValidationError, RunStatus

pytestmark = pytest.mark.anyio


def texts(messages: list[ChatMessage]) -> list[tuple[str | None, str]]:
    return [(m.author, m.text) for m in messages]


async def test_participants_really_run_at_the_same_time() -> None:
    arrived = 0
    everyone_here = LoopEvent()

    def meeting(name: str) -> FunctionAgent:
        async def answer(messages: list[ChatMessage]) -> str:
            nonlocal arrived
            arrived += 1
            if arrived == 3:
                everyone_here.set()
            # Only returns if all three are in flight together; in turn, it would time out.
            with anyio.fail_after(5):
                await everyone_here.wait()
            return f"{name} on {messages[-1].text}"

        return FunctionAgent(name, "", answer)

    wf = ConcurrentBuilder([meeting("a"), meeting("b"), meeting("c")]).build()
    result = await wf.run("the plan")
    assert result.status is RunStatus.COMPLETED, result.error
    (replies,) = result.outputs
    assert texts(replies) == [
        ("a", "a on the plan"),
        ("b", "b on the plan"),
        ("c", "c on the plan"),
    ]


async def test_replies_come_in_participant_order_whoever_finishes_first() -> None:
    hare_done = LoopEvent()
    finished: list[str] = []

    def runner(name: str) -> FunctionAgent:
        async def answer(messages: list[ChatMessage]) -> str:
            if name == "tortoise":
                await hare_done.wait()
            finished.append(name)
            hare_done.set()
            return name

        return FunctionAgent(name, "", answer)

    wf = ConcurrentBuilder([runner("tortoise"), runner("hare")]).build()
    (replies,) = (await wf.run("race")).outputs
    assert finished == ["hare", "tortoise"]
    assert [m.author for m in replies] == ["tortoise", "hare"]


async def test_a_function_aggregator_sync_or_async() -> None:
    team = [FunctionAgent(n, "", lambda m, n=n: f"{n}!") for n in ("x", "y")]

    def join(replies: list[ChatMessage]) -> str:
        return " + ".join(r.text for r in replies)

    async def count(replies: list[ChatMessage]) -> int:
        return len(replies)

    assert (await ConcurrentBuilder(team, join).build().run("go")).outputs == ["x! + y!"]
    assert (await ConcurrentBuilder(team, count).build().run("go")).outputs == [2]


async def test_an_agent_aggregator_reads_the_task_and_every_reply() -> None:
    client = ScriptedChatClient(["both agree"])
    judge = ChatAgent("judge", "merges answers", "Merge the answers.", client)
    team = [FunctionAgent(n, "", lambda m, n=n: f"{n} says yes") for n in ("x", "y")]
    result = await ConcurrentBuilder(team, judge).build().run("agree?")
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == [ChatMessage("assistant", "both agree", author="judge")]
    assert [(m.role, m.text) for m in client.calls[0]] == [
        ("system", "Merge the answers."),
        ("user", "agree?"),
        ("user", "x says yes"),
        ("user", "y says yes"),
    ]


async def test_a_model_participant_replies_with_its_final_message() -> None:
    client = ScriptedChatClient(["first thought", "second thought"])
    thinker = ChatAgent("thinker", "", "", client)
    (replies,) = (
        await ConcurrentBuilder([thinker, FunctionAgent("echo", "", lambda m: "echo")])
        .build()
        .run("q")
    ).outputs
    assert texts(replies) == [("thinker", "first thought"), ("echo", "echo")]


async def test_one_participant_and_failures() -> None:
    solo = ConcurrentBuilder([FunctionAgent("solo", "", lambda m: "alone")]).build()
    assert texts((await solo.run("q")).outputs[0]) == [("solo", "alone")]

    def broken(messages: list[ChatMessage]) -> str:
        raise RuntimeError("boom")

    result = (
        await ConcurrentBuilder(
            [FunctionAgent("ok", "", lambda m: "ok"), FunctionAgent("bad", "", broken)]
        )
        .build()
        .run("q")
    )
    assert result.status is RunStatus.FAILED
    assert result.error is not None
    assert "bad" in str(result.error)


async def test_names_must_be_unique_and_not_taken() -> None:
    with pytest.raises(GraphValidationError, match="two participants are named 'a'"):
        ConcurrentBuilder([FunctionAgent("a", "", str), FunctionAgent("a", "", str)]).build()
    with pytest.raises(GraphValidationError, match="collector"):
        ConcurrentBuilder([FunctionAgent("collector", "", str)]).build()
    with pytest.raises(TypeError, match="aggregator"):
        ConcurrentBuilder([FunctionAgent("a", "", str)], aggregator=42).build()
