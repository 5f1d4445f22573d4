"""Reading payload version 1: the unversioned layout written before ``_schema``.

Its layout is validated like version 2's (unknown or missing fields are refused, naming the
field); the positional records (requests, deliveries, fan-in buffers) are read here and only
here, into the same in-memory records version 2 gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ._result import PendingRequest
from ._runstate import RunState
from ._schema import _field, _Model, _validate
from ._serde import JSON, TypeRegistry, decode
from ._types import RunStatus

__all__ = ("load_record_v1", "load_run_v1")


class RunV1(_Model):
    run_id: str
    superstep: int = Field(ge=0)
    seq: int = Field(ge=0)
    checkpoint_count: int = Field(default=0, ge=0)
    status: str
    inbox: JSON  # encoded [[target, [[key, seq, source, message, reply], ...]], ...]
    state: JSON
    local: JSON
    fan_in: JSON  # encoded [[group, [(source, [messages]), ...]], ...]
    pending: list[list[Any]]  # [[id, executor, payload, type(, owner, envelope)], ...]
    outputs: JSON


class CheckpointDataV1(_Model):
    run: RunV1
    overlay: JSON = None
    graph: JSON = None


class PendingWriteV1(_Model):
    deliveries: JSON  # encoded [[target, key, message], ...]
    fan_in: JSON  # encoded [[group, message], ...]
    outputs: JSON
    state: JSON
    local: JSON
    requests: list[list[Any]]
    dropped: JSON  # encoded [[target, message type, reason], ...]


def _request(r: list[Any], registry: TypeRegistry, what: str, where: str) -> PendingRequest:
    def read() -> PendingRequest:
        raw = PendingRequest.from_fields(r)
        via = raw.via
        return PendingRequest(
            raw.request_id,
            raw.executor_id,
            decode(raw.payload, registry),
            registry.name_to_type(raw.response_type),
            None if via is None else (via[0], decode(via[1], registry)),
        )

    request: PendingRequest = _field(what, where, read)
    return request


def load_run_v1(data: Mapping[str, Any], registry: TypeRegistry, what: str) -> RunState:
    """The ``RunState`` of a version-1 checkpoint's ``data``."""
    run = _validate(CheckpointDataV1, data, what).run

    def get(where: str, tree: JSON) -> Any:
        return _field(what, f"run.{where}", lambda: decode(tree, registry))

    inbox, fan_in = get("inbox", run.inbox), get("fan_in", run.fan_in)
    state, local, outputs = (
        get("state", run.state),
        get("local", run.local),
        get("outputs", run.outputs),
    )
    pending = [_request(r, registry, what, f"run.pending.{i}") for i, r in enumerate(run.pending)]
    loaded: RunState = _field(
        what,
        "run.inbox/fan_in/state/local",
        lambda: RunState(
            run_id=run.run_id,
            superstep=run.superstep,
            seq=run.seq,
            inbox={eid: [tuple(d) for d in box] for eid, box in inbox},
            state=dict(state),
            local={k: dict(v) for k, v in local.items()},
            fan_in={int(gi): {s: list(m) for s, m in bufs} for gi, bufs in fan_in},
            pending={req.request_id: req for req in pending},
            outputs=list(outputs),
            status=RunStatus(run.status),
            checkpoint_count=run.checkpoint_count,
        ),
    )
    return loaded


def load_record_v1(data: Mapping[str, Any], registry: TypeRegistry, what: str) -> dict[str, Any]:
    """The fields of an ``InvocationRecord`` a version-1 pending write holds."""
    w = _validate(PendingWriteV1, data, what)

    def get(where: str, tree: JSON) -> Any:
        return _field(what, where, lambda: decode(tree, registry))

    deliveries, fan_in, dropped = (
        get("deliveries", w.deliveries),
        get("fan_in", w.fan_in),
        get("dropped", w.dropped),
    )
    fields: dict[str, Any] = _field(
        what,
        "deliveries/fan_in/dropped",
        lambda: {
            "deliveries": tuple((d[0], d[1], d[2]) for d in deliveries),
            "fan_in": tuple((f[0], f[1]) for f in fan_in),
            "dropped": tuple((d[0], d[1], d[2]) for d in dropped),
        },
    )
    fields["outputs"] = tuple(get("outputs", w.outputs))
    fields["state_writes"] = dict(get("state", w.state))
    fields["local_writes"] = dict(get("local", w.local))
    fields["requests"] = tuple(
        _request(r, registry, what, f"requests.{i}") for i, r in enumerate(w.requests)
    )
    return fields
