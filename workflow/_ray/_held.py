"""Large messages through Ray's object store, past the driver.

A worker that finishes an invocation puts every sent value of at least ``threshold`` bytes
(estimated, see :func:`is_large`) in the object store itself (``ray.put``) and returns a
:class:`RayHeld` in its place: the object's reference and the value's class. The driver
routes the handle by that class without fetching the value; the worker of the receiving
invocation resolves it (``ray.get``), directly from the producing node's object store. So a
200 MB message between two executors crosses the cluster once and never enters the driver.

The handle's object lives while something references it: the driver's run state holds the
handle until the receiving superstep is committed, and Ray frees the value after that. It is
owned by the producing worker process: if that process dies before the value is read, the
value is lost and the receiving invocation fails with Ray's ``ObjectLostError`` (retried under
the executor's ``RetryPolicy`` like any failure, which cannot bring it back; resume the run from
its last checkpoint instead). A durable run's checkpoints keep values, not handles: the
driver fetches a held value to write it (see docs/ray.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from workflow._errors import WorkflowError
from workflow._invocation import HeldValue, InvocationOutcome, InvocationRequest

__all__ = (
    "HeldMark",
    "LostMessageError",
    "RayHeld",
    "attach_held",
    "hold_sends",
    "is_large",
    "resolve_request",
    "resolve_request_async",
    "split_large",
)

# Beyond this many objects looked at, a message counts as large without counting further.
_MAX_VISITS = 10_000


class RayHeld(HeldValue):
    """A sent value kept in Ray's object store: its reference and its class."""

    __slots__ = ("ref",)

    def __init__(self, ref: Any, held_type: type) -> None:
        super().__init__(held_type)
        self.ref = ref

    async def fetch(self) -> Any:
        return await self.ref

    def fetch_blocking(self) -> Any:
        import ray

        return ray.get(self.ref)

    def __reduce__(self) -> tuple[Any, ...]:
        return (RayHeld, (self.ref, self.held_type))

    def __repr__(self) -> str:
        return f"RayHeld({self.held_type.__qualname__}, {self.ref!r})"


def is_large(value: Any, threshold: int) -> bool:
    """Whether ``value`` holds at least ``threshold`` bytes of payload (a cheap estimate).

    Counts the bytes of ``bytes``/``bytearray``/``memoryview``/``str``, ``nbytes`` of arrays,
    and walks containers, dataclasses, pydantic models and plain objects' ``__dict__``; stops
    as soon as the total reaches ``threshold`` (or after ``_MAX_VISITS`` objects: a message
    with that many parts is treated as large).
    """
    total = 0
    stack = [value]
    visits = 0
    while stack:
        v = stack.pop()
        visits += 1
        if visits > _MAX_VISITS:
            return True
        t = type(v)
        if t is bytes or t is bytearray or t is str:
            total += len(v)
        elif t is memoryview:
            total += v.nbytes
        elif t is list or t is tuple or t is set or t is frozenset:
            stack.extend(v)
            total += 8 * len(v)
        elif t is dict:
            stack.extend(v.keys())
            stack.extend(v.values())
        elif v is None or t is int or t is float or t is bool:
            total += 8
        elif isinstance(getattr(v, "nbytes", None), int):  # numpy arrays and the like
            total += v.nbytes
        elif dataclasses.is_dataclass(v):
            stack.extend(getattr(v, f.name) for f in dataclasses.fields(v))
        elif isinstance(getattr(v, "__dict__", None), dict):  # pydantic models, plain objects
            stack.extend(v.__dict__.values())
        else:
            total += 64
        if total >= threshold:
            return True
    return False


def hold_sends(outcome: InvocationOutcome, threshold: int | None) -> InvocationOutcome:
    """``outcome`` with its large sent values put in the object store (worker side)."""
    if threshold is None or not outcome.sends:
        return outcome
    sends = outcome.sends
    held: list[tuple[str | None, Any]] | None = None
    for i, (target, message) in enumerate(sends):
        if not isinstance(message, HeldValue) and is_large(message, threshold):
            import ray

            if held is None:
                held = list(sends)
            held[i] = (target, RayHeld(ray.put(message), type(message)))
    return outcome if held is None else outcome._replace(sends=tuple(held))


class HeldMark:
    """A warm actor's stream item announcing that the next item is sent value ``index``.

    A value a streaming actor method yields is a return object the *caller* owns, stored
    where the actor runs; the driver wraps that item's reference without fetching it. (A
    reference ``ray.put`` inside the actor and nested in a yielded outcome is not kept alive
    by Ray's streaming generators: it is freed before the receiver reads it.)
    """

    __slots__ = ("held_type", "index")

    def __init__(self, index: int, held_type: type) -> None:
        self.index = index
        self.held_type = held_type

    def __reduce__(self) -> tuple[Any, ...]:
        return (HeldMark, (self.index, self.held_type))


def split_large(
    outcome: InvocationOutcome, threshold: int | None
) -> tuple[InvocationOutcome, list[tuple[int, Any]]]:
    """``outcome`` without its large sent values (``None`` in their place), and those values
    by send index (actor side: they are yielded as stream items of their own)."""
    if threshold is None or not outcome.sends:
        return outcome, []
    large = [
        (i, message)
        for i, (_, message) in enumerate(outcome.sends)
        if not isinstance(message, HeldValue) and is_large(message, threshold)
    ]
    if not large:
        return outcome, []
    indices = {i for i, _ in large}
    sends = tuple(
        (target, None if i in indices else message)
        for i, (target, message) in enumerate(outcome.sends)
    )
    return outcome._replace(sends=sends), large


def attach_held(outcome: InvocationOutcome, held: dict[int, RayHeld]) -> InvocationOutcome:
    """Inverse of :func:`split_large` on the driver: handles where the values were."""
    if not held:
        return outcome
    sends = tuple(
        (target, held.get(i, message)) for i, (target, message) in enumerate(outcome.sends)
    )
    return outcome._replace(sends=sends)


class LostMessageError(WorkflowError, RuntimeError):
    """A large message held in Ray's object store was lost before its receiver read it."""


def _lost(request: InvocationRequest, exc: BaseException) -> LostMessageError:
    sources = sorted(
        {
            repr(source) if source is not None else "a fan-in"
            for source, message, _ in request.deliveries
            if isinstance(message, RayHeld)
            or (type(message) is list and any(isinstance(m, RayHeld) for m in message))
        }
    )
    return LostMessageError(
        f"executor {request.executor_id!r} cannot read a large message sent to it (from "
        f"{', '.join(sources)}): Ray lost the value with the worker or node that held it "
        f"({type(exc).__name__}). Resume the run from its last checkpoint (a durable run's "
        f"checkpoints hold the value), or raise RayBackend(large_message_bytes=...) to send "
        f"such values through the driver"
    )


def _refs(request: InvocationRequest) -> list[Any]:
    refs = []
    for _, message, _ in request.deliveries:
        if isinstance(message, RayHeld):
            refs.append(message.ref)
        elif type(message) is list:  # a fan-in's batch
            refs.extend(m.ref for m in message if isinstance(m, RayHeld))
    return refs


def _replace(request: InvocationRequest, values: list[Any]) -> InvocationRequest:
    it = iter(values)
    deliveries = []
    for source, message, reply in request.deliveries:
        if isinstance(message, RayHeld):
            message = next(it)
        elif type(message) is list and any(isinstance(m, RayHeld) for m in message):
            message = [next(it) if isinstance(m, RayHeld) else m for m in message]
        deliveries.append((source, message, reply))
    return request._replace(deliveries=tuple(deliveries))


def resolve_request(request: InvocationRequest) -> InvocationRequest:
    """``request`` with its held messages fetched into this (worker) process."""
    refs = _refs(request)
    if not refs:
        return request
    import ray

    try:
        values = ray.get(refs)
    except ray.exceptions.ObjectLostError as exc:
        raise _lost(request, exc) from exc
    return _replace(request, values)


async def resolve_request_async(request: InvocationRequest) -> InvocationRequest:
    """:func:`resolve_request` for an asynchronous actor (awaits instead of blocking)."""
    refs = _refs(request)
    if not refs:
        return request
    import ray

    try:
        values = [await ref for ref in refs]  # Ray's refs are awaitable
    except ray.exceptions.ObjectLostError as exc:
        raise _lost(request, exc) from exc
    return _replace(request, values)
