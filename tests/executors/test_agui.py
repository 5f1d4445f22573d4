"""``run_events`` in process: its ``async with`` block owns the workflow run.

The served route is tested end to end in ``test_serve_interop.py``; here, what the route
relies on: the events of a run in order, a bad resume as ``RUN_ERROR``, and leaving the block
early cancelling the run (recorded ``cancelled``, nothing left running).
"""

from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.to_thread
import pytest
from ag_ui.core import EventType, RunAgentInput

from builders import WorkflowBuilder
from executors._agui import run_events
from workflow import InMemoryCheckpointStore, RunStatus, executor

pytestmark = pytest.mark.anyio


def _input(run_id: str, **extra: Any) -> RunAgentInput:
    body: dict[str, Any] = {
        "threadId": "t",
        "runId": run_id,
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": "cat"}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    body.update(extra)
    return RunAgentInput.model_validate(body)


@executor(id="shout")
def shout(text: str) -> str:
    return text.upper()


@executor(id="exclaim")
def exclaim(text: str) -> str:
    return text + "!"


async def test_events_of_a_run_in_order() -> None:
    wf = WorkflowBuilder(start=shout, name="echo").add_edge(shout, exclaim).build()
    async with run_events(wf, _input("r1")) as agui:
        kinds = [event.type async for event in agui]
    assert kinds[0] is EventType.RUN_STARTED
    assert kinds[-1] is EventType.RUN_FINISHED
    assert kinds.count(EventType.STEP_STARTED) == 2


async def test_a_resume_nobody_waits_for_is_a_run_error() -> None:
    wf = WorkflowBuilder(start=shout, name="echo").build()
    resume = [{"interruptId": "x", "status": "resolved", "payload": "y"}]
    async with run_events(wf, _input("r2", resume=resume), paused={}) as agui:
        seen = [event async for event in agui]
    assert [e.type for e in seen] == [EventType.RUN_STARTED, EventType.RUN_ERROR]
    assert "LookupError" in seen[-1].message  # type: ignore[attr-defined]


async def test_leaving_the_block_early_cancels_the_run() -> None:
    started = threading.Event()  # set on the backend's loop, which may be another thread's

    @executor(id="wait")
    async def wait(text: str) -> str:
        started.set()
        await anyio.sleep_forever()
        return text

    store = InMemoryCheckpointStore()
    wf = WorkflowBuilder(start=wait, name="stuck", checkpoint_store=store).build()
    async with run_events(wf, _input("r3")) as agui:
        async for event in agui:
            if event.type is EventType.STEP_STARTED:
                assert await anyio.to_thread.run_sync(started.wait, 60)
                break
    # the block waited for the run to stop: it is recorded, and its lock is free again
    (info,) = await store.list_runs()
    assert (info.run_id, info.status) == ("agui-r3", RunStatus.CANCELLED.value)
    with anyio.fail_after(10):
        async with store.lock_run("agui-r3"):
            pass
