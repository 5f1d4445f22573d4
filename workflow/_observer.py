"""The observer seam: hooks around runs, supersteps, executors and checkpoints.

Like trio's ``Instrument``: the scheduler calls these only when an observer is present, so a
run nobody observes pays one ``is None`` check per hook. OpenTelemetry is one observer
(``workflow._telemetry``); tests and tools can add their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

__all__ = ("MultiObserver", "Observer")


class Observer:
    """Base observer whose hooks do nothing; override the ones you need.

    The context-manager hooks wrap the work they describe, so a tracer can make its span
    current and executors started inside a superstep become its children.
    """

    def run(
        self, *, run_id: str, workflow_name: str, resumed: bool, link: dict[str, str] | None
    ) -> AbstractContextManager[Any]:
        return _null()

    def superstep(
        self, *, run_id: str, superstep: int, executor_ids: tuple[str, ...]
    ) -> AbstractContextManager[Any]:
        return _null()

    def executor(
        self,
        *,
        run_id: str,
        superstep: int,
        executor_id: str,
        kind: str,
        message_types: tuple[str, ...],
    ) -> AbstractContextManager[Any]:
        return _null()

    def executor_failed(self, *, executor_id: str, error: BaseException) -> None:
        """Called inside the executor hook's context when the invocation failed."""

    def message_sent(self, *, source_id: str, target_id: str) -> None:
        """Called once per committed delivery."""

    def checkpoint_saved(
        self, *, run_id: str, checkpoint_id: str, duration: float, size_bytes: int | None = None
    ) -> None:
        """Called after a checkpoint commit (``size_bytes``: what it wrote, when known)."""

    def run_finished(self, *, run_id: str, status: str) -> None:
        """Called once the run's final status is known, inside the run hook's context."""

    def trace_context(self) -> dict[str, str] | None:
        """The current trace context, stored in checkpoints so a resumed run can link to it."""
        return None


@contextmanager
def _null() -> Iterator[None]:
    yield


class MultiObserver(Observer):
    """Fans every hook out to several observers, in order."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers

    def run(self, **kw: Any) -> AbstractContextManager[Any]:
        return _all(o.run(**kw) for o in self.observers)

    def superstep(self, **kw: Any) -> AbstractContextManager[Any]:
        return _all(o.superstep(**kw) for o in self.observers)

    def executor(self, **kw: Any) -> AbstractContextManager[Any]:
        return _all(o.executor(**kw) for o in self.observers)

    def executor_failed(self, **kw: Any) -> None:
        for o in self.observers:
            o.executor_failed(**kw)

    def message_sent(self, **kw: Any) -> None:
        for o in self.observers:
            o.message_sent(**kw)

    def checkpoint_saved(self, **kw: Any) -> None:
        for o in self.observers:
            o.checkpoint_saved(**kw)

    def run_finished(self, **kw: Any) -> None:
        for o in self.observers:
            o.run_finished(**kw)

    def trace_context(self) -> dict[str, str] | None:
        for o in self.observers:
            found = o.trace_context()
            if found:
                return found
        return None


@contextmanager
def _all(managers: Iterator[AbstractContextManager[Any]] | Any) -> Iterator[None]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        for m in managers:
            stack.enter_context(m)
        yield
