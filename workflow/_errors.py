"""The exception tree every Ledgerflow error belongs to.

::

    WorkflowError                                  catch this for anything raised on purpose
    ├── GraphValidationError (also ValueError)     build() found a broken graph
    ├── ExecutorFailedError                        an executor raised; the original is __cause__
    ├── CheckpointError                            a checkpoint is unknown, corrupt or foreign,
    │                                              or the store itself failed (cause: its error)
    │   └── UnknownRunError (also LookupError)     visualize: no checkpoint of that run
    ├── UnknownRequestError (also KeyError)        resume(responses=...) named no pending request
    ├── SerializationError (also TypeError)        a value cannot be checkpointed (_serde)
    ├── SpeakerSelectionError, HandoffError        builders: a team picked no valid speaker
    ├── ChatClientError                            executors._chat: a model request failed
    │   ├── ChatConfigError (also ValueError)      misconfigured client
    │   ├── ChatStatusError, ChatRetryError        HTTP status; retries spent
    │   ├── ChatResponseError, ChatTruncatedError  unusable or cut-off reply
    │   └── ChatParseError (also ValueError)       structured output did not validate
    ├── AgentError                                 executors._agents (also a team's participant)
    │   └── ToolLoopLimitError, ApprovalRequiredError, TruncatedResponseError, A2AError
    ├── ToolError (also RuntimeError)              executors: a tool reported a failure
    ├── ToolUnavailableError                       the service behind a tool is gone
    │   └── MCPServerError
    ├── SubWorkflowError (also RuntimeError)       a nested workflow ended without completing
    ├── MagenticError                              executors._magentic_ledger
    │   └── MagenticLedgerError                    no usable progress ledger
    ├── SandboxUnavailableError (also RuntimeError)  no working code sandbox here
    └── DotNotFoundError (also RuntimeError)       visualize: Graphviz's dot is missing

Catch ``WorkflowError`` to handle anything the engine raises on purpose. Messages name the
culprit (executor, edge, type, checkpoint) and, where there is one, the fix. Bad input that
Python has a builtin for stays that builtin (``TypeError`` for an input the start executor
cannot accept or a response of the wrong type), as the contract says.
``tests/workflow/test_errors.py`` walks every module and fails on a class outside this tree,
and parses every ``raise`` and fails on a builtin raised for a run-time failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = (
    "CheckpointError",
    "ExecutorFailedError",
    "GraphValidationError",
    "UnknownRequestError",
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


class UnknownRequestError(WorkflowError, KeyError):
    """``resume(responses={id: ...})`` named a request the run is not waiting for.

    Also a ``KeyError`` (what a mapping lookup raises), with a readable message instead of
    ``KeyError``'s quoted repr.

    Attributes:
        request_id: The unknown id.
        pending: The ids the run is waiting for.
    """

    def __init__(self, message: str, *, request_id: str, pending: tuple[str, ...]) -> None:
        super().__init__(message)
        self.request_id = request_id
        self.pending = pending

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_unknown, (str(self), self.request_id, self.pending))


def _rebuild_unknown(
    message: str, request_id: str, pending: tuple[str, ...]
) -> UnknownRequestError:
    return UnknownRequestError(message, request_id=request_id, pending=pending)


@contextlib.contextmanager
def store_call(store: object, what: str, run_id: str | None) -> Iterator[None]:
    """Turn a store's own failure (``OSError``, a driver error...) into a ``CheckpointError``.

    The run then ends ``FAILED`` with it as ``result.error`` (the original is ``__cause__``)
    instead of escaping ``run`` bare or inside an ``ExceptionGroup``. Readers outside a run
    (the CLI, the service listing runs) pass ``run_id=None``.
    """
    try:
        yield
    except CheckpointError:
        raise
    except Exception as exc:
        if run_id is None:
            raise CheckpointError(
                f"checkpoint store {type(store).__name__} failed to {what}: {exc!r}; try "
                "again once the store works"
            ) from exc
        raise CheckpointError(
            f"checkpoint store {type(store).__name__} failed to {what} for run {run_id!r}: "
            f"{exc!r}; the checkpoints written before are intact: resume the run once the "
            "store works again"
        ) from exc
