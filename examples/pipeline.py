"""A three-step text pipeline: the smallest useful workflow.

Run: .venv/bin/python examples/pipeline.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from builders import WorkflowBuilder
from workflow import Executor, RunStatus, WorkflowContext, executor, handler


@dataclass(frozen=True)
class Document:
    title: str
    words: list[str]


@executor
def parse(text: str) -> Document:
    """Sync functions run in a worker thread, so they never stall other executors."""
    title, _, body = text.partition("\n")
    return Document(title=title.strip(), words=body.split())


@executor
async def count(doc: Document) -> dict[str, int]:
    counts: dict[str, int] = {}
    for word in doc.words:
        counts[word.lower()] = counts.get(word.lower(), 0) + 1
    return counts


class Report(Executor):
    """A class executor: handlers are picked by the message's type."""

    @handler
    async def on_counts(self, counts: dict[str, int], ctx: WorkflowContext[str]) -> None:
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        await ctx.yield_output(", ".join(f"{w}={n}" for w, n in top))


workflow = (
    WorkflowBuilder(start=parse, name="pipeline")
    .add_chain([parse, count, Report("report")])
    .build()
)

if __name__ == "__main__":
    result = workflow.run_sync("Notes\nthe cat and the dog and the bird")
    print(result.status, result.outputs)
    sys.exit(0 if result.status is RunStatus.COMPLETED else 1)
