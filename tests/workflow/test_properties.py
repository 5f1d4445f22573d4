"""Hypothesis: random DAGs agree with a networkx reference; guarded cycles terminate.

Each test runs on asyncio and on trio (the ``anyio_backend`` fixture of this directory's
conftest, a plain string, so Hypothesis may share it between examples).
"""

from __future__ import annotations

import functools

import anyio
import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import WorkflowBuilder
from workflow import Executor, RunStatus, WorkflowContext, handler


class Node(Executor):
    """Sums what it receives in a round (fan-in list or single value) and adds its weight."""

    def __init__(self, id: str, weight: int) -> None:
        super().__init__(id)
        self.weight = weight

    @handler
    async def single(self, x: int, ctx: WorkflowContext[int]) -> int:
        return x + self.weight

    @handler
    async def joined(self, xs: list[int], ctx: WorkflowContext[int]) -> int:
        return sum(xs) + self.weight


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], list[int]]:
    n = draw(st.integers(2, 9))
    edges = []
    for v in range(1, n):
        parents = draw(st.sets(st.integers(0, v - 1), min_size=1, max_size=min(3, v)))
        edges += [(p, v) for p in sorted(parents)]
    weights = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    return n, edges, weights


def reference(n: int, edges: list[tuple[int, int]], weights: list[int], x: int) -> dict[int, int]:
    """Evaluate the same DAG directly in topological order."""
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from(edges)
    value: dict[int, int] = {}
    for v in nx.topological_sort(g):
        preds = list(g.predecessors(v))
        value[v] = (x if not preds else sum(value[p] for p in preds)) + weights[v]
    return {v: value[v] for v in range(n) if g.out_degree(v) == 0}


FIXTURE = HealthCheck.function_scoped_fixture  # anyio_backend: a string, nothing to reset


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, FIXTURE])
@given(dag=dags(), x=st.integers(-100, 100))
def test_random_dags_match_reference(
    anyio_backend: str, dag: tuple[int, list[tuple[int, int]], list[int]], x: int
) -> None:
    n, edges, weights = dag
    nodes = [Node(f"n{i}", weights[i]) for i in range(n)]
    builder = WorkflowBuilder(start=nodes[0])
    preds: dict[int, list[int]] = {}
    for p, v in edges:
        preds.setdefault(v, []).append(p)
    for v, ps in preds.items():
        if len(ps) == 1:
            builder.add_edge(nodes[ps[0]], nodes[v])
        else:
            builder.add_fan_in_edges([nodes[p] for p in ps], nodes[v])
    wf = builder.build()
    result = anyio.run(wf.run, x, backend=anyio_backend)
    assert result.status is RunStatus.COMPLETED
    sinks = reference(n, edges, weights, x)
    by_sink = {e.executor_id: e.data for e in result.events if type(e).__name__ == "OutputEmitted"}
    assert by_sink == {f"n{v}": val for v, val in sinks.items()}


class Guarded(Executor):
    """Passes a counter on until it reaches the limit; every node checks the guard."""

    def __init__(self, id: str, limit: int) -> None:
        super().__init__(id)
        self.limit = limit

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        if x >= self.limit:
            await ctx.yield_output(x)
        else:
            await ctx.send_message(x + 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[FIXTURE])
@given(
    n=st.integers(2, 6),
    extra=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=6),
    limit=st.integers(0, 7),
)
def test_random_guarded_cycles_terminate(
    anyio_backend: str, n: int, extra: list[tuple[int, int]], limit: int
) -> None:
    run = functools.partial(anyio.run, backend=anyio_backend)
    nodes = [Guarded(f"g{i}", limit) for i in range(n)]
    builder = WorkflowBuilder(start=nodes[0], max_supersteps=limit + 1)
    pairs = {(i, (i + 1) % n) for i in range(n)} | {(a % n, b % n) for a, b in extra}
    for a, b in sorted(pairs):
        builder.add_edge(nodes[a], nodes[b])
    result = run(builder.build().run, 0)
    # every message's counter rises by one per superstep, so the guard ends the run in time
    assert result.status is RunStatus.COMPLETED
    assert result.outputs
    assert all(o == limit for o in result.outputs)

    tight = WorkflowBuilder(start=nodes[0], max_supersteps=max(1, limit))
    for a, b in sorted(pairs):
        tight.add_edge(nodes[a], nodes[b])
    cut = run(tight.build().run, 0)
    assert cut.status is (RunStatus.MAX_SUPERSTEPS if limit >= 1 else RunStatus.COMPLETED)
