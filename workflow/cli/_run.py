"""``ledgerflow run`` and ``ledgerflow resume``: start or continue a run and report it."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from workflow._backend import Backend, LocalBackend
from workflow._errors import CheckpointError
from workflow._history import BreakpointError
from workflow._workflow import Workflow
from workflow.events import RequestInfo, RunFinished, RunStarted, WorkflowEvent

from ._common import (
    DEFAULT_STORE,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_WAITING,
    UsageError,
    add_store_option,
    add_streaming_options,
    close_store,
    event_json,
    open_store,
    say,
    show,
    warn,
)
from ._load import load_workflow

_EXIT = {"completed": EXIT_OK, "awaiting_input": EXIT_WAITING}


def register(sub: Any) -> None:
    """Add ``run`` and ``resume`` to the ``ledgerflow`` subcommands."""
    run = sub.add_parser("run", help="start a run")
    add_store_option(run)
    add_streaming_options(run)
    run.add_argument("target", metavar="FILE.py[:ATTR]|SPEC.yaml")
    run.add_argument("--input", metavar="TEXT|@file.json", help="the run's input")
    run.add_argument("--run-id", metavar="ID", help="id for the new run (default: random)")
    _add_pause_before(run)
    add_backend_option(run)
    run.set_defaults(handler=cmd_run)

    resume = sub.add_parser("resume", help="continue a run")
    add_store_option(resume)
    add_streaming_options(resume)
    resume.add_argument("target", metavar="FILE.py[:ATTR]|SPEC.yaml")
    resume.add_argument("run_id", metavar="RUN_ID")
    resume.add_argument(
        "--respond", action="append", metavar="REQUEST_ID=JSON", help="answer a pending request"
    )
    resume.add_argument("--checkpoint", metavar="ID", help="fork from this checkpoint")
    add_backend_option(resume)
    resume.add_argument(
        "--state",
        action="append",
        metavar="KEY=JSON",
        help="fork with this run-wide state key replaced (from --checkpoint, else the latest)",
    )
    _add_pause_before(resume)
    resume.set_defaults(handler=cmd_resume)


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    """``--backend local|ray[:ADDRESS]``: where the run's invocations execute."""
    parser.add_argument(
        "--backend",
        default="local",
        metavar="local|ray[:ADDRESS]",
        help="where invocations run: in this process (default), or on Ray (a new local "
        "instance, or ray:auto, ray:ray://host:port)",
    )


def parse_backend(raw: str) -> Backend:
    """``local`` -> ``LocalBackend()``; ``ray`` or ``ray:ADDRESS`` -> ``RayBackend(...)``."""
    name, sep, address = raw.partition(":")
    if name == "local" and not sep:
        return LocalBackend()
    if name == "ray":
        if sep and not address:
            raise UsageError(
                f"--backend {raw!r}: give an address after 'ray:' (ray:ADDRESS) or use 'ray'"
            )
        from workflow import RayBackend

        return RayBackend(address=address or None)
    raise UsageError(f"--backend {raw!r}: expected 'local', 'ray' or 'ray:ADDRESS' (e.g. ray:auto)")


def _add_pause_before(parser: Any) -> None:
    parser.add_argument(
        "--pause-before",
        action="append",
        metavar="ID",
        help="stop before this executor runs (a breakpoint; answer it with --respond ID=null)",
    )


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


def parse_responses(items: Sequence[str], option: str = "--respond") -> dict[str, Any]:
    """``["approve:1:1=\"yes\"", ...]`` -> ``{"approve:1:1": "yes"}``; values are JSON."""
    what = "REQUEST_ID" if option == "--respond" else "KEY"
    responses: dict[str, Any] = {}
    for item in items:
        request_id, sep, raw = item.partition("=")
        if not sep or not request_id:
            raise UsageError(f"{option} {item!r}: expected {what}=JSON")
        try:
            responses[request_id] = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{option} {item!r}: {raw!r} is not valid JSON ({exc.msg}); quote text as "
                f"JSON, e.g. {request_id}='\"yes\"'"
            ) from None
    return responses


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
        from workflow.events import OutputEmitted

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


async def _bind(wf: Workflow, url: str | None) -> tuple[Workflow, Any]:
    if url is None and wf.checkpoint_store is not None:
        return wf, wf.checkpoint_store
    store = open_store(url or DEFAULT_STORE)
    return wf.with_store(store), store


def _ship_target(backend: Backend, target: str) -> None:
    """Let Ray workers unpickle a target file's executors: send its module by value.

    The CLI imports ``FILE.py`` from its folder, which workers do not have on their path; a
    target made of several modules needs them installed on the workers (docs/ray.md).
    """
    if type(backend).__name__ != "RayBackend":
        return
    path = Path(target.partition(":")[0]).resolve()
    if path.suffix != ".py":
        return  # a spec: its executors come from installed packages
    import ray.cloudpickle

    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and Path(file).resolve() == path:
            ray.cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]


async def cmd_run(args: argparse.Namespace) -> int:
    backend = parse_backend(args.backend)
    wf, store = await _bind(await load_workflow(args.target), args.store)
    _ship_target(backend, args.target)
    try:
        value = read_input(args.input, wf)
        session = Session(args)
        with _refusals():
            async with wf.run_stream(
                value, run_id=args.run_id, pause_before=args.pause_before, backend=backend
            ) as events:
                summary = await session.consume(events)
        while summary.status == "awaiting_input" and session.interactive:
            responses = await _ask(summary)
            if not responses:
                break
            run_id = summary.run_id
            assert run_id is not None
            with _refusals():
                async with wf.resume_stream(run_id, responses=responses, backend=backend) as events:
                    summary = await session.consume(events)
        return _report(session, summary)
    finally:
        await close_store(store)


async def cmd_resume(args: argparse.Namespace) -> int:
    backend = parse_backend(args.backend)
    responses = parse_responses(args.respond or [])
    updates = parse_responses(args.state, "--state") if args.state else None
    wf, store = await _bind(await load_workflow(args.target), args.store)
    _ship_target(backend, args.target)
    try:
        session = Session(args)
        with _refusals():
            async with wf.resume_stream(
                args.run_id,
                checkpoint_id=args.checkpoint,
                responses=responses,
                state_updates=updates,
                backend=backend,
                pause_before=args.pause_before,
            ) as events:
                summary = await session.consume(events)
        if updates is None and (
            summary.status is None or (summary.status == "completed" and not summary.outputs)
        ):
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
        await close_store(store)


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Turn a stream's refusals before its run started into usage errors.

    Wraps ``async with wf.run_stream(...) as events`` (the run is a child of the calling
    task, no helper thread): an error or an interrupt while reading cancels the run and waits
    until it has recorded that, before it comes out here.
    """
    try:
        yield
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    except KeyError as exc:  # a response to a request the run does not have
        raise UsageError(str(exc.args[0]) if exc.args else repr(exc)) from None
    except TypeError as exc:  # the input or a response has the wrong type
        raise UsageError(str(exc)) from None
    except BreakpointError as exc:  # --pause-before names no executor of the workflow
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
