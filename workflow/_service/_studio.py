"""The Studio's extra routes: its page (static files) and each workflow's graph as JSON.

Core-only like the rest of the service: the page's files live in ``visualize/studio/`` and the
CLI passes their directory in; nothing here imports ``visualize``. The page only speaks the
service's own API (these routes and ``/api/...``), so a request never leaves the studio's origin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from workflow._errors import CheckpointError
from workflow._workflow import Workflow

from ._encode import plain
from ._errors import ApiError
from ._studio_folder import StudioTeams, team_routes
from ._studio_trace import RunTraces

__all__ = ("graph_json", "studio_routes")

_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
# The page may load nothing from elsewhere: the browser enforces it too.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; font-src 'none'; object-src 'none'; base-uri 'none'"
)


def graph_json(wf: Workflow) -> dict[str, Any]:
    """``wf``'s executors and edges, in graph order: what the page draws and colours live."""
    graph = wf.graph
    nodes = [
        {"id": eid, "kind": type(ex).__name__, "start": eid == graph.start}
        for eid, ex in graph.executors.items()
    ]
    edges: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for group in graph.groups:
        for source, target in group.pairs():
            if (source, target) not in seen:
                seen.add((source, target))
                edges.append({"source": source, "target": target})
    return {"name": wf.name, "start": graph.start, "nodes": nodes, "edges": edges}


def studio_routes(
    static_dir: Path, *, teams: StudioTeams | None = None
) -> Callable[[Mapping[str, Workflow]], Sequence[BaseRoute]]:
    """A route factory for ``create_app``: the page at ``/``, its files, the graphs.

    ``teams`` (from the CLI: the folder, the spec loader, the tools, the diagram renderer)
    enables the team builder: a saved team is written there as ``NAME.yaml`` and served at
    once, and an edit of a file there is served as soon as the page next asks.
    """
    config = teams or StudioTeams(folder=None, load_draft=None)
    files = {p.name: p for p in static_dir.iterdir() if p.is_file() and p.suffix in _TYPES}

    def factory(workflows: Mapping[str, Workflow]) -> Sequence[BaseRoute]:
        traces = RunTraces()
        for wf in workflows.values():  # the very objects the service runs
            traces.attach(wf)

        def asset(name: str) -> Response:
            path = files.get(name)
            if path is None:
                raise ApiError(404, "not_found", f"no studio file {name!r}")
            return FileResponse(
                path,
                media_type=_TYPES[path.suffix],
                headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-cache"},
            )

        async def index(request: Request) -> Response:
            return asset("index.html")

        async def static(request: Request) -> Response:
            return asset(request.path_params["file"])

        async def graph(request: Request) -> Response:
            name = request.path_params["name"]
            wf = request.app.state.manager.workflows.get(name)
            if wf is None:
                raise ApiError(
                    404,
                    "unknown_workflow",
                    f"no workflow {name!r}; known: {sorted(request.app.state.manager.workflows)}",
                )
            return JSONResponse(graph_json(wf))

        async def checkpoint(request: Request) -> Response:
            from workflow._durable import load_state

            run_id, checkpoint_id = request.path_params["run_id"], request.path_params["cid"]
            store = request.app.state.manager.store
            try:
                found = await store.load(checkpoint_id) if store is not None else None
            except CheckpointError:
                found = None
            if found is None or found.run_id != run_id:
                raise ApiError(
                    404,
                    "unknown_checkpoint",
                    f"run {run_id!r} has no checkpoint {checkpoint_id!r}; "
                    f"see GET /api/runs/{run_id}/checkpoints",
                )
            wf = request.app.state.manager.workflows.get(found.workflow_name)
            if wf is None:
                raise ApiError(404, "unknown_workflow", f"no workflow {found.workflow_name!r}")
            try:
                state, _, _ = await load_state(wf, run_id, checkpoint_id, fork=True)
            except CheckpointError as exc:
                raise ApiError(409, "checkpoint_error", str(exc)) from None
            messages = [
                {"source": d[2], "target": target, "data": plain(d[3])}
                for target, box in state.inbox.items()
                for d in box
            ]
            return JSONResponse(
                {
                    "checkpoint_id": found.id,
                    "run_id": run_id,
                    "superstep": found.superstep,
                    "status": found.status,
                    "parent_id": found.parent_id,
                    "state": plain(state.state),
                    "messages": messages,
                }
            )

        def bind(request: Request, wf: Workflow) -> Workflow:
            return traces.attach(wf.with_store(request.app.state.manager.store))

        async def trace(request: Request) -> Response:
            run_id = request.path_params["run_id"]
            await request.app.state.manager.record(run_id)  # 404 for a run that is not there
            return JSONResponse(traces.trace(run_id))

        return [
            Route("/", index, methods=["GET"]),
            *team_routes(config, bind),
            Route("/api/runs/{run_id}/trace", trace, methods=["GET"]),
            Route("/api/runs/{run_id}/checkpoints/{cid}", checkpoint, methods=["GET"]),
            Route("/studio/{file}", static, methods=["GET"]),
            Route("/api/workflows/{name}/graph", graph, methods=["GET"]),
        ]

    return factory
