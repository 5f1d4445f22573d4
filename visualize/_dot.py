"""Graphviz DOT output: ``to_dot(wf) -> graphviz.Digraph``.

Node ids are ASCII slugs allocated by ``_model`` (a real id may hold quotes, colons, which
``graphviz`` would read as a port, or backslashes); the real id is the label and tooltip.
Labels are HTML-like, built with ``html.escape``, so no text is read as DOT syntax or as an
escape sequence such as ``\\N``. Tooltips are plain strings passed through ``graphviz.escape``.
"""

from __future__ import annotations

from html import escape as html
from typing import Any

import graphviz

from ._model import Cluster, Diagram, Direction, Edge, Node, build_diagram
from ._style import FONT, STATUS_STYLES, TIMES, kind_style

__all__ = ("to_dot",)

_MUTED = "#64748b"
_INK = "#1f2937"
# slanted shapes grow fast with the default margin; keep them near the size of a box
_SHAPE_MARGINS = {
    "trapezium": {"margin": "0.02,0.02"},
    "parallelogram": {"margin": "0.02,0.04"},
    "hexagon": {"margin": "0.06,0.04"},
}


def to_dot(wf: Any, *, run: Any = None, direction: Direction = "TB") -> graphviz.Digraph:
    """Draw ``wf`` as a Graphviz digraph, optionally overlaid with one run.

    Args:
        wf: A built ``Workflow``.
        run: A ``RunResult``, a checkpoint, an overlay mapping or ``(run_id, store)``: colours
            executors by status and counts messages on edges (see ``RunOverlay``).
        direction: ``"TB"`` (top to bottom) or ``"LR"`` (left to right).
    """
    diagram = build_diagram(wf, run, direction)
    g = graphviz.Digraph(name=graphviz.escape(diagram.title))
    g.attr(
        "graph",
        rankdir=direction,
        compound="true",
        fontname=FONT,
        fontsize="14",
        labelloc="t",
        label=_title(diagram),
        nodesep="0.35",
        ranksep="0.45",
        pad="0.25",
        bgcolor="white",
    )
    g.attr("node", fontname=FONT, fontsize="12", style="filled", margin="0.16,0.06", penwidth="1.2")
    g.attr("edge", fontname=FONT, fontsize="10", color=_MUTED, fontcolor="#334155", arrowsize="0.7")
    _items(g, diagram, diagram.items)
    for edge in diagram.edges:
        _edge(g, diagram, edge)
    return g


def _title(diagram: Diagram) -> str:
    text = f"<b>{html(diagram.title)}</b>"
    if diagram.caption:
        text += f'<br/><font point-size="10" color="{_MUTED}">{html(diagram.caption)}</font>'
    return f"<{text}>"


def _items(g: graphviz.Digraph, diagram: Diagram, items: list[Node | Cluster]) -> None:
    for item in items:
        if isinstance(item, Cluster):
            _cluster(g, diagram, item)
        else:
            g.node(item.name, **_node_attrs(diagram, item))


def _label(
    title: str, subtitle: str | None, lines: list[str], font: str, *, left: bool = False
) -> str:
    br = '<br align="left"/>' if left else "<br/>"
    text = html(title) if title else " "
    if subtitle:
        text += f'{br}<font point-size="9" color="{_MUTED}">{html(subtitle)}</font>'
    for line in lines:
        text += f'{br}<font point-size="9" color="{font}">{html(line)}</font>'
    return f"<{text}{br if left else ''}>"


def _node_attrs(diagram: Diagram, node: Node) -> dict[str, str]:
    tooltip = graphviz.escape(node.tooltip)
    if node.kind == "start":
        return {
            "shape": "circle", "label": "", "width": "0.2", "fixedsize": "true",
            "fillcolor": _INK, "color": _INK, "tooltip": tooltip,
        }  # fmt: skip
    if node.kind == "join":
        wide, thin = "0.7", "0.07"
        width, height = (wide, thin) if diagram.direction == "TB" else (thin, wide)
        return {
            "shape": "box", "label": "", "width": width, "height": height, "fixedsize": "true",
            "fillcolor": _INK, "color": _INK, "tooltip": tooltip,
        }  # fmt: skip
    if node.kind == "select":
        return {
            "shape": "diamond", "label": _label(node.label, None, [], _MUTED), "fontsize": "10",
            "margin": "0.04,0.02", "fillcolor": "#f1f5f9", "color": _MUTED, "tooltip": tooltip,
        }  # fmt: skip
    style = kind_style(node.kind)
    attrs = {
        "shape": style.dot_shape,
        **_SHAPE_MARGINS.get(style.dot_shape, {}),
        "fillcolor": style.fill,
        "color": style.stroke,
        "tooltip": tooltip,
    }
    styles = ["filled", *(["rounded"] if style.rounded else [])]
    font = _MUTED
    if node.status is not None:
        status = STATUS_STYLES[node.status]
        attrs.update(fillcolor=status.fill, color=status.stroke, penwidth=str(status.width))
        font = status.font
        if status.dashed:
            styles.append("dashed")
            attrs["fontcolor"] = status.font
    attrs["style"] = ",".join(styles)
    subtitle = node.kind if style.subtitle else None
    attrs["label"] = _label(node.label, subtitle, node.lines, font)
    return attrs


def _cluster(g: graphviz.Digraph, diagram: Diagram, cluster: Cluster) -> None:
    with g.subgraph(name=cluster.name) as sub:
        fill, stroke, width, styles = "#f8fafc", "#64748b", "1.2", ["rounded", "filled", "dashed"]
        font = _MUTED
        if cluster.status is not None:
            status = STATUS_STYLES[cluster.status]
            fill, stroke, width, font = status.fill, status.stroke, str(status.width), status.font
            if not status.dashed:
                styles.remove("dashed")
        sub.attr(
            "graph",
            label=_label(cluster.label, None, cluster.lines, font, left=True),
            style=",".join(styles),
            fillcolor=fill,
            color=stroke,
            penwidth=width,
            fontsize="12",
            labeljust="l",
            tooltip=graphviz.escape(cluster.tooltip),
        )
        _items(sub, diagram, cluster.items)


def _edge(g: graphviz.Digraph, diagram: Diagram, edge: Edge) -> None:
    attrs: dict[str, str] = {"tooltip": graphviz.escape(edge.tooltip)}
    styles = ["dashed"] if edge.dashed else []
    parts: list[str] = []
    if edge.label:
        parts.append(html(edge.label))
    overlay = diagram.overlay
    if overlay is not None and edge.count is not None:
        if edge.count:
            mark = TIMES if overlay.exact else "~"
            parts.append(f"<b>{mark}{edge.count}</b>")
            attrs.update(penwidth="2", color="#15803d")
        else:
            attrs.update(color="#cbd5e1", fontcolor="#94a3b8")
        if edge.dropped:
            parts.append(f'<font color="#b91c1c">{edge.dropped} dropped</font>')
    if parts:
        attrs["label"] = "<" + "<br/>".join(parts) + ">"
    if styles:
        attrs["style"] = ",".join(styles)
    if edge.tail_cluster:
        attrs["ltail"] = edge.tail_cluster
    if edge.head_cluster:
        attrs["lhead"] = edge.head_cluster
    g.edge(edge.tail, edge.head, **attrs)
