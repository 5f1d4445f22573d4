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
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import hashlib
import json
import math
import operator
import re
import threading
import types
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias

import pydantic
import pydantic_core

from ._errors import CheckpointError, WorkflowError
from ._invocation import HeldValue

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

JSON: TypeAlias = Any
"""A JSON tree: None, bool, int, float, str, list of JSON, dict of str to JSON."""

_TAG = "$type"
_BLOB = "$blob"
_BIG_INT_BITS = 14_000  # below Python's 4300-digit int<->str limit
_HEX64 = re.compile(r"[0-9a-f]{64}")
_enc_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


class SerializationError(WorkflowError, TypeError):
    """A value cannot be encoded; the message names where it sits and how to fix it."""


# --------------------------------------------------------------------------- registry

_BUILTIN_TYPES: dict[str, type] = {
    "builtins:NoneType": type(None),
    "builtins:bool": bool,
    "builtins:int": int,
    "builtins:float": float,
    "builtins:str": str,
    "builtins:bytes": bytes,
    "builtins:list": list,
    "builtins:dict": dict,
    "builtins:tuple": tuple,
    "builtins:set": set,
    "builtins:frozenset": frozenset,
    "builtins:object": object,
    "builtins:type": type,
    "datetime:datetime": dt.datetime,
    "datetime:date": dt.date,
    "uuid:UUID": uuid.UUID,
    "decimal:Decimal": decimal.Decimal,
}
_BUILTIN_NAMES = {tp: name for name, tp in _BUILTIN_TYPES.items()}
_GENERIC_ORIGINS = (list, dict, tuple, set, frozenset, type)


class _Kind(enum.Enum):
    DATACLASS = "dataclass"
    MODEL = "pydantic model"
    ENUM = "Enum"


def _kind_of(tp: type) -> _Kind | None:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _Kind.ENUM
    if isinstance(tp, type) and issubclass(tp, pydantic.BaseModel) and tp is not pydantic.BaseModel:
        return _Kind.MODEL
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _Kind.DATACLASS
    return None


class TypeRegistry:
    """The allowlist of classes a checkpoint may contain beyond plain JSON and builtins.

    Args:
        types: dataclasses, pydantic models and Enums to allow; the classes named in their
            field annotations are registered too.
    """

    def __init__(self, types: Iterable[type] = ()) -> None:
        self._by_name: dict[str, type] = {}
        self._by_type: dict[type, tuple[str, _Kind]] = {}
        self._init_fields: dict[type, tuple[str, ...]] = {}
        self._aliased: set[type] = set()
        for tp in types:
            self.register(tp)

    def register(self, tp: type) -> None:
        """Allow ``tp`` (a dataclass, pydantic model or Enum) and the types its fields name."""
        kind = _kind_of(tp)
        if kind is None:
            raise TypeError(
                f"cannot register {tp!r}: only dataclasses, pydantic models and Enums can be "
                "registered (builtins and plain JSON values need no registration)"
            )
        if tp in self._by_type:
            return
        name = f"{tp.__module__}:{tp.__qualname__}"
        other = self._by_name.get(name)
        if other is not None:
            raise ValueError(f"two different types are both named {name!r}; rename one of them")
        self._by_name[name] = tp
        self._by_type[tp] = (name, kind)
        if kind is _Kind.DATACLASS:
            fields = dataclasses.fields(tp)
            self._init_fields[tp] = tuple(f.name for f in fields if f.init)
            try:
                hints: Iterable[Any] = typing.get_type_hints(tp).values()
            except Exception:  # unresolvable forward refs: walk what is already a type
                hints = [f.type for f in fields if not isinstance(f.type, str)]
            for hint in hints:
                self._walk(hint)
        elif kind is _Kind.MODEL:
            model: type[pydantic.BaseModel] = tp
            for field in model.model_fields.values():
                if field.alias is not None or field.validation_alias is not None:
                    self._aliased.add(tp)
                self._walk(field.annotation)

    def _walk(self, annotation: Any) -> None:
        if isinstance(annotation, type):
            if _kind_of(annotation) is not None:
                self.register(annotation)
            return
        for arg in typing.get_args(annotation):
            self._walk(arg)

    def __contains__(self, tp: object) -> bool:
        return tp in self._by_type or tp in _BUILTIN_NAMES

    def name_of(self, tp: type) -> str:
        """The stable ``module:QualName`` of an allowed class."""
        builtin = _BUILTIN_NAMES.get(tp)
        if builtin is not None:
            return builtin
        entry = self._by_type.get(tp)
        if entry is None:
            raise SerializationError(_unregistered(tp))
        return entry[0]

    def resolve(self, name: str) -> type:
        """The allowed class named ``name``; never imports anything."""
        tp = _BUILTIN_TYPES.get(name) or self._by_name.get(name)
        if tp is None:
            raise CheckpointError(_unknown_type(name))
        return tp

    def type_to_name(self, tp: Any) -> str:
        """Name a response type: a class, ``Any``, a builtin generic of them, or a union."""
        if tp is None:
            return "builtins:NoneType"
        if tp is Any:
            return "typing:Any"
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is typing.Annotated:
            return self.type_to_name(args[0])
        if origin is typing.Union or origin is types.UnionType:
            return "typing:Union[" + ", ".join(self.type_to_name(a) for a in args) + "]"
        if origin in _GENERIC_ORIGINS and args:
            parts = ("..." if a is Ellipsis else self.type_to_name(a) for a in args)
            return f"{self.name_of(origin)}[{', '.join(parts)}]"
        if isinstance(tp, type):
            return self.name_of(tp)
        raise SerializationError(
            f"cannot name type {tp!r}; use a class, Any, a builtin container of those "
            "(list[Foo], dict[str, Foo], ...) or a union of them"
        )

    def name_to_type(self, name: str) -> Any:
        """Inverse of :meth:`type_to_name`; raises ``CheckpointError`` for unknown names."""
        if name in _BUILTIN_TYPES or name in self._by_name:
            return self.resolve(name)
        tokens = re.findall(r"[^\[\],\s]+|[\[\],]", name)
        pos = 0

        def parse() -> Any:
            nonlocal pos
            if pos >= len(tokens) or tokens[pos] in "[],":
                raise CheckpointError(f"malformed type name {name!r}")
            head = tokens[pos]
            pos += 1
            if head == "...":
                return Ellipsis
            if pos < len(tokens) and tokens[pos] == "[":
                pos += 1
                args = [parse()]
                while tokens[pos : pos + 1] == [","]:
                    pos += 1
                    args.append(parse())
                if tokens[pos : pos + 1] != ["]"]:
                    raise CheckpointError(f"malformed type name {name!r}")
                pos += 1
                if head == "typing:Union":
                    return functools.reduce(operator.or_, args)
                origin = self.resolve(head)
                if origin not in _GENERIC_ORIGINS:
                    raise CheckpointError(f"malformed type name {name!r}: {head} takes no [...]")
                return origin[tuple(args)]
            if head == "typing:Any":
                return Any
            return self.resolve(head)

        result = parse()
        if pos != len(tokens):
            raise CheckpointError(f"malformed type name {name!r}")
        return result


def _unregistered(tp: type) -> str:
    kind = _kind_of(tp)
    what = f"a {kind.value}" if kind else "not a dataclass or pydantic model"
    return (
        f"type {tp.__qualname__} is {what} but is not registered; register it with "
        f"WorkflowBuilder(..., types=[{tp.__qualname__}])"
    )


def _unknown_type(name: str) -> str:
    return (
        f"unknown type {name!r}: it is not registered, so it was neither imported nor called; "
        "if the workflow really uses it, register it with WorkflowBuilder(..., types=[...])"
    )


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --------------------------------------------------------------------------- encode / decode


class _Fail(Exception):
    """Internal: a failure deep in a tree; frames append their path segment on the way up."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def path(self, root: str) -> str:
        return root + "".join(reversed(self.segments))


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


# --------------------------------------------------------------------------- bytes


def dumps(value: JSON) -> bytes:
    """Canonical bytes of a JSON tree: sorted keys, compact, ASCII (lone surrogates survive)."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"not a JSON tree ({exc}); encode() it first") from None
    return text.encode("ascii")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def loads(data: bytes) -> JSON:
    """Parse bytes from :func:`dumps`; anything else (pickle, garbage) is a ``CheckpointError``."""
    try:
        return json.loads(data.decode("ascii"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"not canonical JSON ({exc.__class__.__name__}: {exc})") from None


# --------------------------------------------------------------------------- blobs

_REF_SIZE = len(b'{"$blob":""}') + 64
# Messages are immutable and a large payload is usually the same str object from checkpoint
# to checkpoint: remember its encoding and hash by identity (the entry keeps it alive, so
# the id cannot be reused while cached).
_BIG_STRINGS: dict[int, tuple[str, bytes, str]] = {}
_BIG_STRINGS_MAX = 64
_BIG_STRINGS_LOCK = threading.Lock()


def pack(tree: JSON, *, min_blob_bytes: int = 1024) -> tuple[JSON, dict[str, bytes]]:
    """Replace every sub-tree whose canonical JSON is at least ``min_blob_bytes`` by a blob.

    Post-order: a large string inside a small dict becomes its own blob and the dict stays
    inline, so only what changed is new. The root itself is never replaced. Also checks that
    ``tree`` is strict JSON (no tuples, non-``str`` keys or NaN that ``json`` would coerce).

    Returns:
        The packed tree and its blobs by sha256 hex digest (every blob it references,
        transitively).
    """
    blobs: dict[str, bytes] = {}
    small = max(0, (min_blob_bytes - 2) // 6)

    def walk(node: JSON, root: bool) -> tuple[JSON, int]:
        t = type(node)
        new: JSON
        if t is str:
            n = len(node)
            if n < small:  # cannot reach the threshold even if every char were escaped
                return node, n + 2
            cached = _BIG_STRINGS.get(id(node))
            if cached is not None and cached[0] is node:  # the same immutable payload again
                data, digest = cached[1], cached[2]
            else:
                data = _enc_str(node).encode("ascii")
                digest = hashlib.sha256(data).hexdigest()
                with _BIG_STRINGS_LOCK:  # stores pack in worker threads, concurrently
                    if len(_BIG_STRINGS) >= _BIG_STRINGS_MAX:
                        _BIG_STRINGS.pop(next(iter(_BIG_STRINGS)))
                    _BIG_STRINGS[id(node)] = (node, data, digest)
            if root or len(data) < min_blob_bytes:
                return node, len(data)
            blobs[digest] = data
            return {_BLOB: digest}, _REF_SIZE
        elif t is dict:
            if _BLOB in node:
                raise _Fail(f"reserved key {_BLOB!r} in a tree that was not encode()d")
            new = {}
            size = 1
            key = ""
            try:
                for key, item in node.items():
                    if type(key) is not str:
                        raise _Fail(f"key {key!r} is not a str; encode() the value first")
                    new[key], sub = walk(item, False)
                    size += len(_enc_str(key)) + sub + 2
            except _Fail as fail:
                fail.segments.append(f"[{key!r}]")
                raise
            size = max(size, 2)
        elif t is list:
            new = []
            size = 1
            i = 0
            try:
                for i, item in enumerate(node):  # noqa: B007
                    packed, sub = walk(item, False)
                    new.append(packed)
                    size += sub + 1
            except _Fail as fail:
                fail.segments.append(f"[{i}]")
                raise
            size = max(size, 2)
        elif t is bool or node is None:
            return node, 4 if node is not False else 5
        elif t is int:
            try:
                return node, len(repr(node))
            except ValueError:  # beyond the int<->str digit limit
                raise _Fail("int too large for plain JSON; encode() the value first") from None
        elif t is float:
            if not math.isfinite(node):
                raise _Fail(f"{node!r} is not JSON; encode() the value first")
            return node, len(repr(node))
        else:
            raise _Fail(f"{t.__qualname__} is not a JSON value; encode() the value first")
        if root or size < min_blob_bytes:
            return new, size
        data = dumps(new)
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {_BLOB: digest}, _REF_SIZE

    try:
        packed, _ = walk(tree, True)
    except _Fail as fail:
        raise SerializationError(f"{fail.path('data')}: {fail.message}") from None
    except RecursionError:
        raise SerializationError("data: nested too deeply to checkpoint") from None
    return packed, blobs


def unpack(tree: JSON, get_blob: Callable[[str], bytes]) -> JSON:
    """Inverse of :func:`pack`: fetch and verify each referenced blob (shared, read-only).

    Raises:
        CheckpointError: a blob is missing, malformed, or its content fails its sha256.
    """
    cache: dict[str, JSON] = {}

    def walk(node: JSON) -> JSON:
        t = type(node)
        if t is list:
            return [walk(x) for x in node]
        if t is not dict:
            return node
        if _BLOB not in node:
            return {k: walk(v) for k, v in node.items()}
        digest = node[_BLOB]
        if len(node) != 1 or type(digest) is not str or not _HEX64.fullmatch(digest):
            raise CheckpointError(f"malformed blob reference {_short_repr(node)}")
        if digest in cache:
            return cache[digest]
        try:
            data = get_blob(digest)
        except KeyError:
            raise CheckpointError(f"blob {digest} is missing from the store") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise CheckpointError(f"blob {digest} fails its sha256 check (altered or truncated)")
        value = cache[digest] = walk(loads(data))
        return value

    try:
        return walk(tree)
    except RecursionError:
        raise CheckpointError("packed data is nested too deeply") from None
