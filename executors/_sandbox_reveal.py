"""Showing the sandbox uid an interpreter it cannot reach on the host (``unshare`` as root).

An interpreter installed under ``/root`` (pyenv, or a venv made from one) cannot be run by
uid 65534: ``/root`` is ``0700``. bubblewrap solves this by building the sandbox's file tree
from scratch. The ``unshare`` backend keeps the host's tree but runs in its own mount
namespace, so before dropping privileges the namespace's init (still root) changes only its
own view:

1. bind each hidden interpreter prefix read-only onto a staging directory (a per-execution
   directory that root owns);
2. mount an empty, size-capped ``tmpfs`` (mode ``0755``) over each directory that hides them
   (``/root``), which also hides everything else that was under it;
3. create the prefix's path inside that tmpfs and move the read-only bind there.

The host's ``/root`` never changes mode, and nothing but the interpreter's own prefixes
becomes visible; mounts made in the private namespace vanish with it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

__all__ = ("Reveal", "plan_reveal", "reveal_prefix")

_SEARCH_PATH: Final = "/usr/sbin:/usr/bin:/sbin:/bin"
# Small: it holds only the empty directories leading to the bound prefixes.
_COVER_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Reveal:
    """What the ``unshare`` backend mounts so that the sandbox uid can run the interpreter.

    Attributes:
        cover: Host directories the sandbox uid cannot traverse, each replaced by an empty
            tmpfs inside the sandbox's mount namespace.
        binds: ``(host path, path inside)`` of each interpreter prefix under a covered
            directory, bound read-only at its own path.
    """

    cover: tuple[str, ...] = ()
    binds: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.binds)


def _traversable(path: str, uid: int, gid: int) -> bool:
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _blocker(path: str, uid: int, gid: int) -> str | None:
    """The outermost proper ancestor of ``path`` that ``uid`` cannot traverse, if any."""
    pure = PurePosixPath(path)
    for parent in reversed(pure.parents):
        if not _traversable(str(parent), uid, gid):
            return str(parent)
    return None


def plan_reveal(prefixes: Iterable[str], python: str, uid: int, gid: int) -> Reveal:
    """Which of an interpreter's directories ``uid`` cannot reach, and how to show them.

    ``prefixes`` are the interpreter's own (``sys.prefix`` and friends), ``python`` the path
    it is run by (its directory, and that of the file it links to, are needed too). A path
    whose own directory is closed to ``uid`` (not an ancestor) is left alone: binding it
    would not change its permissions, and the probe that follows reports it.
    """
    blockers: list[str] = []
    binds: list[tuple[str, str]] = []
    paths = {*prefixes, os.path.dirname(python), os.path.dirname(os.path.realpath(python))}
    for path in sorted({os.path.normpath(p) for p in paths}):
        if any(_inside(path, target) for _, target in binds):
            continue  # inside a prefix already bound as a whole
        blocker = _blocker(path, uid, gid)
        if blocker is None or blocker == "/":
            continue  # reachable already, or nothing is (the probe will say so)
        binds.append((os.path.realpath(path), path))
        blockers.append(blocker)
    cover = [b for b in dict.fromkeys(blockers) if not any(_inside(b, o) for o in blockers)]
    return Reveal(cover=tuple(cover), binds=tuple(binds))


def _inside(path: str, directory: str) -> bool:
    """``path`` lies strictly below ``directory``."""
    return PurePosixPath(directory) in PurePosixPath(path).parents


def reveal_prefix(reveal: Reveal, stage: str) -> list[str]:
    """A command prefix, run as root inside the mount namespace, that performs ``reveal``.

    Args:
        reveal: From ``plan_reveal``.
        stage: A directory only root can write to (the execution directory); staging mount
            points are made under it and are empty again once the prefix has run.

    The script calls its helpers by absolute path (the sandbox's ``PATH`` starts with the
    interpreter's directory) and quotes every path; ``set -e`` stops before the code runs if
    any mount fails, so the code never starts with a partial view.
    """
    if not reveal:
        return []
    mount = shutil.which("mount", path=_SEARCH_PATH) or "/usr/bin/mount"
    mkdir = shutil.which("mkdir", path=_SEARCH_PATH) or "/usr/bin/mkdir"
    q = shlex.quote
    steps = ["set -e", "umask 022"]
    for index, (source, _) in enumerate(reveal.binds):
        staged = q(os.path.join(stage, f"reveal-{index}"))
        steps.append(f"{mkdir} -p {staged}")
        steps.append(f"{mount} --bind -o ro {q(source)} {staged}")
    for directory in reveal.cover:
        steps.append(
            f"{mount} -t tmpfs -o mode=0755,size={_COVER_BYTES},nosuid,nodev "
            f"ledgerflow-cover {q(directory)}"
        )
    for index, (_, target) in enumerate(reveal.binds):
        staged = q(os.path.join(stage, f"reveal-{index}"))
        steps.append(f"{mkdir} -p {q(target)}")
        steps.append(f"{mount} --move {staged} {q(target)}")
    steps.append('exec "$@"')
    sh = shutil.which("sh", path=_SEARCH_PATH) or "/bin/sh"
    return [sh, "-c", "; ".join(steps), "ledgerflow-reveal"]
