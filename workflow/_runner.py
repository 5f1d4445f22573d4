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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from . import _warmup  # noqa: F401 - see its docstring
from ._backend import Backend, BackendRun, default_backend
from ._commit import (
    CommitContext,
    Durability,
    InvocationRecord,
    RunEnd,
    SuperstepRecord,
    count_sent,
)
from ._errors import CheckpointError, ExecutorFailedError
from ._executor import Executor
from ._history import Breakpoint, breakpoint_request
from ._invocation import InvocationOutcome, InvocationRequest, new_request
from ._observer import Observer
from ._result import PendingRequest, RunResult
from ._routing import route
from ._runstate import Delivery, EventSink, Reply, RunState
from ._types import RunStatus
from .events import (
    BreakpointHit,
    ExecutorCompleted,
    ExecutorFailed,
    ExecutorInvoked,
    MessageDropped,
    OutputEmitted,
    RequestInfo,
    RunFinished,
    RunStarted,
    SuperstepCompleted,
    SuperstepStarted,
    WorkflowEvent,
)

if TYPE_CHECKING:
    from ._edges import EdgeGroup
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

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def status_after(state: RunState, max_supersteps: int) -> RunStatus:
    """The run's status at a superstep boundary: the one place this rule is written."""
    if not state.inbox:
        return RunStatus.AWAITING_INPUT if state.pending else RunStatus.COMPLETED
    if state.superstep >= max_supersteps:
        return RunStatus.MAX_SUPERSTEPS
    return RunStatus.RUNNING


class Invocation:
    """One executor handling its deliveries of one superstep, and what it produced (routed).

    The runner's side of an invocation: the backend returns an ``InvocationOutcome``, which
    the runner routes into deliveries, fan-in contributions, outputs and drops here.
    """

    __slots__ = (
        "buffer",
        "deliveries",
        "dropped",
        "error",
        "fan_in",
        "inbox",
        "live",
        "local_writes",
        "node",
        "outputs",
        "replayed",
        "requests",
        "sink",
        "state_writes",
    )

    def __init__(self, sink: EventSink, node: Executor, inbox: list[Delivery]) -> None:
        self.sink = sink
        self.node = node
        self.inbox = inbox
        self.live = True
        self.buffer: list[WorkflowEvent] | None = None  # events held back while not live
        self.replayed = False
        self.error: BaseException | None = None
        self.outputs: list[Any] = []
        self.state_writes: Mapping[str, Any] = _EMPTY
        self.local_writes: Mapping[str, Any] = _EMPTY
        self.requests: Sequence[PendingRequest] = ()
        self.deliveries: list[tuple[str, int, Any]] = []
        self.fan_in: list[tuple[int, Any]] = []
        self.dropped: list[tuple[str, str, str]] = []

    def record(
        self, run_id: str, superstep: int, groups: Sequence[EdgeGroup], concurrent: bool
    ) -> InvocationRecord:
        """This finished invocation as a frozen commit record.

        The containers are copies; the write mappings are the outcome's, which nothing
        mutates once the backend returned them.
        """
        fan_in = tuple(self.fan_in)
        deliveries = tuple(self.deliveries)
        sent = (
            count_sent(deliveries, [groups[gi].targets[0] for gi, _ in fan_in])
            if fan_in
            else count_sent(deliveries)
        )
        return InvocationRecord(
            run_id,
            self.node.id,
            superstep,
            deliveries,
            fan_in,
            tuple(self.outputs),
            self.state_writes,
            self.local_writes,
            tuple(self.requests),
            tuple(self.dropped),
            sent,
            concurrent,
        )

    @classmethod
    def replay(cls, sink: EventSink, node: Executor, record: InvocationRecord) -> Invocation:
        """An invocation that already finished (recorded before a crash or failure)."""
        inv = cls(sink, node, [])
        inv.replayed = True
        inv.deliveries = list(record.deliveries)
        inv.fan_in = list(record.fan_in)
        inv.outputs = list(record.outputs)
        inv.state_writes = dict(record.state_writes)
        inv.local_writes = dict(record.local_writes)
        inv.requests = list(record.requests)
        inv.dropped = list(record.dropped)
        return inv

    async def emit(self, event: WorkflowEvent) -> None:
        """The event channel a backend passes this invocation's events through."""
        if self.live:
            sink = self.sink
            sink.emit(event)
            if sink.streaming:
                await sink.flush()
        elif self.buffer is None:
            self.buffer = [event]
        else:
            self.buffer.append(event)


class _Step:
    """Releases concurrent executors' live events in graph order (the head streams live)."""

    __slots__ = ("finished", "head", "invs", "sink")

    def __init__(self, invs: list[Invocation], sink: EventSink) -> None:
        self.invs = invs
        self.sink = sink
        self.head = 0
        self.finished = [False] * len(invs)
        for inv in invs[1:]:
            inv.live = False

    def done(self, index: int) -> None:
        self.finished[index] = True
        invs = self.invs
        while self.head < len(invs) and self.finished[self.head]:
            self.head += 1
            if self.head < len(invs):
                nxt = invs[self.head]
                if nxt.buffer is not None:
                    for event in nxt.buffer:
                        self.sink.emit(event)
                    nxt.buffer = None
                nxt.live = True


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
                return self._fail(invs, failed, step)
            if st.released:
                st.released.difference_update(targets)
            edges = self._commit(invs, step)
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
                message_types=tuple(dict.fromkeys(type(d[3]).__name__ for d in inv.inbox)),
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
                if outcome.outputs:
                    inv.outputs = list(outcome.outputs)
                inv.state_writes = outcome.state_writes
                inv.local_writes = outcome.local_writes
                inv.requests = outcome.requests
                try:
                    await route(self.graph, inv, outcome.sends, self.strict)
                except Exception as exc:
                    inv.error = exc
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
    def _commit(self, invs: list[Invocation], step: int) -> dict[str, int] | None:
        """Commit a superstep's results in graph order; per-edge message counts when durable."""
        st = self.state
        edges: dict[str, int] | None = {} if self.durability is not None else None
        run_id = st.run_id
        emit = self.sink.emit
        obs = self.observer
        inbox: dict[str, list[Delivery]] = {}
        touched: list[int] = []
        seq = st.seq
        groups = self.graph.groups
        for inv in invs:
            eid = inv.node.id
            for dst, key, message in inv.deliveries:
                box = inbox.get(dst)
                if box is None:
                    inbox[dst] = [(key, seq, eid, message, False)]
                else:
                    box.append((key, seq, eid, message, False))
                seq += 1
                if obs is not None:
                    obs.message_sent(source_id=eid, target_id=dst)
            if inv.fan_in:
                for gi, message in inv.fan_in:
                    st.fan_in.setdefault(gi, {}).setdefault(eid, []).append(message)
                    touched.append(gi)
                sent = count_sent(inv.deliveries, [groups[gi].targets[0] for gi, _ in inv.fan_in])
            else:
                sent = count_sent(inv.deliveries)
            if inv.state_writes:
                st.state.update(inv.state_writes)
            if inv.local_writes:
                st.local.setdefault(eid, {}).update(inv.local_writes)
            if inv.dropped or inv.outputs or inv.requests:
                self._emit_results(inv, step)
            emit(ExecutorCompleted(run_id=run_id, superstep=step, executor_id=eid, messages=sent))
            if edges is not None:
                for dst, n in sent.items():
                    edge = f"{eid}->{dst}"
                    edges[edge] = edges.get(edge, 0) + n
            if inv.outputs:
                st.outputs.extend(inv.outputs)
            for request in inv.requests:
                st.pending[request.request_id] = request
        if touched:
            for gi in sorted(set(touched)):
                seq = self._fire_fan_in(gi, inbox, seq, step)
        st.seq = seq
        st.inbox = inbox
        st.superstep = step
        if st.done:
            st.done = {}
        return edges

    def _emit_results(self, inv: Invocation, step: int) -> None:
        run_id = self.state.run_id
        emit = self.sink.emit
        eid = inv.node.id
        for dst, dropped_type, reason in inv.dropped:
            emit(
                MessageDropped(
                    run_id=run_id,
                    superstep=step,
                    source_id=eid,
                    target_id=dst,
                    message_type=dropped_type,
                    reason=reason,
                )
            )
        for value in inv.outputs:
            emit(OutputEmitted(run_id=run_id, superstep=step, executor_id=eid, data=value))
        for r in inv.requests:
            emit(
                RequestInfo(
                    run_id=run_id,
                    superstep=step,
                    request_id=r.request_id,
                    executor_id=r.executor_id,  # the asker's path for a nested one
                    payload=r.payload,
                    response_type=r.response_type,
                )
            )

    def _fire_fan_in(self, gi: int, inbox: dict[str, list[Delivery]], seq: int, step: int) -> int:
        group = self.graph.groups[gi]
        buffers = self.state.fan_in[gi]
        dst = group.targets[0]
        node = self.graph.executors[dst]
        key = self.graph.fan_in_key[gi]
        while all(buffers.get(s) for s in group.sources):
            batch = [buffers[s].pop(0) for s in group.sources]
            if node.can_handle(batch):
                inbox.setdefault(dst, []).append((key, seq, None, batch, False))
                seq += 1
            else:
                self.sink.emit(
                    MessageDropped(
                        run_id=self.state.run_id,
                        superstep=step,
                        source_id=",".join(group.sources),
                        target_id=dst,
                        message_type="list",
                        reason=f"{dst!r} has no handler for list on {group.describe()}",
                    )
                )
        for s in [s for s, b in buffers.items() if not b]:
            del buffers[s]
        if not buffers:
            del self.state.fan_in[gi]
        return seq

    def _fail(self, invs: list[Invocation], failed: list[Invocation], step: int) -> RunStatus:
        st = self.state
        emit = self.sink.emit
        for inv in invs:
            eid = inv.node.id
            if inv.error is None:
                if not inv.replayed:
                    self._emit_results(inv, step)
                    emit(ExecutorCompleted(run_id=st.run_id, superstep=step, executor_id=eid))
                inv.replayed = True
                st.done[eid] = inv
            else:
                emit(
                    ExecutorFailed(
                        run_id=st.run_id, superstep=step, executor_id=eid, error=repr(inv.error)
                    )
                )
        first = failed[0]
        err = ExecutorFailedError(
            f"executor {first.node.id!r} failed in superstep {step}: {first.error!r}",
            executor_id=first.node.id,
            superstep=step,
            run_id=st.run_id,
        )
        err.__cause__ = first.error
        st.error = err
        return RunStatus.FAILED

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
                    st.error.add_note(f"and its status was not recorded: {exc}")
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


def _delivery_key(d: Delivery) -> tuple[int, int]:
    return (d[0], d[1])
