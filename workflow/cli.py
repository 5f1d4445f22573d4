"""``ledgerflow``: run, resume, list and draw workflows from the command line.

The one module of ``workflow`` that wires the layers together (it imports ``visualize``).
Commands: ``run``, ``resume``, ``runs``, ``checkpoints``, ``viz``; every one that reads runs
takes ``--store URL`` (default ``sqlite:///.ledgerflow/runs.db``). A workflow loaded from a
file runs with the CLI's store: ``--store`` when given, else the workflow's own store, else
the default.

Exit codes: 0 completed, 3 awaiting input, 1 failed (or cancelled, or out of supersteps, or
an environment problem such as a missing ``dot``), 2 usage errors. Errors are one line on
stderr; ``LEDGERFLOW_TRACEBACK=1`` shows the traceback of unexpected ones. Progress is drawn
on stderr when it is a terminal; stdout carries the run id and outputs (or, with ``--json``,
one JSON object per event).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import functools
import importlib.machinery
import importlib.util
import inspect
import json
import math
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import anyio
import anyio.to_thread

from ._errors import CheckpointError
from ._workflow import Workflow
from .events import RequestInfo, RunFinished, RunStarted, WorkflowEvent

__all__ = ("DEFAULT_STORE", "UsageError", "load_workflow", "main")

DEFAULT_STORE = "sqlite:///.ledgerflow/runs.db"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3
_EXIT = {"completed": EXIT_OK, "awaiting_input": EXIT_WAITING}


class UsageError(Exception):
    """A mistake in what the user asked for: one line on stderr, exit code 2."""


class RunError(Exception):
    """The environment or the run failed: one line on stderr, exit code 1."""


def say(text: str) -> None:
    """A line of results on stdout (flushed: a reader may be waiting for it)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(text: str) -> None:
    """A line for the human on stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# -- loading FILE.py[:ATTR] ---------------------------------------------------------------------
def split_target(target: str) -> tuple[Path, str | None]:
    """``"dir/app.py:build"`` -> ``(Path("dir/app.py"), "build")``; the ATTR is optional."""
    if Path(target).is_file():  # a file whose name has a colon
        return Path(target), None
    path, sep, attr = target.rpartition(":")
    if sep and path and attr and all(part.isidentifier() for part in attr.split(".")):
        return Path(path), attr
    return Path(target), None


def _import(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"no such file: {str(path)!r}; pass FILE.py[:ATTR]")
    resolved = path.resolve()
    # The module name is part of each executor class's name, which the graph hash covers:
    # it must not change between `run` and `resume`, so derive it from the file name only.
    stem = re.sub(r"\W", "_", resolved.stem)
    name = stem if stem.isidentifier() and stem not in sys.modules else f"_ledgerflow_{stem}"
    loader = importlib.machinery.SourceFileLoader(name, str(resolved))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    sys.path.insert(0, str(resolved.parent))  # let it import its sibling modules
    try:
        loader.exec_module(module)
    except SystemExit as exc:
        raise UsageError(f"importing {str(path)!r} called exit({exc.code!r})") from None
    except BaseException as exc:
        if os.environ.get("LEDGERFLOW_TRACEBACK") == "1":
            raise
        raise UsageError(f"importing {str(path)!r} failed: {type(exc).__name__}: {exc}") from None
    return module


async def load_workflow(target: str) -> Workflow:
    """Load ``FILE.py[:ATTR]``: ATTR names a Workflow or a zero-argument function returning one
    (sync or async); without ATTR, the module's only Workflow.

    Raises:
        UsageError: the file, attribute or workflow is missing, or there are several.
    """
    path, attr = split_target(target)
    module = _import(path)
    if attr is None:
        return _only_workflow(module, path)
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise UsageError(f"{str(path)!r} has no attribute {attr!r}")
        value = getattr(value, part)
    if isinstance(value, Workflow):
        return value
    if not callable(value):
        raise UsageError(f"{attr!r} in {str(path)!r} is a {type(value).__name__}, not a Workflow")
    try:
        inspect.signature(value).bind()
    except TypeError:
        raise UsageError(
            f"{attr!r} in {str(path)!r} takes arguments; name a Workflow or a function that "
            "takes none"
        ) from None
    except ValueError:
        pass  # no signature to check (a builtin): just call it
    try:
        built = value()
        if inspect.isawaitable(built):
            built = await built
    except Exception as exc:
        raise UsageError(f"{attr}() in {str(path)!r} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(built, Workflow):
        raise UsageError(
            f"{attr}() in {str(path)!r} returned a {type(built).__name__}, not a Workflow "
            "(did you forget .build()?)"
        )
    return built


def _only_workflow(module: Any, path: Path) -> Workflow:
    found: dict[int, tuple[str, Workflow]] = {}
    for name, value in vars(module).items():
        if isinstance(value, Workflow) and not name.startswith("_"):
            found.setdefault(id(value), (name, value))
    nested = {id(child) for _, wf in found.values() for child in _children(wf)}
    if len(found) > 1 and len(found.keys() - nested) == 1:  # the others are its sub-workflows
        found = {k: v for k, v in found.items() if k not in nested}
    if len(found) == 1:
        return next(iter(found.values()))[1]
    if found:
        names = ", ".join(name for name, _ in found.values())
        first = next(iter(found.values()))[0]
        raise UsageError(
            f"{str(path)!r} defines several workflows ({names}); pick one: {path}:{first}"
        )
    builders = [
        name
        for name, value in vars(module).items()
        if inspect.isfunction(value) and value.__module__ == module.__name__ and _no_args(value)
    ]
    hint = f" (functions that might build one: {', '.join(builders)})" if builders else ""
    raise UsageError(
        f"{str(path)!r} defines no Workflow; pass FILE.py:ATTR naming a Workflow or a function "
        f"returning one{hint}"
    )


def _children(wf: Workflow, depth: int = 0) -> list[Workflow]:
    """Workflows nested in ``wf`` as sub-workflow nodes, at any depth."""
    found: list[Workflow] = []
    for ex in wf.executors.values():
        child = getattr(ex, "workflow", None)
        if isinstance(child, Workflow) and depth < 16:
            found += [child, *_children(child, depth + 1)]
    return found


def _no_args(fn: Callable[..., Any]) -> bool:
    try:
        inspect.signature(fn).bind()
    except (TypeError, ValueError):
        return False
    return True


# -- stores, inputs, responses ------------------------------------------------------------------
def open_store(url: str) -> Any:
    """The store ``url`` names; a bad URL is a usage error."""
    from_url = _store_from_url()
    try:
        return from_url(url)
    except ValueError as exc:
        raise UsageError(f"--store: {exc}") from None


def _store_from_url() -> Callable[[str], Any]:
    import workflow

    found: Any = getattr(workflow, "store_from_url", None)
    if found is None:  # not re-exported yet: the stores package has it
        from ._stores import store_from_url

        found = store_from_url
    return found  # type: ignore[no-any-return]


def read_input(raw: str | None, wf: Workflow) -> Any:
    """``--input TEXT`` (JSON if the start executor does not take text) or ``@file.json``."""
    if raw is None:
        raise UsageError("run needs --input TEXT or --input @file.json")
    start = wf.executors[wf.start_executor_id]
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"--input {raw!r}: cannot read {str(path)!r}: {exc.strerror}"
            ) from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--input {raw!r}: not valid JSON: {exc}") from None
    if start.can_handle(raw):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw  # the run reports the type mismatch with the start executor's types
    return value


def parse_responses(items: Sequence[str]) -> dict[str, Any]:
    """``["approve:1:1=\"yes\"", ...]`` -> ``{"approve:1:1": "yes"}``; values are JSON."""
    responses: dict[str, Any] = {}
    for item in items:
        request_id, sep, raw = item.partition("=")
        if not sep or not request_id:
            raise UsageError(f"--respond {item!r}: expected REQUEST_ID=JSON")
        try:
            responses[request_id] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"--respond {item!r}: {raw!r} is not valid JSON ({exc.msg}); quote text as "
                f"JSON, e.g. {request_id}='\"yes\"'"
            ) from None
    return responses


# -- output ---------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Turn an event field into JSON: containers recursively, models dumped, the rest str."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, type):
        return value.__qualname__
    if dataclasses.is_dataclass(value):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json"))
        except Exception:
            return str(value)
    return str(value)


def event_json(event: WorkflowEvent) -> str:
    """One JSON line: ``{"event": ClassName, ...fields}``."""
    body = {"event": type(event).__name__}
    body.update({f.name: jsonable(getattr(event, f.name)) for f in dataclasses.fields(event)})
    return json.dumps(body, ensure_ascii=False)


def show(value: Any) -> str:
    """An output on one line: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)


def _example(tp: Any) -> str:
    return {str: '"..."', int: "0", float: "0.0", bool: "true"}.get(tp, "<JSON>")


class Session:
    """One ``run``/``resume`` invocation: how to draw progress and print results."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.json = bool(getattr(args, "json", False))
        tty = sys.stderr.isatty() and not self.json
        self.interactive = tty and sys.stdin.isatty() and not args.no_input
        from visualize._progress import live_progress

        self.view = live_progress(tty, lambda r: self.resume_hint(r.run_id, r))

    def resume_hint(self, run_id: str | None, request: Any) -> str:
        """The exact command that answers ``request`` (a ``RequestInfo`` or ``PendingRequest``)."""
        parts = ["ledgerflow", "resume", self.args.target, str(run_id)]
        parts += ["--respond", f"{request.request_id}={_example(request.response_type)}"]
        if self.args.store is not None:
            parts += ["--store", self.args.store]
        command = " ".join(shlex.quote(p) for p in parts)
        asked = f"{request.request_id} from {request.executor_id}: {_short(request.payload)}"
        return f"{asked} -> {command}"

    async def consume(self, stream: AsyncIterator[WorkflowEvent]) -> RunSummary:
        summary = RunSummary()
        try:
            async for event in stream:
                summary.take(event)
                if self.json:
                    say(event_json(event))
                self.view.update(event)
        finally:
            self.view.close()
        return summary


def _short(value: Any) -> str:
    from visualize._progress import preview

    return preview(value, 80)


@dataclasses.dataclass
class RunSummary:
    """What the final report needs, gathered from the events."""

    run_id: str | None = None
    status: str | None = None
    error: str | None = None
    outputs: list[Any] = dataclasses.field(default_factory=list)
    requests: dict[str, Any] = dataclasses.field(default_factory=dict)

    def take(self, event: WorkflowEvent) -> None:
        from .events import OutputEmitted

        match event:
            case RunStarted(run_id=run_id):
                self.run_id = run_id
            case OutputEmitted(data=data):
                self.outputs.append(data)
            case RequestInfo(request_id=request_id):
                self.requests[request_id] = event
            case RunFinished(status=status, error=error):
                self.status, self.error = str(status), error
                pending = getattr(event, "pending_requests", None)  # once the core reports it
                if pending is not None:
                    self.requests = {r.request_id: r for r in pending}
            case _:
                pass


# -- commands ----------------------------------------------------------------------------------
async def _bind(wf: Workflow, url: str | None) -> tuple[Workflow, Any]:
    if url is None and wf.checkpoint_store is not None:
        return wf, wf.checkpoint_store
    store = open_store(url or DEFAULT_STORE)
    return wf.with_store(store), store


async def cmd_run(args: argparse.Namespace) -> int:
    wf, store = await _bind(await load_workflow(args.target), args.store)
    try:
        value = read_input(args.input, wf)
        session = Session(args)
        summary = await _stream(session, lambda: wf.run_stream(value, run_id=args.run_id))
        while summary.status == "awaiting_input" and session.interactive:
            responses = await _ask(summary)
            if not responses:
                break
            run_id = summary.run_id
            assert run_id is not None
            again = functools.partial(wf.resume_stream, run_id, responses=responses)
            summary = await _stream(session, again)
        return _report(session, summary)
    finally:
        await _close(store)


async def cmd_resume(args: argparse.Namespace) -> int:
    responses = parse_responses(args.respond or [])
    wf, store = await _bind(await load_workflow(args.target), args.store)
    try:
        session = Session(args)
        summary = await _stream(
            session,
            lambda: wf.resume_stream(
                args.run_id, checkpoint_id=args.checkpoint, responses=responses
            ),
        )
        if summary.status is None or (summary.status == "completed" and not summary.outputs):
            # a completed run runs nothing: its stream has no outputs, its record does
            result = await wf.resume(args.run_id, checkpoint_id=args.checkpoint)
            summary = RunSummary(
                run_id=result.run_id,
                status=str(result.status),
                error=str(result.error) if result.error is not None else None,
                outputs=list(result.outputs),
                requests={r.request_id: r for r in result.pending_requests},
            )
        return _report(session, summary)
    finally:
        await _close(store)


async def _stream(
    session: Session, start: Callable[[], AsyncIterator[WorkflowEvent]]
) -> RunSummary:
    """Run a stream to its end, turning refusals before the run started into usage errors."""
    try:
        return await session.consume(start())
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    except KeyError as exc:  # a response to a request the run does not have
        raise UsageError(str(exc.args[0]) if exc.args else repr(exc)) from None
    except TypeError as exc:  # the input or a response has the wrong type
        raise UsageError(str(exc)) from None


async def _ask(summary: RunSummary) -> dict[str, Any]:
    """Prompt on the terminal for each pending request; an empty answer leaves it pending."""
    responses: dict[str, Any] = {}
    for request in summary.requests.values():
        prompt = (
            f"{request.executor_id} asks: {_short(request.payload)}\n"
            f"  answer {request.request_id} (JSON, or plain text; empty to stop): "
        )
        try:
            raw = await anyio.to_thread.run_sync(input, prompt)
        except EOFError:
            break
        if not raw.strip():
            break
        try:
            responses[request.request_id] = json.loads(raw)
        except json.JSONDecodeError:
            responses[request.request_id] = raw
    summary.requests.clear()
    return responses


def _report(session: Session, summary: RunSummary) -> int:
    status = summary.status or "unknown"
    if not session.json:
        say(f"run: {summary.run_id}")
        say(f"status: {status}")
        for value in summary.outputs:
            say(f"output: {show(value)}")
        for request in summary.requests.values():
            say(f"waiting: {session.resume_hint(summary.run_id, request)}")
    if status not in _EXIT:
        warn(f"ledgerflow: run {summary.run_id} {status}: {summary.error or ''}".rstrip(": "))
    return _EXIT.get(status, EXIT_FAILED)


async def cmd_runs(args: argparse.Namespace) -> int:
    store = open_store(args.store or DEFAULT_STORE)
    try:
        runs = await store.list_runs()
    finally:
        await _close(store)
    rows = [[r.run_id, r.workflow_name, str(r.status), r.updated_at.isoformat()] for r in runs]
    _table(args, ["run_id", "workflow", "status", "updated_at"], rows, "no runs in the store")
    return EXIT_OK


async def cmd_checkpoints(args: argparse.Namespace) -> int:
    store = open_store(args.store or DEFAULT_STORE)
    try:
        checkpoints = await store.list_checkpoints(args.run_id)
    finally:
        await _close(store)
    if not checkpoints:
        raise UsageError(f"unknown run {args.run_id!r}: the store has no checkpoints for it")
    rows = [
        [c.id, str(c.superstep), c.parent_id or "-", str(c.status), c.created_at.isoformat()]
        for c in checkpoints
    ]
    _table(args, ["checkpoint_id", "superstep", "parent_id", "status", "created_at"], rows, "")
    return EXIT_OK


def _table(args: argparse.Namespace, header: list[str], rows: list[list[str]], empty: str) -> None:
    if args.json:
        for row in rows:
            say(json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False))
        return
    if not rows:
        warn(empty)
        return
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]
    for row in [[h.upper() for h in header], *rows]:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


async def cmd_viz(args: argparse.Namespace) -> int:
    from visualize import FORMATS, DotNotFoundError, load_overlay, render

    wf = await load_workflow(args.target)
    if Path(args.output).suffix.lower() not in FORMATS:
        raise UsageError(f"-o {args.output!r}: unknown suffix; use one of {', '.join(FORMATS)}")
    run: Any = None
    if args.run is not None:
        url = args.store or (None if wf.checkpoint_store is not None else DEFAULT_STORE)
        store = wf.checkpoint_store if url is None else open_store(url)
        try:
            run = await load_overlay(args.run, store)
        except LookupError:
            raise UsageError(
                f"unknown run {args.run!r}: the store has no checkpoint for it"
            ) from None
        finally:
            if url is not None:
                await _close(store)
    try:
        path = render(wf, args.output, run=run, direction=args.direction)
    except DotNotFoundError as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    say(str(path))
    return EXIT_OK


async def _close(store: Any) -> None:
    close = getattr(store, "aclose", None)
    if close is not None:
        await close()


# -- entry point -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ledgerflow: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``ledgerflow`` argument parser."""
    parser = _Parser(prog="ledgerflow", description="Run, resume and draw Ledgerflow workflows.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    store = _Parser(add_help=False)
    store.add_argument("--store", metavar="URL", help=f"checkpoint store (default {DEFAULT_STORE})")
    streaming = _Parser(add_help=False)
    streaming.add_argument("--json", action="store_true", help="stream events as JSON lines")
    streaming.add_argument("--no-input", action="store_true", help="never prompt on a terminal")

    run = sub.add_parser("run", parents=[store, streaming], help="start a run")
    run.add_argument("target", metavar="FILE.py[:ATTR]")
    run.add_argument("--input", metavar="TEXT|@file.json", help="the run's input")
    run.add_argument("--run-id", metavar="ID", help="id for the new run (default: random)")
    run.set_defaults(handler=cmd_run)

    resume = sub.add_parser("resume", parents=[store, streaming], help="continue a run")
    resume.add_argument("target", metavar="FILE.py[:ATTR]")
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument(
        "--respond", action="append", metavar="REQUEST_ID=JSON", help="answer a pending request"
    )
    resume.add_argument("--checkpoint", metavar="ID", help="fork from this checkpoint")
    resume.set_defaults(handler=cmd_resume)

    runs = sub.add_parser("runs", parents=[store], help="list runs")
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    runs.set_defaults(handler=cmd_runs)

    checkpoints = sub.add_parser("checkpoints", parents=[store], help="list a run's checkpoints")
    checkpoints.add_argument("run_id", metavar="RUN_ID")
    checkpoints.add_argument("--json", action="store_true", help="one JSON object per checkpoint")
    checkpoints.set_defaults(handler=cmd_checkpoints)

    viz = sub.add_parser("viz", parents=[store], help="draw a workflow (and a run's overlay)")
    viz.add_argument("target", metavar="FILE.py[:ATTR]")
    viz.add_argument(
        "-o", "--output", required=True, metavar="OUT", help=".svg .png .pdf .dot .mmd"
    )
    viz.add_argument("--run", metavar="RUN_ID", help="colour the diagram with this run")
    viz.add_argument("--direction", choices=("TB", "LR"), default="TB")
    viz.set_defaults(handler=cmd_viz)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], Any] = args.handler
    try:
        return int(anyio.run(handler, args))
    except UsageError as exc:
        warn(f"ledgerflow: error: {exc}")
        return EXIT_USAGE
    except RunError as exc:
        warn(f"ledgerflow: error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        warn("ledgerflow: interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("LEDGERFLOW_TRACEBACK") == "1":
            raise
        warn(
            f"ledgerflow: internal error: {type(exc).__name__}: {exc} "
            "(LEDGERFLOW_TRACEBACK=1 shows where)"
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
