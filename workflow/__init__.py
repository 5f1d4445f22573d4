"""Ledgerflow's core: executors, edges, graph validation, the superstep scheduler, events,
checkpoints and telemetry.

Layering: ``workflow`` imports nothing from ``builders``, ``executors`` or ``visualize``
(only ``workflow.cli`` wires them together); ``builders`` produce ``Workflow`` objects;
``executors`` implement node kinds on ``Executor``; ``visualize`` reads a built workflow's
graph and run records. A test enforces this.
"""

from __future__ import annotations

from . import events
from ._context import WorkflowContext
from ._edges import Case, Default
from ._errors import CheckpointError, ExecutorFailedError, GraphValidationError, WorkflowError
from ._executor import Executor, FunctionExecutor, executor, handler, response_handler
from ._observer import Observer
from ._result import PendingRequest, RunResult
from ._retry import RetryPolicy
from ._types import RunStatus
from ._workflow import Workflow

__all__ = (
    "Case",
    "CheckpointError",
    "Default",
    "Executor",
    "ExecutorFailedError",
    "FunctionExecutor",
    "GraphValidationError",
    "Observer",
    "PendingRequest",
    "RetryPolicy",
    "RunResult",
    "RunStatus",
    "Workflow",
    "WorkflowContext",
    "WorkflowError",
    "events",
    "executor",
    "handler",
    "response_handler",
)
