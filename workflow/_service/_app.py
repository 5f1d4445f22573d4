"""The ASGI app: routes, JSON errors, bearer token, body limit (Starlette).

Every route speaks JSON (errors are ``{"error": {"type", "message"}}``); the run routes hand
the work to the :class:`RunManager` and return at once. Nothing a request carries is imported
or evaluated: workflows are the ones the server was started with, looked up by name, and
inputs and answers are validated against the types those workflows declare.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from workflow._telemetry import redact
from workflow._workflow import Workflow

from ._encode import input_adapter
from ._errors import ApiError, error_body, store_read
from ._eventlog import EventLog, MemoryEventLog
from ._openapi import openapi_document
from ._runs import RunManager
from ._sse import event_stream

__all__ = ("DEFAULT_MAX_BODY", "create_app")

log = logging.getLogger("ledgerflow.service")

DEFAULT_MAX_BODY = 1_000_000
SvgRenderer = Callable[[Workflow], bytes]
RouteFactory = Callable[[Mapping[str, Workflow]], Sequence[BaseRoute]]


def create_app(
    workflows: Mapping[str, Workflow] | Sequence[Workflow],
    store: Any,
    *,
    events: EventLog | None = None,
    token: str | None = None,
    cors_origins: Sequence[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY,
    render_svg: SvgRenderer | None = None,
    adopt_interval: float | None = 5.0,
    close_store: bool = False,
    route_factories: Sequence[RouteFactory] = (),
) -> Starlette:
    """Build the service for ``workflows`` (bound to ``store``) as a Starlette app.

    Args:
        workflows: the workflows to serve, by name (a sequence is keyed by ``wf.name``).
        store: the checkpoint store every run is kept in.
        events: the event log (default: in memory; ``eventlog_for_url`` gives the durable one).
        token: when set, every request needs ``Authorization: Bearer <token>``.
        cors_origins: origins allowed by CORS (none by default: no CORS headers at all).
        max_body_bytes: larger request bodies get 413.
        render_svg: draws a workflow as SVG for ``diagram.svg`` (the CLI passes visualize's).
        adopt_interval: seconds between looks for orphaned running runs to resume.
        close_store: close the store and the event log when the app shuts down.
        route_factories: each gets the served workflows (bound to ``store``) and returns
            extra routes (the CLI's A2A and AG-UI endpoints; the core imports no executors).
    """
    if not isinstance(workflows, Mapping):
        named: dict[str, Workflow] = {}
        for wf in workflows:
            if wf.name in named:
                raise ValueError(f"two workflows are named {wf.name!r}; give them unique names")
            named[wf.name] = wf
        workflows = named
    bound = {
        name: wf if wf.checkpoint_store is store else wf.with_store(store)
        for name, wf in workflows.items()
    }
    log_ = events or MemoryEventLog()
    manager = RunManager(bound, store, log_, adopt_interval=adopt_interval)
    api = _Api(manager, max_body_bytes, render_svg)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with manager.running():
                yield
        finally:
            if close_store:
                with anyio.CancelScope(shield=True):
                    await log_.aclose()
                    await store.aclose()

    middleware = []
    if cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            )
        )
    if token is not None:
        middleware.append(Middleware(_BearerAuth, token=token))
    extra = [route for factory in route_factories for route in factory(bound)]
    app = Starlette(
        routes=[*api.routes(), *extra],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.manager = manager
    return app


class _BearerAuth:
    """Refuse requests without ``Authorization: Bearer <token>`` (constant-time compare)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = b""
        for key, value in scope.get("headers", ()):
            if key == b"authorization":
                given = value
        if not hmac.compare_digest(given, self.expected):
            response = JSONResponse(
                error_body(
                    "unauthorized",
                    "missing or wrong bearer token; send 'Authorization: Bearer <token>'",
                ),
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(error_body(exc.type, exc.message, exc.details), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kinds = {404: "not_found", 405: "method_not_allowed"}
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return JSONResponse(
        error_body(kinds.get(exc.status_code, "http_error"), message),
        status_code=exc.status_code,
    )


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s: %s", request.method, request.url.path, redact(repr(exc)))
    return JSONResponse(
        error_body("internal", f"internal error ({type(exc).__name__}); see the server log"),
        status_code=500,
    )


class _Api:
    def __init__(self, manager: RunManager, max_body: int, render_svg: SvgRenderer | None):
        self.manager = manager
        self.max_body = max_body
        self.render_svg = render_svg
        self._svg: dict[str, tuple[Workflow, bytes]] = {}  # by name, for that very workflow

    def routes(self) -> list[Route]:
        from ._openai import responses_endpoint

        return [
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/api/workflows", self.list_workflows, methods=["GET"]),
            Route("/api/workflows/{name}/diagram.svg", self.diagram, methods=["GET"]),
            Route("/api/workflows/{name}/runs", self.start_run, methods=["POST"]),
            Route("/api/runs", self.list_runs, methods=["GET"]),
            Route("/api/runs/{run_id}", self.get_run, methods=["GET"]),
            Route("/api/runs/{run_id}/events", self.events, methods=["GET"]),
            Route("/api/runs/{run_id}/responses", self.respond, methods=["POST"]),
            Route("/api/runs/{run_id}/cancel", self.cancel, methods=["POST"]),
            Route("/api/runs/{run_id}/checkpoints", self.checkpoints, methods=["GET"]),
            Route("/api/runs/{run_id}/fork", self.fork, methods=["POST"]),
            Route("/v1/responses", responses_endpoint(self), methods=["POST"]),
        ]

    async def body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object, within the size limit (413), well-formed (400)."""
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            raise ApiError(413, "too_large", f"request body over {self.max_body} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise ApiError(413, "too_large", f"request body over {self.max_body} bytes")
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            value = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(
                400, "malformed_json", f"request body is not valid JSON: {exc}"
            ) from None
        if not isinstance(value, dict):
            raise ApiError(400, "malformed_request", "request body must be a JSON object ({...})")
        return value

    # -- workflows -----------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi_document(self.manager.workflows))

    async def list_workflows(self, request: Request) -> Response:
        return JSONResponse([describe(wf) for wf in self.manager.workflows.values()])

    async def diagram(self, request: Request) -> Response:
        wf = self.manager.workflow(request.path_params["name"])
        if self.render_svg is None:
            raise ApiError(404, "no_diagrams", "this server was started without a diagram renderer")
        cached = self._svg.get(wf.name)
        svg = cached[1] if cached is not None and cached[0] is wf else None
        if svg is None:
            try:
                svg = await anyio.to_thread.run_sync(self.render_svg, wf)
            except Exception as exc:  # e.g. graphviz's dot is not installed
                raise ApiError(
                    500, "diagram_failed", redact(f"drawing {wf.name!r} failed: {exc}")
                ) from None
            self._svg[wf.name] = (wf, svg)  # a studio may replace the workflow (file edited)
        return Response(svg, media_type="image/svg+xml")

    # -- runs ----------------------------------------------------------------------------------
    async def start_run(self, request: Request) -> Response:
        wf = self.manager.workflow(request.path_params["name"])
        body = await self.body(request)
        _only(body, {"input", "run_id"})
        if "input" not in body:
            raise ApiError(422, "invalid_input", 'the body needs "input" (see input_schema)')
        run_id = body.get("run_id")
        if run_id is not None and (not isinstance(run_id, str) or not _ok_id(run_id)):
            raise ApiError(
                422,
                "invalid_run_id",
                f"run_id must be 1-128 letters, digits, '-_.:', not {run_id!r}",
            )
        value = self.manager.convert_input(wf, body["input"])
        handle = await self.manager.start(wf, value, run_id)
        return JSONResponse({"run_id": handle.run_id, "status": handle.status}, status_code=201)

    async def list_runs(self, request: Request) -> Response:
        wanted_wf = request.query_params.get("workflow")
        wanted_status = request.query_params.get("status")
        raw_limit = request.query_params.get("limit")
        if raw_limit is not None and (not raw_limit.isdigit() or int(raw_limit) < 1):
            raise ApiError(
                422, "invalid_request", f"limit must be a positive integer, not {raw_limit!r}"
            )
        limit = int(raw_limit) if raw_limit is not None else None
        rows: list[dict[str, Any]] = []
        with store_read(self.manager.store, "list runs"):
            runs = await self.manager.store.list_runs()
        for info in runs:
            handle = self.manager.handles.get(info.run_id)
            status = handle.status if handle is not None else info.status
            if wanted_wf is not None and info.workflow_name != wanted_wf:
                continue
            if wanted_status is not None and status != wanted_status:
                continue
            rows.append(
                {
                    "run_id": info.run_id,
                    "workflow": info.workflow_name,
                    "status": status,
                    "updated_at": info.updated_at.isoformat(),
                }
            )
            if limit is not None and len(rows) >= limit:
                break
        return JSONResponse(rows)

    async def get_run(self, request: Request) -> Response:
        return JSONResponse(await self.manager.record(request.path_params["run_id"]))

    async def events(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if run_id not in self.manager.handles:
            await self.manager.run_info(run_id)  # 404 for an unknown run
        raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
        if not raw.isdigit():
            raise ApiError(400, "bad_last_event_id", f"Last-Event-ID must be a number, not {raw!r}")
        return StreamingResponse(
            event_stream(self.manager, run_id, int(raw)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def respond(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        body = await self.body(request)
        if not body:
            raise ApiError(422, "invalid_answer", "send {request_id: answer, ...}")
        handle = await self.manager.answer(run_id, body)
        return JSONResponse({"run_id": handle.run_id, "status": handle.status}, status_code=202)

    async def cancel(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        status = await self.manager.cancel(run_id)
        return JSONResponse({"run_id": run_id, "status": status})

    async def checkpoints(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        with store_read(self.manager.store, "list checkpoints", run_id):
            found = await self.manager.store.list_checkpoints(run_id)
        if not found and run_id not in self.manager.handles:
            await self.manager.run_info(run_id)  # 404 for an unknown run
        return JSONResponse(
            [
                {
                    "checkpoint_id": c.id,
                    "run_id": c.run_id,
                    "superstep": c.superstep,
                    "parent_id": c.parent_id,
                    "status": c.status,
                    "created_at": c.created_at.isoformat(),
                }
                for c in found
            ]
        )

    async def fork(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        body = await self.body(request)
        _only(body, {"checkpoint_id", "state_updates"})
        checkpoint_id = body.get("checkpoint_id")
        if not isinstance(checkpoint_id, str):
            raise ApiError(422, "invalid_fork", 'the body needs "checkpoint_id" (a string)')
        updates = body.get("state_updates")
        if updates is not None and not isinstance(updates, dict):
            raise ApiError(422, "invalid_fork", '"state_updates" must be an object {key: value}')
        info = await self.manager.run_info(run_id)
        wf = self.manager.workflow(info.workflow_name)
        handle = await self.manager.fork(wf, run_id, checkpoint_id, updates)
        return JSONResponse({"run_id": handle.run_id, "status": handle.status}, status_code=201)


def describe(wf: Workflow) -> dict[str, Any]:
    """A workflow as ``GET /api/workflows`` lists it."""
    start = wf.executors[wf.start_executor_id]
    ta = input_adapter(start.input_types())
    schema: dict[str, Any] = {}
    if ta is not None:
        with contextlib.suppress(Exception):  # a type pydantic cannot describe: any JSON
            schema = ta.json_schema()
    return {
        "name": wf.name,
        "description": str(getattr(wf, "description", "") or ""),
        "input_schema": schema,
    }


def _only(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise ApiError(
            422, "unknown_field", f"unknown field(s) {extra}; expected only {sorted(allowed)}"
        )


def _ok_id(value: str) -> bool:
    return 0 < len(value) <= 128 and all(c.isalnum() or c in "-_.:" for c in value)
