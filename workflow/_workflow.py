"""A built workflow: an immutable definition that runs, streams and resumes.

Concurrent runs share nothing but the definition. Without a checkpoint store, runs that stop
short of completion (waiting for input, failed, cancelled) are kept in this process so they
can still be resumed: human input needs no database. What is kept is bounded, so a
long-lived process stays flat: ``max_paused_runs`` runs waiting for input and the
``max_failed_runs`` latest failed or cancelled ones (see ``workflow._paused``).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import uuid
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._adapters import WorkflowAgent, WorkflowTool
from ._errors import CheckpointError, GraphValidationError, UnknownRequestError
from ._executor import Executor
from ._graph import WorkflowGraph
from ._history import Breakpoint
from ._observer import Observer
from ._paused import DEFAULT_MAX_FAILED_RUNS, DEFAULT_MAX_PAUSED_RUNS, PausedRuns
from ._result import PendingRequest, RunResult
from ._runner import EventSink, Reply, Runner, RunState
from ._stream import EventStream
from ._typing import type_name
from ._warmup import load_running_backend
from .events import RunFinished, RunStarted

if TYPE_CHECKING:
    from ._backend import Backend

__all__ = ("Workflow",)

Durability = Literal["sync", "async"]
Scheduling = Literal["superstep", "eager"]


class Workflow:
    """An immutable, validated graph of executors, ready to run any number of times."""

    def __init__(
        self,
        graph: WorkflowGraph,
        *,
        max_supersteps: int = 1000,
        max_concurrency: int | None = None,
        strict: bool = False,
        checkpoint_store: Any = None,
        durability: Durability = "sync",
        types: Iterable[type] = (),
        observers: Iterable[Observer] = (),
        max_paused_runs: int = DEFAULT_MAX_PAUSED_RUNS,
        max_failed_runs: int = DEFAULT_MAX_FAILED_RUNS,
        scheduling: Scheduling = "superstep",
    ) -> None:
        """``scheduling``: ``"superstep"`` (the default: every executor with messages runs in
        the next superstep, after the slowest of the current one) or ``"eager"`` (an executor
        runs as soon as a message for it is committed; see ``workflow._eager``)."""
        if max_supersteps < 1:
            raise ValueError(f"max_supersteps must be >= 1, got {max_supersteps!r}")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1 or None, got {max_concurrency!r}")
        if durability not in ("sync", "async"):
            raise ValueError(f"durability must be 'sync' or 'async', got {durability!r}")
        if scheduling not in ("superstep", "eager"):
            raise GraphValidationError(
                f"workflow {graph.name!r}: scheduling must be 'superstep' or 'eager', got "
                f"{scheduling!r}; "
                "'eager' runs an executor as soon as a message for it is committed"
            )
        self.scheduling: Scheduling = scheduling
        if scheduling == "eager":  # loaded with the definition, not in its first run
            from . import _eager  # noqa: F401
        load_running_backend()  # the same for the running loop's anyio backend
        self._graph = graph
        self.max_supersteps = max_supersteps
        self.max_concurrency = max_concurrency
        self.strict = strict
        self.checkpoint_store = checkpoint_store
        self.durability: Durability = durability
        self.types: tuple[type, ...] = tuple(types)
        self.observers: tuple[Observer, ...] = tuple(observers)
        # without a store: runs kept for resume, bounded (policy in ``workflow._paused``)
        self._paused = PausedRuns(max_paused_runs, max_failed_runs)
        self.description = ""  # what it is for, for people and services (a spec sets it)
        self._registry: Any = None  # the checkpoint type allowlist, built on first use
        if checkpoint_store is not None:
            self._check_checkpointable()

    def _check_checkpointable(self) -> None:
        """With a store, a type that cannot be checkpointed fails the build, not a run."""
        from ._checkable import checkpoint_problems

        problems = checkpoint_problems(self)
        if problems:
            raise GraphValidationError(
                f"workflow {self.name!r} has a checkpoint_store, but:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )

    # -- the definition ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._graph.name

    @property
    def graph(self) -> WorkflowGraph:
        """The validated graph (read by diagrams and tools; never mutate it)."""
        return self._graph

    @property
    def start_executor_id(self) -> str:
        return self._graph.start

    @property
    def executors(self) -> Mapping[str, Executor]:
        return self._graph.executors

    @property
    def graph_hash(self) -> str:
        return self._graph.graph_hash

    def __repr__(self) -> str:
        return f"Workflow(name={self.name!r}, executors={len(self._graph.executors)})"

    def with_store(self, checkpoint_store: Any) -> Workflow:
        """The same definition bound to another checkpoint store (used by the CLI)."""
        bound = Workflow(
            self._graph,
            max_supersteps=self.max_supersteps,
            max_concurrency=self.max_concurrency,
            strict=self.strict,
            checkpoint_store=checkpoint_store,
            durability=self.durability,
            types=self.types,
            observers=self.observers,
            max_paused_runs=self._paused.max_waiting,
            max_failed_runs=self._paused.max_failed,
            scheduling=self.scheduling,
        )
        bound.description = self.description
        return bound

    def as_agent(self, name: str, description: str = "") -> WorkflowAgent:
        """This workflow as an agent: accepted wherever an agent is (teams, builders)."""
        return WorkflowAgent(self, name, description)

    def as_tool(
        self,
        name: str,
        description: str = "",
        *,
        approval_mode: Literal["never_require", "always_require"] = "never_require",
    ) -> WorkflowTool:
        """This workflow as a tool for ``ChatAgent(tools=...)``."""
        return WorkflowTool(self, name, description, approval_mode)

    # -- running -------------------------------------------------------------------------------
    async def run(
        self,
        input: Any,
        *,
        run_id: str | None = None,
        backend: Backend | None = None,
        pause_before: Iterable[str] | None = None,
    ) -> RunResult:
        """Run to completion, a pause for input, failure, cancellation or the superstep limit.

        ``backend`` decides where invocations run (default ``LocalBackend()``, in-process).
        ``pause_before`` names executors to stop before (breakpoints, see ``_history``): the
        run ends ``AWAITING_INPUT`` with a ``BreakpointHit`` event and a pending request;
        ``resume(run_id, responses={request_id: None})`` goes on.
        """
        runner = self._new_run(input, run_id, EventSink(), backend, pause_before)
        return await self._execute(runner, resumed=False)

    def run_stream(
        self,
        input: Any,
        *,
        run_id: str | None = None,
        backend: Backend | None = None,
        pause_before: Iterable[str] | None = None,
    ) -> EventStream:
        """Stream a run's events, ending with ``RunFinished``; leaving early cancels the run.

        Use it as ``async with wf.run_stream(x) as events: async for e in events: ...`` (the
        block owns the run: leaving it cancels the run and waits until it has stopped), or as
        a plain ``async for`` (see ``workflow._stream`` for what that form costs).
        """

        held = self._pause_before(pause_before)

        async def start(send: Any) -> None:
            runner = self._new_run(input, run_id, EventSink(send), backend, held)
            await self._execute(runner, resumed=False)

        return EventStream(start)

    def run_sync(self, input: Any, *, run_id: str | None = None) -> RunResult:
        """Run from synchronous code (scripts, notebooks without a running loop)."""
        return anyio.run(functools.partial(self.run, input, run_id=run_id))

    async def resume(
        self,
        run_id: str,
        *,
        checkpoint_id: str | None = None,
        responses: Mapping[str, Any] | None = None,
        backend: Backend | None = None,
        state_updates: Mapping[str, Any] | None = None,
        pause_before: Iterable[str] | None = None,
    ) -> RunResult:
        """Continue a run from its latest checkpoint (or fork from ``checkpoint_id``).

        ``state_updates`` (time travel) replaces those run-wide state keys and always forks:
        a new run, whose first checkpoint's parent is ``checkpoint_id`` (or, without one, the
        run's latest checkpoint), starts from the edited state; the original run's history is
        untouched. Values are validated like any checkpointed state (a value that cannot be
        checkpointed raises ``StateUpdateError`` naming the key, before anything is stored);
        a key the workflow never wrote is allowed. Without a checkpoint store there is no
        history to fork: the updates apply to the run kept in this process, which continues.
        ``pause_before`` sets breakpoints for the continuation, as on ``run``.
        """
        return await self._resume(
            run_id,
            checkpoint_id,
            responses,
            EventSink(),
            backend,
            state_updates,
            self._pause_before(pause_before),
        )

    def resume_stream(
        self,
        run_id: str,
        *,
        checkpoint_id: str | None = None,
        responses: Mapping[str, Any] | None = None,
        backend: Backend | None = None,
        state_updates: Mapping[str, Any] | None = None,
        pause_before: Iterable[str] | None = None,
    ) -> EventStream:
        """Like ``resume``, streaming the events of the continuation (also ``async with``)."""
        held = self._pause_before(pause_before)

        async def start(send: Any) -> None:
            await self._resume(
                run_id, checkpoint_id, responses, EventSink(send), backend, state_updates, held
            )

        return EventStream(start)

    # -- internals -----------------------------------------------------------------------------
    def _pause_before(self, pause_before: Iterable[str] | None) -> frozenset[str]:
        from ._history import check_pause_before

        return check_pause_before(pause_before, self._graph.executors, self.name)

    def _new_run(
        self,
        input: Any,
        run_id: str | None,
        sink: EventSink,
        backend: Backend | None = None,
        pause_before: Iterable[str] | frozenset[str] | None = None,
    ) -> Runner:
        start = self._graph.executors[self._graph.start]
        if not start.can_handle(input):
            raise TypeError(
                f"workflow {self.name!r}: start executor {start.id!r} accepts "
                f"{type_name(start.input_types())}, not {type(input).__name__} ({input!r:.80})"
            )
        state = RunState(run_id=run_id if run_id is not None else uuid.uuid4().hex)
        held = (
            pause_before
            if isinstance(pause_before, frozenset)
            else self._pause_before(pause_before)
        )
        state.deliver(start.id, input)
        return self._runner(state, sink, backend=backend, pause_before=held)

    def _runner(
        self,
        state: RunState,
        sink: EventSink,
        durability: Any = None,
        backend: Backend | None = None,
        pause_before: frozenset[str] = frozenset(),
    ) -> Runner:
        observer = _combine(self.observers)
        return self._runner_class()(
            self,
            state,
            sink=sink,
            max_supersteps=self.max_supersteps,
            max_concurrency=self.max_concurrency,
            strict=self.strict,
            observer=observer,
            durability=durability if durability is not None else self._durability_for(state),
            backend=backend,
            pause_before=pause_before,
        )

    def _runner_class(self) -> type[Runner]:
        """The scheduler of this workflow's runs (and of its runs nested in another)."""
        if self.scheduling == "eager":
            from ._eager import EagerRunner

            return EagerRunner
        return Runner

    def _durability_for(self, state: RunState) -> Any:
        if self.checkpoint_store is None:
            return None
        from ._durable import store_durability

        return store_durability(self, state)

    async def _execute(self, runner: Runner, *, resumed: bool) -> RunResult:
        async with self._lock(runner.state.run_id):
            return await self._execute_locked(runner, resumed=resumed)

    async def _execute_locked(self, runner: Runner, *, resumed: bool) -> RunResult:
        state = runner.state
        try:
            return await runner.execute(resumed=resumed)
        finally:
            if self.checkpoint_store is None:
                self._paused.keep(state)  # only what can be resumed, bounded

    def _lock(self, run_id: str) -> Any:
        if self.checkpoint_store is None:
            return _NoLock()
        return self.checkpoint_store.lock_run(run_id)

    async def _resume(
        self,
        run_id: str,
        checkpoint_id: str | None,
        responses: Mapping[str, Any] | None,
        sink: EventSink,
        backend: Backend | None = None,
        state_updates: Mapping[str, Any] | None = None,
        pause_before: frozenset[str] = frozenset(),
    ) -> RunResult:
        from ._history import apply_state_updates, check_state_updates

        # Load under the run's lock: a second process resuming the same run fails at once
        # instead of continuing from a state the first one is about to move on from.
        async with self._lock(run_id):
            if self.checkpoint_store is None:
                updates = (
                    check_state_updates(state_updates, None) if state_updates is not None else {}
                )
                state = self._take_paused(run_id, checkpoint_id)
                try:
                    apply_responses(state, responses or {})
                    apply_state_updates(state, updates)
                except BaseException:
                    self._paused.keep(state)
                    raise
                runner = self._runner(state, sink, backend=backend, pause_before=pause_before)
            else:
                from ._allowlist import registry_for
                from ._durable import load_state

                fork = state_updates is not None
                updates = (
                    check_state_updates(state_updates, registry_for(self))
                    if state_updates is not None
                    else {}
                )
                state, recorded, durability = await load_state(
                    self, run_id, checkpoint_id, fork=fork
                )
                if recorded is not None:
                    if responses:
                        raise CheckpointError(
                            f"run {run_id!r} already completed; nothing to answer"
                        )
                    return await _replay_finished(recorded, self.name, state.superstep, sink)
                apply_responses(state, responses or {})
                apply_state_updates(state, updates)
                if responses:
                    durability.save_on_start = True  # the answers are stored before anything runs
                runner = self._runner(state, sink, durability, backend, pause_before)
            if state.run_id != run_id:  # a fork runs under its own id and lock
                async with self._lock(state.run_id):
                    return await self._execute_locked(runner, resumed=True)
            return await self._execute_locked(runner, resumed=True)

    def _take_paused(self, run_id: str, checkpoint_id: str | None) -> RunState:
        if checkpoint_id is not None:
            raise CheckpointError(
                f"cannot fork run {run_id!r} from checkpoint {checkpoint_id!r}: this workflow "
                "has no checkpoint_store; build it with checkpoint_store=..."
            )
        return self._paused.take(run_id)


async def _replay_finished(
    recorded: RunResult, name: str, superstep: int, sink: EventSink
) -> RunResult:
    """A completed run runs nothing; its stream still starts and finishes like any other."""
    sink.emit(
        RunStarted(run_id=recorded.run_id, superstep=superstep, workflow_name=name, resumed=True)
    )
    sink.emit(RunFinished(run_id=recorded.run_id, superstep=superstep, status=recorded.status))
    await sink.flush()
    return dataclasses.replace(recorded, events=sink.events)


def apply_responses(state: RunState, responses: Mapping[str, Any]) -> None:
    """Validate every response first, then deliver: a bad one leaves the run untouched."""
    checked: list[tuple[PendingRequest, Any]] = []
    for request_id, value in responses.items():
        request = state.pending.get(request_id)
        if request is None:
            pending = tuple(sorted(state.pending))
            known = ", ".join(map(repr, pending)) or "none"
            raise UnknownRequestError(
                f"run {state.run_id!r} has no pending request {request_id!r} (pending: "
                f"{known}); answer one of those ids",
                request_id=request_id,
                pending=pending,
            )
        checked.append((request, validate_response(request, value)))
    for request, value in checked:
        del state.pending[request.request_id]
        if isinstance(request.payload, Breakpoint):  # answered: that executor may run now
            state.released.add(request.executor_id)
            continue
        # a nested workflow's question goes to the node holding that child, in its envelope
        asked = request.payload if request.via is None else request.via[1]
        state.deliver(request.owner, Reply(request.request_id, asked, value), reply=True)


@functools.lru_cache(maxsize=256)
def _adapter(tp: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(tp)


def validate_response(request: PendingRequest, value: Any) -> Any:
    """Check ``value`` against the request's ``response_type``; a mismatch is a TypeError."""
    tp = request.response_type
    if tp is object or tp is Any:
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    from pydantic import ValidationError

    try:
        return _adapter(tp).validate_python(value, strict=True)
    except ValidationError as exc:
        raise TypeError(
            f"response to request {request.request_id!r} (from {request.executor_id!r}) must be "
            f"{getattr(tp, '__name__', tp)}, got {type(value).__name__} {value!r:.80}: "
            f"{exc.errors()[0]['msg']}"
        ) from None
    except TypeError:
        raise TypeError(
            f"response to request {request.request_id!r} must be {tp!r}, got {value!r:.80}"
        ) from None


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _combine(observers: tuple[Observer, ...]) -> Observer | None:
    auto = None
    if "opentelemetry.trace" in sys.modules:  # no OpenTelemetry imported: no provider either
        from ._telemetry import auto_observer

        auto = auto_observer()
    found = [*observers, *([auto] if auto is not None else [])]
    if not found:
        return None
    if len(found) == 1:
        return found[0]
    from ._observer import MultiObserver

    return MultiObserver(found)
