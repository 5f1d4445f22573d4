"""A workflow's graph laid out as a neutral diagram, which the DOT and Mermaid writers print.

Both writers read the same ``Diagram`` so they always agree on nodes, labels and overlay.
Everything is built in graph order (executors as added, edge groups by index) and diagram ids
are allocated in that order, so the same workflow always gives the same bytes.

Drawing choices: fan-in goes through a small *join* node (the target waits for every source);
a fan-out with a selection function goes through a *select* diamond; switch-case edges carry
their ``case N: ...`` / ``default`` labels (default dashed). A sub-workflow is a nested
cluster: edges to it enter the cluster at the child's start, edges from it leave from the
child's last executor, and its executors get namespaced ids (``parent/child``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workflow.authoring import EdgeGroup, WorkflowGraph

from ._overlay import RunOverlay, overlay_from
from ._style import TIMES

__all__ = ("Cluster", "Diagram", "Direction", "Edge", "Node", "build_diagram")

Direction = Literal["TB", "LR"]
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_DEPTH = 8  # nested sub-workflows drawn as clusters; deeper ones are plain nodes


@dataclass(slots=True)
class Node:
    """One box: an executor, or a synthetic point (``start``, ``join``, ``select``)."""

    name: str
    key: str
    label: str
    kind: str
    lines: list[str] = field(default_factory=list)
    status: str | None = None
    tooltip: str = ""


@dataclass(slots=True)
class Cluster:
    """A sub-workflow executor drawn as a box around its child graph."""

    name: str
    key: str
    label: str
    items: list[Node | Cluster]
    entry: str
    exit: str
    status: str | None = None
    lines: list[str] = field(default_factory=list)
    tooltip: str = ""


@dataclass(slots=True)
class Edge:
    """One arrow; ``tail_cluster``/``head_cluster`` name a sub-workflow endpoint."""

    tail: str
    head: str
    label: str | None = None
    dashed: bool = False
    count: int | None = None
    dropped: int = 0
    tail_cluster: str | None = None
    head_cluster: str | None = None
    tooltip: str = ""


@dataclass(slots=True)
class Diagram:
    """Everything a writer needs; ``overlay`` is set for a run overlay."""

    title: str
    direction: Direction
    items: list[Node | Cluster]
    edges: list[Edge]
    overlay: RunOverlay | None
    caption: str | None


def clean(text: str) -> str:
    """Drop control characters, which neither DOT nor Mermaid can carry in a label."""
    return _CONTROL.sub("", text.replace("\n", " ").replace("\t", " "))


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    text = clean(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_diagram(wf: Any, run: Any = None, direction: Direction = "TB") -> Diagram:
    """Lay out ``wf`` (a ``Workflow``), with ``run``'s overlay when given."""
    if direction not in ("TB", "LR"):
        raise ValueError(f"direction must be 'TB' or 'LR', got {direction!r}")
    graph = _graph_of(wf)
    if graph is None:
        raise TypeError(f"expected a built Workflow (with .graph), got {type(wf).__name__}")
    overlay = overlay_from(run, _pairs(graph)) if run is not None else None
    builder = _Builder(overlay)
    marker = Node(name=builder.names.new("start"), key="", label="", kind="start", tooltip="start")
    items, edges, ends = builder.workflow(graph, prefix="", depth=0)
    entry, _, cluster = ends[graph.start]
    edges.insert(0, Edge(marker.name, entry, head_cluster=cluster, tooltip="the run's input"))
    return Diagram(
        title=clean(graph.name),
        direction=direction,
        items=[marker, *items],
        edges=edges,
        overlay=overlay,
        caption=_caption(overlay),
    )


def _graph_of(wf: Any) -> WorkflowGraph | None:
    graph = getattr(wf, "graph", None)
    return graph if isinstance(graph, WorkflowGraph) else None


def _pairs(graph: WorkflowGraph) -> list[tuple[str, str]]:
    return [pair for group in graph.groups for pair in group.pairs()]


def _caption(overlay: RunOverlay | None) -> str | None:
    if overlay is None:
        return None
    parts = []
    if overlay.run_id:
        parts.append(f"run {overlay.run_id}")
    if overlay.run_status:
        parts.append(overlay.run_status)
    if overlay.note:
        parts.append(overlay.note)
    if not overlay.exact:
        parts.append("~N: supersteps with traffic, not messages")
    return shorten(" · ".join(parts), 160) if parts else None


class _Names:
    """Allocates unique, ASCII-safe diagram ids in call order (hence deterministic)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def new(self, base: str) -> str:
        slug = re.sub("_{2,}", "_", _UNSAFE.sub("_", base)).strip("_") or "_"
        name, n = slug, 2
        while name in self.taken:
            name, n = f"{slug}_{n}", n + 1
        self.taken.add(name)
        return name


# (entry node, exit node, cluster name or None) per executor id of one graph level
Ends = dict[str, tuple[str, str, str | None]]


class _Builder:
    def __init__(self, overlay: RunOverlay | None) -> None:
        self.overlay = overlay
        self.names = _Names()
        self.stack: list[int] = []

    def workflow(
        self, graph: WorkflowGraph, *, prefix: str, depth: int
    ) -> tuple[list[Node | Cluster], list[Edge], Ends]:
        self.stack.append(id(graph))
        described = {e["id"]: e for e in graph.description.get("executors", [])}
        shown = self._shows_statuses(prefix)
        items: list[Node | Cluster] = []
        inner: list[Edge] = []
        ends: Ends = {}
        for eid, ex in graph.executors.items():
            key = prefix + eid
            child = _graph_of(getattr(ex, "workflow", None))
            info = described.get(eid, {})
            if child is not None and depth < MAX_DEPTH and id(child) not in self.stack:
                cluster, cluster_edges = self._cluster(key, eid, ex, child, info, depth, shown)
                items.append(cluster)
                inner.extend(cluster_edges)
                ends[eid] = (cluster.entry, cluster.exit, cluster.name)
            else:
                node = self._node(key, eid, ex, info, start=eid == graph.start, shown=shown)
                items.append(node)
                ends[eid] = (node.name, node.name, None)
        edges: list[Edge] = []
        for group in graph.groups:
            edges.extend(self._group(group, prefix, ends, items))
        self.stack.pop()
        return items, edges + inner, ends

    def _shows_statuses(self, prefix: str) -> bool:
        """Whether the overlay speaks about this level (a child's may be unrecorded)."""
        if self.overlay is None:
            return False
        if not prefix:
            return True
        return any(k.startswith(prefix) for k in self.overlay.status)

    def _status(self, key: str, shown: bool) -> tuple[str | None, list[str]]:
        overlay = self.overlay
        if overlay is None or not shown:
            return None, []
        status = overlay.status.get(key, "unreached")
        lines = []
        error = overlay.errors.get(key)
        if status == "failed" and error:
            lines.append(f"failed: {shorten(error, 40)}")
        else:
            lines.append(
                {"waiting": "waiting for input", "running": "interrupted"}.get(
                    status, "not reached" if status == "unreached" else status
                )
            )
        runs = overlay.invocations.get(key, 0)
        if runs > 1:
            lines[-1] += f" {TIMES}{runs}"
        return status, lines

    def _tooltip(self, key: str, ex: Any, info: Mapping[str, Any], start: bool) -> str:
        parts = [f"{key} ({ex.kind}{', start' if start else ''})"]
        parts.append(f"class {type(ex).__qualname__}")
        if info:
            parts.append(f"accepts {info.get('inputs')}; sends {info.get('outputs')}")
        error = self.overlay.errors.get(key) if self.overlay is not None else None
        if error:
            parts.append(f"error: {shorten(error, 600)}")
        return "\n".join(parts)

    def _node(
        self, key: str, eid: str, ex: Any, info: Mapping[str, Any], *, start: bool, shown: bool
    ) -> Node:
        status, lines = self._status(key, shown)
        return Node(
            name=self.names.new(key),
            key=key,
            label=clean(eid),
            kind=str(ex.kind),
            lines=lines,
            status=status,
            tooltip=self._tooltip(key, ex, info, start),
        )

    def _cluster(
        self,
        key: str,
        eid: str,
        ex: Any,
        child: WorkflowGraph,
        info: Mapping[str, Any],
        depth: int,
        shown: bool,
    ) -> tuple[Cluster, list[Edge]]:
        name = self.names.new(f"cluster_{key}")
        items, edges, ends = self.workflow(child, prefix=key + "/", depth=depth + 1)
        terminal = [e for e in child.executors if not child.successors.get(e)]
        last = terminal[-1] if terminal else next(reversed(list(child.executors)))
        status, lines = self._status(key, shown)
        cluster = Cluster(
            name=name,
            key=key,
            label=f"{clean(eid)} · workflow {clean(child.name)!r}",
            items=items,
            entry=ends[child.start][0],
            exit=ends[last][1],
            status=status,
            lines=lines,
            tooltip=self._tooltip(key, ex, info, False),
        )
        return cluster, edges

    def _group(
        self, group: EdgeGroup, prefix: str, ends: Ends, items: list[Node | Cluster]
    ) -> list[Edge]:
        labels = list(group.labels) + [None] * (len(group.targets) - len(group.labels))
        if group.kind == "fan_in":
            return self._fan_in(group, prefix, ends, items)
        if group.kind == "fan_out" and group.selector is not None:
            return self._select(group, prefix, ends, items, labels[0])
        edges = []
        for src in group.sources:
            for i, dst in enumerate(group.targets):
                label = None if group.kind == "fan_out" else labels[i]
                default = group.kind == "switch" and group.conditions[i] is None
                edges.append(self._edge(prefix, ends, src, dst, label=label, dashed=default))
        return edges

    def _edge(
        self,
        prefix: str,
        ends: Ends,
        src: str,
        dst: str,
        *,
        label: str | None = None,
        dashed: bool = False,
        tail: str | None = None,
        head: str | None = None,
        count_from: Iterable[str] | None = None,
    ) -> Edge:
        """An edge between executors (or a synthetic ``tail``/``head``), with its traffic."""
        tail_name, tail_cluster = (tail, None) if tail else (ends[src][1], ends[src][2])
        head_name, head_cluster = (head, None) if head else (ends[dst][0], ends[dst][2])
        if tail_cluster is not None and tail_cluster == head_cluster:  # a sub-workflow's loop
            tail_cluster = head_cluster = None
        count, dropped = self._traffic(prefix, src, dst, count_from)
        return Edge(
            tail=tail_name,
            head=head_name,
            label=shorten(label, 60) if label else None,
            dashed=dashed,
            count=count,
            dropped=dropped,
            tail_cluster=tail_cluster,
            head_cluster=head_cluster,
            tooltip=f"{prefix}{src} -> {prefix}{dst}" + (f": {clean(label)}" if label else ""),
        )

    def _traffic(
        self, prefix: str, src: str, dst: str, count_from: Iterable[str] | None
    ) -> tuple[int | None, int]:
        overlay = self.overlay
        if overlay is None or not self._shows_statuses(prefix):
            return None, 0
        if prefix and not overlay.exact:  # inferred from supersteps, which children share
            return None, 0
        if count_from is not None:  # a join fires once per message from *every* source
            counts = [overlay.messages.get(f"{prefix}{s}->{prefix}{dst}", 0) for s in count_from]
            return (min(counts) if counts else 0), 0
        key = f"{prefix}{src}->{prefix}{dst}"
        return overlay.messages.get(key, 0), overlay.dropped.get(key, 0)

    def _fan_in(
        self, group: EdgeGroup, prefix: str, ends: Ends, items: list[Node | Cluster]
    ) -> list[Edge]:
        dst = group.targets[0]
        join = Node(
            name=self.names.new(f"join_{prefix}{dst}"),
            key="",
            label="",
            kind="join",
            tooltip=(
                f"fan-in to {prefix}{dst}: waits for one message from each of "
                f"{', '.join(prefix + s for s in group.sources)}, delivers them as one list"
            ),
        )
        items.append(join)
        edges = [self._edge(prefix, ends, s, dst, head=join.name) for s in group.sources]
        edges.append(self._edge(prefix, ends, dst, dst, tail=join.name, count_from=group.sources))
        edges[-1].tooltip = join.tooltip
        return edges

    def _select(
        self,
        group: EdgeGroup,
        prefix: str,
        ends: Ends,
        items: list[Node | Cluster],
        label: str | None,
    ) -> list[Edge]:
        src = group.sources[0]
        node = Node(
            name=self.names.new(f"select_{prefix}{src}"),
            key="",
            label=shorten(label or "select", 32),
            kind="select",
            tooltip=f"fan-out from {prefix}{src}: {label or 'a selection function'} picks targets",
        )
        items.append(node)
        edges = [self._edge(prefix, ends, src, src, head=node.name)]
        edges[0].count = None
        edges.extend(self._edge(prefix, ends, src, t, tail=node.name) for t in group.targets)
        return edges
