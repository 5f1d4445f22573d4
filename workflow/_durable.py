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
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

import anyio

from ._checkpoint import Checkpoint
from ._errors import CheckpointError, store_call
from ._graph import describe_changes
from ._history import Breakpoint
from ._result import RunResult
from ._runner import Durability, Invocation, Reply, Runner, RunState, StepRecord
from ._serde import SerializationError, TypeRegistry, decode, encode
from ._types import RunStatus
from .events import CheckpointSaved

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = ("FAILURE_KEY", "StoreDurability", "load_state", "registry_for")

# Pending-write key of a failure record; "!" cannot start an executor id that matters here.
FAILURE_KEY = "!failed"


def registry_for(wf: Workflow) -> TypeRegistry:
    """The allowlist of one workflow: its handlers' types, nested workflows', and extras."""
    cached = getattr(wf, "_registry", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    registry = TypeRegistry([Reply, Breakpoint])
    seen: set[int] = set()

    def add(tp: Any) -> None:
        if isinstance(tp, type) and tp not in registry:
            try:
                registry.register(tp)
            except TypeError:
                pass  # builtins, protocols, plain classes: not registrable, not needed

    def walk(workflow: Workflow) -> None:
        if id(workflow) in seen:
            return
        seen.add(id(workflow))
        for tp in workflow.types:
            add(tp)
        for ex in workflow.executors.values():
            for spec in ex.handler_specs():
                for group in (spec.input_types, spec.output_types, spec.response_types):
                    for tp in group or ():
                        add(tp)
            for tp in ex.checkpoint_types():
                add(tp)
            child = getattr(ex, "workflow", None)
            if child is not None and hasattr(child, "executors"):
                walk(child)

    walk(wf)
    wf._registry = registry
    return registry


def _encode_state(state: RunState, registry: TypeRegistry) -> dict[str, Any]:
    raw = state.to_dict()
    return {
        "run_id": raw["run_id"],
        "superstep": raw["superstep"],
        "seq": raw["seq"],
        "checkpoint_count": raw["checkpoint_count"],
        "status": raw["status"],
        "inbox": encode(raw["inbox"], registry, path="messages in flight"),
        "state": encode(raw["state"], registry, path="state"),
        "local": encode(raw["local"], registry, path="executor_state"),
        "fan_in": encode(raw["fan_in"], registry, path="fan_in_buffers"),
        "pending": [_encode_request(r, registry) for r in raw["pending"]],
        "outputs": encode(raw["outputs"], registry, path="outputs"),
    }


def _encode_request(r: list[Any], registry: TypeRegistry) -> list[Any]:
    data = [
        r[0],
        r[1],
        encode(r[2], registry, path=f"request {r[0]!r}.payload"),
        registry.type_to_name(r[3]),
    ]
    if len(r) > 4:  # a nested workflow's request: the node taking the answer, its envelope
        data += [r[4], encode(r[5], registry, path=f"request {r[0]!r}.envelope")]
    return data


def _decode_request(r: list[Any], registry: TypeRegistry) -> list[Any]:
    data = [r[0], r[1], decode(r[2], registry), registry.name_to_type(r[3])]
    if len(r) > 4:
        data += [r[4], decode(r[5], registry)]
    return data


def _decode_state(data: dict[str, Any], registry: TypeRegistry) -> RunState:
    return RunState.from_dict(
        {
            "run_id": data["run_id"],
            "superstep": data["superstep"],
            "seq": data["seq"],
            "checkpoint_count": data["checkpoint_count"],
            "status": data["status"],
            "inbox": decode(data["inbox"], registry),
            "state": decode(data["state"], registry),
            "local": decode(data["local"], registry),
            "fan_in": decode(data["fan_in"], registry),
            "pending": [_decode_request(r, registry) for r in data["pending"]],
            "outputs": decode(data["outputs"], registry),
        }
    )


def _encode_outcome(inv: Invocation, registry: TypeRegistry) -> dict[str, Any]:
    raw = inv.outcome()
    where = f"executor {inv.node.id!r}"
    out = {k: encode(v, registry, path=f"{where} {k}") for k, v in raw.items() if k != "requests"}
    out["requests"] = [_encode_request(r, registry) for r in raw["requests"]]
    return out


def _decode_outcome(data: dict[str, Any], registry: TypeRegistry) -> dict[str, Any]:
    out = {k: decode(v, registry) for k, v in data.items() if k != "requests"}
    out["requests"] = [_decode_request(r, registry) for r in data["requests"]]
    return out


class StoreDurability(Durability):
    """Commits a run's checkpoints and pending writes to the workflow's store."""

    def __init__(
        self,
        wf: Workflow,
        state: RunState,
        *,
        fork_of: str | None = None,
        trace_link: dict[str, str] | None = None,
        save_on_start: bool = False,
    ) -> None:
        self.wf = wf
        self.store = wf.checkpoint_store
        self.registry = registry_for(wf)
        self.fork_of = fork_of
        self.trace_link = trace_link
        self.save_on_start = save_on_start or state.checkpoint_id is None
        self.background = wf.durability == "async"
        self._previous: anyio.Event | None = None
        # pending writes loaded with the state (encoded): recorded again, in the same commit,
        # with a checkpoint saved on start, which supersedes the one they were recorded against
        self.carried: dict[str, dict[str, Any]] = {}
        self._ran: list[str] = []
        self._messages: dict[str, int] = {}
        self._failed: dict[str, str] = {}
        self._status: RunStatus | None = None  # the status the last checkpoint records

    async def started(self, runner: Runner) -> None:
        if self.save_on_start:
            # answers given mid-superstep: the executors that had finished keep their record
            # (else a crash or failure from here on would run them again). It is committed with
            # the checkpoint, not after it: a crash in between would lose it just the same.
            await self._save(runner, RunStatus.RUNNING, writes=self.carried)

    async def executor_finished(self, runner: Runner, inv: Invocation) -> None:
        # Encode every outcome, even one the checkpoint will record: a value that cannot be
        # checkpointed fails *this* executor (the run ends FAILED naming it and the path to the
        # value; siblings' results and the last checkpoint are kept) instead of escaping
        # ``run`` from the commit, after the run's state already moved on.
        try:
            data = _encode_outcome(inv, self.registry)
        except SerializationError as exc:
            inv.error = exc
            return
        if len(runner.state.inbox) > 1 and runner.state.checkpoint_id is not None:
            if self._previous is not None:
                await self._previous.wait()  # async durability: its checkpoint must exist
            with store_call(self.store, "record a pending write", runner.state.run_id):
                await self.store.put_write(runner.state.checkpoint_id, inv.node.id, data)

    async def superstep_committed(self, runner: Runner, record: StepRecord) -> None:
        self._ran.extend(record.ran)
        self._messages = dict(record.messages)
        status = record.status
        if runner.background is None:
            await self._save(runner, status)
            return
        # async durability: encode now (the state moves on), write while the next step runs.
        # At most one checkpoint is in flight: waiting for the previous one here bounds what a
        # crash can lose to the last superstep (without it the run races ahead of its writes).
        if self._previous is not None:
            await self._previous.wait()
        checkpoint = self._checkpoint(runner, status)
        done = anyio.Event()
        self._previous = done

        async def write() -> None:
            try:
                await self._commit(runner, checkpoint, announce=False)
            finally:
                done.set()

        runner.background.start_soon(write)
        # announced on hand-off (see ``CheckpointSaved``): where the write finishes among the
        # next superstep's events depends on timing, and the event order must not
        self._announce(runner, checkpoint)

    async def paused(self, runner: Runner) -> None:
        if self._previous is not None:
            await self._previous.wait()  # async durability: its parent must exist first
        await self._save(runner, RunStatus.AWAITING_INPUT)

    async def finished(self, runner: Runner, status: RunStatus) -> None:
        st = runner.state
        if status in (RunStatus.FAILED, RunStatus.CANCELLED):
            failed = getattr(st.error, "executor_id", None)
            if failed and st.checkpoint_id is not None:  # for diagrams: who failed, and why
                error = st.error.__cause__ if st.error is not None else None
                record = {"executor_id": failed, "error": repr(error or st.error)}
                with store_call(self.store, "record the failure", st.run_id):
                    await self.store.put_write(st.checkpoint_id, FAILURE_KEY, record)
            with store_call(self.store, "record the run's status", st.run_id):
                await self.store.set_status(st.run_id, self.wf.name, status.value)
        elif status is not self._status and st.checkpoint_id is not None:
            # ended without committing a superstep here (a fork of a waiting run, a resume
            # with nothing to run): its only checkpoint of this process says "running"
            with store_call(self.store, "record the run's status", st.run_id):
                await self.store.set_status(st.run_id, self.wf.name, status.value)

    def _checkpoint(self, runner: Runner, status: RunStatus) -> Checkpoint:
        self._status = status
        st = runner.state
        parent = st.checkpoint_id
        st.checkpoint_count += 1
        st.checkpoint_id = f"{st.run_id}@{st.checkpoint_count}"
        try:
            run = _encode_state(st, self.registry)
        except BaseException:  # nothing is saved: the ids must not move on
            st.checkpoint_count -= 1
            st.checkpoint_id = parent
            raise
        # what this superstep did, for diagrams (``visualize.load_overlay`` adds up a run)
        overlay = {"ran": self._ran, "messages": self._messages}
        self._ran, self._messages = [], {}
        data: dict[str, Any] = {"run": run, "overlay": overlay}
        if parent is None or (self.fork_of is not None and st.checkpoint_count == 1):
            # a run's first checkpoint describes the graph, to explain a refused resume later
            data["graph"] = dict(self.wf.graph.description)
        return Checkpoint(
            id=st.checkpoint_id,
            run_id=st.run_id,
            superstep=st.superstep,
            parent_id=parent,
            workflow_name=self.wf.name,
            graph_hash=self.wf.graph_hash,
            status=status.value,
            data=data,
            trace=runner.observer.trace_context() if runner.observer is not None else None,
        )

    async def _save(
        self, runner: Runner, status: RunStatus, writes: dict[str, dict[str, Any]] | None = None
    ) -> None:
        await self._commit(runner, self._checkpoint(runner, status), writes=writes)

    async def _commit(
        self,
        runner: Runner,
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
        if runner.observer is not None:
            after = getattr(self.store, "bytes_written", None)
            runner.observer.checkpoint_saved(
                run_id=checkpoint.run_id,
                checkpoint_id=checkpoint.id,
                duration=time.perf_counter() - t0,
                # new bytes this commit wrote (blobs already stored are not written again)
                size_bytes=after - written
                if isinstance(after, int) and isinstance(written, int)
                else None,
            )
        if announce:
            self._announce(runner, checkpoint)

    def _announce(self, runner: Runner, checkpoint: Checkpoint) -> None:
        runner.sink.emit(
            CheckpointSaved(
                run_id=checkpoint.run_id,
                superstep=checkpoint.superstep,
                checkpoint_id=checkpoint.id,
            )
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
    try:
        state = _decode_state(checkpoint.data["run"], registry)
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {checkpoint.id!r} is missing {exc}") from None
    except (CheckpointError, TypeError, ValueError, IndexError, AttributeError) as exc:
        # passed its checksum but not the allowlist or the layout: edited, or foreign
        raise CheckpointError(
            f"checkpoint {checkpoint.id!r} of run {run_id!r} cannot be decoded ({exc}); "
            "resume from (or fork off) an earlier checkpoint instead"
        ) from None
    state.checkpoint_id = checkpoint.id
    link = checkpoint.trace
    if fork or checkpoint is not latest:  # time travel: a new run, its first parent that one
        state.run_id = f"{run_id}.fork-{uuid.uuid4().hex[:8]}"
        state.checkpoint_count = 0
        durability = StoreDurability(
            wf, state, fork_of=checkpoint.id, trace_link=link, save_on_start=True
        )
        return state, None, durability
    durability = StoreDurability(wf, state, trace_link=link)
    with store_call(store, "load pending writes", run_id):
        writes = await store.get_writes(checkpoint.id)
    for eid, data in writes.items():
        if eid == FAILURE_KEY:
            continue
        try:
            state.done[eid] = _decode_outcome(data, registry)
            durability.carried[eid] = data
        except (CheckpointError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(
                f"the pending write of executor {eid!r} after checkpoint {checkpoint.id!r} "
                f"cannot be decoded ({exc}); resume from (or fork off) an earlier checkpoint"
            ) from None
    if checkpoint.status == RunStatus.COMPLETED.value:
        recorded = RunResult(
            run_id=run_id,
            status=RunStatus.COMPLETED,
            outputs=list(state.outputs),
            checkpoint_id=checkpoint.id,
        )
        return state, recorded, durability
    return state, None, durability
