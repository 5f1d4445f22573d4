"""``render(wf, path)``: write a diagram, the format chosen by the file's suffix.

``.dot``/``.gv`` and ``.mmd`` are text and need nothing else; ``.svg``, ``.png`` and ``.pdf``
are drawn by Graphviz's ``dot`` program, which the ``graphviz`` Python package only calls.
When ``dot`` is missing that is a ``DotNotFoundError`` naming the package to install, not a
traceback from deep inside ``graphviz``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import graphviz

from workflow import WorkflowError

from ._dot import to_dot
from ._mermaid import to_mermaid
from ._model import Direction

__all__ = ("FORMATS", "DotNotFoundError", "render")

_TEXT = {".dot": "dot", ".gv": "dot", ".mmd": "mermaid"}
_IMAGES = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
FORMATS = (".svg", ".png", ".pdf", ".dot", ".gv", ".mmd")
PNG_DPI = "144"  # sharp on high-density screens, still small files


class DotNotFoundError(WorkflowError, RuntimeError):
    """Graphviz's ``dot`` program is needed for this format but is not installed."""


def render(
    wf: Any, path: str | os.PathLike[str], run: Any = None, *, direction: Direction = "TB"
) -> Path:
    """Write ``wf``'s diagram to ``path``; the suffix picks the format.

    Args:
        wf: A built ``Workflow``.
        path: Where to write: ``.svg``, ``.png``, ``.pdf`` (through ``dot``), ``.dot``/``.gv``
            (DOT source) or ``.mmd`` (Mermaid source).
        run: Overlay one run: a ``RunResult``, a checkpoint, an overlay mapping, or
            ``(run_id, store)`` (loaded with a private event loop, so only from sync code; in
            async code ``await load_overlay(run_id, store)`` and pass that).
        direction: ``"TB"`` or ``"LR"``.

    Returns:
        The path written.

    Raises:
        ValueError: the suffix is not one of ``FORMATS``.
        DotNotFoundError: an image format was asked for and ``dot`` is not installed.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in _TEXT and suffix not in _IMAGES:
        raise ValueError(
            f"cannot render {str(target)!r}: unknown suffix {suffix or '(none)'!r}; "
            f"use one of {', '.join(FORMATS)}"
        )
    if _TEXT.get(suffix) == "mermaid":
        target.write_text(to_mermaid(wf, run=run, direction=direction), encoding="utf-8")
        return target
    graph = to_dot(wf, run=run, direction=direction)
    if suffix in _TEXT:
        target.write_text(graph.source, encoding="utf-8")
        return target
    fmt = _IMAGES[suffix]
    if fmt == "png":
        graph.attr("graph", dpi=PNG_DPI)
    try:
        data = graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise DotNotFoundError(
            f"rendering {str(target)!r} needs Graphviz's `dot` program, which is not on PATH; "
            "install it (Debian/Ubuntu: `apt-get install graphviz`, macOS: `brew install "
            "graphviz`) or write .dot or .mmd instead"
        ) from None
    target.write_bytes(data)
    return target
