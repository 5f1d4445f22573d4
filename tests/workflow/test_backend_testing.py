"""The seam-proving backends: JSON round trip and worker threads.

What they must show: a handler sees copies, not the runner's objects (round trip); a value
the checkpoint serializer cannot carry fails the invocation naming it; events cross too; an
invocation on another thread's loop still streams its events in order, and a timeout stops
it there.
"""

from __future__ import annotations

import contextvars
import dataclasses
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from builders import WorkflowBuilder
from tests.loop_event import LoopEvent
from workflow import (
    Executor,
    ExecutorFailedError,
    LocalBackend,
    RunStatus,
    SerializationError,
    WorkflowContext,
    events,
    executor,
    handler,
)
from workflow._backend_testing import RoundTripBackend, ThreadBackend, backend_named

pytestmark = pytest.mark.anyio


@dataclasses.dataclass(frozen=True)
class Said(events.WorkflowEvent):
    text: str = ""


class Keeper(Executor):
    """Remembers the exact objects it received (identity, not equality)."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.seen: list[Any] = []

    @handler
    async def on(self, value: dict[str, Any], ctx: WorkflowContext) -> None:
        self.seen.append(value)
        await ctx.add_event(Said(run_id=ctx.run_id, superstep=ctx.superstep, text="got it"))
        await ctx.yield_output(value)


async def test_a_round_trip_hands_the_handler_a_copy_and_counts_the_wire() -> None:
    keeper = Keeper("keep")
    wf = WorkflowBuilder(start=keeper, name="copy").build()
    given = {"items": [1, 2], "nested": {"ok": True}}
    backend = RoundTripBackend()
    result = await wf.run(given, backend=backend)
    assert result.outputs == [given]
    (seen,) = keeper.seen
    assert seen == given
    assert seen is not given  # crossed as JSON: nothing live is shared
    assert result.outputs[0] is not seen
    assert backend.invocations == 1
    assert backend.bytes > 0
    said = [e for e in result.events if isinstance(e, Said)]
    assert [e.text for e in said] == ["got it"]


async def test_a_value_the_serializer_cannot_carry_fails_the_invocation_naming_it() -> None:
    class Opaque:
        pass

    @executor(id="leaky")
    async def leaky(x: int, ctx: WorkflowContext) -> None:
        await ctx.set_state("handle", Opaque())

    wf = WorkflowBuilder(start=leaky, name="leak").build()
    local = await wf.run(1, backend=LocalBackend())
    assert local.status is RunStatus.COMPLETED  # in-process, anything goes
    result = await wf.run(1, backend=RoundTripBackend())
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert isinstance(result.error.__cause__, SerializationError)
    assert "leaky" in str(result.error.__cause__)
    assert "Opaque" in str(result.error.__cause__)


async def test_threads_run_handlers_elsewhere_and_stream_their_events_in_order() -> None:
    threads: set[int] = set()

    class Chatty(Executor):
        @handler
        async def on(self, n: int, ctx: WorkflowContext[int]) -> None:
            threads.add(threading.get_ident())
            for i in range(3):
                await ctx.add_event(Said(run_id=ctx.run_id, superstep=ctx.superstep, text=str(i)))
                await anyio.lowlevel.checkpoint()
            if n > 0:
                await ctx.send_message(n - 1)

    chatty = Chatty("chatty")
    wf = WorkflowBuilder(start=chatty, name="chatty").add_edge(chatty, chatty).build()
    seen = [e async for e in wf.run_stream(2, backend=ThreadBackend(threads=2))]
    assert threading.get_ident() not in threads
    texts = [e.text for e in seen if isinstance(e, Said)]
    assert texts == ["0", "1", "2"] * 3
    assert isinstance(seen[-1], events.RunFinished)
    assert seen[-1].status is RunStatus.COMPLETED


async def test_a_timeout_stops_an_invocation_on_another_thread() -> None:
    @executor(id="slow")
    async def slow(x: int) -> int:
        await anyio.sleep(30)
        return x

    wf = WorkflowBuilder(start=slow, name="slow").add_executor(slow, timeout=0.2).build()
    with anyio.fail_after(20):
        result = await wf.run(1, backend=ThreadBackend())
    assert result.status is RunStatus.FAILED
    assert "timeout" in str(result.error)


def test_backends_are_named_for_the_test_switch() -> None:
    assert repr(backend_named("roundtrip")) == "RoundTripBackend()"
    assert repr(backend_named("threads")) == "ThreadBackend(threads=2)"
    with pytest.raises(ValueError, match="unknown test backend 'ray'"):
        backend_named("ray")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        ThreadBackend(threads=0)


def nested_fan(width: int, depth: int, threads: set[str]) -> Any:
    """A fan-out of ``width`` nested workflows, each nesting ``depth`` levels of chains."""

    def level(name: str, d: int) -> Any:
        @executor(id=f"{name}-step")
        async def step(n: int) -> int:
            threads.add(threading.current_thread().name)
            await anyio.lowlevel.checkpoint()
            return n + 1

        b = WorkflowBuilder(start=step, name=name)
        if d > 0:
            b.add_edge(step, level(f"{name}i", d - 1))
        return b.build()

    @executor(id="start")
    async def start(n: int) -> int:
        return n

    @executor(id="join")
    async def join(parts: list[int], ctx: WorkflowContext[int]) -> None:
        await ctx.yield_output(sum(parts))

    kids = [level(f"k{i}", depth) for i in range(width)]
    return (
        WorkflowBuilder(start=start, name="nest")
        .add_fan_out_edges(start, kids)
        .add_fan_in_edges(kids, join)
        .build()
    )


@pytest.mark.parametrize("threads", [1, 2, 3])
async def test_nested_runs_hop_between_worker_loops_without_deadlock(threads: int) -> None:
    seen: set[str] = set()
    wf = nested_fan(width=6, depth=3, threads=seen)
    with anyio.fail_after(30):  # a deadlock guard: loops waiting on each other never finish
        result = await wf.run(0, backend=ThreadBackend(threads=threads))
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == [6 * 4]  # each nested level adds one
    assert seen == {f"ledgerflow-thread-backend-{i}" for i in range(threads)}
    local = await wf.run(0)

    def shape(run: Any) -> list[tuple[str, Any]]:
        return [(type(e).__name__, getattr(e, "executor_id", None)) for e in run.events]

    assert shape(result) == shape(local)  # the same events in the same order


async def test_a_cancelled_run_stops_its_invocation_there_and_waits_for_it() -> None:
    entered = LoopEvent()
    log: list[str] = []

    @executor(id="stuck")
    async def stuck(x: int) -> int:
        try:
            entered.set()
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # cleanup that takes a while, on its own loop
            log.append(f"cleaned up on {threading.current_thread().name}")
        return x

    wf = WorkflowBuilder(start=stuck, name="stuck").build()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: wf.run(1, backend=ThreadBackend()))
            await entered.wait()
            tg.cancel_scope.cancel()
    # the run returned only after the handler's cleanup finished on its worker thread
    assert log == ["cleaned up on ledgerflow-thread-backend-0"] or log == [
        "cleaned up on ledgerflow-thread-backend-1"
    ]


async def test_the_callers_context_goes_with_the_invocation() -> None:
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")

    @executor(id="reader")
    async def reader(x: int, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(who.get())

    wf = WorkflowBuilder(start=reader, name="ctx").build()
    who.set("the caller")
    result = await wf.run(1, backend=ThreadBackend())
    assert result.outputs == ["the caller"]


async def test_a_handler_error_on_a_worker_thread_fails_the_run_as_itself() -> None:
    @executor(id="bad")
    async def bad(x: int) -> int:
        raise LookupError(f"no such thing: {x}")

    wf = WorkflowBuilder(start=bad, name="bad").build()
    result = await wf.run(7, backend=ThreadBackend())
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert isinstance(result.error.__cause__, LookupError)
    assert "no such thing: 7" in str(result.error.__cause__)


async def test_a_handler_raising_cancellation_itself_leaves_its_worker_loop_serving(
    anyio_backend: str,
) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("trio's Cancelled cannot be raised by hand")

    @executor(id="odd")
    async def odd(x: int) -> int:
        raise anyio.get_cancelled_exc_class()("raised by the handler, not by a cancel scope")

    @executor(id="fine")
    async def fine(x: int) -> int:
        return x + 1

    backend = ThreadBackend(threads=1)
    for wf_backend in (LocalBackend(), backend):  # the same outcome on both
        with pytest.raises(anyio.get_cancelled_exc_class(), match="raised by the handler"):
            await WorkflowBuilder(start=odd, name="odd").build().run(1, backend=wf_backend)
    with anyio.fail_after(10):  # the worker loop is still there, and serves the next run
        result = await WorkflowBuilder(start=fine, name="fine").build().run(1, backend=backend)
    assert result.outputs == [2]
