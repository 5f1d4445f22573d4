"""``ledgerflow serve``: serve workflows over HTTP (the ``serve`` extra: Starlette, uvicorn).

Targets are loaded once, at start-up, by the operator's choice; no request can load another
one. The server binds 127.0.0.1 unless told otherwise and refuses any other address without
``--token``. Runs are kept in ``--store``; a restart resumes the runs that were in progress.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import anyio

from workflow._stores._postgres_db import redact
from workflow._workflow import Workflow

from ._common import DEFAULT_STORE, EXIT_OK, UsageError, add_store_option, open_store, warn
from ._load import load_workflow

__all__ = ("cmd_serve", "load_targets", "register")

_SUFFIXES = (".py", ".yaml", ".yml", ".json")


def register(sub: Any) -> None:
    """Add ``serve`` to the ``ledgerflow`` subcommands."""
    serve = sub.add_parser("serve", help="serve workflows over HTTP (JSON API, SSE, OpenAI)")
    add_store_option(serve)
    serve.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="FILE.py[:ATTR], a spec file, or a directory of them",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument(
        "--token",
        default=os.environ.get("LEDGERFLOW_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' (required off loopback; "
        "default $LEDGERFLOW_TOKEN)",
    )
    serve.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow this browser origin (repeatable; no CORS by default)",
    )
    serve.add_argument(
        "--max-body", type=int, default=1_000_000, metavar="BYTES", help="request size limit"
    )
    serve.add_argument(
        "--a2a", action="store_true", help="also serve each workflow as an A2A agent at /a2a/NAME"
    )
    serve.add_argument(
        "--agui", action="store_true", help="also serve an AG-UI endpoint per workflow: /agui/NAME"
    )
    serve.set_defaults(handler=cmd_serve)


async def load_targets(targets: list[str]) -> list[Workflow]:
    """Every workflow the targets name; a directory contributes each file that loads."""
    found: list[Workflow] = []
    for target in targets:
        files = _directory(target)
        if files is None:
            found.append(await load_workflow(target))
            continue
        loaded = 0
        for file in files:
            try:
                found.append(await load_workflow(file))
                loaded += 1
            except UsageError as exc:
                warn(f"ledgerflow serve: skipping {file!r}: {exc}")
        if not loaded:
            raise UsageError(f"no workflow could be loaded from directory {target!r}")
    names: dict[str, Workflow] = {}
    for wf in found:
        if wf.name in names and names[wf.name] is not wf:
            raise UsageError(
                f"two targets define a workflow named {wf.name!r}; the API addresses workflows "
                "by name, so give them unique names (WorkflowBuilder(name=...))"
            )
        names[wf.name] = wf
    return list(names.values())


def _directory(target: str) -> list[str] | None:
    """The loadable files of directory ``target`` (``None`` when it is not a directory)."""
    path = Path(target)
    if not path.is_dir():
        return None
    return [str(p) for p in sorted(path.iterdir()) if p.suffix in _SUFFIXES and p.is_file()]


def _svg(wf: Workflow) -> bytes:
    from visualize import to_dot

    data: bytes = to_dot(wf).pipe(format="svg")
    return data


def require_serve_extra(command: str, port: int) -> None:
    """A usage error when the web server's extra is missing or ``port`` is out of range.

    Both ``ledgerflow serve`` and ``ledgerflow studio`` check this before loading anything.
    """
    try:
        import workflow._service  # noqa: F401  (starlette and uvicorn load with it)
    except ImportError as exc:
        raise UsageError(
            f"ledgerflow {command} needs the serve extra ({exc.name} is missing): "
            "pip install 'ledgerflow[serve]'"
        ) from None
    if not 0 < port < 65536:
        raise UsageError(f"--port {port!r}: expected 1-65535")


def cmd_serve(args: argparse.Namespace) -> int:
    require_serve_extra("serve", args.port)
    from workflow._errors import WorkflowError
    from workflow._service import serve
    from workflow._service._server import check_bind

    try:
        check_bind(args.host, args.token)
    except WorkflowError as exc:
        raise UsageError(str(exc)) from None
    store = args.store or DEFAULT_STORE
    open_store(store)  # a bad URL is a usage error now, not a traceback from the server
    workflows = anyio.run(load_targets, list(args.targets))
    shown = ", ".join(wf.name for wf in workflows) or "none"
    warn(
        f"ledgerflow serve: http://{args.host}:{args.port} (workflows: {shown}; "
        f"store: {redact(store)})"
    )
    serve(
        workflows,
        store_url=store,
        host=args.host,
        port=args.port,
        token=args.token or None,
        render_svg=_svg,
        cors_origins=args.cors,
        max_body_bytes=args.max_body,
        route_factories=_interop_routes(args),
    )
    return EXIT_OK


def _interop_routes(args: argparse.Namespace) -> list[Any]:
    """The A2A and AG-UI routes asked for (the executors package builds them)."""
    factories: list[Any] = []
    try:
        if args.a2a:
            from executors._a2a_server import a2a_routes

            factories.append(a2a_routes(f"http://{args.host}:{args.port}"))
        if args.agui:
            from executors._agui import agui_routes

            factories.append(agui_routes())
    except ImportError as exc:
        extra = "a2a" if args.a2a else "agui"
        raise UsageError(
            f"--{extra} needs an optional SDK ({exc.name} is missing): "
            f"pip install 'ledgerflow[{extra}]'"
        ) from None
    return factories
