"""The exception tree every Ledgerflow error belongs to.

::

    WorkflowError
    ├── GraphValidationError (also ValueError)   build() found a broken graph
    ├── ExecutorFailedError                      an executor raised; the original is __cause__
    └── CheckpointError                          a checkpoint is unknown, corrupt or foreign

Catch ``WorkflowError`` to handle anything the engine raises on purpose. Messages name the
culprit (executor, edge, type, checkpoint) and, where there is one, the fix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = (
    "CheckpointError",
    "ExecutorFailedError",
    "GraphValidationError",
    "WorkflowError",
    "store_call",
)


class WorkflowError(Exception):
    """Root of every error the engine raises on purpose."""


class GraphValidationError(WorkflowError, ValueError):
    """``build()`` found a graph that cannot run as written."""


class ExecutorFailedError(WorkflowError):
    """An executor raised (after its retries); the run ended ``FAILED``.

    The original exception is ``__cause__``; the superstep's other executors still committed.
    """

    def __init__(self, message: str, *, executor_id: str, superstep: int, run_id: str) -> None:
        super().__init__(message)
        self.executor_id = executor_id
        self.superstep = superstep
        self.run_id = run_id

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_failed, (str(self), self.executor_id, self.superstep, self.run_id))


def _rebuild_failed(
    message: str, executor_id: str, superstep: int, run_id: str
) -> ExecutorFailedError:
    return ExecutorFailedError(message, executor_id=executor_id, superstep=superstep, run_id=run_id)


class CheckpointError(WorkflowError):
    """A checkpoint or run is unknown, cannot be decoded, fails its checksum, or is foreign."""


@contextlib.contextmanager
def store_call(store: object, what: str, run_id: str) -> Iterator[None]:
    """Turn a store's own failure (``OSError``, a driver error...) into a ``CheckpointError``.

    The run then ends ``FAILED`` with it as ``result.error`` (the original is ``__cause__``)
    instead of escaping ``run`` bare or inside an ``ExceptionGroup``.
    """
    try:
        yield
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint store {type(store).__name__} failed to {what} for run {run_id!r}: "
            f"{exc!r}; the checkpoints written before are intact: resume the run once the "
            "store works again"
        ) from exc
