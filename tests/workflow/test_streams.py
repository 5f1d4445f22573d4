"""Streams as context managers: ``async with wf.run_stream(x) as events``.

Leaving the block early cancels the run (recorded ``CANCELLED`` in the store) and leaves no
task behind; errors come out of ``async for`` as themselves, never inside an
``ExceptionGroup``; plain ``async for`` keeps working. Runs on asyncio and trio.
"""

from __future__ import annotations

import ast
import contextvars
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest

from builders import WorkflowBuilder
from tests.loop_event import LoopEvent
from workflow import (
    CheckpointError,
    Executor,
    InMemoryCheckpointStore,
    RunStatus,
    Workflow,
    WorkflowContext,
    WorkflowError,
    events,
    executor,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


class Gate(Executor):
    """Forwards its input once ``opened`` is set; until then the run is mid-superstep."""

    def __init__(self, id: str) -> None:
        super().__init__(id=id)
        self.entered = LoopEvent()
        self.opened = LoopEvent()

    @handler
    async def on_int(self, n: int, ctx: WorkflowContext[int]) -> int:
        self.entered.set()
        await self.opened.wait()
        return n + 1


@executor(id="first")
async def first(n: int) -> int:
    return n


def gated(store: Any = None) -> tuple[Workflow, Gate]:
    gate = Gate("gate")
    wf = WorkflowBuilder(start=first, checkpoint_store=store).add_edge(first, gate).build()
    return wf, gate


def task_count() -> int:
    return len(anyio.get_running_tasks())


async def host_up() -> None:
    """Start this loop's plain-form host (one task per loop, kept until the loop ends)."""

    @executor(id="noop")
    async def noop(n: int) -> None:
        return None

    await consume_plain(WorkflowBuilder(start=noop).build().run_stream(0))


def finished(seen: list[events.WorkflowEvent]) -> events.RunFinished:
    last = seen[-1]
    assert isinstance(last, events.RunFinished)
    return last


async def consume(stream: Any) -> list[events.WorkflowEvent]:
    async with stream:
        return [e async for e in stream]


async def consume_plain(stream: Any) -> list[events.WorkflowEvent]:
    return [e async for e in stream]


async def status_of(store: InMemoryCheckpointStore, run_id: str) -> str:
    return {r.run_id: r.status for r in await store.list_runs()}[run_id]


async def test_async_with_streams_the_same_events_as_run() -> None:
    wf, gate = gated()
    gate.opened.set()
    async with wf.run_stream(1, run_id="same") as stream:
        streamed = [e async for e in stream]
    ran = await wf.run(1, run_id="same")
    assert streamed == ran.events
    assert isinstance(streamed[0], events.RunStarted)
    assert isinstance(streamed[-1], events.RunFinished)
    assert streamed[-1].status is RunStatus.COMPLETED


async def test_leaving_the_block_early_cancels_the_run_and_leaves_no_task() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    before = task_count()
    seen: list[events.WorkflowEvent] = []
    async with wf.run_stream(1, run_id="early") as stream:
        async for event in stream:
            seen.append(event)
            if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
                await gate.entered.wait()
                break
    # the block waited for the run to stop: nothing is left running, the store says why
    assert task_count() == before
    assert await status_of(store, "early") == "cancelled"
    latest = await store.latest("early")
    assert latest is not None
    assert latest.superstep == 1  # the last checkpoint is intact
    assert not any(isinstance(e, events.RunFinished) for e in seen)
    # and it resumes from there
    gate.opened.set()
    done = await wf.resume("early")
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == [2]


async def test_an_error_in_the_block_cancels_the_run_and_propagates_as_itself() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    before = task_count()

    async def break_down() -> None:
        async with wf.run_stream(1, run_id="oops") as stream:
            async for event in stream:
                if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
                    await gate.entered.wait()
                    raise LookupError("consumer broke")

    with pytest.raises(LookupError, match="consumer broke"):
        await break_down()
    assert task_count() == before
    assert await status_of(store, "oops") == "cancelled"


async def test_cancelling_the_consumer_cancels_the_run() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    before = task_count()
    with anyio.CancelScope() as scope:
        async with wf.run_stream(1, run_id="outer") as stream:
            async for event in stream:
                if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
                    await gate.entered.wait()
                    scope.cancel()
                    await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert task_count() == before
    assert await status_of(store, "outer") == "cancelled"


async def test_leaving_after_run_finished_does_not_cancel() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    gate.opened.set()
    async with wf.run_stream(1, run_id="whole") as stream:
        async for event in stream:
            if isinstance(event, events.RunFinished):
                break
    assert await status_of(store, "whole") == "completed"


async def test_errors_come_out_of_async_for_as_themselves() -> None:
    wf, _ = gated()
    with pytest.raises(TypeError, match="start executor 'first' accepts int"):
        await consume(wf.run_stream("not an int"))
    with pytest.raises(CheckpointError, match="'ghost'"):
        await consume(wf.resume_stream("ghost"))
    with pytest.raises(TypeError, match="accepts int"):  # the plain form too
        await consume_plain(wf.run_stream("not an int"))


async def test_a_stream_runs_once() -> None:
    wf, gate = gated()
    gate.opened.set()
    stream = wf.run_stream(1)
    assert finished(await consume(stream)).status is RunStatus.COMPLETED
    with pytest.raises(WorkflowError, match="already started"):
        await consume(stream)


class Ask(Executor):
    @handler
    async def on_text(self, text: str, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(text, response_type=str)

    @response_handler
    async def on_reply(self, request: str, reply: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"{request} {reply}")


@pytest.mark.parametrize("with_store", [False, True])
async def test_resume_stream_as_a_context_manager(with_store: bool) -> None:
    store = InMemoryCheckpointStore() if with_store else None
    wf = WorkflowBuilder(start=Ask(id="ask"), checkpoint_store=store).build()
    paused = finished(await consume(wf.run_stream("name?", run_id="hitl")))
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    resumed = await consume(wf.resume_stream("hitl", responses={request.request_id: "Ada"}))
    outputs = [e.data for e in resumed if isinstance(e, events.OutputEmitted)]
    assert outputs == ["name? Ada"]
    assert finished(resumed).status is RunStatus.COMPLETED


async def test_leaving_resume_stream_early_cancels_the_continuation() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    async with wf.run_stream(1, run_id="again") as stream:
        async for event in stream:
            if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
                await gate.entered.wait()
                break
    assert await status_of(store, "again") == "cancelled"
    gate.entered = LoopEvent()
    before = task_count()
    async with wf.resume_stream("again") as stream:
        async for event in stream:
            if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
                await gate.entered.wait()
                break
    assert task_count() == before
    assert await status_of(store, "again") == "cancelled"


async def test_plain_async_for_still_works_and_aclose_cancels() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    await host_up()
    before = task_count()
    stream = wf.run_stream(1, run_id="plain")
    async for event in stream:
        if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
            await gate.entered.wait()
            break
    await stream.aclose()  # cancels and waits for the run to stop
    assert task_count() == before
    assert await status_of(store, "plain") == "cancelled"
    gate.opened.set()
    plain = await consume_plain(wf.run_stream(1, run_id="plain2"))
    assert finished(plain).status is RunStatus.COMPLETED


async def eventually(check: Any) -> None:
    """Wait until ``check()`` is true: the dropped plain-form run stops on its own time."""
    with anyio.fail_after(10):
        while not await check():  # noqa: ASYNC110 - no event to wait on: the stream is gone
            await anyio.sleep(0.01)


async def test_breaking_out_of_plain_async_for_cancels_the_run_without_aclose() -> None:
    store = InMemoryCheckpointStore()
    wf, gate = gated(store)
    await host_up()
    before = task_count()
    # inside scopes of the consumer's own, which a run hosted by the consumer's task would
    # leave corrupted after a ``break``
    async with anyio.create_task_group():
        with anyio.CancelScope():
            async for event in wf.run_stream(1, run_id="dropped"):
                if isinstance(event, events.ExecutorInvoked) and event.executor_id == "gate":
                    await gate.entered.wait()
                    break  # the stream is dropped here: nobody calls aclose

    async def cancelled() -> bool:
        runs = {r.run_id: r.status for r in await store.list_runs()}
        return runs.get("dropped") == "cancelled" and task_count() == before

    await eventually(cancelled)
    gate.opened.set()
    done = await wf.resume("dropped")  # the run released its lock and its last checkpoint
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == [2]


async def test_plain_streams_share_one_host_task_and_thread_per_loop() -> None:
    inside: list[int] = []
    everyone, release = LoopEvent(), LoopEvent()

    @executor(id="wait")
    async def wait(n: int) -> None:
        inside.append(n)
        if len(inside) == 20:
            everyone.set()
        await release.wait()

    wf = WorkflowBuilder(start=wait).build()
    await host_up()
    tasks = task_count()
    threads = {t.ident for t in threading.enumerate()}
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(consume_plain, wf.run_stream(i))
            await everyone.wait()  # all 20 runs are going at once
            assert [t.name for t in threading.enumerate() if t.ident not in threads] == []
            release.set()
    assert task_count() == tasks  # each run's task ended; the loop's host is the one left


SEEN_BY_RUN: contextvars.ContextVar[str] = contextvars.ContextVar("seen_by_run", default="")


async def test_both_forms_see_the_consumers_context_variables() -> None:
    @executor(id="peek")
    async def peek(n: int, ctx: WorkflowContext) -> None:
        await ctx.yield_output(SEEN_BY_RUN.get())

    wf = WorkflowBuilder(start=peek).build()
    SEEN_BY_RUN.set("consumer's")
    plain = await consume_plain(wf.run_stream(1))
    structured = await consume(wf.run_stream(1))
    for seen in (plain, structured):
        assert [e.data for e in seen if isinstance(e, events.OutputEmitted)] == ["consumer's"]


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_a_plain_stream_still_running_when_the_loop_ends_is_cancelled_quietly(loop: str) -> None:
    # kept referenced (so ``__del__`` does not cancel it) and never closed: the loop's own
    # shutdown cancels the run, which records CANCELLED, and nothing is reported as an error
    code = f"""
import anyio, builders, workflow
store = workflow.InMemoryCheckpointStore()
kept = []
@workflow.executor(id="stuck")
async def stuck(x: int) -> int:
    await anyio.sleep_forever()
    return x
async def main():
    wf = builders.WorkflowBuilder(start=stuck, checkpoint_store=store).build()
    kept.append(wf.run_stream(1, run_id="left"))
    async for event in kept[0]:
        if isinstance(event, workflow.events.ExecutorInvoked):
            break
anyio.run(main, backend="{loop}")
async def status():
    return [r.status for r in await store.list_runs()]
print(anyio.run(status))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.strip() == "['cancelled']"


# --------------------------------------------------------------------------- anyio only

# module -> why it may touch an event loop library directly. Nothing else may import asyncio,
# trio or anyio's private modules (``anyio._backends``, ``anyio._core``), at module level or
# inside a function, by ``import``, ``from ... import`` or ``importlib.import_module``.
BACKEND_ALLOWED = {
    "workflow/_ray/_backend.py": "a Ray task thread keeps one asyncio loop between tasks (no "
    "thread hop per invocation); Ray's own futures are asyncio's, and handlers still see anyio",
}


def _is_backend(name: str) -> bool:
    parts = name.split(".")
    if parts[0] in ("asyncio", "trio"):
        return True
    return parts[0] == "anyio" and any(p.startswith("_") for p in parts[1:])


def _backend_imports(source: str, filename: str = "<source>") -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Call) and node.args:  # importlib.import_module("asyncio")
            func, first = node.func, node.args[0]
            callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if callee not in ("import_module", "__import__"):
                continue
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                continue
            names = [first.value]
        else:
            continue
        found.update(name for name in names if _is_backend(name))
    return found


@pytest.mark.parametrize(
    "line",
    [
        "import asyncio",
        "import trio.lowlevel",
        "from asyncio import get_running_loop",
        "import anyio._backends._asyncio",
        "from anyio._backends import _asyncio",
        "from anyio import _backends",
        "from anyio._core._eventloop import get_async_backend",
        "def later():\n    import asyncio",
        "importlib.import_module('anyio._backends._trio')",
        "__import__('asyncio')",
    ],
)
def test_the_backend_check_catches(line: str) -> None:
    assert _backend_imports(line)


@pytest.mark.parametrize(
    "line",
    [
        "import anyio",
        "import anyio.from_thread, anyio.lowlevel",
        "from anyio.streams.memory import MemoryObjectSendStream",
        "from anyio import to_thread",
        "import asyncpg",
        "import trio_compat",
    ],
)
def test_the_backend_check_passes(line: str) -> None:
    assert not _backend_imports(line)


def test_the_packages_use_anyio_not_a_backend() -> None:
    offenders = {}
    for package in ("workflow", "builders", "executors", "visualize"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            found = _backend_imports(path.read_text(), str(path))
            if found and rel not in BACKEND_ALLOWED:
                offenders[rel] = sorted(found)
    assert offenders == {}, (
        f"use anyio's public API instead (or allow-list with a reason): {offenders}"
    )
    for rel in BACKEND_ALLOWED:  # the allow-list stays true
        found = _backend_imports((ROOT / rel).read_text(), rel)
        assert found == {"asyncio"}, f"{rel} no longer needs its exception (or needs more): {found}"


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_a_workflow_built_in_a_loop_loads_its_anyio_backend_before_its_first_run(
    loop: str,
) -> None:
    # the first concurrent superstep of a process would otherwise pay ~20 ms of imports; the
    # loop is started by its own library (``anyio.run`` would load the backend itself)
    code = f"""
import sys, {loop}, workflow, builders
module = "anyio._backends._{loop}"
assert module not in sys.modules, "loaded by import workflow"
async def main():
    @workflow.executor(id="one")
    async def one(x: int) -> int:
        return x
    assert module not in sys.modules, "loaded by the loop"
    builders.WorkflowBuilder(start=one).build()
    print(module in sys.modules)
{"asyncio.run(main())" if loop == "asyncio" else "trio.run(main)"}
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
