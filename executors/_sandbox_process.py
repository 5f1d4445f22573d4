"""Run one sandboxed command: capped output, a wall-clock deadline, and no survivors.

Every command starts in a new session, so its process group can be killed as a whole. The
namespace backends add a stronger guarantee (the PID namespace dies with its init); for the
``none`` backend, a sweep kills any process still carrying the execution's environment token,
which catches children that left the process group with ``setsid()``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import anyio
import anyio.abc

__all__ = ("ProcessOutcome", "StreamBudget", "run_process")

# After the main process is gone, how long the pipes may stay open before we stop reading.
_DRAIN_GRACE: Final = 1.0
_SWEEP_ROUNDS: Final = 5
_CHUNK: Final = 65536


@dataclass(slots=True)
class StreamBudget:
    """Bytes read from one stream so far, across the blocks of an execution, with a cap."""

    limit: int
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False

    def take(self, chunk: bytes) -> bool:
        """Keep what fits; return False once the cap is exceeded."""
        room = self.limit - len(self.data)
        if len(chunk) > room:
            self.data += chunk[: max(room, 0)]
            self.truncated = True
            return False
        self.data += chunk
        return True


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How one command ended; ``killed_for`` is set when we killed it ("timeout", "output")."""

    returncode: int
    killed_for: str | None


async def run_process(
    argv: Sequence[str],
    *,
    cwd: str,
    env: dict[str, str],
    deadline: float,
    stdout: StreamBudget,
    stderr: StreamBudget,
    token: str | None,
) -> ProcessOutcome:
    """Run ``argv`` until it exits, the deadline passes or an output cap is exceeded.

    Cancel-safe: whatever ends this call (return, exception, cancellation), the whole
    process tree is killed and reaped first.

    Args:
        argv: The full command (isolation prefix, limits, interpreter, script).
        cwd: Host working directory to start in.
        env: The complete (already scrubbed) environment.
        deadline: ``anyio.current_time()`` value at which to kill the tree.
        stdout: Budget collecting standard output.
        stderr: Budget collecting standard error.
        token: If set, the value of the token in ``env``: processes whose environment
            contains it are killed after the run (the ``none`` backend's sweep).
    """
    # Shielded so a cancellation cannot land between spawning and owning the process.
    with anyio.CancelScope(shield=True):
        proc = await anyio.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    killed_for: list[str] = []

    def kill(reason: str) -> None:
        if not killed_for:
            killed_for.append(reason)
        _kill_group(proc.pid)

    try:
        async with anyio.create_task_group() as tg:
            assert proc.stdout is not None
            assert proc.stderr is not None
            tg.start_soon(_pump, proc.stdout, stdout, kill)
            tg.start_soon(_pump, proc.stderr, stderr, kill)
            with anyio.CancelScope(deadline=deadline):
                await proc.wait()
            if proc.returncode is None:
                kill("timeout")
                await proc.wait()
            # The leader is gone: end its leftovers so they cannot hold the pipes open.
            await _finish(proc, token)
            tg.cancel_scope.deadline = anyio.current_time() + _DRAIN_GRACE
    finally:
        with anyio.CancelScope(shield=True):
            await _finish(proc, token)
            await proc.aclose()
    assert proc.returncode is not None
    return ProcessOutcome(proc.returncode, killed_for[0] if killed_for else None)


async def _pump(
    stream: anyio.abc.ByteReceiveStream, budget: StreamBudget, kill: Callable[[str], None]
) -> None:
    """Read a pipe incrementally; past the cap, kill the tree and stop reading."""
    while True:
        try:
            chunk = await stream.receive(_CHUNK)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return
        if not budget.take(chunk):
            kill("output")
            return


async def _finish(proc: anyio.abc.Process, token: str | None) -> None:
    """Kill and reap the leader, then everything it left behind."""
    if proc.returncode is None:
        _kill_group(proc.pid)
        await proc.wait()
    # The group outlives its leader while members remain, so its id cannot have been reused
    # by then; an empty group just yields ESRCH.
    _kill_group(proc.pid)
    if token is not None:
        await anyio.to_thread.run_sync(_sweep, token)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _sweep(token: str) -> None:
    """Kill every process whose environment holds ``token``, until none is left.

    Repeated because a process may fork while we scan; a few rounds outpace any fork rate
    that ``RLIMIT_NPROC`` allows.
    """
    needle = token.encode()
    me = os.getpid()
    for _ in range(_SWEEP_ROUNDS):
        found = False
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            try:
                with open(f"/proc/{entry.name}/environ", "rb") as fh:
                    environ = fh.read()
            except OSError:
                continue
            if needle in environ:
                found = True
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        if not found:
            return
