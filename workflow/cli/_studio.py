"""``ledgerflow studio``: the service's API plus the Studio page at ``/`` (the serve extra).

The page (``visualize/studio/``, plain ES modules) speaks only the service's API, so anything a
person does there goes through the same routes, validation and store as ``ledgerflow serve``
and the CLI. It binds 127.0.0.1 only: the studio is a local tool with no token.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio

from workflow._stores._postgres_db import redact

from ._common import DEFAULT_STORE, EXIT_OK, UsageError, add_store_option, open_store, warn
from ._serve import _svg, load_targets

__all__ = ("cmd_studio", "register", "static_dir")


def register(sub: Any) -> None:
    """Add ``studio`` to the ``ledgerflow`` subcommands."""
    studio = sub.add_parser(
        "studio", help="build, run and watch workflows in the browser (local web page)"
    )
    add_store_option(studio)
    studio.add_argument(
        "targets",
        nargs="*",
        metavar="TARGET",
        help="FILE.py[:ATTR], a spec file, or a directory of them",
    )
    studio.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    studio.add_argument(
        "--no-browser", action="store_true", help="do not open the page in a browser"
    )
    studio.set_defaults(handler=cmd_studio)


def static_dir() -> Path:
    """Where the page's files are (inside the installed ``visualize`` package)."""
    import visualize

    return Path(visualize.__file__).parent / "studio"


def cmd_studio(args: argparse.Namespace) -> int:
    try:
        from workflow._service import serve
        from workflow._service._studio import studio_routes
    except ImportError as exc:
        raise UsageError(
            f"ledgerflow studio needs the serve extra ({exc.name} is missing): "
            "pip install 'ledgerflow[serve]'"
        ) from None
    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port!r}: expected 1-65535")
    store = args.store or DEFAULT_STORE
    open_store(store)  # a bad URL is a usage error now, not a traceback from the server
    workflows = anyio.run(load_targets, list(args.targets))
    url = f"http://127.0.0.1:{args.port}/"
    shown = ", ".join(wf.name for wf in workflows) or "none"
    warn(f"ledgerflow studio: {url} (workflows: {shown}; store: {redact(store)})")
    if not args.no_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, (url,)).start()
    serve(
        workflows,
        store_url=store,
        host="127.0.0.1",
        port=args.port,
        render_svg=_svg,
        route_factories=[
            studio_routes(static_dir(), save_dir=_save_dir(args.targets), load_spec=_load_spec)
        ],
    )
    return EXIT_OK


def _save_dir(targets: list[str]) -> Path | None:
    """The first directory TARGET: where the team builder writes the specs it saves."""
    for target in targets:
        path = Path(target)
        if path.is_dir():
            return path
    return None


def _load_spec(document: Any) -> Any:
    """A builder draft's spec, loaded as ``ledgerflow run`` would (imports never allowed)."""
    from builders import load_spec

    return load_spec(document, allow_imports=False)
