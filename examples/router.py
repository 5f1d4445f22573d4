"""A router with switch-case edges and a guarded loop.

Tickets are classified; bugs go round a fix-and-retest loop until the test passes (at most
three tries, guarded by a condition), everything else is answered directly.

Run: .venv/bin/python examples/router.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from builders import WorkflowBuilder
from workflow import Case, Default, RunStatus, WorkflowContext, executor


@dataclass(frozen=True)
class Ticket:
    text: str
    kind: str = ""
    attempts: int = 0


@executor
async def classify(text: str) -> Ticket:
    kind = "bug" if "crash" in text else "question" if text.endswith("?") else "other"
    return Ticket(text, kind)


@executor
async def answer(t: Ticket) -> str:
    return f"answered: {t.text}"


@executor
async def triage(t: Ticket) -> str:
    return f"filed for later: {t.text}"


@executor
async def fix(t: Ticket) -> Ticket:
    return Ticket(t.text, t.kind, t.attempts + 1)


@executor
async def retest(t: Ticket, ctx: WorkflowContext[Ticket]) -> None:
    if t.attempts >= 2:  # pretend the second fix works
        await ctx.yield_output(f"fixed after {t.attempts} attempts: {t.text}")
    else:
        await ctx.send_message(t)


def needs_another_try(t: Ticket) -> bool:
    return t.attempts < 3


workflow = (
    WorkflowBuilder(start=classify, name="router")
    .add_switch_case_edge_group(
        classify,
        [
            Case(lambda t: t.kind == "bug", fix),
            Case(lambda t: t.kind == "question", answer),
            Default(triage),
        ],
    )
    .add_edge(fix, retest)
    .add_edge(retest, fix, condition=needs_another_try)
    .build()
)

if __name__ == "__main__":
    for text in ("the app crashes on save", "how do I export?", "nice colours"):
        result = workflow.run_sync(text)
        if result.status is not RunStatus.COMPLETED:
            sys.exit(f"run for {text!r} {result.status.value}: {result.error}")
        print(result.outputs[0])
