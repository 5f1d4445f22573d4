"""Run ownership through ``flock`` on a per-run lock file.

Why ``flock``: the kernel drops the lock when its holder's last descriptor closes, which
includes the process dying from SIGKILL, so a crashed owner never leaves a run locked. Locks
belong to an open file description, so two store objects in one process exclude each other too.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from ._common import locked

__all__ = ("run_lock",)


def _acquire(path: Path, run_id: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise locked(run_id, holder) from None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
    return fd


@asynccontextmanager
async def run_lock(path: Path, run_id: str) -> AsyncIterator[None]:
    """Hold ``path`` exclusively for ``run_id``, or raise ``CheckpointError`` at once.

    The open and non-blocking ``flock`` run on the event loop on purpose: they never wait, and
    a worker thread could be abandoned by cancellation while it holds the descriptor.
    """
    fd = _acquire(path, run_id)
    try:
        yield
    finally:
        os.close(fd)
