"""Workflows the service tests serve: a pipeline, a human approval, a slow loop, typed input."""

from __future__ import annotations

import os
from dataclasses import dataclass

import anyio

from builders import WorkflowBuilder
from workflow import Executor, Workflow, WorkflowContext, executor, handler, response_handler


@dataclass(frozen=True)
class Question:
    text: str


@dataclass(frozen=True)
class Decision:
    approved: bool
    note: str = ""


@dataclass(frozen=True)
class Order:
    item: str
    qty: int


@dataclass(frozen=True)
class Tick:
    n: int
    limit: int


@executor
async def upper(text: str) -> str:
    return text.upper()


@executor
async def exclaim(text: str) -> str:
    return text + "!"


@executor
async def finish(text: str) -> str:
    return f"<{text}>"


class Approver(Executor):
    """Asks for a Decision on its input, then outputs the verdict."""

    @handler
    async def on(self, topic: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"ship {topic}?"), response_type=Decision)

    @response_handler
    async def on_reply(self, request: Question, answer: Decision, ctx: WorkflowContext) -> None:
        verdict = "approved" if answer.approved else "rejected"
        await ctx.yield_output(f"{request.text} {verdict} {answer.note}".strip())


class Looper(Executor):
    """Counts to ``limit`` one superstep at a time, sleeping ``SERVICE_TEST_TICK`` seconds each."""

    @handler
    async def start(self, limit: int, ctx: WorkflowContext) -> None:
        await ctx.send_message(Tick(0, limit))

    @handler
    async def tick(self, tick: Tick, ctx: WorkflowContext) -> None:
        await anyio.sleep(float(os.environ.get("SERVICE_TEST_TICK", "0.05")))
        await ctx.set_state("count", tick.n + 1)
        if tick.n + 1 >= tick.limit:
            await ctx.yield_output(tick.n + 1)
        else:
            await ctx.send_message(Tick(tick.n + 1, tick.limit))


@executor
async def describe_order(order: Order) -> str:
    return f"{order.qty} x {order.item}"


class Chatter(Executor):
    """Emits ``n`` outputs of ~2 KB in one superstep: a stream of many events."""

    @handler
    async def on(self, n: int, ctx: WorkflowContext) -> None:
        for i in range(n):
            await ctx.yield_output(f"{i:06d}" + "x" * 2000)


FAKE_KEY = "sk-test1234567890abcdefSECRET"


@executor
async def leak(text: str) -> str:
    raise ValueError(f"upstream refused api_key={FAKE_KEY} (Authorization: Bearer {FAKE_KEY})")


def pipeline() -> Workflow:
    return WorkflowBuilder(start=upper, name="pipeline").add_chain([upper, exclaim, finish]).build()


def approval() -> Workflow:
    return WorkflowBuilder(
        start=Approver("approver"), name="approval", types=[Question, Decision]
    ).build()


def slow() -> Workflow:
    looper = Looper("looper")
    return (
        WorkflowBuilder(start=looper, name="slow", types=[Tick], max_supersteps=10_000)
        .add_edge(looper, looper)
        .build()
    )


def orders() -> Workflow:
    return WorkflowBuilder(start=describe_order, name="orders", types=[Order]).build()


def chatty() -> Workflow:
    return WorkflowBuilder(start=Chatter("chatter"), name="chatty").build()


@executor
async def echo(value: dict[str, object]) -> dict[str, object]:
    return value


def echoes() -> Workflow:
    return WorkflowBuilder(start=echo, name="echo").build()


def leaky() -> Workflow:
    return WorkflowBuilder(start=leak, name="leaky").build()


def all_workflows() -> list[Workflow]:
    return [pipeline(), approval(), slow(), orders(), chatty(), leaky(), echoes()]
