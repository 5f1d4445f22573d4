"""Diagrams of workflows: Graphviz DOT, Mermaid, rendered files, and run overlays.

Reads a built workflow's immutable graph (``wf.graph``) and, for overlays, a run's events or
checkpoint; never runs anything. ``to_dot``/``to_mermaid`` return source, ``render`` writes a
file whose suffix picks the format (``FORMATS``). ``load_overlay`` reads a run's overlay from
an async store in async code; ``DotNotFoundError`` is what a missing Graphviz ``dot`` raises.
"""

from __future__ import annotations

from ._dot import to_dot
from ._mermaid import to_mermaid
from ._overlay import RunOverlay, load_overlay
from ._render import FORMATS, DotNotFoundError, render

__all__ = (
    "FORMATS",
    "DotNotFoundError",
    "RunOverlay",
    "load_overlay",
    "render",
    "to_dot",
    "to_mermaid",
)
