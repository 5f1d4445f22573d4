"""The checkpoint payload's schema: typed models, an explicit version, validated on load.

A checkpoint's ``data`` (what the engine stores in a ``Checkpoint``) and each pending write
are JSON trees. Their *layout* is described here by pydantic models that forbid unknown
fields; their *values* (messages, state, outputs, payloads) are trees of the serializer
(``_serde``), decoded only through the workflow's allowlist. Loading validates the layout
first, then decodes value by value, so an edited or foreign checkpoint is refused with a
``CheckpointError`` naming the checkpoint and the field (``run.pending.0.response_type``).

Versions (``data["version"]``, and ``"version"`` in a pending write):

* 1 (no ``version`` key): written before this module. Requests were positional lists
  (``[id, executor, payload, type(, owner, envelope)]``), the inbox ``[[target, [[key, seq,
  source, message, reply], ...]], ...]`` and fan-in buffers ``[[group, [(source, [msgs])]]]``,
  each encoded as one tree. Still read (``_schema_v1``).
* 2: every record named: requests, deliveries in flight, fan-in buffers, sends, drops.

Nothing here is pickled; no version imports or calls anything the allowlist does not name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ._checkpoint import RUN_STATUSES
from ._commit import InvocationRecord, RunSnapshot, count_sent
from ._errors import CheckpointError
from ._result import PendingRequest
from ._runstate import RunState
from ._serde import JSON, TypeRegistry, decode, encode
from ._types import RunStatus

__all__ = (
    "VERSION",
    "CheckpointData",
    "PendingWrite",
    "dump_record",
    "dump_request",
    "dump_run",
    "load_record",
    "load_request",
    "load_run",
)

VERSION = 2
"""The payload layout this code writes; it reads this one and every earlier one."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Via(_Model):
    """A nested workflow's question: the node of this run that takes the answer."""

    owner: str
    envelope: JSON  # the request that node receives with the answer (encoded)


class Request(_Model):
    """An unanswered ``ctx.request_info`` question."""

    request_id: str
    executor_id: str
    payload: JSON
    response_type: str  # the allowlist's name of the type
    via: Via | None = None


class InFlight(_Model):
    """A message delivered to ``target``, waiting for the next superstep."""

    key: int  # order key: edge position, -1 for the run's input and human replies
    seq: int  # send sequence: order among equal keys
    source: str | None
    message: JSON
    reply: bool


class Inbox(_Model):
    target: str
    deliveries: list[InFlight]


class FanInBuffer(_Model):
    """Messages from ``source`` waiting in fan-in group ``group`` for the other sources."""

    group: int = Field(ge=0)
    source: str
    messages: JSON  # an encoded list


class Run(_Model):
    """The committed state of a run at a superstep boundary."""

    run_id: str
    superstep: int = Field(ge=0)
    seq: int = Field(ge=0)
    checkpoint_count: int = Field(ge=0)
    status: str
    inbox: list[Inbox]
    state: JSON  # an encoded dict
    local: JSON  # an encoded dict of dicts, by executor id
    fan_in: list[FanInBuffer]
    pending: list[Request]
    outputs: JSON  # an encoded list

    @field_validator("status")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RUN_STATUSES:
            raise ValueError(f"unknown run status {value!r}")
        return value


class Overlay(_Model):
    """What the superstep before the checkpoint did, for diagrams."""

    ran: list[str]
    messages: dict[str, int]


class CheckpointData(_Model):
    """A checkpoint's ``data``."""

    version: Literal[2]
    run: Run
    overlay: Overlay
    graph: dict[str, Any] | None = None  # the graph's description, in a run's first one


class Send(_Model):
    target: str
    key: int
    message: JSON


class Contribution(_Model):
    group: int = Field(ge=0)
    message: JSON


class Drop(_Model):
    target: str
    message_type: str
    reason: str


class PendingWrite(_Model):
    """A finished invocation recorded after a checkpoint (``InvocationRecord``)."""

    version: Literal[2]
    deliveries: list[Send]
    fan_in: list[Contribution]
    outputs: JSON  # an encoded list
    state: JSON  # an encoded dict
    local: JSON  # an encoded dict
    requests: list[Request]
    dropped: list[Drop]


# ---------------------------------------------------------------------------- writing


def dump_request(
    r: PendingRequest, registry: TypeRegistry, *, where: str | None = None
) -> dict[str, Any]:
    """``r`` as a ``Request`` tree (``where`` names it in a ``SerializationError``)."""
    where = where or f"request {r.request_id!r}"
    return {
        "request_id": r.request_id,
        "executor_id": r.executor_id,
        "payload": encode(r.payload, registry, path=f"{where}.payload"),
        "response_type": registry.type_to_name(r.response_type),
        "via": None
        if r.via is None
        else {
            "owner": r.via[0],
            "envelope": encode(r.via[1], registry, path=f"{where}.envelope"),
        },
    }


def dump_run(snap: RunSnapshot, checkpoint_count: int, registry: TypeRegistry) -> dict[str, Any]:
    """``snap`` as a ``Run`` tree (raises ``SerializationError`` naming the culprit)."""
    return {
        "run_id": snap.run_id,
        "superstep": snap.superstep,
        "seq": snap.seq,
        "checkpoint_count": checkpoint_count,
        "status": snap.status.value,
        "inbox": [
            {
                "target": target,
                "deliveries": [
                    {
                        "key": d[0],
                        "seq": d[1],
                        "source": d[2],
                        "message": encode(d[3], registry, path=f"message in flight to {target!r}"),
                        "reply": d[4],
                    }
                    for d in box
                ],
            }
            for target, box in snap.inbox.items()
        ],
        "state": encode(dict(snap.state), registry, path="state"),
        "local": encode(
            {eid: dict(v) for eid, v in snap.local.items()}, registry, path="executor_state"
        ),
        "fan_in": [
            {
                "group": gi,
                "source": source,
                "messages": encode(list(msgs), registry, path=f"fan-in buffer of {source!r}"),
            }
            for gi, bufs in snap.fan_in.items()
            for source, msgs in bufs.items()
        ],
        "pending": [dump_request(r, registry) for r in snap.pending],
        "outputs": encode(list(snap.outputs), registry, path="outputs"),
    }


def dump_record(record: InvocationRecord, registry: TypeRegistry) -> dict[str, Any]:
    """``record`` as a ``PendingWrite`` tree (raises ``SerializationError`` naming it)."""
    where = f"executor {record.executor_id!r}"
    return {
        "version": VERSION,
        "deliveries": [
            {
                "target": target,
                "key": key,
                "message": encode(message, registry, path=f"{where} message to {target!r}"),
            }
            for target, key, message in record.deliveries
        ],
        "fan_in": [
            {"group": gi, "message": encode(message, registry, path=f"{where} fan_in")}
            for gi, message in record.fan_in
        ],
        "outputs": encode(list(record.outputs), registry, path=f"{where} outputs"),
        "state": encode(dict(record.state_writes), registry, path=f"{where} state"),
        "local": encode(dict(record.local_writes), registry, path=f"{where} local"),
        "requests": [dump_request(r, registry) for r in record.requests],
        "dropped": [
            {"target": t, "message_type": mt, "reason": reason} for t, mt, reason in record.dropped
        ],
    }


# ---------------------------------------------------------------------------- reading

_M = TypeVar("_M", bound=BaseModel)


def _validate(model: type[_M], data: Any, what: str) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        raise CheckpointError(
            f"{what} is invalid at {where}: {first['msg']} ({exc.error_count()} problem(s)); "
            "resume from (or fork off) an earlier checkpoint instead"
        ) from None


def _field(what: str, where: str, fn: Callable[[], Any]) -> Any:
    """Decode one field's values, naming the field when they cannot be."""
    try:
        return fn()
    except (CheckpointError, KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(
            f"{what} cannot be decoded at {where} ({exc}); "
            "resume from (or fork off) an earlier checkpoint instead"
        ) from None


def _decoded(tree: JSON, registry: TypeRegistry, what: str, where: str, kind: type = object) -> Any:
    """Decode one field's values, and check the container they make."""
    value = _field(what, where, lambda: decode(tree, registry))
    if not isinstance(value, kind):
        raise CheckpointError(
            f"{what} is invalid at {where}: expected a {kind.__name__}, found "
            f"{type(value).__name__}; resume from (or fork off) an earlier checkpoint instead"
        )
    return value


def _own_states(local: dict[str, Any], what: str) -> dict[str, dict[str, Any]]:
    for eid, values in local.items():
        if not isinstance(values, dict):
            raise CheckpointError(
                f"{what} is invalid at run.local.{eid}: expected a dict, found "
                f"{type(values).__name__}; resume from (or fork off) an earlier checkpoint instead"
            )
    return local


def _load_request(r: Request, registry: TypeRegistry, what: str, where: str) -> PendingRequest:
    return PendingRequest(
        r.request_id,
        r.executor_id,
        _field(what, f"{where}.payload", lambda: decode(r.payload, registry)),
        _field(what, f"{where}.response_type", lambda: registry.name_to_type(r.response_type)),
        None
        if r.via is None
        else (
            r.via.owner,
            _field(what, f"{where}.via.envelope", lambda: decode(r.via.envelope, registry)),  # type: ignore[union-attr]
        ),
    )


def load_request(data: Any, registry: TypeRegistry, *, what: str = "a request") -> PendingRequest:
    """The ``PendingRequest`` a ``Request`` tree holds (validated, then decoded)."""
    return _load_request(_validate(Request, data, what), registry, what, "request")


def load_run(data: Mapping[str, Any], registry: TypeRegistry, *, checkpoint_id: str) -> RunState:
    """The ``RunState`` a checkpoint's ``data`` holds, of any version this code reads."""
    what = f"checkpoint {checkpoint_id!r}"
    version = data.get("version", 1) if isinstance(data, Mapping) else None
    if version == 1:
        from ._schema_v1 import load_run_v1

        return load_run_v1(data, registry, what)
    if version != VERSION:
        raise CheckpointError(
            f"{what} has payload version {version!r}; this ledgerflow reads versions 1 to "
            f"{VERSION}: resume it with the release that wrote it"
        )
    run = _validate(CheckpointData, data, what).run

    def get(where: str, tree: JSON, kind: type = object) -> Any:
        return _decoded(tree, registry, what, f"run.{where}", kind)

    fan_in: dict[int, dict[str, list[Any]]] = {}
    for i, buf in enumerate(run.fan_in):
        messages = get(f"fan_in.{i}.messages", buf.messages, list)
        fan_in.setdefault(buf.group, {})[buf.source] = list(messages)
    return RunState(
        run_id=run.run_id,
        superstep=run.superstep,
        seq=run.seq,
        inbox={
            box.target: [
                (d.key, d.seq, d.source, get(f"inbox.{i}.deliveries.{j}", d.message), d.reply)
                for j, d in enumerate(box.deliveries)
            ]
            for i, box in enumerate(run.inbox)
        },
        state=get("state", run.state, dict),
        local=_own_states(get("local", run.local, dict), what),
        fan_in=fan_in,
        pending={
            r.request_id: _load_request(r, registry, what, f"run.pending.{i}")
            for i, r in enumerate(run.pending)
        },
        outputs=get("outputs", run.outputs, list),
        status=RunStatus(run.status),
        checkpoint_count=run.checkpoint_count,
    )


def load_record(
    data: Mapping[str, Any],
    registry: TypeRegistry,
    *,
    what: str,
    run_id: str,
    executor_id: str,
    superstep: int,
    fan_in_targets: Mapping[int, str],
) -> InvocationRecord:
    """The ``InvocationRecord`` a pending write holds, of any version this code reads."""
    version = data.get("version", 1) if isinstance(data, Mapping) else None
    if version == 1:
        from ._schema_v1 import load_record_v1

        raw = load_record_v1(data, registry, what)
    elif version == VERSION:
        w = _validate(PendingWrite, data, what)

        def get(where: str, tree: JSON, kind: type = object) -> Any:
            return _decoded(tree, registry, what, where, kind)

        raw = {
            "deliveries": tuple(
                (s.target, s.key, get(f"deliveries.{i}.message", s.message))
                for i, s in enumerate(w.deliveries)
            ),
            "fan_in": tuple(
                (c.group, get(f"fan_in.{i}.message", c.message)) for i, c in enumerate(w.fan_in)
            ),
            "outputs": tuple(get("outputs", w.outputs, list)),
            "state_writes": get("state", w.state, dict),
            "local_writes": get("local", w.local, dict),
            "requests": tuple(
                _load_request(r, registry, what, f"requests.{i}") for i, r in enumerate(w.requests)
            ),
            "dropped": tuple((d.target, d.message_type, d.reason) for d in w.dropped),
        }
    else:
        raise CheckpointError(
            f"{what} has payload version {version!r}; this ledgerflow reads versions 1 to "
            f"{VERSION}: resume it with the release that wrote it"
        )
    unknown = [gi for gi, _ in raw["fan_in"] if gi not in fan_in_targets]
    if unknown:
        raise CheckpointError(f"{what} names fan-in group {unknown[0]!r}, which the graph lacks")
    return InvocationRecord(
        run_id=run_id,
        executor_id=executor_id,
        superstep=superstep,
        messages=count_sent(raw["deliveries"], [fan_in_targets[gi] for gi, _ in raw["fan_in"]]),
        concurrent=True,
        **raw,
    )
