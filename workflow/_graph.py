"""The immutable graph a builder produces, its validation, and its hash.

``build_graph`` is the one place that decides whether a declared graph can run. It reports
every problem it finds at once, each naming the culprit and the fix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._edges import EdgeGroup
from ._errors import GraphValidationError
from ._executor import Executor
from ._retry import RetryPolicy
from ._typing import overlaps, type_name

if TYPE_CHECKING:
    from ._backend import Resources

__all__ = ("NodePolicy", "WorkflowGraph", "build_graph")


@dataclass(frozen=True, slots=True)
class NodePolicy:
    """Per-executor scheduling policy given to the builder."""

    retry: RetryPolicy | None = None
    timeout: float | None = None
    resources: Resources | None = None  # read by backends that place invocations


@dataclass(frozen=True, slots=True)
class Route:
    """One edge group as seen from one source: what the scheduler evaluates per message."""

    group: EdgeGroup
    keys: tuple[int, ...]  # order key per target (position of the (source, target) pair)


@dataclass(frozen=True, slots=True, eq=False)
class WorkflowGraph:
    """Everything a run needs, computed once: nodes, order, routes, policies, hash."""

    name: str
    start: str
    executors: Mapping[str, Executor]
    order: Mapping[str, int]
    groups: tuple[EdgeGroup, ...]
    routes: Mapping[str, tuple[Route, ...]]
    successors: Mapping[str, frozenset[str]]
    policies: Mapping[str, NodePolicy]
    fan_in_key: Mapping[int, int]
    graph_hash: str
    description: Mapping[str, Any]


def _describe(executors: Mapping[str, Executor], groups: Sequence[EdgeGroup]) -> dict[str, Any]:
    return {
        "executors": [
            {
                "id": eid,
                "kind": ex.kind,
                # the qualified name without the module: a file run as __main__ and loaded by
                # the CLI under its own name must still resume each other's runs
                "class": type(ex).__qualname__,
                "inputs": type_name(ex.input_types()),
                "outputs": type_name(ex.output_types()),
            }
            for eid, ex in executors.items()
        ],
        "edges": [
            {"kind": g.kind, "sources": list(g.sources), "targets": list(g.targets)} for g in groups
        ],
    }


def graph_hash(description: Mapping[str, Any]) -> str:
    """Stable hash of what a checkpoint depends on: executors, edges and their types."""
    blob = json.dumps(description, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Explain how two graph descriptions differ, for refusing a foreign checkpoint."""
    old_ex = {e["id"]: e for e in old.get("executors", [])}
    new_ex = {e["id"]: e for e in new.get("executors", [])}
    parts = []
    if added := sorted(new_ex.keys() - old_ex.keys()):
        parts.append(f"executors added: {', '.join(added)}")
    if removed := sorted(old_ex.keys() - new_ex.keys()):
        parts.append(f"executors removed: {', '.join(removed)}")
    changed = sorted(k for k in old_ex.keys() & new_ex.keys() if old_ex[k] != new_ex[k])
    if changed:
        parts.append(f"executors changed (kind or types): {', '.join(changed)}")

    def edges(d: Mapping[str, Any]) -> set[str]:
        return {
            f"{e['kind']} {','.join(e['sources'])}->{','.join(e['targets'])}"
            for e in d.get("edges", [])
        }

    if e_added := sorted(edges(new) - edges(old)):
        parts.append(f"edges added: {'; '.join(e_added)}")
    if e_removed := sorted(edges(old) - edges(new)):
        parts.append(f"edges removed: {'; '.join(e_removed)}")
    return "; ".join(parts) or "edge order changed"


def build_graph(
    *,
    name: str,
    start: str | None,
    executors: Mapping[str, Executor],
    groups: Sequence[EdgeGroup],
    policies: Mapping[str, NodePolicy],
    problems: Sequence[str] = (),
) -> WorkflowGraph:
    """Validate a declared graph and compile it; raises ``GraphValidationError``.

    ``problems`` are what the builder already found (duplicate or unknown ids).
    """
    import networkx as nx  # only builds need it; keeps `import workflow` cheap

    problems = list(problems)
    if start is None:
        problems.append("no start executor: pass WorkflowBuilder(start=...) or call set_start()")
    elif start not in executors:
        problems.append(f"start executor {start!r} is not part of the workflow")

    dig: nx.DiGraph = nx.DiGraph()
    dig.add_nodes_from(executors)
    for group in groups:
        for src in group.sources:
            if src not in executors:
                problems.append(f"{group.describe()}: unknown executor {src!r}")
        for dst in group.targets:
            if dst not in executors:
                problems.append(f"{group.describe()}: unknown executor {dst!r}")
        dig.add_edges_from(group.pairs())
        problems.extend(_group_problems(group, executors))

    for ex in executors.values():
        if not ex.handler_specs():
            problems.append(
                f"executor {ex.id!r} ({type(ex).__name__}) has no handlers; decorate a method "
                "with @handler"
            )
        problems.extend(ex.handler_conflicts())

    if start in executors:
        reachable = nx.descendants(dig, start) | {start}
        unreachable = [eid for eid in executors if eid not in reachable]
        if unreachable:
            shown = ", ".join(repr(u) for u in unreachable[:10])
            more = f" (and {len(unreachable) - 10} more)" if len(unreachable) > 10 else ""
            problems.append(
                f"executors not reachable from start {start!r}: {shown}{more}; add an edge "
                "to them or remove them"
            )
    if problems:
        problems = list(dict.fromkeys(problems))
        raise GraphValidationError(
            f"workflow {name!r} is invalid:\n" + "\n".join(f"  - {p}" for p in problems)
        )
    assert start is not None

    for ex in executors.values():  # warm the dispatch caches now, not on the first message
        for tp in ex.input_types() or ():
            ex._resolve(tp)
    order = {eid: i for i, eid in enumerate(executors)}
    pair_key: dict[tuple[str, str], int] = {}
    routes: dict[str, list[Route]] = {}
    fan_in_key: dict[int, int] = {}
    for group in groups:
        for pair in group.pairs():
            pair_key.setdefault(pair, len(pair_key))
        if group.kind == "fan_in":
            fan_in_key[group.index] = pair_key[(group.sources[0], group.targets[0])]
        for src in group.sources:
            keys = tuple(pair_key[(src, t)] for t in group.targets)
            routes.setdefault(src, []).append(Route(group, keys))
    description = _describe(executors, groups)
    return WorkflowGraph(
        name=name,
        start=start,
        executors=MappingProxyType(dict(executors)),
        order=MappingProxyType(order),
        groups=tuple(groups),
        routes=MappingProxyType({k: tuple(v) for k, v in routes.items()}),
        successors=MappingProxyType({n: frozenset(dig.successors(n)) for n in executors}),
        policies=MappingProxyType(dict(policies)),
        fan_in_key=MappingProxyType(fan_in_key),
        graph_hash=graph_hash(description),
        description=MappingProxyType(description),
    )


def _group_problems(group: EdgeGroup, executors: Mapping[str, Executor]) -> list[str]:
    problems = []
    if group.kind == "fan_in":
        if len(group.sources) < 2:
            problems.append(
                f"{group.describe()}: a fan-in needs at least two sources, got "
                f"{len(group.sources)}; use add_edge for a single source"
            )
        if len(set(group.sources)) != len(group.sources):
            problems.append(f"{group.describe()}: a source is listed twice")
    if group.kind == "switch":
        defaults = sum(1 for c in group.conditions if c is None)
        if defaults != 1:
            problems.append(
                f"{group.describe()}: a switch-case group needs exactly one Default, got "
                f"{defaults}; add Default(target) as the last case"
            )
    if group.kind == "fan_out" and len(group.targets) < 1:
        problems.append(f"{group.describe()}: a fan-out needs at least one target")
    for src in group.sources:
        source = executors.get(src)
        if source is None:
            continue
        produced = source.output_types()
        for dst in group.targets:
            target = executors.get(dst)
            if target is None:
                continue
            accepted = target.input_types()
            if group.kind == "fan_in":
                if not overlaps((list,), accepted):
                    problems.append(
                        f"fan-in edge -> {dst!r}: {dst!r} receives a list but accepts only "
                        f"{type_name(accepted)}; add a handler for list[...]"
                    )
                continue
            if not overlaps(produced, accepted):
                problems.append(
                    f"edge {src!r} -> {dst!r}: {src!r} sends {type_name(produced)} but "
                    f"{dst!r} accepts only {type_name(accepted)}; add a handler for "
                    f"{type_name(produced)} in {dst!r} or convert in {src!r}"
                )
    return problems
