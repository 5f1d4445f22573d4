"""A builder draft's edges, checked where the page can show each problem, as spec edges.

A draft's edges have the spec's own shapes (``builders``' graph spec), so a saved file reads
back as the same edges: a plain edge ``{from, to, when?}``, a fan-out ``{from, to: [...],
select?}`` (each message to every target, or to those a function picks), a fan-in ``{from:
[...], to}`` (the target waits for one message from each source and gets them as a list), a
switch ``{from, cases: [{when?, to}]}`` (each message to the first case whose condition holds,
else to the default: the one case without a condition).
Problems are ``(path, message)`` with the draft's path (``edges[2].from[1]``), which is also the
spec's path: the spec keeps the draft's edges in order, so the loader's own problems
(``edges[2].cases``) point at the same edge.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

__all__ = ("draft_edges", "edge_functions", "edge_pairs", "spec_edges")

Problems = list[tuple[str, str]]


def _known(tools: Mapping[str, str]) -> str:
    return ", ".join(sorted(tools)) or "none (start the studio with --tools FILE.py)"


def _member(
    raw: Mapping[str, Any], key: str, where: str, members: Mapping[str, Any], problems: Problems
) -> str:
    """The member named at ``raw[key]`` (an edge's ``from`` or ``to``), checked."""
    name = str(raw.get(key))
    if name not in members:
        problems.append((f"{where}.{key}", f"{name!r} is not a member of this team"))
    return name


def _names(value: Any, where: str, members: Mapping[str, Any], problems: Problems) -> list[str]:
    """A list of member names (a fan-out's targets, a fan-in's sources), each checked."""
    names: list[str] = []
    for j, name in enumerate(value):
        if name not in members:
            problems.append((f"{where}[{j}]", f"{name!r} is not a member of this team"))
        elif name in names:
            problems.append((f"{where}[{j}]", f"{name!r} is there twice; remove one"))
        else:
            names.append(name)
    return names


def _function(
    raw: Mapping[str, Any], key: str, where: str, tools: Mapping[str, str], problems: Problems
) -> str | None:
    """A condition or selection: one of the studio's functions, or ``None``."""
    value = raw.get(key) or None
    if value is not None and value not in tools:
        problems.append((f"{where}.{key}", f"unknown function {value!r}; known: {_known(tools)}"))
        return None
    return value if isinstance(value, str) else None


def _fan_out(
    raw: Mapping[str, Any],
    where: str,
    members: Mapping[str, Any],
    tools: Mapping[str, str],
    problems: Problems,
) -> dict[str, Any] | None:
    source = _member(raw, "from", where, members, problems)
    targets = _names(raw["to"], f"{where}.to", members, problems)
    if source in targets:
        problems.append((f"{where}.to", f"a fan-out from {source!r} cannot send to itself"))
    if not raw["to"]:
        problems.append((f"{where}.to", f"the fan-out from {source!r} has no targets"))
    select = _function(raw, "select", where, tools, problems)
    if source not in members or len(targets) != len(raw["to"]) or source in targets:
        return None
    return {"from": source, "to": targets, **({"select": select} if select else {})}


def _fan_in(
    raw: Mapping[str, Any], where: str, members: Mapping[str, Any], problems: Problems
) -> dict[str, Any] | None:
    target = _member(raw, "to", where, members, problems)
    sources = _names(raw["from"], f"{where}.from", members, problems)
    if target in sources:
        problems.append((f"{where}.from", f"a fan-in to {target!r} cannot wait for itself"))
    if len(raw["from"]) < 2:
        got = ", ".join(map(repr, raw["from"])) or "none"
        problems.append(
            (
                f"{where}.from",
                f"a fan-in waits for two or more sources; the one to {target!r} has {got}: "
                f"drag an edge from another member onto {target!r}, or make it a plain edge",
            )
        )
    if target not in members or len(sources) != len(raw["from"]) or not sources:
        return None
    return {"from": sources, "to": target}  # with one source still: its target is reachable


def _switch(
    raw: Mapping[str, Any],
    where: str,
    members: Mapping[str, Any],
    tools: Mapping[str, str],
    problems: Problems,
) -> dict[str, Any] | None:
    source = _member(raw, "from", where, members, problems)
    cases_in = raw["cases"]
    if not cases_in:
        problems.append((f"{where}.cases", f"the switch from {source!r} has no cases"))
    cases: list[dict[str, Any]] = []
    for j, case in enumerate(cases_in):
        here = f"{where}.cases[{j}]"
        if not isinstance(case, Mapping):
            problems.append((here, "expected an object with when and to"))
            continue
        target = _member(case, "to", here, members, problems)
        when = _function(case, "when", here, tools, problems)
        if target in members and (when is not None or not case.get("when")):
            cases.append({**({"when": when} if when else {}), "to": target})
    defaults = sum(1 for c in cases_in if isinstance(c, Mapping) and not c.get("when"))
    if cases_in and defaults != 1:
        problems.append(
            (
                f"{where}.cases",
                f"the switch from {source!r} has {defaults} cases without a condition; exactly "
                'one is the default ("otherwise"), the others each need a condition',
            )
        )
    if source not in members or not cases:
        return None
    return {"from": source, "cases": cases}  # with problems still: its targets are reachable


def _plain(
    raw: Mapping[str, Any],
    where: str,
    kind: str,
    members: Mapping[str, Any],
    tools: Mapping[str, str],
    problems: Problems,
    pairs: set[tuple[str, str]],
) -> dict[str, Any] | None:
    source = _member(raw, "from", where, members, problems)
    target = _member(raw, "to", where, members, problems)
    if raw.get("when") and kind != "graph":
        problems.append((f"{where}.when", "only a graph team's edges take a condition"))
        when = None
    else:
        when = _function(raw, "when", where, tools, problems)
    if source not in members or target not in members:
        return None
    if source == target:
        problems.append((where, f"{source!r} cannot hand over to itself"))
    elif (source, target) in pairs:
        problems.append((where, f"{source!r} -> {target!r} is there twice"))
    else:
        pairs.add((source, target))
        return {"from": source, "to": target, **({"when": when} if when else {})}
    return None


def draft_edges(
    draft: Mapping[str, Any],
    kind: str,
    members: Mapping[str, Any],
    tools: Mapping[str, str],
    problems: Problems,
    *,
    max_edges: int,
) -> list[dict[str, Any]]:
    """The draft's edges as spec edges; a graph team's may fan out or fan in."""
    edges_in = draft.get("edges") or []
    if not isinstance(edges_in, list):
        problems.append(("edges", "expected a list of {from, to}"))
        return []
    if len(edges_in) > max_edges:
        problems.append(("edges", f"{len(edges_in)} edges; at most one per pair of agents"))
        return []
    edges: list[dict[str, Any]] = []
    pairs: set[tuple[str, str]] = set()
    for i, raw in enumerate(edges_in):
        where = f"edges[{i}]"
        if not isinstance(raw, Mapping):
            problems.append((where, "expected an object with from and to"))
            continue
        if kind not in ("graph", "handoff"):
            problems.append(
                (
                    where,
                    f"a {kind} team has no edges (its order is the agents' order); "
                    "remove the edge or pick a graph or handoff team",
                )
            )
            continue
        fans_out, fans_in = isinstance(raw.get("to"), list), isinstance(raw.get("from"), list)
        branches = isinstance(raw.get("cases"), list)
        if (fans_out or fans_in or branches) and kind != "graph":
            problems.append((where, "only a graph team's edges fan out, fan in or branch"))
            continue
        if branches and (raw.get("to") is not None or fans_in):
            problems.append((where, "a switch has cases (each with its to), not to or from lists"))
            continue
        if fans_out and fans_in:
            problems.append((where, "an edge fans out (to: a list) or in (from: a list), not both"))
            continue
        if branches:
            edge = _switch(raw, where, members, tools, problems)
        elif fans_out:
            edge = _fan_out(raw, where, members, tools, problems)
        elif fans_in:
            edge = _fan_in(raw, where, members, problems)
        else:
            edge = _plain(raw, where, kind, members, tools, problems, pairs)
        if edge is not None:
            edges.append(edge)
    return edges


def edge_pairs(edges: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Every (source, target) a message may travel along."""
    pairs: list[tuple[str, str]] = []
    for edge in edges:
        sources = edge["from"] if isinstance(edge["from"], list) else [edge["from"]]
        if "cases" in edge:
            targets = [case["to"] for case in edge["cases"]]
        else:
            targets = edge["to"] if isinstance(edge["to"], list) else [edge["to"]]
        pairs += [(s, t) for s in sources for t in targets]
    return pairs


def edge_functions(edges: list[dict[str, Any]]) -> set[str]:
    """The studio's functions the edges use (conditions, selections): the spec's imports."""
    found = {e[key] for e in edges for key in ("when", "select") if e.get(key)}
    return found | {c["when"] for e in edges for c in e.get("cases", ()) if c.get("when")}


def spec_edges(edges: Any, reasons: list[str]) -> list[dict[str, Any]]:
    """A graph spec's edges as the draft's, with a reason for each the builder cannot show."""
    out: list[dict[str, Any]] = []
    for edge in edges or []:
        if not isinstance(edge, Mapping):
            reasons.append("an edge is not a mapping")
            continue
        source, target = edge.get("from"), edge.get("to")
        one = isinstance(source, str) and isinstance(target, str)
        keys = set(edge) - {"from", "to"}
        if one and keys <= {"when"}:
            out.append({"from": source, "to": target, **_opt(edge, "when")})
        elif isinstance(source, str) and _strings(target) and keys <= {"select"}:
            out.append({"from": source, "to": list(target), **_opt(edge, "select")})
        elif _strings(source) and isinstance(target, str) and not keys:
            out.append({"from": list(source), "to": target})
        elif isinstance(source, str) and target is None and keys == {"cases"} and _cases(edge):
            cases = [{**_opt(c, "when"), "to": c["to"]} for c in edge["cases"]]
            out.append({"from": source, "cases": cases})
        else:
            reasons.append("an edge has a shape the builder has no form for")
    return out


def _cases(edge: Mapping[str, Any]) -> bool:
    cases = edge["cases"]
    return isinstance(cases, list) and all(
        isinstance(c, Mapping) and set(c) <= {"when", "to"} and isinstance(c.get("to"), str)
        for c in cases
    )


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _opt(edge: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {key: edge[key]} if edge.get(key) else {}
