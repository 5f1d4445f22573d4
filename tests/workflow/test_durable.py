"""Durable runs in one process: checkpoints, pending writes, resume, fork, refusal, tamper.

Every test runs on SQLite and on files; "a new workflow object" always means a fresh build
and a fresh store object over the same storage, sharing nothing with the first but the disk.
Process-level crash tests live in ``test_crash.py``.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import pickle
import random
import sqlite3
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from builders import WorkflowBuilder
from tests.loop_event import LoopEvent
from workflow import (
    Case,
    CheckpointError,
    Default,
    Executor,
    ExecutorFailedError,
    FileCheckpointStore,
    PostgresCheckpointStore,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowContext,
    events,
    handler,
    response_handler,
)
from workflow._checkpoint import SCHEMA_VERSION
from workflow._durable import registry_for
from workflow._schema import load_run
from workflow._serde import SerializationError, dumps, loads
from workflow._stores._common import fs_key

pytestmark = pytest.mark.anyio

Calls = collections.Counter[str]


# --------------------------------------------------------------------------- backends


@dataclass
class Backend:
    """One kind of store: open fresh objects over the same storage, and edit it behind them."""

    kind: str
    root: Path
    opened: list[Any] = field(default_factory=list)

    def open(self) -> Any:
        if self.kind == "sqlite":
            store: Any = SQLiteCheckpointStore(self.root / "runs.db")
        else:
            store = FileCheckpointStore(self.root / "store")
        self.opened.append(store)
        return store

    def read_raw(self, checkpoint_id: str, run_id: str) -> tuple[bytes, str]:
        """The stored envelope bytes of a checkpoint and the checksum kept next to them."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.root / "runs.db") as conn:
                payload, checksum = conn.execute(
                    "SELECT payload, checksum FROM checkpoints WHERE id = ?", (checkpoint_id,)
                ).fetchone()
            return bytes(payload), checksum
        header, _, payload = self._file(checkpoint_id, run_id).read_bytes().partition(b"\n")
        return payload, header.decode().split(" ")[0]

    def write_raw(self, checkpoint_id: str, run_id: str, payload: bytes, checksum: str) -> None:
        """Replace a checkpoint's stored bytes (and checksum) in place."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.root / "runs.db") as conn:
                conn.execute(
                    "UPDATE checkpoints SET payload = ?, checksum = ? WHERE id = ?",
                    (payload, checksum, checkpoint_id),
                )
            return
        path = self._file(checkpoint_id, run_id)
        header = path.read_bytes().partition(b"\n")[0].decode().split(" ")
        path.write_bytes(f"{checksum} {header[1]}\n".encode() + payload)

    def _file(self, checkpoint_id: str, run_id: str) -> Path:
        return self.root / "store" / "runs" / fs_key(run_id) / f"{fs_key(checkpoint_id)}.ckpt"


@pytest.fixture(params=["sqlite", "file"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = Backend(request.param, tmp_path)
    yield made
    for store in made.opened:
        await store.aclose()


# --------------------------------------------------------------------------- executors


class Step(Executor):
    """``x -> x + 1``, counting calls; fails while ``broken`` holds its id."""

    def __init__(
        self,
        id: str,
        calls: Calls,
        broken: set[str] | None = None,
        *,
        output: bool = False,
    ) -> None:
        super().__init__(id)
        self.calls, self.broken, self.output = (
            calls,
            broken if broken is not None else set(),
            output,
        )

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> int:
        self.calls[self.id] += 1
        if self.id in self.broken:
            raise RuntimeError(f"{self.id} is down")
        await ctx.set_state(f"seen {self.id}", x)
        await ctx.set_executor_state("count", await ctx.get_executor_state("count", 0) + 1)
        if self.output:
            await ctx.yield_output(f"{self.id}:{x}")
        return x + 1


class Collect(Executor):
    """A fan-in target: outputs the sum of its inputs."""

    def __init__(self, id: str, calls: Calls) -> None:
        super().__init__(id)
        self.calls = calls

    @handler
    async def on(self, xs: list[int], ctx: WorkflowContext[Any]) -> None:
        self.calls[self.id] += 1
        await ctx.yield_output({"sum": sum(xs)})


def chain(store: Any, calls: Calls, n: int = 4, **options: Any) -> Workflow:
    """``s0 -> s1 -> ... -> s{n-1}``; the last one's return value is the output."""
    steps = [Step(f"s{i}", calls) for i in range(n)]
    return (
        WorkflowBuilder(start=steps[0], name="chain", checkpoint_store=store, **options)
        .add_chain(steps)
        .build()
    )


def siblings(store: Any, calls: Calls, broken: set[str], **options: Any) -> Workflow:
    """``start`` fans out to ``ok`` and ``flaky``; both feed ``join`` (fan-in)."""
    start = Step("start", calls)
    ok = Step("ok", calls, broken, output=True)
    flaky = Step("flaky", calls, broken, output=True)
    join = Collect("join", calls)
    return (
        WorkflowBuilder(start=start, name="siblings", checkpoint_store=store, **options)
        .add_fan_out_edges(start, [ok, flaky])
        .add_fan_in_edges([ok, flaky], join)
        .build()
    )


async def state_of(store: Any, checkpoint_id: str, wf: Workflow) -> Any:
    """The ``RunState`` a checkpoint holds, decoded the way a resume decodes it."""
    checkpoint = await store.load(checkpoint_id)
    return load_run(checkpoint.data, registry_for(wf), checkpoint_id=checkpoint_id)


# --------------------------------------------------------------------------- checkpoints


async def test_a_checkpoint_per_superstep_holds_the_committed_state(backend: Backend) -> None:
    calls: Calls = collections.Counter()
    start, a, b = Step("start", calls), Step("a", calls), Step("b", calls)
    a2, join = Step("a2", calls), Collect("join", calls)
    wf = (
        WorkflowBuilder(start=start, name="shapes", checkpoint_store=backend.open())
        .add_fan_out_edges(start, [a, b])
        .add_edge(a, a2)
        .add_fan_in_edges([a2, b], join)  # b's message waits in the fan-in buffer for a2's
        .build()
    )
    result = await wf.run(1, run_id="shapes")
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == [{"sum": 7}]
    store = backend.open()
    history = await store.list_checkpoints("shapes")
    assert [c.superstep for c in history] == [0, 1, 2, 3, 4]
    assert [c.parent_id for c in history] == [None, *(c.id for c in history[:-1])]
    assert {(c.workflow_name, c.graph_hash, c.schema_version) for c in history} == {
        ("shapes", wf.graph_hash, SCHEMA_VERSION)
    }
    assert [c.status for c in history] == ["running"] * 4 + ["completed"]
    assert result.checkpoint_id == history[-1].id
    # the first checkpoint is committed once the input is accepted, before anything runs
    kinds = [type(e) for e in result.events]
    assert kinds.index(events.CheckpointSaved) < kinds.index(events.ExecutorInvoked)
    first = await state_of(store, history[0].id, wf)
    assert [d[3] for d in first.inbox["start"]] == [1]
    after_2 = await state_of(store, history[2].id, wf)
    assert sorted(after_2.inbox) == ["a2"]  # in-flight message
    assert list(after_2.fan_in.values()) == [{"b": [3]}]  # b's result, buffered
    assert after_2.state == {"seen start": 1, "seen a": 2, "seen b": 2}
    assert after_2.local == {"start": {"count": 1}, "a": {"count": 1}, "b": {"count": 1}}
    last = await state_of(store, history[-1].id, wf)
    assert last.outputs == result.outputs
    assert not last.inbox
    assert not last.fan_in


async def test_pending_requests_are_in_the_checkpoint_and_survive_a_new_object(
    backend: Backend,
) -> None:
    wf = human(backend.open())
    first = await wf.run("x", run_id="ask")
    assert first.status is RunStatus.AWAITING_INPUT
    store = backend.open()
    latest = await store.latest("ask")
    assert latest is not None
    assert latest.status == "awaiting_input"
    held = await state_of(store, latest.id, wf)
    assert [(r.payload, r.response_type) for r in held.pending.values()] == [
        (Question("approve x?"), bool),
        (Question("comment on x?"), str),
    ]
    approve, comment = (r.request_id for r in first.pending_requests)
    again = human(backend.open())
    count = len(await store.list_checkpoints("ask"))
    with pytest.raises(TypeError, match=r"must be bool, got str"):
        await again.resume("ask", responses={approve: "yes please"})
    assert len(await store.list_checkpoints("ask")) == count  # nothing was stored
    with pytest.raises(KeyError, match="no pending request 'nope'"):
        await again.resume("ask", responses={approve: True, "nope": 1})
    assert len(await store.list_checkpoints("ask")) == count
    second = await human(backend.open()).resume("ask", responses={approve: False})
    assert second.status is RunStatus.AWAITING_INPUT
    assert [r.request_id for r in second.pending_requests] == [comment]
    third = await human(backend.open()).resume("ask", responses={comment: "later"})
    assert third.status is RunStatus.COMPLETED
    assert third.outputs == ["APPROVE X? -> NO", "COMMENT ON X? -> LATER"]


@dataclass(frozen=True)
class Question:
    text: str


class Asker(Executor):
    @handler
    async def on(self, topic: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"approve {topic}?"), response_type=bool)
        await ctx.request_info(Question(f"comment on {topic}?"), response_type=str)

    @response_handler
    async def on_bool(self, request: Question, answer: bool, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {'yes' if answer else 'no'}".upper()

    @response_handler
    async def on_text(self, request: Question, answer: str, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {answer}".upper()


def human(store: Any) -> Workflow:
    return WorkflowBuilder(start=Asker("asker"), name="human", checkpoint_store=store).build()


# --------------------------------------------------------------------------- failure and resume


async def test_failed_sibling_alone_reruns_on_a_new_workflow_object(backend: Backend) -> None:
    calls: Calls = collections.Counter()
    failed = await siblings(backend.open(), calls, {"flaky"}).run(1, run_id="f1")
    assert failed.status is RunStatus.FAILED
    assert isinstance(failed.error, ExecutorFailedError)
    assert failed.error.executor_id == "flaky"
    assert failed.outputs == ["ok:2"]  # the sibling's result is kept
    runs = {r.run_id: r.status for r in await backend.open().list_runs()}
    assert runs["f1"] == "failed"
    assert calls == {"start": 1, "ok": 1, "flaky": 1}
    # a new process: nothing shared but the storage (the counter only counts)
    done = await siblings(backend.open(), calls, set()).resume("f1")
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["ok:2", "flaky:2", {"sum": 6}]
    assert calls == {"start": 1, "ok": 1, "flaky": 2, "join": 1}
    # the sibling's state and executor state came back from its pending write
    store = backend.open()
    latest = await store.latest("f1")
    assert latest is not None
    final = await state_of(store, latest.id, siblings(None, calls, set()))
    assert final.state["seen ok"] == 2
    assert final.local["ok"] == {"count": 1}


async def test_resuming_a_completed_run_runs_nothing_and_returns_its_result(
    backend: Backend,
) -> None:
    calls: Calls = collections.Counter()
    first = await chain(backend.open(), calls).run(0, run_id="done")
    assert first.outputs == [4]
    store = backend.open()
    count = len(await store.list_checkpoints("done"))
    again = await chain(store, calls).resume("done")
    assert again.status is RunStatus.COMPLETED
    assert again.outputs == [4]
    assert again.run_id == "done"
    assert calls == {"s0": 1, "s1": 1, "s2": 1, "s3": 1}
    assert len(await store.list_checkpoints("done")) == count
    streamed = [e async for e in chain(store, calls).resume_stream("done")]
    assert [type(e).__name__ for e in streamed] == ["RunStarted", "RunFinished"]
    assert streamed[-1].status is RunStatus.COMPLETED
    assert calls == {"s0": 1, "s1": 1, "s2": 1, "s3": 1}
    with pytest.raises(CheckpointError, match="already completed"):
        await chain(store, calls).resume("done", responses={"x": 1})


async def test_unknown_run_and_unknown_checkpoint_are_checkpoint_errors(backend: Backend) -> None:
    calls: Calls = collections.Counter()
    wf = chain(backend.open(), calls)
    with pytest.raises(CheckpointError, match="unknown run 'ghost'"):
        await wf.resume("ghost")
    await wf.run(0, run_id="r")
    with pytest.raises(CheckpointError, match="unknown checkpoint 'r@99'"):
        await wf.resume("r", checkpoint_id="r@99")
    await wf.run(0, run_id="other")
    with pytest.raises(CheckpointError, match="belongs to run 'other', not 'r'"):
        await wf.resume("r", checkpoint_id="other@2")


# --------------------------------------------------------------------------- fork


async def test_fork_from_an_earlier_checkpoint_is_a_new_run_and_leaves_history(
    backend: Backend,
) -> None:
    calls: Calls = collections.Counter()
    original = await chain(backend.open(), calls).run(0, run_id="orig")
    store = backend.open()
    before = [(c.id, c.parent_id, c.status) for c in await store.list_checkpoints("orig")]
    at_2 = before[2][0]  # s0 and s1 had finished
    calls.clear()
    fork = await chain(backend.open(), calls).resume("orig", checkpoint_id=at_2)
    assert fork.status is RunStatus.COMPLETED
    assert fork.outputs == original.outputs
    assert fork.run_id != "orig"
    assert calls == {"s2": 1, "s3": 1}  # executors finished before that checkpoint did not run
    forked = await store.list_checkpoints(fork.run_id)
    assert forked[0].parent_id == at_2
    assert [c.parent_id for c in forked[1:]] == [c.id for c in forked[:-1]]
    assert [c.superstep for c in forked] == [2, 3, 4]
    assert [(c.id, c.parent_id, c.status) for c in await store.list_checkpoints("orig")] == before
    latest = await store.latest("orig")
    assert latest is not None
    assert latest.id == before[-1][0]
    assert {r.run_id for r in await store.list_runs()} == {"orig", fork.run_id}
    # the fork is a run like any other: resuming it returns its result
    assert (await chain(store, calls).resume(fork.run_id)).outputs == [4]
    assert calls == {"s2": 1, "s3": 1}


async def test_fork_with_responses_answers_the_forked_copy_only(backend: Backend) -> None:
    first = await human(backend.open()).run("y", run_id="q")
    approve = first.pending_requests[0].request_id
    store = backend.open()
    paused = await store.latest("q")
    assert paused is not None
    answered = await human(store).resume("q", responses={approve: True})
    assert answered.outputs == ["APPROVE Y? -> YES"]
    fork = await human(backend.open()).resume(
        "q", checkpoint_id=paused.id, responses={approve: False}
    )
    assert fork.run_id != "q"
    assert fork.outputs == ["APPROVE Y? -> NO"]
    assert [r.request_id for r in fork.pending_requests] == [
        r.request_id for r in answered.pending_requests
    ]


# --------------------------------------------------------------------------- graph changes


def variant(store: Any, calls: Calls, shape: str) -> Workflow:
    s = {name: Step(name, calls) for name in ("s0", "s1", "s2", "extra")}
    b = WorkflowBuilder(start=s["s0"], name="chain", checkpoint_store=store)
    if shape == "added":
        return b.add_chain([s["s0"], s["s1"], s["s2"], s["extra"]]).build()
    if shape == "removed":
        return b.add_chain([s["s0"], s["s1"]]).build()
    if shape == "rewired":
        return b.add_fan_out_edges(s["s0"], [s["s1"], s["s2"]]).build()
    return b.add_chain([s["s0"], s["s1"], s["s2"]]).build()


@pytest.mark.parametrize(
    ("shape", "described"),
    [
        ("added", r"executors added: extra; edges added: direct s2->extra"),
        ("removed", r"executors removed: s2; edges removed: direct s1->s2"),
        (
            "rewired",
            r"edges added: fan_out s0->s1,s2; edges removed: direct s0->s1; direct s1->s2",
        ),
    ],
)
async def test_a_changed_graph_is_refused_with_what_changed(
    backend: Backend, shape: str, described: str
) -> None:
    calls: Calls = collections.Counter()
    wf = variant(backend.open(), calls, "same")
    await wf.run(0, run_id="g")
    history = await backend.open().list_checkpoints("g")
    calls.clear()
    changed = variant(backend.open(), calls, shape)
    assert changed.graph_hash != wf.graph_hash
    for checkpoint_id in (None, history[1].id):
        with pytest.raises(CheckpointError) as info:
            await changed.resume("g", checkpoint_id=checkpoint_id)
        message = str(info.value)
        assert "was made by a different graph" in message
        assert described in message, message
        assert "resume it with the workflow that made it" in message
    assert not calls  # nothing ran
    assert len(await backend.open().list_checkpoints("g")) == len(history)


# --------------------------------------------------------------------------- durability modes


class Jittery:
    """Delegates to a store, with seeded random latency on every save and pending write."""

    def __init__(self, store: Any, seed: int) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.pause = random.Random(-seed)
        self.saved: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def save(self, checkpoint: Any, **kw: Any) -> None:
        await anyio.sleep(self.rng.uniform(0, 0.02))
        await self.store.save(checkpoint, **kw)
        self.saved.append(checkpoint.superstep)

    async def put_write(self, *args: Any) -> None:
        await anyio.sleep(self.rng.uniform(0, 0.01))
        await self.store.put_write(*args)


def looped(
    store: Any, calls: Calls, seen: list[tuple[int, int]] | None = None, **kw: Any
) -> Workflow:
    """A counter loop with a fan-out each round: ``head -> [w1, w2] -> join -> head``."""

    class Head(Executor):
        @handler
        async def on(self, n: int, ctx: WorkflowContext[int]) -> int:
            calls[self.id] += 1
            pause = getattr(store, "pause", None)
            if pause is not None:  # executors as slow as the writes, or slower
                await anyio.sleep(pause.uniform(0, 0.03))
            if seen is not None:
                saved = getattr(store, "saved", [])
                seen.append((3 * n + 1, max(saved, default=-1)))
            return n

    class Join(Executor):
        @handler
        async def on(self, xs: list[int], ctx: WorkflowContext[int]) -> int:
            calls[self.id] += 1
            await ctx.set_state("total", await ctx.get_state("total", 0) + sum(xs))
            await ctx.yield_output(await ctx.get_state("total", 0) + sum(xs))
            return xs[0]

    head, join = Head("head"), Join("join")
    w1, w2 = Step("w1", calls), Step("w2", calls)
    return (
        WorkflowBuilder(start=head, name="looped", checkpoint_store=store, **kw)
        .add_fan_out_edges(head, [w1, w2])
        .add_fan_in_edges([w1, w2], join)
        .add_switch_case_edge_group(
            join, [Case(lambda n: n < 8, head), Default(Step("end", calls))]
        )
        .build()
    )


async def test_async_durability_gives_the_same_outputs_events_and_checkpoints(
    backend: Backend,
) -> None:
    calls: Calls = collections.Counter()
    sync = await looped(backend.open(), calls).run(0, run_id="sync")
    runs = []
    for seed in range(3):
        store = Jittery(backend.open(), seed)
        runs.append(await looped(store, calls, durability="async").run(0, run_id=f"async{seed}"))
    store = backend.open()
    sync_steps = [c.superstep for c in await store.list_checkpoints("sync")]
    for result in runs:
        assert result.status is RunStatus.COMPLETED
        assert result.outputs == sync.outputs
        history = await store.list_checkpoints(result.run_id)
        assert [c.superstep for c in history] == sync_steps
        assert [c.parent_id for c in history[1:]] == [c.id for c in history[:-1]]
        assert result.checkpoint_id == history[-1].id
        latest = await state_of(store, history[-1].id, looped(None, calls))
        assert latest.outputs == sync.outputs
    # the event order is deterministic, CheckpointSaved included
    shapes = [[(type(e).__name__, e.superstep) for e in r.events] for r in [sync, *runs]]
    assert shapes[1] == shapes[2] == shapes[3]
    assert [s for s in shapes[1] if s[0] != "CheckpointSaved"] == [
        s for s in shapes[0] if s[0] != "CheckpointSaved"
    ]


async def test_async_durability_loses_at_most_the_last_superstep(backend: Backend) -> None:
    """Superstep k runs only once checkpoint k-2 is durable: one write in flight at most."""
    calls: Calls = collections.Counter()
    seen: list[tuple[int, int]] = []
    store = Jittery(backend.open(), 7)
    result = await looped(store, calls, seen, durability="async").run(0, run_id="lag")
    assert result.status is RunStatus.COMPLETED
    assert len(seen) == 8  # rounds 0..7
    for step, saved in seen:
        assert saved >= step - 2, f"superstep {step} ran with only checkpoint {saved} saved"


async def test_async_durability_failure_then_resume_completes(backend: Backend) -> None:
    calls: Calls = collections.Counter()
    kw: dict[str, Any] = {"durability": "async"}
    failed = await siblings(backend.open(), calls, {"flaky"}, **kw).run(1, run_id="af")
    assert failed.status is RunStatus.FAILED
    done = await siblings(backend.open(), calls, set(), **kw).resume("af")
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["ok:2", "flaky:2", {"sum": 6}]
    assert calls == {"start": 1, "ok": 1, "flaky": 2, "join": 1}


# --------------------------------------------------------------------------- storage growth

BIG = "z" * 100_000


def carrier(store: Any, rounds: int, in_state: bool) -> Workflow:
    class Carry(Executor):
        @handler
        async def on(self, m: list[Any], ctx: WorkflowContext[list[Any]]) -> list[Any]:
            if in_state and m[0] == 0:
                await ctx.set_state("payload", m[1])
            n = m[0] + 1
            return [n, None] if in_state else [n, m[1]]

    class End(Executor):
        @handler
        async def on(self, m: list[Any], ctx: WorkflowContext[Any]) -> None:
            payload = await ctx.get_state("payload") if in_state else m[1]
            await ctx.yield_output([m[0], len(payload)])

    carry = Carry("carry")
    return (
        WorkflowBuilder(start=carry, name="carrier", checkpoint_store=store, max_supersteps=500)
        .add_switch_case_edge_group(
            carry, [Case(lambda m: m[0] < rounds, carry), Default(End("end"))]
        )
        .build()
    )


@pytest.mark.parametrize("in_state", [True, False], ids=["state", "message"])
async def test_an_unchanged_100kb_payload_over_100_supersteps_is_written_once(
    backend: Backend, in_state: bool
) -> None:
    store = backend.open()
    result = await carrier(store, 100, in_state).run([0, BIG], run_id="big")
    assert result.outputs == [[100, 100_000]]
    history = await store.list_checkpoints("big")
    assert len(history) == 102
    assert store.bytes_written <= 1_000_000, store.bytes_written
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.root / "runs.db") as conn:
            stored = conn.execute(
                "SELECT (SELECT sum(length(data)) FROM blobs) + "
                "(SELECT sum(length(payload)) FROM checkpoints)"
            ).fetchone()[0]
        assert stored <= 1_000_000, stored
    else:
        stored = sum(p.stat().st_size for p in (backend.root / "store").rglob("*") if p.is_file())
        assert stored <= 1_000_000, stored
    # and every checkpoint still loads the whole payload
    state = await state_of(store, history[50].id, carrier(None, 100, in_state))
    carried = state.state["payload"] if in_state else state.inbox["carry"][0][3][1]
    assert carried == BIG


# --------------------------------------------------------------------------- serialization


class Foo:
    """Not a dataclass, not a model: not checkpointable."""


@dataclass(frozen=True)
class Doc:
    title: str
    author: Any


class Writer(Executor):
    def __init__(self, calls: Calls, good: bool) -> None:
        super().__init__("writer")
        self.calls, self.good = calls, good

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> int:
        self.calls[self.id] += 1
        docs = [Doc(f"d{i}", "ann") for i in range(3)]
        await ctx.set_state("docs", [*docs, Doc("d3", "bob" if self.good else Foo())])
        return x + 1


@pytest.mark.parametrize("fan_out", [False, True], ids=["alone", "with-sibling"])
async def test_a_value_that_cannot_be_serialized_fails_the_run_naming_its_path(
    backend: Backend, fan_out: bool
) -> None:
    def build(store: Any, calls: Calls, good: bool) -> Workflow:
        start, writer = Step("start", calls), Writer(calls, good)
        b = WorkflowBuilder(start=start, name="ser", checkpoint_store=store, types=[Doc])
        if fan_out:
            return b.add_fan_out_edges(start, [writer, Step("ok", calls, output=True)]).build()
        return b.add_edge(start, writer).build()

    calls: Calls = collections.Counter()
    result = await build(backend.open(), calls, good=False).run(1, run_id="ser")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "writer"
    cause = result.error.__cause__
    assert isinstance(cause, SerializationError)
    assert "state['docs'][3].author: type Foo is not serializable" in str(cause)
    assert "state['docs'][3].author" in str(result.error)
    store = backend.open()
    assert {r.run_id: r.status for r in await store.list_runs()}["ser"] == "failed"
    history = await store.list_checkpoints("ser")
    assert [c.superstep for c in history] == [0, 1]  # nothing committed was lost
    assert result.checkpoint_id == history[-1].id
    # fixed code resumes from there; a sibling that had finished does not run again
    done = await build(backend.open(), calls, good=True).resume("ser")
    assert done.status is RunStatus.COMPLETED
    assert calls["writer"] == 2
    assert calls["start"] == 1
    if fan_out:
        assert calls["ok"] == 1
        assert done.outputs == [3, "ok:2", 3]  # writer's and ok's returns are outputs too


# --------------------------------------------------------------------------- cancellation


class Sleepy(Executor):
    """Waits for ``release`` (set by the test) unless ``awake``; then passes the value on."""

    def __init__(self, calls: Calls, started: LoopEvent | None) -> None:
        super().__init__("sleepy")
        self.calls, self.started = calls, started

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> int:
        self.calls[self.id] += 1
        if self.started is not None:
            self.started.set()
            await anyio.sleep_forever()
        await ctx.yield_output(f"sleepy:{x}")
        return x + 1


def sleepy(store: Any, calls: Calls, started: LoopEvent | None, **kw: Any) -> Workflow:
    start = Step("start", calls)
    return (
        WorkflowBuilder(start=start, name="sleepy", checkpoint_store=store, **kw)
        .add_fan_out_edges(start, [Step("quick", calls, output=True), Sleepy(calls, started)])
        .build()
    )


class WriteWatch:
    """Delegates to a store; ``written[executor_id]`` is set once that pending write landed."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.written: collections.defaultdict[str, anyio.Event] = collections.defaultdict(
            anyio.Event
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def put_write(self, checkpoint_id: str, executor_id: str, data: Any) -> None:
        await self.store.put_write(checkpoint_id, executor_id, data)
        self.written[executor_id].set()


@pytest.mark.parametrize("durability", ["sync", "async"])
@pytest.mark.parametrize("how", ["task", "stream"])
async def test_cancellation_is_recorded_keeps_the_checkpoint_and_resumes(
    backend: Backend, how: str, durability: str
) -> None:
    calls: Calls = collections.Counter()
    started = LoopEvent()
    watch = WriteWatch(backend.open())
    wf = sleepy(watch, calls, started, durability=durability)
    if how == "task":
        async with anyio.create_task_group() as tg:
            tg.start_soon(functools.partial(wf.run, 1, run_id="c"))
            await started.wait()
            await watch.written["quick"].wait()  # quick's result is recorded
            tg.cancel_scope.cancel()
    else:
        async with anyio.create_task_group() as tg:

            async def consume() -> None:
                async with contextlib.aclosing(wf.run_stream(1, run_id="c")) as stream:
                    async for event in stream:
                        if (
                            isinstance(event, events.ExecutorInvoked)
                            and event.executor_id == "sleepy"
                        ):
                            await started.wait()
                            await watch.written["quick"].wait()
                            break  # leaving the stream early cancels the run

            tg.start_soon(consume)
    store = backend.open()
    assert {r.run_id: r.status for r in await store.list_runs()}["c"] == "cancelled"
    history = await store.list_checkpoints("c")
    assert [c.superstep for c in history] == [0, 1]
    latest = await store.latest("c")
    assert latest is not None
    assert latest.id == history[-1].id
    done = await sleepy(backend.open(), calls, None, durability=durability).resume("c")
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["quick:2", 3, "sleepy:2", 3]
    assert calls == {"start": 1, "quick": 1, "sleepy": 2}


# --------------------------------------------------------------------------- tampering


async def run_to_awaiting(backend: Backend, calls: Calls) -> list[str]:
    """A paused run ``t`` (s0 -> s1 -> asker) with four checkpoints; returns their ids."""
    wf = tamper_target(backend.open(), calls)
    result = await wf.run(0, run_id="t")
    assert result.status is RunStatus.AWAITING_INPUT
    return [c.id for c in await backend.open().list_checkpoints("t")]


class IntAsker(Executor):
    @handler
    async def on(self, x: int, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"go {x}?"), response_type=bool)

    @response_handler
    async def on_bool(self, request: Question, answer: bool, ctx: WorkflowContext[Any]) -> None:
        await ctx.yield_output(request.text)


def tamper_target(store: Any, calls: Calls) -> Workflow:
    s0, s1 = Step("s0", calls), Step("s1", calls)
    return (
        WorkflowBuilder(start=s0, name="tamper", checkpoint_store=store)
        .add_chain([s0, s1, IntAsker("asker")])
        .build()
    )


def reseal(payload: bytes) -> tuple[bytes, str]:
    return payload, hashlib.sha256(payload).hexdigest()


class Pwn:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("edit", ["flip", "truncate", "os-system", "pickle", "other-id"])
async def test_a_tampered_checkpoint_is_refused_by_resume_and_nothing_runs(
    backend: Backend, edit: str, tmp_path: Path
) -> None:
    calls: Calls = collections.Counter()
    ids = await run_to_awaiting(backend, calls)
    latest = ids[-1]
    payload, checksum = backend.read_raw(latest, "t")
    marker = tmp_path / "pwned"
    if edit == "flip":
        middle = len(payload) // 2
        new, digest = (
            payload[:middle] + bytes([payload[middle] ^ 1]) + payload[middle + 1 :],
            checksum,
        )
    elif edit == "truncate":
        new, digest = payload[: len(payload) // 2], checksum
    elif edit == "os-system":
        envelope = loads(payload)
        envelope["data"]["run"]["state"] = {"$type": "os:system", "command": f"touch {marker}"}
        new, digest = reseal(dumps(envelope))
    elif edit == "pickle":
        new, digest = reseal(pickle.dumps(Pwn(marker)))
    else:
        envelope = loads(payload)
        envelope["meta"]["id"] = ids[0]
        new, digest = reseal(dumps(envelope))
    backend.write_raw(latest, "t", new, digest)
    calls.clear()
    wf = tamper_target(backend.open(), calls)
    for answer in (None, {"asker:3:1": True}):
        with pytest.raises(CheckpointError) as info:
            await wf.resume("t", responses=answer)
        assert repr(latest) in str(info.value)
    if edit == "os-system":
        assert "unknown type 'os:system'" in str(info.value)
    assert not marker.exists()
    assert not calls
    # earlier checkpoints stay loadable, and a run can be forked off them
    store = backend.open()
    for cid in ids[:-1]:
        assert (await store.load(cid)).id == cid
    fork = await tamper_target(store, calls).resume("t", checkpoint_id=ids[1])
    assert fork.status is RunStatus.AWAITING_INPUT
    assert calls == {"s1": 1}
    assert not marker.exists()


async def test_a_tampered_pending_write_is_refused(backend: Backend) -> None:
    calls: Calls = collections.Counter()
    await siblings(backend.open(), calls, {"flaky"}).run(1, run_id="w")
    store = backend.open()
    latest = await store.latest("w")
    assert latest is not None
    if backend.kind == "sqlite":
        with sqlite3.connect(backend.root / "runs.db") as conn:
            conn.execute("UPDATE writes SET payload = substr(payload, 1, 20)")
    else:
        for path in (backend.root / "store").rglob("*.w"):
            path.write_bytes(path.read_bytes()[:40])
    calls.clear()
    with pytest.raises(CheckpointError, match="corrupt"):
        await siblings(backend.open(), calls, set()).resume("w")
    assert not calls


# --------------------------------------------------------------------------- stores


async def test_processes_opening_a_fresh_sqlite_file_at_once_do_not_fail(tmp_path: Path) -> None:
    """Switching a new file to WAL is not covered by SQLite's busy timeout; the store retries."""
    failures: list[BaseException] = []

    def open_and_read(path: Path, barrier: threading.Barrier) -> None:
        store = SQLiteCheckpointStore(path)
        barrier.wait()
        try:
            store._with_conn(lambda conn: conn.execute("SELECT 1").fetchone())
        except BaseException as exc:
            failures.append(exc)
        finally:
            anyio.run(store.aclose)

    def burst() -> None:
        for i in range(40):
            barrier = threading.Barrier(4)
            threads = [
                threading.Thread(target=open_and_read, args=(tmp_path / f"{i}.db", barrier))
                for _ in range(4)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

    await anyio.to_thread.run_sync(burst)
    assert not failures, failures[0]


async def test_resume_on_postgres(postgres_dsn: str) -> None:
    """One end-to-end resume on PostgreSQL (its conformance suite is in test_stores.py)."""
    import asyncpg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    opened: list[PostgresCheckpointStore] = []

    def open_store() -> PostgresCheckpointStore:
        opened.append(PostgresCheckpointStore(postgres_dsn, schema=schema))
        return opened[-1]

    try:
        calls: Calls = collections.Counter()
        failed = await siblings(open_store(), calls, {"flaky"}).run(1, run_id="pg")
        assert failed.status is RunStatus.FAILED
        done = await siblings(open_store(), calls, set()).resume("pg")
        assert done.status is RunStatus.COMPLETED
        assert done.outputs == ["ok:2", "flaky:2", {"sum": 6}]
        assert calls == {"start": 1, "ok": 1, "flaky": 2, "join": 1}
        history = await open_store().list_checkpoints("pg")
        fork = await siblings(open_store(), calls, set()).resume("pg", checkpoint_id=history[1].id)
        assert fork.outputs == done.outputs
        assert (await open_store().list_checkpoints(fork.run_id))[0].parent_id == history[1].id
    finally:
        for store in opened:
            await store.aclose()
        conn = await asyncpg.connect(postgres_dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        finally:
            await conn.close()


class Approver(Executor):
    """Asks once; its response handler fails while ``broken`` holds "approver"."""

    def __init__(self, calls: Calls, broken: set[str]) -> None:
        super().__init__("approver")
        self.calls, self.broken = calls, broken

    @handler
    async def on(self, x: int, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"ok {x}?"), response_type=bool)

    @response_handler
    async def on_answer(self, request: Question, answer: bool, ctx: WorkflowContext[Any]) -> None:
        self.calls["approver"] += 1
        if "approver" in self.broken:
            raise RuntimeError("approver is down")
        await ctx.yield_output(f"{request.text} {answer}")


def ask_and_work(store: Any, calls: Calls, broken: set[str]) -> Workflow:
    """Superstep 2: ``approver`` asks while ``a`` fans out to ``x`` and ``y`` (superstep 3)."""
    start, a = Step("start", calls), Step("a", calls)
    x, y = Step("x", calls, broken, output=True), Step("y", calls, broken, output=True)
    return (
        WorkflowBuilder(start=start, name="ask-and-work", checkpoint_store=store)
        .add_fan_out_edges(start, [Approver(calls, broken), a])
        .add_fan_out_edges(a, [x, y])
        .build()
    )


async def test_answers_given_mid_superstep_keep_the_finished_siblings_recorded(
    backend: Backend,
) -> None:
    """A run failed in superstep 3 (x recorded, y failed) while a request of superstep 2 is
    open. Answering it stores a new checkpoint of the same superstep: x's recorded result must
    move along with it, or a later resume runs x again."""
    calls: Calls = collections.Counter()
    failed = await ask_and_work(backend.open(), calls, {"y"}).run(1, run_id="mid")
    assert failed.status is RunStatus.FAILED
    assert [r.executor_id for r in failed.pending_requests] == ["approver"]
    request = failed.pending_requests[0].request_id
    # y is fixed, but the approver's handler fails: the run fails again in superstep 3
    again = await ask_and_work(backend.open(), calls, {"approver"}).resume(
        "mid", responses={request: True}
    )
    assert again.status is RunStatus.FAILED
    assert again.error is not None
    assert again.error.executor_id == "approver"  # type: ignore[attr-defined]
    done = await ask_and_work(backend.open(), calls, set()).resume("mid")
    assert done.status is RunStatus.COMPLETED
    assert calls["x"] == 1, "x's committed result was lost and x ran again"
    assert calls["y"] == 2
    assert sorted(map(str, done.outputs)) == ["4", "4", "ok 2? True", "x:3", "y:3"]


class Killed(BaseException):
    """The process dies: like SIGKILL, no ``except Exception`` or cleanup store call follows."""


class KilledAfterSave:
    """Delegates to a store until its first ``save`` returns; the process dies right then, so
    that save raises ``Killed`` after committing, and so does every later call."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.dead = False
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if self.dead:
            raise Killed(name)
        self.calls.append(name)
        return getattr(self.store, name)

    async def save(self, checkpoint: Any, **kw: Any) -> None:
        if self.dead:
            raise Killed("save")
        self.calls.append("save")
        await self.store.save(checkpoint, **kw)
        self.dead = True
        raise Killed("after save")


def killed(exc: BaseException | None) -> bool:
    """Whether ``exc`` is (or wraps, in a group or as a cause) a ``Killed``."""
    if exc is None:
        return False
    if isinstance(exc, Killed):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(killed(e) for e in exc.exceptions)
    return killed(exc.__cause__) or killed(exc.__context__)


async def test_answers_mid_superstep_commit_the_siblings_results_with_the_new_checkpoint(
    backend: Backend,
) -> None:
    """The checkpoint saved with the answers and the finished siblings' results re-recorded
    after it are one commit: a process killed the moment that save returns (before any other
    store call) loses neither, so the resume does not run the finished sibling again."""
    calls: Calls = collections.Counter()
    failed = await ask_and_work(backend.open(), calls, {"y"}).run(1, run_id="mid")
    assert failed.status is RunStatus.FAILED
    request = failed.pending_requests[0].request_id
    before = await backend.open().latest("mid")
    assert before is not None
    assert set(await backend.open().get_writes(before.id)) == {"x", "!failed"}
    dying = KilledAfterSave(backend.open())
    with pytest.raises(BaseException) as info:  # the kill, possibly inside a group
        await ask_and_work(dying, calls, set()).resume("mid", responses={request: True})
    assert killed(info.value), info.value
    assert dying.calls.count("save") == 1
    assert "put_write" not in dying.calls
    store = backend.open()
    after = await store.latest("mid")
    assert after is not None
    assert after.parent_id == before.id  # the answers' checkpoint
    assert set(await store.get_writes(after.id)) == {"x"}  # committed along with it
    assert calls == {"start": 1, "a": 1, "x": 1, "y": 1}
    done = await ask_and_work(backend.open(), calls, set()).resume("mid")
    assert done.status is RunStatus.COMPLETED, done.error
    assert calls["x"] == 1, "x's committed result was lost and x ran again"
    assert calls["y"] == 2
    assert calls["approver"] == 1
    assert sorted(map(str, done.outputs)) == ["4", "4", "ok 2? True", "x:3", "y:3"]


async def test_siblings_recording_large_payloads_at_once_do_not_race(tmp_path: Path) -> None:
    """Pending writes are packed in worker threads concurrently; the packer's cache of large
    strings must tolerate that (it raised ``dictionary changed size during iteration``).
    SQLite only: the file store's fsync per blob makes this slow, and the race is in serde."""

    class Big(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[Any]) -> None:
            await anyio.lowlevel.checkpoint()
            for i in range(200):  # many distinct large strings: the cache keeps evicting
                await ctx.set_state(f"{self.id}/{i}", f"{self.id}:{i}:" + "p" * 1500)

    start = Step("start", collections.Counter())
    workers = [Big(f"big{i}") for i in range(12)]
    store = SQLiteCheckpointStore(tmp_path / "big.db")
    wf = (
        WorkflowBuilder(start=start, name="big", checkpoint_store=store)
        .add_fan_out_edges(start, workers)
        .build()
    )
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # make the threads interleave as often as they can
    try:
        for n in range(2):
            result = await wf.run(n, run_id=f"big{n}")
            assert result.status is RunStatus.COMPLETED, result.error
    finally:
        sys.setswitchinterval(interval)
        await store.aclose()
