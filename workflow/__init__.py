"""Ledgerflow's core: executors, edges, graph validation, the superstep scheduler, events,
checkpoints and telemetry.

Layering: ``workflow`` imports nothing from ``builders``, ``executors`` or ``visualize``
(only ``workflow.cli`` wires them together); ``builders`` produce ``Workflow`` objects;
``executors`` implement node kinds on ``Executor``; ``visualize`` reads a built workflow's
graph and run records. A test enforces this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import events
from ._adapters import WorkflowAgent, WorkflowTool
from ._backend import LocalBackend, Resources
from ._context import WorkflowContext
from ._edges import Case, Default
from ._errors import CheckpointError, ExecutorFailedError, GraphValidationError, WorkflowError
from ._executor import Executor, FunctionExecutor, executor, handler, response_handler
from ._history import Breakpoint, BreakpointError, StateUpdateError
from ._lazy import lazy_exports
from ._observer import Observer
from ._result import PendingRequest, RunResult
from ._retry import RetryPolicy
from ._types import RunStatus
from ._workflow import Workflow

if TYPE_CHECKING:
    from ._checkpoint import Checkpoint, CheckpointStore, RunInfo
    from ._ray import RayBackend
    from ._serde import SerializationError
    from ._stores import (
        FileCheckpointStore,
        InMemoryCheckpointStore,
        PostgresCheckpointStore,
        SQLiteCheckpointStore,
        store_from_url,
    )
    from ._telemetry import OpenTelemetryObserver, model_call_span, record_tokens, tool_call_span

# Checkpoint models and stores load pydantic and sqlite3; import them on first use so that
# `import workflow` stays cheap for runs that never checkpoint.
_LAZY = {
    "Checkpoint": "._checkpoint",
    "CheckpointStore": "._checkpoint",
    "RunInfo": "._checkpoint",
    "SerializationError": "._serde",
    "FileCheckpointStore": "._stores",
    "InMemoryCheckpointStore": "._stores",
    "PostgresCheckpointStore": "._stores",
    "SQLiteCheckpointStore": "._stores",
    "store_from_url": "._stores",
    "RayBackend": "._ray",
    "OpenTelemetryObserver": "._telemetry",
    "model_call_span": "._telemetry",
    "tool_call_span": "._telemetry",
    "record_tokens": "._telemetry",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())

__all__ = (
    "Breakpoint",
    "BreakpointError",
    "Case",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "Default",
    "Executor",
    "ExecutorFailedError",
    "FileCheckpointStore",
    "FunctionExecutor",
    "GraphValidationError",
    "InMemoryCheckpointStore",
    "LocalBackend",
    "Observer",
    "OpenTelemetryObserver",
    "PendingRequest",
    "PostgresCheckpointStore",
    "RayBackend",
    "Resources",
    "RetryPolicy",
    "RunInfo",
    "RunResult",
    "RunStatus",
    "SQLiteCheckpointStore",
    "SerializationError",
    "StateUpdateError",
    "Workflow",
    "WorkflowAgent",
    "WorkflowContext",
    "WorkflowError",
    "WorkflowTool",
    "events",
    "executor",
    "handler",
    "model_call_span",
    "record_tokens",
    "response_handler",
    "store_from_url",
    "tool_call_span",
)
