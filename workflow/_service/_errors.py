"""The one error the API raises on purpose (an HTTP status, a stable type and a message), and
how engine errors and invalid answers become one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from workflow._errors import CheckpointError, WorkflowError, store_call
from workflow._result import PendingRequest
from workflow._telemetry import redact

from ._encode import adapter

__all__ = (
    "ApiError",
    "api_error",
    "convert_answer",
    "error_body",
    "first_error",
    "locked",
    "store_read",
    "validation_details",
)


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


def locked(exc: BaseException) -> bool:
    """Whether ``exc`` says another process holds the run (the only reason to try again)."""
    return type(exc).__name__ == "RunLockedError" or "being executed" in str(exc)


def convert_answer(request: PendingRequest, value: Any) -> Any:
    tp = request.response_type
    if tp is object or tp is Any:
        return value
    try:
        return adapter(tp).validate_python(value)
    except ValidationError as exc:
        raise ApiError(
            422,
            "invalid_answer",
            f"answer to request {request.request_id!r} does not match its response_schema: "
            f"{first_error(exc)}",
            details=validation_details(exc),
        ) from None


def validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where + ': ' if where else ''}{first['msg']}"


def api_error(exc: BaseException) -> ApiError:
    text = str(exc)
    if isinstance(exc, CheckpointError):
        if locked(exc):
            return ApiError(409, "run_elsewhere", text)
        if "unknown" in text:
            return ApiError(404, "unknown_run", text)
        return ApiError(409, "checkpoint_error", text)
    if isinstance(exc, TypeError | KeyError):
        return ApiError(422, "invalid_answer", text)
    return ApiError(500, "internal", f"{type(exc).__name__}")
