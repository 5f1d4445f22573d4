"""Hypothesis: interrupt a random run anywhere, resume it, and get the uninterrupted outputs.

Random graphs are DAGs (with fan-in joins) and graphs with guarded cycles (back edges that
only carry values below a bound; every node adds a positive weight, so cycles end). A run is
interrupted at a random executor invocation, either by that executor failing once or by
cancelling the run from inside it, then resumed: with no store (the run is kept in the
process), an in-memory store, or SQLite in a temporary directory (resumed by a freshly built
workflow over a freshly opened store, as another process would). The resumed run must
complete with exactly the outputs of an uninterrupted run, in the same order.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.lowlevel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import WorkflowBuilder
from workflow import (
    Executor,
    InMemoryCheckpointStore,
    RunResult,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowContext,
    handler,
)

Mode = Literal["fail", "cancel"]
StoreKind = Literal["none", "memory", "sqlite"]
BOUND = 30  # back edges carry values below it


@dataclass(frozen=True)
class Spec:
    """A random graph: node weights, forward edges, guarded back edges."""

    weights: tuple[int, ...]
    forward: tuple[tuple[int, int], ...]
    back: tuple[tuple[int, int], ...] = ()
    fan_in: bool = False


class Interrupted(Exception):
    """The injected failure."""


@dataclass
class Chaos:
    """Counts invocations across the run; at number ``at`` fails once or cancels the run."""

    mode: Mode | None = None
    at: int = 0
    count: int = 0
    fired: bool = False
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    async def tick(self) -> None:
        self.count += 1
        if self.mode is None or self.fired or self.count != self.at:
            return
        self.fired = True
        if self.mode == "fail":
            raise Interrupted(f"injected failure at invocation {self.at}")
        self.scope.cancel()
        await anyio.lowlevel.checkpoint()  # the cancellation lands here, mid-handler


class Node(Executor):
    """Adds its weight to what it receives (one value, or a fan-in join's list)."""

    def __init__(self, id: str, weight: int, chaos: Chaos) -> None:
        super().__init__(id)
        self.weight, self.chaos = weight, chaos

    @handler
    async def single(self, x: int, ctx: WorkflowContext[int]) -> int:
        await self.chaos.tick()
        return x + self.weight

    @handler
    async def joined(self, xs: list[int], ctx: WorkflowContext[int]) -> int:
        await self.chaos.tick()
        return sum(xs) + self.weight


def build(spec: Spec, chaos: Chaos, store: Any = None) -> Workflow:
    nodes = [Node(f"n{i}", w, chaos) for i, w in enumerate(spec.weights)]
    builder = WorkflowBuilder(start=nodes[0], name="prop", checkpoint_store=store)
    parents: dict[int, list[int]] = {}
    for p, v in spec.forward:
        parents.setdefault(v, []).append(p)
    for v, ps in sorted(parents.items()):
        if len(ps) > 1 and spec.fan_in:
            builder.add_fan_in_edges([nodes[p] for p in ps], nodes[v])
        else:
            for p in ps:
                builder.add_edge(nodes[p], nodes[v])
    for src, dst in spec.back:
        builder.add_edge(nodes[src], nodes[dst], condition=lambda v: v < BOUND)
    return builder.build()


@st.composite
def dags(draw: st.DrawFn) -> Spec:
    n = draw(st.integers(2, 7))
    forward = []
    for v in range(1, n):
        parents = draw(st.sets(st.integers(0, v - 1), min_size=1, max_size=min(3, v)))
        forward += [(p, v) for p in sorted(parents)]
    weights = draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    return Spec(tuple(weights), tuple(forward), fan_in=draw(st.booleans()))


@st.composite
def cyclic(draw: st.DrawFn) -> Spec:
    n = draw(st.integers(3, 5))
    forward = []
    for v in range(1, n):
        parents = draw(st.sets(st.integers(0, v - 1), min_size=1, max_size=min(2, v)))
        forward += [(p, v) for p in sorted(parents)]
    # back edges leave nodes 1..n-2 (the last node is a sink, so something is output)
    back = draw(
        st.sets(
            st.integers(1, n - 2).flatmap(lambda s: st.tuples(st.just(s), st.integers(0, s))),
            min_size=1,
            max_size=2,
        )
    )
    weights = draw(st.lists(st.integers(4, 9), min_size=n, max_size=n))
    return Spec(tuple(weights), tuple(forward), tuple(sorted(back)))


@dataclass
class Outcome:
    clean: RunResult
    done: RunResult
    clean_invocations: int
    interrupted_at: int
    resumed_invocations: int


async def interrupted_then_resumed(
    spec: Spec, mode: Mode, where: float, kind: StoreKind, tmp: Path
) -> Outcome:
    """Run clean, run again interrupted at a random invocation, resume; report both."""
    counter = Chaos()
    clean = await build(spec, counter).run(1, run_id="clean")
    assert clean.status is RunStatus.COMPLETED, clean.error
    chaos = Chaos(mode=mode, at=1 + int(where * counter.count))  # 1..all invocations
    store: Any = {"none": None, "memory": InMemoryCheckpointStore()}.get(kind)
    if kind == "sqlite":
        store = SQLiteCheckpointStore(tmp / "runs.db")
    wf = build(spec, chaos, store)
    first: RunResult | None = None
    with chaos.scope:
        first = await wf.run(1, run_id="r")
    assert chaos.fired
    if first is not None:  # a cancelled run may end the scope instead of returning
        expected = RunStatus.FAILED if mode == "fail" else RunStatus.CANCELLED
        assert first.status is expected, first
    after = Chaos()
    if kind == "sqlite":  # another process: a new store object, a new workflow, no chaos
        await store.aclose()
        store = SQLiteCheckpointStore(tmp / "runs.db")
        wf = build(spec, after, store)
    elif kind == "memory":
        wf = build(spec, after, store)
    else:  # the same workflow object keeps the run; stop counting for the first run
        chaos.mode, chaos.count, after = None, 0, chaos
    try:
        done = await wf.resume("r")
    finally:
        if store is not None:
            await store.aclose()
    return Outcome(clean, done, counter.count, chaos.at, after.count)


def check(spec: Spec, mode: Mode, where: float, kind: StoreKind) -> None:
    with tempfile.TemporaryDirectory(prefix="resume-property-") as tmp:
        out = anyio.run(interrupted_then_resumed, spec, mode, where, kind, Path(tmp))
    assert out.done.status is RunStatus.COMPLETED, out.done.error
    assert out.clean.outputs, "a graph with a sink always outputs something"
    assert out.done.outputs == out.clean.outputs
    # Resuming is not starting over: the start executor runs alone in the first superstep,
    # so once it finished (the interruption came later) it never runs again.
    if out.interrupted_at > 1:
        assert out.resumed_invocations < out.clean_invocations
    else:
        assert out.resumed_invocations == out.clean_invocations


MODES = st.sampled_from(["fail", "cancel"])
STORES = st.sampled_from(["none", "memory", "sqlite"])
WHERE = st.floats(0, 1, exclude_max=True)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(dags(), MODES, WHERE, STORES)
def test_dag_interrupted_anywhere_resumes_to_the_same_outputs(
    spec: Spec, mode: Mode, where: float, kind: StoreKind
) -> None:
    check(spec, mode, where, kind)


@SETTINGS
@given(cyclic(), MODES, WHERE, STORES)
def test_guarded_cycles_interrupted_anywhere_resume_to_the_same_outputs(
    spec: Spec, mode: Mode, where: float, kind: StoreKind
) -> None:
    check(spec, mode, where, kind)
