"""JSON encoding of checkpointed values, with a type allowlist and content-addressed blobs.

Why not pickle: checkpoints outlive the process that wrote them and can be edited on disk, so
decoding must never import a module or call anything the workflow did not register. Decoding
only ever looks names up in a :class:`TypeRegistry`.

Wire format (what :func:`encode` produces, a plain JSON tree):

* ``None``, ``bool``, ``int``, finite ``float``, ``str``, ``list`` and ``dict`` with ``str``
  keys whose insertion order is sorted stay as they are. A key starting with ``$`` is escaped by
  doubling the ``$`` (``"$x"`` → ``"$$x"``), so ``$``-keys are ours alone.
* Everything else is a tagged object ``{"$type": "module:QualName", ...}``: ``tuple``, ``set``,
  ``frozenset``, ``bytes``, NaN/±inf, ints beyond Python's 4300-digit ``str`` limit, dicts with
  non-``str`` keys or unsorted insertion order (``items``: key/value pairs, so order survives),
  ``datetime``/``date`` (ISO; a zone becomes its fixed offset), ``UUID``, ``Decimal``, and
  *registered* dataclasses, pydantic models and Enums.
* Registering a dataclass or model also registers the dataclasses, models and Enums named in
  its field annotations (recursively); types reached only through ``Any`` or unresolvable
  forward references must be registered explicitly.
* Dataclasses are rebuilt by calling the class with their ``init`` fields; pydantic models with
  ``model_validate``. Inside a model's fields, values of types pydantic itself knows (``Path``,
  ``IPv4Address``, ...) are stored in pydantic's JSON form and rebuilt by validation.

:func:`pack` / :func:`unpack` then split large sub-trees into content-addressed blobs so a large
value carried unchanged through many checkpoints is stored once.

This module is the encoder and decoder; the allowlist is ``_serde_registry``, the bytes and
blobs ``_serde_blobs``; every name stays importable from here.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from typing import Any

import pydantic_core

from ._errors import CheckpointError
from ._invocation import HeldValue
from ._serde_blobs import JSON, dumps, loads, pack, unpack
from ._serde_registry import (
    _BUILTIN_NAMES,
    SerializationError,
    TypeRegistry,
    _Fail,
    _Kind,
    _kind_of,
    _short_repr,
    _unknown_type,
    _unregistered,
)

__all__ = (
    "JSON",
    "SerializationError",
    "TypeRegistry",
    "decode",
    "dumps",
    "encode",
    "loads",
    "pack",
    "unpack",
)

_TAG = "$type"
_BIG_INT_BITS = 14_000  # below Python's 4300-digit int<->str limit


# --------------------------------------------------------------------------- encode / decode


def _escape(key: str) -> str:
    return "$" + key if key[:1] == "$" else key


class _Encoder:
    __slots__ = ("active", "registry")

    def __init__(self, registry: TypeRegistry) -> None:
        self.registry = registry
        self.active: set[int] = set()

    def enter(self, value: object) -> int:
        ident = id(value)
        if ident in self.active:
            raise _Fail(f"cyclic reference to a {type(value).__qualname__}; checkpoints hold trees")
        self.active.add(ident)
        return ident

    def enc(self, v: Any, lenient: bool) -> JSON:
        t = type(v)
        if t is str or t is bool or v is None:
            return v
        if t is int:
            return v if v.bit_length() <= _BIG_INT_BITS else {_TAG: "builtins:int", "hex": hex(v)}
        if t is float:
            return v if math.isfinite(v) else {_TAG: "builtins:float", "value": repr(v)}
        if t is list or t is tuple:
            ident = self.enter(v)
            out: list[JSON] = []
            i = 0
            try:
                for i, item in enumerate(v):  # noqa: B007 - i is read by the handler
                    out.append(self.enc(item, lenient))
            except _Fail as fail:
                fail.segments.append(f"[{i}]")
                raise
            self.active.discard(ident)
            return out if t is list else {_TAG: "builtins:tuple", "items": out}
        if t is dict:
            return self.enc_dict(v, lenient)
        if t is set or t is frozenset:
            ident = self.enter(v)
            try:
                items = [self.enc(item, lenient) for item in v]
            except _Fail as fail:
                fail.segments.append("{<item>}")
                raise
            self.active.discard(ident)
            items.sort(key=dumps)  # canonical order, so equal sets encode (and hash) alike
            return {_TAG: _BUILTIN_NAMES[t], "items": items}
        if t is bytes:
            return {_TAG: "builtins:bytes", "base64": base64.b64encode(v).decode("ascii")}
        if t is dt.datetime or t is dt.date:
            return {_TAG: _BUILTIN_NAMES[t], "iso": v.isoformat()}
        if t is uuid.UUID:
            return {_TAG: "uuid:UUID", "hex": v.hex}
        if t is decimal.Decimal:
            return {_TAG: "decimal:Decimal", "value": str(v)}
        entry = self.registry._by_type.get(t)
        if entry is not None:
            return self.enc_registered(v, t, entry[0], entry[1])
        if isinstance(v, HeldValue):  # held outside this process: a checkpoint keeps the value
            return self.enc(v.fetch_blocking(), lenient)
        if not lenient or _kind_of(t) is not None:
            if _kind_of(t) is not None:
                raise _Fail(_unregistered(t))
            raise _Fail(
                f"type {t.__qualname__} is not serializable; make it a dataclass or pydantic "
                f"model registered with WorkflowBuilder(..., types=[{t.__qualname__}]) "
                f"(got {_short_repr(v)})"
            )
        try:  # inside a pydantic model: its own JSON form, rebuilt by validation
            plain = pydantic_core.to_jsonable_python(v)
        except pydantic_core.PydanticSerializationError as exc:
            raise _Fail(
                f"type {t.__qualname__} is not serializable by pydantic either: {exc}"
            ) from None
        return self.enc(plain, lenient=False)

    def enc_dict(self, v: dict[Any, Any], lenient: bool) -> JSON:
        ident = self.enter(v)
        keys = list(v)
        plain = all(type(k) is str for k in keys) and keys == sorted(keys)
        key: Any = None
        try:
            if plain:
                out = {}
                for key, item in v.items():
                    out[_escape(key)] = self.enc(item, lenient)
                result: JSON = out
            else:
                pairs = []
                for key, item in v.items():
                    pairs.append([self.enc(key, lenient), self.enc(item, lenient)])
                result = {_TAG: "builtins:dict", "items": pairs}
        except _Fail as fail:
            fail.segments.append(f"[{key!r}]")
            raise
        self.active.discard(ident)
        return result

    def enc_registered(self, v: Any, t: type, name: str, kind: _Kind) -> JSON:
        if kind is _Kind.ENUM:
            try:
                return {_TAG: name, "value": self.enc(v.value, lenient=False)}
            except _Fail as fail:
                fail.segments.append(".value")
                raise
        ident = self.enter(v)
        out: dict[str, JSON] = {_TAG: name}
        field = ""
        try:
            if kind is _Kind.DATACLASS:
                for field in self.registry._init_fields[t]:
                    out[field] = self.enc(getattr(v, field), lenient=False)
            else:
                for field in type(v).model_fields:
                    out[field] = self.enc(getattr(v, field), lenient=True)
                for field, item in (v.__pydantic_extra__ or {}).items():
                    out[_escape(field)] = self.enc(item, lenient=True)
        except _Fail as fail:
            fail.segments.append(f".{field}")
            raise
        self.active.discard(ident)
        return out


def encode(value: Any, registry: TypeRegistry, *, path: str = "value") -> JSON:
    """Turn ``value`` into a JSON tree, or raise :class:`SerializationError` naming where."""
    try:
        return _Encoder(registry).enc(value, lenient=False)
    except _Fail as fail:
        raise SerializationError(f"{fail.path(path)}: {fail.message}") from None
    except RecursionError:
        raise SerializationError(f"{path}: value is nested too deeply to checkpoint") from None


def _expect(d: dict[str, Any], *keys: str) -> None:
    if len(d) != len(keys) + 1 or any(k not in d for k in keys):
        raise _Fail(f"malformed {d[_TAG]} object: expected keys {[_TAG, *keys]}, got {list(d)}")


class _Decoder:
    __slots__ = ("registry",)

    def __init__(self, registry: TypeRegistry) -> None:
        self.registry = registry

    def dec(self, d: JSON) -> Any:
        t = type(d)
        if t is str or t is int or t is bool or t is float or d is None:
            return d
        if t is list:
            i = 0
            try:
                return [self.dec(x) for i, x in enumerate(d)]
            except _Fail as fail:
                fail.segments.append(f"[{i}]")
                raise
        if t is dict:
            tag = d.get(_TAG)
            if tag is not None:
                return self.tagged(tag, d)
            out = {}
            key = ""
            try:
                for key, item in d.items():
                    if key[:1] == "$":
                        if key[:2] != "$$":
                            raise _Fail(f"unexpected reserved key {key!r} (not written by encode)")
                        out[key[1:]] = self.dec(item)
                    else:
                        out[key] = self.dec(item)
            except _Fail as fail:
                fail.segments.append(f"[{key!r}]")
                raise
            return out
        raise _Fail(f"not a JSON value: {type(d).__qualname__}")

    def items(self, d: dict[str, Any]) -> list[Any]:
        _expect(d, "items")
        if type(d["items"]) is not list:
            raise _Fail(f"malformed {d[_TAG]} object: items is not a list")
        return self.dec(d["items"])  # type: ignore[no-any-return]

    def tagged(self, tag: Any, d: dict[str, Any]) -> Any:
        if type(tag) is not str:
            raise _Fail(f"malformed $type {tag!r}")
        try:
            if tag == "builtins:tuple":
                return tuple(self.items(d))
            if tag == "builtins:set":
                return set(self.items(d))
            if tag == "builtins:frozenset":
                return frozenset(self.items(d))
            if tag == "builtins:dict":
                return {k: v for k, v in self.items(d)}  # noqa: C416 - pairs are lists
            if tag == "builtins:bytes":
                _expect(d, "base64")
                return base64.b64decode(d["base64"], validate=True)
            if tag == "builtins:float":
                _expect(d, "value")
                if d["value"] not in ("nan", "inf", "-inf"):
                    raise _Fail(f"malformed float {d['value']!r}")
                return float(d["value"])
            if tag == "builtins:int":
                _expect(d, "hex")
                return int(d["hex"], 16)
            if tag == "datetime:datetime":
                _expect(d, "iso")
                return dt.datetime.fromisoformat(d["iso"])
            if tag == "datetime:date":
                _expect(d, "iso")
                return dt.date.fromisoformat(d["iso"])
            if tag == "uuid:UUID":
                _expect(d, "hex")
                return uuid.UUID(hex=d["hex"])
            if tag == "decimal:Decimal":
                _expect(d, "value")
                return decimal.Decimal(d["value"])
        except _Fail:
            raise
        except (ValueError, TypeError, decimal.InvalidOperation) as exc:
            raise _Fail(f"malformed {tag} object: {exc}") from None
        tp = self.registry._by_name.get(tag)
        if tp is None:
            raise _Fail(_unknown_type(tag))
        return self.registered(tp, tag, d)

    def registered(self, tp: type, tag: str, d: dict[str, Any]) -> Any:
        kind = self.registry._by_type[tp][1]
        if kind is _Kind.ENUM:
            _expect(d, "value")
            try:
                return tp(self.dec(d["value"]))
            except ValueError as exc:
                raise _Fail(f"cannot rebuild {tag}: {exc}") from None
        fields: dict[str, Any] = {}
        key = ""
        try:
            for key, item in d.items():
                if key != _TAG:
                    fields[key[1:] if key[:2] == "$$" else key] = self.dec(item)
        except _Fail as fail:
            fail.segments.append(f".{key}")
            raise
        try:
            if kind is _Kind.DATACLASS:
                return tp(**fields)
            model: Any = tp
            if tp in self.registry._aliased:
                return model.model_validate(fields, by_alias=False, by_name=True)
            return model.model_validate(fields)
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            raise _Fail(f"cannot rebuild {tag}: {exc}") from None


def decode(data: JSON, registry: TypeRegistry) -> Any:
    """Rebuild the value :func:`encode` produced; only registered classes are ever called."""
    try:
        return _Decoder(registry).dec(data)
    except _Fail as fail:
        raise CheckpointError(f"cannot decode {fail.path('value')}: {fail.message}") from None
    except RecursionError:
        raise CheckpointError("cannot decode value: nested too deeply") from None
