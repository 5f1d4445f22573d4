"""Tools: typed Python functions a model may call.

``@tool`` reads the function's signature and Google-style docstring once, builds a pydantic
model of its parameters, and from then on the model's JSON arguments are validated by that
model. Nothing a model sends can make ``Tool.invoke`` raise: bad JSON, invalid arguments and
the tool's own exceptions all come back as an error ``ToolOutcome`` whose text tells the model
what to fix, so an agent loop can feed it back and carry on.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, ParamSpec, TypeVar, cast, overload

import anyio.to_thread
import pydantic
import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

from ._chat import ToolSpec

__all__ = ("ApprovalMode", "Tool", "ToolOutcome", "tool")

P = ParamSpec("P")
R = TypeVar("R")
ApprovalMode = Literal["never_require", "always_require"]

_log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_APPROVAL_MODES = ("never_require", "always_require")
_DEFAULT_MAX_OUTPUT_CHARS = 20_000


class ToolOutcome(BaseModel):
    """What a tool call produced, as text for the model.

    Attributes:
        text: The result (JSON for non-string results) or the error explanation.
        is_error: Whether the call failed; the text then says why and how to fix it.
    """

    model_config = ConfigDict(frozen=True)

    text: str
    is_error: bool = False


class Tool(Generic[P, R]):
    """A function offered to a model, with its argument schema and calling policy.

    Calling the ``Tool`` itself calls the wrapped function unchanged, so decorating a function
    does not break direct callers.

    Attributes:
        name: The name the model calls it by.
        description: The docstring's first paragraph, unless given.
        parameters: JSON schema of the arguments object.
        approval_mode: Whether a human must approve each call (enforced by the agent).
        max_output_chars: Longer outputs are cut, so one tool cannot flood the context.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        approval_mode: ApprovalMode = "never_require",
        max_output_chars: int = _DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__name__", "")
        if not _NAME.match(self.name):
            raise ValueError(
                f"tool name {self.name!r} is invalid: models accept 1-64 characters from "
                "[a-zA-Z0-9_-]; pass name=... to @tool"
            )
        if approval_mode not in _APPROVAL_MODES:
            raise ValueError(
                f"approval_mode {approval_mode!r} of tool {self.name!r} is invalid; "
                f"use one of {_APPROVAL_MODES}"
            )
        if max_output_chars < 1:
            raise ValueError(
                f"max_output_chars of tool {self.name!r} must be >= 1, got {max_output_chars!r}"
            )
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.approval_mode: ApprovalMode = approval_mode
        self.max_output_chars = max_output_chars
        self._is_async = inspect.iscoroutinefunction(fn)
        self._args_model, self._params = _arguments_model(fn, self.name, arg_docs)
        self.parameters = _clean_schema(self._args_model.model_json_schema(by_alias=True))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r}, approval_mode={self.approval_mode!r})"

    @property
    def spec(self) -> ToolSpec:
        """The name, description and schema a chat client offers to the model."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def to_openai(self) -> dict[str, Any]:
        """Returns the entry for an OpenAI ``tools`` list."""
        return self.spec.to_openai()

    async def invoke(self, arguments_json: str) -> ToolOutcome:
        """Validates the model's JSON arguments, runs the tool, and returns its outcome.

        Never raises for anything the model or the tool does (cancellation still propagates).
        Sync functions run in a worker thread so a slow tool does not stall the event loop.
        """
        parsed = self._validate(arguments_json)
        if isinstance(parsed, ToolOutcome):
            return parsed
        args, kwargs = parsed
        try:
            if self._is_async:
                result: Any = await cast(Callable[..., Awaitable[Any]], self.fn)(*args, **kwargs)
            else:
                call = functools.partial(cast(Callable[..., Any], self.fn), *args, **kwargs)
                result = await anyio.to_thread.run_sync(call)
            text = _to_text(result)
        except Exception as exc:
            _log.debug("tool %r raised", self.name, exc_info=True)
            return self._cap(f"Error: {exc!r}", is_error=True)
        return self._cap(text, is_error=False)

    def _validate(self, arguments_json: str) -> tuple[list[Any], dict[str, Any]] | ToolOutcome:
        # Models send "" for a call without arguments; read it as {}.
        try:
            data = json.loads(arguments_json) if arguments_json.strip() else {}
        except json.JSONDecodeError as exc:
            return self._cap(
                f"Error: the arguments for tool {self.name!r} are not valid JSON ({exc}); "
                f"call it again with a JSON object matching its parameters schema",
                is_error=True,
            )
        if not isinstance(data, dict):
            return self._cap(
                f"Error: the arguments for tool {self.name!r} must be a JSON object, "
                f"got {type(data).__name__} {_short(data)}",
                is_error=True,
            )
        try:
            model = self._args_model.model_validate(data)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<arguments>'}: {err['msg']}"
                + ("" if err["type"] == "missing" else f" (got {_short(err['input'])})")
                for err in exc.errors()
            )
            return self._cap(
                f"Error: invalid arguments for tool {self.name!r}: {problems}. "
                "Call it again with corrected arguments.",
                is_error=True,
            )
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for field, param in self._params:
            value = getattr(model, field)
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(value)
            else:
                kwargs[param.name] = value
        return args, kwargs

    def _cap(self, text: str, *, is_error: bool) -> ToolOutcome:
        if len(text) > self.max_output_chars:
            cut = len(text) - self.max_output_chars
            text = f"{text[: self.max_output_chars]}…[truncated {cut} chars]"
        return ToolOutcome(text=text, is_error=is_error)


@overload
def tool(fn: Callable[P, R], /) -> Tool[P, R]: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    approval_mode: ApprovalMode = "never_require",
    max_output_chars: int = _DEFAULT_MAX_OUTPUT_CHARS,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...


def tool(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    approval_mode: ApprovalMode = "never_require",
    max_output_chars: int = _DEFAULT_MAX_OUTPUT_CHARS,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Turns a typed sync or async function into a ``Tool``.

    Use bare (``@tool``) or with options (``@tool(name="search", approval_mode=...)``).
    Parameter types come from the annotations (``from __future__ import annotations`` is fine),
    descriptions from the docstring's first paragraph and its ``Args:`` section.

    Raises:
        ValueError: The name, approval mode or output cap is invalid.
        TypeError: The signature cannot be turned into a schema (``*args``, unresolvable hints).
    """

    def wrap(f: Callable[P, R]) -> Tool[P, R]:
        return Tool(
            f,
            name=name,
            description=description,
            approval_mode=approval_mode,
            max_output_chars=max_output_chars,
        )

    return wrap(fn) if fn is not None else wrap


# --------------------------------------------------------------------------- helpers


def _arguments_model(
    fn: Callable[..., Any], tool_name: str, arg_docs: dict[str, str]
) -> tuple[type[BaseModel], list[tuple[str, inspect.Parameter]]]:
    """Builds the pydantic model that validates a call's arguments.

    Fields get neutral names (``p0``, ``p1``...) with the parameter name as alias, so a
    parameter called ``json`` or ``schema`` does not shadow a ``BaseModel`` attribute.
    """
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise TypeError(
            f"cannot resolve the type hints of tool {tool_name!r}: {exc!r}; make every "
            "annotation importable at module level"
        ) from exc
    fields: dict[str, Any] = {}
    params: list[tuple[str, inspect.Parameter]] = []
    for i, param in enumerate(inspect.signature(fn).parameters.values()):
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise TypeError(
                f"tool {tool_name!r} has *{param.name}: tools take named parameters only, "
                "because the model sends a JSON object"
            )
        field_name = f"p{i}"
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[field_name] = (
            hints.get(param.name, Any),
            Field(default, alias=param.name, description=arg_docs.get(param.name)),
        )
        params.append((field_name, param))
    model = pydantic.create_model(
        f"{tool_name}_arguments",
        __config__=ConfigDict(extra="forbid", arbitrary_types_allowed=False),
        **fields,
    )
    return cast(type[BaseModel], model), params


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drops pydantic's generated ``title`` keywords: noise to a model, and costly tokens."""

    def walk(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            out: dict[str, Any] = {}
            for key, value in node.items():
                if key == "title" and not in_properties and isinstance(value, str):
                    continue
                # Keys of "properties"/"$defs" are names, not keywords: never strip those.
                out[key] = walk(value, in_properties=key in ("properties", "$defs"))
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    cleaned: dict[str, Any] = walk(schema)
    cleaned.setdefault("properties", {})
    return cleaned


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Returns the first paragraph and the ``Args:`` descriptions of a Google docstring.

    Whitespace inside each is collapsed to single spaces (a model reads them as one line);
    ``*args``/``**kwargs`` are keyed without their stars.
    """
    from docstring_parser import DocstringStyle, parse  # only when a tool is defined

    parsed = parse(doc, style=DocstringStyle.GOOGLE)
    summary = parsed.short_description or ""
    if parsed.long_description and not parsed.blank_after_short_description:
        # A summary wrapped over several lines: the parser keeps only its first line short.
        summary = f"{summary} {parsed.long_description.split(chr(10) * 2)[0]}"
    args = {
        param.arg_name.lstrip("*"): " ".join((param.description or "").split())
        for param in parsed.params
    }
    return " ".join(summary.split()), args


def _to_text(result: Any) -> str:
    """Renders a tool result for the model: strings as-is, everything else as JSON."""
    if isinstance(result, str):
        return result
    return pydantic_core.to_json(result, fallback=repr).decode()


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
