"""Routing one invocation's sends along the graph's edges.

This runs in the runner, whatever the backend: edge conditions, selection functions and
switch cases are user code that decides where messages go, and must give the same result on
every backend. Messages a target cannot handle are dropped (reported as ``MessageDropped``),
or fail the invocation with ``strict=True``.

A message a backend holds outside this process (a ``HeldValue``) is routed by its type
without being fetched; a condition, selection or switch on it, or its becoming an output,
fetches it (once per message and edge group).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import WorkflowError
from ._invocation import HeldValue, InvocationOutcome
from ._typing import type_name

if TYPE_CHECKING:
    from ._executor import Executor
    from ._graph import WorkflowGraph
    from ._runner import Invocation

__all__ = ("absorb", "route")


async def absorb(
    graph: WorkflowGraph, inv: Invocation, outcome: InvocationOutcome, strict: bool
) -> None:
    """Take a backend's outcome into ``inv`` and route its sends (both schedulers do this)."""
    if outcome.outputs:
        inv.outputs = list(outcome.outputs)
    inv.state_writes = outcome.state_writes
    inv.local_writes = outcome.local_writes
    inv.requests = outcome.requests
    try:
        await route(graph, inv, outcome.sends, strict)
    except Exception as exc:
        inv.error = exc


async def route(
    graph: WorkflowGraph,
    inv: Invocation,
    sends: Sequence[tuple[str | None, Any]],
    strict: bool,
) -> None:
    """Turn ``sends`` into ``inv``'s deliveries, fan-in contributions, outputs and drops."""
    eid = inv.node.id
    routes = graph.routes.get(eid)
    successors = graph.successors[eid]
    for target, message in sends:
        if target == eid and eid not in successors:
            _deliver(graph, strict, inv, eid, -2, message, _SELF)  # a continuation, edge or not
            continue
        if target is not None and target not in successors:
            known = ", ".join(sorted(successors)) or "none"
            raise WorkflowError(
                f"executor {eid!r} sent {type(message).__name__} to {target!r}, which is not "
                f"one of its successors ({known})"
            )
        if not routes:
            inv.outputs.append(await message.fetch() if isinstance(message, HeldValue) else message)
            continue
        for r in routes:
            group = r.group
            kind = group.kind
            if kind == "direct":
                dst = group.targets[0]
                if target is not None and target != dst:
                    continue
                cond = group.conditions[0] if group.conditions else None
                if cond is None or await _check(cond, message, group):
                    _deliver(graph, strict, inv, dst, r.keys[0], message, group)
            elif kind == "fan_in":
                if target is None or target == group.targets[0]:
                    inv.fan_in.append((group.index, message))
            elif kind == "fan_out":
                chosen = await _select(group, message) if group.selector is not None else None
                for dst, key in zip(group.targets, r.keys, strict=True):
                    if (target is None or target == dst) and (chosen is None or dst in chosen):
                        _deliver(graph, strict, inv, dst, key, message, group)
            else:  # switch
                pick = await _switch(group, message)
                dst = group.targets[pick]
                if target is None or target == dst:
                    _deliver(graph, strict, inv, dst, r.keys[pick], message, group)


def _deliver(
    graph: WorkflowGraph,
    strict: bool,
    inv: Invocation,
    dst: str,
    key: int,
    message: Any,
    group: Any,
) -> None:
    node = graph.executors[dst]
    if node.can_handle(message):
        inv.deliveries.append((dst, key, message))
        return
    tp = type(message)
    if isinstance(message, HeldValue):  # routed by the held value's type, not fetched
        tp = message.held_type
        if _handles(node, tp):
            inv.deliveries.append((dst, key, message))
            return
    reason = (
        f"{dst!r} has no handler for {tp.__name__} (accepts {_accepts(node)}) on {group.describe()}"
    )
    if strict:
        raise TypeError(f"message dropped: {reason}; strict=True makes this an error")
    inv.dropped.append((dst, tp.__name__, reason))


def _handles(node: Executor, tp: type) -> bool:
    try:
        return node._calls[tp] is not None
    except KeyError:
        return node._resolve(tp) is not None


class _SelfEdge:
    @staticmethod
    def describe() -> str:
        return "self-addressed message"


_SELF = _SelfEdge()


def _accepts(node: Executor) -> str:
    return type_name(node.input_types())


async def _check(cond: Callable[[Any], Any], message: Any, group: Any) -> bool:
    if isinstance(message, HeldValue):  # a condition sees the value itself
        message = await message.fetch()
    try:
        result = cond(message)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise WorkflowError(f"condition of {group.describe()} raised {exc!r}") from exc
    return bool(result)


async def _select(group: Any, message: Any) -> set[str]:
    if isinstance(message, HeldValue):
        message = await message.fetch()
    try:
        chosen: Any = group.selector(message, list(group.targets))
        if inspect.isawaitable(chosen):
            chosen = await chosen
        picked = {chosen} if isinstance(chosen, str) else set(chosen)
    except Exception as exc:
        raise WorkflowError(f"selection function of {group.describe()} raised {exc!r}") from exc
    unknown = picked - set(group.targets)
    if unknown:
        raise WorkflowError(
            f"selection function of {group.describe()} returned unknown target(s) "
            f"{sorted(unknown)!r}; choose from {list(group.targets)!r}"
        )
    return picked


async def _switch(group: Any, message: Any) -> int:
    default = -1
    if isinstance(message, HeldValue):  # fetched once for all the cases
        message = await message.fetch()
    for i, cond in enumerate(group.conditions):
        if cond is None:
            default = i
        elif await _check(cond, message, group):
            return i
    return default
