"""An invocation as data: the request a backend runs and the outcome it returns.

Both are named tuples: immutable, plain data, and the cheapest records Python builds (the
runner makes one of each per invocation). See ``_backend`` for who may do what with them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from ._result import PendingRequest

if TYPE_CHECKING:
    from .events import WorkflowEvent

__all__ = (
    "Delivery",
    "EmitEvent",
    "HeldValue",
    "InvocationOutcome",
    "InvocationRequest",
    "message_type_name",
)

# How a backend passes an invocation's events on to the run's stream (in order, as emitted).
EmitEvent = Callable[["WorkflowEvent"], Awaitable[None]]

# (source executor id or None for the run's input and human replies, message, is a reply).
# A reply's message is a ``Reply`` (request id, the request's payload, the response).
Delivery = tuple[str | None, Any, bool]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class HeldValue:
    """A sent message a backend keeps outside the driver's memory (e.g. Ray's object store).

    A backend may put one in an outcome's ``sends`` in place of a large value, and must
    resolve it back to the value wherever the receiving invocation runs (also inside a
    fan-in's list). The runner routes it by ``held_type`` (the value's class) without
    fetching it; it fetches the value only where it must have it: an edge condition,
    selection function or switch case evaluated on the message, a message that becomes a run
    output, and a checkpoint (stores keep values, never handles, so a run resumes anywhere).
    """

    __slots__ = ("held_type",)

    def __init__(self, held_type: type) -> None:
        self.held_type = held_type

    async def fetch(self) -> Any:
        """The value, brought into this process."""
        raise NotImplementedError

    def fetch_blocking(self) -> Any:
        """The value, brought into this process without an event loop (for the serializer)."""
        raise NotImplementedError


def message_type_name(message: Any) -> str:
    """The class name of ``message``, or of the value a ``HeldValue`` stands for."""
    return (message.held_type if isinstance(message, HeldValue) else type(message)).__name__


class InvocationRequest(NamedTuple):
    """One executor handling its deliveries of one superstep: what a backend runs.

    Immutable plain data (a named tuple, cheap on the hot path); every value in it is
    checkpointable. A backend must not mutate ``state`` or ``local``: they are read views of
    what the run has committed (with ``LocalBackend`` the committed objects themselves).

    Attributes:
        run_id: The run (a nested run's id for an invocation inside a nested workflow).
        executor_id: The executor to invoke, an id of the workflow given to ``Backend.open``.
        deliveries: ``(source, message, is_reply)`` in the order they must be handled.
        state: Run-wide state as committed before this superstep.
        local: This executor's own state as committed before this superstep.
        superstep: The superstep being executed (the first is 1).
        attempt: 1 for the first attempt, then 2, 3, ... when the runner retries.
    """

    run_id: str
    executor_id: str
    deliveries: tuple[Delivery, ...]
    state: Mapping[str, Any]
    local: Mapping[str, Any]
    superstep: int
    attempt: int = 1


class InvocationOutcome(NamedTuple):
    """What one successful invocation produced, before routing: frozen plain data.

    Attributes:
        sends: ``(target, message)`` in send order; ``target`` is ``None`` for "along every
            outgoing edge" (a handler's return value is such a send).
        outputs: Values given to ``ctx.yield_output``, in order.
        state_writes: Run-wide state keys written (last write wins).
        local_writes: The executor's own state keys written.
        requests: Questions asked with ``ctx.request_info``.
        events: The events the invocation emitted, in order (each already passed to the run's
            stream through the ``emit`` channel; kept here as the invocation's record).
    """

    sends: tuple[tuple[str | None, Any], ...] = ()
    outputs: tuple[Any, ...] = ()
    state_writes: Mapping[str, Any] = _EMPTY
    local_writes: Mapping[str, Any] = _EMPTY
    requests: tuple[PendingRequest, ...] = ()
    events: tuple[WorkflowEvent, ...] = ()


# Build either record from a tuple of its fields without the named tuple's Python-level
# ``__new__`` (half the cost; the runner and every context make one per invocation).
new_request: Callable[[tuple[Any, ...]], InvocationRequest] = functools.partial(
    tuple.__new__, InvocationRequest
)
new_outcome: Callable[[tuple[Any, ...]], InvocationOutcome] = functools.partial(
    tuple.__new__, InvocationOutcome
)
