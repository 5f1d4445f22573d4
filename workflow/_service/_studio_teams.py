"""The Studio's team builder route: a draft from the page becomes a spec file and a workflow.

Core-only: the CLI hands in the spec loader (``builders.load_spec``, never with imports
allowed, since the draft comes over HTTP), so nothing here imports ``builders``. Problems come
back as a list of ``{path, message}`` where ``path`` is the spec document's path
(``agents.writer.client``), so the page can show each one next to the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workflow._errors import GraphValidationError, WorkflowError
from workflow._workflow import Workflow

from ._errors import ApiError

__all__ = ("SpecLoader", "draft_to_spec", "save_team_endpoint")

SpecLoader = Callable[[Mapping[str, Any]], Workflow]
# A team name is a file name too: letters, digits and underscores only, so no path traversal.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_KINDS = ("group_chat", "sequential")


class DraftError(WorkflowError):
    """Problems in a draft, each ``(path, message)``; never raised out of this module."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {m}" for p, m in problems))
        self.problems = problems


def _text(draft: Mapping[str, Any], key: str, path: str, problems: list[tuple[str, str]]) -> str:
    value = draft.get(key, "")
    if not isinstance(value, str):
        problems.append((path, f"expected text, got {type(value).__name__}"))
        return ""
    return value.strip()


def draft_to_spec(draft: Any) -> dict[str, Any]:
    """The spec document a builder draft describes (one client per agent, named after it).

    Raises:
        DraftError: The draft's shape is wrong (a bad name, duplicate agents, no agents).
    """
    if not isinstance(draft, Mapping):
        raise DraftError([("", "expected a JSON object with name, kind, agents and options")])
    problems: list[tuple[str, str]] = []
    name = _text(draft, "name", "name", problems)
    if not _IDENT.match(name):
        problems.append(
            ("name", f"{name!r} is not a valid name: use letters, digits and _ (e.g. my_team)")
        )
    kind = draft.get("kind")
    if kind not in _KINDS:
        problems.append(("kind", f"unknown team kind {kind!r}; expected one of {list(_KINDS)}"))
    agents_in = draft.get("agents")
    if not isinstance(agents_in, list) or not agents_in:
        problems.append(("agents", "add at least one agent"))
        agents_in = []
    agents: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    for index, raw in enumerate(agents_in):
        if not isinstance(raw, Mapping):
            problems.append((f"agents[{index}]", "expected an object"))
            continue
        agent = _text(raw, "name", f"agents[{index}].name", problems)
        if not _IDENT.match(agent):
            problems.append(
                (
                    f"agents[{index}].name",
                    f"{agent!r} is not a valid agent name (letters, digits, _)",
                )
            )
            continue
        if agent in agents:
            problems.append(
                (f"agents[{index}].name", f"two agents are named {agent!r}; give each its own name")
            )
            continue
        client = raw.get("client")
        clients[agent] = dict(client) if isinstance(client, Mapping) else client
        agents[agent] = {
            "description": _text(raw, "description", f"agents.{agent}.description", problems),
            "instructions": _text(raw, "instructions", f"agents.{agent}.instructions", problems),
            "client": agent,
        }
    if problems:
        raise DraftError(problems)
    spec: dict[str, Any] = {"kind": kind, "name": name}
    description = _text(draft, "description", "description", problems)
    if description:
        spec["description"] = description
    spec.update(clients=clients, agents=agents, participants=list(agents))
    options = draft.get("options") or {}
    if isinstance(options, Mapping):
        spec.update({k: v for k, v in options.items() if v not in (None, "")})
    return spec


def save_team_endpoint(
    save_dir: Path | None,
    load: SpecLoader | None,
    add: Callable[[Request, Workflow], None],
) -> Callable[[Request], Any]:
    """``POST /api/studio/teams``: validate a draft, write ``NAME.yaml``, serve the workflow."""

    async def save(request: Request) -> Response:
        if save_dir is None or load is None:
            raise ApiError(
                409,
                "no_target_directory",
                "the studio has no directory to save teams in; start it with a directory "
                "TARGET (ledgerflow studio teams/)",
            )
        try:
            draft = await request.json()
        except ValueError:
            raise ApiError(400, "invalid_json", "the body is not JSON") from None
        try:
            spec = draft_to_spec(draft)
            wf = load(spec)
        except DraftError as exc:
            return _problems(exc.problems)
        except GraphValidationError as exc:  # builders.SpecError derives from it
            path = str(getattr(exc, "path", "") or "")
            message = str(exc).removeprefix(f"{path}: ") if path else str(exc)
            return _problems([(path, message)])
        target = save_dir / f"{spec['name']}.yaml"
        known = request.app.state.manager.workflows
        if target.exists() or spec["name"] in known:
            return _problems(
                [("name", f"a workflow named {spec['name']!r} exists already; pick another name")]
            )
        import yaml

        target.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
        add(request, wf)
        return JSONResponse({"name": wf.name, "path": str(target)}, status_code=201)

    return save


def _problems(problems: list[tuple[str, str]]) -> Response:
    first = problems[0][1] if problems else "invalid draft"
    return JSONResponse(
        {
            "error": {
                "type": "invalid_spec",
                "message": first,
                "problems": [{"path": p, "message": m} for p, m in problems],
            }
        },
        status_code=422,
    )
