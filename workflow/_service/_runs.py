"""Runs that live in the server: started, resumed, answered, cancelled, forked and recovered.

Every run executes in a task of the manager's task group (owned by the app's lifespan), never
in the request that asked for it, so a client that disconnects does not stop it. Its events are
numbered per run, encoded once, fanned out to subscribers without waiting for them, and logged
in batches (see ``_eventlog``). What a run *is* (status, outputs, pending requests) comes from
the checkpoint store, the single source of truth shared with other servers; only runs executing
here have a live handle. The store's ``lock_run`` keeps two servers from executing one run: the
loser of the race gets a ``CheckpointError`` before anything runs and lets the other go on.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import anyio
from anyio.abc import TaskGroup
from pydantic import ValidationError

from workflow._errors import CheckpointError, store_call
from workflow._result import PendingRequest
from workflow._stream import EventStream
from workflow._telemetry import redact
from workflow._types import RunStatus
from workflow._workflow import Workflow
from workflow.events import (
    CheckpointSaved,
    OutputEmitted,
    RunFinished,
    RunStarted,
    WorkflowEvent,
)

from ._encode import event_json, input_adapter, pending_json, plain
from ._errors import (
    ApiError,
    api_error,
    convert_answer,
    first_error,
    locked,
    store_read,
    validation_details,
)
from ._eventlog import EventLog
from ._handle import RunHandle, Subscription

__all__ = ("TERMINAL", "RunHandle", "RunManager", "Subscription")

log = logging.getLogger("ledgerflow.service")

TERMINAL = frozenset({"completed", "failed", "cancelled", "max_supersteps"})
FLUSH_INTERVAL = 0.05


class RunManager:
    """Owns the runs of one server; see the module docstring.

    Args:
        workflows: the served workflows by name, bound to ``store``.
        store: the checkpoint store.
        events: the event log beside it.
        adopt_interval: seconds between looks for runs left ``running`` by a dead server
            (``None``: only at start-up).
    """

    def __init__(
        self,
        workflows: Mapping[str, Workflow],
        store: Any,
        events: EventLog,
        *,
        adopt_interval: float | None = 5.0,
    ) -> None:
        self.workflows = dict(workflows)
        self.store = store
        self.events = events
        self.adopt_interval = adopt_interval
        self.handles: dict[str, RunHandle] = {}
        self.subscribers: dict[str, set[Subscription]] = {}
        self._unflushed: list[tuple[str, int, str]] = []
        self._wake = anyio.Event()
        self._tg: TaskGroup | None = None
        self._closing = anyio.Event()
        self._locks: dict[str, list[Any]] = {}  # run id -> [lock, users]
        self._unadoptable: set[str] = set()

    # -- lifespan ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RunManager]:
        """Run the manager's tasks for the life of the app; on exit stop runs resumably."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._flusher)
            tg.start_soon(self._adopter)
            try:
                yield self
            finally:
                self._closing.set()
                with anyio.CancelScope(shield=True):
                    await self._stop_all()
                    tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            await self._flush()

    @property
    def closing(self) -> anyio.Event:
        return self._closing

    async def _stop_all(self) -> None:
        handles = list(self.handles.values())
        for handle in handles:
            if handle.scope is not None:
                handle.scope.cancel()
        for handle in handles:
            await handle.done.wait()
            if not handle.cancelled_by_user:  # stopped by the shutdown: resume it next time
                with contextlib.suppress(Exception):
                    await self.store.set_status(handle.run_id, handle.workflow.name, "running")

    @contextlib.asynccontextmanager
    async def _lock(self, run_id: str) -> AsyncIterator[None]:
        """Serialize this server's changes to one run (answers, cancels, adoption)."""
        entry = self._locks.get(run_id)
        if entry is None:
            entry = self._locks[run_id] = [anyio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:  # nobody else waits: forget it (one entry per busy run only)
                del self._locks[run_id]

    # -- starting executions -----------------------------------------------------------------
    def workflow(self, name: str) -> Workflow:
        wf = self.workflows.get(name)
        if wf is None:
            known = ", ".join(sorted(self.workflows)) or "none"
            raise ApiError(404, "unknown_workflow", f"no workflow named {name!r} (served: {known})")
        return wf

    def convert_input(self, wf: Workflow, value: Any) -> Any:
        """JSON -> what the start executor accepts, or a 422 naming the mismatch."""
        start = wf.executors[wf.start_executor_id]
        ta = input_adapter(start.input_types())
        if ta is not None:
            try:
                value = ta.validate_python(value)
            except ValidationError as exc:
                raise ApiError(
                    422,
                    "invalid_input",
                    f"input for workflow {wf.name!r} does not match its input schema: "
                    f"{first_error(exc)}",
                    details=validation_details(exc),
                ) from None
        if not start.can_handle(value):
            raise ApiError(
                422,
                "invalid_input",
                f"workflow {wf.name!r}: start executor {start.id!r} cannot take "
                f"{type(value).__name__}; see input_schema in GET /api/workflows",
            )
        return value

    async def start(self, wf: Workflow, value: Any, run_id: str | None = None) -> RunHandle:
        """Start a new run in the background; 409 when ``run_id`` is taken."""
        if run_id is None:
            run_id = uuid.uuid4().hex
        else:
            if run_id in self.handles or await self.store.latest(run_id) is not None:
                raise ApiError(409, "run_exists", f"run {run_id!r} already exists; omit run_id")
        handle = RunHandle(run_id=run_id, workflow=wf, outputs=[])
        self.handles[run_id] = handle
        self._spawn(handle, lambda: wf.run_stream(value, run_id=run_id))
        # accepted means stored: its first checkpoint (input accepted, nothing run yet) is
        # committed before the caller hears of it, so a crash right after cannot lose it
        await _first_of(handle.saved, handle.done)
        if handle.failure is not None and not handle.saved.is_set():
            raise api_error(handle.failure)  # never stored: the caller must not think it ran
        return handle

    async def resume(
        self, wf: Workflow, run_id: str, responses: Mapping[str, Any] | None = None
    ) -> RunHandle:
        """Continue a stored run here (answers, recovery); returns once it started or failed."""
        known = await self.snapshot_from_store(run_id, wf)
        handle = RunHandle(
            run_id=run_id,
            workflow=wf,
            outputs=list(known["outputs"]),
            seq=await self.events.last_seq(run_id),
        )
        self.handles[run_id] = handle
        self._spawn(handle, lambda: wf.resume_stream(run_id, responses=responses))
        await _first_of(handle.started, handle.done)
        return handle

    async def fork(
        self,
        wf: Workflow,
        run_id: str,
        checkpoint_id: str,
        state_updates: Mapping[str, Any] | None,
    ) -> RunHandle:
        """A new run from an earlier checkpoint; returns once it started (its id is known)."""
        # state_updates (even empty) makes the engine fork from any checkpoint, the run's
        # latest included: a plain resume from the latest would continue the original run
        kwargs: dict[str, Any] = {"checkpoint_id": checkpoint_id}
        if "state_updates" in inspect.signature(wf.resume_stream).parameters:
            kwargs["state_updates"] = dict(state_updates or {})
        elif state_updates is not None:
            raise ApiError(
                422,
                "unsupported",
                "this engine cannot fork with state_updates yet (Workflow.resume_stream "
                "has no state_updates parameter); fork without it",
            )
        try:
            checkpoint = await self.store.load(checkpoint_id)
        except CheckpointError as exc:
            raise ApiError(404, "unknown_checkpoint", str(exc)) from None
        if checkpoint.run_id != run_id:
            raise ApiError(
                422,
                "invalid_checkpoint",
                f"checkpoint {checkpoint_id!r} belongs to run {checkpoint.run_id!r}, not "
                f"{run_id!r}; fork from one of GET /api/runs/{run_id}/checkpoints",
            )
        handle = RunHandle(run_id=f"pending-fork-{uuid.uuid4().hex}", workflow=wf, outputs=[])
        self._spawn(handle, lambda: wf.resume_stream(run_id, **kwargs))
        await _first_of(handle.started, handle.done)
        if handle.failure is not None:
            raise api_error(handle.failure)
        return handle

    def _spawn(self, handle: RunHandle, stream: Callable[[], EventStream]) -> None:
        if self._tg is None:
            raise RuntimeError("the run manager is not running (use it inside the app lifespan)")
        self._tg.start_soon(self._drive, handle, stream)

    async def _drive(self, handle: RunHandle, stream: Callable[[], EventStream]) -> None:
        try:
            with anyio.CancelScope() as scope:
                handle.scope = scope
                # the run is a child of this task (no helper thread, unlike a plain async for);
                # leaving the block cancels it and waits until it has recorded that
                async with stream() as events:
                    async for event in events:
                        self._publish(handle, event)
            if (
                scope.cancelled_caught
                and handle.cancelled_by_user
                and handle.status not in TERMINAL
            ):
                # the run recorded CANCELLED itself; its subscribers still get the last event
                # (not when the server shuts down: the run goes on after the restart)
                self._publish(
                    handle,
                    RunFinished(
                        run_id=handle.run_id,
                        superstep=handle.superstep,
                        status=RunStatus.CANCELLED,
                    ),
                )
        except CheckpointError as exc:
            handle.failure = exc
            if handle.started.is_set():
                handle.status, handle.error = "failed", redact(str(exc))
            log.info("run %s not executed here: %s", handle.run_id, redact(str(exc)))
        except Exception as exc:
            handle.failure = exc
            handle.status, handle.error = "failed", redact(f"{type(exc).__name__}: {exc}")
            log.warning("run %s ended with an unexpected error: %s", handle.run_id, handle.error)
        finally:
            with anyio.CancelScope(shield=True):
                await self._flush()
                if self.handles.get(handle.run_id) is handle:
                    del self.handles[handle.run_id]
                handle.recent.clear()
                handle.done.set()
                if handle.status in TERMINAL:
                    for sub in self.subscribers.get(handle.run_id, ()):
                        sub.send.close()

    def _publish(self, handle: RunHandle, event: WorkflowEvent) -> None:
        if isinstance(event, RunStarted):
            if event.run_id != handle.run_id:  # a fork: its id is known from here on
                handle.run_id = event.run_id
            self.handles[handle.run_id] = handle
            handle.status = "running"
        elif isinstance(event, OutputEmitted):
            handle.outputs.append(event.data)
        elif isinstance(event, RunFinished):
            handle.status = event.status.value
            handle.error = _redacted(event.error)
            handle.pending = [r for r in event.pending_requests if isinstance(r, PendingRequest)]
        handle.superstep = event.superstep
        handle.seq += 1
        item = (handle.seq, event_json(event))
        handle.recent.append(item)
        self._unflushed.append((handle.run_id, *item))
        for sub in list(self.subscribers.get(handle.run_id, ())):
            if not sub.offer(item):
                self.unsubscribe(sub)
        if isinstance(event, RunStarted):
            handle.started.set()
        elif isinstance(event, CheckpointSaved):
            handle.saved.set()
        if len(self._unflushed) >= 512:
            self._wake.set()

    # -- the event log -----------------------------------------------------------------------
    async def _flusher(self) -> None:
        while True:
            with anyio.move_on_after(FLUSH_INTERVAL):
                await self._wake.wait()
            self._wake = anyio.Event()
            await self._flush()

    async def _flush(self) -> None:
        while self._unflushed:
            rows, self._unflushed = self._unflushed, []
            try:
                await self.events.append(rows)
            except Exception as exc:
                log.warning("could not log %d events: %s", len(rows), redact(repr(exc)))
                return
            upto: dict[str, int] = {}
            for run_id, seq, _ in rows:
                upto[run_id] = seq
            for run_id, seq in upto.items():
                handle = self.handles.get(run_id)
                if handle is not None and handle.recent and handle.recent[0][0] <= seq:
                    handle.recent = [item for item in handle.recent if item[0] > seq]

    def subscribe(self, run_id: str) -> tuple[Subscription, list[tuple[int, str]], bool]:
        """Register a subscriber; returns it, the unlogged events, and whether it executes here."""
        sub = Subscription(run_id)
        self.subscribers.setdefault(run_id, set()).add(sub)
        handle = self.handles.get(run_id)
        return sub, list(handle.recent) if handle else [], handle is not None

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self.subscribers.get(sub.run_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.run_id]
        sub.send.close()

    # -- recovery ----------------------------------------------------------------------------
    async def _adopter(self) -> None:
        while True:
            try:
                await self.adopt()
            except Exception as exc:
                log.warning("looking for runs to resume failed: %s", redact(repr(exc)))
            if self.adopt_interval is None:
                return
            await anyio.sleep(self.adopt_interval)

    async def adopt(self) -> list[str]:
        """Resume runs the store says are running but no one executes (lock free).

        A run that cannot be resumed for another reason than its lock (its graph changed, a
        checkpoint is corrupt) is logged once and left alone until the next start.
        """
        resumed = []
        with store_call(self.store, "list runs", None):
            runs = await self.store.list_runs()
        for info in runs:
            wf = self.workflows.get(info.workflow_name)
            if info.status != "running" or wf is None or info.run_id in self.handles:
                continue
            if info.run_id in self._unadoptable:
                continue
            if self._closing.is_set():
                break
            try:
                async with self._lock(info.run_id):
                    handle = await self.resume(wf, info.run_id)
            except ApiError:  # deleted meanwhile
                continue
            if handle.started.is_set():
                log.info("resumed run %s of %s", info.run_id, wf.name)
                resumed.append(info.run_id)
            elif handle.failure is not None and not locked(handle.failure):
                self._unadoptable.add(info.run_id)
                log.warning(
                    "run %s cannot be resumed: %s", info.run_id, redact(str(handle.failure))
                )
        return resumed

    # -- reading -------------------------------------------------------------------------------
    async def record(self, run_id: str) -> dict[str, Any]:
        """``GET /api/runs/{id}``: a live handle when it executes here, else the store's view."""
        handle = self.handles.get(run_id)
        if handle is not None and handle.failure is None:
            return {
                "run_id": run_id,
                "workflow": handle.workflow.name,
                "status": handle.status,
                "outputs": [plain(o) for o in handle.outputs],
                "pending_requests": [pending_json(r) for r in handle.pending],
                "error": _redacted(handle.error),
            }
        snap = await self.snapshot_from_store(run_id)
        return {
            "run_id": run_id,
            "workflow": snap["workflow"],
            "status": snap["status"],
            "outputs": [plain(o) for o in snap["outputs"]],
            "pending_requests": [pending_json(r) for r in snap["pending"]],
            "error": _redacted(snap["error"]),
        }

    async def run_info(self, run_id: str) -> Any:
        """The store's record of one run (404 when it has none).

        The latest checkpoint says it all unless the run ended failed or cancelled after it
        (recorded with ``set_status`` only): then, and for unknown runs, the run list is read.
        """
        try:
            latest = await self.store.latest(run_id)
        except CheckpointError:
            latest = None
        if latest is not None and latest.status != "running":
            from workflow._checkpoint import RunInfo

            status = latest.status
            if status == "awaiting_input" and await self._cancelled_while_waiting(run_id):
                status = "cancelled"
            return RunInfo(
                run_id=run_id,
                workflow_name=latest.workflow_name,
                status=status,
                updated_at=latest.created_at,
                latest_checkpoint_id=latest.id,
            )
        with store_read(self.store, "list runs", run_id):
            runs = await self.store.list_runs()
        for info in runs:
            if info.run_id == run_id:
                return info
        raise ApiError(404, "unknown_run", f"no run {run_id!r} in the store")

    async def _cancelled_while_waiting(self, run_id: str) -> bool:
        last = await self.events.last_seq(run_id)
        rows = await self.events.read(run_id, last - 1) if last else []
        if not rows or not rows[-1][1].startswith('{"type":"RunFinished"'):
            return False
        return bool(json.loads(rows[-1][1]).get("status") == "cancelled")

    async def snapshot_from_store(self, run_id: str, wf: Workflow | None = None) -> dict[str, Any]:
        """Status, outputs, pending requests and error of a stored run."""
        from workflow._durable import FAILURE_KEY, load_state

        info = await self.run_info(run_id)
        wf = wf or self.workflows.get(info.workflow_name)
        snap: dict[str, Any] = {
            "workflow": info.workflow_name,
            "status": info.status,
            "outputs": [],
            "pending": [],
            "error": None,
        }
        if wf is None or (info.latest_checkpoint_id is None and info.status == "running"):
            return snap
        try:
            state, recorded, _ = await load_state(wf, run_id, None)
        except CheckpointError as exc:
            snap["error"] = str(exc)
            return snap
        snap["outputs"] = list(recorded.outputs if recorded is not None else state.outputs)
        snap["pending"] = list(state.pending.values())
        if info.status == "failed" and state.checkpoint_id is not None:
            writes = await self.store.get_writes(state.checkpoint_id)
            failure = writes.get(FAILURE_KEY)
            if failure is not None:
                snap["error"] = f"executor {failure.get('executor_id')!r} failed: " + str(
                    failure.get("error")
                )
        return snap

    # -- answering and cancelling ------------------------------------------------------------
    async def answer(self, run_id: str, answers: Mapping[str, Any]) -> RunHandle:
        """Validate answers against the pending requests' types and resume the run."""
        async with self._lock(run_id):
            await self._settle(run_id)
            if run_id in self.handles:
                raise ApiError(
                    409, "run_busy", f"run {run_id!r} is running; answer once it waits for input"
                )
            snap = await self.snapshot_from_store(run_id)
            wf = self.workflow(snap["workflow"])
            if snap["status"] != "awaiting_input":
                raise ApiError(
                    409,
                    "not_awaiting_input",
                    f"run {run_id!r} is {snap['status']}, not awaiting input; nothing to answer",
                )
            pending = {r.request_id: r for r in snap["pending"]}
            converted: dict[str, Any] = {}
            for request_id, value in answers.items():
                request = pending.get(request_id)
                if request is None:
                    raise ApiError(
                        409,
                        "request_not_pending",
                        f"request {request_id!r} of run {run_id!r} is not pending (answered "
                        f"already, or never asked); pending: {sorted(pending) or 'none'}",
                    )
                converted[request_id] = convert_answer(request, value)
            handle = await self.resume(wf, run_id, converted)
            if handle.failure is not None:
                raise api_error(handle.failure)
            return handle

    async def _settle(self, run_id: str) -> None:
        """Wait out an execution that already finished (its last event is out, its task is
        still logging it), so callers see the stored outcome, not a busy run."""
        handle = self.handles.get(run_id)
        if handle is not None and handle.status != "running" and handle.started.is_set():
            await handle.done.wait()

    async def cancel(self, run_id: str) -> str:
        """Cancel a run executing here, or a run waiting for input; returns the new status."""
        await self._settle(run_id)
        handle = self.handles.get(run_id)
        if handle is not None:
            handle.cancelled_by_user = True
            if handle.scope is not None:
                handle.scope.cancel()
            await handle.done.wait()
            if handle.status != "awaiting_input":
                return handle.status
            # it paused before the cancel reached it: cancel the waiting run below
        async with self._lock(run_id):
            info = await self.run_info(run_id)
            if info.status in TERMINAL:
                raise ApiError(409, "run_finished", f"run {run_id!r} already ended {info.status}")
            if info.status == "running":
                raise ApiError(
                    409,
                    "run_elsewhere",
                    f"run {run_id!r} is executing on another server; cancel it there",
                )
            await self.store.set_status(run_id, info.workflow_name, "cancelled")
            # the run's last event says so too: subscribers see it end, and reading the run
            # back needs no scan of the run list (its latest checkpoint says awaiting_input)
            wf = self.workflows.get(info.workflow_name)
            if wf is not None:
                handle = RunHandle(
                    run_id=run_id, workflow=wf, outputs=[], seq=await self.events.last_seq(run_id)
                )
                finished = RunFinished(
                    run_id=run_id, superstep=handle.superstep, status=RunStatus.CANCELLED
                )
                self._publish(handle, finished)
                await self._flush()
                for sub in self.subscribers.get(run_id, ()):
                    sub.send.close()
            return "cancelled"


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact(text)


async def _first_of(*events: anyio.Event) -> None:
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)
