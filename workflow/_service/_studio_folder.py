"""The team builder's routes and the folder of spec files it saves to (and watches).

``POST /api/studio/validate`` checks a draft as the page types (the spec loader's problems and a
diagram of the draft); ``POST /api/studio/teams`` saves it as ``NAME.yaml``; ``GET
/api/studio/teams`` lists the folder's teams with a ``version`` that changes whenever a file
does; ``GET /api/studio/teams/{name}`` gives one back as a draft. The folder is watched by
polling: each ``GET /api/studio/teams`` (the page asks every second or so) compares the files'
modification times and sizes with the last look, reloads what changed and serves the new
workflow under its name, so an edit of a file on disk shows up in the page. No thread or
inotify: nothing runs when nobody looks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from workflow._errors import GraphValidationError
from workflow._telemetry import redact
from workflow._workflow import Workflow

from ._errors import ApiError
from ._studio_teams import KINDS, DraftError, SpecLoader, draft_to_spec, spec_to_draft

__all__ = ("StudioTeams", "TeamFolder", "team_routes")

_SPECS = (".yaml", ".yml", ".json")
MAX_DRAFT_BYTES = 1_000_000


@dataclass
class StudioTeams:
    """What the CLI hands the studio for its builder (the core imports no ``builders``).

    Attributes:
        folder: Where saved teams go and which files are watched (``None``: no saving).
        load_draft: A spec document -> workflow (``builders.load_spec`` with the studio's tools,
            imports never allowed: the document came over HTTP).
        load_file: A spec file -> workflow, as ``ledgerflow run`` loads it (the person chose
            the folder); raises with a message naming the problem.
        tools: Tool name -> (``module:attr`` for the spec's imports, description).
        render_svg: Draws a workflow (the live diagram); ``None`` when there is no renderer.
    """

    folder: Path | None
    load_draft: SpecLoader | None
    load_file: Callable[[Path], Workflow] | None = None
    tools: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    render_svg: Callable[[Workflow], bytes] | None = None


class TeamFolder:
    """The spec files of one folder, seen by modification time: reloaded when they change."""

    def __init__(self, folder: Path, load_file: Callable[[Path], Workflow] | None) -> None:
        self.folder = folder
        self.load_file = load_file
        self.version = 0
        self.seen: dict[str, tuple[int, int]] = {}
        self.names: dict[str, str] = {}  # file -> the workflow name it serves
        self.errors: dict[str, str] = {}
        self._last = 0.0
        for path in self._files():
            self.seen[path.name] = _stamp(path)
            name = _name_in(path)
            if name:
                self.names[path.name] = name

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(
            p
            for p in self.folder.iterdir()
            if p.is_file() and p.suffix in _SPECS and not p.name.startswith(".")
        )

    def wrote(self, path: Path, name: str) -> None:
        """The studio itself wrote ``path``: not an outside edit, but still a new version."""
        self.seen[path.name] = _stamp(path)
        self.names[path.name] = name
        self.errors.pop(path.name, None)
        self.version += 1

    def scan(
        self, workflows: MutableMapping[str, Workflow], bind: Callable[[Workflow], Workflow]
    ) -> None:
        """Reload the files that changed since the last look (at most every 0.2 s)."""
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        present = {p.name: p for p in self._files()}
        for gone in set(self.seen) - set(present):
            del self.seen[gone]
            self.errors.pop(gone, None)
            name = self.names.pop(gone, None)
            if name is not None and name not in self.names.values():
                workflows.pop(name, None)
            self.version += 1
        for file, path in present.items():
            stamp = _stamp(path)
            if self.seen.get(file) == stamp:
                continue
            self.seen[file] = stamp
            self.version += 1
            self._reload(file, path, workflows, bind)

    def _reload(
        self,
        file: str,
        path: Path,
        workflows: MutableMapping[str, Workflow],
        bind: Callable[[Workflow], Workflow],
    ) -> None:
        if self.load_file is None:
            return
        try:
            wf = self.load_file(path)
        except Exception as exc:  # the loader's message names the place; the old one stays
            self.errors[file] = redact(str(exc))
            return
        owner = next((f for f, n in self.names.items() if n == wf.name and f != file), None)
        if owner is None and wf.name in workflows and self.names.get(file) != wf.name:
            self.errors[file] = f"a workflow named {wf.name!r} is served already; rename this team"
            return
        if owner is not None:
            self.errors[file] = f"{owner} defines {wf.name!r} already; rename this team"
            return
        self.errors.pop(file, None)
        old = self.names.get(file)
        if old is not None and old != wf.name:
            workflows.pop(old, None)
        self.names[file] = wf.name
        workflows[wf.name] = bind(wf)

    def listing(self, served: Mapping[str, Workflow]) -> list[dict[str, Any]]:
        """Each spec file: its team, when it changed, and why it is not served (if it is not)."""
        return [
            {
                "file": file,
                "name": self.names.get(file),
                "mtime_ns": self.seen[file][0],
                "error": self.errors.get(file)
                or (
                    None
                    if self.names.get(file) in served
                    else "it did not load when the studio started (the studio's log says why); "
                    "fix it and save: it is loaded again"
                ),
            }
            for file in sorted(self.seen)
        ]


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return (0, 0)
    return (info.st_mtime_ns, info.st_size)


def _name_in(path: Path) -> str | None:
    try:
        document = _read(path)
    except Exception:
        return None
    name = document.get("name")
    return name if isinstance(name, str) else None


def _read(path: Path) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a mapping")
    return data


def _problem_list(exc: Exception) -> list[tuple[str, str]]:
    if isinstance(exc, DraftError):
        return exc.problems
    path = str(getattr(exc, "path", "") or "")
    message = str(exc).removeprefix(f"{path}: ") if path else str(exc)
    return [(_draft_path(path), message)]


def _draft_path(path: str) -> str:
    """A spec path as the draft's: executors and clients are the agents the page shows."""
    if path.startswith(("manager.", "clients.magentic_manager")):
        return "manager.client"
    if path.startswith(("selector.", "clients.speaker_selector")):
        return "selector.client"
    if path.startswith("clients."):
        agent, _, tail = path.removeprefix("clients.").partition(".")
        return f"agents.{agent}.client" + (f".{tail}" if tail else "")
    if path.startswith("executors."):
        return "agents." + path.removeprefix("executors.").partition(".")[0]
    return path


def _problems(problems: list[tuple[str, str]], status: int = 422) -> Response:
    first = problems[0][1] if problems else "invalid draft"
    return JSONResponse(
        {
            "error": {
                "type": "invalid_spec",
                "message": first,
                "problems": [{"path": p, "message": m} for p, m in problems],
            }
        },
        status_code=status,
    )


def team_routes(
    teams: StudioTeams, bind: Callable[[Request, Workflow], Workflow]
) -> list[BaseRoute]:
    """The builder's routes (see the module docstring); ``bind`` readies a workflow to serve."""
    folder = TeamFolder(teams.folder, teams.load_file) if teams.folder is not None else None
    imports = {name: value[0] for name, value in teams.tools.items()}

    async def body(request: Request) -> Any:
        # the service's limit for a request body (a draft is a few kilobytes)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_DRAFT_BYTES:
                raise ApiError(413, "too_large", f"a draft is limited to {MAX_DRAFT_BYTES} bytes")
            chunks.append(chunk)
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "invalid_json", "the body is not JSON") from None

    def check(draft: Any) -> tuple[dict[str, Any], Workflow]:
        if teams.load_draft is None:
            raise ApiError(409, "no_spec_loader", "this studio cannot load specs")
        spec = draft_to_spec(draft, imports)
        return spec, teams.load_draft(spec)

    async def library(request: Request) -> Response:
        return JSONResponse(
            {
                "kinds": list(KINDS),
                "clients": ["scripted", "openai"],
                "tools": [
                    {"name": name, "description": description}
                    for name, (_, description) in sorted(teams.tools.items())
                ],
                "folder": str(teams.folder) if teams.folder is not None else None,
            }
        )

    async def validate(request: Request) -> Response:
        draft = await body(request)
        try:
            spec, wf = check(draft)
        except (DraftError, GraphValidationError) as exc:  # SpecError derives from the latter
            problems = _problem_list(exc)
            return JSONResponse(
                {"ok": False, "problems": [{"path": p, "message": m} for p, m in problems]}
            )
        diagram = None
        if teams.render_svg is not None:
            try:
                svg = await anyio.to_thread.run_sync(teams.render_svg, wf)
                diagram = svg.decode("utf-8")
            except Exception:  # no dot: the page says so; the draft is still valid
                diagram = None
        import yaml

        text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
        return JSONResponse({"ok": True, "problems": [], "diagram": diagram, "spec": text})

    async def save(request: Request) -> Response:
        if folder is None:
            raise ApiError(
                409,
                "no_target_directory",
                "the studio has no directory to save teams in; start it with a directory "
                "TARGET (ledgerflow studio teams/)",
            )
        draft = await body(request)
        try:
            spec, wf = check(draft)
        except (DraftError, GraphValidationError) as exc:
            return _problems(_problem_list(exc))
        target = folder.folder / f"{spec['name']}.yaml"
        known = request.app.state.manager.workflows
        replace = isinstance(draft, Mapping) and draft.get("replace") is True
        ours = folder.names.get(target.name) == spec["name"]
        if (target.exists() or spec["name"] in known) and not (replace and ours):
            return _problems(
                [("name", f"a workflow named {spec['name']!r} exists already; pick another name")]
            )
        if target.exists():  # replacing: never a file with parts the builder cannot show
            try:
                _, reason = spec_to_draft(_read(target))
            except Exception as exc:
                reason = f"it does not read as a spec ({exc})"
            if reason is not None:
                return _problems(
                    [
                        (
                            "name",
                            f"{target.name} has parts the builder cannot show ({reason}); "
                            "edit it by hand, or save this team under another name",
                        )
                    ]
                )
        import yaml

        target.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
        folder.wrote(target, wf.name)
        request.app.state.manager.workflows[wf.name] = bind(request, wf)
        return JSONResponse({"name": wf.name, "path": str(target)}, status_code=201)

    async def listing(request: Request) -> Response:
        if folder is None:
            return JSONResponse({"version": 0, "folder": None, "teams": []})
        manager = request.app.state.manager
        folder.scan(manager.workflows, lambda wf: bind(request, wf))
        return JSONResponse(
            {
                "version": folder.version,
                "folder": str(folder.folder),
                "teams": folder.listing(manager.workflows),
            }
        )

    async def team(request: Request) -> Response:
        name = request.path_params["name"]
        file = next((f for f, n in (folder.names.items() if folder else ()) if n == name), None)
        if folder is None or file is None:
            raise ApiError(404, "unknown_team", f"no team {name!r} in the studio's folder")
        try:
            document = _read(folder.folder / file)
        except Exception as exc:
            raise ApiError(409, "unreadable_team", f"{file}: {exc}") from None
        draft, reason = spec_to_draft(document)
        return JSONResponse(
            {
                "name": name,
                "file": file,
                "version": folder.version,
                "draft": draft,
                "editable": reason is None,
                "reason": reason,
                "error": folder.errors.get(file),
            }
        )

    return [
        Route("/api/studio/library", library, methods=["GET"]),
        Route("/api/studio/validate", validate, methods=["POST"]),
        Route("/api/studio/teams", save, methods=["POST"]),
        Route("/api/studio/teams", listing, methods=["GET"]),
        Route("/api/studio/teams/{name}", team, methods=["GET"]),
    ]
