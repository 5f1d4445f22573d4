"""Live progress of a run in a terminal, fed one event at a time (used by ``ledgerflow``).

``RunProgress`` keeps what the events said (superstep, executors running and done, outputs,
tokens, pending requests); ``live_progress`` draws it with ``rich`` when it is installed and
the stream is a terminal, else prints one plain line per superstep. ``rich`` is imported
lazily: it is an optional extra.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from workflow.events import (
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    OutputEmitted,
    RequestInfo,
    RunFinished,
    RunStarted,
    SuperstepStarted,
    WorkflowEvent,
)

from ._style import TIMES

__all__ = ("ProgressView", "RunProgress", "live_progress", "preview", "usage_of")

Hint = Callable[[RequestInfo], str]


def preview(value: Any, limit: int = 60) -> str:
    """A one-line, length-capped rendering of a value for humans."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def usage_of(value: Any) -> tuple[int, int]:
    """Token usage carried by an event or an output (``.usage`` with input/output tokens)."""
    usage = getattr(value, "usage", None)
    if usage is None and isinstance(value, OutputEmitted):
        usage = getattr(value.data, "usage", None)
    if usage is None:
        return 0, 0
    return int(getattr(usage, "input_tokens", 0) or 0), int(getattr(usage, "output_tokens", 0) or 0)


@dataclass
class RunProgress:
    """What a run's events have said so far."""

    workflow: str = ""
    run_id: str = ""
    superstep: int = 0
    running: list[str] = field(default_factory=list)
    done: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    outputs: list[Any] = field(default_factory=list)
    requests: list[RequestInfo] = field(default_factory=list)
    tokens: tuple[int, int] = (0, 0)
    status: str | None = None

    def handle(self, event: WorkflowEvent) -> bool:
        """Take one event; returns whether the display should be redrawn."""
        tokens_in, tokens_out = usage_of(event)
        if tokens_in or tokens_out:
            self.tokens = (self.tokens[0] + tokens_in, self.tokens[1] + tokens_out)
        match event:
            case RunStarted(workflow_name=name, run_id=run_id, superstep=step):
                self.workflow, self.run_id, self.superstep = name, run_id, step
            case SuperstepStarted(superstep=step, executor_ids=ids):
                self.superstep, self.running = step, list(ids)
            case ExecutorInvoked(executor_id=eid, superstep=step) if eid not in self.running:
                # eager scheduling: no superstep events, executors start one by one
                self.running.append(eid)
                self.superstep = max(self.superstep, step)
            case ExecutorCompleted(executor_id=eid):
                self.done[eid] = self.done.get(eid, 0) + 1
                self._stop(eid)
            case ExecutorFailed(executor_id=eid, error=error):
                self.failed[eid] = error
                self._stop(eid)
            case OutputEmitted(data=data):
                self.outputs.append(data)
            case RequestInfo():
                self.requests.append(event)
            case RunFinished(status=status):
                self.status, self.running = str(status), []
            case _:
                return bool(tokens_in or tokens_out)
        return True

    def _stop(self, eid: str) -> None:
        if eid in self.running:
            self.running.remove(eid)


class ProgressView(Protocol):
    """Something that shows a ``RunProgress`` as events arrive."""

    def update(self, event: WorkflowEvent) -> None: ...

    def close(self) -> None: ...


class _Quiet:
    def update(self, event: WorkflowEvent) -> None:
        return None

    def close(self) -> None:
        return None


class _Plain:
    """One line per superstep and per request, for terminals without ``rich``."""

    def __init__(self, progress: RunProgress, stream: IO[str], hint: Hint) -> None:
        self.progress, self.stream, self.hint = progress, stream, hint

    def update(self, event: WorkflowEvent) -> None:
        self.progress.handle(event)
        if isinstance(event, SuperstepStarted):
            ids = ", ".join(event.executor_ids)
            print(f"superstep {event.superstep}: {ids}", file=self.stream, flush=True)
        elif isinstance(event, RequestInfo):
            print(f"waiting: {self.hint(event)}", file=self.stream, flush=True)

    def close(self) -> None:
        return None


class _Rich:
    """A ``rich.live.Live`` panel redrawn on every meaningful event."""

    def __init__(self, progress: RunProgress, stream: IO[str], hint: Hint) -> None:
        from rich.console import Console
        from rich.live import Live

        self.progress, self.hint = progress, hint
        self.console = Console(file=stream)
        self.live = Live(self._render(), console=self.console, refresh_per_second=8)
        self.live.start()

    def update(self, event: WorkflowEvent) -> None:
        if self.progress.handle(event):
            self.live.update(self._render())

    def close(self) -> None:
        self.live.update(self._render())
        self.live.stop()

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        p = self.progress
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", justify="right")
        grid.add_column()
        title = Text(f"{p.workflow or 'workflow'} · run {p.run_id} · superstep {p.superstep}")
        if p.status is None:
            grid.add_row(Spinner("dots"), title)
        else:
            colour = {"completed": "green", "awaiting_input": "yellow"}.get(p.status, "red")
            grid.add_row(Text(p.status, style=colour), title)
        if p.running:
            grid.add_row("running", Text(", ".join(p.running), style="cyan"))
        if p.done:
            done = ", ".join(f"{k}{TIMES}{n}" if n > 1 else k for k, n in p.done.items())
            grid.add_row("done", Text(done, style="green"))
        for eid, error in p.failed.items():
            grid.add_row("failed", Text(f"{eid}: {preview(error, 100)}", style="red"))
        if p.outputs:
            grid.add_row("outputs", Text(f"{len(p.outputs)} · last: {preview(p.outputs[-1])}"))
        if any(p.tokens):
            grid.add_row("tokens", Text(f"{p.tokens[0]} in / {p.tokens[1]} out"))
        for request in p.requests:
            grid.add_row("waiting", Text(self.hint(request), style="yellow"))
        return grid


def live_progress(enabled: bool, hint: Hint, stream: IO[str] | None = None) -> ProgressView:
    """A progress view on ``stream`` (stderr): rich if installed, plain lines otherwise.

    Args:
        enabled: False for a quiet view (not a terminal, or JSON output).
        hint: Renders a pending request with the command that answers it.
        stream: Where to draw; stderr keeps stdout for the run's results.
    """
    if not enabled:
        return _Quiet()
    out = stream if stream is not None else sys.stderr
    progress = RunProgress()
    try:
        import rich  # noqa: F401
    except ImportError:
        return _Plain(progress, out, hint)
    return _Rich(progress, out, hint)
