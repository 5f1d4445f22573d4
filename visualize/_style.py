"""Shapes and colours shared by the DOT and Mermaid writers, so both diagrams agree.

Shape tells the node kind; fill colour tells the kind in a plain diagram and the status in a
run overlay (the kind stays readable from the shape). The palette keeps text contrast high and
uses a dashed border, not only a colour, for "never reached".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = (
    "FONT",
    "KIND_STYLES",
    "STATUS_STYLES",
    "TIMES",
    "KindStyle",
    "StatusStyle",
    "kind_style",
)

FONT = "Helvetica,Arial,sans-serif"
TIMES = "\u00d7"  # the multiplication sign of "x3" counts


@dataclass(frozen=True, slots=True)
class KindStyle:
    """How one executor kind is drawn."""

    dot_shape: str
    rounded: bool
    mermaid: tuple[str, str]  # opening and closing brackets around the quoted label
    fill: str
    stroke: str
    subtitle: bool  # show the kind under the id (plain executors do not need it)


@dataclass(frozen=True, slots=True)
class StatusStyle:
    """How one run status is drawn in an overlay."""

    fill: str
    stroke: str
    font: str
    width: float
    dashed: bool
    text: str


KIND_STYLES: dict[str, KindStyle] = {
    "executor": KindStyle("box", True, ("[", "]"), "#f8fafc", "#475569", False),
    "function": KindStyle("box", True, ("(", ")"), "#f8fafc", "#475569", False),
    "agent": KindStyle("ellipse", False, ("([", "])"), "#e0f2fe", "#0369a1", True),
    "tool": KindStyle("component", False, ("[[", "]]"), "#fef9c3", "#a16207", True),
    "code": KindStyle("parallelogram", False, ("[/", "/]"), "#ede9fe", "#6d28d9", True),
    "human": KindStyle("trapezium", False, ("[/", "\\]"), "#fce7f3", "#be185d", True),
    "orchestrator": KindStyle("hexagon", False, ("{{", "}}"), "#ffedd5", "#c2410c", True),
    "workflow": KindStyle("box3d", False, ("[[", "]]"), "#f1f5f9", "#334155", True),
}
_OTHER = KindStyle("box", False, ("[", "]"), "#f8fafc", "#475569", True)

STATUS_STYLES: dict[str, StatusStyle] = {
    "completed": StatusStyle("#dcfce7", "#15803d", "#14532d", 1.5, False, "completed"),
    "failed": StatusStyle("#fee2e2", "#b91c1c", "#7f1d1d", 2.5, False, "failed"),
    "waiting": StatusStyle("#fef3c7", "#b45309", "#78350f", 2.5, False, "waiting for input"),
    "running": StatusStyle("#dbeafe", "#1d4ed8", "#1e3a8a", 1.5, False, "interrupted"),
    "unreached": StatusStyle("#f3f4f6", "#9ca3af", "#6b7280", 1.0, True, "not reached"),
}


def kind_style(kind: str) -> KindStyle:
    """The style of ``kind``; unknown kinds get a plain box that names the kind."""
    return KIND_STYLES.get(kind, _OTHER)
