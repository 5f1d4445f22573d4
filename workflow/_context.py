"""The handle a handler gets for talking to the run: messages, outputs, state, human input.

Most calls only record into the invocation's outcome, which the scheduler commits at the end
of the superstep (or discards if the executor fails). They still return awaitables, as the
contract says ``await ctx.send_message(...)``, but finished ones: no coroutine is created on
the hot path, and a sync function executor may call them without ``await``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .events import WorkflowEvent

if TYPE_CHECKING:
    from ._backend import Attempt

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

    Attributes:
        source: Id of the executor that sent the message being handled (``None`` for the
            run's input and for human responses).
    """

    __slots__ = ("_inv", "source")

    def __init__(self, invocation: Attempt) -> None:
        self._inv = invocation
        self.source: str | None = None

    @property
    def executor_id(self) -> str:
        return self._inv.node.id

    @property
    def run_id(self) -> str:
        return self._inv.request.run_id

    @property
    def superstep(self) -> int:
        """Index of the superstep being executed (the first is 1)."""
        return self._inv.request.superstep

    def send_message(self, message: Any, *, target: str | None = None) -> Done[None]:
        """Send ``message`` along every outgoing edge (or only to successor ``target``).

        An executor may always address itself (``target=ctx.executor_id``), edge or not: it
        continues in the next superstep with this superstep's results committed, which is
        how a long job checkpoints its progress (e.g. an approved tool call, then the model).
        """
        if message is None:
            raise TypeError(
                f"executor {self._inv.node.id!r} sent None; send a value or return None"
            )
        self._inv.sends.append((target, message))
        return _DONE  # type: ignore[no-any-return]

    def yield_output(self, value: Any) -> Done[None]:
        """Emit a workflow output (committed with this executor's other results)."""
        self._inv.outputs.append(value)
        return _DONE  # type: ignore[no-any-return]

    def get_state(self, key: str, default: Any = None) -> Done[Any]:
        """Run-wide state: your own writes at once, others' from the next superstep."""
        value = self._inv.state_writes.get(key, _MISSING)
        if value is _MISSING:
            value = self._inv.request.state.get(key, default)
        return Done(value)

    def set_state(self, key: str, value: Any) -> Done[None]:
        """Write run-wide state; committed (and checkpointed) if this executor succeeds."""
        self._inv.state_writes[key] = value
        return _DONE  # type: ignore[no-any-return]

    def get_executor_state(self, key: str, default: Any = None) -> Done[Any]:
        """State private to this executor within this run (e.g. an agent's conversation)."""
        value = self._inv.local_writes.get(key, _MISSING)
        if value is _MISSING:
            value = self._inv.request.local.get(key, default)
        return Done(value)

    def set_executor_state(self, key: str, value: Any) -> Done[None]:
        self._inv.local_writes[key] = value
        return _DONE  # type: ignore[no-any-return]

    def request_info(self, payload: Any, *, response_type: type[Any] = object) -> Done[str]:
        """Ask outside the run for a ``response_type`` answer; returns the request id.

        The answer arrives at this executor's ``@response_handler`` when the run is resumed
        with ``responses={request_id: value}``. The run pauses once nothing else can run.
        """
        return Done(self._inv.add_request(payload, response_type))

    async def add_event(self, event: WorkflowEvent) -> None:
        """Emit a custom event (e.g. ``AgentDelta``), streamed in deterministic order."""
        await self._inv.emit(event)
