"""Backends that prove the seam: nothing a handler needs may cross it except plain data.

``RoundTripBackend`` encodes every request and outcome (and every event an invocation emits)
with the checkpoint serializer, to JSON bytes and back, before the other side sees it: a
handler that relied on sharing a live object with the runner or with another executor (a
message, a state value, a request's response type) sees a copy, and a value the serializer
cannot carry fails the invocation naming it. A Ray or process backend crosses the same line.

``ThreadBackend`` (``_backend_threads.py``) runs each invocation on an event loop in a
worker thread, so a handler that touched the runner's loop or its task would break.

Neither is meant for production; the test suite runs on them with
``LEDGERFLOW_TEST_BACKEND=roundtrip|threads`` (see ``tests/conftest.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._backend import EmitEvent, InvocationOutcome, InvocationRequest, run_invocation
from ._backend_threads import ThreadBackend

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


def backend_named(name: str) -> Any:
    """The test backend called ``name`` (``local``, ``roundtrip`` or ``threads``)."""
    from ._backend import LocalBackend

    found = {"local": LocalBackend, "roundtrip": RoundTripBackend, "threads": ThreadBackend}
    if name not in found:
        raise ValueError(f"unknown test backend {name!r}; choose one of {sorted(found)}")
    return found[name]()
