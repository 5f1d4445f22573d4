"""The team builder's drafts: what the page edits, and the spec documents they stand for.

Core-only: the CLI hands in the spec loader (``builders.load_spec``, never with imports
allowed, since a draft comes over HTTP), so nothing here imports ``builders``. A draft is a
team of agents (each with its own model client and tools) plus, for ``graph`` and ``handoff``
teams, edges between them; it becomes a spec document of any kind the loader supports. Problems
come back as ``(path, message)`` where ``path`` is the draft's place (``agents.writer.client``,
``edges[0]``), so the page can show each one at the node, edge or field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from workflow._errors import WorkflowError
from workflow._workflow import Workflow

from ._studio_edges import draft_edges, edge_functions, edge_pairs, spec_edges

__all__ = ("KINDS", "DraftError", "SpecLoader", "draft_to_spec", "spec_to_draft")

SpecLoader = Callable[[Mapping[str, Any]], Workflow]
# A team name is a file name too: letters, digits and underscores only, so no path traversal.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
KINDS = ("group_chat", "sequential", "concurrent", "handoff", "graph", "magentic")
_EDGED = ("graph", "handoff")
MANAGER_CLIENT = "magentic_manager"
SELECTOR_CLIENT = "speaker_selector"
_RESERVED = (MANAGER_CLIENT, SELECTOR_CLIENT)  # client names the builder gives itself
MAX_AGENTS = 64  # each draft is loaded and drawn as the person types: keep that quick
# Team options a draft may set, per kind, with the type each must have.
_OPTIONS: dict[str, dict[str, tuple[type, ...]]] = {
    "group_chat": {"max_rounds": (int,), "max_supersteps": (int,), "stop_text": (str,)},
    "sequential": {},
    "concurrent": {"aggregator": (str,)},
    "handoff": {"max_supersteps": (int,), "stop_text": (str,)},
    "graph": {"max_supersteps": (int,)},
    "magentic": {
        "max_round_count": (int,),
        "max_stall_count": (int,),
        "max_reset_count": (int,),
        "plan_review": (bool,),
        "human_guidance_on_stall": (bool,),
    },
}


class DraftError(WorkflowError):
    """Problems in a draft, each ``(path, message)``; never raised out of this package."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


def _text(draft: Mapping[str, Any], key: str, path: str, problems: list[tuple[str, str]]) -> str:
    value = draft.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append((path, f"expected text, got {type(value).__name__}"))
        return ""
    return value.strip()


def _agents(
    draft: Mapping[str, Any], tools: Mapping[str, str], problems: list[tuple[str, str]]
) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """The agents, their clients (one per agent, named after it) and the tools they use."""
    agents_in = draft.get("agents")
    if not isinstance(agents_in, list) or not agents_in:
        problems.append(("agents", "add at least one agent (drag one from the library)"))
        agents_in = []
    elif len(agents_in) > MAX_AGENTS:
        problems.append(
            ("agents", f"{len(agents_in)} agents; a team built here has {MAX_AGENTS} at most")
        )
        agents_in = []
    agents: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    used: set[str] = set()
    for index, raw in enumerate(agents_in):
        if not isinstance(raw, Mapping):
            problems.append((f"agents[{index}]", "expected an object"))
            continue
        agent = _text(raw, "name", f"agents[{index}].name", problems)
        if not _IDENT.match(agent):
            problems.append(
                (
                    f"agents[{index}].name",
                    f"{agent!r} is not a valid agent name (letters, digits, _)",
                )
            )
            continue
        if agent in agents or agent in _RESERVED:
            problems.append(
                (f"agents[{index}].name", f"two agents are named {agent!r}; give each its own name")
            )
            continue
        client = raw.get("client")
        clients[agent] = dict(client) if isinstance(client, Mapping) else client
        spec: dict[str, Any] = {
            "description": _text(raw, "description", f"agents.{agent}.description", problems),
            "instructions": _text(raw, "instructions", f"agents.{agent}.instructions", problems),
            "client": agent,
        }
        names = raw.get("tools") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append((f"agents.{agent}.tools", "expected a list of tool names"))
            names = []
        for i, tool in enumerate(names):
            if tool not in tools:
                known = ", ".join(sorted(tools)) or "none (start the studio with --tools FILE.py)"
                problems.append(
                    (f"agents.{agent}.tools[{i}]", f"unknown tool {tool!r}; known: {known}")
                )
        if names:
            spec["tools"] = list(dict.fromkeys(names))
            used.update(names)
        agents[agent] = spec
    return agents, clients, used


def _people(
    draft: Mapping[str, Any], agents: Mapping[str, Any], problems: list[tuple[str, str]]
) -> list[str]:
    """The people of the team (each a ``HumanExecutor``: the run asks them to answer)."""
    people_in = draft.get("people") or []
    if not isinstance(people_in, list) or len(people_in) > MAX_AGENTS:
        problems.append(("people", f"expected a list of at most {MAX_AGENTS} {{name}}"))
        return []
    people: list[str] = []
    for index, raw in enumerate(people_in):
        name = (
            _text(raw, "name", f"people[{index}].name", problems)
            if isinstance(raw, Mapping)
            else ""
        )
        if not _IDENT.match(name):
            problems.append(
                (f"people[{index}].name", f"{name!r} is not a valid name (letters, digits, _)")
            )
        elif name in agents or name in people or name in _RESERVED:
            problems.append(
                (f"people[{index}].name", f"two members are named {name!r}; give each its own name")
            )
        else:
            people.append(name)
    return people


def _reachable(start: str, edges: list[dict[str, Any]]) -> set[str]:
    pairs = edge_pairs(edges)
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        for source, target in pairs:
            if source == node and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def draft_to_spec(draft: Any, tools: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The spec document a builder draft describes.

    Args:
        draft: ``{name, kind, description, agents: [{name, description, instructions,
            client, tools}], edges: [...], start, options, manager: {client}}``; a graph
            team's edges have the spec's shapes (see ``_studio_edges``).
        tools: The functions the studio was given, name -> ``module:attr``: agents' tools and
            edges' conditions (written to the spec's ``imports`` so ``ledgerflow run`` finds
            them too).

    Raises:
        DraftError: The draft's shape is wrong (a bad name, duplicate agents, no agents, an
            edge to nowhere, an agent no edge reaches, an option of the wrong type).
    """
    if not isinstance(draft, Mapping):
        raise DraftError([("", "expected a JSON object with name, kind, agents and options")])
    tools = tools or {}
    problems: list[tuple[str, str]] = []
    name = _text(draft, "name", "name", problems)
    if not _IDENT.match(name):
        problems.append(
            ("name", f"{name!r} is not a valid name: use letters, digits and _ (e.g. my_team)")
        )
    kind = draft.get("kind")
    if kind not in KINDS:
        problems.append(("kind", f"unknown team kind {kind!r}; expected one of {list(KINDS)}"))
        kind = "sequential"
    agents, clients, used = _agents(draft, tools, problems)
    people = _people(draft, agents, problems)
    members = {**agents, **dict.fromkeys(people)}  # every node an edge may name
    edges = draft_edges(draft, kind, members, tools, problems, max_edges=MAX_AGENTS * MAX_AGENTS)
    used.update(edge_functions(edges))
    start = draft.get("start") or next(iter(agents), None)
    if kind in _EDGED and agents and start not in members:
        problems.append(("start", f"start {start!r} is not a member of this team"))
    elif kind == "graph" and start is not None:
        for member in members:
            if member not in _reachable(start, edges):
                where = "people" if member in people else "agents"
                problems.append(
                    (f"{where}.{member}", f"not reachable from start {start!r}: drag an edge to it")
                )
    options = draft.get("options") or {}
    if not isinstance(options, Mapping):
        problems.append(("options", "expected an object"))
        options = {}
    allowed = _OPTIONS[kind]
    chosen: dict[str, Any] = {}
    for key, value in options.items():
        if value is None or value == "" or key not in allowed:
            continue  # options of another kind stay in the page, not in this spec
        if not isinstance(value, allowed[key]) or (
            isinstance(value, bool) and bool not in allowed[key]
        ):
            problems.append((key, f"expected {allowed[key][0].__name__}, got {value!r}"))
            continue
        chosen[key] = value.strip() if isinstance(value, str) else value
    aggregator: str | None = chosen.get("aggregator")
    if aggregator and aggregator not in agents and aggregator not in tools:
        problems.append(
            ("aggregator", f"{aggregator!r} is neither an agent of this team nor a function")
        )
    elif aggregator and len(agents) < 2 and aggregator in agents:
        problems.append(("aggregator", "the aggregator needs at least one other agent to ask"))
    elif aggregator is not None and aggregator in tools:
        used.add(aggregator)
    manager: Any = None
    if kind == "magentic":
        raw_manager = draft.get("manager")
        manager = raw_manager.get("client") if isinstance(raw_manager, Mapping) else None
        if not isinstance(manager, Mapping):
            problems.append(
                ("manager.client", "a Magentic team needs a model client for its manager")
            )
    selector: Any = None
    raw_selector = draft.get("selector")
    if kind == "group_chat" and isinstance(raw_selector, Mapping):  # else round robin
        selector = raw_selector.get("client")
        if not isinstance(selector, Mapping):
            problems.append(("selector.client", "a model speaker selector needs a model client"))
    if problems:
        raise DraftError(problems)
    spec: dict[str, Any] = {"kind": kind, "name": name}
    description = _text(draft, "description", "description", problems)
    if description:
        spec["description"] = description
    if used:
        spec["imports"] = {tool: tools[tool] for tool in sorted(used)}
    if kind == "magentic":
        clients[MANAGER_CLIENT] = dict(manager)
        spec["manager"] = {"client": MANAGER_CLIENT}
    if selector is not None:  # a model picks who speaks next
        clients[SELECTOR_CLIENT] = dict(selector)
        spec["selector"] = {"client": SELECTOR_CLIENT}
    spec.update(clients=clients, agents=agents)
    humans = {person: {"human": {"human_input_mode": "ALWAYS"}} for person in people}
    if kind == "graph":
        spec["executors"] = {**{agent: {"agent": agent} for agent in agents}, **humans}
        spec["start"] = start
        spec["edges"] = edges
    else:
        if humans:
            spec["executors"] = humans
        spec["participants"] = [a for a in [*agents, *people] if a != aggregator]
    stop = chosen.pop("stop_text", None)
    if stop:  # the run ends once a message mentions it
        spec["termination"] = {"text_mention": stop}
    if kind == "handoff":
        spec["start"] = start
        handoffs: dict[str, list[str]] = {}
        for source, target in edge_pairs(edges):
            handoffs.setdefault(source, []).append(target)
        spec["handoffs"] = handoffs
    spec.update(chosen)
    return spec


def spec_to_draft(spec: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A spec document as a builder draft, and why the builder cannot edit it (or ``None``).

    Specs the builder wrote come back as they went; a hand-written spec with parts the builder
    has no form for (function executors, conditional edges, shared clients...) is still shown,
    with the reason, so saving it from the builder would not silently drop those parts.
    """
    reasons: list[str] = []
    kind = spec.get("kind")
    clients = spec.get("clients") or {}
    agents: list[dict[str, Any]] = []
    names = list(spec.get("agents") or {})
    for agent in names:
        body = (spec.get("agents") or {})[agent] or {}
        client_name = body.get("client")
        client = clients.get(client_name) if isinstance(client_name, str) else None
        if client is None:
            reasons.append(f"agent {agent!r} has no client of its own")
        if client_name != agent:
            reasons.append(f"agent {agent!r} uses client {client_name!r}, not one named after it")
        agents.append(
            {
                "name": agent,
                "description": body.get("description", ""),
                "instructions": body.get("instructions", ""),
                "client": dict(client) if isinstance(client, Mapping) else {"type": "scripted"},
                "tools": list(body.get("tools") or []),
            }
        )
    edges: list[dict[str, Any]] = []
    if kind == "graph":
        edges = spec_edges(spec.get("edges"), reasons)
        executors = spec.get("executors") or {}
        if any(set(e) != {"agent"} and not _is_person(e) for e in executors.values()):
            reasons.append("an executor is not one of the agents or people")
    elif kind == "handoff":
        for source, targets in (spec.get("handoffs") or {}).items():
            edges += [{"from": source, "to": target} for target in targets]
    executors = spec.get("executors") or {}
    if kind != "graph" and any(not _is_person(e) for e in executors.values()):
        reasons.append("the team has executors that are not agents or people")
    people = [{"name": name} for name, e in executors.items() if _is_person(e)]
    options = {k: v for k, v in spec.items() if k in _OPTIONS.get(str(kind), {})}
    termination = spec.get("termination")
    if isinstance(termination, Mapping) and isinstance(termination.get("text_mention"), str):
        options["stop_text"] = termination["text_mention"]
    elif termination is not None:
        reasons.append("the termination condition is not a text mention")
    draft: dict[str, Any] = {
        "name": spec.get("name", ""),
        "kind": kind,
        "description": spec.get("description", ""),
        "agents": agents,
        "people": people,
        "edges": edges,
        "start": spec.get("start"),
        "options": options,
    }
    if kind == "magentic":
        manager = spec.get("manager") or {}
        draft["manager"] = {"client": dict(clients.get(manager.get("client"), {}) or {})}
    selector = spec.get("selector")
    if isinstance(selector, Mapping):
        if set(selector) != {"client"}:
            reasons.append("the speaker selector has options the builder has no form for")
        draft["selector"] = {"client": dict(clients.get(selector.get("client"), {}) or {})}
    return draft, ("; ".join(dict.fromkeys(reasons)) or None)


def _is_person(executor: Any) -> bool:
    """A ``human`` executor the builder can show: asked every time (``ALWAYS``), no more."""
    if not isinstance(executor, Mapping) or set(executor) != {"human"}:
        return False
    human = executor["human"] or {}
    return (
        isinstance(human, Mapping)
        and set(human) <= {"human_input_mode"}
        and (human.get("human_input_mode", "ALWAYS") == "ALWAYS")
    )
