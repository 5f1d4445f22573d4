"""Build-time check, when a store is set: can every type the graph carries be checkpointed?

Without it, a message type the serializer cannot store fails the run at its first checkpoint,
after work was done. Checked: each handler's input, output and response types, each
executor's ``checkpoint_types()``, the workflow's extra ``types=``, and those of nested
workflows. Checkpointable: JSON values, the builtins the serializer tags (tuple, set, bytes,
datetime, UUID, Decimal...), dataclasses (their fields too), pydantic models and Enums.
``Any``, ``object`` and type variables say nothing, so they pass; the values are still
checked when stored.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from collections.abc import Iterator
from typing import Any

import pydantic

from ._serde import TypeRegistry

__all__ = ("checkpoint_problems",)

_BUILTINS = TypeRegistry()
_FIX = (
    "make it a dataclass, a pydantic model or an Enum (or convert it to one before sending), "
    "or build without checkpoint_store"
)


def checkpoint_problems(wf: Any) -> list[str]:
    """One line per type that cannot be checkpointed, naming where it was seen and the fix."""
    problems: list[str] = []
    for where, tp in _types_of(wf, prefix="", seen=set()):
        culprit = _unsupported(tp, set())
        if culprit is not None:
            what = (
                f"{culprit!r}, which cannot be checkpointed"
                if culprit is tp
                else f"{_name(tp)}, which holds {culprit!r}, which cannot be checkpointed"
            )
            problems.append(f"{where} {what}; {_FIX}")
    return problems


def _name(tp: Any) -> str:
    return tp.__qualname__ if isinstance(tp, type) else repr(tp)


def _types_of(wf: Any, prefix: str, seen: set[int]) -> Iterator[tuple[str, Any]]:
    if id(wf) in seen:
        return
    seen.add(id(wf))
    for tp in wf.types:
        yield f"workflow {wf.name!r}: types= lists", tp
    for ex in wf.executors.values():
        eid = f"{prefix}{ex.id}"
        for spec in ex.handler_specs():
            for role, group in (
                ("accepts", spec.input_types),
                ("sends", spec.output_types),
                ("expects the response", spec.response_types),
            ):
                for tp in group or ():
                    yield f"executor {eid!r}, handler {spec.name!r} {role}", tp
        for tp in ex.checkpoint_types():
            yield f"executor {eid!r}: checkpoint_types() lists", tp
        child = getattr(ex, "workflow", None)
        if child is not None and hasattr(child, "executors"):
            yield from _types_of(child, f"{eid}/", seen)


def _unsupported(tp: Any, seen: set[Any]) -> Any:
    """The first class inside ``tp`` the serializer cannot store, or ``None``."""
    if tp is None or tp is Any or isinstance(tp, (str, typing.TypeVar)):
        return None  # None, a forward reference, a type variable: nothing to check
    if not isinstance(tp, type):  # a union, list[X], Literal[...], Annotated[...]
        for arg in typing.get_args(tp):
            found = _unsupported(arg, seen)
            if found is not None:
                return found
        return None
    if tp in seen or tp in _BUILTINS:
        return None
    seen.add(tp)
    if issubclass(tp, (enum.Enum, pydantic.BaseModel)):
        return None  # pydantic stores what its fields need
    if dataclasses.is_dataclass(tp):
        try:
            hints = typing.get_type_hints(tp)
        except Exception:  # unresolvable forward references: checked when stored
            return None
        for f in dataclasses.fields(tp):
            found = _unsupported(hints.get(f.name), seen)
            if found is not None:
                return found
        return None
    if getattr(tp, "_is_protocol", False) or tp.__module__ in ("collections.abc", "typing"):
        return None  # an interface (Sequence, Mapping, a Protocol): its values decide
    return tp
