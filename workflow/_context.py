"""The handle a handler gets for talking to the run: messages, outputs, state, human input.

Most calls only record into the invocation's outcome, which the scheduler commits at the end
of the superstep (or discards if the executor fails). They still return awaitables, as the
contract says ``await ctx.send_message(...)``, but finished ones: no coroutine is created on
the hot path, and a sync function executor may call them without ``await``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._isolate import isolated
from ._result import NestedQuestion, PendingRequest
from .events import WorkflowEvent

if TYPE_CHECKING:
    from ._backend import Backend
    from ._executor import Executor
    from ._invocation import EmitEvent, InvocationRequest

__all__ = ("Done", "WorkflowContext")

T_Out = TypeVar("T_Out")
T = TypeVar("T")
_MISSING: Any = object()


class Done(Generic[T]):
    """An awaitable whose result is already known."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __await__(self) -> Generator[Any, None, T]:
        return self.value
        yield  # pragma: no cover - makes this a generator


class _DoneNone:
    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE: Any = _DoneNone()


class WorkflowContext(Generic[T_Out]):
    """Per-invocation context; ``WorkflowContext[T]`` declares that the handler sends ``T``.

    It is also the record of the invocation attempt: what the handler sends, outputs,
    writes and asks is kept here until the backend turns it into an ``InvocationOutcome``.

    Attributes:
        source: Id of the executor that sent the message being handled (``None`` for the
            run's input and for human responses).
    """

    __slots__ = (
        "_backend",
        "_emit",
        "_events",
        "_local_writes",
        "_node",
        "_outputs",
        "_request",
        "_requests",
        "_sends",
        "_state_writes",
        "source",
    )

    def __init__(
        self, node: Executor, request: InvocationRequest, emit: EmitEvent, backend: Backend
    ) -> None:
        self._node = node
        self._request = request
        self._emit = emit
        self._backend = backend
        self._sends: list[tuple[str | None, Any]] = []
        self._outputs: list[Any] = []
        self._state_writes: dict[str, Any] = {}
        self._local_writes: dict[str, Any] = {}
        self._requests: list[PendingRequest] | None = None
        self._events: list[WorkflowEvent] | None = None
        self.source: str | None = None

    @property
    def executor_id(self) -> str:
        return self._node.id

    @property
    def run_id(self) -> str:
        return self._request.run_id

    @property
    def superstep(self) -> int:
        """Index of the superstep being executed (the first is 1)."""
        return self._request.superstep

    def send_message(self, message: Any, *, target: str | None = None) -> Done[None]:
        """Send ``message`` along every outgoing edge (or only to successor ``target``).

        An executor may always address itself (``target=ctx.executor_id``), edge or not: it
        continues in the next superstep with this superstep's results committed, which is
        how a long job checkpoints its progress (e.g. an approved tool call, then the model).
        """
        if message is None:
            raise TypeError(f"executor {self._node.id!r} sent None; send a value or return None")
        self._sends.append((target, message))
        return _DONE  # type: ignore[no-any-return]

    def yield_output(self, value: Any) -> Done[None]:
        """Emit a workflow output (committed with this executor's other results)."""
        self._outputs.append(value)
        return _DONE  # type: ignore[no-any-return]

    def get_state(self, key: str, default: Any = None) -> Done[Any]:
        """Run-wide state: your own writes at once, others' from the next superstep."""
        value = self._state_writes.get(key, _MISSING)
        if value is _MISSING:  # committed: a copy the handler may change (``_isolate``)
            value = isolated(self._request.state.get(key, default))
        return Done(value)

    def set_state(self, key: str, value: Any) -> Done[None]:
        """Write run-wide state; committed (and checkpointed) if this executor succeeds."""
        self._state_writes[key] = value
        return _DONE  # type: ignore[no-any-return]

    def get_executor_state(self, key: str, default: Any = None) -> Done[Any]:
        """State private to this executor within this run (e.g. an agent's conversation)."""
        value = self._local_writes.get(key, _MISSING)
        if value is _MISSING:
            value = isolated(self._request.local.get(key, default))
        return Done(value)

    def set_executor_state(self, key: str, value: Any) -> Done[None]:
        self._local_writes[key] = value
        return _DONE  # type: ignore[no-any-return]

    def request_info(self, payload: Any, *, response_type: type[Any] = object) -> Done[str]:
        """Ask outside the run for a ``response_type`` answer; returns the request id.

        The answer arrives at this executor's ``@response_handler`` when the run is resumed
        with ``responses={request_id: value}``. The run pauses once nothing else can run.
        """
        node = self._node
        if not node._response_specs:
            raise TypeError(
                f"executor {node.id!r} called request_info but has no @response_handler to "
                "receive the answer; add one"
            )
        if self._requests is None:
            self._requests = []
        request_id = f"{node.id}:{self._request.superstep}:{len(self._requests) + 1}"
        if type(payload) is NestedQuestion:  # a nested workflow's question, shown as asked
            request = PendingRequest(
                request_id,
                payload.path,
                payload.payload,
                response_type,
                (node.id, payload.envelope),
            )
        else:
            request = PendingRequest(request_id, node.id, payload, response_type)
        self._requests.append(request)
        return Done(request_id)

    async def add_event(self, event: WorkflowEvent) -> None:
        """Emit a custom event (e.g. ``AgentDelta``), streamed in deterministic order."""
        if self._events is None:
            self._events = [event]
        else:
            self._events.append(event)
        await self._emit(event)
