"""Run untrusted (model-written) Python in a sandboxed child process.

Layers, each described with its limits in ``docs/sandbox.md``: a fresh workspace per
execution; a scrubbed environment; rlimits (CPU, address space, file size, processes, open
files, no core dumps) and an unprivileged uid; a wall-clock timeout that kills the whole
process tree, also on cancellation; capped output; and namespaces (bubblewrap: private file
tree, no network; unshare: no network). A requested isolation that is unavailable raises
`SandboxUnavailableError`; code never silently runs with less isolation than asked for.

Independent of the engine on purpose (its one ``workflow`` import is ``WorkflowError``, the
base of ``SandboxUnavailableError``): ``CodeExecutor`` wraps `run_blocks`.
"""

from __future__ import annotations

import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, get_args

import anyio
from pydantic import BaseModel, ConfigDict

from ._chat import ChatMessage
from ._sandbox_blocks import extract_code_blocks
from ._sandbox_isolation import (
    SAFE_PATH,
    WORKSPACE_IN_BWRAP,
    Backend,
    Interpreter,
    Isolation,
    Limits,
    SandboxUnavailableError,
    bwrap_prefix,
    interpreter_info,
    lifetime_prefix,
    limits_prefix,
    resolve_backend,
    sandbox_available,
    unshare_prefix,
)
from ._sandbox_process import ProcessOutcome, StreamBudget, run_process

__all__ = (
    "CodeResult",
    "SandboxConfig",
    "SandboxUnavailableError",
    "extract_code_blocks",
    "run_blocks",
    "run_code",
    "sandbox_available",
)

_MiB: Final = 2**20
_TOKEN_VAR: Final = "LEDGERFLOW_SANDBOX"
# The in-sandbox deadline only matters when we are gone; it must never beat our own kill.
_BACKSTOP_GRACE: Final = 5.0
_REASONS: Final = {
    "timeout": "timed out",
    "output": "output limit exceeded",
    "cpu": "CPU time limit exceeded",
    "memory": "memory limit exceeded",
    "file_size": "file size limit exceeded",
}


class CodeResult(BaseModel):
    """What an execution did: exit code, output and why it was stopped, if it was.

    ``exit_code`` is the last block's: negative ``-N`` (or ``128 + N`` in a namespace)
    when a signal ``N`` ended it. ``killed_reason`` is one of ``"timeout"``, ``"output"``,
    ``"cpu"``, ``"memory"``, ``"file_size"`` or ``None``. ``in_reply_to`` is empty here;
    ``CodeExecutor`` fills it with the message(s) the code came from, so whoever receives
    the result (a user proxy) also sees what it answers.
    """

    model_config = ConfigDict(frozen=True)

    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool = False
    truncated: bool = False
    killed_reason: str | None = None
    in_reply_to: tuple[ChatMessage, ...] = ()

    @property
    def text(self) -> str:
        """A summary for a model or a person: the outcome first, then both streams."""
        head = f"exit code: {self.exit_code}"
        if self.killed_reason is not None:
            head += f" ({_REASONS.get(self.killed_reason, self.killed_reason)})"
        parts = [head]
        if self.stdout:
            parts.append("stdout:\n" + self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append("stderr:\n" + self.stderr.rstrip("\n"))
        if not self.stdout and not self.stderr:
            parts.append("(no output)")
        if self.truncated:
            parts.append("[output truncated: the output limit was reached]")
        return "\n".join(parts)


def _default_python() -> str:
    return sys.executable or "/usr/bin/python3"


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """How to sandbox an execution. Validated on construction.

    Attributes:
        timeout: Wall-clock seconds for the whole call (all blocks together).
        cpu_seconds: CPU seconds per process; ``None`` means ``ceil(timeout) + 1``.
        memory_bytes: Address-space limit per process (``RLIMIT_AS``).
        file_size_bytes: Largest file a process may write (``RLIMIT_FSIZE``).
        max_processes: Processes of the sandbox uid (``RLIMIT_NPROC``); concurrent
            sandboxes with the same ``uid`` share it.
        max_open_files: Open file descriptors per process (``RLIMIT_NOFILE``).
        output_limit_bytes: Cap per stream (stdout, stderr) for the whole call.
        network: Allow network access. Off needs a namespace backend.
        isolation: ``"auto"`` (bubblewrap, else unshare), a backend by name, or ``"none"``
            (no namespaces; only allowed with ``network=True``, to make the opt-out explicit).
        work_dir: Parent directory for the per-execution directories (default: tmp dir).
        env: Extra environment variables for the code; nothing else is inherited.
        python: Interpreter to run; its installation (and venv) is bound read-only.
        uid: Unprivileged uid the code runs as (when we are root; else mapped in a userns).
        gid: Its gid.
        tmp_bytes: Size of the tmpfs at ``/tmp`` and ``/dev/shm`` under bubblewrap.
    """

    timeout: float = 60.0
    cpu_seconds: int | None = None
    memory_bytes: int = 1024 * _MiB
    file_size_bytes: int = 10 * _MiB
    max_processes: int = 64
    max_open_files: int = 256
    output_limit_bytes: int = 1 * _MiB
    network: bool = False
    isolation: Isolation = "auto"
    work_dir: str | None = None
    env: Mapping[str, str] | None = None
    python: str = field(default_factory=_default_python)
    uid: int = 65534
    gid: int = 65534
    tmp_bytes: int = 64 * _MiB

    def __post_init__(self) -> None:
        """Reject bad values here, so a misconfiguration never reaches a running sandbox."""
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        for name in ("memory_bytes", "file_size_bytes", "max_processes", "max_open_files"):
            _require_positive(name, getattr(self, name))
        _require_positive("output_limit_bytes", self.output_limit_bytes)
        _require_positive("tmp_bytes", self.tmp_bytes)
        if self.cpu_seconds is not None:
            _require_positive("cpu_seconds", self.cpu_seconds)
        if self.isolation not in get_args(Isolation):
            raise ValueError(
                f"isolation must be one of {get_args(Isolation)}, got {self.isolation!r}"
            )
        if self.isolation == "none" and not self.network:
            raise ValueError(
                "isolation='none' cannot keep the network off; pass network=True to accept "
                "that the code can reach the network, or use isolation='auto'"
            )
        if self.uid <= 0 or self.gid <= 0:
            raise ValueError(
                f"uid/gid must be unprivileged (> 0), got {self.uid!r}/{self.gid!r}: the "
                "kernel does not apply RLIMIT_NPROC to root"
            )
        if self.env is not None:
            for key, value in self.env.items():
                if not key or "=" in key or "\0" in key or "\0" in value:
                    raise ValueError(f"invalid environment variable {key!r}={value!r}")
                if key == _TOKEN_VAR:
                    raise ValueError(f"environment variable {key!r} is reserved by the sandbox")
                if key.startswith("LD_"):
                    # The privileged helpers (bwrap, prlimit, setpriv) see this environment.
                    raise ValueError(
                        f"environment variable {key!r} is not allowed in a sandbox: it would "
                        "reach the privileged helpers that set the sandbox up"
                    )
            object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        if not self.python:
            raise ValueError("python must name an interpreter, e.g. '/usr/bin/python3'")


def _require_positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


async def run_code(code: str, config: SandboxConfig | None = None) -> CodeResult:
    """Run one piece of Python code in a fresh sandbox.

    Raises:
        SandboxUnavailableError: The requested isolation does not work on this machine.
    """
    return await run_blocks([code], config)


async def run_blocks(blocks: Sequence[str], config: SandboxConfig | None = None) -> CodeResult:
    """Run code blocks in order in one fresh workspace; stop at the first failing block.

    Each block runs as its own process (``python block_<n>.py`` in the workspace, so files
    and modules written by one block are there for the next). Outputs are concatenated;
    the exit code is that of the last block run. The timeout and the output caps cover the
    whole call. The workspace is removed afterwards, also on error or cancellation.

    Raises:
        SandboxUnavailableError: The requested isolation does not work on this machine.
        ValueError: ``blocks`` is empty.
    """
    cfg = config if config is not None else SandboxConfig()
    if isinstance(blocks, str):
        raise TypeError("blocks must be a sequence of code strings, not one str; use run_code")
    if not blocks:
        raise ValueError("no code blocks to run; extract_code_blocks() found no Python block?")
    deadline = anyio.current_time() + cfg.timeout
    backend = await anyio.to_thread.run_sync(resolve_backend, cfg.isolation)
    interpreter = await interpreter_info(cfg.python, backend, cfg.uid, cfg.gid)
    exec_dir = await anyio.to_thread.run_sync(_make_exec_dir, cfg, backend, list(blocks))
    try:
        workspace = os.path.join(exec_dir, "workspace")
        token = secrets.token_hex(16)
        seen_ws = WORKSPACE_IN_BWRAP if backend == "bubblewrap" else workspace
        env = _environment(cfg, seen_ws, interpreter.python, token, backend)
        prefix = _command_prefix(cfg, backend, interpreter, exec_dir)
        out = StreamBudget(cfg.output_limit_bytes)
        err = StreamBudget(cfg.output_limit_bytes)
        outcome = ProcessOutcome(0, None)
        for index in range(1, len(blocks) + 1):
            backstop = lifetime_prefix(
                deadline - anyio.current_time() + _BACKSTOP_GRACE, tie_child=backend == "none"
            )
            outcome = await run_process(
                [*prefix, *backstop, interpreter.python, f"block_{index}.py"],
                cwd=workspace,
                env=env,
                deadline=deadline,
                stdout=out,
                stderr=err,
                token=token if backend == "none" else None,
            )
            if outcome.returncode != 0 or outcome.killed_for is not None:
                break
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(_remove_tree, exec_dir)
    stderr = err.data.decode(errors="replace")
    return CodeResult(
        exit_code=outcome.returncode,
        stdout=out.data.decode(errors="replace"),
        stderr=stderr,
        timed_out=outcome.killed_for == "timeout",
        truncated=out.truncated or err.truncated,
        killed_reason=outcome.killed_for or _limit_hit(outcome.returncode, stderr, backend),
    )


def _command_prefix(
    cfg: SandboxConfig, backend: Backend, interpreter: Interpreter, exec_dir: str
) -> list[str]:
    """Everything before ``python block_<n>.py``: namespaces, then limits and uid drop."""
    cpu = cfg.cpu_seconds if cfg.cpu_seconds is not None else math.ceil(cfg.timeout) + 1
    limits = Limits(
        cpu, cfg.memory_bytes, cfg.file_size_bytes, cfg.max_processes, cfg.max_open_files
    )
    if backend == "bubblewrap":
        prefix = bwrap_prefix(
            network=cfg.network,
            interpreter=interpreter,
            workspace=os.path.join(exec_dir, "workspace"),
            passwd=os.path.join(exec_dir, "passwd"),
            group=os.path.join(exec_dir, "group"),
            tmp_bytes=cfg.tmp_bytes,
            uid=cfg.uid,
            gid=cfg.gid,
        )
    elif backend == "unshare":
        prefix = unshare_prefix(
            network=cfg.network,
            uid=cfg.uid,
            gid=cfg.gid,
            reveal=interpreter.reveal,
            stage=exec_dir,
        )
    else:
        prefix = []
    return prefix + limits_prefix(limits, cfg.uid, cfg.gid)


def _environment(
    cfg: SandboxConfig, workspace: str, python: str, token: str, backend: Backend
) -> dict[str, str]:
    """A minimal allowlist; nothing from our own environment (API keys!) leaks in."""
    env = {
        "PATH": f"{os.path.dirname(python)}:{SAFE_PATH}",
        "LANG": "C.UTF-8",
        "HOME": workspace,
        "TMPDIR": "/tmp" if backend == "bubblewrap" else os.path.join(workspace, ".tmp"),
        "USER": "sandbox",
        "LOGNAME": "sandbox",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    env.update(cfg.env or {})
    env[_TOKEN_VAR] = token
    return env


def _make_exec_dir(cfg: SandboxConfig, backend: Backend, blocks: list[str]) -> str:
    """Create ``<exec>/workspace`` owned by the sandbox uid, with the blocks already in it.

    The blocks are written before any code runs: root never writes into a directory the
    sandbox controls, so a planted symlink cannot redirect our writes.
    """
    parent = cfg.work_dir if cfg.work_dir is not None else tempfile.gettempdir()
    os.makedirs(parent, exist_ok=True)
    exec_dir = tempfile.mkdtemp(prefix="ledgerflow-sandbox-", dir=parent)
    try:
        workspace = os.path.join(exec_dir, "workspace")
        os.mkdir(workspace)
        # bwrap changes into it after dropping its capabilities, as "other": allow traversal.
        os.chmod(workspace, 0o711 if backend == "bubblewrap" else 0o700)
        for index, code in enumerate(blocks, 1):
            path = os.path.join(workspace, f"block_{index}.py")
            with open(path, "x", encoding="utf-8") as fh:
                fh.write(code)
            os.chmod(path, 0o444)
        if backend != "bubblewrap":
            os.mkdir(os.path.join(workspace, ".tmp"), 0o700)
        if os.geteuid() == 0:
            for dirpath in (workspace, os.path.join(workspace, ".tmp")):
                if os.path.isdir(dirpath):
                    os.chown(dirpath, cfg.uid, cfg.gid)
        if backend == "bubblewrap":
            with open(os.path.join(exec_dir, "passwd"), "x", encoding="ascii") as fh:
                fh.write(
                    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                    f"sandbox:x:{cfg.uid}:{cfg.gid}:sandbox:{WORKSPACE_IN_BWRAP}:/usr/sbin/nologin\n"
                )
            with open(os.path.join(exec_dir, "group"), "x", encoding="ascii") as fh:
                fh.write(f"root:x:0:\nsandbox:x:{cfg.gid}:\n")
        else:
            # The sandbox uid must traverse (not list) the directories leading to its workspace.
            os.chmod(exec_dir, 0o711)
            _check_traversable(exec_dir, cfg.uid)
    except BaseException:
        _remove_tree(exec_dir)
        raise
    return exec_dir


def _check_traversable(path: str, uid: int) -> None:
    """Fail early when the sandbox uid could not even reach its own workspace."""
    current = os.path.dirname(path)
    while True:
        st = os.stat(current)
        if not (st.st_mode & 0o001 or (st.st_uid == uid and st.st_mode & 0o100)):
            raise SandboxUnavailableError(
                f"work_dir {current!r} is not traversable by the sandbox uid {uid}; "
                "use a world-traversable work_dir such as /tmp"
            )
        if current == "/":
            return
        current = os.path.dirname(current)


def _remove_tree(path: str) -> None:
    """Remove an execution directory, even one whose code chmod-ed parts of it read-only."""

    def retry(func: object, failed: str, _exc: object) -> None:
        os.chmod(os.path.dirname(failed), 0o700)
        if os.path.isdir(failed) and not os.path.islink(failed):
            os.chmod(failed, 0o700)
            shutil.rmtree(failed, ignore_errors=True)
        else:
            os.unlink(failed)

    shutil.rmtree(path, onerror=retry)


def _limit_hit(returncode: int, stderr: str, backend: Backend) -> str | None:
    """Name the resource limit that most likely ended the code, from its exit and stderr."""
    if returncode < 0:
        signum = -returncode
    elif backend != "none" and returncode > 128:
        # A PID namespace's init (bubblewrap's, or `timeout` under unshare) cannot die of a
        # signal it re-raises at itself: it reports a fatal signal N as 128 + N.
        signum = returncode - 128
    else:
        signum = 0
    # SIGXCPU at the soft CPU limit; SIGKILL at the hard one (a namespace's init ignores
    # SIGXCPU), which we did not send since killed_for was empty.
    if signum in (signal.SIGXCPU, signal.SIGKILL):
        return "cpu"
    last = stderr.rstrip().rsplit("\n", 1)[-1]
    if last.startswith("MemoryError"):
        return "memory"
    if "[Errno 27] File too large" in last:
        return "file_size"
    return None
