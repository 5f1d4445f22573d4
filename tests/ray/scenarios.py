"""The core scenarios, each a function building a fresh workflow (executors that keep state,
such as scripted clients, must not be shared between the backends compared)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builders import GroupChatBuilder, MagenticBuilder, MaxMessages, WorkflowBuilder
from executors import (
    ChatAgent,
    FunctionAgent,
    LedgerEntry,
    MagenticContext,
    MagenticManager,
    ProgressLedger,
    ScriptedChatClient,
    TaskLedger,
    WorkflowExecutor,
)
from workflow import (
    Case,
    Default,
    Executor,
    RetryPolicy,
    Workflow,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)


@executor
async def inc(x: int) -> int:
    return x + 1


@executor
async def double(x: int) -> int:
    return x * 2


@executor
async def show(x: int) -> str:
    return f"value {x}"


def chain() -> Workflow:
    a, b, c = inc, double, show
    return WorkflowBuilder(start=a).add_chain([a, b, c]).build()


@executor(id="split")
async def split(x: int) -> int:
    return x


@executor(id="left")
async def left(x: int) -> int:
    return x + 100


@executor(id="right")
async def right(x: int) -> int:
    return x + 200


@executor(id="join")
async def join(xs: list[int]) -> str:
    return f"sum {sum(xs)}"


def fan_out_in() -> Workflow:
    return (
        WorkflowBuilder(start=split)
        .add_fan_out_edges(split, [left, right])
        .add_fan_in_edges([left, right], join)
        .build()
    )


@executor(id="small")
async def small(x: int) -> str:
    return f"small {x}"


@executor(id="big")
async def big(x: int) -> str:
    return f"big {x}"


def switch() -> Workflow:
    start = inc
    return (
        WorkflowBuilder(start=start)
        .add_switch_case_edge_group(start, [Case(lambda n: n < 5, small), Default(big)])
        .build()
    )


@executor(id="count")
async def count(x: int, ctx: WorkflowContext[int]) -> None:
    if x >= 5:
        await ctx.yield_output(f"stopped at {x}")
    else:
        await ctx.send_message(x + 1)


def cycle() -> Workflow:
    return WorkflowBuilder(start=count).add_edge(count, count, condition=lambda n: n < 6).build()


@dataclass(frozen=True)
class Question:
    text: str


class Asker(Executor):
    @handler
    async def on(self, topic: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"approve {topic}?"), response_type=bool)

    @response_handler
    async def on_answer(self, request: Question, answer: bool, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {'yes' if answer else 'no'}"


@executor(id="shout")
async def shout(line: str) -> str:
    return line.upper()


def human() -> Workflow:
    asker = Asker("asker")
    return WorkflowBuilder(start=asker).add_edge(asker, shout).build()


def nested() -> Workflow:
    child = WorkflowBuilder(start=inc, name="child").add_chain([inc, double]).build()
    outer = WorkflowExecutor(child, id="outer")
    return WorkflowBuilder(start=outer).add_edge(outer, show).build()


def bump(path: str) -> int:
    """Count one more attempt in ``path``; return how many there were, this one included."""
    with open(path, "a") as f:
        f.write("x")
    with open(path) as f:
        return len(f.read())


class Flaky(Executor):
    """Fails its first two attempts of a run, keyed by a file (the attempts may run in
    different worker processes, so nothing in memory can count them)."""

    def __init__(self, marker: str) -> None:
        super().__init__("flaky")
        self.marker = marker

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        tries = bump(self.marker)
        if tries < 3:
            raise RuntimeError(f"attempt {tries} fails")
        await ctx.send_message(x)


def retries(marker: str) -> Workflow:
    flaky = Flaky(marker)
    return (
        WorkflowBuilder(start=flaky)
        .add_executor(flaky, retry=RetryPolicy(max_attempts=3, initial_delay=0.01))
        .add_edge(flaky, show)
        .build()
    )


@executor(id="boom")
async def boom(x: int) -> int:
    raise ValueError(f"cannot handle {x}")


def failing() -> Workflow:
    return WorkflowBuilder(start=boom).add_edge(boom, show).build()


def _ledger(speaker: str, *, satisfied: bool) -> ProgressLedger:
    return ProgressLedger(
        is_request_satisfied=LedgerEntry(satisfied, "judged"),
        is_in_loop=LedgerEntry(False, "judged"),
        is_progress_being_made=LedgerEntry(True, "judged"),
        next_speaker=LedgerEntry(speaker, "best placed"),
        instruction_or_question=LedgerEntry("carry on", "next step"),
    )


class TwoRounds(MagenticManager):
    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        return TaskLedger(f"facts about {ctx.task}", "- alice, then bob")

    async def replan(self, ctx: MagenticContext) -> TaskLedger:
        return await self.plan(ctx)

    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        speaker = ["alice", "bob"][ctx.round_count % 2]
        return _ledger(speaker, satisfied=ctx.round_count >= 3)

    async def final_answer(self, ctx: MagenticContext) -> str:
        return f"[{ctx.stop_reason}] {ctx.history[-1].text}"


def _echo(name: str) -> FunctionAgent:
    return FunctionAgent(name, f"{name} helps", lambda ms: f"{name} saw {len(ms)}")


def magentic() -> Workflow:
    return MagenticBuilder(participants=[_echo("alice"), _echo("bob")], manager=TwoRounds()).build()


def group_chat() -> Workflow:
    agents = [
        ChatAgent(
            name,
            f"{name} talks",
            "Be brief.",
            ScriptedChatClient([f"{name} {i}" for i in range(3)]),
        )
        for name in ("ann", "ben")
    ]
    return GroupChatBuilder(agents, termination=MaxMessages(5)).build()


SCENARIOS: dict[str, tuple[Callable[[], Workflow], Any]] = {
    "chain": (chain, 3),
    "fan_out_in": (fan_out_in, 1),
    "switch": (switch, 10),
    "cycle": (cycle, 0),
    "human": (human, "deploy"),
    "nested": (nested, 4),
    "failing": (failing, 7),
    "magentic": (magentic, "write a haiku"),
    "group_chat": (group_chat, "say hello"),
}
