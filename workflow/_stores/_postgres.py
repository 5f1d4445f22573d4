"""PostgreSQL checkpoint store (asyncpg; ``pip install ledgerflow[postgres]``).

Design:
    * Tables live in their own schema (``ledgerflow`` by default), created on first use under
      a transaction-scoped advisory lock, so concurrent first uses do not race.
    * ``save`` is one transaction whose run-row upsert is a compare-and-swap on the run's
      latest checkpoint id: two writers racing on one run cannot both commit.
    * Blobs are inserted ``ON CONFLICT DO NOTHING``. Commits that reuse stored blobs hold a
      *shared* advisory lock; ``delete_run``/``prune`` sweep unreferenced blobs under the
      *exclusive* one, so a sweep never deletes a blob a concurrent commit is about to reuse.
    * ``lock_run`` holds ``pg_try_advisory_lock`` on a dedicated connection whose
      ``application_name`` carries the holder's pid: the server releases it when the session
      ends, including when the holder is killed.

The pool is bound to the event loop that first used the store.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio

from workflow._checkpoint import Checkpoint, RunInfo, check_status
from workflow._errors import CheckpointError

from ._common import (
    MIN_BLOB_BYTES,
    Encoded,
    StoreBase,
    check_keep_last,
    check_parent,
    decode_checkpoint,
    decode_write,
    duplicate,
    encode_checkpoint,
    encode_write,
    encode_writes,
    locked,
    moved_on,
    not_latest,
    now,
    retention,
    unknown_checkpoint,
    unknown_run,
)
from ._postgres_db import (
    IDENT,
    LAYOUT,
    RUNS_PER_TX,
    ddl,
    load_asyncpg,
    lock_holder,
    lock_key,
    redact,
)

__all__ = ("PostgresCheckpointStore",)

T = TypeVar("T")


class PostgresCheckpointStore(StoreBase):
    """Checkpoints in PostgreSQL (schema and tables created on first use).

    Args:
        dsn: a libpq URL, ``postgresql://user@host:port/db``.
        schema: the schema holding the tables; one database can host several stores.
        min_blob_bytes: sub-trees at least this large (canonical JSON) are stored once.
        pool_size: the most connections the store opens (``lock_run`` adds one per run).
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "ledgerflow",
        min_blob_bytes: int = MIN_BLOB_BYTES,
        pool_size: int = 4,
    ) -> None:
        super().__init__()
        load_asyncpg()  # fail at construction, with the install hint, not mid-run
        if not IDENT.fullmatch(schema):
            raise ValueError(f"schema must be a plain SQL identifier, not {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self._min_blob_bytes = min_blob_bytes
        self._pool_size = pool_size
        self._pool: Any = None
        self._pool_lock = anyio.Lock()
        self._closed = False
        self._gc_key = lock_key("ledgerflow-gc", schema)
        s = f'"{schema}"'
        self._runs, self._ckpts, self._writes = f"{s}.runs", f"{s}.checkpoints", f"{s}.writes"
        self._blobs, self._refs = f"{s}.blobs", f"{s}.refs"

    def __repr__(self) -> str:
        return f"PostgresCheckpointStore({redact(self.dsn)!r}, schema={self.schema!r})"

    # -- plumbing ------------------------------------------------------------------------

    async def _ready(self) -> Any:
        if self._pool is not None:
            return self._pool
        async with self._pool_lock:
            if self._closed:
                raise CheckpointError(f"{self!r} is closed")
            if self._pool is None:
                asyncpg = load_asyncpg()
                try:
                    pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=self._pool_size)
                except (OSError, asyncpg.PostgresError) as exc:
                    raise CheckpointError(
                        f"cannot reach PostgreSQL at {redact(self.dsn)}: {exc}"
                    ) from exc
                try:
                    async with pool.acquire() as conn, conn.transaction():
                        await conn.execute(
                            "SELECT pg_advisory_xact_lock($1)",
                            lock_key("ledgerflow-ddl", self.schema),
                        )
                        for statement in ddl(self.schema):
                            await conn.execute(statement)
                        layout = await conn.fetchval(
                            f"SELECT value FROM \"{self.schema}\".meta WHERE key = 'layout'"
                        )
                    if layout != LAYOUT:
                        raise CheckpointError(
                            f"schema {self.schema!r} has table layout {layout!r}, this Ledgerflow "
                            f"knows {LAYOUT!r}; upgrade ledgerflow or use another schema"
                        )
                except BaseException:
                    await pool.close()
                    raise
                self._pool = pool
        return self._pool

    async def _tx(self, fn: Callable[[Any], Awaitable[T]], **options: Any) -> T:
        asyncpg = load_asyncpg()
        pool = await self._ready()
        try:
            async with pool.acquire() as conn, conn.transaction(**options):
                return await fn(conn)
        except asyncpg.PostgresError as exc:
            raise CheckpointError(f"PostgreSQL store {redact(self.dsn)}: {exc}") from exc

    async def _put_blobs(self, conn: Any, blobs: dict[str, bytes]) -> int:
        hashes = list(blobs)
        rows = await conn.fetch(
            f"SELECT hash FROM {self._blobs} WHERE hash = ANY($1::text[])", hashes
        )
        have = {r[0] for r in rows}
        new = [h for h in hashes if h not in have]
        if new:
            await conn.execute(
                f"INSERT INTO {self._blobs} (hash, data) SELECT * FROM "
                "unnest($1::text[], $2::bytea[]) ON CONFLICT (hash) DO NOTHING",
                new,
                [blobs[h] for h in new],
            )
        return sum(len(blobs[h]) for h in new)

    async def _put_refs(
        self, conn: Any, checkpoint_id: str, executor_id: str, hashes: list[str]
    ) -> None:
        if hashes:
            await conn.execute(
                f"INSERT INTO {self._refs} (checkpoint_id, executor_id, hash) "
                "SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
                checkpoint_id,
                executor_id,
                hashes,
            )

    # -- writes --------------------------------------------------------------------------

    async def save(
        self, checkpoint: Checkpoint, *, writes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        """See ``CheckpointStore.save``."""
        cp = checkpoint
        enc = encode_checkpoint(cp, self._min_blob_bytes)
        encoded = encode_writes(cp.id, writes, self._min_blob_bytes)
        asyncpg = load_asyncpg()

        async def work(conn: Any) -> int:
            if enc.blobs or any(w.blobs for _, w in encoded):
                # before any row lock: the sweep takes the same two in this order
                await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", self._gc_key)
            row = await conn.fetchrow(
                f"SELECT (SELECT latest_checkpoint_id FROM {self._runs} WHERE run_id = $1), "
                f"(SELECT run_id FROM {self._ckpts} WHERE id = $2)",
                cp.run_id,
                cp.parent_id,
            )
            latest = row[0]
            same_run = check_parent(cp, latest, row[1])
            swapped = await conn.fetchval(
                f"INSERT INTO {self._runs} AS r (run_id, workflow_name, status, updated_at, "
                "latest_checkpoint_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id) DO UPDATE "
                "SET workflow_name = $2, status = $3, updated_at = $4, latest_checkpoint_id = $5 "
                "WHERE r.latest_checkpoint_id IS NOT DISTINCT FROM $6 RETURNING 1",
                cp.run_id,
                cp.workflow_name,
                cp.status,
                now(),
                cp.id,
                latest,
            )
            if swapped is None:
                raise moved_on(cp, "(changed concurrently)")
            written = await self._put_blobs(conn, enc.blobs) if enc.blobs else 0
            try:
                await conn.execute(
                    f"INSERT INTO {self._ckpts} (id, run_id, superstep, parent_id, created_at, "
                    "checksum, payload) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    cp.id,
                    cp.run_id,
                    cp.superstep,
                    cp.parent_id,
                    cp.created_at,
                    enc.checksum,
                    enc.payload,
                )
            except asyncpg.UniqueViolationError:
                raise duplicate(cp.id) from None
            await self._put_refs(conn, cp.id, "", list(enc.blobs))
            if same_run:  # the superstep after the parent is committed: its writes are obsolete
                await conn.execute(
                    f"WITH gone AS (DELETE FROM {self._writes} WHERE checkpoint_id = $1) "
                    f"DELETE FROM {self._refs} WHERE checkpoint_id = $1 AND executor_id <> ''",
                    cp.parent_id,
                )
            for executor_id, w in encoded:  # recorded in the same transaction as the checkpoint
                written += await self._put_blobs(conn, w.blobs) if w.blobs else 0
                await self._insert_write(conn, cp.id, cp.run_id, executor_id, w)
                written += len(w.payload)
            return written + len(enc.payload)

        self.bytes_written += await self._tx(work)

    async def put_write(self, checkpoint_id: str, executor_id: str, data: dict[str, Any]) -> None:
        """See ``CheckpointStore.put_write``."""
        enc = encode_write(checkpoint_id, executor_id, data, self._min_blob_bytes)

        async def work(conn: Any) -> int:
            if enc.blobs:
                await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", self._gc_key)
            row = await conn.fetchrow(  # FOR SHARE: a racing save waits until this commits
                f"SELECT c.run_id, r.latest_checkpoint_id FROM {self._ckpts} c "
                f"JOIN {self._runs} r ON r.run_id = c.run_id WHERE c.id = $1 FOR SHARE OF r",
                checkpoint_id,
            )
            if row is None:
                raise unknown_checkpoint(checkpoint_id)
            if row[1] != checkpoint_id:
                raise not_latest(checkpoint_id, row[0], row[1])
            written = await self._put_blobs(conn, enc.blobs) if enc.blobs else 0
            await conn.execute(
                f"WITH gone AS (DELETE FROM {self._writes} WHERE checkpoint_id = $1 AND "
                f"executor_id = $2) DELETE FROM {self._refs} WHERE checkpoint_id = $1 AND "
                "executor_id = $2",
                checkpoint_id,
                executor_id,
            )
            await self._insert_write(conn, checkpoint_id, row[0], executor_id, enc)
            return written + len(enc.payload)

        self.bytes_written += await self._tx(work)

    async def _insert_write(
        self, conn: Any, checkpoint_id: str, run_id: str, executor_id: str, enc: Encoded
    ) -> None:
        await conn.execute(
            f"INSERT INTO {self._writes} (checkpoint_id, run_id, executor_id, checksum, "
            "payload) VALUES ($1, $2, $3, $4, $5)",
            checkpoint_id,
            run_id,
            executor_id,
            enc.checksum,
            enc.payload,
        )
        await self._put_refs(conn, checkpoint_id, executor_id, list(enc.blobs))

    async def set_status(self, run_id: str, workflow_name: str, status: str) -> None:
        """See ``CheckpointStore.set_status``."""
        status = check_status(status)

        async def work(conn: Any) -> None:
            await conn.execute(
                f"INSERT INTO {self._runs} AS r (run_id, workflow_name, status, updated_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (run_id) DO UPDATE "
                "SET status = $3, updated_at = $4",
                run_id,
                workflow_name,
                status,
                now(),
            )

        await self._tx(work)

    async def _drop_refs(self, conn: Any, where: str, arg: list[str]) -> list[str]:
        """Delete the ``refs`` rows matching ``where``; returns the blobs they named."""
        rows = await conn.fetch(f"DELETE FROM {self._refs} WHERE {where} RETURNING hash", arg)
        return list({r[0] for r in rows})

    async def _sweep(self, conn: Any, candidates: list[str] | None = None) -> None:
        """Delete blobs no ref names any more (under the exclusive gc lock).

        Args:
            candidates: only these (what ``prune`` just unreferenced: no scan of every blob).
                ``None``, for the bulk deletes: every blob, including those only a superseded
                pending write used (a commit, holding the shared lock, cannot delete them).
        """
        only = "b.hash = ANY($1::text[]) AND " if candidates is not None else ""
        if candidates is None or candidates:
            await conn.execute(
                f"DELETE FROM {self._blobs} b WHERE {only}NOT EXISTS "
                f"(SELECT 1 FROM {self._refs} r WHERE r.hash = b.hash)",
                *([candidates] if candidates is not None else []),
            )

    def _run_key(self, run_id: str) -> int:
        return lock_key("ledgerflow-run", self.schema, run_id)

    async def _delete_runs(self, conn: Any, run_ids: list[str]) -> None:
        """Delete whole runs and the blobs nothing references any more (inside a transaction)."""
        await conn.execute(
            f"DELETE FROM {self._refs} WHERE checkpoint_id IN "
            f"(SELECT id FROM {self._ckpts} WHERE run_id = ANY($1::text[]))",
            run_ids,
        )
        for table in (self._writes, self._ckpts, self._runs):
            await conn.execute(f"DELETE FROM {table} WHERE run_id = ANY($1::text[])", run_ids)
        await self._sweep(conn)

    async def delete_run(self, run_id: str) -> None:
        """See ``CheckpointStore.delete_run``."""

        async def work(conn: Any) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._gc_key)
            await self._delete_runs(conn, [run_id])

        await self._tx(work)

    async def prune(self, run_id: str, keep_last: int) -> int:
        """See ``CheckpointStore.prune``."""
        keep_last = check_keep_last(keep_last)

        async def work(conn: Any) -> int:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", self._gc_key)
            if not await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {self._runs} WHERE run_id = $1)", run_id
            ):
                raise unknown_run(run_id)
            # keeping none would cut a live run's chain: only when no owner executes it
            if keep_last == 0 and not await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1)", self._run_key(run_id)
            ):
                raise locked(run_id, await lock_holder(conn, self._run_key(run_id)))
            ids = [
                r[0]
                for r in await conn.fetch(
                    f"SELECT id FROM {self._ckpts} WHERE run_id = $1 ORDER BY seq", run_id
                )
            ]
            dropped = ids[: max(len(ids) - keep_last, 0)]
            if not dropped:
                return 0
            unreferenced = await self._drop_refs(conn, "checkpoint_id = ANY($1::text[])", dropped)
            for table, column in ((self._writes, "checkpoint_id"), (self._ckpts, "id")):
                await conn.execute(f"DELETE FROM {table} WHERE {column} = ANY($1::text[])", dropped)
            if len(dropped) == len(ids):
                await conn.execute(
                    f"UPDATE {self._runs} SET latest_checkpoint_id = NULL WHERE run_id = $1", run_id
                )
            await self._sweep(conn, unreferenced)
            return len(dropped)

        return await self._tx(work)

    async def prune_runs(
        self, older_than: dt.timedelta, status: str | Iterable[str] | None = None
    ) -> int:
        """See ``CheckpointStore.prune_runs``: runs whose advisory lock is held are skipped.

        Each batch of runs is one transaction holding each run's lock as a transaction lock
        (a ``lock_run`` racing it fails as if the run were executing, until it commits).
        """
        cutoff, statuses = retention(older_than, status)
        where = "updated_at < $1"
        args: list[Any] = [cutoff]
        if statuses is not None:
            where += " AND status = ANY($2::text[])"
            args.append(sorted(statuses))

        async def candidates(conn: Any) -> list[str]:
            rows = await conn.fetch(
                f"SELECT run_id FROM {self._runs} WHERE {where} ORDER BY updated_at", *args
            )
            return [r[0] for r in rows]

        def batch(run_ids: list[str]) -> Callable[[Any], Awaitable[int]]:
            async def work(conn: Any) -> int:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", self._gc_key)
                n = len(args)
                rows = await conn.fetch(  # still old enough, and no live owner executes it
                    f"SELECT r.run_id FROM {self._runs} r JOIN unnest(${n + 1}::text[], "
                    f"${n + 2}::bigint[]) AS c(run_id, key) ON c.run_id = r.run_id "
                    f"WHERE {where} "
                    "AND pg_try_advisory_xact_lock(c.key)",
                    *args,
                    run_ids,
                    [self._run_key(r) for r in run_ids],
                )
                doomed = [r[0] for r in rows]
                if doomed:
                    await self._delete_runs(conn, doomed)
                return len(doomed)

            return work

        found = await self._tx(candidates)
        deleted = 0
        for start in range(0, len(found), RUNS_PER_TX):
            deleted += await self._tx(batch(found[start : start + RUNS_PER_TX]))
        return deleted

    # -- reads ---------------------------------------------------------------------------

    async def _blobs_of(self, conn: Any, where: str, arg: str) -> dict[str, bytes]:
        rows = await conn.fetch(
            f"SELECT DISTINCT b.hash, b.data FROM {self._refs} r "
            f"JOIN {self._blobs} b ON b.hash = r.hash WHERE {where}",
            arg,
        )
        return {r[0]: r[1] for r in rows}

    async def _read(self, where: str, arg: str) -> list[Checkpoint]:
        async def fetch(conn: Any) -> tuple[list[Any], dict[str, bytes]]:
            rows = await conn.fetch(
                f"SELECT id, checksum, payload FROM {self._ckpts} WHERE {where} ORDER BY seq", arg
            )
            blobs = (
                await self._blobs_of(
                    conn,
                    f"r.executor_id = '' AND r.checkpoint_id IN "
                    f"(SELECT id FROM {self._ckpts} WHERE {where})",
                    arg,
                )
                if rows
                else {}
            )
            return rows, blobs

        rows, blobs = await self._tx(fetch, isolation="repeatable_read", readonly=True)
        return [decode_checkpoint(r[0], bytes(r[2]), r[1], blobs.__getitem__) for r in rows]

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """See ``CheckpointStore.load``."""
        found = await self._read("id = $1", checkpoint_id)
        if not found:
            raise unknown_checkpoint(checkpoint_id)
        return found[0]

    async def list_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """See ``CheckpointStore.list_checkpoints``."""
        return await self._read("run_id = $1", run_id)

    async def latest(self, run_id: str) -> Checkpoint | None:
        """See ``CheckpointStore.latest``."""
        found = await self._read(
            f"id = (SELECT latest_checkpoint_id FROM {self._runs} WHERE run_id = $1)", run_id
        )
        return found[0] if found else None

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        """See ``CheckpointStore.get_writes``."""

        async def fetch(conn: Any) -> tuple[list[Any], dict[str, bytes]]:
            rows = await conn.fetch(
                f"SELECT executor_id, checksum, payload FROM {self._writes} "
                "WHERE checkpoint_id = $1 ORDER BY seq",
                checkpoint_id,
            )
            blobs = (
                await self._blobs_of(
                    conn, "r.checkpoint_id = $1 AND r.executor_id <> ''", checkpoint_id
                )
                if rows
                else {}
            )
            return rows, blobs

        rows, blobs = await self._tx(fetch, isolation="repeatable_read", readonly=True)
        return {
            r[0]: decode_write(checkpoint_id, r[0], bytes(r[2]), r[1], blobs.__getitem__)[1]
            for r in rows
        }

    async def list_runs(self) -> list[RunInfo]:
        """See ``CheckpointStore.list_runs``."""

        async def fetch(conn: Any) -> list[Any]:
            return await conn.fetch(  # type: ignore[no-any-return]
                "SELECT run_id, workflow_name, status, updated_at, latest_checkpoint_id "
                f"FROM {self._runs} ORDER BY updated_at DESC, run_id"
            )

        return [
            RunInfo(
                run_id=r[0],
                workflow_name=r[1],
                status=r[2],
                updated_at=r[3].astimezone(dt.UTC),
                latest_checkpoint_id=r[4],
            )
            for r in await self._tx(fetch)
        ]

    # -- ownership and lifetime ----------------------------------------------------------

    @asynccontextmanager
    async def lock_run(self, run_id: str) -> AsyncIterator[None]:
        """See ``CheckpointStore.lock_run``: a session advisory lock on its own connection."""
        asyncpg = load_asyncpg()
        key = self._run_key(run_id)
        try:
            conn = await asyncpg.connect(
                self.dsn, server_settings={"application_name": f"ledgerflow pid={os.getpid()}"}
            )
        except (OSError, asyncpg.PostgresError) as exc:
            raise CheckpointError(f"cannot reach PostgreSQL at {redact(self.dsn)}: {exc}") from exc
        try:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                raise locked(run_id, await lock_holder(conn, key))
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await conn.close(timeout=5)  # ends the session, releasing the lock

    async def vacuum(self, *, full: bool = False) -> None:
        """``VACUUM`` the store's tables: space of deleted rows becomes reusable.

        Plain ``VACUUM`` runs beside commits but rarely shrinks the files; ``full=True``
        rewrites each table into a new file, returning the space to the disk, under a lock
        that makes every other use of that table wait until it is done.
        """
        asyncpg = load_asyncpg()
        pool = await self._ready()
        try:
            async with pool.acquire() as conn:  # VACUUM cannot run inside a transaction
                for table in (self._runs, self._ckpts, self._writes, self._blobs, self._refs):
                    await conn.execute(f"VACUUM {'FULL ' if full else ''}{table}")
        except asyncpg.PostgresError as exc:
            raise CheckpointError(f"PostgreSQL store {redact(self.dsn)}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the pool; later calls raise ``CheckpointError``."""
        async with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
