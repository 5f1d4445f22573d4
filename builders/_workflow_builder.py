"""``WorkflowBuilder``: declare executors and edges, then ``build()`` a validated workflow.

Executors are passed as objects. Agents (anything with ``.name`` and ``async run(messages)``)
are wrapped in an ``AgentExecutor`` once, so the same agent is always the same node; a
``Workflow`` is nested as a ``WorkflowExecutor`` (named after the workflow; wrap it yourself
for another id); plain functions are wrapped with ``@executor``. Mistakes are collected and
reported together by ``build()``, each naming the culprit.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Self

from workflow import (
    Case,
    Default,
    Executor,
    FunctionExecutor,
    Observer,
    Resources,
    RetryPolicy,
    Workflow,
)
from workflow.authoring import EdgeGroup, NodePolicy, Predicate, build_graph, condition_label

__all__ = ("WorkflowBuilder",)

ExecutorLike = Any  # an Executor, an agent, a plain function, or an executor id (str)


class WorkflowBuilder:
    """Fluent builder for explicit graphs; every ``add_*`` returns the builder."""

    def __init__(
        self,
        start: ExecutorLike = None,
        *,
        name: str = "workflow",
        checkpoint_store: Any = None,
        max_supersteps: int = 1000,
        max_concurrency: int | None = None,
        strict: bool = False,
        durability: str = "sync",
        types: Iterable[type] = (),
        observers: Iterable[Observer] = (),
        max_paused_runs: int = 10_000,
        max_failed_runs: int = 100,
        scheduling: str = "superstep",
    ) -> None:
        self.name = name
        self._executors: dict[str, Executor] = {}
        self._wrapped: dict[int, Executor] = {}
        self._held: list[Any] = []
        self._groups: list[EdgeGroup] = []
        self._policies: dict[str, NodePolicy] = {}
        self._problems: list[str] = []
        self._start: str | None = None
        self._options: dict[str, Any] = {
            "checkpoint_store": checkpoint_store,
            "max_supersteps": max_supersteps,
            "max_concurrency": max_concurrency,
            "strict": strict,
            "durability": durability,
            "types": tuple(types),
            "observers": tuple(observers),
            # without a store: how many stopped runs stay resumable in memory
            "max_paused_runs": max_paused_runs,
            "max_failed_runs": max_failed_runs,
            # "superstep" (barriers between supersteps) or "eager" (see workflow._eager)
            "scheduling": scheduling,
        }
        if start is not None:
            self.set_start(start)

    # -- executors ---------------------------------------------------------------------------
    def set_start(self, executor: ExecutorLike) -> Self:
        """Choose the executor that receives the run's input."""
        self._start = self._node(executor)
        return self

    def add_executor(
        self,
        executor: ExecutorLike,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        resources: Resources | None = None,
    ) -> Self:
        """Register an executor, optionally with a retry policy and a per-invocation timeout.

        ``resources`` says what one invocation needs; cluster backends place it accordingly
        (``LocalBackend`` ignores it).
        """
        eid = self._node(executor)
        if timeout is not None and timeout <= 0:
            self._problems.append(f"executor {eid!r}: timeout must be > 0 seconds, got {timeout!r}")
        if resources is not None and not isinstance(resources, Resources):
            self._problems.append(
                f"executor {eid!r}: resources must be a workflow.Resources, got {resources!r}"
            )
            resources = None
        if retry is not None or timeout is not None or resources is not None:
            self._policies[eid] = NodePolicy(retry=retry, timeout=timeout, resources=resources)
        return self

    def _node(self, item: ExecutorLike) -> str:
        if isinstance(item, str):
            return item  # an id; build() reports it if no executor has it
        node = self._as_executor(item)
        known = self._executors.get(node.id)
        if known is None:
            self._executors[node.id] = node
        elif known is not node:
            self._problems.append(
                f"duplicate executor id {node.id!r}: {known!r} and {node!r} are different "
                "objects; give one of them another id"
            )
        return node.id

    def _as_executor(self, item: Any) -> Executor:
        if isinstance(item, Executor):
            return item
        cached = self._wrapped.get(id(item))
        if cached is not None:
            return cached
        as_executor = getattr(item, "as_executor", None)
        node: Executor
        if isinstance(item, Workflow):  # it has .name and .run too, but it is no agent
            from executors import WorkflowExecutor

            node = WorkflowExecutor(item)  # nested: its events, requests, checkpoints
        elif callable(as_executor):
            node = as_executor()  # e.g. Workflow.as_agent: the agent knows its node
        elif hasattr(item, "name") and callable(getattr(item, "run", None)):
            from executors import AgentExecutor

            node = AgentExecutor(item)
        elif callable(item):
            node = FunctionExecutor(item)
        else:
            raise TypeError(
                f"workflow {self.name!r}: {item!r} is not an executor, an agent or a function"
            )
        self._wrapped[id(item)] = node
        self._held.append(item)  # an id() is only unique while its object lives
        return node

    # -- edges -------------------------------------------------------------------------------
    def _group(self, kind: Any, sources: Sequence[str], targets: Sequence[str], **kw: Any) -> Self:
        self._groups.append(
            EdgeGroup(
                index=len(self._groups),
                kind=kind,
                sources=tuple(sources),
                targets=tuple(targets),
                **kw,
            )
        )
        return self

    def add_edge(
        self, source: ExecutorLike, target: ExecutorLike, *, condition: Predicate | None = None
    ) -> Self:
        """A direct edge; with ``condition`` (sync or async), only messages it accepts pass."""
        return self._group(
            "direct",
            [self._node(source)],
            [self._node(target)],
            conditions=(condition,),
            labels=(condition_label(condition),),
        )

    def add_fan_out_edges(
        self,
        source: ExecutorLike,
        targets: Sequence[ExecutorLike],
        *,
        selection_func: Callable[[Any, list[str]], Any] | None = None,
    ) -> Self:
        """Send each message to every target, or to the ids ``selection_func(msg, ids)`` picks."""
        return self._group(
            "fan_out",
            [self._node(source)],
            [self._node(t) for t in targets],
            selector=selection_func,
            labels=(condition_label(selection_func),),
        )

    def add_fan_in_edges(self, sources: Sequence[ExecutorLike], target: ExecutorLike) -> Self:
        """Deliver one list, in the order of ``sources``, once every source has sent."""
        return self._group("fan_in", [self._node(s) for s in sources], [self._node(target)])

    def add_switch_case_edge_group(
        self, source: ExecutorLike, cases: Sequence[Case | Default]
    ) -> Self:
        """Route each message to the first ``Case`` that holds, else to the ``Default``."""
        targets: list[str] = []
        conditions: list[Predicate | None] = []
        for case in cases:
            if not isinstance(case, Case | Default):
                where = self._node(source)
                self._problems.append(
                    f"switch-case group from {where!r}: {case!r} is not a Case or Default"
                )
                continue
            targets.append(self._node(case.target))
            conditions.append(case.condition if isinstance(case, Case) else None)
        labels = tuple(
            "default" if c is None else f"case {i + 1}: {condition_label(c)}"
            for i, c in enumerate(conditions)
        )
        return self._group(
            "switch", [self._node(source)], targets, conditions=tuple(conditions), labels=labels
        )

    def add_chain(self, executors: Sequence[ExecutorLike]) -> Self:
        """Direct edges between consecutive executors."""
        ids = [self._node(e) for e in executors]
        if len(ids) < 2:
            self._problems.append(f"add_chain needs at least two executors, got {len(ids)}")
        for a, b in itertools.pairwise(ids):
            self.add_edge(a, b)
        return self

    # -- build -------------------------------------------------------------------------------
    def build(self) -> Workflow:
        """Validate and freeze the graph; raises ``GraphValidationError`` naming each problem."""
        graph = build_graph(
            name=self.name,
            start=self._start,
            executors=self._executors,
            groups=self._groups,
            policies=self._policies,
            problems=self._problems,
        )
        return Workflow(graph, **self._options)
