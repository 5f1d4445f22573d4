"""``load_spec``: a YAML/JSON team spec (a path, text or a dict) to a ``Workflow``.

Safe by construction: the document is parsed with ``yaml.safe_load`` (no tags that build
objects), validated against the models in ``_spec_schema``, and every name in it resolves
only from the caller's ``functions=`` or, when the caller passes ``allow_imports=True``, from
the spec's own ``imports``. Nothing written in a spec is evaluated, and a spec never holds a
key: an OpenAI client names the environment variable to read it from.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from workflow import Executor, Workflow

from ._spec_build import build_workflow
from ._spec_refs import SPEC_NAMES
from ._spec_schema import KINDS, SpecError, SpecModel

__all__ = ("load_spec",)

_ADAPTER: TypeAdapter[Any] | None = None


def load_spec(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    functions: Mapping[str, Any] | None = None,
    allow_imports: bool = False,
) -> Workflow:
    """Build the workflow a spec describes.

    Args:
        source: A path to a ``.yaml``/``.yml``/``.json`` file, YAML or JSON text, or the
            parsed document (a dict).
        functions: Name -> tool, condition, function executor, selector, aggregator or
            manager. The only names a spec can reach unless ``allow_imports`` is set.
        allow_imports: Also resolve names from the spec's ``imports`` (``name:
            "package.module:attr"``), importing those modules. Only for specs you trust.

    Returns:
        An ordinary ``Workflow``.

    Raises:
        SpecError: The document is malformed or names something unknown; the message names
            the place in the document (``agents.coder.client``) and the fix.
        GraphValidationError: The graph it describes is invalid.
    """
    data = _read(source)
    model = _validate(data)
    names = _Names(model.imports, functions or {}, allow_imports)
    wf = build_workflow(model, names)
    wf.description = model.description
    SPEC_NAMES[wf] = names.used
    return wf


# -- reading -----------------------------------------------------------------------------------
def _read(source: Any) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and "\n" not in source and _looks_like_path(source)
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError("", f"cannot read spec {str(path)!r}: {exc.strerror or exc}") from None
        return _parse(text, str(path), json_only=path.suffix.lower() == ".json")
    if isinstance(source, str):
        return _parse(source, "<text>", json_only=False)
    raise SpecError("", f"a spec is a path, YAML/JSON text or a dict, got {type(source).__name__}")


def _looks_like_path(text: str) -> bool:
    return text.lower().endswith((".yaml", ".yml", ".json")) or Path(text).is_file()


def _parse(text: str, where: str, *, json_only: bool) -> dict[str, Any]:
    if json_only:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError("", f"{where} is not valid JSON: {exc}") from None
    else:
        import yaml  # lazily: only specs need it

        try:
            # safe: plain data only, no tags that build objects (libyaml's loader when built)
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())  # one line, for the CLI
            raise SpecError("", f"{where} is not valid YAML: {detail}") from None
    if not isinstance(data, dict):
        raise SpecError(
            "", f"{where}: a spec is a mapping with kind, name, ...; got {type(data).__name__}"
        )
    return data


# -- validating --------------------------------------------------------------------------------
def _validate(data: dict[str, Any]) -> Any:
    kind = data.get("kind")
    if kind not in KINDS:
        shown = "missing" if kind is None else f"unknown kind {kind!r}"
        raise SpecError("kind", f"{shown}; use one of {', '.join(KINDS)}")
    clients = data.get("clients")
    if isinstance(clients, dict):
        for name, client in clients.items():
            if isinstance(client, dict) and "api_key" in client:
                raise SpecError(
                    f"clients.{name}.api_key",
                    "a spec never holds a key; put it in an environment variable and name "
                    "the variable instead: api_key_env: OPENAI_API_KEY",
                )
            env = client.get("api_key_env") if isinstance(client, dict) else None
            if isinstance(env, str) and _looks_like_key(env):
                raise SpecError(
                    f"clients.{name}.api_key_env",
                    "this looks like a key, not the name of an environment variable; a spec "
                    "never holds a key: export it (e.g. OPENAI_API_KEY=...) and write "
                    "api_key_env: OPENAI_API_KEY",
                )
    global _ADAPTER
    if _ADAPTER is None:
        _ADAPTER = TypeAdapter(SpecModel)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise SpecError(*_explain(exc, kind)) from None


def _looks_like_key(text: str) -> bool:
    return text.startswith(("sk-", "sk_")) or (len(text) >= 20 and not text.isupper())


_TAGS = {"str", "int", "float", "bool", "dict", "list", "none", *KINDS, "openai", "scripted"}


def _explain(exc: ValidationError, kind: str) -> tuple[str, str]:
    """(path, message) for the first place with errors; never echoes input values."""
    by_path: dict[str, list[str]] = {}
    for error in exc.errors(include_input=False, include_url=False):
        loc = [p for p in error["loc"] if not _is_tag(p)]
        if loc[:1] == [kind]:
            loc = loc[1:]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden" and loc:
            message = _unknown_key(loc, kind)
        elif error["type"] == "missing":
            message = "required key is missing"
        by_path.setdefault(_join(loc), []).append(message)
    # a union reports each branch: a path whose longer sibling exists is the branch not meant
    deeper = {p: m for p, m in by_path.items() if not any(_under(q, p) for q in by_path)}
    by_path = deeper or by_path
    path, messages = next(iter(by_path.items()))
    text = " or ".join(dict.fromkeys(messages))
    others = list(by_path)[1:]
    if others:
        text += f" (also at: {', '.join(others[:3])}{', ...' if len(others) > 3 else ''})"
    return path, text


def _under(path: str, parent: str) -> bool:
    return path != parent and (
        parent == "" or path.startswith(parent + ".") or path.startswith(parent + "[")
    )


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and (
        part in _TAGS or "[" in part or part.endswith("Spec") or part.startswith("function-")
    )


def _join(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _unknown_key(loc: list[Any], kind: str) -> str:
    key = str(loc[-1])
    allowed = _keys_at(loc[:-1], kind)
    if not allowed:
        return f"unknown key {key!r}"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    where = f"a {kind} spec" if len(loc) == 1 else _join(loc[:-1])
    return f"unknown key {key!r}{hint} ({where} takes: {', '.join(allowed)})"


def _keys_at(loc: list[Any], kind: str) -> list[str]:
    """The keys the schema allows at ``loc`` (walking models, dicts, lists and unions)."""
    from . import _spec_schema as schema

    models: Any = {
        "graph": schema.GraphSpec,
        "magentic": schema.MagenticSpec,
        "group_chat": schema.GroupChatSpec,
        "sequential": schema.SequentialSpec,
        "concurrent": schema.ConcurrentSpec,
        "handoff": schema.HandoffSpec,
    }
    types: list[Any] = [models[kind]]
    for part in loc:
        types = [t for tp in types for t in _step(tp, part)]
    keys = [
        f.alias or name for tp in types for m in _models(tp) for name, f in m.model_fields.items()
    ]
    return list(dict.fromkeys(keys))


def _models(tp: Any) -> list[type[BaseModel]]:
    """The model classes ``tp`` stands for (through ``Annotated`` and unions)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _models(args[0])
    if origin in (types.UnionType, typing.Union):
        return [m for arg in args for m in _models(arg)]
    return [tp] if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _step(tp: Any, part: Any) -> list[Any]:
    """The types one step below ``tp`` at ``part`` (a key or a list index)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _step(args[0], part)
    if origin in (types.UnionType, typing.Union):
        return [t for arg in args for t in _step(arg, part)]
    if origin is dict:
        return [args[1]]
    if origin is list:
        return [args[0]] if isinstance(part, int) else []
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if part in (name, field.alias):
                return [field.annotation]
    return []


# -- names -------------------------------------------------------------------------------------
class _Names:
    """Resolves function names: ``functions=`` first, then (if allowed) the spec's imports."""

    def __init__(
        self, imports: Mapping[str, str], functions: Mapping[str, Any], allow_imports: bool
    ) -> None:
        self.imports = dict(imports)
        self.functions = dict(functions)
        self.allow_imports = allow_imports
        self._loaded: dict[str, Any] = {}
        # id -> (name, object) of every name resolved, so dump_spec writes the same names
        self.used: dict[int, tuple[str, Any]] = {}

    def nested(self, imports: Mapping[str, str]) -> _Names:
        """The names a nested spec sees: the caller's functions, both specs' imports."""
        child = _Names({**self.imports, **imports}, self.functions, self.allow_imports)
        child.used = self.used
        return child

    def get(self, name: str, path: str) -> Any:
        """The object ``name`` stands for; ``path`` is where the spec uses it."""
        value = self._get(name, path)
        self.used[id(value)] = (name, value)
        return value

    def _get(self, name: str, path: str) -> Any:
        if name in self.functions:
            return self.functions[name]
        target = self.imports.get(name)
        if target is not None:
            if not self.allow_imports:
                raise SpecError(
                    path,
                    f"{name!r} comes from imports ({target!r}), which load only when the "
                    f"caller passes allow_imports=True (do so only for a spec you trust), or "
                    f"pass functions={{{name!r}: ...}}",
                )
            if name not in self._loaded:
                self._loaded[name] = _import(target, f"imports.{name}")
            return self._loaded[name]
        known = sorted({*self.functions, *self.imports})
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(
            path,
            f"unknown function {name!r}{hint}; known: {', '.join(known) or 'none'}; pass "
            f"functions={{{name!r}: ...}} to load_spec, or list it under imports",
        )

    def executor(self, name: str, node_id: str, path: str) -> Executor:
        """A function executor (or an ``Executor`` given by name) as node ``node_id``."""
        from workflow import FunctionExecutor

        value = self.get(name, path)
        if isinstance(value, Executor):
            if value.id != node_id:
                raise SpecError(
                    path,
                    f"{name!r} is an executor whose id is {value.id!r}; name the node "
                    f"{value.id!r} in the spec (or pass the plain function)",
                )
            return value
        if not callable(value):
            raise SpecError(path, f"{name!r} is a {type(value).__name__}, not a function")
        try:
            return FunctionExecutor(value, id=node_id)
        except (TypeError, ValueError) as exc:
            raise SpecError(path, f"function {name!r} cannot be an executor: {exc}") from None


def _import(target: str, path: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        value: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            value = getattr(value, part)
    except ImportError as exc:
        raise SpecError(path, f"cannot import {module_name!r}: {exc}") from None
    except AttributeError:
        raise SpecError(path, f"module {module_name!r} has no attribute {attr!r}") from None
    return value
