"""State and message isolation (API.md, "Streams, errors, state").

A value read with ``ctx.get_state`` (or ``get_executor_state``) or received as a message may
be mutated by the handler without changing committed state or another executor's view; if
the handler then fails, the committed state is exactly as before. The same holds for a reply:
a ``@response_handler`` gets its own copies of the request payload and the answer, so the
caller's pending request and a retry see them whole. Immutable values are not copied (the
hot path pays one type check).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest

from builders import WorkflowBuilder
from workflow import (
    Executor,
    InMemoryCheckpointStore,
    RetryPolicy,
    RunStatus,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)
from workflow._isolate import isolated

pytestmark = pytest.mark.anyio


@dataclass
class Basket:
    items: list[str] = field(default_factory=list)


async def test_mutating_state_then_failing_leaves_committed_state_as_it_was() -> None:
    attempts = {"n": 0}

    @executor(id="seed")
    async def seed(x: int, ctx: WorkflowContext[int]) -> int:
        await ctx.set_state("basket", Basket(["apple"]))
        await ctx.set_state("tags", {"a": [1]})
        return x

    @executor(id="spoil")
    async def spoil(x: int, ctx: WorkflowContext[int]) -> int:
        attempts["n"] += 1
        basket = await ctx.get_state("basket")
        basket.items.append(f"rotten {attempts['n']}")
        tags = await ctx.get_state("tags")
        tags["a"].append(2)
        if attempts["n"] < 3:
            raise RuntimeError("dropped the basket")
        return x

    @executor(id="look")
    async def look(x: int, ctx: WorkflowContext) -> None:
        await ctx.yield_output(((await ctx.get_state("basket")).items, await ctx.get_state("tags")))

    wf = (
        WorkflowBuilder(start=seed, name="spoil", types=[Basket])
        .add_chain([seed, spoil, look])
        .add_executor(spoil, retry=RetryPolicy(max_attempts=3, initial_delay=0.0))
        .build()
    )
    result = await wf.run(1)
    assert result.status is RunStatus.COMPLETED, result.error
    # each failed attempt started from the committed basket, and the successful one's
    # mutation (never written back with set_state) did not reach the next executor either
    assert result.outputs == [(["apple"], {"a": [1]})]


async def test_a_failure_after_mutating_state_keeps_it_for_resume() -> None:
    calls = {"n": 0}

    @executor(id="seed")
    async def seed(x: int, ctx: WorkflowContext[int]) -> int:
        await ctx.set_state("log", ["start"])
        return x

    @executor(id="boom")
    async def boom(x: int, ctx: WorkflowContext) -> None:
        calls["n"] += 1
        log = await ctx.get_state("log")
        await ctx.yield_output(list(log))
        log.clear()
        if calls["n"] == 1:
            raise ValueError("after clearing")

    wf = WorkflowBuilder(start=seed, name="boom").add_edge(seed, boom).build()
    result = await wf.run(1, run_id="b")
    assert result.status is RunStatus.FAILED
    again = await wf.resume("b")
    assert again.status is RunStatus.COMPLETED, again.error
    assert again.outputs == [["start"]]  # the failed attempt's clear() reached nothing


async def test_fan_out_gives_each_target_its_own_message() -> None:
    @executor(id="src")
    async def src(x: int) -> dict[str, list[int]]:
        return {"values": [x]}

    class Mutator(Executor):
        @handler
        async def on(self, msg: dict[str, list[int]], ctx: WorkflowContext) -> None:
            msg["values"].append(99)
            await ctx.yield_output(("mutator", msg["values"]))

    class Reader(Executor):
        @handler
        async def on(self, msg: dict[str, list[int]], ctx: WorkflowContext) -> None:
            await ctx.yield_output(("reader", msg["values"]))

    mutator, reader = Mutator("mutator"), Reader("reader")
    wf = WorkflowBuilder(start=src, name="fan").add_fan_out_edges(src, [mutator, reader]).build()
    result = await wf.run(7)
    assert sorted(result.outputs) == [("mutator", [7, 99]), ("reader", [7])]


async def test_a_message_mutated_by_a_failed_attempt_is_whole_on_retry() -> None:
    seen: list[list[str]] = []

    @executor(id="src")
    async def src(x: int) -> list[str]:
        return ["a", "b"]

    @executor(id="eat")
    async def eat(items: list[str]) -> int:
        seen.append(list(items))
        items.pop()
        if len(seen) < 2:
            raise RuntimeError("again")
        return len(items)

    wf = (
        WorkflowBuilder(start=src, name="eat")
        .add_edge(src, eat)
        .add_executor(eat, retry=RetryPolicy(max_attempts=2, initial_delay=0.0))
        .build()
    )
    result = await wf.run(0)
    assert result.outputs == [1]
    assert seen == [["a", "b"], ["a", "b"]]


async def test_executor_state_is_isolated_too() -> None:
    class Counter(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            history = await ctx.get_executor_state("history", [])
            history.append(x)  # mutated but never written back: not committed
            if x == 0:
                await ctx.set_executor_state("history", history)
            await ctx.yield_output(list(history))
            if x < 2:
                await ctx.send_message(x + 1, target=ctx.executor_id)

    wf = WorkflowBuilder(start=Counter("count"), name="count").build()
    result = await wf.run(0)
    assert result.outputs == [[0], [0, 1], [0, 2]]


class Spoiler(Executor):
    """Asks with a mutable payload; its response handler mutates both, failing ``fails`` times."""

    def __init__(self, id: str, fails: int) -> None:
        super().__init__(id=id)
        self.fails = fails
        self.seen: list[tuple[dict[str, list[int]], list[str]]] = []

    @handler
    async def on(self, x: int, ctx: WorkflowContext) -> None:
        await ctx.request_info({"items": [1, 2]}, response_type=list)

    @response_handler
    async def reply(
        self, asked: dict[str, list[int]], answer: list[str], ctx: WorkflowContext
    ) -> None:
        self.seen.append(({"items": list(asked["items"])}, list(answer)))
        asked["items"].append(99)
        answer.append("spoiled")
        if len(self.seen) <= self.fails:
            raise RuntimeError("dropped the answer")
        await ctx.yield_output((asked["items"], answer))


@pytest.mark.parametrize("with_store", [False, True])
async def test_a_reply_mutated_by_a_failed_handler_is_whole_for_the_caller_and_resume(
    with_store: bool,
) -> None:
    spoiler = Spoiler("ask", fails=1)
    store = InMemoryCheckpointStore() if with_store else None
    wf = WorkflowBuilder(start=spoiler, name="reply", checkpoint_store=store).build()
    paused = await wf.run(0, run_id="r")
    (pending,) = paused.pending_requests
    answer = ["yes"]
    failed = await wf.resume("r", responses={pending.request_id: answer})
    assert failed.status is RunStatus.FAILED
    # what the caller holds is untouched: the pending request and the answer it gave
    assert pending.payload == {"items": [1, 2]}
    assert answer == ["yes"]
    again = await wf.resume("r")  # the kept answer is delivered again, whole
    assert again.status is RunStatus.COMPLETED, again.error
    assert spoiler.seen == [({"items": [1, 2]}, ["yes"])] * 2
    assert again.outputs == [([1, 2, 99], ["yes", "spoiled"])]
    assert pending.payload == {"items": [1, 2]}


@pytest.mark.parametrize("with_store", [False, True])
async def test_a_reply_mutated_by_a_failed_attempt_is_whole_on_retry(with_store: bool) -> None:
    spoiler = Spoiler("ask", fails=2)
    store = InMemoryCheckpointStore() if with_store else None
    wf = (
        WorkflowBuilder(start=spoiler, name="reply", checkpoint_store=store)
        .add_executor(spoiler, retry=RetryPolicy(max_attempts=3, initial_delay=0.0))
        .build()
    )
    paused = await wf.run(0, run_id="r")
    (pending,) = paused.pending_requests
    answer = ["yes"]
    done = await wf.resume("r", responses={pending.request_id: answer})
    assert done.status is RunStatus.COMPLETED, done.error
    assert spoiler.seen == [({"items": [1, 2]}, ["yes"])] * 3
    assert pending.payload == {"items": [1, 2]}
    assert answer == ["yes"]


def test_immutable_values_pass_through_and_others_are_copied() -> None:
    text, number, atoms = "x" * 100, 10**30, (1, "a", None)
    assert isolated(text) is text
    assert isolated(number) is number
    assert isolated(atoms) is atoms
    nested = (1, [2])
    copied = isolated(nested)
    assert copied == nested
    assert copied is not nested
    assert copied[1] is not nested[1]
    basket = Basket(["a"])
    assert isolated(basket) == basket
    assert isolated(basket) is not basket
    lock: Any = threading.Lock()
    assert isolated(lock) is lock  # cannot be copied: passed as it is
