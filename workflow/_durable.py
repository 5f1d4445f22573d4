"""Checkpointing a run into a store, and loading it back for resume or fork.

What is stored, per superstep boundary: the committed ``RunState`` (in-flight messages, run
state, executors' own state, fan-in buffers, pending requests, outputs, superstep index),
plus the graph description (to explain a refused resume) and a small overlay for diagrams.
Values go through the JSON serializer with an allowlist built from the workflow's own
handler annotations: loading a checkpoint never imports or calls anything else.

Inside a superstep, each executor that finishes while siblings still run is recorded at once
as a pending write, so a crash or a failure re-runs only the executors that had not finished.
(With a single executor in the superstep the checkpoint itself is that record: the window
between finishing and recording is the same one transaction either way.)

In eager mode each commit is one pending write (``_replay``) against the latest checkpoint,
and a checkpoint is written every ``EAGER_CHECKPOINT_EVERY`` committed invocations, when the
run stops or pauses, and when nothing is running: resume replays the writes in order.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._allowlist import registry_for
from ._checkpoint import Checkpoint, CheckpointStore
from ._commit import (
    CommitContext,
    EagerCommit,
    InvocationRecord,
    RunEnd,
    RunSnapshot,
    SuperstepRecord,
)
from ._errors import CheckpointError, store_call
from ._graph import describe_changes
from ._replay import EAGER_PREFIX, apply_commit, dump_commits, eager_key, load_commits
from ._result import RunResult
from ._runstate import RunState
from ._schema import VERSION, dump_record, dump_run, load_record, load_run
from ._serde import SerializationError, TypeRegistry
from ._types import RunStatus
from .events import CheckpointSaved

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = (
    "EAGER_CHECKPOINT_EVERY",
    "FAILURE_KEY",
    "StoreDurability",
    "load_state",
    "registry_for",
    "store_durability",
)

# Pending-write key of a failure record; "!" cannot start an executor id that matters here.
FAILURE_KEY = "!failed"

# Eager mode: committed invocations recorded as pending writes before a checkpoint is written.
# A checkpoint costs the whole committed state; a pending write only what one commit changed.
# This bounds both the checkpoints a wide run writes (one per this many invocations) and
# what a resume replays.
EAGER_CHECKPOINT_EVERY = 128


class StoreDurability:
    """Commits a run's checkpoints and pending writes to a store, from commit records.

    Knows the store, the workflow's name, graph hash and description, and the type allowlist;
    everything else comes in the records (``_commit``): it never sees the scheduler.
    """

    def __init__(
        self,
        store: CheckpointStore,
        *,
        workflow_name: str,
        graph_hash: str,
        graph_description: Mapping[str, Any],
        registry: TypeRegistry,
        background: bool = False,
        checkpoint_id: str | None = None,
        checkpoint_count: int = 0,
        fork_of: str | None = None,
        trace_link: dict[str, str] | None = None,
        save_on_start: bool = False,
        eager: bool = False,
        eager_every: int | None = None,
    ) -> None:
        self.store = store
        self.workflow_name = workflow_name
        self.graph_hash = graph_hash
        self.graph_description = graph_description
        self.registry = registry
        self.fork_of = fork_of
        self.trace_link = trace_link
        self.save_on_start = save_on_start or checkpoint_id is None
        self.background = background
        self._checkpoint_id = checkpoint_id
        self._count = checkpoint_count
        self._ctx = CommitContext(_drop)
        self._previous: anyio.Event | None = None
        # pending writes loaded with the state (encoded): recorded again, in the same commit,
        # with a checkpoint saved on start, which supersedes the one they were recorded against
        self.carried: dict[str, dict[str, Any]] = {}
        self._ran: list[str] = []
        self._messages: dict[str, int] = {}
        self._status: RunStatus | None = None  # the status the last checkpoint records
        self.eager = eager
        self.eager_every = EAGER_CHECKPOINT_EVERY if eager_every is None else eager_every
        # eager: records encoded when they finished, until their commit writes them
        self._encoded: dict[tuple[str, int], dict[str, Any]] = {}
        self._since = 0  # invocations committed as pending writes since the last checkpoint
        self._commits = 0  # eager commits recorded as pending writes (their keys)

    @property
    def checkpoint_id(self) -> str | None:
        return self._checkpoint_id

    async def started(self, snapshot: RunSnapshot, ctx: CommitContext) -> None:
        self._ctx = ctx
        if self.save_on_start:
            # answers given mid-superstep: the executors that had finished keep their record
            # (else a crash or failure from here on would run them again). It is committed with
            # the checkpoint, not after it: a crash in between would lose it just the same.
            await self._save(snapshot, writes=self.carried)

    async def invocation_finished(self, record: InvocationRecord) -> BaseException | None:
        # Encode every outcome, even one the checkpoint will record: a value that cannot be
        # checkpointed fails *this* executor (the run ends FAILED naming it and the path to the
        # value; siblings' results and the last checkpoint are kept) instead of escaping
        # ``run`` from the commit, after the run's state already moved on.
        try:
            data = dump_record(record, self.registry)
        except SerializationError as exc:
            return exc
        if self.eager:  # written by its commit (``eager_committed``), in commit order
            self._encoded[(record.executor_id, record.superstep)] = data
            return None
        if record.concurrent and self._checkpoint_id is not None:
            if self._previous is not None:
                await self._previous.wait()  # async durability: its checkpoint must exist
            with store_call(self.store, "record a pending write", record.run_id):
                await self.store.put_write(self._checkpoint_id, record.executor_id, data)
        return None

    async def eager_committed(
        self,
        commits: tuple[EagerCommit, ...],
        messages: Mapping[str, int],
        status: RunStatus,
        snapshot: Callable[[], RunSnapshot],
        full: bool,
    ) -> bool:
        if full or self._checkpoint_id is None or self._since + len(commits) > self.eager_every:
            snap = snapshot()  # now: the run's state moves on at the first await
            for c in commits:
                self._encoded.pop((c.record.executor_id, c.record.superstep), None)
            ran = tuple(c.record.executor_id for c in commits)
            await self.superstep_committed(
                SuperstepRecord(snap.superstep, ran, messages, status, snap)
            )
            return True
        encoded = self._encoded
        data = dump_commits(commits, encoded, self.registry)
        for c in commits:
            encoded.pop((c.record.executor_id, c.record.superstep), None)
        if self._previous is not None:
            await self._previous.wait()  # async durability: its checkpoint must exist
        self._commits += 1
        with store_call(self.store, "record an eager commit", commits[0].record.run_id):
            await self.store.put_write(self._checkpoint_id, eager_key(self._commits), data)
        self._since += len(commits)
        # for diagrams: the next checkpoint's overlay adds these up
        self._ran.extend(c.record.executor_id for c in commits)
        for edge, n in messages.items():
            self._messages[edge] = self._messages.get(edge, 0) + n
        return False

    async def superstep_committed(self, record: SuperstepRecord) -> None:
        self._ran.extend(record.ran)
        for edge, n in record.messages.items():
            self._messages[edge] = self._messages.get(edge, 0) + n
        spawn = self._ctx.spawn
        if spawn is None:
            await self._save(record.snapshot)
            return
        # async durability: encode now (the state moves on), write while the next step runs.
        # At most one checkpoint is in flight: waiting for the previous one here bounds what a
        # crash can lose to the last superstep (without it the run races ahead of its writes).
        if self._previous is not None:
            await self._previous.wait()
        checkpoint = self._checkpoint(record.snapshot)
        done = anyio.Event()
        self._previous = done

        async def write() -> None:
            try:
                await self._commit(checkpoint, announce=False)
            finally:
                done.set()

        spawn(write)
        # announced on hand-off (see ``CheckpointSaved``): where the write finishes among the
        # next superstep's events depends on timing, and the event order must not
        self._announce(checkpoint)

    async def paused(self, snapshot: RunSnapshot) -> None:
        if self._previous is not None:
            await self._previous.wait()  # async durability: its parent must exist first
        await self._save(snapshot)

    async def finished(self, end: RunEnd) -> None:
        """Record how the run ended, where its last checkpoint does not say it already.

        Raises:
            CheckpointError: the store failed; the runner then reports the run ``FAILED``
                (or still ``CANCELLED``), never a status the store does not hold.
        """
        status = end.status
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            unrecorded: CheckpointError | None = None
            if end.failed_executor and self._checkpoint_id is not None:
                # for diagrams: who failed, and why
                record = {"executor_id": end.failed_executor, "error": end.error}
                try:
                    with store_call(self.store, "record the failure", end.run_id):
                        await self.store.put_write(self._checkpoint_id, FAILURE_KEY, record)
                except CheckpointError as exc:  # only for diagrams: the status matters more
                    unrecorded = exc
            await self._set_status(end.run_id, status)
            if unrecorded is not None:
                raise unrecorded
        elif status is not self._status and self._checkpoint_id is not None:
            # ended without committing a superstep here (a fork of a waiting run, a resume
            # with nothing to run): its only checkpoint of this process says "running"
            await self._set_status(end.run_id, status)

    async def _set_status(self, run_id: str, status: RunStatus) -> None:
        what = f"record the run's final status {status.value!r} (set_status)"
        with store_call(self.store, what, run_id):
            await self.store.set_status(run_id, self.workflow_name, status.value)

    def _checkpoint(self, snap: RunSnapshot) -> Checkpoint:
        parent = self._checkpoint_id
        count = self._count + 1
        run = dump_run(snap, count, self.registry)  # raises: the ids do not move on
        self._status = snap.status
        self._count = count
        self._since = 0
        self._checkpoint_id = checkpoint_id = f"{snap.run_id}@{count}"
        # what this superstep did, for diagrams (``visualize.load_overlay`` adds up a run)
        overlay = {"ran": self._ran, "messages": self._messages}
        self._ran, self._messages = [], {}
        data: dict[str, Any] = {"version": VERSION, "run": run, "overlay": overlay}
        if parent is None or (self.fork_of is not None and count == 1):
            # a run's first checkpoint describes the graph, to explain a refused resume later
            data["graph"] = dict(self.graph_description)
        observer = self._ctx.observer
        return Checkpoint(
            id=checkpoint_id,
            run_id=snap.run_id,
            superstep=snap.superstep,
            parent_id=parent,
            workflow_name=self.workflow_name,
            graph_hash=self.graph_hash,
            status=snap.status.value,
            data=data,
            trace=observer.trace_context() if observer is not None else None,
        )

    async def _save(
        self, snapshot: RunSnapshot, writes: dict[str, dict[str, Any]] | None = None
    ) -> None:
        await self._commit(self._checkpoint(snapshot), writes=writes)

    async def _commit(
        self,
        checkpoint: Checkpoint,
        announce: bool = True,
        writes: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        t0 = time.perf_counter()
        written = getattr(self.store, "bytes_written", None)
        with store_call(self.store, "save a checkpoint", checkpoint.run_id):
            if writes:  # the checkpoint and these pending writes after it: one atomic commit
                await self.store.save(checkpoint, writes=writes)
            else:
                await self.store.save(checkpoint)
        observer = self._ctx.observer
        if observer is not None:
            after = getattr(self.store, "bytes_written", None)
            observer.checkpoint_saved(
                run_id=checkpoint.run_id,
                checkpoint_id=checkpoint.id,
                duration=time.perf_counter() - t0,
                # new bytes this commit wrote (blobs already stored are not written again)
                size_bytes=after - written
                if isinstance(after, int) and isinstance(written, int)
                else None,
            )
        if announce:
            self._announce(checkpoint)

    def _announce(self, checkpoint: Checkpoint) -> None:
        self._ctx.emit(
            CheckpointSaved(
                run_id=checkpoint.run_id,
                superstep=checkpoint.superstep,
                checkpoint_id=checkpoint.id,
            )
        )


def _drop(event: Any) -> None:
    """Where events go before a run's ``started`` gave durability its context: nowhere."""


def store_durability(
    wf: Workflow,
    state: RunState,
    *,
    fork_of: str | None = None,
    trace_link: dict[str, str] | None = None,
    save_on_start: bool = False,
) -> StoreDurability:
    """Durability into ``wf``'s store for a run at ``state`` (its latest checkpoint's ids)."""
    store = wf.checkpoint_store
    assert store is not None
    return StoreDurability(
        store,
        workflow_name=wf.name,
        graph_hash=wf.graph_hash,
        graph_description=wf.graph.description,
        registry=registry_for(wf),
        background=wf.durability == "async",
        checkpoint_id=state.checkpoint_id,
        checkpoint_count=state.checkpoint_count,
        fork_of=fork_of,
        trace_link=trace_link,
        save_on_start=save_on_start,
        eager=wf.scheduling == "eager",
    )


async def load_state(
    wf: Workflow, run_id: str, checkpoint_id: str | None, *, fork: bool = False
) -> tuple[RunState, RunResult | None, StoreDurability]:
    """Load a run's state from the store: the latest checkpoint, or a fork of an earlier one.

    ``fork`` forks even from the latest checkpoint (time travel with edited state): the new
    run re-runs what had finished after it instead of carrying its pending writes.
    """
    store = wf.checkpoint_store
    try:
        with store_call(store, "load the latest checkpoint", run_id):
            latest = await store.latest(run_id)
    except CheckpointError:
        if checkpoint_id is None:
            raise
        latest = None  # a corrupt latest checkpoint: an earlier one can still be forked off
    else:
        if latest is None:
            raise CheckpointError(f"unknown run {run_id!r}: the store has no checkpoint for it")
    checkpoint = latest
    if checkpoint_id is not None and (latest is None or checkpoint_id != latest.id):
        with store_call(store, f"load checkpoint {checkpoint_id!r}", run_id):
            checkpoint = await store.load(checkpoint_id)
        if checkpoint.run_id != run_id:
            raise CheckpointError(
                f"checkpoint {checkpoint_id!r} belongs to run {checkpoint.run_id!r}, not {run_id!r}"
            )
    assert checkpoint is not None
    if checkpoint.graph_hash != wf.graph_hash:
        try:
            with store_call(store, "list checkpoints", run_id):
                history = await store.list_checkpoints(checkpoint.run_id)
        except CheckpointError:  # another checkpoint is unreadable: say what we can
            history = [checkpoint]
        first = next((c for c in history if "graph" in c.data), checkpoint)
        changes = (
            describe_changes(first.data["graph"], wf.graph.description)
            if "graph" in first.data
            else "its graph description is unavailable"
        )
        raise CheckpointError(
            f"checkpoint {checkpoint.id!r} of run {run_id!r} was made by a different graph "
            f"({changes}); resume it with the workflow that made it"
        )
    registry = registry_for(wf)
    # passed its checksum; the layout and the allowlist are checked here (edited, or foreign)
    state = load_run(checkpoint.data, registry, checkpoint_id=checkpoint.id)
    state.checkpoint_id = checkpoint.id
    link = checkpoint.trace
    if fork or checkpoint is not latest:  # time travel: a new run, its first parent that one
        state.run_id = f"{run_id}.fork-{uuid.uuid4().hex[:8]}"
        state.checkpoint_count = 0
        durability = store_durability(
            wf, state, fork_of=checkpoint.id, trace_link=link, save_on_start=True
        )
        return state, None, durability
    durability = store_durability(wf, state, trace_link=link)
    with store_call(store, "load pending writes", run_id):
        writes = await store.get_writes(checkpoint.id)
    what = f"checkpoint {checkpoint.id!r}"
    commits = load_commits(writes, registry, wf.graph, what=what, run_id=run_id)
    if commits:
        # an eager run's commits since its latest checkpoint: replayed, in commit order, and
        # saved as a new checkpoint when the run starts (it supersedes them)
        for c in commits:
            apply_commit(state, wf.graph, c, what)
        durability.save_on_start = True
    targets = {gi: group.targets[0] for gi, group in enumerate(wf.graph.groups)}
    for eid, data in writes.items():
        if eid == FAILURE_KEY or eid.startswith(EAGER_PREFIX):
            continue
        state.done[eid] = load_record(
            data,
            registry,
            what=f"the pending write of executor {eid!r} after checkpoint {checkpoint.id!r}",
            run_id=run_id,
            executor_id=eid,
            superstep=state.superstep + 1,
            fan_in_targets=targets,
        )
        durability.carried[eid] = data
    if checkpoint.status == RunStatus.COMPLETED.value:
        recorded = RunResult(
            run_id=run_id,
            status=RunStatus.COMPLETED,
            outputs=list(state.outputs),
            checkpoint_id=checkpoint.id,
        )
        return state, recorded, durability
    return state, None, durability
