"""Isolation backends for the code sandbox: probing them and building their command lines.

Three backends, strongest first (what each guarantees is written up in ``docs/sandbox.md``):

* ``bubblewrap``: a new mount namespace whose root holds only read-only system directories,
  the interpreter's installation and the per-execution workspace; plus network, PID, IPC and
  UTS namespaces. The process tree dies with the PID namespace's init.
* ``unshare`` (util-linux): private mount, network, PID, IPC and UTS namespaces, but the
  host's file tree; files are guarded only by Unix permissions of the sandbox uid (as root,
  an interpreter under ``/root`` is mounted into view: ``_sandbox_reveal``).
* ``none``: no namespaces; an explicit opt-out that keeps the other layers.

Every backend runs the code through ``prlimit`` (resource limits) and, when we are root,
``setpriv`` (drop to an unprivileged uid: the kernel ignores ``RLIMIT_NPROC`` for root).
"""

from __future__ import annotations

import functools
import json
import math
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final, Literal

import anyio

from workflow import WorkflowError

from ._sandbox_reveal import Reveal, plan_reveal, reveal_prefix

__all__ = (
    "Backend",
    "Interpreter",
    "Isolation",
    "Limits",
    "SandboxUnavailableError",
    "bwrap_prefix",
    "interpreter_info",
    "lifetime_prefix",
    "limits_prefix",
    "resolve_backend",
    "sandbox_available",
    "unshare_prefix",
)

Isolation = Literal["auto", "bubblewrap", "unshare", "none"]
Backend = Literal["bubblewrap", "unshare", "none"]

SAFE_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
WORKSPACE_IN_BWRAP: Final = "/workspace"
_SEARCH_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Bound read-only as a whole; anything below them needs no bind of its own.
_SYSTEM_DIRS: Final = ("/usr",)
_ROOT_LINKS: Final = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_ALWAYS: Final = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/alternatives",
    "/etc/hosts",
)
_ETC_NETWORK: Final = (
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki",
)
_PROBE_TIMEOUT: Final = 20.0
# Also lists what the running uid cannot read: setpriv execs with its capabilities still in
# effect, so an interpreter under /root starts as uid 65534 but then silently loads another
# libpython and stdlib (whatever ld.so and the default prefix find).
_INTERPRETER_PROBE: Final = (
    "import json, os, sys\n"
    "prefixes = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]\n"
    "own = [os.path.realpath(sys.executable), *prefixes]\n"
    "bad = [p for p in own if not os.access(p, os.R_OK)]\n"
    "print(json.dumps({'prefixes': prefixes, 'unreadable': bad}))\n"
)


class SandboxUnavailableError(WorkflowError, RuntimeError):
    """The requested isolation cannot be set up here; the message says what to install.

    Raised instead of ever running code with less isolation than was asked for. A
    ``WorkflowError`` like every error Ledgerflow raises on purpose, and still a
    ``RuntimeError`` for code that caught it as one.
    """


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits applied with ``prlimit`` just before the interpreter starts."""

    cpu_seconds: int
    memory_bytes: int
    file_size_bytes: int
    max_processes: int
    max_open_files: int


@dataclass(frozen=True, slots=True)
class Interpreter:
    """Where an interpreter lives, so bubblewrap can bind exactly that read-only.

    ``reveal`` is what the ``unshare`` backend (as root) mounts to show the sandbox uid the
    prefixes it could not reach on the host (an interpreter under ``/root``).
    """

    python: str
    prefixes: tuple[str, ...]
    reveal: Reveal = field(default_factory=Reveal)


def _which(name: str) -> str | None:
    """Find a helper binary on a fixed system path (never the caller's PATH)."""
    return shutil.which(name, path=_SEARCH_PATH)


def _is_root() -> bool:
    return os.geteuid() == 0


def limits_prefix(limits: Limits, uid: int, gid: int) -> list[str]:
    """Command prefix that applies rlimits and, as root, drops to ``uid``/``gid``.

    ``prlimit`` runs while still privileged, so the limits are set before ``setpriv`` drops
    the uid; then the kernel counts ``RLIMIT_NPROC`` against that unprivileged uid. Changing
    the uid clears the parent-death signal (``unshare --kill-child`` relies on it), so
    ``setpriv`` sets it again afterwards.
    """
    prlimit = _which("prlimit") or "/usr/bin/prlimit"
    argv = [
        prlimit,
        f"--cpu={_clamp(resource.RLIMIT_CPU, limits.cpu_seconds)}:"
        f"{_clamp(resource.RLIMIT_CPU, limits.cpu_seconds + 1)}",
        f"--as={_clamp(resource.RLIMIT_AS, limits.memory_bytes)}",
        f"--fsize={_clamp(resource.RLIMIT_FSIZE, limits.file_size_bytes)}",
        f"--nproc={_clamp(resource.RLIMIT_NPROC, limits.max_processes)}",
        f"--nofile={_clamp(resource.RLIMIT_NOFILE, limits.max_open_files)}",
        "--core=0",
        "--",
    ]
    if _is_root():
        argv += [
            _which("setpriv") or "/usr/bin/setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--pdeathsig=KILL",
            "--",
        ]
    return argv


def lifetime_prefix(seconds: float, *, tie_child: bool) -> list[str]:
    """``timeout -s KILL``: a deadline inside the sandbox that holds even if we die.

    Our parent-death signals cannot cover everything: bwrap arms its own only once the
    sandbox is set up, so an engine killed during those milliseconds leaves a sandbox that
    nobody watches. When this ``timeout`` kills the code and exits, the namespace's init
    exits too, and the kernel kills everything left in the PID namespace.

    Args:
        seconds: Time left until the execution's deadline (plus grace).
        tie_child: Give the interpreter a parent-death signal of its own, for the ``none``
            backend: there no namespace dies with ``timeout`` when ``timeout`` is killed.
    """
    argv = [_which("timeout") or "/usr/bin/timeout", "--signal=KILL", f"{max(seconds, 0.1):.1f}"]
    if tie_child:
        argv += [_which("setpriv") or "/usr/bin/setpriv", "--pdeathsig=KILL", "--"]
    return argv


def _clamp(which: int, value: int) -> int:
    """Never ask for more than the current hard limit: raising it needs privileges we drop."""
    hard = resource.getrlimit(which)[1]
    return value if hard == resource.RLIM_INFINITY else min(value, hard)


def unshare_prefix(
    *, network: bool, uid: int, gid: int, reveal: Reveal | None = None, stage: str = ""
) -> list[str]:
    """``unshare`` command prefix: new mount/network/PID/IPC/UTS namespaces, killed with us.

    ``setpriv --pdeathsig`` kills ``unshare`` if this process dies; the namespace's init
    (the command chain ending in the code) then gets ``SIGKILL`` too (``--kill-child``, or
    re-armed by the inner ``setpriv`` after the uid drop cleared it), which takes every
    process in the namespace along. ``--mount-proc`` makes the mount namespace private, so
    ``reveal`` (mounted under the root-owned ``stage`` directory first) changes only the
    sandbox's view of the file tree.
    """
    setpriv = _which("setpriv") or "/usr/bin/setpriv"
    argv = [setpriv, "--pdeathsig=KILL", "--", _which("unshare") or "/usr/bin/unshare"]
    argv += ["--pid", "--ipc", "--uts", "--fork", "--kill-child", "--mount-proc"]
    if not network:
        argv.append("--net")
    if not _is_root():
        argv += [f"--map-user={uid}", f"--map-group={gid}"]
    return [*argv, "--", *(reveal_prefix(reveal, stage) if reveal else [])]


def bwrap_prefix(
    *,
    network: bool,
    interpreter: Interpreter,
    workspace: str,
    passwd: str,
    group: str,
    tmp_bytes: int,
    uid: int,
    gid: int,
) -> list[str]:
    """The ``bwrap`` command prefix: an empty root with read-only system dirs and a workspace.

    Args:
        network: Keep the host network (no ``--unshare-net``).
        interpreter: Its prefixes are bound read-only at their own paths.
        workspace: Host directory bound read-write at ``/workspace`` and made the cwd.
        passwd: Host file shown as ``/etc/passwd`` (a synthetic one naming only the sandbox).
        group: Host file shown as ``/etc/group``.
        tmp_bytes: Size of the tmpfs at ``/tmp`` and ``/dev/shm``.
        uid: Sandbox uid (used in a user namespace when we are not root).
        gid: Sandbox gid.
    """
    argv = [_which("bwrap") or "bwrap"]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if not network:
        argv.append("--unshare-net")
    if _is_root():
        # Keep only what setpriv needs to drop to the sandbox uid; it then clears them all.
        argv += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP"):
            argv += ["--cap-add", cap]
    else:
        argv += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
    argv += ["--hostname", "sandbox", "--die-with-parent", "--new-session"]
    argv += ["--ro-bind", "/usr", "/usr", "--perms", "0755", "--dir", "/etc"]
    for link in _ROOT_LINKS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            argv += ["--ro-bind", link, link]
    for path in (*_ETC_ALWAYS, *(_ETC_NETWORK if network else ())):
        argv += ["--ro-bind-try", path, path]
    argv += ["--ro-bind", passwd, "/etc/passwd", "--ro-bind", group, "/etc/group"]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    for tmpfs in ("/tmp", "/dev/shm"):
        argv += ["--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", tmpfs]
    # After the tmpfs mounts: bwrap applies mounts in order, and an interpreter (say a venv
    # in a checkout under /tmp) bound before them would be hidden by the empty /tmp.
    argv += _interpreter_binds(interpreter)
    argv += ["--bind", workspace, WORKSPACE_IN_BWRAP, "--chdir", WORKSPACE_IN_BWRAP]
    return [*argv, "--"]


def _interpreter_binds(interpreter: Interpreter) -> list[str]:
    """Bind each interpreter prefix read-only, creating world-traversable parents for it.

    bubblewrap creates missing parents mode 0700 (root), which the sandbox uid could not
    traverse; ``--perms 0755 --dir`` creates them first.
    """
    argv: list[str] = []
    made: set[PurePosixPath] = {PurePosixPath("/")}
    paths = [*interpreter.prefixes]
    if not _covered(interpreter.python, paths):
        paths.append(interpreter.python)
    for path in _outermost(p for p in paths if not _covered(p, _SYSTEM_DIRS)):
        pure = PurePosixPath(path)
        for parent in reversed(pure.parents):
            if parent not in made:
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        argv += ["--ro-bind", os.path.realpath(path), path]
        made.add(pure)
    return argv


def _covered(path: str, roots: Sequence[str]) -> bool:
    pure = PurePosixPath(path)
    return any(pure == PurePosixPath(r) or PurePosixPath(r) in pure.parents for r in roots)


def _outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths nested in other paths of the list (one bind covers them)."""
    unique = sorted(set(paths))
    kept: list[str] = []
    for path in unique:
        if not _covered(path, kept):
            kept.append(path)
    return kept


_interpreters: dict[tuple[str, Backend, int, int], Interpreter] = {}


async def interpreter_info(python: str, backend: Backend, uid: int, gid: int) -> Interpreter:
    """Ask ``python`` where it is installed (cached per interpreter and backend).

    For ``none`` and ``unshare`` the interpreter must work as the sandbox uid, so a probe
    runs as that uid and one it cannot read fails here with a clear message instead of
    failing every execution. As root, ``unshare`` first shows that uid the prefixes it could
    not reach (``Reveal``), as bubblewrap does, and the probe checks the result.
    """
    key = (python, backend, uid, gid)
    if key in _interpreters:
        return _interpreters[key]
    if os.path.isabs(python):
        resolved = python
    else:
        resolved = _which(python) or ""
    if not resolved or not os.access(resolved, os.X_OK):
        raise SandboxUnavailableError(
            f"interpreter {python!r} not found or not executable; pass an absolute path "
            "such as '/usr/bin/python3' as SandboxConfig.python"
        )
    reveal = Reveal()
    if backend == "bubblewrap" or not _is_root():
        prefixes = await _probe_interpreter(resolved, [], uid)
    else:
        limits = limits_prefix(Limits(math.ceil(_PROBE_TIMEOUT), 2**30, 2**20, 64, 256), uid, gid)
        if backend == "unshare":
            own = await _probe_interpreter(resolved, [], 0)
            reveal = await anyio.to_thread.run_sync(plan_reveal, own, resolved, uid, gid)
            stage = await anyio.to_thread.run_sync(tempfile.mkdtemp, None, "ledgerflow-probe-")
            try:
                ns = unshare_prefix(network=False, uid=uid, gid=gid, reveal=reveal, stage=stage)
                prefixes = await _probe_interpreter(resolved, [*ns, *limits], uid)
            finally:
                await anyio.to_thread.run_sync(shutil.rmtree, stage)
            if prefixes != own:  # it started, but found another installation than its own
                raise SandboxUnavailableError(
                    f"interpreter {resolved!r} does not work as uid {uid}: it reports prefixes "
                    f"{prefixes!r}, not its own {own!r}; use python='/usr/bin/python3', or "
                    "isolation='bubblewrap'"
                )
        else:
            prefixes = await _probe_interpreter(resolved, limits, uid)
    if any(PurePosixPath(p) == PurePosixPath("/") for p in prefixes):
        raise SandboxUnavailableError(
            f"interpreter {resolved!r} has prefix '/'; binding it would expose the whole "
            "file system; use an interpreter installed under /usr or its own directory"
        )
    info = Interpreter(python=resolved, prefixes=prefixes, reveal=reveal)
    _interpreters[key] = info
    return info


async def _probe_interpreter(python: str, prefix: list[str], uid: int) -> tuple[str, ...]:
    """Run the interpreter probe behind ``prefix``; its prefixes, or why it does not work."""
    argv = [*prefix, python, "-c", _INTERPRETER_PROBE]
    with anyio.fail_after(_PROBE_TIMEOUT):
        done = await anyio.run_process(
            argv, check=False, cwd="/", env={"PATH": SAFE_PATH, "LANG": "C.UTF-8"}
        )
    report = json.loads(done.stdout) if done.returncode == 0 else {}
    if done.returncode != 0 or report["unreadable"]:
        why = report.get("unreadable") or done.stderr.decode(errors="replace").strip()[-500:]
        raise SandboxUnavailableError(
            f"interpreter {python!r} does not work as uid {uid}: {why!r}; use an interpreter "
            "that uid can read, e.g. python='/usr/bin/python3', or isolation='bubblewrap'"
        )
    return tuple(str(p) for p in report["prefixes"])


def resolve_backend(isolation: Isolation) -> Backend:
    """Pick the backend for ``isolation``, or raise if it (or any, for ``auto``) is missing."""
    if isolation != "auto":
        ok, reason = sandbox_available(isolation)
        if not ok:
            raise SandboxUnavailableError(f"isolation={isolation!r} is unavailable: {reason}")
        return isolation
    reasons = []
    for candidate in ("bubblewrap", "unshare"):
        ok, reason = sandbox_available(candidate)
        if ok:
            return candidate
        reasons.append(f"{candidate}: {reason}")
    raise SandboxUnavailableError(
        "no sandbox is available (" + "; ".join(reasons) + "). Install the Debian package "
        "'bubblewrap' (apt-get install bubblewrap); isolation='none' with network=True runs "
        "the code without namespaces, at your own risk"
    )


@functools.cache
def sandbox_available(isolation: Isolation) -> tuple[bool, str]:
    """Report whether ``isolation`` works on this machine, and why not (cached).

    Probes by really starting a sandbox once, since a binary on disk says nothing about
    whether the kernel (or a container runtime) lets it create namespaces.

    Returns:
        ``(True, description)`` or ``(False, what is missing and how to fix it)``.
    """
    if isolation == "auto":
        for candidate in ("bubblewrap", "unshare"):
            ok, reason = sandbox_available(candidate)
            if ok:
                return True, reason
        return False, "neither bubblewrap nor unshare works; install the package 'bubblewrap'"
    if _which("prlimit") is None or (_is_root() and _which("setpriv") is None):
        return False, "prlimit/setpriv not found; install the Debian package 'util-linux'"
    if _which("timeout") is None:
        return False, "timeout not found; install the Debian package 'coreutils'"
    if isolation == "none":
        return True, "no namespaces: rlimits, scrubbed environment, timeout and output cap only"
    if isolation == "bubblewrap":
        if _which("bwrap") is None:
            return False, "bwrap not found; install the Debian package 'bubblewrap'"
        probe = [_which("bwrap") or "bwrap", "--ro-bind", "/usr", "/usr"]
        for link in _ROOT_LINKS:
            if os.path.islink(link):
                probe += ["--symlink", os.readlink(link), link]
        probe += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--die-with-parent"]
        if not _is_root():
            probe.append("--unshare-user")
        probe += ["--proc", "/proc", "--", "/usr/bin/true"]
        what = "bubblewrap: mount, network, PID, IPC and UTS namespaces"
    elif isolation == "unshare":
        if _which("unshare") is None:
            return False, "unshare not found; install the Debian package 'util-linux'"
        probe = [*unshare_prefix(network=False, uid=65534, gid=65534), "/usr/bin/true"]
        what = "unshare: network, PID, IPC and UTS namespaces; host files guarded by permissions"
    else:
        return False, f"unknown isolation {isolation!r}; use auto, bubblewrap, unshare or none"
    return _probe(probe, what)


def _probe(argv: list[str], what: str) -> tuple[bool, str]:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{argv[0]} failed to start: {exc}"
    if done.returncode != 0:
        err = done.stderr.decode(errors="replace").strip()
        return False, (
            f"{argv[0]} cannot create namespaces here ({err or f'exit {done.returncode}'}); "
            "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) "
            "or, in a container, allow namespace creation"
        )
    return True, what
