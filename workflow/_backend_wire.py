"""Requests and outcomes on the wire: the checkpoint serializer's JSON, both ways.

A backend that runs invocations elsewhere encodes an ``InvocationRequest`` with
:func:`encode_request` (values through the workflow's type registry, ``_durable.
registry_for``), and the outcome with :func:`encode_outcome`; the other side decodes them.
The encoding is the checkpoint's: nothing is pickled, and decoding imports nothing.
"""

from __future__ import annotations

from ._backend import InvocationOutcome, InvocationRequest
from ._result import PendingRequest
from ._schema import dump_request, load_request
from ._serde import JSON, TypeRegistry, decode, encode

__all__ = ("decode_outcome", "decode_request", "encode_outcome", "encode_request")


def encode_request(request: InvocationRequest, registry: TypeRegistry) -> JSON:
    """``request`` as a JSON tree (raises ``SerializationError`` naming the culprit)."""
    where = f"request of executor {request.executor_id!r}"
    return {
        "run_id": request.run_id,
        "executor_id": request.executor_id,
        "deliveries": [
            [source, encode(message, registry, path=f"{where}: message from {source!r}"), reply]
            for source, message, reply in request.deliveries
        ],
        "state": encode(dict(request.state), registry, path=f"{where}: state"),
        "local": encode(dict(request.local), registry, path=f"{where}: executor_state"),
        "superstep": request.superstep,
        "attempt": request.attempt,
    }


def decode_request(data: JSON, registry: TypeRegistry) -> InvocationRequest:
    """Inverse of :func:`encode_request`."""
    return InvocationRequest(
        run_id=data["run_id"],
        executor_id=data["executor_id"],
        deliveries=tuple(
            (source, decode(message, registry), bool(reply))
            for source, message, reply in data["deliveries"]
        ),
        state=decode(data["state"], registry),
        local=decode(data["local"], registry),
        superstep=int(data["superstep"]),
        attempt=int(data["attempt"]),
    )


def encode_outcome(
    outcome: InvocationOutcome,
    registry: TypeRegistry,
    *,
    executor_id: str = "?",
    events: TypeRegistry | None = None,
) -> JSON:
    """``outcome`` as a JSON tree.

    Events are encoded like any registered value, with ``events`` (the registry naming the
    event classes) when given, else with ``registry``.
    """
    where = f"outcome of executor {executor_id!r}"
    return {
        "sends": [
            [target, encode(message, registry, path=f"{where}: message to {target!r}")]
            for target, message in outcome.sends
        ],
        "outputs": encode(list(outcome.outputs), registry, path=f"{where}: outputs"),
        "state_writes": encode(dict(outcome.state_writes), registry, path=f"{where}: state"),
        "local_writes": encode(
            dict(outcome.local_writes), registry, path=f"{where}: executor_state"
        ),
        "requests": [_encode_request(r, registry, where) for r in outcome.requests],
        "events": encode(list(outcome.events), events or registry, path=f"{where}: events"),
    }


def decode_outcome(
    data: JSON, registry: TypeRegistry, *, events: TypeRegistry | None = None
) -> InvocationOutcome:
    """Inverse of :func:`encode_outcome`."""
    return InvocationOutcome(
        sends=tuple((target, decode(message, registry)) for target, message in data["sends"]),
        outputs=tuple(decode(data["outputs"], registry)),
        state_writes=decode(data["state_writes"], registry),
        local_writes=decode(data["local_writes"], registry),
        requests=tuple(load_request(r, registry) for r in data["requests"]),
        events=tuple(decode(data["events"], events or registry)),
    )


def _encode_request(r: PendingRequest, registry: TypeRegistry, where: str) -> JSON:
    return dump_request(r, registry, where=f"{where}: request {r.request_id!r}")
