"""A workflow nested as one node of another (WorkflowExecutor).

The inner workflow reviews a draft; the outer one writes the draft, sends it through the
review sub-workflow, and publishes. The inner executors' events stream through the parent
with namespaced ids (``review/critic``).

Run: .venv/bin/python examples/nested.py
"""

from __future__ import annotations

import sys

from builders import WorkflowBuilder
from executors import WorkflowExecutor
from workflow import RunStatus, events, executor


@executor
async def critic(draft: str) -> str:
    return draft.replace("teh", "the")


@executor
async def polish(draft: str) -> str:
    return draft.strip().capitalize() + "."


review = WorkflowBuilder(start=critic, name="review").add_edge(critic, polish).build()


@executor
async def write(topic: str) -> str:
    return f"  teh story of {topic}"


@executor
async def publish(text: str) -> str:
    return f"PUBLISHED: {text}"


reviewer = WorkflowExecutor(review, id="review")
workflow = (
    WorkflowBuilder(start=write, name="newsroom").add_chain([write, reviewer, publish]).build()
)

if __name__ == "__main__":
    result = workflow.run_sync("ledgers")
    if result.status is not RunStatus.COMPLETED:
        sys.exit(f"run {result.status.value}: {result.error}")
    ran = [e.executor_id for e in result.events if isinstance(e, events.ExecutorCompleted)]
    print("executors:", ", ".join(ran))
    print(result.outputs[0])
