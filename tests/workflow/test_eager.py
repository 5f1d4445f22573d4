"""Eager scheduling without a store: what runs when, and everything superstep mode supports.

Ordering is asserted through events, never through wall-clock limits: a fast branch's
events come before a slow branch's in eager mode and after them in superstep mode.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import anyio
import pytest

from builders import WorkflowBuilder
from tests.loop_event import LoopEvent
from workflow import (
    BreakpointError,
    Executor,
    GraphValidationError,
    RetryPolicy,
    RunStatus,
    Workflow,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)
from workflow.authoring import RoundTripBackend
from workflow.events import (
    BreakpointHit,
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    RunFinished,
    SuperstepStarted,
    WorkflowEvent,
)

pytestmark = pytest.mark.anyio

MODES = ["superstep", "eager"]


def step(name: str, delay: float = 0.0, log: list[str] | None = None) -> Any:
    async def run(x: int) -> int:
        if delay:
            await anyio.sleep(delay)
        if log is not None:
            log.append(name)
        return x + 1

    return executor(id=name)(run)


def skew(scheduling: str, **kw: Any) -> Workflow:
    """``start`` feeds a fast chain f0..f4 and one slow step."""
    start = step("start")
    fast = [step(f"f{i}") for i in range(5)]
    slow = step("slow", 0.05)
    b = WorkflowBuilder(start=start, name="skew", scheduling=scheduling, **kw)
    b.add_edge(start, fast[0]).add_edge(start, slow)
    for a, c in itertools.pairwise(fast):
        b.add_edge(a, c)
    return b.build()


def completed(events: list[WorkflowEvent]) -> list[str]:
    return [e.executor_id for e in events if isinstance(e, ExecutorCompleted)]


def well_formed(events: list[WorkflowEvent]) -> None:
    """Each invocation: invoked, then completed or failed, before its executor runs again."""
    assert isinstance(events[-1], RunFinished)
    assert sum(isinstance(e, RunFinished) for e in events) == 1
    open_: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    for e in events:
        if isinstance(e, ExecutorInvoked):
            assert e.executor_id not in open_, f"{e.executor_id} invoked twice at once"
            assert (e.executor_id, e.superstep) not in seen, "one executor twice at one depth"
            seen.add((e.executor_id, e.superstep))
            open_[e.executor_id] = e.superstep
        elif isinstance(e, ExecutorCompleted | ExecutorFailed):
            assert open_.pop(e.executor_id) == e.superstep
    assert not open_


# -- the option ------------------------------------------------------------------------------
async def test_scheduling_defaults_to_superstep_and_a_bad_value_names_the_choices() -> None:
    assert skew("superstep").scheduling == "superstep"
    assert WorkflowBuilder(start=step("a")).build().scheduling == "superstep"
    with pytest.raises(GraphValidationError, match=r"'superstep' or 'eager', got 'lazy'"):
        WorkflowBuilder(start=step("a"), scheduling="lazy").build()
    wf = skew("eager")
    for bad in ("Eager", None, 1, ""):
        with pytest.raises(GraphValidationError, match=rf"or 'eager', got {bad!r}"):
            Workflow(wf.graph, scheduling=bad)  # type: ignore[arg-type]
    with pytest.raises(BreakpointError, match="'nope'"):
        await wf.run(0, pause_before=["nope"])
    assert wf.with_store(None).scheduling == "eager"


# -- what runs when ----------------------------------------------------------------------------
async def test_a_fast_branch_does_not_wait_for_a_slow_one() -> None:
    eager = await skew("eager").run(0)
    superstep = await skew("superstep").run(0)
    assert eager.status is superstep.status is RunStatus.COMPLETED
    assert sorted(eager.outputs) == sorted(superstep.outputs) == [2, 6]
    assert completed(eager.events).index("f4") < completed(eager.events).index("slow")
    assert completed(superstep.events).index("f4") > completed(superstep.events).index("slow")
    assert not any(isinstance(e, SuperstepStarted) for e in eager.events)
    well_formed(eager.events)
    # superstep = depth: f4 is five steps below start, as in superstep mode
    depth = {e.executor_id: e.superstep for e in eager.events if isinstance(e, ExecutorCompleted)}
    assert depth == {"start": 1, "f0": 2, "slow": 2, "f1": 3, "f2": 4, "f3": 5, "f4": 6}
    assert eager.events[-1].superstep == 6


async def test_fan_in_waits_for_every_source() -> None:
    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return sum(xs)

    start = step("start")
    quick, late = step("quick"), step("late", 0.03)
    wf = (
        WorkflowBuilder(start=start, scheduling="eager")
        .add_fan_out_edges(start, [quick, late])
        .add_fan_in_edges([quick, late], total)
        .build()
    )
    result = await wf.run(1)
    assert result.outputs == [6]
    assert completed(result.events) == ["start", "quick", "late", "total"]


class Collect(Executor):
    """Records each message and how many invocations of it overlap."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.seen: list[tuple[str, int]] = []
        self.active = 0
        self.most = 0

    @handler
    async def on(self, msg: tuple[str, int], ctx: WorkflowContext[Any]) -> None:
        self.active += 1
        self.most = max(self.most, self.active)
        await anyio.sleep(0.001)
        self.seen.append(msg)
        self.active -= 1
        await ctx.yield_output(msg)


class Burst(Executor):
    def __init__(self, id: str, n: int, delay: float) -> None:
        super().__init__(id)
        self.n, self.delay = n, delay

    @handler
    async def on(self, x: int, ctx: WorkflowContext[tuple[str, int]]) -> None:
        for i in range(self.n):
            await anyio.sleep(self.delay)
            await ctx.send_message((self.id, i))


async def test_an_executor_runs_one_invocation_at_a_time_in_send_order_per_source() -> None:
    sink = Collect("sink")
    a, b = Burst("a", 5, 0.0), Burst("b", 5, 0.002)
    start = step("start")
    wf = (
        WorkflowBuilder(start=start, scheduling="eager")
        .add_fan_out_edges(start, [a, b])
        .add_edge(a, sink)
        .add_edge(b, sink)
        .build()
    )
    result = await wf.run(0)
    assert result.status is RunStatus.COMPLETED
    assert sink.most == 1
    for source in ("a", "b"):
        assert [i for s, i in sink.seen if s == source] == list(range(5))
    well_formed(result.events)


async def test_max_concurrency_bounds_invocations_at_once() -> None:
    running = [0, 0]

    def slow(i: int) -> Any:
        async def run(x: int) -> int:
            running[0] += 1
            running[1] = max(running[1], running[0])
            await anyio.sleep(0.002)
            running[0] -= 1
            return x

        return executor(id=f"w{i}")(run)

    start = step("start")
    workers = [slow(i) for i in range(8)]
    wf = (
        WorkflowBuilder(start=start, scheduling="eager", max_concurrency=2)
        .add_fan_out_edges(start, workers)
        .build()
    )
    result = await wf.run(0)
    assert sorted(result.outputs) == [1] * 8
    assert running[1] == 2


@pytest.mark.local_only(
    "eager events follow completion order (docs/eager.md): on worker threads, which of two "
    "ready executors finishes first is a race",
    on=("threads",),
)
async def test_same_input_same_events() -> None:
    def shape(events: list[WorkflowEvent]) -> list[tuple[str, int, Any]]:
        return [(type(e).__name__, e.superstep, getattr(e, "executor_id", None)) for e in events]

    runs = [shape((await skew("eager").run(0, run_id="same")).events) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]

    async def with_reply() -> list[tuple[str, int, Any]]:
        wf = asking("eager")
        first = await wf.run(0, run_id="r")
        (request,) = first.pending_requests
        second = await wf.resume("r", responses={request.request_id: 3})
        return shape(first.events) + shape(second.events)

    replies = [await with_reply() for _ in range(3)]
    assert replies[0] == replies[1] == replies[2]


async def test_streamed_events_are_the_result_events_once_each() -> None:
    wf = skew("eager")
    streamed = []
    async with wf.run_stream(0, run_id="s") as events:
        async for event in events:
            streamed.append(event)
    well_formed(streamed)
    assert completed(streamed).count("slow") == 1
    assert sorted(completed(streamed)) == sorted(["start", "slow"] + [f"f{i}" for i in range(5)])


async def test_the_round_trip_backend_runs_eager_runs() -> None:
    result = await skew("eager").run(0, backend=RoundTripBackend())
    assert sorted(result.outputs) == [2, 6]
    well_formed(result.events)


# -- cycles ------------------------------------------------------------------------------------
class Loop(Executor):
    def __init__(self, id: str, limit: int) -> None:
        super().__init__(id)
        self.limit = limit

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        if x >= self.limit:
            await ctx.yield_output(x)
        else:
            await ctx.send_message(x + 1)


@pytest.mark.parametrize("scheduling", MODES)
async def test_cycles_are_bounded_by_max_supersteps_in_both_modes(scheduling: str) -> None:
    def build(limit: int, max_supersteps: int) -> Workflow:
        a, b = Loop("a", limit), Loop("b", limit)
        return (
            WorkflowBuilder(start=a, scheduling=scheduling, max_supersteps=max_supersteps)
            .add_edge(a, b)
            .add_edge(b, a)
            .build()
        )

    done = await build(20, 50).run(0)
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == [20]
    stopped = await build(10**6, 30).run(0)
    assert stopped.status is RunStatus.MAX_SUPERSTEPS
    invoked = [e for e in stopped.events if isinstance(e, ExecutorInvoked)]
    assert len(invoked) == 30  # one executor per step on this loop, in either mode
    assert max(e.superstep for e in invoked) == 30


async def test_a_runaway_branch_stops_at_max_supersteps_after_the_rest_finished() -> None:
    a, b = Loop("a", 10**6), Loop("b", 10**6)
    start = step("start")
    side = step("side", 0.01)
    wf = (
        WorkflowBuilder(start=start, scheduling="eager", max_supersteps=40)
        .add_fan_out_edges(start, [a, side])
        .add_edge(a, b)
        .add_edge(b, a)
        .build()
    )
    result = await wf.run(0)
    assert result.status is RunStatus.MAX_SUPERSTEPS
    assert result.outputs == [2]  # side's
    assert isinstance(result.events[-1], RunFinished)


# -- human input and breakpoints -------------------------------------------------------------
@dataclass(frozen=True)
class Ask:
    text: str


class Asker(Executor):
    @handler
    async def on(self, x: int, ctx: WorkflowContext) -> None:
        await ctx.request_info(Ask(f"add to {x}?"), response_type=int)

    @response_handler
    async def answer(self, q: Ask, extra: int, ctx: WorkflowContext[int]) -> None:
        await ctx.send_message(int(q.text.split()[-1].rstrip("?")) + extra)


def asking(scheduling: str) -> Workflow:
    start = step("start")
    ask, after = Asker("ask"), step("after")
    fast = [step(f"f{i}") for i in range(3)]
    b = WorkflowBuilder(start=start, scheduling=scheduling)
    b.add_fan_out_edges(start, [ask, fast[0]]).add_edge(ask, after)
    b.add_edge(fast[0], fast[1]).add_edge(fast[1], fast[2])
    return b.build()


@pytest.mark.parametrize("scheduling", MODES)
async def test_a_question_pauses_only_once_nothing_else_can_run(scheduling: str) -> None:
    wf = asking(scheduling)
    first = await wf.run(0, run_id=f"ask-{scheduling}")
    assert first.status is RunStatus.AWAITING_INPUT
    assert first.outputs == [4]  # the fast branch went on
    (request,) = first.pending_requests
    second = await wf.resume(f"ask-{scheduling}", responses={request.request_id: 10})
    assert second.status is RunStatus.COMPLETED
    assert second.outputs == [4, 12]  # 1 + 10, then +1 at "after"
    well_formed(second.events)


@pytest.mark.parametrize("scheduling", MODES)
async def test_breakpoints_stop_before_the_executor_and_answering_goes_on(
    scheduling: str,
) -> None:
    wf = skew(scheduling)
    first = await wf.run(0, run_id=f"bp-{scheduling}", pause_before=["slow"])
    assert first.status is RunStatus.AWAITING_INPUT
    (hit,) = [e for e in first.events if isinstance(e, BreakpointHit)]
    assert hit.executor_id == "slow"
    assert hit.superstep == 2
    assert "slow" not in completed(first.events)
    if scheduling == "eager":  # the other branch went on
        assert first.outputs == [6]
    (request,) = first.pending_requests
    second = await wf.resume(f"bp-{scheduling}", responses={request.request_id: None})
    assert second.status is RunStatus.COMPLETED
    assert sorted(second.outputs) == [2, 6]  # a run's outputs, all of them


# -- nested workflows --------------------------------------------------------------------------
@pytest.mark.parametrize("outer", MODES)
@pytest.mark.parametrize("inner", MODES)
async def test_nested_workflows_in_either_mode(outer: str, inner: str) -> None:
    child = skew(inner)
    start = step("begin")
    wf = WorkflowBuilder(start=start, scheduling=outer).add_edge(start, child).build()
    result = await wf.run(0)
    assert result.status is RunStatus.COMPLETED
    assert sorted(result.outputs) == [3, 7]
    nested = {e.executor_id for e in result.events if isinstance(e, ExecutorCompleted)}
    assert "skew/slow" in nested
    assert "skew/f4" in nested


@pytest.mark.parametrize("outer", MODES)
async def test_a_nested_eager_question_reaches_the_parent(outer: str) -> None:
    child = asking("eager")
    wf = WorkflowBuilder(start=child, scheduling=outer).build()
    first = await wf.run(0, run_id=f"n-{outer}")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    second = await wf.resume(f"n-{outer}", responses={request.request_id: 5})
    assert second.status is RunStatus.COMPLETED
    assert sorted(second.outputs) == [4, 7]


# -- retries, timeouts, failures -----------------------------------------------------------------
@pytest.mark.parametrize("scheduling", MODES)
async def test_retries_and_timeouts_in_both_modes(scheduling: str) -> None:
    attempts = {"flaky": 0}

    @executor(id="flaky")
    async def flaky(x: int) -> int:
        attempts["flaky"] += 1
        if attempts["flaky"] < 3:
            raise ConnectionError("try again")
        return x + 100

    @executor(id="stuck")
    async def stuck(x: int) -> int:
        await anyio.sleep(10)
        return x

    start = step("start")
    ok = (
        WorkflowBuilder(start=start, scheduling=scheduling)
        .add_executor(flaky, retry=RetryPolicy(max_attempts=3, initial_delay=0))
        .add_edge(start, flaky)
        .build()
    )
    result = await ok.run(0)
    assert result.outputs == [101]
    assert attempts["flaky"] == 3

    timed = (
        WorkflowBuilder(start=start, scheduling=scheduling)
        .add_executor(stuck, timeout=0.05)
        .add_edge(start, stuck)
        .build()
    )
    failed = await timed.run(0)
    assert failed.status is RunStatus.FAILED
    assert "'stuck' exceeded its timeout of 0.05s" in str(failed.error)
    well_formed(failed.events)


async def test_a_failure_lets_running_siblings_commit_and_resume_reruns_only_it() -> None:
    broken = {"bad"}
    log: list[str] = []
    started = LoopEvent()

    @executor(id="bad")
    async def bad(x: int) -> int:
        await started.wait()  # good is running
        log.append("bad")
        if "bad" in broken:
            raise RuntimeError("boom")
        return x + 1

    @executor(id="good")
    async def good(x: int) -> int:
        started.set()
        await anyio.sleep(0.01)
        log.append("good")
        return x + 1

    start = step("start", log=log)
    wf = (
        WorkflowBuilder(start=start, scheduling="eager")
        .add_fan_out_edges(start, [bad, good])
        .build()
    )
    first = await wf.run(0, run_id="fail")
    assert first.status is RunStatus.FAILED
    assert "executor 'bad' failed in superstep 2" in str(first.error)
    assert first.outputs == [2]  # good finished and committed
    assert log == ["start", "bad", "good"]
    well_formed(first.events)
    broken.clear()
    second = await wf.resume("fail")
    assert second.status is RunStatus.COMPLETED
    assert second.outputs == [2, 2]
    assert log == ["start", "bad", "good", "bad"]


async def test_the_live_progress_shows_eager_executors_running() -> None:
    from visualize._progress import RunProgress

    seen: list[tuple[int, list[str]]] = []
    progress = RunProgress()
    async with skew("eager").run_stream(0) as events:
        async for event in events:
            progress.handle(event)
            if isinstance(event, ExecutorInvoked):
                seen.append((progress.superstep, list(progress.running)))
    assert (4, ["slow", "f2"]) in seen  # the fast branch goes on while slow runs
    assert progress.superstep == 6
    assert progress.running == []
    assert progress.done["slow"] == 1


async def test_a_graph_spec_chooses_its_scheduling() -> None:
    from builders import SpecError, dump_spec, load_spec

    spec: dict[str, Any] = {
        "kind": "graph",
        "name": "review",
        "clients": {"script": {"type": "scripted", "replies": ["draft", "looks good"]}},
        "agents": {
            "writer": {"instructions": "Write.", "client": "script"},
            "critic": {"instructions": "Review.", "client": "script"},
        },
        "start": "writer",
        "edges": [{"from": "writer", "to": "critic"}],
    }
    assert load_spec(spec).scheduling == "superstep"
    assert "scheduling" not in dump_spec(load_spec(spec))
    wf = load_spec({**spec, "scheduling": "eager"})
    assert wf.scheduling == "eager"
    assert dump_spec(wf)["scheduling"] == "eager"
    assert load_spec(dump_spec(wf)).scheduling == "eager"
    assert (await wf.run("Write a poem")).status is RunStatus.COMPLETED
    with pytest.raises(SpecError) as info:
        load_spec({**spec, "scheduling": "lazy"})
    assert info.value.path == "scheduling"
    assert "'superstep' or 'eager'" in str(info.value)


async def test_observers_dropped_messages_and_strict_routing() -> None:
    from contextlib import nullcontext

    from workflow import Observer
    from workflow.events import MessageDropped

    class Seen(Observer):
        def __init__(self) -> None:
            self.executors: list[tuple[str, int]] = []
            self.sent: list[tuple[str, str]] = []
            self.failed: list[str] = []

        def executor(self, **kw: Any) -> Any:
            self.executors.append((kw["executor_id"], kw["superstep"]))
            return nullcontext()

        def message_sent(self, *, source_id: str, target_id: str) -> None:
            self.sent.append((source_id, target_id))

        def executor_failed(self, *, executor_id: str, error: BaseException) -> None:
            self.failed.append(executor_id)

    @executor(id="words")
    async def words(x: int, ctx: WorkflowContext[Any]) -> None:
        await ctx.send_message("text")  # ints only downstream
        await ctx.send_message(x)

    @executor(id="ints")
    async def ints(x: int) -> int:
        return x

    def build(strict: bool, seen: Seen) -> Workflow:
        return (
            WorkflowBuilder(start=words, scheduling="eager", strict=strict, observers=[seen])
            .add_edge(words, ints)
            .build()
        )

    seen = Seen()
    lenient = await build(False, seen).run(1)
    assert lenient.outputs == [1]
    (dropped,) = [e for e in lenient.events if isinstance(e, MessageDropped)]
    assert (dropped.source_id, dropped.target_id, dropped.superstep) == ("words", "ints", 1)
    assert seen.executors == [("words", 1), ("ints", 2)]
    assert seen.sent == [("words", "ints")]
    seen = Seen()
    strict = await build(True, seen).run(1)
    assert strict.status is RunStatus.FAILED
    assert "strict=True" in str(strict.error)
    assert seen.failed == ["words"]
