"""The type allowlist of the checkpoint serializer, and its error.

A :class:`TypeRegistry` names the classes a checkpoint may contain beyond plain JSON and
builtins (``module:QualName``), and resolves names back without importing anything; response
types (generics and unions of those) are named too. See ``_serde`` for the wire format.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import functools
import operator
import re
import types
import typing
import uuid
from collections.abc import Iterable
from typing import Any

import pydantic

from ._errors import CheckpointError, WorkflowError

__all__ = ("SerializationError", "TypeRegistry")


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


class _Fail(Exception):
    """Internal: a failure deep in a tree; frames append their path segment on the way up."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.segments: list[str] = []

    def path(self, root: str) -> str:
        return root + "".join(reversed(self.segments))
