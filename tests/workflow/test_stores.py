"""One conformance suite, run against every checkpoint store.

Each store gets a ``Kit``: a way to open another store object over the same storage, its URL,
and backend-specific hooks to corrupt a stored record (the only thing the public API cannot do).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest

from workflow import Executor, WorkflowContext, executor, handler, response_handler
from workflow._checkpoint import Checkpoint, CheckpointStore
from workflow._errors import CheckpointError
from workflow._serde import SerializationError
from workflow._stores import (
    FileCheckpointStore,
    InMemoryCheckpointStore,
    PostgresCheckpointStore,
    SQLiteCheckpointStore,
    store_from_url,
)
from workflow._stores import _common as stores_common
from workflow._stores._common import fs_key
from workflow._types import RunStatus

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
BIG = "x" * 100_000
Mangle = Callable[[bytes], bytes]


def flip(raw: bytes) -> bytes:
    """Change one byte in the middle."""
    middle = len(raw) // 2
    return raw[:middle] + bytes([raw[middle] ^ 0x01]) + raw[middle + 1 :]


def truncate(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


@dataclass
class Kit:
    """A store under test plus the backend hooks the suite needs."""

    kind: str
    url: str
    store: CheckpointStore
    reopen: Callable[[], CheckpointStore]
    mangle_checkpoint: Callable[[str, Mangle], Awaitable[None]]
    mangle_blobs: Callable[[Mangle], Awaitable[None]]
    blob_count: Callable[[], Awaitable[int]]


def memory_kit() -> Kit:
    store = InMemoryCheckpointStore()

    async def mangle_checkpoint(cid: str, fn: Mangle) -> None:
        record = store._checkpoints[cid]
        record.payload = fn(record.payload)

    async def mangle_blobs(fn: Mangle) -> None:
        for digest, data in store._blobs.items():
            store._blobs[digest] = fn(data)

    async def blob_count() -> int:
        return len(store._blobs)

    return Kit(
        "memory", "memory://", store, lambda: store, mangle_checkpoint, mangle_blobs, blob_count
    )


def sqlite_kit(tmp_path: Path) -> Kit:
    path = tmp_path / "db" / "runs.db"

    def sql(query: str, *args: Any) -> list[Any]:
        with sqlite3.connect(path) as conn:
            return conn.execute(query, args).fetchall()

    async def mangle_checkpoint(cid: str, fn: Mangle) -> None:
        ((payload,),) = await anyio.to_thread.run_sync(
            sql, "SELECT payload FROM checkpoints WHERE id = ?", cid
        )
        await anyio.to_thread.run_sync(
            sql, "UPDATE checkpoints SET payload = ? WHERE id = ?", fn(payload), cid
        )

    async def mangle_blobs(fn: Mangle) -> None:
        for digest, data in await anyio.to_thread.run_sync(sql, "SELECT hash, data FROM blobs"):
            await anyio.to_thread.run_sync(
                sql, "UPDATE blobs SET data = ? WHERE hash = ?", fn(data), digest
            )

    async def blob_count() -> int:
        return int((await anyio.to_thread.run_sync(sql, "SELECT count(*) FROM blobs"))[0][0])

    return Kit(
        "sqlite",
        f"sqlite:///{path}",
        SQLiteCheckpointStore(path),
        lambda: SQLiteCheckpointStore(path),
        mangle_checkpoint,
        mangle_blobs,
        blob_count,
    )


def file_kit(tmp_path: Path) -> Kit:
    root = tmp_path / "store"

    def rewrite(path: Path, fn: Mangle) -> None:
        path.write_bytes(fn(path.read_bytes()))

    async def mangle_checkpoint(cid: str, fn: Mangle) -> None:
        (path,) = root.glob(f"runs/*/{fs_key(cid)}.ckpt")
        await anyio.to_thread.run_sync(rewrite, path, fn)

    async def mangle_blobs(fn: Mangle) -> None:
        for path in root.glob("blobs/*"):
            await anyio.to_thread.run_sync(rewrite, path, fn)

    async def blob_count() -> int:
        return len(list(root.glob("blobs/*")))

    return Kit(
        "file",
        f"file://{root}",
        FileCheckpointStore(root),
        lambda: FileCheckpointStore(root),
        mangle_checkpoint,
        mangle_blobs,
        blob_count,
    )


def postgres_kit(dsn: str, schema: str) -> tuple[Kit, Callable[[], Awaitable[None]]]:
    import asyncpg

    async def sql(query: str, *args: Any) -> list[Any]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def mangle_checkpoint(cid: str, fn: Mangle) -> None:
        ((payload,),) = await sql(f"SELECT payload FROM {schema}.checkpoints WHERE id = $1", cid)
        await sql(f"UPDATE {schema}.checkpoints SET payload = $1 WHERE id = $2", fn(payload), cid)

    async def mangle_blobs(fn: Mangle) -> None:
        for digest, data in await sql(f"SELECT hash, data FROM {schema}.blobs"):
            await sql(f"UPDATE {schema}.blobs SET data = $1 WHERE hash = $2", fn(data), digest)

    async def blob_count() -> int:
        return int((await sql(f"SELECT count(*) FROM {schema}.blobs"))[0][0])

    async def drop() -> None:
        await sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    kit = Kit(
        "postgres",
        f"{dsn}?schema={schema}",
        PostgresCheckpointStore(dsn, schema=schema),
        lambda: PostgresCheckpointStore(dsn, schema=schema),
        mangle_checkpoint,
        mangle_blobs,
        blob_count,
    )
    return kit, drop


@pytest.fixture(params=["memory", "sqlite", "file", "postgres"])
async def kit(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Kit]:
    drop = None
    if request.param == "memory":
        made = memory_kit()
    elif request.param == "sqlite":
        made = sqlite_kit(tmp_path)
    elif request.param == "file":
        made = file_kit(tmp_path)
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        made, drop = postgres_kit(dsn, f"t_{uuid.uuid4().hex[:12]}")
    async with made.store:
        yield made
    if drop is not None:
        await drop()


def ckpt(
    run: str, n: int, parent: str | None, data: dict[str, Any] | None = None, **kw: Any
) -> Checkpoint:
    return Checkpoint(
        id=f"{run}.{n}",
        run_id=run,
        superstep=n,
        parent_id=parent,
        workflow_name="wf",
        graph_hash="g1",
        status=kw.pop("status", "running"),
        data={"n": n} if data is None else data,
        **kw,
    )


async def chain(
    store: CheckpointStore,
    run: str,
    count: int,
    data: Callable[[int], dict[str, Any]] | None = None,
) -> list[Checkpoint]:
    saved: list[Checkpoint] = []
    for n in range(count):
        cp = ckpt(run, n, saved[-1].id if saved else None, data(n) if data else None)
        await store.save(cp)
        saved.append(cp)
    return saved


# --------------------------------------------------------------------------- basics


async def test_implements_the_protocol(kit: Kit) -> None:
    assert isinstance(kit.store, CheckpointStore)


async def test_save_load_latest_and_ordering(kit: Kit) -> None:
    run = "Run/ünïcode:1"  # unsafe as a file name: exercises the hashed keys
    data = {"state": {"docs": [1, 2.5, None, "\ud800"]}, "big": {"$$x": BIG}}
    saved = await chain(kit.store, run, 3, lambda n: {**data, "n": n})
    saved[0] = saved[0]
    for cp in saved:
        assert await kit.store.load(cp.id) == cp
    assert await kit.store.latest(run) == saved[-1]
    assert await kit.store.list_checkpoints(run) == saved
    (info,) = await kit.store.list_runs()
    assert (info.run_id, info.workflow_name, info.status) == (run, "wf", "running")
    assert info.latest_checkpoint_id == saved[-1].id
    assert info.updated_at.tzinfo is not None


async def test_trace_and_created_at_roundtrip(kit: Kit) -> None:
    cp = ckpt("r", 0, None, trace={"traceparent": "00-abc-def-01"})
    await kit.store.save(cp)
    loaded = await kit.store.load(cp.id)
    assert loaded.trace == {"traceparent": "00-abc-def-01"}
    assert loaded.created_at == cp.created_at


async def test_unknown_ids(kit: Kit) -> None:
    with pytest.raises(CheckpointError, match="unknown checkpoint 'nope'"):
        await kit.store.load("nope")
    assert await kit.store.list_checkpoints("nope") == []
    assert await kit.store.latest("nope") is None
    assert await kit.store.get_writes("nope") == {}
    with pytest.raises(CheckpointError, match="nope"):
        await kit.store.put_write("nope", "ex", {})
    assert await kit.store.list_runs() == []


async def test_non_json_data_is_refused_like_everywhere(kit: Kit) -> None:
    with pytest.raises(SerializationError, match=r"data\['t'\]"):
        await kit.store.save(ckpt("r", 0, None, {"t": (1, 2)}))
    assert await kit.store.list_runs() == []


# --------------------------------------------------------------------------- parent rule


async def test_parent_must_be_the_runs_latest(kit: Kit) -> None:
    first, _ = await chain(kit.store, "r", 2)
    with pytest.raises(CheckpointError, match=r"run 'r' moved on: .*latest checkpoint is 'r.1'"):
        await kit.store.save(ckpt("r", 9, first.id))
    with pytest.raises(CheckpointError, match="moved on"):
        await kit.store.save(ckpt("r", 8, None))
    with pytest.raises(CheckpointError, match="already exists"):
        await kit.store.save(ckpt("r", 1, "r.1"))
    assert [c.id for c in await kit.store.list_checkpoints("r")] == ["r.0", "r.1"]


async def test_fork_starts_from_another_runs_checkpoint(kit: Kit) -> None:
    await chain(kit.store, "a", 2)
    await kit.store.put_write("a.1", "ex", {"kept": True})
    await kit.store.save(ckpt("b", 0, "a.1"))
    await kit.store.save(ckpt("b", 1, "b.0"))
    assert (await kit.store.load("b.0")).parent_id == "a.1"
    assert await kit.store.get_writes("a.1") == {"ex": {"kept": True}}  # history untouched
    assert [c.id for c in await kit.store.list_checkpoints("a")] == ["a.0", "a.1"]
    with pytest.raises(CheckpointError, match="does not exist"):
        await kit.store.save(ckpt("c", 0, "ghost"))


async def test_racing_saves_on_one_run_exactly_one_wins(kit: Kit) -> None:
    other = kit.reopen()
    (root,) = await chain(kit.store, "r", 1)
    outcomes: list[str] = []

    async def attempt(store: CheckpointStore, n: int) -> None:
        try:
            await store.save(ckpt("r", n, root.id))
            outcomes.append("ok")
        except CheckpointError as exc:
            outcomes.append("lost" if "moved on" in str(exc) else repr(exc))

    try:
        async with anyio.create_task_group() as tg:  # warm connection pools so saves overlap
            for n in range(8):
                tg.start_soon(kit.store.list_runs if n % 2 else other.list_runs)
        async with anyio.create_task_group() as tg:
            for n in range(1, 7):
                tg.start_soon(attempt, kit.store if n % 2 else other, n)
    finally:
        if other is not kit.store:
            await other.aclose()
    assert sorted(outcomes) == ["lost"] * 5 + ["ok"]
    assert len(await kit.store.list_checkpoints("r")) == 2


async def test_concurrent_saves_of_different_runs(kit: Kit) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(chain, kit.store, f"run{i}", 8, lambda n: {"n": n, "big": BIG})
    runs = await kit.store.list_runs()
    assert sorted(r.run_id for r in runs) == [f"run{i}" for i in range(6)]
    for i in range(6):
        assert [c.superstep for c in await kit.store.list_checkpoints(f"run{i}")] == list(range(8))
    assert await kit.blob_count() == 1


# --------------------------------------------------------------------------- writes & status


async def test_pending_writes(kit: Kit) -> None:
    (c0,) = await chain(kit.store, "r", 1)
    await kit.store.put_write(c0.id, "a", {"v": 1})
    await kit.store.put_write(c0.id, "b", {"v": BIG})
    await kit.store.put_write(c0.id, "a", {"v": 2})  # a re-run: last write wins, moves last
    writes = await kit.store.get_writes(c0.id)
    assert list(writes) == ["b", "a"]
    assert writes == {"b": {"v": BIG}, "a": {"v": 2}}
    await kit.store.save(ckpt("r", 1, c0.id))
    assert await kit.store.get_writes(c0.id) == {}  # committed by the child
    with pytest.raises(CheckpointError, match="moved on"):
        await kit.store.put_write(c0.id, "late", {})
    with pytest.raises(ValueError, match="executor_id"):
        await kit.store.put_write("r.1", "", {})


async def test_writes_saved_with_a_checkpoint_are_its_pending_writes_in_order(kit: Kit) -> None:
    (c0,) = await chain(kit.store, "r", 1)
    await kit.store.put_write(c0.id, "old", {"v": 0})
    own = "w" * 5000  # a blob only these writes reference
    writes = {"b": {"v": BIG}, "a": {"v": 1}, "c": {"v": own}}
    await kit.store.save(ckpt("r", 1, c0.id), writes=writes)
    assert await kit.store.get_writes(c0.id) == {}  # the parent's writes are dropped as ever
    got = await kit.store.get_writes("r.1")
    assert list(got) == ["b", "a", "c"]
    assert got == writes
    other = kit.reopen()  # committed, not merely cached by this store object
    try:
        assert list((await other.get_writes("r.1")).items()) == list(writes.items())
    finally:
        if other is not kit.store:
            await other.aclose()
    await kit.store.put_write("r.1", "a", {"v": 2})  # they behave like any pending write
    assert list(await kit.store.get_writes("r.1")) == ["b", "c", "a"]
    await kit.store.save(ckpt("s", 0, None), writes={"x": {"first": True}})  # a first checkpoint
    assert await kit.store.get_writes("s.0") == {"x": {"first": True}}
    await kit.store.save(ckpt("s", 1, "s.0"), writes={})  # empty: the same as none
    assert await kit.store.get_writes("s.1") == {}
    assert await kit.blob_count() == 2
    await kit.store.save(ckpt("r", 2, "r.1"))  # committed by the child
    assert await kit.store.get_writes("r.1") == {}
    await kit.store.delete_run("r")
    assert await kit.blob_count() == 0


async def test_a_failing_save_stores_neither_the_checkpoint_nor_its_writes(kit: Kit) -> None:
    await chain(kit.store, "r", 2)
    await kit.store.put_write("r.1", "kept", {"v": 1})
    writes = {"a": {"v": "a" * 5000}, "b": {"v": 2}}
    with pytest.raises(CheckpointError, match="moved on"):
        await kit.store.save(ckpt("r", 9, "r.0"), writes=writes)
    with pytest.raises(CheckpointError, match="already exists"):  # the writes would name r.1
        await kit.store.save(ckpt("r", 1, "r.1"), writes=writes)
    with pytest.raises(CheckpointError, match="does not exist"):
        await kit.store.save(ckpt("f", 0, "ghost"), writes=writes)
    with pytest.raises(SerializationError, match=r"data\['t'\]"):  # encoded before any commit
        await kit.store.save(ckpt("r", 2, "r.1"), writes={"a": {"v": 1}, "b": {"t": (1, 2)}})
    with pytest.raises(ValueError, match="executor_id"):
        await kit.store.save(ckpt("r", 2, "r.1"), writes={"a": {"v": 1}, "": {}})
    with pytest.raises(CheckpointError, match=r"unknown checkpoint 'r\.9'"):
        await kit.store.load("r.9")
    for cid in ("r.9", "f.0", "r.2"):
        assert await kit.store.get_writes(cid) == {}
    assert await kit.store.get_writes("r.1") == {"kept": {"v": 1}}
    latest = await kit.store.latest("r")
    assert latest is not None
    assert latest.id == "r.1"
    assert [r.run_id for r in await kit.store.list_runs()] == ["r"]
    assert await kit.blob_count() == 0  # no blob of a refused write is referenced
    await kit.store.save(ckpt("r", 2, "r.1"))  # the failed attempts left nothing behind
    assert await kit.store.get_writes("r.2") == {}


async def test_racing_saves_with_writes_only_the_winners_writes_exist(kit: Kit) -> None:
    other = kit.reopen()
    (root,) = await chain(kit.store, "r", 1)
    won: list[int] = []
    lost: list[str] = []

    async def attempt(store: CheckpointStore, n: int) -> None:
        try:
            await store.save(ckpt("r", n, root.id), writes={f"ex{n}": {"n": n}})
            won.append(n)
        except CheckpointError as exc:
            lost.append("moved on" if "moved on" in str(exc) else repr(exc))

    try:
        async with anyio.create_task_group() as tg:
            for n in range(1, 7):
                tg.start_soon(attempt, kit.store if n % 2 else other, n)
    finally:
        if other is not kit.store:
            await other.aclose()
    (n,) = won
    assert lost == ["moved on"] * 5
    for m in range(1, 7):
        assert await kit.store.get_writes(f"r.{m}") == ({f"ex{n}": {"n": n}} if m == n else {})


class Killed(BaseException):
    """The process dies here: nothing after this point runs."""


async def test_file_store_writes_staged_by_a_save_killed_before_its_commit_stay_invisible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file store writes a checkpoint's pending writes before ``run.json`` names it: a
    kill in between leaves orphans that no read sees and the next save of that id clears."""
    root = tmp_path / "store"
    async with FileCheckpointStore(root) as store:
        await chain(store, "r", 1)
        real = FileCheckpointStore._write_run

        def killed(self: FileCheckpointStore, run_dir: Path, meta: dict[str, Any]) -> None:
            if meta["latest_checkpoint_id"] == "r.1":
                raise Killed
            real(self, run_dir, meta)

        monkeypatch.setattr(FileCheckpointStore, "_write_run", killed)
        with pytest.raises(Killed):
            await store.save(ckpt("r", 1, "r.0"), writes={"a": {"v": 1}, "b": {"v": 2}})
        monkeypatch.undo()
    assert len(list(root.glob("runs/r/writes/r.1/*.w"))) == 2  # staged, never committed
    async with FileCheckpointStore(root) as store:
        latest = await store.latest("r")
        assert latest is not None
        assert latest.id == "r.0"
        assert await store.get_writes("r.1") == {}
        await store.save(ckpt("r", 1, "r.0"), writes={"c": {"v": 3}})  # the same id again
        assert await store.get_writes("r.1") == {"c": {"v": 3}}
    assert len(list(root.glob("runs/r/writes/r.1/*.w"))) == 1  # the orphans are gone


async def test_status_upsert_and_list_runs_order(kit: Kit) -> None:
    await kit.store.set_status("r1", "wf1", RunStatus.FAILED)
    (info,) = await kit.store.list_runs()
    assert (info.run_id, info.workflow_name, info.status) == ("r1", "wf1", "failed")
    assert info.latest_checkpoint_id is None
    await chain(kit.store, "r2", 2)
    assert [r.run_id for r in await kit.store.list_runs()] == ["r2", "r1"]
    await kit.store.set_status("r2", "ignored", "completed")
    await kit.store.set_status("r1", "wf1", "cancelled")
    runs = await kit.store.list_runs()
    assert [(r.run_id, r.status) for r in runs] == [("r1", "cancelled"), ("r2", "completed")]
    assert runs[1].latest_checkpoint_id == "r2.1"
    assert runs[1].workflow_name == "wf"
    await kit.store.save(
        ckpt("r1", 0, None)
    )  # a run created by set_status takes a first checkpoint
    with pytest.raises(ValueError, match="unknown run status"):
        await kit.store.set_status("r1", "wf1", "exploded")


# --------------------------------------------------------------------------- deletion & blobs


async def test_dedupe_100_checkpoints_of_one_100kb_string(kit: Kit) -> None:
    await chain(kit.store, "r", 100, lambda n: {"messages": [{"text": BIG, "turn": n}], "n": n})
    bytes_written = kit.store.bytes_written  # type: ignore[attr-defined]
    assert bytes_written < 2 * len(BIG), bytes_written
    assert await kit.blob_count() == 1
    assert (await kit.store.load("r.57")).data["messages"][0] == {"text": BIG, "turn": 57}


async def test_delete_run_drops_its_blobs_only(kit: Kit) -> None:
    await chain(kit.store, "gone", 3, lambda n: {"mine": "g" * 5000, "shared": BIG})
    await kit.store.put_write("gone.2", "ex", {"w": "w" * 5000})
    await chain(kit.store, "kept", 2, lambda n: {"shared": BIG})
    assert await kit.blob_count() == 3
    await kit.store.delete_run("gone")
    await kit.store.delete_run("never-existed")
    assert await kit.store.list_checkpoints("gone") == []
    with pytest.raises(CheckpointError, match=r"gone\.0"):
        await kit.store.load("gone.0")
    assert [r.run_id for r in await kit.store.list_runs()] == ["kept"]
    assert await kit.blob_count() == 1
    assert (await kit.store.load("kept.1")).data == {"shared": BIG}


async def test_prune_keeps_the_last_n_and_their_blobs(kit: Kit) -> None:
    await chain(kit.store, "r", 10, lambda n: {"own": str(n) * 2000, "shared": BIG})
    assert await kit.blob_count() == 11
    assert await kit.store.prune("r", keep_last=3) == 7
    kept = await kit.store.list_checkpoints("r")
    assert [c.superstep for c in kept] == [7, 8, 9]
    assert kept[0].data == {"own": "7" * 2000, "shared": BIG}
    assert await kit.blob_count() == 4
    assert await kit.store.prune("r", keep_last=3) == 0
    await kit.store.save(ckpt("r", 10, "r.9"))  # the run goes on after pruning
    assert await kit.store.prune("r", keep_last=0) == 4
    assert await kit.store.list_checkpoints("r") == []
    assert await kit.store.latest("r") is None
    assert [(r.run_id, r.latest_checkpoint_id) for r in await kit.store.list_runs()] == [
        ("r", None)
    ]
    assert await kit.blob_count() == 0


async def test_prune_drops_pending_writes_of_pruned_checkpoints_only(kit: Kit) -> None:
    await chain(kit.store, "r", 2)
    await kit.store.save(ckpt("r", 2, "r.1"), writes={"a": {"w": "a" * 5000}})
    await kit.store.put_write("r.2", "b", {"w": "b" * 5000})
    assert await kit.store.prune("r", keep_last=1) == 2
    assert await kit.store.get_writes("r.2") == {"a": {"w": "a" * 5000}, "b": {"w": "b" * 5000}}
    assert await kit.blob_count() == 2


@pytest.mark.parametrize("bad", [-1, "3", 2.0, True, None])
async def test_prune_refuses_a_bad_keep_last(kit: Kit, bad: Any) -> None:
    await chain(kit.store, "r", 2)
    with pytest.raises(CheckpointError, match=rf"keep_last must be .*got {bad!r}") as caught:
        await kit.store.prune("r", keep_last=bad)
    assert isinstance(caught.value, ValueError)
    assert len(await kit.store.list_checkpoints("r")) == 2


async def test_prune_of_an_unknown_run_names_it(kit: Kit) -> None:
    with pytest.raises(CheckpointError, match=r"unknown run 'ghost'.*ledgerflow runs"):
        await kit.store.prune("ghost", keep_last=1)
    await kit.store.set_status("bare", "wf", "failed")  # a run with no checkpoint is known
    assert await kit.store.prune("bare", keep_last=0) == 0


async def test_prune_to_zero_refuses_a_run_an_owner_executes(kit: Kit) -> None:
    await chain(kit.store, "r", 3)
    other = kit.reopen()
    try:
        async with other.lock_run("r"):
            with pytest.raises(CheckpointError, match="run 'r' is being executed"):
                await kit.store.prune("r", keep_last=0)
            assert await kit.store.prune("r", keep_last=1) == 2  # its latest stays: safe
            await kit.store.save(ckpt("r", 3, "r.2"))  # the owner goes on
        assert await kit.store.prune("r", keep_last=0) == 2
    finally:
        if other is not kit.store:
            await other.aclose()


# --------------------------------------------------------------------------- retention

DAY = dt.timedelta(days=1)


def cutoff_at(
    monkeypatch: pytest.MonkeyPatch, moment: dt.datetime, older_than: dt.timedelta
) -> None:
    """Make ``prune_runs(older_than)`` cut at ``moment`` (the stores' own clock is untouched)."""
    monkeypatch.setattr(stores_common, "now", lambda: moment + older_than)


async def test_prune_runs_deletes_whole_runs_updated_before_the_cutoff(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    await chain(kit.store, "old", 3, lambda n: {"own": "o" * 5000, "shared": BIG})
    await kit.store.put_write("old.2", "ex", {"w": "w" * 5000})
    await kit.store.set_status("old-bare", "wf", "failed")
    moment = stores_common.now()
    await chain(kit.store, "new", 2, lambda n: {"shared": BIG})
    assert await kit.blob_count() == 3
    assert await kit.store.prune_runs(DAY) == 0  # nothing is a day old
    cutoff_at(monkeypatch, moment, 30 * DAY)
    assert await kit.store.prune_runs(30 * DAY) == 2
    assert [r.run_id for r in await kit.store.list_runs()] == ["new"]
    assert await kit.store.list_checkpoints("old") == []
    assert await kit.store.get_writes("old.2") == {}
    with pytest.raises(CheckpointError, match=r"unknown checkpoint 'old\.0'"):
        await kit.store.load("old.0")
    assert await kit.blob_count() == 1  # the blobs only "old" used went in the same commit
    assert (await kit.store.load("new.1")).data == {"shared": BIG}
    assert await kit.store.prune_runs(30 * DAY) == 0
    await kit.store.save(ckpt("old", 0, None))  # the id is free again


async def test_prune_runs_by_status(kit: Kit) -> None:
    for run, status in [
        ("f", "failed"),
        ("c", "cancelled"),
        ("d", "completed"),
        ("w", "awaiting_input"),
    ]:
        await chain(kit.store, run, 1)
        await kit.store.set_status(run, "wf", status)
    assert await kit.store.prune_runs(dt.timedelta(0), status=RunStatus.FAILED) == 1
    assert (
        await kit.store.prune_runs(dt.timedelta(0), status=["cancelled", RunStatus.COMPLETED]) == 2
    )
    assert [(r.run_id, r.status) for r in await kit.store.list_runs()] == [("w", "awaiting_input")]
    assert await kit.store.prune_runs(dt.timedelta(0), status=("failed",)) == 0
    assert await kit.store.prune_runs(dt.timedelta(0)) == 1
    assert await kit.store.list_runs() == []


async def test_prune_runs_never_deletes_a_run_an_owner_executes(kit: Kit) -> None:
    await chain(kit.store, "live", 2, lambda n: {"big": BIG})
    await chain(kit.store, "idle", 2)
    other = kit.reopen()
    try:
        async with other.lock_run("live"):
            assert await kit.store.prune_runs(dt.timedelta(0)) == 1
            assert [r.run_id for r in await kit.store.list_runs()] == ["live"]
            await other.save(ckpt("live", 2, "live.1", {"big": BIG}))  # its owner goes on
            assert await kit.blob_count() == 1
        async with other.lock_run("idle"):  # a pruned run's id can be locked and run again
            await other.save(ckpt("idle", 0, None))
        assert await kit.store.prune_runs(dt.timedelta(0), status="running") == 2
        async with other.lock_run("live"):
            pass
    finally:
        if other is not kit.store:
            await other.aclose()
    assert await kit.store.list_runs() == []
    assert await kit.blob_count() == 0


async def test_prune_runs_removes_the_lock_files_of_the_runs_it_deletes(tmp_path: Path) -> None:
    for store, locks in [
        (SQLiteCheckpointStore(tmp_path / "runs.db"), tmp_path / "runs.db.locks"),
        (FileCheckpointStore(tmp_path / "files"), tmp_path / "files" / "locks"),
    ]:
        async with store:
            for run in ("a", "b"):
                async with store.lock_run(run):
                    await chain(store, run, 1)
            assert sorted(p.name for p in locks.iterdir()) == ["a.lock", "b.lock"]
            # let go, a lock file is emptied (no holder's pid): it takes no disk block
            assert [p.stat().st_size for p in locks.iterdir()] == [0, 0]
            assert await store.prune_runs(dt.timedelta(0)) == 2
            assert list(locks.iterdir()) == []


@pytest.mark.parametrize(
    ("older_than", "status", "message"),
    [
        (dt.timedelta(seconds=-1), None, r"older_than must not be negative, got .*-1"),
        (30, None, r"older_than must be a datetime.timedelta.*got 30"),
        ("30d", None, r"older_than must be a datetime.timedelta.*got '30d'"),
        (DAY, "exploded", r"unknown run status 'exploded'"),
        (DAY, ["failed", "nope"], r"unknown run status 'nope'"),
        (DAY, [], r"status is empty"),
    ],
)
async def test_prune_runs_refuses_bad_arguments(
    kit: Kit, older_than: Any, status: Any, message: str
) -> None:
    await chain(kit.store, "r", 1)
    await kit.store.set_status("r", "wf", "failed")
    with pytest.raises(CheckpointError, match=message) as caught:
        await kit.store.prune_runs(older_than, status=status)
    assert isinstance(caught.value, ValueError)
    assert [r.run_id for r in await kit.store.list_runs()] == ["r"]


async def test_a_fork_keeps_what_it_needs_when_its_parent_run_is_pruned(kit: Kit) -> None:
    await chain(kit.store, "a", 4, lambda n: {"shared": BIG, "own": str(n) * 5000})
    await kit.store.save(ckpt("b", 0, "a.1", {"shared": BIG, "own": "1" * 5000}))
    await kit.store.put_write("b.0", "ex", {"w": BIG})
    assert await kit.store.prune("a", keep_last=1) == 3  # b's parent a.1 is gone
    assert await kit.store.get_writes("b.0") == {"ex": {"w": BIG}}
    assert (await kit.store.load("b.0")).data == {"shared": BIG, "own": "1" * 5000}
    await kit.store.set_status("b", "wf", "awaiting_input")
    assert await kit.store.prune_runs(dt.timedelta(0), status="running") == 1  # all of "a"
    assert await kit.blob_count() == 2  # BIG and "1" * 5000 (b's copy of a.1's); a's others go
    assert (await kit.store.load("b.0")).parent_id == "a.1"  # history names it, dangling
    assert await kit.store.get_writes("b.0") == {"ex": {"w": BIG}}


# --------------------------------------------------------------------------- corruption


@pytest.mark.parametrize("damage", [flip, truncate])
async def test_corrupt_checkpoint_is_named_and_the_rest_still_load(
    kit: Kit, damage: Mangle
) -> None:
    saved = await chain(kit.store, "r", 3)
    await kit.mangle_checkpoint("r.1", damage)
    with pytest.raises(CheckpointError, match=r"checkpoint 'r\.1' is corrupt"):
        await kit.store.load("r.1")
    assert await kit.store.load("r.0") == saved[0]
    assert await kit.store.latest("r") == saved[2]


async def test_corrupt_blob_is_named_by_its_checkpoint(kit: Kit) -> None:
    await chain(kit.store, "r", 1, lambda n: {"big": BIG})
    await chain(kit.store, "s", 1)
    await kit.mangle_blobs(flip)
    with pytest.raises(CheckpointError, match=r"checkpoint 'r\.0' is corrupt: blob .* sha256"):
        await kit.store.load("r.0")
    assert (await kit.store.load("s.0")).data == {"n": 0}


async def test_unknown_schema_version_is_refused(kit: Kit) -> None:
    await kit.store.save(ckpt("r", 0, None, schema_version=99))
    with pytest.raises(CheckpointError, match=r"schema_version 99.*upgrade ledgerflow"):
        await kit.store.load("r.0")


# --------------------------------------------------------------------------- run ownership


async def test_lock_run_is_exclusive(kit: Kit) -> None:
    other = kit.reopen()
    try:
        async with kit.store.lock_run("r"):
            with pytest.raises(
                CheckpointError,
                match=rf"run 'r' is being executed by another process \(pid {os.getpid()}\)",
            ):
                async with other.lock_run("r"):
                    pytest.fail("acquired a held lock")
            async with other.lock_run("other-run"):
                pass
        async with other.lock_run("r"):
            pass
    finally:
        if other is not kit.store:
            await other.aclose()


CHILD = """
import sys, anyio
from workflow._stores import store_from_url

async def main():
    async with store_from_url(sys.argv[1]) as store, store.lock_run(sys.argv[2]):
        print("locked", flush=True)
        await anyio.sleep(120)

anyio.run(main)
"""


async def test_lock_dies_with_a_killed_owner(kit: Kit) -> None:
    if kit.kind == "memory":
        pytest.skip("an in-memory store is private to its process")
    await kit.store.set_status("r", "wf", "running")  # creates schema / directories first
    async with await anyio.open_process(
        [sys.executable, "-c", CHILD, kit.url, "r"], cwd=REPO
    ) as child:
        assert child.stdout is not None
        with anyio.fail_after(30):
            seen = b""
            while b"locked" not in seen:
                seen += await child.stdout.receive()
        with pytest.raises(CheckpointError, match=rf"another process \(pid {child.pid}\)"):
            async with kit.store.lock_run("r"):
                pass
        child.kill()  # SIGKILL: no cleanup code runs in the child
        await child.wait()
    with anyio.fail_after(10):
        while True:  # the server notices a dead client's session within moments
            try:
                async with kit.store.lock_run("r"):
                    break
            except CheckpointError:
                await anyio.sleep(0.05)


# --------------------------------------------------------------------------- lifecycle & URLs


async def test_creating_a_store_does_no_io(tmp_path: Path) -> None:
    SQLiteCheckpointStore(tmp_path / "a" / "runs.db")
    FileCheckpointStore(tmp_path / "b")
    PostgresCheckpointStore("postgresql://nobody@127.0.0.1:1/none")
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test's own tmp dir
    async with SQLiteCheckpointStore(tmp_path / "a" / "runs.db") as store:
        assert await store.list_runs() == []
    assert (tmp_path / "a" / "runs.db").exists()


async def test_a_closed_store_refuses_calls(kit: Kit) -> None:
    if kit.kind == "memory":
        pytest.skip("the memory store stays readable after aclose")
    store = kit.reopen()
    await store.list_runs()
    await store.aclose()
    with pytest.raises(CheckpointError, match="closed"):
        await store.list_runs()


async def test_unreachable_postgres_is_a_checkpoint_error() -> None:
    store = PostgresCheckpointStore("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(
        CheckpointError, match=r"cannot reach PostgreSQL at postgresql://nobody:\*\*\*@"
    ):
        await store.list_runs()


def test_store_from_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert isinstance(store_from_url("memory://"), InMemoryCheckpointStore)
    rel = store_from_url("sqlite:///rel/runs.db")
    assert isinstance(rel, SQLiteCheckpointStore)
    assert rel.path == Path("rel/runs.db")
    absolute = store_from_url("sqlite:////abs/runs.db?synchronous=normal")
    assert isinstance(absolute, SQLiteCheckpointStore)
    assert absolute.path == Path("/abs/runs.db")
    assert absolute._synchronous == "NORMAL"
    file_abs = store_from_url("file:///abs/dir")
    assert isinstance(file_abs, FileCheckpointStore)
    assert file_abs.directory == Path("/abs/dir")
    file_rel = store_from_url("file://rel/dir")
    assert isinstance(file_rel, FileCheckpointStore)
    assert file_rel.directory == Path("rel/dir")
    for url in ("postgresql://u@h:5432/db", "postgres://u@h/db?schema=s1&sslmode=disable"):
        pg = store_from_url(url)
        assert isinstance(pg, PostgresCheckpointStore)
        assert pg.dsn.startswith("postgresql://")
        assert "schema" not in pg.dsn
    assert isinstance(pg, PostgresCheckpointStore)
    assert pg.schema == "s1"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    ["redis://localhost", "runs.db", "sqlite://", "sqlite:///:memory:", "file://", "memory://x"],
)
def test_store_from_url_rejects_bad_urls(url: str) -> None:
    with pytest.raises(CheckpointError, match=r"memory://|sqlite|file") as info:
        store_from_url(url)
    assert isinstance(info.value, ValueError)  # still caught as bad input


def test_store_from_url_never_echoes_a_password() -> None:
    """A mistyped scheme still carries the password; the error (printed by the CLI) hides it."""
    with pytest.raises(ValueError, match="postgress") as info:
        store_from_url("postgress://admin:hunter2@db.example/runs")
    assert "hunter2" not in str(info.value)
    assert "admin:***@db.example" in str(info.value)


# --------------------------------------------------------------------------- SQLite on disk


def _on_disk(path: Path) -> int:
    """Bytes of the database file plus its write-ahead log (what a run leaves behind)."""
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


async def test_sqlite_log_is_truncated_when_the_last_run_lets_go(tmp_path: Path) -> None:
    """100 supersteps carrying 100 KB: ~200 KB written; the files must not keep a 1 MB log."""
    from builders import WorkflowBuilder
    from workflow import executor

    path = tmp_path / "runs.db"

    async def step(x: dict[str, Any]) -> dict[str, Any]:
        return {"value": x["value"] + 1, "payload": x["payload"]}

    nodes = [executor(id=f"n{i}")(step) for i in range(100)]
    async with SQLiteCheckpointStore(path) as store:
        builder = WorkflowBuilder(
            start=nodes[0], name="chain", checkpoint_store=store, max_supersteps=200
        )
        for a, b in itertools.pairwise(nodes):
            builder.add_edge(a, b)
        result = await builder.build().run({"value": 0, "payload": BIG})
        assert result.outputs == [{"value": 100, "payload": BIG}]
        assert len(await store.list_checkpoints(result.run_id)) == 101
        written = store.bytes_written
        on_disk = await anyio.to_thread.run_sync(_on_disk, path)
        assert on_disk <= 500_000, (on_disk, written)  # was 1.38 MB: 320 KB + a 1 MB log
        assert on_disk < 2 * written, (on_disk, written)


async def test_sqlite_log_stays_while_another_run_of_the_store_is_executing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    wal = path.with_name("runs.db-wal")
    async with SQLiteCheckpointStore(path) as store:
        async with store.lock_run("busy"):
            async with store.lock_run("quick"):  # own data per checkpoint: > 256 KB of log
                await chain(store, "quick", 5, lambda n: {"n": n, "big": str(n) * 100_000})
            assert wal.stat().st_size > 0  # "busy" still runs: its commits keep their log
            await chain(store, "busy", 3)
        assert wal.stat().st_size == 0  # the last run let go: folded into the database
        assert [c.superstep for c in await store.list_checkpoints("quick")] == list(range(5))
        async with store.lock_run("small"):
            await chain(store, "small", 2)
        assert 0 < wal.stat().st_size <= 256 * 1024  # a small run's log is left, bounded
    async with SQLiteCheckpointStore(path) as store:  # and nothing was lost
        assert len(await store.list_checkpoints("busy")) == 3


# --------------------------------------------------------------------------- a real fork


class Ask(Executor):
    """Asks a yes/no question about what it received; outputs the answer with the payload."""

    @handler
    async def on(self, x: dict[str, Any], ctx: WorkflowContext) -> None:
        await ctx.request_info({"n": x["n"], "big": x["big"]}, response_type=bool)

    @response_handler
    async def reply(self, q: dict[str, Any], ok: bool, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"{q['n']} {ok} {len(q['big'])}")


def asking(store: CheckpointStore) -> Any:
    from builders import WorkflowBuilder

    @executor(id="bump")
    async def bump(x: int) -> dict[str, Any]:
        return {"n": x + 1, "big": BIG}

    return (
        WorkflowBuilder(start=bump, name="asking", checkpoint_store=store)
        .add_edge(bump, Ask("ask"))
        .build()
    )


async def test_a_fork_resumes_after_its_parent_run_is_pruned_away(
    kit: Kit, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await asking(kit.store).run(1, run_id="orig")
    assert first.status is RunStatus.AWAITING_INPUT
    history = await kit.store.list_checkpoints("orig")
    moment = stores_common.now()
    fork = await asking(kit.store).resume("orig", checkpoint_id=history[1].id)  # after bump
    assert fork.status is RunStatus.AWAITING_INPUT
    assert (await kit.store.list_checkpoints(fork.run_id))[0].parent_id == history[1].id
    assert await kit.store.prune("orig", keep_last=0) == len(history)
    cutoff_at(monkeypatch, moment, DAY)  # "orig" is older than the fork
    assert await kit.store.prune_runs(DAY, status="awaiting_input") == 1
    assert [r.run_id for r in await kit.store.list_runs()] == [fork.run_id]
    store = kit.reopen()  # a new process, say
    try:
        (request,) = fork.pending_requests
        done = await asking(store).resume(fork.run_id, responses={request.request_id: True})
    finally:
        if store is not kit.store:
            await store.aclose()
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == [f"2 True {len(BIG)}"]


async def test_sqlite_log_is_truncated_after_prune_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    wal = path.with_name("runs.db-wal")
    async with SQLiteCheckpointStore(path) as store:
        for run in ("a", "b"):
            await chain(store, run, 20, lambda n: {"n": n, "own": f"{n}" * 5000})
        assert wal.stat().st_size > 0  # saved outside lock_run: nothing cut it yet
        assert await store.prune_runs(dt.timedelta(0), status="running") == 2
        assert wal.stat().st_size == 0
        assert await store.list_runs() == []


async def test_prune_sweeps_only_what_it_unreferenced_and_bulk_deletes_sweep_the_rest(
    kit: Kit,
) -> None:
    await chain(kit.store, "r", 3, lambda n: {"own": str(n) * 5000, "shared": BIG})
    await kit.store.put_write("r.2", "ex", {"w": "old" * 2000})
    await kit.store.put_write("r.2", "ex", {"w": "new" * 2000})  # a re-run replaces it
    await chain(kit.store, "s", 1, lambda n: {"shared": BIG, "own": "0" * 5000})
    assert await kit.store.prune("r", keep_last=1) == 2
    assert await kit.store.get_writes("r.2") == {"ex": {"w": "new" * 2000}}
    assert (await kit.store.load("s.0")).data == {"shared": BIG, "own": "0" * 5000}
    assert (await kit.store.load("r.2")).data == {"own": "2" * 5000, "shared": BIG}
    # BIG, "0" (s.0 still uses it), "2", the new write; the replaced write's blob may remain
    assert await kit.blob_count() in (4, 5)
    await kit.store.delete_run("s")
    # a bulk delete scans every blob (the file store keeps a replaced write's record, and
    # so its blob, until the run moves past r.2)
    assert await kit.blob_count() == (4 if kit.kind == "file" else 3)
    assert await kit.store.prune_runs(dt.timedelta(0)) == 1
    assert await kit.blob_count() == 0


async def test_vacuum_returns_the_space_prune_freed(kit: Kit) -> None:
    if kit.kind not in ("sqlite", "postgres"):
        pytest.skip("memory and file stores free space as they delete")
    store: Any = kit.store
    for run in range(8):  # incompressible, or PostgreSQL's TOAST compression hides the sizes
        await chain(store, f"r{run}", 20, lambda n: {"own": os.urandom(4000).hex()})

    async def size() -> int:
        if isinstance(store, SQLiteCheckpointStore):
            return await anyio.to_thread.run_sync(_on_disk, store.path)
        import asyncpg

        conn = await asyncpg.connect(store.dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace "
                    "n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
                    store.schema,
                )
            )
        finally:
            await conn.close()

    full = await size()
    assert await store.prune_runs(dt.timedelta(0)) == 8
    await store.save(ckpt("kept", 0, None, {"big": BIG}))
    if isinstance(store, PostgresCheckpointStore):
        await store.vacuum()  # plain: reusable space, files about as large
        await store.vacuum(full=True)
    else:
        await store.vacuum()
    assert await size() < full / 2
    assert (await store.load("kept.0")).data == {"big": BIG}
