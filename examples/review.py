"""A draft that a person approves: the workflow the README serves over HTTP.

Run: .venv/bin/python examples/review.py                    (in-process: pause, approve, publish)
Serve: ledgerflow serve examples/review.py examples/pipeline.py   (then see README, "Serve")
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import anyio

from builders import WorkflowBuilder
from workflow import Executor, RunStatus, WorkflowContext, executor, handler, response_handler


@dataclass(frozen=True)
class Draft:
    title: str
    text: str


@dataclass(frozen=True)
class Decision:
    """What the reviewer answers: approve or not, with an optional note."""

    approved: bool
    note: str = ""


@executor
async def write(topic: str) -> Draft:
    return Draft(title=topic.title(), text=f"Everything you need to know about {topic}.")


class Review(Executor):
    """Asks a person for a Decision on each draft; publishes approved ones."""

    @handler
    async def on_draft(self, draft: Draft, ctx: WorkflowContext) -> None:
        await ctx.request_info(draft, response_type=Decision)

    @response_handler
    async def on_decision(self, draft: Draft, decision: Decision, ctx: WorkflowContext) -> None:
        if decision.approved:
            await ctx.yield_output(f"published: {draft.title} ({decision.note or 'no note'})")
        else:
            await ctx.yield_output(f"rejected: {draft.title} ({decision.note or 'no note'})")


workflow = (
    WorkflowBuilder(start=write, name="review", types=[Draft, Decision])
    .add_edge(write, Review("review"))
    .build()
)


async def main() -> int:
    paused = await workflow.run("ledgers")
    [request] = paused.pending_requests
    print(paused.status, request.payload)
    done = await workflow.resume(
        paused.run_id, responses={request.request_id: Decision(True, "ship it")}
    )
    print(done.status, done.outputs)
    return 0 if done.status is RunStatus.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(anyio.run(main))
