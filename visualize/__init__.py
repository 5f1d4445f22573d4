"""Diagrams of workflows: Graphviz DOT, Mermaid, rendered files, and run overlays.

Reads a built workflow's immutable graph (``wf.graph``) and, for overlays, a run's events or
checkpoint; never runs anything. ``to_dot``/``to_mermaid`` return source, ``render`` writes a
file whose suffix picks the format. ``RunOverlay``, ``load_overlay`` and ``DotNotFoundError``
are importable from here for overlays loaded in async code and for catching a missing ``dot``.
"""

from __future__ import annotations

from ._dot import to_dot
from ._mermaid import to_mermaid
from ._overlay import RunOverlay as RunOverlay
from ._overlay import load_overlay as load_overlay
from ._render import FORMATS as FORMATS
from ._render import DotNotFoundError as DotNotFoundError
from ._render import render

__all__ = ("render", "to_dot", "to_mermaid")
