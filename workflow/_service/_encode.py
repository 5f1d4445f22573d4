"""Plain JSON for HTTP clients: events, outputs, payloads and JSON Schemas of Python types.

Checkpoints use the tagged encoding of ``workflow._serde`` (it must round-trip); a browser or a
script in another language wants plain objects instead: a dataclass or model becomes an object
of its fields, an enum its value, a tuple or set a list, bytes base64, a type its JSON Schema.
pydantic's serializer does this in one pass (and masks ``SecretStr``); anything it cannot
express becomes the type's name, never its ``repr`` (a repr can carry a key). Error texts go
through the telemetry redactor for the same reason.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable
from typing import Any, Union

import pydantic_core
from pydantic import TypeAdapter

from workflow._result import PendingRequest
from workflow._telemetry import redact
from workflow.events import WorkflowEvent

__all__ = (
    "adapter",
    "dumps",
    "event_body",
    "event_json",
    "input_adapter",
    "pending_json",
    "plain",
    "schema_of",
)


def _fallback(value: Any) -> Any:
    if isinstance(value, type) or _is_typing(value):
        return schema_of(value)
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return f"<{type(value).__qualname__}>"


def _is_typing(value: Any) -> bool:
    return type(value).__module__ in ("typing", "types")


def plain(value: Any) -> Any:
    """A JSON-able tree for ``value`` (see the module docstring)."""
    return pydantic_core.to_jsonable_python(
        value, fallback=_fallback, bytes_mode="base64", inf_nan_mode="null"
    )


def dumps(value: Any) -> str:
    """Compact JSON text of a plain tree (NaN and infinities become null)."""
    return _to_json(value).decode()


def _to_json(value: Any) -> bytes:
    return pydantic_core.to_json(
        value, fallback=_fallback, bytes_mode="base64", inf_nan_mode="null"
    )


@functools.lru_cache(maxsize=512)
def adapter(tp: Any) -> TypeAdapter[Any]:
    """One cached ``TypeAdapter`` per type (building one costs far more than using it)."""
    return TypeAdapter(tp)


@functools.lru_cache(maxsize=512)
def _schema(tp: Any) -> str:
    try:
        return json.dumps(adapter(tp).json_schema())
    except Exception:  # a type pydantic cannot describe: accept any JSON
        return "{}"


def schema_of(tp: Any) -> dict[str, Any]:
    """The JSON Schema of ``tp`` (``{}`` for ``Any``, ``object`` or what pydantic can't draw)."""
    if tp is object or tp is Any or tp is None:
        return {}
    try:
        result: dict[str, Any] = json.loads(_schema(tp))
    except TypeError:  # unhashable annotation
        return {}
    return result


def input_adapter(types: Iterable[type] | None) -> TypeAdapter[Any] | None:
    """The adapter that turns JSON into what the start executor accepts (``None``: anything)."""
    if types is None:
        return None
    found = tuple(types)
    if not found or object in found:
        return None
    tp: Any = found[0] if len(found) == 1 else Union[found]  # noqa: UP007 - built at runtime
    return adapter(tp)


def pending_json(request: PendingRequest) -> dict[str, Any]:
    """A pending request as the API shows it: its answer's schema instead of a Python type."""
    return {
        "request_id": request.request_id,
        "executor_id": request.executor_id,
        "payload": plain(request.payload),
        "response_schema": schema_of(request.response_type),
    }


_SPECIAL = frozenset({"pending_requests", "response_type", "error"})
_PLAIN_EVENTS: dict[type, bytes | None] = {}  # class -> b'{"type":"Name",' (None: special)


def event_json(event: WorkflowEvent) -> str:
    """``event_body(event)`` as JSON text; most events in one pass of pydantic's serializer."""
    cls = type(event)
    prefix = _PLAIN_EVENTS.get(cls, b"")
    if prefix == b"":
        names = {f.name for f in dataclasses.fields(event)}
        prefix = None if names & _SPECIAL else b'{"type":' + dumps(cls.__name__).encode() + b","
        _PLAIN_EVENTS[cls] = prefix
    if prefix is None:
        return dumps(event_body(event))
    return (prefix + _to_json(event)[1:]).decode()


def event_body(event: WorkflowEvent) -> dict[str, Any]:
    """``{"type": ClassName, "run_id", "superstep", ...fields}`` for one event."""
    body: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "pending_requests":
            body[f.name] = [
                pending_json(r) if isinstance(r, PendingRequest) else plain(r) for r in value
            ]
        elif f.name == "response_type":
            body["response_schema"] = schema_of(value)
        elif f.name == "error" and isinstance(value, str):
            body[f.name] = redact(value)
        else:
            body[f.name] = plain(value)
    return body
