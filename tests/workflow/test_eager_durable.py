"""Eager runs with a checkpoint store, on every store: durable commits, crashes, resume.

A crash is an executor raising ``Crash``, a ``BaseException`` that escapes the run like a
killed process (no status is recorded; ``SystemExit`` itself would stop the test's event
loop), or a cancelled run; the store is then reopened as a new process would.
Committed executors never run again; only what was in flight does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from builders import WorkflowBuilder
from tests.conftest import backend_under_test
from tests.loop_event import LoopEvent
from workflow import (
    Executor,
    RunStatus,
    Workflow,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)
from workflow.events import CheckpointSaved, ExecutorCompleted

from .test_eager import Ask, well_formed
from .test_stores import Kit, kit  # noqa: F401  (the store fixture, parametrized over stores)

pytestmark = pytest.mark.anyio


@dataclass
class Stores:
    """The store under test, and the same store opened again as another process would."""

    store: Any
    opened: list[Any]
    kit: Kit

    def reopen(self) -> Any:
        store = self.kit.reopen()
        if store is not self.store:
            self.opened.append(store)
        return store


@pytest.fixture
async def stores(kit: Kit) -> AsyncIterator[Stores]:  # noqa: F811
    made = Stores(kit.store, [], kit)
    yield made
    for store in made.opened:
        await store.aclose()


class Crash(BaseException):
    """What a kill looks like from inside: not an ``Exception``, so nothing handles it."""


class Counted(Executor):
    """``x -> x + 1``; counts its calls; ``crash`` makes it raise ``Crash`` once."""

    def __init__(self, id: str, calls: dict[str, int], **kw: Any) -> None:
        super().__init__(id)
        self.calls = calls
        self.delay: float = kw.get("delay", 0.0)
        self.crash: set[str] = kw.get("crash", set())
        self.gate: LoopEvent | None = kw.get("gate")
        self.wait: Callable[[], Awaitable[None]] | None = kw.get("wait")

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        self.calls[self.id] = self.calls.get(self.id, 0) + 1
        if self.delay:
            await anyio.sleep(self.delay)
        if self.gate is not None:
            await self.gate.wait()
        if self.wait is not None:
            await self.wait()
        if self.id in self.crash:
            self.crash.discard(self.id)
            raise Crash(f"{self.id} crashed")
        await ctx.set_state(f"seen {self.id}", x)
        await ctx.send_message(x + 1)


async def committed(store: Any, run_id: str, executor_id: str) -> None:
    """Until ``run_id``'s latest checkpoint, or a pending write after it, holds
    ``executor_id``'s commit (a deadline: a commit that never comes fails, not hangs)."""
    with anyio.fail_after(30):
        while True:
            latest = await store.latest(run_id)
            if latest is not None:
                writes = await store.get_writes(latest.id)
                if f"seen {executor_id}" in json.dumps([latest.data["run"]["state"], writes]):
                    return
            await anyio.sleep(0.002)


def loop_bound(stores: Stores) -> None:
    """These tests' handlers read the store; PostgreSQL's pool belongs to the test's loop."""
    if stores.kit.kind == "postgres" and backend_under_test() == "threads":
        pytest.skip("on threads: a handler would use the test loop's asyncpg pool")


def branches(store: Any, calls: dict[str, int], **slow: Any) -> Workflow:
    """``start`` feeds a quick chain a1 -> a2 -> a3 and a ``slow`` step (options ``slow``)."""
    start = Counted("start", calls)
    chain = [Counted(f"a{i}", calls) for i in (1, 2, 3)]
    late = Counted("slow", calls, **slow)
    b = WorkflowBuilder(start=start, name="branches", checkpoint_store=store, scheduling="eager")
    b.add_fan_out_edges(start, [chain[0], late])
    b.add_edge(chain[0], chain[1]).add_edge(chain[1], chain[2])
    return b.build()


async def test_commits_are_durable_and_a_completed_run_is_recorded(stores: Stores) -> None:
    calls: dict[str, int] = {}
    wf = branches(stores.store, calls, delay=0.02)
    result = await wf.run(0, run_id="durable")
    assert result.status is RunStatus.COMPLETED
    assert sorted(result.outputs) == [2, 4]
    well_formed(result.events)
    history = await stores.store.list_checkpoints("durable")
    saved = [e for e in result.events if isinstance(e, CheckpointSaved)]
    assert [c.id for c in history] == [e.checkpoint_id for e in saved]
    # the first, and at most one per commit (most commits are pending writes in between)
    assert 2 <= len(history) <= 1 + len(calls)
    assert history[-1].status == "completed"
    assert [c.parent_id for c in history[1:]] == [c.id for c in history[:-1]]
    again = await branches(stores.reopen(), calls).resume("durable")
    assert again.status is RunStatus.COMPLETED
    assert sorted(again.outputs) == [2, 4]
    assert calls == {"start": 1, "a1": 1, "a2": 1, "a3": 1, "slow": 1}


async def test_a_crash_loses_only_what_was_in_flight(stores: Stores) -> None:
    loop_bound(stores)
    calls: dict[str, int] = {}
    wait = lambda: committed(stores.store, "crash", "a3")  # noqa: E731
    wf = branches(stores.store, calls, wait=wait, crash={"slow"})
    with pytest.raises((Crash, BaseExceptionGroup)):
        await wf.run(0, run_id="crash")
    assert calls == {"start": 1, "a1": 1, "a2": 1, "a3": 1, "slow": 1}
    resumed = await branches(stores.reopen(), calls).resume("crash")
    assert resumed.status is RunStatus.COMPLETED
    assert sorted(resumed.outputs) == [2, 4]
    assert calls == {"start": 1, "a1": 1, "a2": 1, "a3": 1, "slow": 2}
    well_formed(resumed.events)
    ran = [e.executor_id for e in resumed.events if isinstance(e, ExecutorCompleted)]
    assert ran == ["slow"]


async def test_a_cancelled_run_keeps_its_commits(stores: Stores) -> None:
    calls: dict[str, int] = {}
    gate = LoopEvent()
    wf = branches(stores.store, calls, gate=gate)
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await wf.run(0, run_id="cancel")

        tg.start_soon(run)
        await committed(stores.store, "cancel", "a3")  # slow waits at its gate
        tg.cancel_scope.cancel()
    gate.set()
    resumed = await branches(stores.reopen(), calls, gate=gate).resume("cancel")
    assert resumed.status is RunStatus.COMPLETED
    assert sorted(resumed.outputs) == [2, 4]
    assert calls == {"start": 1, "a1": 1, "a2": 1, "a3": 1, "slow": 2}


async def test_fork_from_an_eager_checkpoint(stores: Stores, monkeypatch: Any) -> None:
    monkeypatch.setattr("workflow._durable.EAGER_CHECKPOINT_EVERY", 0)  # a checkpoint a commit
    calls: dict[str, int] = {}
    wf = branches(stores.store, calls)
    first = await wf.run(0, run_id="orig")
    history = await stores.store.list_checkpoints("orig")
    after_start = next(c for c in history if c.superstep == 1)
    assert after_start.status == "running"
    fork = await wf.resume("orig", checkpoint_id=after_start.id, state_updates={"note": 1})
    assert fork.status is RunStatus.COMPLETED
    assert fork.run_id != "orig"
    assert sorted(fork.outputs) == sorted(first.outputs)
    assert calls["start"] == 1  # committed before the fork point: not run again
    assert calls["a1"] == calls["slow"] == 2
    forked = await stores.store.list_checkpoints(fork.run_id)
    assert forked[0].parent_id == after_start.id
    assert [c.id for c in await stores.store.list_checkpoints("orig")] == [c.id for c in history]


class Asker(Executor):
    @handler
    async def on(self, x: int, ctx: WorkflowContext) -> None:
        await ctx.request_info(Ask(f"add to {x}?"), response_type=int)

    @response_handler
    async def answer(self, q: Ask, extra: int, ctx: WorkflowContext[int]) -> None:
        await ctx.yield_output(int(q.text.split()[-1].rstrip("?")) + extra)


def asking(store: Any, calls: dict[str, int]) -> Workflow:
    start, ask = Counted("start", calls), Asker("ask")
    chain = [Counted(f"a{i}", calls) for i in (1, 2)]
    return (
        WorkflowBuilder(start=start, checkpoint_store=store, scheduling="eager", types=[Ask])
        .add_fan_out_edges(start, [ask, chain[0]])
        .add_edge(chain[0], chain[1])
        .build()
    )


async def test_human_input_resumes_eagerly_in_a_new_process(stores: Stores) -> None:
    calls: dict[str, int] = {}
    first = await asking(stores.store, calls).run(0, run_id="ask")
    assert first.status is RunStatus.AWAITING_INPUT
    assert first.outputs == [3]
    (request,) = first.pending_requests
    second = await asking(stores.reopen(), calls).resume("ask", responses={request.request_id: 7})
    assert second.status is RunStatus.COMPLETED
    assert sorted(second.outputs) == [3, 8]
    assert calls == {"start": 1, "a1": 1, "a2": 1}
    assert (await stores.store.list_checkpoints("ask"))[-1].status == "completed"


async def test_a_breakpoint_is_checkpointed(stores: Stores) -> None:
    calls: dict[str, int] = {}
    first = await branches(stores.store, calls).run(0, run_id="bp", pause_before=["start"])
    assert first.status is RunStatus.AWAITING_INPUT
    assert calls == {}
    (request,) = first.pending_requests
    second = await branches(stores.reopen(), calls).resume(
        "bp", responses={request.request_id: None}
    )
    assert second.status is RunStatus.COMPLETED
    assert sorted(second.outputs) == [2, 4]


class Opaque:
    """Not a type any checkpoint can hold."""


async def test_a_value_the_store_cannot_hold_fails_its_executor_only(stores: Stores) -> None:
    @executor(id="odd")
    async def odd(x: int, ctx: WorkflowContext[Any]) -> None:
        await anyio.sleep(0.01)
        await ctx.set_state("bad", Opaque())

    calls: dict[str, int] = {}
    start, a1 = Counted("start", calls), Counted("a1", calls)
    wf = (
        WorkflowBuilder(start=start, checkpoint_store=stores.store, scheduling="eager")
        .add_fan_out_edges(start, [a1, odd])
        .build()
    )
    result = await wf.run(0, run_id="odd")
    assert result.status is RunStatus.FAILED
    assert "executor 'odd' failed" in str(result.error)
    assert "Opaque" in str(result.error)
    assert result.outputs == [2]  # a1 committed
    latest = await stores.store.latest("odd")
    assert latest is not None
    assert "bad" not in latest.data["run"]["state"]


async def test_a_superstep_checkpoint_resumes_eagerly_without_rerunning_finished_work(
    stores: Stores,
) -> None:
    calls: dict[str, int] = {}
    broken = {"bad"}

    @executor(id="bad")
    async def bad(x: int) -> int:
        calls["bad"] = calls.get("bad", 0) + 1
        await anyio.sleep(0.01)
        if "bad" in broken:
            raise RuntimeError("boom")
        return x

    def build(store: Any, scheduling: str) -> Workflow:
        start, good = Counted("start", calls), Counted("good", calls)
        return (
            WorkflowBuilder(start=start, checkpoint_store=store, scheduling=scheduling)
            .add_fan_out_edges(start, [good, bad])
            .build()
        )

    first = await build(stores.store, "superstep").run(0, run_id="mixed")
    assert first.status is RunStatus.FAILED
    broken.clear()
    second = await build(stores.reopen(), "eager").resume("mixed")
    assert second.status is RunStatus.COMPLETED
    assert sorted(second.outputs) == [1, 2]
    assert calls == {"start": 1, "good": 1, "bad": 2}


async def test_async_durability_writes_while_the_run_goes_on(tmp_path: Any) -> None:
    from workflow import SQLiteCheckpointStore

    calls: dict[str, int] = {}
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    try:
        wf = branches(store, calls, delay=0.01)
        wf = Workflow(wf.graph, checkpoint_store=store, durability="async", scheduling="eager")
        result = await wf.run(0, run_id="async")
        assert result.status is RunStatus.COMPLETED
        history = await store.list_checkpoints("async")
        assert history[-1].status == "completed"
        saved = [e.checkpoint_id for e in result.events if isinstance(e, CheckpointSaved)]
        assert saved == [c.id for c in history]
    finally:
        await store.aclose()


async def test_executors_that_never_wait_share_a_commit(stores: Stores) -> None:
    def worker(i: int) -> Any:
        async def run(x: int) -> int:
            return x + i

        return executor(id=f"w{i}")(run)

    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return sum(xs)

    start = executor(id="start")(_ident)
    workers = [worker(i) for i in range(50)]
    wf = (
        WorkflowBuilder(start=start, checkpoint_store=stores.store, scheduling="eager")
        .add_fan_out_edges(start, workers)
        .add_fan_in_edges(workers, total)
        .build()
    )
    result = await wf.run(0, run_id="wide")
    assert result.outputs == [sum(range(50))]
    history = await stores.store.list_checkpoints("wide")
    assert len(history) < 10  # not one per executor
    again = await wf.resume("wide")
    assert again.outputs == [sum(range(50))]


async def _ident(x: int) -> int:
    return x


def fanned(store: Any, calls: dict[str, int], n: int, **last: Any) -> Workflow:
    """``start`` -> n ``Counted`` workers that finish one at a time -> a fan-in ``total``."""

    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return sum(xs)

    start = Counted("start", calls)
    workers = [Counted(f"w{i}", calls, delay=0.002 * i) for i in range(n - 1)]
    workers.append(Counted(f"w{n - 1}", calls, **last))
    return (
        WorkflowBuilder(start=start, name="fanned", checkpoint_store=store, scheduling="eager")
        .add_fan_out_edges(start, workers)
        .add_fan_in_edges(workers, total)
        .build()
    )


def count_calls(store: Any, monkeypatch: Any, name: str) -> list[str]:
    """Record the keys ``store.put_write`` (or the ids ``store.save``) is called with."""
    seen: list[str] = []
    method = getattr(store, name)

    async def counted(first: Any, *args: Any, **kw: Any) -> Any:
        seen.append(args[0] if name == "put_write" else first.id)
        return await method(first, *args, **kw)

    monkeypatch.setattr(store, name, counted)
    return seen


async def test_a_wide_fan_out_writes_a_pending_write_per_commit_and_few_checkpoints(
    stores: Stores, monkeypatch: Any
) -> None:
    every, n = 8, 40
    monkeypatch.setattr("workflow._durable.EAGER_CHECKPOINT_EVERY", every)
    writes = count_calls(stores.store, monkeypatch, "put_write")
    calls: dict[str, int] = {}
    result = await fanned(stores.store, calls, n).run(0, run_id="wide")
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == [2 * n]
    history = await stores.store.list_checkpoints("wide")
    # the first, one per more than ``every`` committed invocations, the last
    assert 2 <= len(history) <= 2 + (n + 2) // (every + 1) + 1
    assert len(history) < n // 2  # one per commit would be ~n
    assert history[-1].status == "completed"
    # every other commit is one pending write: the n + 2 invocations are all recorded
    assert writes
    assert all(k.startswith("#") for k in writes)
    assert len(writes) <= n + 2
    assert await stores.store.get_writes(history[-1].id) == {}  # the last checkpoint has all
    again = await fanned(stores.reopen(), calls, n).resume("wide")
    assert again.outputs == [2 * n]
    assert set(calls.values()) == {1}


async def test_a_crash_between_pending_writes_reruns_only_what_was_in_flight(
    stores: Stores,
) -> None:
    n = 12
    loop_bound(stores)
    calls: dict[str, int] = {}
    wait = lambda: committed(stores.store, "pw", f"w{n - 2}")  # noqa: E731
    wf = fanned(stores.store, calls, n, wait=wait, crash={f"w{n - 1}"})
    with pytest.raises((Crash, BaseExceptionGroup)):
        await wf.run(0, run_id="pw")
    history = await stores.store.list_checkpoints("pw")
    assert len(history) == 1  # the first: every commit since is a pending write
    recorded = await stores.store.get_writes(history[0].id)
    assert recorded
    assert all(k.startswith("#") for k in recorded)
    assert calls == {"start": 1, **{f"w{i}": 1 for i in range(n)}}
    from visualize import load_overlay

    overlay = await load_overlay("pw", stores.store)  # diagrams see the eager commits
    assert overlay.status["start"] == overlay.status[f"w{n - 2}"] == "completed"
    assert f"w{n - 1}" not in overlay.status
    resumed = await fanned(stores.reopen(), calls, n).resume("pw")
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.outputs == [2 * n]
    assert calls == {"start": 1, **{f"w{i}": 1 for i in range(n - 1)}, f"w{n - 1}": 2}
    ran = [e.executor_id for e in resumed.events if isinstance(e, ExecutorCompleted)]
    assert ran == [f"w{n - 1}", "total"]
    well_formed(resumed.events)
    # the resumed run's first checkpoint holds the replayed commits; its parent is the base
    after = await stores.store.list_checkpoints("pw")
    assert after[1].parent_id == history[0].id
    assert after[-1].status == "completed"


async def test_a_corrupt_eager_commit_is_refused_naming_it(stores: Stores) -> None:
    from workflow import CheckpointError
    from workflow._schema import VERSION

    calls: dict[str, int] = {}
    first = await branches(stores.store, calls).run(0, run_id="bad", pause_before=["a2"])
    assert first.status is RunStatus.AWAITING_INPUT
    latest = await stores.store.latest("bad")
    bogus = {"executor_id": "nobody", "superstep": 1, "taken": 1, "write": {}}
    await stores.store.put_write(latest.id, "#9", {"version": VERSION, "commits": [bogus]})
    with pytest.raises(CheckpointError, match=r"eager commit '#9'.*commits\.0"):
        await branches(stores.reopen(), calls).resume("bad")
