"""Mermaid flowchart output: ``to_mermaid(wf) -> str``.

Mermaid ids are the diagram's ASCII slugs with an ``n_`` prefix, so no id is a keyword
(``end``, ``graph``, ``style``...) or starts with ``o``/``x`` right after an arrow, which
Mermaid would read as a circle or cross edge. Every label is quoted and encoded with Mermaid's
``#...;`` entities, so quotes, pipes, brackets and HTML in ids stay text.
"""

from __future__ import annotations

from typing import Any

from ._model import Cluster, Diagram, Direction, Edge, Node, build_diagram
from ._style import KIND_STYLES, STATUS_STYLES, TIMES, kind_style

__all__ = ("to_mermaid",)

_ENTITIES = {
    "#": "#35;",
    "&": "#amp;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "|": "#124;",
    "`": "#96;",
    "\\": "#92;",
}
_INK = "#1f2937"
_MUTED = "#64748b"


def to_mermaid(wf: Any, *, run: Any = None, direction: Direction = "TB") -> str:
    """Draw ``wf`` as Mermaid flowchart source, optionally overlaid with one run.

    Args:
        wf: A built ``Workflow``.
        run: As for ``to_dot``: colours executors by status, counts messages on edges.
        direction: ``"TB"`` or ``"LR"``.
    """
    diagram = build_diagram(wf, run, direction)
    writer = _Writer(diagram)
    return writer.write()


def text(value: str) -> str:
    """Encode ``value`` for use inside a quoted Mermaid label."""
    return "".join(_ENTITIES.get(ch, ch) for ch in value)


def _id(name: str) -> str:
    return f"n_{name}"


class _Writer:
    def __init__(self, diagram: Diagram) -> None:
        self.d = diagram
        self.lines: list[str] = []
        self.classes: dict[str, list[str]] = {}
        self.styles: list[str] = []

    def write(self) -> str:
        d = self.d
        title = d.title + (f" · {d.caption}" if d.caption else "")
        self.lines += ["---", f"title: {_yaml(title)}", "---", f"flowchart {d.direction}"]
        self._items(d.items, "    ")
        for index, edge in enumerate(d.edges):
            self._edge(index, edge)
        self._class_defs()
        self.lines.extend(self.styles)
        return "\n".join(self.lines) + "\n"

    def _items(self, items: list[Node | Cluster], indent: str) -> None:
        for item in items:
            if isinstance(item, Cluster):
                self._cluster(item, indent)
            else:
                self._node(item, indent)

    def _node(self, node: Node, indent: str) -> None:
        nid = _id(node.name)
        if node.kind == "start":
            self.lines.append(f'{indent}{nid}((" "))')
            self._class("lf_start", nid)
            return
        if node.kind == "join":
            self.lines.append(f'{indent}{nid}(("join"))')
            self._class("lf_join", nid)
            return
        if node.kind == "select":
            self.lines.append(f'{indent}{nid}{{"{text(node.label)}"}}')
            self._class("lf_select", nid)
            return
        style = kind_style(node.kind)
        parts = [text(node.label)]
        if style.subtitle:
            parts.append(text(node.kind))
        parts.extend(text(line) for line in node.lines)
        opening, closing = style.mermaid
        self.lines.append(f'{indent}{nid}{opening}"{"<br/>".join(parts)}"{closing}')
        if node.status is not None:
            self._class(f"lf_{node.status}", nid)
        else:
            self._class(f"lf_{node.kind}" if node.kind in KIND_STYLES else "lf_executor", nid)

    def _cluster(self, cluster: Cluster, indent: str) -> None:
        cid = _id(cluster.name)
        label = "<br/>".join(text(x) for x in [cluster.label, *cluster.lines])
        self.lines.append(f'{indent}subgraph {cid}["{label}"]')
        self.lines.append(f"{indent}    direction {self.d.direction}")
        self._items(cluster.items, indent + "    ")
        self.lines.append(f"{indent}end")
        if cluster.status is not None:
            st = STATUS_STYLES[cluster.status]
            dash = ",stroke-dasharray:5 4" if st.dashed else ""
            self.styles.append(
                f"    style {cid} fill:{st.fill},stroke:{st.stroke},stroke-width:{st.width}px{dash}"
            )
        else:
            self.styles.append(f"    style {cid} fill:#f8fafc,stroke:{_MUTED},stroke-dasharray:5 4")

    def _edge(self, index: int, edge: Edge) -> None:
        tail = _id(edge.tail_cluster or edge.tail)
        head = _id(edge.head_cluster or edge.head)
        parts = [text(edge.label)] if edge.label else []
        overlay = self.d.overlay
        arrow = "-.->" if edge.dashed else "-->"
        if overlay is not None and edge.count is not None:
            if edge.count:
                parts.append(f"{TIMES if overlay.exact else '~'}{edge.count}")
                arrow = "==>"
                self.styles.append(f"    linkStyle {index} stroke:#15803d")
            else:
                self.styles.append(f"    linkStyle {index} stroke:#cbd5e1")
            if edge.dropped:
                parts.append(f"{edge.dropped} dropped")
        label = f'|"{"<br/>".join(parts)}"|' if parts else ""
        self.lines.append(f"    {tail} {arrow}{label} {head}")

    def _class(self, cls: str, nid: str) -> None:
        self.classes.setdefault(cls, []).append(nid)

    def _class_defs(self) -> None:
        defs: dict[str, str] = {
            "lf_start": f"fill:{_INK},stroke:{_INK}",
            "lf_join": f"fill:{_INK},stroke:{_INK},color:#ffffff",
            "lf_select": f"fill:#f1f5f9,stroke:{_MUTED}",
        }
        for kind, style in KIND_STYLES.items():
            defs[f"lf_{kind}"] = f"fill:{style.fill},stroke:{style.stroke}"
        for status, st in STATUS_STYLES.items():
            dash = ",stroke-dasharray:5 4" if st.dashed else ""
            defs[f"lf_{status}"] = (
                f"fill:{st.fill},stroke:{st.stroke},stroke-width:{st.width}px,color:{st.font}{dash}"
            )
        for cls, definition in defs.items():  # fixed order, only the classes in use
            if cls in self.classes:
                self.lines.append(f"    classDef {cls} {definition}")
        for cls in defs:
            if cls in self.classes:
                self.lines.append(f"    class {','.join(self.classes[cls])} {cls}")


def _yaml(value: str) -> str:
    """A double-quoted YAML scalar for the front-matter title."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
