"""Durability against its protocol alone: a fake producer of commit records, no ``Runner``.

``StoreDurability`` is driven with hand-made frozen records (``workflow._commit``), the way
the superstep runner or an eager loop drives it; what it writes must be a run the real engine
resumes. This pins the protocol as the only thing durability depends on.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.workflow.test_durable import Calls, siblings
from workflow import RunStatus, SQLiteCheckpointStore, events
from workflow._commit import (
    CommitContext,
    InvocationRecord,
    RunEnd,
    RunSnapshot,
    SuperstepRecord,
)
from workflow._durable import FAILURE_KEY, store_durability
from workflow._runstate import RunState
from workflow._serde import SerializationError

pytestmark = pytest.mark.anyio

RUN = "fake"


def snapshot(
    superstep: int, seq: int, inbox: dict[str, Any], status: RunStatus, **rest: Any
) -> RunSnapshot:
    fields: dict[str, Any] = {
        "state": {},
        "local": {},
        "fan_in": {},
        "pending": (),
        "outputs": (),
    }
    fields.update(rest)
    return RunSnapshot(RUN, superstep, seq, status, inbox, **fields)


def fan_in_group(wf: Any) -> int:
    (gi,) = [g.index for g in wf.graph.groups if g.kind == "fan_in"]
    return int(gi)


async def produce_a_failed_superstep(wf: Any, ctx: CommitContext) -> Any:
    """What a scheduler would report: ``start`` ran, then ``ok`` finished and ``flaky`` failed."""
    dur = store_durability(wf, RunState(run_id=RUN))
    first = snapshot(0, 1, {"start": ((-1, 0, None, 1, False),)}, RunStatus.RUNNING)
    await dur.started(first, ctx)
    assert dur.checkpoint_id == f"{RUN}@1"
    alone = InvocationRecord(
        RUN, "start", 1, deliveries=(("ok", 0, 2), ("flaky", 1, 2)), messages={"ok": 1, "flaky": 1}
    )
    assert await dur.invocation_finished(alone) is None  # alone: the checkpoint is its record
    after = snapshot(
        1,
        3,
        {"ok": ((0, 1, "start", 2, False),), "flaky": ((1, 2, "start", 2, False),)},
        RunStatus.RUNNING,
        state={"seen start": 1},
        local={"start": {"count": 1}},
    )
    step = SuperstepRecord(1, ("start",), {"start->ok": 1, "start->flaky": 1}, after.status, after)
    await dur.superstep_committed(step)
    assert dur.checkpoint_id == f"{RUN}@2"
    ok = InvocationRecord(
        RUN,
        "ok",
        2,
        fan_in=((fan_in_group(wf), 3),),
        outputs=("ok:2",),
        state_writes={"seen ok": 2},
        local_writes={"count": 1},
        messages={"join": 1},
        concurrent=True,
    )
    assert await dur.invocation_finished(ok) is None
    await dur.finished(RunEnd(RUN, RunStatus.FAILED, "flaky", "RuntimeError('flaky is down')"))
    return dur


async def test_records_alone_make_a_run_the_engine_resumes(tmp_path: Path) -> None:
    calls: Calls = collections.Counter()
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    wf = siblings(store, calls, set())
    seen: list[events.WorkflowEvent] = []
    await produce_a_failed_superstep(wf, CommitContext(seen.append))

    saved = [e for e in seen if isinstance(e, events.CheckpointSaved)]
    assert [(e.checkpoint_id, e.superstep) for e in saved] == [(f"{RUN}@1", 0), (f"{RUN}@2", 1)]
    history = await store.list_checkpoints(RUN)
    assert [c.parent_id for c in history] == [None, f"{RUN}@1"]
    assert "graph" in history[0].data
    assert "graph" not in history[1].data
    assert history[1].data["overlay"] == {
        "ran": ["start"],
        "messages": {"start->ok": 1, "start->flaky": 1},
    }
    writes = await store.get_writes(f"{RUN}@2")
    assert set(writes) == {"ok", FAILURE_KEY}
    assert writes[FAILURE_KEY]["executor_id"] == "flaky"
    (info,) = [r for r in await store.list_runs() if r.run_id == RUN]
    assert info.status == "failed"

    # the real engine takes it from there: only ``flaky`` runs, ``ok``'s write is replayed
    done = await wf.resume(RUN)
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.outputs == ["ok:2", "flaky:2", {"sum": 6}]
    assert calls == {"flaky": 1, "join": 1}
    await store.aclose()


async def test_a_value_that_cannot_be_checkpointed_fails_that_invocation(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    wf = siblings(store, collections.Counter(), set())
    dur = store_durability(wf, RunState(run_id=RUN))
    await dur.started(snapshot(0, 1, {}, RunStatus.RUNNING), CommitContext(lambda e: None))
    bad = InvocationRecord(RUN, "ok", 1, outputs=(object(),), concurrent=True)
    error = await dur.invocation_finished(bad)
    assert isinstance(error, SerializationError)
    assert "'ok'" in str(error)  # names the executor
    assert await store.get_writes(f"{RUN}@1") == {}
    await store.aclose()


async def test_async_durability_writes_in_the_spawned_background(tmp_path: Path) -> None:
    store = SQLiteCheckpointStore(tmp_path / "runs.db")
    wf = siblings(store, collections.Counter(), set(), durability="async")
    dur = store_durability(wf, RunState(run_id=RUN))
    assert dur.background
    seen: list[events.WorkflowEvent] = []
    spawned: list[str] = []
    async with anyio.create_task_group() as tg:

        def spawn(fn: Any) -> None:
            spawned.append(fn.__name__)
            tg.start_soon(fn)

        ctx = CommitContext(seen.append, None, spawn)
        await dur.started(
            snapshot(0, 1, {"start": ((-1, 0, None, 1, False),)}, RunStatus.RUNNING), ctx
        )
        done = snapshot(1, 1, {}, RunStatus.COMPLETED, outputs=("x",))
        await dur.superstep_committed(SuperstepRecord(1, ("start",), {}, done.status, done))
        # announced on hand-off, before the write has necessarily happened
        assert [e.checkpoint_id for e in seen] == [f"{RUN}@1", f"{RUN}@2"]
    assert spawned == ["write"]
    latest = await store.latest(RUN)
    assert latest is not None
    assert (latest.id, latest.status) == (f"{RUN}@2", "completed")
    await dur.finished(RunEnd(RUN, RunStatus.COMPLETED))
    assert (await wf.resume(RUN)).outputs == ["x"]
    await store.aclose()
