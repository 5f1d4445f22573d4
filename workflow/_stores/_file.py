"""Checkpoints as plain files: inspectable with ``ls`` and ``cat``, no database needed.

Layout under ``directory``::

    runs/<run>/run.json              run metadata + ordered checkpoint ids (the commit point)
    runs/<run>/<checkpoint>.ckpt     "<sha256> <blob,blob,...>\\n" + envelope
    runs/<run>/writes/<checkpoint>/<seq>.w   pending writes, same format; read only while
                                             <checkpoint> is the run's latest in run.json
    runs/<run>/.commit.lock          serialises commits to one run (flock)
    blobs/<sha256>                   content-addressed, shared by all runs
    locks/<run>.lock                 lock_run ownership (flock, holder's pid inside)
    .gc.lock                         commits share it; delete_run/prune/prune_runs take it
                                     exclusively (their deletes and blob sweep are one step)

Every file is written to a temporary name, fsynced, renamed into place, and its directory
fsynced. A save becomes visible only when ``run.json`` names it, so a crash mid-save leaves
an invisible orphan file, never a half-written checkpoint. Pending writes saved with a
checkpoint are written (and fsynced) before that commit point, so they become visible with it;
a crash leaves them orphaned too, and a later save of the same id clears them first. Names are
ids when they are safe everywhere, else ``~`` + sha256 of the id.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from workflow._checkpoint import Checkpoint, RunInfo, check_status
from workflow._errors import CheckpointError
from workflow._serde import dumps, loads

from ._common import (
    MIN_BLOB_BYTES,
    Encoded,
    StoreBase,
    check_keep_last,
    check_parent,
    corrupt,
    decode_checkpoint,
    decode_write,
    duplicate,
    encode_checkpoint,
    encode_write,
    encode_writes,
    fs_key,
    locked,
    not_latest,
    now,
    retention,
    unknown_checkpoint,
    unknown_run,
)
from ._flock import release, run_lock, try_lock

__all__ = ("FileCheckpointStore",)

T = TypeVar("T")
_FORMAT = {"format": "ledgerflow.file-store", "version": 1}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, *, sync_dir: bool = True) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    if sync_dir:
        _fsync_dir(path.parent)


def _record(enc: Encoded) -> bytes:
    return f"{enc.checksum} {','.join(sorted(enc.blobs))}\n".encode("ascii") + enc.payload


def _split(raw: bytes) -> tuple[str, list[str], bytes]:
    header, sep, payload = raw.partition(b"\n")
    parts = header.decode("ascii", "replace").split(" ")
    if not sep or len(parts) != 2:
        raise CheckpointError("its header line is missing or malformed (truncated?)")
    return parts[0], [h for h in parts[1].split(",") if h], payload


@contextmanager
def _flocked(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


class FileCheckpointStore(StoreBase):
    """Checkpoints in a directory tree (created on first use).

    Checkpoint ids must be unique per store; the file store checks this within a run only.

    Args:
        directory: the store's root directory.
        min_blob_bytes: sub-trees at least this large (canonical JSON) are stored once.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, min_blob_bytes: int = MIN_BLOB_BYTES
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self._runs = self.directory / "runs"
        self._blobs = self.directory / "blobs"
        self._min_blob_bytes = min_blob_bytes
        self._where: dict[str, str] = {}  # checkpoint id -> run key, a cache of _locate
        self._count_lock = threading.Lock()
        self._ready = False
        self._closed = False

    def __repr__(self) -> str:
        return f"FileCheckpointStore({str(self.directory)!r})"

    # -- plumbing ------------------------------------------------------------------------

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise CheckpointError(f"{self!r} is closed")
        return await anyio.to_thread.run_sync(fn)

    def _setup(self) -> None:
        if self._ready:
            return
        marker = self.directory / "ledgerflow-store.json"
        if marker.exists():
            found = loads(marker.read_bytes())
            if found != _FORMAT:
                raise CheckpointError(
                    f"{self.directory} holds {found!r}, not {_FORMAT!r}; it was written by "
                    "another Ledgerflow version or is not a checkpoint directory"
                )
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomic(marker, dumps(_FORMAT))
        for sub in (self._runs, self._blobs, self.directory / "locks"):
            sub.mkdir(exist_ok=True)
        self._ready = True

    @contextmanager
    def _gc(self, *, exclusive: bool = False) -> Iterator[None]:
        self._setup()
        with _flocked(self.directory / ".gc.lock", fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH):
            yield

    @contextmanager
    def _commit(self, run_key: str) -> Iterator[Path]:
        run_dir = self._runs / run_key
        run_dir.mkdir(exist_ok=True)
        with _flocked(run_dir / ".commit.lock", fcntl.LOCK_EX):
            yield run_dir

    def _count(self, n: int) -> None:
        with self._count_lock:
            self.bytes_written += n

    def _read_run(self, run_key: str) -> dict[str, Any] | None:
        path = self._runs / run_key / "run.json"
        try:
            raw = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            meta = loads(raw)
            if type(meta) is not dict or type(meta.get("checkpoints")) is not list:
                raise CheckpointError("not a run record")
        except CheckpointError as exc:
            raise CheckpointError(f"run metadata {path} is corrupt: {exc}") from None
        return meta

    def _write_run(self, run_dir: Path, meta: dict[str, Any]) -> None:
        _write_atomic(run_dir / "run.json", dumps(meta))

    def _put_blobs(self, blobs: dict[str, bytes]) -> int:
        written = 0
        for digest, data in blobs.items():
            path = self._blobs / digest
            if not path.exists():
                _write_atomic(path, data, sync_dir=False)
                written += len(data)
        if written:
            _fsync_dir(self._blobs)
        return written

    def _get_blob(self, digest: str) -> bytes:
        try:
            return (self._blobs / digest).read_bytes()
        except FileNotFoundError:
            raise KeyError(digest) from None

    def _locate(self, checkpoint_id: str) -> str | None:
        """The key of the run that commits ``checkpoint_id``, or ``None``."""
        self._setup()
        name = fs_key(checkpoint_id) + ".ckpt"
        cached = self._where.get(checkpoint_id)
        candidates = [cached] if cached else []
        candidates += [e.name for e in os.scandir(self._runs) if e.name[:1] != "."]
        for run_key in candidates:
            if (self._runs / run_key / name).exists():
                meta = self._read_run(run_key)
                if meta is not None and checkpoint_id in meta["checkpoints"]:
                    self._where[checkpoint_id] = run_key
                    return run_key
        return None

    # -- writes --------------------------------------------------------------------------

    async def save(
        self, checkpoint: Checkpoint, *, writes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        """See ``CheckpointStore.save``."""

        def work() -> None:
            enc = encode_checkpoint(checkpoint, self._min_blob_bytes)
            encoded = encode_writes(checkpoint.id, writes, self._min_blob_bytes)
            self._save(checkpoint, enc, encoded)

        await self._call(work)

    def _stage_writes(
        self, run_dir: Path, checkpoint_id: str, writes: list[tuple[str, Encoded]]
    ) -> int:
        """Write the pending writes of a checkpoint not committed yet; returns bytes written.

        They stay invisible until ``run.json`` names the checkpoint (``get_writes`` reads only
        the run's latest checkpoint's writes).
        """
        wroot = run_dir / "writes"
        wdir = wroot / fs_key(checkpoint_id)
        if wdir.exists():  # orphans of a save of this id that crashed before its commit point
            shutil.rmtree(wdir)
            _fsync_dir(wroot)
        if not writes:
            return 0
        wdir.mkdir(parents=True)
        written = 0
        for seq, (_, enc) in enumerate(writes, 1):
            record = _record(enc)
            _write_atomic(wdir / f"{seq:08d}.w", record, sync_dir=False)
            written += len(record)
        _fsync_dir(wdir)
        _fsync_dir(wroot)  # and run_dir, holding "writes", is fsynced with the checkpoint file
        return written

    def _save(self, cp: Checkpoint, enc: Encoded, writes: list[tuple[str, Encoded]]) -> None:
        run_key = fs_key(cp.run_id)
        with self._gc(), self._commit(run_key) as run_dir:
            meta = self._read_run(run_key)
            latest = meta["latest_checkpoint_id"] if meta else None
            parent_run = None
            if cp.parent_id is not None and cp.parent_id != latest:
                parent_key = self._locate(cp.parent_id)
                parent_meta = self._read_run(parent_key) if parent_key else None
                parent_run = parent_meta["run_id"] if parent_meta else None
            same_run = check_parent(cp, latest, parent_run)
            if meta and cp.id in meta["checkpoints"]:
                raise duplicate(cp.id)
            blobs = dict(enc.blobs)
            for _, w in writes:
                blobs.update(w.blobs)
            written = self._put_blobs(blobs)
            written += self._stage_writes(run_dir, cp.id, writes)
            record = _record(enc)
            _write_atomic(run_dir / f"{fs_key(cp.id)}.ckpt", record)
            meta = meta or {"run_id": cp.run_id, "checkpoints": []}
            meta.update(
                workflow_name=cp.workflow_name,
                status=cp.status,
                updated_at=now().isoformat(),
                latest_checkpoint_id=cp.id,
                checkpoints=[*meta["checkpoints"], cp.id],
            )
            self._write_run(run_dir, meta)  # the commit point
            self._where[cp.id] = run_key
            if same_run:
                shutil.rmtree(run_dir / "writes" / fs_key(cp.parent_id or ""), ignore_errors=True)
        self._count(written + len(record))

    async def put_write(self, checkpoint_id: str, executor_id: str, data: dict[str, Any]) -> None:
        """See ``CheckpointStore.put_write``."""

        def work() -> None:
            enc = encode_write(checkpoint_id, executor_id, data, self._min_blob_bytes)
            run_key = self._locate(checkpoint_id)
            if run_key is None:
                raise unknown_checkpoint(checkpoint_id)
            with self._gc(), self._commit(run_key) as run_dir:
                meta = self._read_run(run_key) or {}
                if meta.get("latest_checkpoint_id") != checkpoint_id:
                    raise not_latest(
                        checkpoint_id, meta.get("run_id", "?"), meta.get("latest_checkpoint_id")
                    )
                written = self._put_blobs(enc.blobs)
                wdir = run_dir / "writes" / fs_key(checkpoint_id)
                wdir.mkdir(parents=True, exist_ok=True)
                seqs = [int(p.stem) for p in wdir.glob("*.w")]
                record = _record(enc)
                _write_atomic(wdir / f"{max(seqs, default=0) + 1:08d}.w", record)
            self._count(written + len(record))

        await self._call(work)

    async def set_status(self, run_id: str, workflow_name: str, status: str) -> None:
        """See ``CheckpointStore.set_status``."""
        status = check_status(status)

        def work() -> None:
            run_key = fs_key(run_id)
            with self._gc(), self._commit(run_key) as run_dir:
                meta = self._read_run(run_key) or {
                    "run_id": run_id,
                    "workflow_name": workflow_name,
                    "latest_checkpoint_id": None,
                    "checkpoints": [],
                }
                meta.update(status=status, updated_at=now().isoformat())
                self._write_run(run_dir, meta)

        await self._call(work)

    @staticmethod
    def _refs_of(path: Path) -> list[str] | None:
        """The blobs a checkpoint or write file names in its header (``None``: unreadable)."""
        try:
            with open(path, "rb") as f:
                header = f.readline()
            return _split(header + b"\n")[1]
        except (OSError, CheckpointError):
            return None

    def _sweep(self, candidates: set[str] | None = None, first: str | None = None) -> None:
        """Delete blobs no committed checkpoint or pending write names (under the gc lock).

        Args:
            candidates: only these blobs may go (those the caller just unreferenced); the scan
                stops as soon as every one is found still in use. ``None``: every blob.
            first: the run key to scan first (the pruned run usually still uses its blobs).
        """
        if candidates is not None and not candidates:
            return
        live: set[str] = set()
        run_dirs = sorted(self._runs.iterdir(), key=lambda d: d.name != first)
        for run_dir in run_dirs:
            meta = self._read_run(run_dir.name) if run_dir.name[:1] != "." else None
            if meta is None:
                continue
            files = [run_dir / f"{fs_key(cid)}.ckpt" for cid in meta["checkpoints"]]
            files += run_dir.glob("writes/*/*.w")
            for path in files:
                refs = self._refs_of(path) or ()  # unreadable: its blobs cannot be trusted
                if candidates is None:
                    live.update(refs)
                    continue
                candidates.difference_update(refs)
                if not candidates:
                    return
        doomed = candidates if candidates is not None else {b.name for b in self._blobs.iterdir()}
        for name in doomed - live:
            (self._blobs / name).unlink(missing_ok=True)

    def _drop_run_dir(self, run_key: str) -> None:
        """Make a run vanish at once (one rename), then delete its files (under the gc lock)."""
        run_dir = self._runs / run_key
        if run_dir.exists():
            trash = self._runs / f".trash-{uuid.uuid4().hex}"
            os.replace(run_dir, trash)
            _fsync_dir(self._runs)
            shutil.rmtree(trash)
        self._where = {c: k for c, k in self._where.items() if k != run_key}

    async def delete_run(self, run_id: str) -> None:
        """See ``CheckpointStore.delete_run``."""

        def work() -> None:
            with self._gc(exclusive=True):
                self._drop_run_dir(fs_key(run_id))
                self._sweep()

        await self._call(work)

    async def prune(self, run_id: str, keep_last: int) -> int:
        """See ``CheckpointStore.prune``."""
        keep_last = check_keep_last(keep_last)

        def prune() -> int:
            run_key = fs_key(run_id)
            with self._gc(exclusive=True):
                meta = self._read_run(run_key)
                if meta is None:
                    raise unknown_run(run_id)
                ids = meta["checkpoints"]
                cut = max(len(ids) - keep_last, 0)
                if not cut:
                    return 0
                with self._commit(run_key) as run_dir:
                    meta["checkpoints"] = ids[cut:]
                    if not meta["checkpoints"]:
                        meta["latest_checkpoint_id"] = None
                    self._write_run(run_dir, meta)
                unreferenced: set[str] = set()
                for cid in ids[:cut]:
                    files = [run_dir / f"{fs_key(cid)}.ckpt"]
                    files += (run_dir / "writes" / fs_key(cid)).glob("*.w")
                    for path in files:
                        unreferenced.update(self._refs_of(path) or ())
                    files[0].unlink(missing_ok=True)
                    shutil.rmtree(run_dir / "writes" / fs_key(cid), ignore_errors=True)
                    self._where.pop(cid, None)
                self._sweep(unreferenced, first=run_key)
                return cut

        def work() -> int:
            if keep_last:  # the run keeps its latest checkpoint: safe even while it executes
                return prune()
            self._setup()
            fd, holder = try_lock(self._lock_path(run_id))  # would cut a live run's chain
            if holder is not None:
                raise locked(run_id, holder)
            try:
                return prune()
            finally:
                release(fd)

        return await self._call(work)

    async def prune_runs(
        self, older_than: dt.timedelta, status: str | Iterable[str] | None = None
    ) -> int:
        """See ``CheckpointStore.prune_runs``: runs whose lock file is held are skipped."""
        cutoff, statuses = retention(older_than, status)

        def work() -> int:
            deleted = 0
            with self._gc(exclusive=True):  # no commit runs until the sweep is done
                for entry in os.scandir(self._runs):
                    meta = self._read_run(entry.name) if entry.name[:1] != "." else None
                    if meta is None or dt.datetime.fromisoformat(meta["updated_at"]) >= cutoff:
                        continue
                    if statuses is not None and meta["status"] not in statuses:
                        continue
                    lock = self._lock_path(meta["run_id"])
                    fd, holder = try_lock(lock)
                    if holder is not None:
                        continue  # a live owner executes it: never pruned
                    try:
                        self._drop_run_dir(entry.name)
                        deleted += 1
                    finally:
                        release(fd, lock)
                if deleted:
                    self._sweep()
            return deleted

        return await self._call(work)

    # -- reads ---------------------------------------------------------------------------

    def _load(self, checkpoint_id: str, run_key: str | None = None) -> Checkpoint:
        run_key = run_key or self._locate(checkpoint_id)
        if run_key is None:
            raise unknown_checkpoint(checkpoint_id)
        path = self._runs / run_key / f"{fs_key(checkpoint_id)}.ckpt"
        try:
            checksum, _, payload = _split(path.read_bytes())
        except FileNotFoundError:
            raise corrupt(checkpoint_id, f"its file {path} is missing") from None
        except CheckpointError as exc:
            raise corrupt(checkpoint_id, str(exc)) from None
        return decode_checkpoint(checkpoint_id, payload, checksum, self._get_blob)

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """See ``CheckpointStore.load``."""
        return await self._call(lambda: self._load(checkpoint_id))

    async def list_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """See ``CheckpointStore.list_checkpoints``."""

        def work() -> list[Checkpoint]:
            self._setup()
            run_key = fs_key(run_id)
            meta = self._read_run(run_key)
            return [self._load(cid, run_key) for cid in (meta or {}).get("checkpoints", [])]

        return await self._call(work)

    async def latest(self, run_id: str) -> Checkpoint | None:
        """See ``CheckpointStore.latest``."""

        def work() -> Checkpoint | None:
            self._setup()
            run_key = fs_key(run_id)
            latest = (self._read_run(run_key) or {}).get("latest_checkpoint_id")
            return None if latest is None else self._load(latest, run_key)

        return await self._call(work)

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        """See ``CheckpointStore.get_writes`` (writes of a superseded checkpoint are ignored)."""

        def work() -> dict[str, dict[str, Any]]:
            run_key = self._locate(checkpoint_id)
            meta = self._read_run(run_key) if run_key else None
            if meta is None or meta.get("latest_checkpoint_id") != checkpoint_id:
                return {}
            wdir = self._runs / run_key / "writes" / fs_key(checkpoint_id)  # type: ignore[operator]
            out: dict[str, dict[str, Any]] = {}
            for path in sorted(wdir.glob("*.w")):
                try:
                    checksum, _, payload = _split(path.read_bytes())
                except CheckpointError as exc:
                    raise CheckpointError(f"pending write {path} is corrupt: {exc}") from None
                executor_id, data = decode_write(
                    checkpoint_id, None, payload, checksum, self._get_blob
                )
                out.pop(executor_id, None)
                out[executor_id] = data
            return out

        return await self._call(work)

    async def list_runs(self) -> list[RunInfo]:
        """See ``CheckpointStore.list_runs``."""

        def work() -> list[RunInfo]:
            self._setup()
            infos = []
            for entry in os.scandir(self._runs):
                meta = self._read_run(entry.name) if entry.name[:1] != "." else None
                if meta is not None:
                    infos.append(
                        RunInfo(
                            run_id=meta["run_id"],
                            workflow_name=meta["workflow_name"],
                            status=meta["status"],
                            updated_at=meta["updated_at"],
                            latest_checkpoint_id=meta["latest_checkpoint_id"],
                        )
                    )
            return sorted(infos, key=lambda info: (-info.updated_at.timestamp(), info.run_id))

        return await self._call(work)

    # -- ownership and lifetime ----------------------------------------------------------

    def lock_run(self, run_id: str) -> AbstractAsyncContextManager[None]:
        """See ``CheckpointStore.lock_run``: ``flock`` on ``locks/<run>.lock``."""
        return run_lock(self._lock_path(run_id), run_id)

    def _lock_path(self, run_id: str) -> Path:
        return self.directory / "locks" / f"{fs_key(run_id)}.lock"

    async def aclose(self) -> None:
        """Nothing stays open between calls; later calls raise ``CheckpointError``."""
        self._closed = True
