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
from workflow._workflow import Workflow

from ._common import DEFAULT_STORE, EXIT_OK, UsageError, add_store_option, open_store, warn
from ._load import load_spec_file, load_workflow
from ._serve import _svg, load_targets, require_serve_extra

__all__ = ("cmd_studio", "load_studio_targets", "register", "static_dir")


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
    studio.add_argument(
        "--tools",
        action="append",
        default=[],
        metavar="FILE.py",
        help="offer the tools (and public functions) defined in FILE.py to the team builder "
        "(repeatable)",
    )
    studio.set_defaults(handler=cmd_studio)


def static_dir() -> Path:
    """Where the page's files are (inside the installed ``visualize`` package)."""
    import visualize

    return Path(visualize.__file__).parent / "studio"


def cmd_studio(args: argparse.Namespace) -> int:
    require_serve_extra("studio", args.port)
    from workflow._service import serve
    from workflow._service._studio import studio_routes

    store = args.store or DEFAULT_STORE
    open_store(store)  # a bad URL is a usage error now, not a traceback from the server
    save_dir = _save_dir(args.targets)
    tools = load_tools(args.tools)
    workflows = anyio.run(load_studio_targets, list(args.targets))
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
        route_factories=[studio_routes(static_dir(), teams=_teams(save_dir, tools))],
    )
    return EXIT_OK


_LOADABLE = (".py", ".yaml", ".yml", ".json")


def _is_directory_target(target: str) -> bool:
    """A directory, or a path that names none yet and looks like one (no suffix, no ``:ATTR``)."""
    path = Path(target)
    if path.is_dir():
        return True
    return not path.exists() and not path.suffix and ":" not in path.name


def _save_dir(targets: list[str]) -> Path | None:
    """The first directory TARGET: where the team builder writes the specs it saves.

    A directory that does not exist yet is created, so ``ledgerflow studio teams/`` is how a
    person starts from nothing.
    """
    for target in targets:
        if _is_directory_target(target):
            path = Path(target)
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(
                    f"cannot create the team directory {target!r}: {exc.strerror}; "
                    "pass a directory you can write to"
                ) from None
            return path
    return None


def _directory_files(targets: list[str]) -> list[str]:
    """The loadable files in the directory TARGETs (hidden files and editor backups left out)."""
    files: list[str] = []
    for target in targets:
        if _is_directory_target(target) and Path(target).is_dir():
            files += [
                str(p)
                for p in sorted(Path(target).iterdir())
                if p.is_file() and p.suffix in _LOADABLE and not p.name.startswith(".")
            ]
    return files


async def load_studio_targets(targets: list[str]) -> list[Workflow]:
    """The workflows to serve, as ``ledgerflow serve`` loads them, except that a directory
    may be empty (the builder fills it) and a file in it that does not load is skipped with a
    warning (a spec being edited by hand must not stop the studio)."""
    singles = [t for t in targets if not _is_directory_target(t)]
    found = await load_targets(singles)
    for path in _directory_files(targets):
        try:
            found.append(await load_workflow(path))
        except UsageError as exc:
            warn(f"ledgerflow studio: skipping {path!r}: {exc}")
    names: dict[str, Workflow] = {}
    for wf in found:
        if wf.name in names and names[wf.name] is not wf:
            raise UsageError(
                f"two targets define a workflow named {wf.name!r}; the API addresses workflows "
                "by name, so give them unique names"
            )
        names[wf.name] = wf
    return list(names.values())


def load_tools(files: list[str]) -> dict[str, tuple[Any, str, str]]:
    """Each tool FILE.py offers: name -> (the function or Tool, ``module:attr``, description).

    A tool is a ``Tool`` (``@tool``) or a public function defined in that file (not imported
    into it). The ``module:attr`` goes in a saved spec's ``imports``: ``ledgerflow run`` finds
    it when FILE.py sits next to the spec (the spec's folder is importable).
    """
    import inspect

    from executors import Tool

    from ._load import _import

    found: dict[str, tuple[Any, str, str]] = {}
    for file in files:
        module = _import(Path(file))
        stem = Path(file).stem
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("_"):
                continue
            if isinstance(value, Tool):
                description = value.description
            elif inspect.isfunction(value) and value.__module__ == module.__name__:
                description = (inspect.getdoc(value) or "").split("\n\n")[0]
            else:
                continue
            found[attr] = (value, f"{stem}:{attr}", " ".join(description.split()))
    return found


def _teams(folder: Path | None, tools: dict[str, tuple[Any, str, str]]) -> Any:
    from builders import load_spec
    from workflow._service._studio_folder import StudioTeams

    functions = {name: value[0] for name, value in tools.items()}

    def load_draft(document: Any) -> Any:
        # a draft came over HTTP: only the studio's own tools, never the spec's imports
        return load_spec(document, functions=functions, allow_imports=False)

    def load_file(path: Path) -> Any:
        # a file in the person's folder, loaded as `ledgerflow run` would (their choice)
        try:
            return load_spec_file(path)
        except UsageError as exc:
            raise ValueError(str(exc)) from None

    return StudioTeams(
        folder=folder,
        load_draft=load_draft,
        load_file=load_file,
        tools={name: (value[1], value[2]) for name, value in tools.items()},
        render_svg=_svg,
    )
