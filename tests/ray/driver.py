"""A driver process for the driver-loss test: runs (or resumes) a durable chain on a cluster.

    python -m tests.ray.driver run|resume STORE_PATH RAY_ADDRESS LOG_PATH RUN_ID

Each step appends its id to LOG_PATH (the side effect a re-run would repeat) and takes a
moment, so the test can kill this process between two committed steps.
"""

from __future__ import annotations

import sys
import time

import anyio

from builders import WorkflowBuilder
from workflow import Executor, RayBackend, SQLiteCheckpointStore, WorkflowContext, handler

STEPS = 6


class Step(Executor):
    def __init__(self, index: int, log: str) -> None:
        super().__init__(f"step{index}")
        self.index = index
        self.log = log

    @handler
    async def on(self, value: int, ctx: WorkflowContext[int]) -> None:
        time.sleep(0.4)  # noqa: ASYNC251 - the work this step stands for
        with open(self.log, "a") as f:  # noqa: ASYNC230 - the side effect under test
            f.write(f"{self.id}\n")
        if self.index == STEPS:
            await ctx.yield_output(value * 10)
        else:
            await ctx.send_message(value + 1)


def build(store_path: str, log: str) -> object:
    steps = [Step(i, log) for i in range(1, STEPS + 1)]
    builder = WorkflowBuilder(start=steps[0], checkpoint_store=SQLiteCheckpointStore(store_path))
    return builder.add_chain(steps).build()


async def main(mode: str, store_path: str, address: str, log: str, run_id: str) -> None:
    wf: object = build(store_path, log)
    backend = RayBackend(address=address)
    if mode == "run":
        result = await wf.run(1, run_id=run_id, backend=backend)  # type: ignore[attr-defined]
    else:
        result = await wf.resume(run_id, backend=backend)  # type: ignore[attr-defined]
    sys.stdout.write(f"{result.status.value} {result.outputs}\n")


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:6])
