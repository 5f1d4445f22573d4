"""A run that ends without committing a superstep in this process records its real status."""

from __future__ import annotations

import pathlib

import pytest

from builders import WorkflowBuilder
from workflow import (
    Executor,
    InMemoryCheckpointStore,
    RunStatus,
    SQLiteCheckpointStore,
    WorkflowContext,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


class Asker(Executor):
    @handler
    async def on(self, topic: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(f"approve {topic}?", response_type=bool)

    @response_handler
    async def done(self, request: str, answer: bool, ctx: WorkflowContext) -> None:
        await ctx.yield_output(f"{request} {answer}")


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_fork_of_a_waiting_run_is_recorded_as_waiting(
    kind: str, tmp_path: pathlib.Path
) -> None:
    store = InMemoryCheckpointStore() if kind == "memory" else SQLiteCheckpointStore(tmp_path / "r")
    wf = WorkflowBuilder(start=Asker("asker"), checkpoint_store=store).build()
    first = await wf.run("x", run_id="r1")
    latest = (await store.list_checkpoints("r1"))[-1]
    fork = await wf.resume("r1", checkpoint_id=latest.id, state_updates={})
    assert fork.run_id != "r1"
    assert fork.status is RunStatus.AWAITING_INPUT
    statuses = {info.run_id: info.status for info in await store.list_runs()}
    assert statuses == {"r1": "awaiting_input", fork.run_id: "awaiting_input"}
    (request,) = fork.pending_requests
    done = await wf.resume(fork.run_id, responses={request.request_id: True})
    assert done.outputs == ["approve x? True"]
    assert first.status is RunStatus.AWAITING_INPUT
    if kind == "sqlite":
        await store.aclose()  # type: ignore[attr-defined]
