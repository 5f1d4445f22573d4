"""The one error the API raises on purpose: an HTTP status, a stable type and a message."""

from __future__ import annotations

from typing import Any

from workflow._errors import WorkflowError

__all__ = ("ApiError", "error_body")


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
