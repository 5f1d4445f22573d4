"""``SchemaTool``: a tool whose argument schema is given, not read from a Python signature.

MCP servers, Semantic Kernel functions and workflows called as tools all describe their
arguments with a JSON Schema of their own. A ``SchemaTool`` offers that schema to the model
unchanged and passes the model's JSON object to the callee, which validates it itself (an
MCP server, the kernel) or through pydantic (a workflow's input type). Everything else
(approval, output cap, errors fed back to the model, tracing) is ``Tool``'s.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from workflow import WorkflowError

from ._tools import (
    _APPROVAL_MODES,
    _DEFAULT_MAX_OUTPUT_CHARS,
    _NAME,
    ApprovalMode,
    Tool,
    ToolOutcome,
    _to_text,
)

__all__ = ("SchemaTool", "ToolError", "ToolUnavailableError")


class ToolError(WorkflowError, RuntimeError):
    """A tool reported a failure (an MCP tool's error result, a kernel function that raised),
    or a toolset was used outside its lifetime.

    Inside an agent's turn the text goes back to the model, which may call again with other
    arguments. Also a ``RuntimeError``, which it was before it joined the error tree.
    """


class ToolUnavailableError(WorkflowError):
    """The service behind a tool is gone (a dead MCP server, say): no argument the model
    could change would help, so the call fails the agent's turn instead of feeding back."""


class SchemaTool(Tool[..., Any]):
    """A ``Tool`` calling ``call(arguments: dict)`` with the model's JSON object.

    Args:
        name: The name the model calls it by (1-64 of ``[a-zA-Z0-9_-]``).
        description: What the tool does, for the model.
        parameters: JSON Schema of the arguments object.
        call: Async function of the arguments; its result becomes the tool's text, its
            exception an error the model reads.
        approval_mode: Whether a person approves each call (enforced by the agent).
        max_output_chars: Longer outputs are cut.

    Raises:
        ValueError: An invalid name, approval mode or output cap.
    """

    def __init__(
        self,
        name: str,
        description: str,
        parameters: dict[str, Any],
        call: Callable[[dict[str, Any]], Awaitable[Any]],
        *,
        approval_mode: ApprovalMode = "never_require",
        max_output_chars: int = _DEFAULT_MAX_OUTPUT_CHARS,
    ) -> None:
        # Tool.__init__ reads a signature; here the schema is given, so set the fields directly.
        if not _NAME.match(name):
            raise ValueError(
                f"tool name {name!r} is invalid: models accept 1-64 characters from "
                "[a-zA-Z0-9_-]; rename it"
            )
        if approval_mode not in _APPROVAL_MODES:
            raise ValueError(
                f"approval_mode {approval_mode!r} of tool {name!r} is invalid; "
                f"use one of {_APPROVAL_MODES}"
            )
        if max_output_chars < 1:
            raise ValueError(
                f"max_output_chars of tool {name!r} must be >= 1, got {max_output_chars!r}"
            )
        self.name = name
        self.description = description
        self.parameters = _object_schema(parameters)
        self.approval_mode: ApprovalMode = approval_mode
        self.max_output_chars = max_output_chars
        self.call = call
        self.fn = self._run
        self._is_async = True

    def __repr__(self) -> str:
        return f"SchemaTool(name={self.name!r}, approval_mode={self.approval_mode!r})"

    async def _run(self, **arguments: Any) -> Any:
        return await self.call(arguments)

    async def invoke(self, arguments_json: str) -> ToolOutcome:
        """Calls the tool with the model's JSON object; its errors go back to the model.

        Raises:
            ToolUnavailableError: The service behind the tool is gone (not the model's fault).
        """
        parsed = self._validate(arguments_json)
        if isinstance(parsed, ToolOutcome):
            return parsed
        try:
            result = await self.call(parsed[1])
        except ToolUnavailableError:
            raise
        except Exception as exc:
            return self._cap(f"Error: {exc}", is_error=True)
        return self._cap(_to_text(result), is_error=False)

    def _validate(self, arguments_json: str) -> tuple[list[Any], dict[str, Any]] | Any:
        try:
            data = json.loads(arguments_json) if arguments_json.strip() else {}
        except json.JSONDecodeError as exc:
            return self._cap(
                f"Error: the arguments for tool {self.name!r} are not valid JSON ({exc}); "
                "call it again with a JSON object matching its parameters schema",
                is_error=True,
            )
        if not isinstance(data, dict):
            return self._cap(
                f"Error: the arguments for tool {self.name!r} must be a JSON object, "
                f"got {type(data).__name__}",
                is_error=True,
            )
        return [], data


def _object_schema(schema: dict[str, Any] | None) -> dict[str, Any]:
    """A schema models accept for a tool: an object, with ``properties`` present."""
    out = dict(schema or {})
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out
