"""``GET /openapi.json``: the API described for clients and code generators (OpenAPI 3.1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow._workflow import Workflow

__all__ = ("openapi_document",)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
_PENDING = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string"},
        "executor_id": {"type": "string"},
        "payload": {},
        "response_schema": {"type": "object"},
    },
}
_RUN = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string"},
        "workflow": {"type": "string"},
        "status": {"$ref": "#/components/schemas/RunStatus"},
        "outputs": {"type": "array", "items": {}},
        "pending_requests": {"type": "array", "items": {"$ref": "#/components/schemas/Pending"}},
        "error": {"type": ["string", "null"]},
    },
}
_STATUS = {
    "type": "string",
    "enum": ["running", "completed", "awaiting_input", "failed", "cancelled", "max_supersteps"],
}


def _json(schema: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _op(summary: str, ok: str, body: Any = None, **responses: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {}}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    for code, schema in {ok: responses.pop("schema", {}), **responses}.items():
        code = code.lstrip("_")
        op["responses"][code] = {"description": summary if code == ok else "error"}
        if schema is not None:
            op["responses"][code].update(_json(schema))
    for code in ("400", "401", "404", "409", "413", "422"):
        op["responses"].setdefault(code, {"description": "error", **_json(_ref("Error"))})
    return op


def _param(name: str, where: str = "path") -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": {"type": "string"}}


def openapi_document(workflows: Mapping[str, Workflow]) -> dict[str, Any]:
    """The document; ``input_schema`` of each workflow is in ``GET /api/workflows``."""
    run_id = _param("run_id")
    runs_body = {
        "type": "object",
        "required": ["input"],
        "properties": {"input": {}, "run_id": {"type": "string"}},
    }
    started = {"type": "object", "properties": {"run_id": {"type": "string"}, "status": _STATUS}}
    paths: dict[str, Any] = {
        "/api/workflows": {
            "get": _op("List the served workflows", "200", schema={"type": "array"})
        },
        "/api/workflows/{name}/diagram.svg": {
            "get": {
                **_op("The workflow's diagram (SVG)", "200", schema=None),
                "parameters": [_param("name")],
            }
        },
        "/api/workflows/{name}/runs": {
            "post": {
                **_op("Start a run; it goes on in the server", "201", runs_body, schema=started),
                "parameters": [_param("name")],
            }
        },
        "/api/runs": {
            "get": {
                **_op("List runs", "200", schema={"type": "array"}),
                "parameters": [_param("workflow", "query"), _param("status", "query")],
            }
        },
        "/api/runs/{run_id}": {
            "get": {**_op("A run", "200", schema=_ref("Run")), "parameters": [run_id]}
        },
        "/api/runs/{run_id}/events": {
            "get": {
                "summary": "The run's events as server-sent events (replayed, then live)",
                "parameters": [run_id, {**_param("Last-Event-ID", "header")}],
                "responses": {"200": {"description": "text/event-stream"}},
            }
        },
        "/api/runs/{run_id}/responses": {
            "post": {
                **_op(
                    "Answer pending requests {request_id: answer}",
                    "202",
                    {"type": "object"},
                    schema=started,
                ),
                "parameters": [run_id],
            }
        },
        "/api/runs/{run_id}/cancel": {
            "post": {**_op("Cancel a run", "200", schema=started), "parameters": [run_id]}
        },
        "/api/runs/{run_id}/checkpoints": {
            "get": {
                **_op("A run's checkpoints", "200", schema={"type": "array"}),
                "parameters": [run_id],
            }
        },
        "/api/runs/{run_id}/fork": {
            "post": {
                **_op(
                    "Fork a new run from a checkpoint",
                    "201",
                    {
                        "type": "object",
                        "required": ["checkpoint_id"],
                        "properties": {
                            "checkpoint_id": {"type": "string"},
                            "state_updates": {"type": "object"},
                        },
                    },
                    schema=started,
                ),
                "parameters": [run_id],
            }
        },
        "/v1/responses": {
            "post": _op(
                "OpenAI Responses API: model names a workflow taking text",
                "200",
                {"type": "object", "required": ["model", "input"]},
                schema={"type": "object"},
            )
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Ledgerflow service",
            "version": "1",
            "description": "Workflows served: " + (", ".join(sorted(workflows)) or "none"),
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": _ERROR, "Pending": _PENDING, "Run": _RUN, "RunStatus": _STATUS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
