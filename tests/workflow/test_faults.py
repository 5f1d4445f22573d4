"""A checkpoint store that fails mid-run: the run ends ``FAILED``, never with a stray group.

``FlakyStore`` wraps a real in-memory store and, once armed, fails every call of one kind
(``save``, ``put_write``, ``latest``/``load``, ``list_checkpoints``, ``list_runs``) with an
``OSError``, as a full disk or a dropped connection would. For each call and both
durabilities: the run ends ``FAILED`` with a ``CheckpointError`` as ``result.error`` (the
store's error as its cause), ``RunFinished`` is the last event, nothing escapes ``run`` or
``run_stream``, the last good checkpoint still loads, and once the store works again
``resume`` completes the run. The listing calls are also faulted where the CLI
(``runs``, ``checkpoints``, ``prune``), the service (``GET /api/runs``, a run's checkpoints,
adopting orphaned runs) and ``visualize.load_overlay`` make them: each names the failed call
and nothing stored is lost. The final status (``set_status``) is faulted at each end that
records it: a completed or waiting end the store cannot record ends ``FAILED`` instead, and a
resume finishes the run (over an in-memory and a SQLite store, superstep and eager).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.to_thread
import pytest

from builders import WorkflowBuilder
from workflow import (
    Checkpoint,
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


class StoreDown(OSError):
    """What the injected fault raises: not a ``CheckpointError``, as a driver's would not be."""


class FlakyStore:
    """Delegates to an in-memory store; ``fail(method, after=n)`` breaks the n+1st call on.

    Only the public store protocol is used, so this is a fault at the seam, not a mock of
    the engine's internals.
    """

    def __init__(self, inner: Any = None) -> None:
        self.inner = InMemoryCheckpointStore() if inner is None else inner
        self.broken: str | None = None
        self.after = 0
        self.calls: dict[str, int] = {}

    def fail(self, method: str, *, after: int = 0) -> None:
        self.broken, self.after = method, after

    def heal(self) -> None:
        self.broken = None

    def _call(self, method: str) -> None:
        n = self.calls[method] = self.calls.get(method, 0) + 1
        if self.broken == method and n > self.after:
            raise StoreDown(f"injected fault: {method} call #{n}")

    async def save(
        self, checkpoint: Checkpoint, *, writes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        self._call("save")
        await self.inner.save(checkpoint, writes=writes)

    async def put_write(self, checkpoint_id: str, executor_id: str, data: dict[str, Any]) -> None:
        self._call("put_write")
        await self.inner.put_write(checkpoint_id, executor_id, data)

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        self._call("get_writes")
        return await self.inner.get_writes(checkpoint_id)

    async def set_status(self, run_id: str, workflow_name: str, status: str) -> None:
        self._call("set_status")
        await self.inner.set_status(run_id, workflow_name, status)

    async def list_runs(self) -> Any:
        self._call("list_runs")
        return await self.inner.list_runs()

    async def list_checkpoints(self, run_id: str) -> list[Checkpoint]:
        self._call("list_checkpoints")
        return await self.inner.list_checkpoints(run_id)

    async def load(self, checkpoint_id: str) -> Checkpoint:
        self._call("load")
        return await self.inner.load(checkpoint_id)

    async def latest(self, run_id: str) -> Checkpoint | None:
        self._call("latest")
        return await self.inner.latest(run_id)

    async def delete_run(self, run_id: str) -> None:
        await self.inner.delete_run(run_id)

    async def prune(self, run_id: str, *, keep_last: int) -> int:
        return await self.inner.prune(run_id, keep_last=keep_last)

    async def prune_runs(self, older_than: Any, *, status: Any = None) -> int:
        return await self.inner.prune_runs(older_than, status=status)

    def lock_run(self, run_id: str) -> AbstractAsyncContextManager[None]:
        return self.inner.lock_run(run_id)


# start -> (left, right) -> join: superstep 2 has two executors, so it records pending writes


@executor(id="start")
async def start(n: int) -> int:
    return n


@executor(id="left")
async def left(n: int) -> int:
    return n + 1


@executor(id="right")
async def right(n: int) -> int:
    return n * 10


@executor(id="join")
async def join(values: list[int], ctx: WorkflowContext[int]) -> None:
    await ctx.yield_output(sum(values))


def build(store: Any, durability: str) -> Workflow:
    return (
        WorkflowBuilder(start=start, checkpoint_store=store, durability=durability)
        .add_fan_out_edges(start, [left, right])
        .add_fan_in_edges([left, right], join)
        .build()
    )


# (method, calls that still succeed): save #1 is superstep 0, save #2 is after superstep 1
RUN_FAULTS = [("save", 0), ("save", 1), ("save", 2), ("put_write", 0), ("put_write", 1)]
DURABILITIES = ["sync", "async"]


def check_failed(result: Any, run_id: str) -> CheckpointError:
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, CheckpointError)
    assert isinstance(result.error.__cause__, StoreDown)
    assert run_id in str(result.error)
    last = result.events[-1]
    assert isinstance(last, events.RunFinished)
    assert last.status is RunStatus.FAILED
    assert sum(isinstance(e, events.RunFinished) for e in result.events) == 1
    return result.error


async def check_intact_and_resume(wf: Workflow, store: FlakyStore, run_id: str) -> None:
    history = await store.inner.list_checkpoints(run_id)
    for cp in history:  # every checkpoint written before the fault still verifies
        assert (await store.inner.load(cp.id)).id == cp.id
    store.heal()
    resumed = await wf.resume(run_id)
    assert resumed.status is RunStatus.COMPLETED, resumed.error
    assert resumed.outputs == [3 + 20]


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize(("method", "after"), RUN_FAULTS)
async def test_store_fault_during_run_fails_the_run(
    method: str, after: int, durability: str
) -> None:
    store = FlakyStore()
    wf = build(store, durability)
    store.fail(method, after=after)
    result = await wf.run(2, run_id="r1")
    check_failed(result, "r1")
    runs = {r.run_id: r.status for r in await store.inner.list_runs()}
    if after > 0 or method != "save":  # a first checkpoint exists: the failure is recorded
        assert runs["r1"] == "failed"
    if not (method == "save" and after == 0):
        await check_intact_and_resume(wf, store, "r1")


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize(("method", "after"), RUN_FAULTS)
async def test_store_fault_during_stream_ends_with_run_finished(
    method: str, after: int, durability: str
) -> None:
    store = FlakyStore()
    wf = build(store, durability)
    store.fail(method, after=after)
    seen = [e async for e in wf.run_stream(2, run_id="r2")]
    assert isinstance(seen[-1], events.RunFinished)
    assert seen[-1].status is RunStatus.FAILED
    assert "checkpoint store FlakyStore failed to" in (seen[-1].error or "")


@pytest.mark.parametrize("durability", DURABILITIES)
async def test_status_write_fault_keeps_the_executor_error(durability: str) -> None:
    @executor(id="boom")
    async def boom(n: int) -> int:
        raise RuntimeError("handler broke")

    store = FlakyStore()
    wf = WorkflowBuilder(start=boom, checkpoint_store=store, durability=durability).build()
    store.fail("set_status")
    result = await wf.run(1, run_id="r3")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, WorkflowError)
    assert isinstance(result.events[-1], events.RunFinished)


# -- the final status: set_status ----------------------------------------------------------
# A run's last checkpoint records how it ended in the same write, so a run that completes or
# pauses through a checkpoint never calls set_status. It is called when the run ends FAILED
# or CANCELLED, or without a checkpoint saying how (a fork or resume with nothing left to
# run, a resume that leaves the run waiting). If it fails there, the run does not report a
# status the store does not hold: it ends FAILED with a CheckpointError naming set_status and
# the run, the store keeps its last checkpoint's status, and a resume finishes the run.

SCHEDULINGS = ["superstep", "eager"]


@pytest.fixture(params=["memory", "sqlite"])
async def flaky(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A ``FlakyStore`` over an in-memory or a SQLite store."""
    if request.param == "memory":
        yield FlakyStore()
        return
    from workflow import SQLiteCheckpointStore

    inner = SQLiteCheckpointStore(tmp_path / "runs.db")
    try:
        yield FlakyStore(inner)
    finally:
        await inner.aclose()


def build_with(store: Any, durability: str, scheduling: str) -> Workflow:
    return (
        WorkflowBuilder(
            start=start, checkpoint_store=store, durability=durability, scheduling=scheduling
        )
        .add_fan_out_edges(start, [left, right])
        .add_fan_in_edges([left, right], join)
        .build()
    )


def check_status_fault(result: Any, run_id: str, status: str) -> None:
    error = check_failed(result, run_id)
    assert f"failed to record the run's final status {status!r} (set_status)" in str(error)


async def statuses(store: FlakyStore) -> dict[str, str]:
    return {r.run_id: str(r.status) for r in await store.inner.list_runs()}


@pytest.mark.parametrize("scheduling", SCHEDULINGS)
@pytest.mark.parametrize("durability", DURABILITIES)
async def test_a_run_whose_checkpoint_records_its_end_never_needs_set_status(
    flaky: FlakyStore, durability: str, scheduling: str
) -> None:
    wf = build_with(flaky, durability, scheduling)
    flaky.fail("set_status")
    result = await wf.run(2, run_id="c")
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.error is None
    assert flaky.calls.get("set_status", 0) == 0
    assert await statuses(flaky) == {"c": "completed"}


@pytest.mark.parametrize("scheduling", SCHEDULINGS)
@pytest.mark.parametrize("durability", DURABILITIES)
async def test_set_status_fault_at_a_completed_end_fails_the_run_and_resume_finishes_it(
    flaky: FlakyStore, durability: str, scheduling: str
) -> None:
    wf = build_with(flaky, durability, scheduling)
    assert (await wf.run(2, run_id="f")).status is RunStatus.COMPLETED
    flaky.fail("set_status")
    # a fork of the completed run: its one checkpoint says "running", it has nothing to run
    fork = await wf.resume("f", state_updates={"note": 1})
    check_status_fault(fork, fork.run_id, "completed")
    assert fork.outputs == [23]
    assert await statuses(flaky) == {"f": "completed", fork.run_id: "running"}
    await check_intact_and_resume(wf, flaky, fork.run_id)
    assert await statuses(flaky) == {"f": "completed", fork.run_id: "completed"}


class Asker(Executor):
    """Asks for a name, then outputs it."""

    @handler
    async def on(self, n: int, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(f"name {n}?", response_type=str)

    @response_handler
    async def answered(self, question: str, name: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(name)


@pytest.mark.parametrize("scheduling", SCHEDULINGS)
@pytest.mark.parametrize("durability", DURABILITIES)
async def test_set_status_fault_at_a_waiting_end_fails_the_run_and_keeps_the_question(
    flaky: FlakyStore, durability: str, scheduling: str
) -> None:
    wf = WorkflowBuilder(
        start=Asker("asker"), checkpoint_store=flaky, durability=durability, scheduling=scheduling
    ).build()
    first = await wf.run(1, run_id="w")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    flaky.fail("set_status")
    async with wf.resume_stream("w") as stream:  # no answers: it stops waiting again
        seen = [event async for event in stream]
    finished = seen[-1]
    assert isinstance(finished, events.RunFinished)
    assert finished.status is RunStatus.FAILED
    assert "'awaiting_input' (set_status) for run 'w'" in (finished.error or "")
    assert sum(isinstance(e, events.RunFinished) for e in seen) == 1
    again = await wf.resume("w")
    check_status_fault(again, "w", "awaiting_input")
    assert await statuses(flaky) == {"w": "awaiting_input"}  # its checkpoint still says so
    flaky.heal()
    answered = await wf.resume("w", responses={request.request_id: "Ada"})
    assert answered.status is RunStatus.COMPLETED, answered.error
    assert answered.outputs == ["Ada"]
    assert await statuses(flaky) == {"w": "completed"}


@pytest.mark.parametrize("scheduling", SCHEDULINGS)
@pytest.mark.parametrize("durability", DURABILITIES)
async def test_failure_record_fault_still_records_the_failed_status(
    flaky: FlakyStore, durability: str, scheduling: str
) -> None:
    @executor(id="boom")
    async def boom(n: int) -> int:
        raise RuntimeError("handler broke")

    wf = WorkflowBuilder(
        start=boom, checkpoint_store=flaky, durability=durability, scheduling=scheduling
    ).build()
    flaky.fail("put_write")  # the failure record, for diagrams, is the run's only write
    result = await wf.run(1, run_id="b")
    assert result.status is RunStatus.FAILED
    assert "handler broke" in str(result.error)  # the executor's error, not the store's
    notes = getattr(result.error, "__notes__", [])
    assert any("failed to record the failure for run 'b'" in note for note in notes), notes
    assert isinstance(result.events[-1], events.RunFinished)
    assert await statuses(flaky) == {"b": "failed"}  # the status is recorded all the same
    for cp in await flaky.inner.list_checkpoints("b"):
        assert (await flaky.inner.load(cp.id)).id == cp.id


@pytest.mark.parametrize("scheduling", SCHEDULINGS)
@pytest.mark.parametrize("durability", DURABILITIES)
async def test_set_status_fault_at_a_cancelled_end_keeps_the_cancellation(
    flaky: FlakyStore, durability: str, scheduling: str
) -> None:
    started = threading.Event()  # set on the backend's loop, which may be another thread's
    held = [True]

    @executor(id="slow")
    async def slow(n: int) -> int:
        if held[0]:
            started.set()
            await anyio.sleep_forever()
        return n

    wf = (
        WorkflowBuilder(
            start=start, checkpoint_store=flaky, durability=durability, scheduling=scheduling
        )
        .add_edge(start, slow)
        .build()
    )
    flaky.fail("set_status")
    async with anyio.create_task_group() as tg:

        async def consume() -> None:
            async with wf.run_stream(2, run_id="x") as stream:
                async for _ in stream:
                    pass

        tg.start_soon(consume)
        assert await anyio.to_thread.run_sync(started.wait, 60)
        tg.cancel_scope.cancel()  # the caller's cancellation goes on out, as always
    assert flaky.calls["set_status"] == 1
    assert (await statuses(flaky))["x"] == "running"  # not recorded: resumable as it was
    flaky.heal()
    held[0] = False
    resumed = await wf.resume("x")
    assert resumed.status is RunStatus.COMPLETED, resumed.error
    assert resumed.outputs == [2]  # slow ran again, to the end


# loading: resume reads the store before anything runs; a failure there raises and changes
# nothing, and the same resume succeeds once the store is back
LOAD_FAULTS = ["latest", "load", "get_writes", "list_checkpoints"]


@pytest.mark.parametrize("durability", DURABILITIES)
@pytest.mark.parametrize("method", LOAD_FAULTS)
async def test_store_fault_while_loading_raises_checkpoint_error(
    method: str, durability: str
) -> None:
    store = FlakyStore()
    wf = build(store, durability)
    store.fail("put_write", after=1)  # the run fails mid-superstep 2, one write recorded
    first = await wf.run(2, run_id="r4")
    assert first.status is RunStatus.FAILED
    store.heal()
    before = [cp.id for cp in await store.inner.list_checkpoints("r4")]
    store.fail(method)
    cp_id = before[0] if method in ("load", "list_checkpoints") else None
    if method == "list_checkpoints":
        # the store lists a run's history only to explain a refused resume: use one
        other = (
            WorkflowBuilder(start=start, checkpoint_store=store, durability=durability)
            .add_edge(start, left)
            .build()
        )
        with pytest.raises(CheckpointError, match="different graph"):
            await other.resume("r4")
        store.heal()
        await check_intact_and_resume(wf, store, "r4")
        return
    with pytest.raises(CheckpointError, match="r4") as info:
        await wf.resume("r4", checkpoint_id=cp_id)
    assert isinstance(info.value.__cause__, StoreDown)
    assert [cp.id for cp in await store.inner.list_checkpoints("r4")] == before
    await check_intact_and_resume(wf, store, "r4")


# -- listing calls outside a run: the CLI, the service and diagrams ---------------------------


async def seeded(durability: str = "sync") -> tuple[FlakyStore, Workflow, dict[str, Any]]:
    """A store holding one completed run ``done`` and one failed run ``broke``, and what it
    lists, to compare with after a fault."""
    store = FlakyStore()
    wf = build(store, durability)
    assert (await wf.run(2, run_id="done")).status is RunStatus.COMPLETED
    store.fail("put_write", after=store.calls.get("put_write", 0) + 1)
    assert (await wf.run(2, run_id="broke")).status is RunStatus.FAILED
    store.heal()
    return store, wf, await listing(store)


async def listing(store: FlakyStore) -> dict[str, Any]:
    runs = await store.inner.list_runs()
    return {
        r.run_id: (str(r.status), [c.id for c in await store.inner.list_checkpoints(r.run_id)])
        for r in runs
    }


def check_listing_error(err: BaseException, call: str) -> None:
    assert isinstance(err, CheckpointError), repr(err)
    assert isinstance(err.__cause__, StoreDown)
    assert f"checkpoint store FlakyStore failed to {call}" in str(err)


async def test_overlay_store_faults_name_the_call_and_lose_nothing() -> None:
    from visualize import load_overlay

    store, _, before = await seeded()
    healthy = await load_overlay("broke", store)
    for method, call in [
        ("latest", "read the latest checkpoint"),
        ("list_checkpoints", "list checkpoints"),
        ("get_writes", "read pending writes"),
        ("list_runs", "list runs"),
    ]:
        store.fail(method)
        with pytest.raises(CheckpointError) as info:
            await load_overlay("broke", store)
        check_listing_error(info.value, call)
        assert "'broke'" in str(info.value)
        store.heal()
        assert await listing(store) == before
        assert await load_overlay("broke", store) == healthy


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store: Any, *argv: str
) -> tuple[int, str, str]:
    """``ledgerflow ARGV`` with its store opened as ``store`` (the fault sits at the seam)."""
    from workflow.cli import _prune, _runs, main

    monkeypatch.setattr(_runs, "open_store", lambda url: store)
    monkeypatch.setattr(_prune, "open_store", lambda url: store)
    code = main([*argv, "--store", "memory://"])
    out, err = capsys.readouterr()
    return code, out, err


CLI_FAULTS = [
    ("list_runs", ["runs"], "list runs"),
    ("list_checkpoints", ["checkpoints", "broke"], "list checkpoints for run 'broke'"),
    ("list_runs", ["prune", "--older-than", "0s", "--json"], "list runs"),
    ("list_runs", ["prune", "--keep-last", "1", "--json"], "list runs"),
]


@pytest.mark.parametrize(("method", "argv", "call"), CLI_FAULTS)
def test_cli_store_fault_at_a_listing_is_one_error_line_and_loses_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    method: str,
    argv: list[str],
    call: str,
) -> None:
    store, _, before = anyio.run(seeded)
    store.fail(method)
    code, out, err = run_cli(monkeypatch, capsys, store, *argv)
    assert code == 1, err
    assert out == ""
    assert err.startswith("ledgerflow: error: checkpoint store FlakyStore failed to " + call)
    assert "injected fault" in err
    assert "internal error" not in err
    assert len(err.splitlines()) == 1
    assert anyio.run(listing, store) == before  # nothing deleted, nothing rewritten
    store.heal()
    code, out, err = run_cli(monkeypatch, capsys, store, "runs", "--json")
    assert code == 0, err
    assert {json.loads(line)["run_id"] for line in out.splitlines()} == {"done", "broke"}


def service(store: FlakyStore, wf: Workflow) -> Any:
    pytest.importorskip("starlette")
    pytest.importorskip("httpx")
    from starlette.testclient import TestClient

    from workflow._service import create_app

    return TestClient(create_app([wf], store, adopt_interval=None))


SERVICE_FAULTS = [
    ("list_runs", "/api/runs", "list runs"),
    ("list_checkpoints", "/api/runs/broke/checkpoints", "list checkpoints for run 'broke'"),
    ("list_runs", "/api/runs/ghost", "list runs for run 'ghost'"),
]


@pytest.mark.parametrize(("method", "path", "call"), SERVICE_FAULTS)
def test_service_store_fault_at_a_listing_is_a_503_naming_the_call(
    method: str, path: str, call: str
) -> None:
    store, wf, before = anyio.run(seeded)  # sync: TestClient runs the app in its own loop
    with service(store, wf) as client:
        store.fail(method)
        response = client.get(path)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["type"] == "store_failed"
        assert error["message"].startswith("checkpoint store FlakyStore failed to " + call)
        store.heal()
        assert client.get("/api/runs").status_code == 200
        assert {r["run_id"] for r in client.get("/api/runs").json()} == {"done", "broke"}
        checkpoints = client.get("/api/runs/broke/checkpoints").json()
        assert [c["checkpoint_id"] for c in checkpoints] == before["broke"][1]
    assert anyio.run(listing, store) == before


def test_service_adopting_runs_names_the_failed_listing() -> None:
    store, wf, before = anyio.run(seeded)
    with service(store, wf) as client:
        manager = client.app.state.manager  # type: ignore[attr-defined]
        store.fail("list_runs")
        with pytest.raises(CheckpointError) as info:
            client.portal.call(manager.adopt)  # type: ignore[union-attr]
        check_listing_error(info.value, "list runs")
        store.heal()
        assert client.portal.call(manager.adopt) == []  # type: ignore[union-attr]
    assert anyio.run(listing, store) == before
