"""The superstep scheduler (Pregel style).

Each superstep runs every executor that has deliveries, concurrently, in one anyio task
group; what they send is delivered in the next superstep. An executor's deliveries are
handled one at a time, ordered by (edge position, send order). Results are committed in
graph order, whatever order executors finished in, so the same input gives the same events.

Invocations are atomic: an invocation either completes (its sends, outputs, state writes and
requests become one *outcome*) or fails (everything it did is discarded). Each completed
outcome is recorded as a pending write as soon as it exists, so after a crash or a failure
the superstep is retried with only the executors that had not finished.

Where an invocation runs is the backend's (``_backend``): the runner hands it a plain-data
request and gets a plain-data outcome back; retries, timeouts, routing (``_routing``), commit
order, events and durability stay here, the same for every backend.

Lean on the hot path: a superstep with one ready executor runs it without a task group, and
every routing decision that can be made at build time was (see ``_graph``).

Split: an invocation on the runner's side is ``_step``; committing a superstep (or its
failure) is ``_apply``; what durability is told is ``_commit``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ._apply import commit_step, emit_results, fail_step
from ._backend import Backend, BackendRun, default_backend
from ._commit import CommitContext, Durability, RunEnd, SuperstepRecord
from ._errors import CheckpointError
from ._history import Breakpoint, breakpoint_request
from ._invocation import InvocationOutcome, InvocationRequest, message_type_name, new_request
from ._observer import Observer
from ._result import PendingRequest, RunResult
from ._routing import absorb
from ._runstate import EventSink, Reply, RunState
from ._step import _EMPTY as _EMPTY  # re-exported: eager scheduling uses them
from ._step import Invocation, _Step
from ._step import _delivery_key as _delivery_key
from ._types import RunStatus
from .events import (
    BreakpointHit,
    ExecutorInvoked,
    RequestInfo,
    RunFinished,
    RunStarted,
    SuperstepCompleted,
    SuperstepStarted,
)

if TYPE_CHECKING:
    from ._graph import NodePolicy
    from ._workflow import Workflow

__all__ = (
    "EventSink",
    "Invocation",
    "Reply",
    "RunState",
    "Runner",
    "status_after",
)


def status_after(state: RunState, max_supersteps: int) -> RunStatus:
    """The run's status at a superstep boundary: the one place this rule is written."""
    if not state.inbox:
        return RunStatus.AWAITING_INPUT if state.pending else RunStatus.COMPLETED
    if state.superstep >= max_supersteps:
        return RunStatus.MAX_SUPERSTEPS
    return RunStatus.RUNNING


class Runner:
    """Drives one run (or one resumption of it) to a final status."""

    def __init__(
        self,
        workflow: Workflow,
        state: RunState,
        *,
        sink: EventSink,
        max_supersteps: int,
        max_concurrency: int | None = None,
        strict: bool = False,
        observer: Observer | None = None,
        durability: Durability | None = None,
        backend: Backend | None = None,
        pause_before: frozenset[str] = frozenset(),
    ) -> None:
        self.workflow = workflow
        self.pause_before = pause_before
        self.graph = workflow.graph
        self.backend = backend if backend is not None else default_backend()
        self.state = state
        self.sink = sink
        self.max_supersteps = max_supersteps
        self.limiter = anyio.CapacityLimiter(max_concurrency) if max_concurrency else None
        self.strict = strict
        self.observer = observer
        self.durability = durability
        self.session: BackendRun

    # -- the run loop ----------------------------------------------------------------------
    async def execute(self, *, resumed: bool = False) -> RunResult:
        """Run to a final status; the backend is opened for the run and closed after it."""
        session = self.session = self.backend.open(self.workflow)
        try:
            result = await self._execute(resumed)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await session.aclose()
            raise
        await session.aclose()
        return result

    async def _execute(self, resumed: bool) -> RunResult:
        st = self.state
        st.status = RunStatus.RUNNING
        st.error = None
        obs = self.observer
        link = self.durability.trace_link if self.durability is not None else None
        scope = (
            obs.run(run_id=st.run_id, workflow_name=self.graph.name, resumed=resumed, link=link)
            if obs is not None
            else None
        )
        if scope is not None:
            scope.__enter__()
        try:
            self.sink.emit(
                RunStarted(
                    run_id=st.run_id,
                    superstep=st.superstep,
                    workflow_name=self.graph.name,
                    resumed=resumed,
                )
            )
            try:
                dur = self.durability
                if dur is None:
                    status = await self._loop()
                elif dur.background:
                    # async durability: checkpoints are written while the next superstep runs
                    async with anyio.create_task_group() as tg:
                        ctx = CommitContext(self.sink.emit, obs, tg.start_soon)
                        await dur.started(st.snapshot(RunStatus.RUNNING), ctx)
                        status = await self._loop()
                else:
                    ctx = CommitContext(self.sink.emit, obs)
                    await dur.started(st.snapshot(RunStatus.RUNNING), ctx)
                    status = await self._loop()
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self._finish(RunStatus.CANCELLED)
                raise
            except CheckpointError as exc:  # the store failed: the run cannot go on durably
                st.error, status = exc, RunStatus.FAILED
            except BaseExceptionGroup as group:  # ... from inside a superstep's task group
                st.error, status = _store_failure(group), RunStatus.FAILED
            return await self._finish(status)
        finally:
            if scope is not None:
                scope.__exit__(None, None, None)

    async def _loop(self) -> RunStatus:
        st = self.state
        graph = self.graph
        sink = self.sink
        order = graph.order
        executors = graph.executors
        while st.inbox:
            if st.superstep >= self.max_supersteps:
                return RunStatus.MAX_SUPERSTEPS
            step = st.superstep + 1
            inbox = st.inbox
            targets = (
                tuple(inbox) if len(inbox) == 1 else tuple(sorted(inbox, key=order.__getitem__))
            )
            if (self.pause_before or st.pending) and await self._held(targets, step):
                return RunStatus.AWAITING_INPUT
            sink.emit(SuperstepStarted(run_id=st.run_id, superstep=step, executor_ids=targets))
            invs: list[Invocation] = []
            for eid in targets:
                sink.emit(ExecutorInvoked(run_id=st.run_id, superstep=step, executor_id=eid))
                done = st.done.get(eid)
                if done is None:
                    invs.append(Invocation(sink, executors[eid], inbox[eid]))
                elif isinstance(done, Invocation):
                    invs.append(done)
                else:  # an outcome recorded by an earlier process
                    invs.append(Invocation.replay(sink, executors[eid], done))
            if sink.streaming:
                await sink.flush()
            obs = self.observer
            scope = (
                obs.superstep(run_id=st.run_id, superstep=step, executor_ids=targets)
                if obs is not None
                else None
            )
            if scope is not None:
                scope.__enter__()
            try:
                await self._run_step(invs)
            finally:
                if scope is not None:
                    scope.__exit__(None, None, None)
            if len(invs) == 1:
                failed = invs if invs[0].error is not None else None
            else:
                failed = [inv for inv in invs if inv.error is not None]
            if failed:
                return fail_step(st, sink.emit, invs, failed, step)
            if st.released:
                st.released.difference_update(targets)
            edges = commit_step(
                st, graph, sink.emit, self.observer, invs, step, self.durability is not None
            )
            sink.emit(SuperstepCompleted(run_id=st.run_id, superstep=step))
            if self.durability is not None:
                status = status_after(st, self.max_supersteps)
                record = SuperstepRecord(
                    step,
                    tuple(inv.node.id for inv in invs),
                    MappingProxyType(edges or {}),
                    status,
                    st.snapshot(status),
                )
                await self.durability.superstep_committed(record)
            if sink.streaming:
                await sink.flush()
        return status_after(st, self.max_supersteps)

    async def _held(self, targets: tuple[str, ...], step: int) -> bool:
        """Stop before ``step`` if a target has a breakpoint (new, or pending and unanswered)."""
        st = self.state
        waiting = {
            r.payload.executor_id for r in st.pending.values() if isinstance(r.payload, Breakpoint)
        }
        new = [
            eid
            for eid in targets
            if eid in self.pause_before and eid not in st.released and eid not in waiting
        ]
        if not new and not any(eid in waiting for eid in targets):
            return False
        emit = self.sink.emit
        for eid in new:
            request_id, payload = breakpoint_request(eid, step)
            request = PendingRequest(request_id, eid, payload, type(None))
            st.pending[request_id] = request
            emit(
                BreakpointHit(
                    run_id=st.run_id, superstep=step, executor_id=eid, request_id=request_id
                )
            )
            emit(
                RequestInfo(
                    run_id=st.run_id,
                    superstep=step,
                    request_id=request_id,
                    executor_id=eid,
                    payload=payload,
                    response_type=type(None),
                )
            )
        if new and self.durability is not None:
            await self.durability.paused(st.snapshot(RunStatus.AWAITING_INPUT))
        return True

    async def _run_step(self, invs: list[Invocation]) -> None:
        if len(invs) == 1:  # the common case: no task group, no ordering of live events
            if not invs[0].replayed:
                await self._invoke(invs[0], None, 0)
            return
        step = _Step(invs, self.sink)
        queue: list[tuple[Invocation, int]] = []
        for i, inv in enumerate(invs):
            if inv.replayed:
                step.done(i)
            else:
                queue.append((inv, i))
        queue.reverse()

        async def worker() -> None:
            while queue:
                inv, i = queue.pop()
                await self._invoke(inv, step, i)

        # A growing pool instead of a task per executor: a worker runs invocations until one
        # of them really suspends; only while work is left after that are more workers
        # started, doubling each time. Executors that never wait share one task; executors
        # that all wait still all run at once, started within a few loop iterations.
        async with anyio.create_task_group() as tg:
            batch = 1
            while queue:
                for _ in range(min(batch, len(queue))):
                    tg.start_soon(worker)
                batch *= 2
                await anyio.lowlevel.checkpoint()

    async def _invoke(self, inv: Invocation, step: _Step | None, index: int) -> None:
        """Dispatch one invocation to the backend, route what it sent, record it."""
        obs = self.observer
        scope = None
        if obs is not None:
            scope = obs.executor(
                run_id=self.state.run_id,
                superstep=self.state.superstep + 1,
                executor_id=inv.node.id,
                kind=inv.node.kind,
                message_types=tuple(dict.fromkeys(message_type_name(d[3]) for d in inv.inbox)),
            )
            scope.__enter__()
        try:
            st = self.state
            eid = inv.node.id
            inbox = inv.inbox
            if len(inbox) == 1:
                d = inbox[0]
                deliveries: tuple[tuple[str | None, Any, bool], ...] = ((d[2], d[3], d[4]),)
            else:
                inbox.sort(key=_delivery_key)
                deliveries = tuple([(d[2], d[3], d[4]) for d in inbox])
            request = new_request(
                (
                    st.run_id,
                    eid,
                    deliveries,
                    st.state,
                    st.local.get(eid, _EMPTY),
                    st.superstep + 1,
                    1,
                )
            )
            policy = self.graph.policies.get(eid)
            outcome: InvocationOutcome | None
            if self.limiter is None and (
                policy is None or (policy.retry is None and policy.timeout is None)
            ):
                try:  # the hot path: one attempt, no limit
                    outcome = await self.session.invoke(request, inv.emit)
                except Exception as exc:
                    inv.error = exc
                    outcome = None
            elif self.limiter is not None:
                async with self.limiter:
                    outcome = await self._attempts(inv, request, policy)
            else:
                outcome = await self._attempts(inv, request, policy)
            if outcome is not None:
                await absorb(self.graph, inv, outcome, self.strict)
            if inv.error is None and self.durability is not None:
                concurrent = step is not None  # siblings run: worth a pending write
                record = inv.record(st.run_id, st.superstep + 1, self.graph.groups, concurrent)
                failure = await self.durability.invocation_finished(record)
                if failure is not None:  # what it produced cannot be recorded: it failed
                    inv.error = failure
            if inv.error is not None and obs is not None:
                obs.executor_failed(executor_id=inv.node.id, error=inv.error)
        finally:
            if scope is not None:
                scope.__exit__(None, None, None)
            if step is not None:
                step.done(index)

    async def _attempts(
        self, inv: Invocation, request: InvocationRequest, policy: NodePolicy | None
    ) -> InvocationOutcome | None:
        """The invocation's attempts (retries and timeouts are the runner's, not the backend's)."""
        if policy is None or (policy.retry is None and policy.timeout is None):
            try:
                return await self.session.invoke(request, inv.emit)
            except Exception as exc:
                inv.error = exc
                return None
        attempt = 1
        while True:
            try:
                if policy.timeout is not None:
                    try:
                        with anyio.fail_after(policy.timeout):
                            return await self.session.invoke(request, inv.emit)
                    except TimeoutError as exc:
                        raise TimeoutError(
                            f"executor {inv.node.id!r} exceeded its timeout of {policy.timeout}s"
                        ) from exc
                return await self.session.invoke(request, inv.emit)
            except Exception as exc:
                retry = policy.retry
                if retry is None or not retry.should_retry(exc, attempt):
                    inv.error = exc
                    return None
                await anyio.sleep(retry.delay(attempt))
                attempt += 1
                request = request._replace(attempt=attempt)

    # -- commit ----------------------------------------------------------------------------
    def _emit_results(self, inv: Invocation, step: int) -> None:
        emit_results(self.sink.emit, self.state.run_id, inv, step)

    async def _finish(self, status: RunStatus) -> RunResult:
        st = self.state
        st.status = status
        outputs = list(st.outputs)
        for inv in st.done.values():  # siblings that finished before a failure keep their results
            outputs.extend(inv.outputs)
        dur = self.durability
        if dur is not None:
            failed = getattr(st.error, "executor_id", None)
            cause = st.error.__cause__ if st.error is not None else None
            end = RunEnd(
                st.run_id,
                status,
                failed if isinstance(failed, str) else None,
                repr(cause or st.error) if st.error is not None else None,
            )
            try:
                await dur.finished(end)
            except CheckpointError as exc:  # the run still finishes; say what was not recorded
                if st.error is None:
                    st.error = exc
                else:
                    st.error.add_note(f"and the store did not record it: {exc}")
                if status is not RunStatus.CANCELLED:
                    # a run whose end the store does not hold is not reported COMPLETED (or
                    # waiting): the store still has its last checkpoint's status, and a resume
                    # once the store works finishes it and records the status then. A
                    # cancelled run stays CANCELLED: the caller's cancellation goes on out.
                    status = st.status = RunStatus.FAILED
            st.checkpoint_id = dur.checkpoint_id
        if self.observer is not None:
            self.observer.run_finished(run_id=st.run_id, status=status.value)
        self.sink.emit(
            RunFinished(
                run_id=st.run_id,
                superstep=st.superstep,
                status=status,
                error=str(st.error) if st.error is not None else None,
                pending_requests=tuple(st.pending.values()),
            )
        )
        await self.sink.flush()
        return RunResult(
            run_id=st.run_id,
            status=status,
            outputs=outputs,
            pending_requests=list(st.pending.values()),
            error=st.error,
            events=self.sink.events,
            checkpoint_id=st.checkpoint_id,
        )


def _store_failure(group: BaseExceptionGroup[Any]) -> CheckpointError:
    """The store's error inside a task group's ``ExceptionGroup``; anything else re-raises."""
    found, rest = group.split(CheckpointError)
    if found is None or rest is not None:
        raise group
    leaf: BaseException = found
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    assert isinstance(leaf, CheckpointError)
    return leaf
