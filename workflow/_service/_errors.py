"""The one error the API raises on purpose: an HTTP status, a stable type and a message."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from workflow._errors import CheckpointError, WorkflowError, store_call
from workflow._telemetry import redact

__all__ = ("ApiError", "error_body", "store_read")


class ApiError(WorkflowError):
    """A request the service refuses; rendered as ``{"error": {"type", "message"}}``.

    Args:
        status: the HTTP status (400, 401, 404, 409, 413, 422, ...).
        type: a short stable name clients can branch on (``unknown_workflow``, ...).
        message: what went wrong and how to fix it, naming the culprit.
        details: optional structured details (validation errors).
    """

    def __init__(self, status: int, type: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.details = details


def error_body(type: str, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    error: dict[str, Any] = {"type": type, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


@contextlib.contextmanager
def store_read(store: object, what: str, run_id: str | None = None) -> Iterator[None]:
    """A store read for a request: its failure is a ``503 store_failed`` naming the call.

    The store's own error becomes a ``CheckpointError`` (``store_call``, which is the
    ``__cause__``); the client gets its redacted message instead of a bare ``500 internal``,
    and may retry once the store works again.
    """
    try:
        with store_call(store, what, run_id):
            yield
    except CheckpointError as exc:
        raise ApiError(503, "store_failed", redact(str(exc))) from exc
