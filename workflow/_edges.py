"""Edge groups as declared, and the routes compiled from them once at build time.

A route is what the scheduler runs per sent message: it evaluates conditions, selections
and switch cases and yields ``(target, order_key)`` deliveries. All the lookups a message
needs (targets, keys, predicates) are precomputed here so the hot path only calls them.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ("Case", "Default", "EdgeGroup", "condition_label")

Predicate = Callable[[Any], Any]
Selector = Callable[[Any, list[str]], Any]


@dataclass(frozen=True, slots=True)
class Case:
    """One branch of a switch-case group: the first case whose condition holds wins."""

    condition: Predicate
    target: Any


@dataclass(frozen=True, slots=True)
class Default:
    """The branch taken when no ``Case`` holds; a switch-case group has exactly one."""

    target: Any


EdgeKind = Literal["direct", "fan_out", "fan_in", "switch"]


@dataclass(frozen=True, slots=True)
class EdgeGroup:
    """One declared edge group, with executors resolved to ids.

    ``conditions`` lines up with ``targets``: a direct edge's condition, or each switch
    case's condition (``None`` marks the ``Default``).
    """

    index: int
    kind: EdgeKind
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    conditions: tuple[Predicate | None, ...] = ()
    selector: Selector | None = None
    labels: tuple[str | None, ...] = field(default=())

    def pairs(self) -> list[tuple[str, str]]:
        """The (source, target) pairs this group can deliver along."""
        return [(s, t) for s in self.sources for t in self.targets]

    def describe(self) -> str:
        src = self.sources[0] if len(self.sources) == 1 else list(self.sources)
        dst = self.targets[0] if len(self.targets) == 1 else list(self.targets)
        return f"{self.kind} edge {src!r} -> {dst!r}"


def condition_label(fn: Callable[..., Any] | None) -> str | None:
    """A short human label for a condition: its name, or the lambda's source snippet."""
    if fn is None:
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    if name != "<lambda>":
        return str(name)
    snippet = _lambda_source(fn)
    if snippet is None:
        return "lambda"
    depth = 0
    for i, ch in enumerate(snippet):  # cut at the end of the lambda expression
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                snippet = snippet[:i]
                break
            depth -= 1
        elif ch == "," and depth == 0:
            snippet = snippet[:i]
            break
    snippet = " ".join(snippet.split())
    return snippet if len(snippet) <= 48 else snippet[:45] + "..."


def _lambda_source(fn: Callable[..., Any]) -> str | None:
    """The text from this lambda's ``lambda`` keyword on, even with several on one line.

    The code object knows where its body starts (line and column); the nearest ``lambda``
    before that column on that line is this one.
    """
    code = getattr(fn, "__code__", None)
    if code is None:
        return None
    for line_no, _, col, end in code.co_positions():
        if line_no is not None and col is not None and end is not None and end > col:
            break
    else:
        return None
    line = linecache.getline(code.co_filename, line_no)
    start = line.rfind("lambda", 0, col)
    return line[start:] if start >= 0 else None
