"""Properties on random DAGs with random small delays: eager outputs equal superstep outputs,
and a crash at any executor resumes without running committed work again.

A DAG here mixes direct edges (a node with several parents runs once per message) and fan-ins
(whose sources each send one message, so the batches cannot pair differently). Outputs are
compared as multisets: eager mode commits in the order invocations finish. Every executor
that runs once runs at the superstep it has in superstep mode, and the events are well
formed. Each test runs on asyncio and on trio (the ``anyio_backend`` fixture of this
directory's conftest, a plain string, so Hypothesis may share it between examples).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import WorkflowBuilder
from workflow import RunStatus, Workflow, executor
from workflow.events import ExecutorCompleted

from .test_eager import well_formed

DELAYS = (0.0, 0.0, 0.001, 0.002, 0.003)


@st.composite
def dags(draw: st.DrawFn) -> list[tuple[list[int], bool, float]]:
    """Per node: its parents (earlier nodes), whether they reach it by a fan-in, a delay."""
    n = draw(st.integers(2, 7))
    nodes: list[tuple[list[int], bool, float]] = [([], False, draw(st.sampled_from(DELAYS)))]
    count = [1]  # messages each node gets
    for i in range(1, n):
        parents = sorted(draw(st.sets(st.integers(0, i - 1), min_size=1, max_size=3)))
        fan_in = len(parents) > 1 and all(count[p] == 1 for p in parents) and draw(st.booleans())
        nodes.append((parents, fan_in, draw(st.sampled_from(DELAYS))))
        count.append(1 if fan_in else sum(count[p] for p in parents))
    return nodes


def build(spec: list[tuple[list[int], bool, float]], scheduling: str) -> Workflow:
    def node(i: int, fan_in: bool, delay: float) -> Any:
        if fan_in:

            async def join(xs: list[str]) -> str:
                await anyio.sleep(delay)
                return f"{i}[{','.join(xs)}]"

            return executor(id=f"n{i}")(join)

        async def one(x: str) -> str:
            await anyio.sleep(delay)
            return f"{i}({x})"

        return executor(id=f"n{i}")(one)

    nodes = [node(i, fan_in, delay) for i, (_, fan_in, delay) in enumerate(spec)]
    b = WorkflowBuilder(start=nodes[0], name="dag", scheduling=scheduling)
    for i, (parents, fan_in, _) in enumerate(spec):
        if fan_in:
            b.add_fan_in_edges([nodes[p] for p in parents], nodes[i])
        else:
            for p in parents:
                b.add_edge(nodes[p], nodes[i])
    return b.build()


FIXTURE = HealthCheck.function_scoped_fixture  # anyio_backend: a string, nothing to reset


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, FIXTURE])
@given(spec=dags())
def test_eager_outputs_equal_superstep_outputs(
    anyio_backend: str, spec: list[tuple[list[int], bool, float]]
) -> None:
    async def both() -> None:
        superstep = await build(spec, "superstep").run("x")
        eager = await build(spec, "eager").run("x")
        assert superstep.status is eager.status is RunStatus.COMPLETED
        assert sorted(eager.outputs) == sorted(superstep.outputs)
        well_formed(eager.events)

        def depths(events: list[Any]) -> dict[str, list[int]]:
            found: dict[str, list[int]] = {}
            for e in events:
                if isinstance(e, ExecutorCompleted):
                    found.setdefault(e.executor_id, []).append(e.superstep)
            return found

        once = {k: v for k, v in depths(superstep.events).items() if len(v) == 1}
        eager_depths = depths(eager.events)
        for eid, steps in once.items():
            if len(eager_depths[eid]) == 1:
                assert eager_depths[eid] == steps, eid

    anyio.run(both, backend=anyio_backend)


class Crash(BaseException):
    """A kill seen from inside: nothing in the engine handles it."""


def slow_store() -> Any:
    """An in-memory store whose writes take a moment, as a real store's do: invocations
    finish while a checkpoint is being written, and a crash can catch them there."""
    from workflow import InMemoryCheckpointStore

    class Slow(InMemoryCheckpointStore):
        async def save(self, *args: Any, **kw: Any) -> None:
            await anyio.sleep(0.001)
            await super().save(*args, **kw)

    return Slow()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, FIXTURE])
@given(spec=dags(), victim=st.integers(0, 6))
def test_a_crash_at_any_point_resumes_without_running_committed_work_again(
    anyio_backend: str, spec: list[tuple[list[int], bool, float]], victim: int
) -> None:
    """Crash at one executor's first message, resume: the same outputs, and what ran twice
    is exactly what the last checkpoint still had in flight."""
    from collections import Counter

    from workflow import InMemoryCheckpointStore
    from workflow._durable import load_state

    victim %= len(spec)

    def build(store: Any, handled: list[tuple[int, str]], crash: set[int]) -> Workflow:
        def node(i: int, fan_in: bool, delay: float) -> Any:
            async def finish(value: str, seen: str) -> str:
                await anyio.sleep(delay)
                if i in crash:
                    crash.discard(i)
                    raise Crash(f"n{i}")
                handled.append((i, seen))
                return value

            if fan_in:

                async def join(xs: list[str]) -> str:
                    return await finish(f"{i}[{','.join(xs)}]", repr(xs))

                return executor(id=f"n{i}")(join)

            async def one(x: str) -> str:
                return await finish(f"{i}({x})", repr(x))

            return executor(id=f"n{i}")(one)

        nodes = [node(i, fan_in, delay) for i, (_, fan_in, delay) in enumerate(spec)]
        b = WorkflowBuilder(start=nodes[0], name="dag", scheduling="eager", checkpoint_store=store)
        for i, (parents, fan_in, _) in enumerate(spec):
            if fan_in:
                b.add_fan_in_edges([nodes[p] for p in parents], nodes[i])
            else:
                for p in parents:
                    b.add_edge(nodes[p], nodes[i])
        return b.build()

    async def crash_and_resume() -> None:
        clean: list[tuple[int, str]] = []
        reference = await build(InMemoryCheckpointStore(), clean, set()).run("x")
        store = slow_store()
        before: list[tuple[int, str]] = []
        with pytest.raises((Crash, BaseExceptionGroup)):
            await build(store, before, {victim}).run("x", run_id="r")
        after: list[tuple[int, str]] = []
        wf = build(store, after, set())
        state, _, _ = await load_state(wf, "r", None)
        in_flight = Counter(
            (int(eid[1:]), repr(d[3])) for eid, box in state.inbox.items() for d in box
        )
        resumed = await wf.resume("r")
        assert resumed.status is RunStatus.COMPLETED
        assert sorted(resumed.outputs) == sorted(reference.outputs)
        twice = Counter(before) & Counter(after)
        assert not twice - in_flight, "committed work ran again"
        assert Counter(before) + Counter(after) - twice == Counter(clean)

    anyio.run(crash_and_resume, backend=anyio_backend)
