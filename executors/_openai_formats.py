"""Structured output that works on every OpenAI-compatible server, stepping down when refused.

Servers disagree on ``response_format``: OpenAI and vLLM take ``{"type": "json_schema",
"json_schema": {...}}``; llama-cpp-python's server refuses that (an HTTP 500 validation error)
but constrains the reply to ``{"type": "json_object", "schema": {...}}``; others know only
``{"type": "json_object"}``, or nothing. A request that has a schema therefore tries, in order:

1. ``json_schema``         the schema, strict where the caller asked for it;
2. ``json_object_schema``  ``{"type": "json_object", "schema": ...}``;
3. ``json_object``         valid JSON of any shape (the prompt describes the shape);
4. ``text``                no ``response_format``; the caller parses the text.

The client remembers the first step its endpoint accepted, so a refusal is paid once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

__all__ = ("LEVELS", "StructuredLevel", "StructuredRequest", "structured_request")

StructuredLevel = Literal["json_schema", "json_object_schema", "json_object", "text"]
LEVELS: tuple[StructuredLevel, ...] = ("json_schema", "json_object_schema", "json_object", "text")


@dataclass(frozen=True)
class StructuredRequest:
    """A caller's ``response_format``, ready to be sent at any step it allows.

    Attributes:
        schema: The JSON schema, when the caller gave one.
        name: The schema's name (``json_schema`` requires one).
        strict: Whether ``json_schema`` asks for strict adherence.
        first: The index in ``LEVELS`` of the richest step the caller's format allows.
        raw: A format this module does not know: sent as given, never stepped down.
    """

    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool = False
    first: int = 0
    raw: dict[str, Any] | None = None

    def levels(self, floor: int) -> list[int]:
        """The steps to try, richest first, never richer than the endpoint's ``floor``."""
        if self.raw is not None:
            return [-1]
        return list(range(max(self.first, floor), len(LEVELS)))

    def param(self, level: int) -> dict[str, Any] | None:
        """The ``response_format`` to send at step ``level`` (``None``: send none)."""
        if level < 0:
            return self.raw
        step = LEVELS[level]
        if step == "json_schema":
            spec: dict[str, Any] = {"name": self.name, "schema": self.schema}
            if self.strict:
                spec["strict"] = True
            return {"type": "json_schema", "json_schema": spec}
        if step == "json_object_schema":
            return {"type": "json_object", "schema": self.schema}
        if step == "json_object":
            return {"type": "json_object"}
        return None


def structured_request(fmt: type[BaseModel] | dict[str, Any]) -> StructuredRequest:
    """Reads a caller's ``response_format`` (a pydantic model class or an OpenAI dict).

    Raises:
        TypeError: ``fmt`` is neither.
    """
    if isinstance(fmt, type) and issubclass(fmt, BaseModel):
        from openai.lib import type_to_response_format_param

        param: dict[str, Any] = dict(type_to_response_format_param(fmt))  # type: ignore[arg-type]
        spec = dict(param["json_schema"])
        return StructuredRequest(
            schema=dict(spec["schema"]),
            name=_name(fmt.__name__),
            strict=bool(spec.get("strict", True)),
        )
    if not isinstance(fmt, dict):
        raise TypeError(f"response_format must be a pydantic model class or a dict, got {fmt!r}")
    kind = fmt.get("type")
    if kind == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        spec = fmt["json_schema"]
        if isinstance(spec.get("schema"), dict):
            return StructuredRequest(
                schema=dict(spec["schema"]),
                name=_name(str(spec.get("name") or "response")),
                strict=bool(spec.get("strict", False)),
            )
    if kind == "json_object" and set(fmt) <= {"type", "schema"}:
        schema = fmt.get("schema")
        if isinstance(schema, dict):
            return StructuredRequest(schema=dict(schema), first=1)
        if schema is None:
            return StructuredRequest(first=2)
    return StructuredRequest(raw=dict(fmt))


def _name(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", text)[:64] or "response"
