"""Backends that prove the seam: nothing a handler needs may cross it except plain data.

``RoundTripBackend`` encodes every request and outcome (and every event an invocation emits)
with the checkpoint serializer, to JSON bytes and back, before the other side sees it: a
handler that relied on sharing a live object with the runner or with another executor (a
message, a state value, a request's response type) sees a copy, and a value the serializer
cannot carry fails the invocation naming it. A Ray or process backend crosses the same line.

``ThreadBackend`` runs each invocation on an event loop in another thread (a small pool),
so a handler that touched the runner's loop or task-local context would break.

Neither is meant for production; the test suite runs on them with
``LEDGERFLOW_TEST_BACKEND=roundtrip|threads`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from ._backend import EmitEvent, InvocationOutcome, InvocationRequest, run_invocation

if TYPE_CHECKING:
    from ._workflow import Workflow
    from .events import WorkflowEvent

__all__ = ("RoundTripBackend", "ThreadBackend", "backend_named")


class RoundTripBackend:
    """Runs invocations in-process, but only on JSON copies of their requests and outcomes.

    Attributes:
        invocations: How many invocations crossed the wire.
        bytes: JSON bytes that crossed it (requests, outcomes and events).
    """

    def __init__(self) -> None:
        self.invocations = 0
        self.bytes = 0

    def open(self, workflow: Workflow) -> _RoundTripRun:
        return _RoundTripRun(self, workflow)

    def __repr__(self) -> str:
        return "RoundTripBackend()"


class _RoundTripRun:
    def __init__(self, backend: RoundTripBackend, workflow: Workflow) -> None:
        from ._allowlist import registry_for
        from ._serde import TypeRegistry

        self.backend = backend
        self.workflow = workflow
        self.registry = registry_for(workflow)
        # events are no checkpoint values: a registry of their own, grown as they appear
        self.events = TypeRegistry()

    def _wire(self, data: Any) -> Any:
        from ._serde import dumps, loads

        raw = dumps(data)
        self.backend.bytes += len(raw)
        return loads(raw)

    async def invoke(self, request: InvocationRequest, emit: EmitEvent) -> InvocationOutcome:
        from ._backend_wire import decode_outcome, decode_request, encode_outcome, encode_request
        from ._serde import decode, encode

        registry = self.registry
        node = self.workflow.executors[request.executor_id]
        remote = decode_request(self._wire(encode_request(request, registry)), registry)

        async def emit_copy(event: WorkflowEvent) -> None:
            self.events.register(type(event))
            where = f"event {type(event).__name__} of executor {request.executor_id!r}"
            data = self._wire(encode(event, self.events, path=where))
            await emit(decode(data, self.events))

        outcome = await run_invocation(node, remote, emit_copy, self.backend)
        eid = request.executor_id
        data = self._wire(encode_outcome(outcome, registry, executor_id=eid, events=self.events))
        self.backend.invocations += 1
        return decode_outcome(data, registry, events=self.events)

    async def aclose(self) -> None:
        return None


class ThreadBackend:
    """Runs each invocation on an event loop in one of ``threads`` worker threads.

    The loops are started when a run opens the backend and stopped when it closes it; a
    run's events travel back to its own loop (in order) while the invocation runs.
    """

    def __init__(self, threads: int = 2) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.threads = threads

    def open(self, workflow: Workflow) -> _ThreadRun:
        return _ThreadRun(self, workflow)

    def __repr__(self) -> str:
        return f"ThreadBackend(threads={self.threads})"


class _ThreadRun:
    def __init__(self, backend: ThreadBackend, workflow: Workflow) -> None:
        self.backend = backend
        self.workflow = workflow
        self.stack = contextlib.ExitStack()
        self.portals: list[anyio.from_thread.BlockingPortal] = []
        self.next = itertools.count()

    def _portal(self) -> anyio.from_thread.BlockingPortal:
        if len(self.portals) < self.backend.threads:
            cm = anyio.from_thread.start_blocking_portal()
            self.portals.append(self.stack.enter_context(cm))
            return self.portals[-1]
        return self.portals[next(self.next) % len(self.portals)]

    async def invoke(self, request: InvocationRequest, emit: EmitEvent) -> InvocationOutcome:
        node = self.workflow.executors[request.executor_id]
        token = anyio.lowlevel.current_token()
        portal = await anyio.to_thread.run_sync(self._portal)

        async def deliver(event: WorkflowEvent) -> None:
            await emit(event)

        async def emit_home(event: WorkflowEvent) -> None:
            # back on the run's own loop, in order: this invocation's loop waits meanwhile
            await anyio.to_thread.run_sync(
                lambda: anyio.from_thread.run(deliver, event, token=token)
            )

        future = portal.start_task_soon(run_invocation, node, request, emit_home, self.backend)
        try:
            return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            future.cancel()  # a timeout or a cancelled run stops the invocation there too
            raise

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.stack.close)


def backend_named(name: str) -> Any:
    """The test backend called ``name`` (``local``, ``roundtrip`` or ``threads``)."""
    from ._backend import LocalBackend

    found = {"local": LocalBackend, "roundtrip": RoundTripBackend, "threads": ThreadBackend}
    if name not in found:
        raise ValueError(f"unknown test backend {name!r}; choose one of {sorted(found)}")
    return found[name]()
