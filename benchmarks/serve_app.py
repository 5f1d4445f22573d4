"""Workflows the serve_* benchmarks serve (``ledgerflow serve benchmarks/serve_app.py:NAME``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from builders import WorkflowBuilder
from workflow import Executor, Workflow, WorkflowContext, executor, handler, response_handler
from workflow.events import AgentDelta


@executor
async def parse(text: str) -> str:
    return text.strip()


@executor
async def shout(text: str) -> str:
    return text.upper()


@executor
async def sign(text: str) -> str:
    return text + " -- ledgerflow"


def pipeline() -> Workflow:
    """The peers' throughput workload: a 3-node pipeline."""
    return WorkflowBuilder(start=parse, name="pipeline").add_chain([parse, shout, sign]).build()


@dataclass(frozen=True)
class Burst:
    left: int
    per_step: int


class Emitter(Executor):
    """Streams ``n`` model-token events (``AgentDelta``), ``per_step`` per superstep, each
    carrying its emit time; outputs the count at the end."""

    @handler
    async def start(self, n: int, ctx: WorkflowContext) -> None:
        await ctx.send_message(Burst(n, 100))

    @handler
    async def burst(self, b: Burst, ctx: WorkflowContext) -> None:
        for _ in range(min(b.left, b.per_step)):
            delta = AgentDelta(
                run_id=ctx.run_id,
                superstep=ctx.superstep,
                executor_id=self.id,
                text=repr(time.time()),
            )
            await ctx.add_event(delta)
        if b.left > b.per_step:
            await ctx.send_message(Burst(b.left - b.per_step, b.per_step))
        else:
            await ctx.yield_output("done")


def emitter() -> Workflow:
    e = Emitter("emitter")
    return (
        WorkflowBuilder(start=e, name="emitter", types=[Burst], max_supersteps=100_000)
        .add_edge(e, e)
        .build()
    )


class Ask(Executor):
    """Asks a person a yes/no question about its input and waits."""

    @handler
    async def on(self, n: int, ctx: WorkflowContext) -> None:
        await ctx.request_info(f"approve {n}?", response_type=bool)

    @response_handler
    async def on_reply(self, request: str, answer: bool, ctx: WorkflowContext) -> None:
        await ctx.yield_output(answer)


def ask() -> Workflow:
    return WorkflowBuilder(start=Ask("ask"), name="ask").build()
