"""The seam-proving backends: JSON round trip and worker threads.

What they must show: a handler sees copies, not the runner's objects (round trip); a value
the checkpoint serializer cannot carry fails the invocation naming it; events cross too; an
invocation on another thread's loop still streams its events in order, and a timeout stops
it there.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from builders import WorkflowBuilder
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
