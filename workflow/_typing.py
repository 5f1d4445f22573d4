"""Turn handler annotations into runtime classes, once, at build time.

Dispatch uses ``isinstance`` on plain classes, so ``list[int]`` becomes ``list`` and a union
becomes its members. ``None`` as a result means "anything" (``Any``, ``object``, a TypeVar):
such a handler accepts every message, and such an output is never type-checked.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

__all__ = ("Types", "overlaps", "runtime_types", "type_name")

Types = tuple[type, ...] | None


def runtime_types(annotation: Any) -> Types:
    """Flatten an annotation into the classes ``isinstance`` can test (``None``: anything)."""
    if annotation is Any or annotation is object:
        return None
    if annotation is None or annotation is type(None):
        return (type(None),)
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        found: list[type] = []
        for arg in get_args(annotation):
            sub = runtime_types(arg)
            if sub is None:
                return None
            found.extend(t for t in sub if t not in found)
        return tuple(found)
    if origin is typing.Annotated:
        return runtime_types(get_args(annotation)[0])
    if origin is Literal:
        return tuple(dict.fromkeys(type(v) for v in get_args(annotation)))
    if origin is not None:
        return (origin,) if isinstance(origin, type) else None
    supertype = getattr(annotation, "__supertype__", None)  # typing.NewType
    if supertype is not None:
        return runtime_types(supertype)
    if isinstance(annotation, type):
        return (annotation,)
    return None


def overlaps(produced: Types, accepted: Types) -> bool:
    """Whether a value of one of ``produced`` could be accepted by one of ``accepted``."""
    if produced is None or accepted is None:
        return True
    return any(issubclass(p, a) or issubclass(a, p) for p in produced for a in accepted)


def type_name(types_: Types) -> str:
    """Readable rendering for error messages: ``int | str`` or ``Any``."""
    if types_ is None:
        return "Any"
    if not types_:
        return "nothing"
    return " | ".join("None" if t is type(None) else t.__qualname__ for t in types_)
