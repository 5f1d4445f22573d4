"""The superstep scheduler (Pregel style).

Each superstep runs every executor that has deliveries, concurrently, in one anyio task
group; what they send is delivered in the next superstep. An executor's deliveries are
handled one at a time, ordered by (edge position, send order). Results are committed in
graph order, whatever order executors finished in, so the same input gives the same events.

Invocations are atomic: an invocation either completes (its sends, outputs, state writes and
requests become one *outcome*) or fails (everything it did is discarded). Each completed
outcome is recorded as a pending write as soon as it exists, so after a crash or a failure
the superstep is retried with only the executors that had not finished. ``invoke`` is the
single dispatch seam a distributed backend replaces.

Lean on the hot path: a superstep with one ready executor runs it without a task group, and
every routing decision that can be made at build time was (see ``_graph``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._context import WorkflowContext
from ._errors import CheckpointError, ExecutorFailedError, WorkflowError
from ._executor import Executor
from ._graph import WorkflowGraph
from ._observer import Observer
from ._result import PendingRequest, RunResult
from ._types import RunStatus
from ._typing import type_name
from .events import (
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
    from anyio.streams.memory import MemoryObjectSendStream

__all__ = ("EventSink", "Invocation", "Reply", "RunState", "Runner")

# (order key, send sequence, source id, message, is a human reply)
Delivery = tuple[int, int, str | None, Any, bool]


@dataclass(frozen=True, slots=True)
class Reply:
    """A human response on its way to the executor that asked."""

    request_id: str
    request: Any
    response: Any


@dataclass(slots=True)
class RunState:
    """Everything a run has committed; a checkpoint is a snapshot of this."""

    run_id: str
    superstep: int = 0
    seq: int = 0
    inbox: dict[str, list[Delivery]] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    local: dict[str, dict[str, Any]] = field(default_factory=dict)
    fan_in: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    pending: dict[str, PendingRequest] = field(default_factory=dict)
    outputs: list[Any] = field(default_factory=list)
    done: dict[str, Invocation | dict[str, Any]] = field(default_factory=dict)
    status: RunStatus = RunStatus.RUNNING
    checkpoint_id: str | None = None
    checkpoint_count: int = 0
    error: BaseException | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain containers of the committed state (values as they are; encode to persist)."""
        return {
            "run_id": self.run_id,
            "superstep": self.superstep,
            "seq": self.seq,
            "inbox": [[eid, [list(d) for d in box]] for eid, box in self.inbox.items()],
            "state": self.state,
            "local": self.local,
            "fan_in": [[gi, list(bufs.items())] for gi, bufs in self.fan_in.items()],
            "pending": [
                [r.request_id, r.executor_id, r.payload, r.response_type]
                for r in self.pending.values()
            ],
            "outputs": self.outputs,
            "status": self.status.value,
            "checkpoint_count": self.checkpoint_count,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunState:
        """Inverse of :meth:`to_dict`."""
        return cls(
            run_id=data["run_id"],
            superstep=data["superstep"],
            seq=data["seq"],
            inbox={eid: [tuple(d) for d in box] for eid, box in data["inbox"]},
            state=dict(data["state"]),
            local={k: dict(v) for k, v in data["local"].items()},
            fan_in={int(gi): {s: list(m) for s, m in bufs} for gi, bufs in data["fan_in"]},
            pending={r[0]: PendingRequest(r[0], r[1], r[2], r[3]) for r in data["pending"]},
            outputs=list(data["outputs"]),
            status=RunStatus(data["status"]),
            checkpoint_count=data.get("checkpoint_count", 0),
        )

    def deliver(self, target: str, message: Any, *, reply: bool = False) -> None:
        """Queue an outside message (the run's input or a human reply) for ``target``."""
        self.inbox.setdefault(target, []).append((-1, self.seq, None, message, reply))
        self.seq += 1


class EventSink:
    """Collects a run's events and, when streaming, passes them on with backpressure."""

    __slots__ = ("_send", "_sent", "events", "streaming")

    def __init__(self, send: MemoryObjectSendStream[WorkflowEvent] | None = None) -> None:
        self.events: list[WorkflowEvent] = []
        self._send = send
        self._sent = 0
        self.streaming = send is not None

    def emit(self, event: WorkflowEvent) -> None:
        self.events.append(event)

    async def flush(self) -> None:
        if self._send is None:
            return
        events = self.events
        while self._sent < len(events):
            await self._send.send(events[self._sent])
            self._sent += 1


class Invocation:
    """One executor handling its deliveries of one superstep, and what it produced."""

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
        "run",
        "runner",
        "sends",
        "state_writes",
    )

    def __init__(self, runner: Runner, node: Executor, inbox: list[Delivery]) -> None:
        self.runner = runner
        self.run = runner.state
        self.node = node
        self.inbox = inbox
        self.live = True
        self.buffer: list[WorkflowEvent] = []
        self.replayed = False
        self.error: BaseException | None = None
        self.reset()

    def reset(self) -> None:
        """Start an attempt from a clean slate (a retry must not send twice)."""
        self.sends: list[tuple[str | None, Any]] = []
        self.outputs: list[Any] = []
        self.state_writes: dict[str, Any] = {}
        self.local_writes: dict[str, Any] = {}
        self.requests: list[PendingRequest] = []
        self.deliveries: list[tuple[str, int, Any]] = []
        self.fan_in: list[tuple[int, Any]] = []
        self.dropped: list[tuple[str, str, str]] = []

    def outcome(self) -> dict[str, Any]:
        """What this invocation produced, as plain containers (a pending write)."""
        return {
            "deliveries": [list(d) for d in self.deliveries],
            "fan_in": [list(f) for f in self.fan_in],
            "outputs": self.outputs,
            "state": self.state_writes,
            "local": self.local_writes,
            "requests": [
                [r.request_id, r.executor_id, r.payload, r.response_type] for r in self.requests
            ],
            "dropped": [list(d) for d in self.dropped],
        }

    @classmethod
    def replay(cls, runner: Runner, node: Executor, outcome: dict[str, Any]) -> Invocation:
        """An invocation that already finished (recorded before a crash or failure)."""
        inv = cls(runner, node, [])
        inv.replayed = True
        inv.deliveries = [(d[0], d[1], d[2]) for d in outcome["deliveries"]]
        inv.fan_in = [(f[0], f[1]) for f in outcome["fan_in"]]
        inv.outputs = list(outcome["outputs"])
        inv.state_writes = dict(outcome["state"])
        inv.local_writes = dict(outcome["local"])
        inv.requests = [PendingRequest(r[0], r[1], r[2], r[3]) for r in outcome["requests"]]
        inv.dropped = [(d[0], d[1], d[2]) for d in outcome["dropped"]]
        return inv

    def add_request(self, payload: Any, response_type: Any) -> str:
        node = self.node
        if not node._response_specs:
            raise TypeError(
                f"executor {node.id!r} called request_info but has no @response_handler to "
                "receive the answer; add one"
            )
        request_id = f"{node.id}:{self.run.superstep + 1}:{len(self.requests) + 1}"
        self.requests.append(PendingRequest(request_id, node.id, payload, response_type))
        return request_id

    async def emit(self, event: WorkflowEvent) -> None:
        if self.live:
            sink = self.runner.sink
            sink.emit(event)
            if sink.streaming:
                await sink.flush()
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
                for event in nxt.buffer:
                    self.sink.emit(event)
                nxt.buffer.clear()
                nxt.live = True


class Runner:
    """Drives one run (or one resumption of it) to a final status."""

    def __init__(
        self,
        graph: WorkflowGraph,
        state: RunState,
        *,
        sink: EventSink,
        max_supersteps: int,
        max_concurrency: int | None = None,
        strict: bool = False,
        observer: Observer | None = None,
        durability: Durability | None = None,
    ) -> None:
        self.graph = graph
        self.state = state
        self.sink = sink
        self.max_supersteps = max_supersteps
        self.limiter = anyio.CapacityLimiter(max_concurrency) if max_concurrency else None
        self.strict = strict
        self.observer = observer
        self.durability = durability
        self.background: anyio.abc.TaskGroup | None = None
        self.last_step: list[Invocation] = []

    # -- the run loop ----------------------------------------------------------------------
    async def execute(self, *, resumed: bool = False) -> RunResult:
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
                if self.durability is not None:
                    await self.durability.started(self)
                if self.durability is not None and self.durability.background:
                    # async durability: checkpoints are written while the next superstep runs
                    async with anyio.create_task_group() as tg:
                        self.background = tg
                        status = await self._loop()
                    self.background = None
                else:
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
            targets = list(inbox) if len(inbox) == 1 else sorted(inbox, key=order.__getitem__)
            sink.emit(
                SuperstepStarted(run_id=st.run_id, superstep=step, executor_ids=tuple(targets))
            )
            invs: list[Invocation] = []
            for eid in targets:
                sink.emit(ExecutorInvoked(run_id=st.run_id, superstep=step, executor_id=eid))
                done = st.done.get(eid)
                if done is None:
                    invs.append(Invocation(self, executors[eid], inbox[eid]))
                elif isinstance(done, Invocation):
                    invs.append(done)
                else:  # an outcome recorded by an earlier process
                    invs.append(Invocation.replay(self, executors[eid], done))
            if sink.streaming:
                await sink.flush()
            obs = self.observer
            scope = (
                obs.superstep(run_id=st.run_id, superstep=step, executor_ids=tuple(targets))
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
            failed = [inv for inv in invs if inv.error is not None]
            if failed:
                return self._fail(invs, failed, step)
            self.last_step = invs
            self._commit(invs, step)
            sink.emit(SuperstepCompleted(run_id=st.run_id, superstep=step))
            if self.durability is not None:
                await self.durability.superstep_committed(self)
            if sink.streaming:
                await sink.flush()
        return RunStatus.AWAITING_INPUT if st.pending else RunStatus.COMPLETED

    async def _run_step(self, invs: list[Invocation]) -> None:
        todo = [inv for inv in invs if not inv.replayed]
        if len(todo) == 1 and len(invs) == 1:
            await self._invoke(todo[0], None, 0)
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
        """The dispatch seam: run one executor's deliveries, route what it sent, record it."""
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
            if self.limiter is not None:
                async with self.limiter:
                    await self._attempts(inv)
            else:
                await self._attempts(inv)
            if inv.error is None:
                try:
                    await self._route(inv)
                except Exception as exc:
                    inv.error = exc
            if inv.error is None and self.durability is not None:
                await self.durability.executor_finished(self, inv)
            if inv.error is not None and obs is not None:
                obs.executor_failed(executor_id=inv.node.id, error=inv.error)
        finally:
            if scope is not None:
                scope.__exit__(None, None, None)
            if step is not None:
                step.done(index)

    async def _attempts(self, inv: Invocation) -> None:
        policy = self.graph.policies.get(inv.node.id)
        if policy is None:
            try:
                await self._handle(inv)
            except Exception as exc:
                inv.error = exc
            return
        attempt = 1
        while True:
            try:
                if policy.timeout is not None:
                    try:
                        with anyio.fail_after(policy.timeout):
                            await self._handle(inv)
                    except TimeoutError as exc:
                        raise TimeoutError(
                            f"executor {inv.node.id!r} exceeded its timeout of {policy.timeout}s"
                        ) from exc
                else:
                    await self._handle(inv)
                return
            except Exception as exc:
                retry = policy.retry
                if retry is None or not retry.should_retry(exc, attempt):
                    inv.error = exc
                    return
                await anyio.sleep(retry.delay(attempt))
                inv.reset()
                attempt += 1

    async def _handle(self, inv: Invocation) -> None:
        node = inv.node
        ctx: WorkflowContext[Any] = WorkflowContext(inv)
        inbox = inv.inbox
        if len(inbox) > 1:
            inbox.sort(key=_delivery_key)
        sends = inv.sends
        for _, _, source, message, is_reply in inbox:
            ctx.source = source
            if is_reply:
                call = node._lookup_reply(message.request, message.response)
                if call is None:
                    raise TypeError(
                        f"executor {node.id!r} has no @response_handler for request "
                        f"{type(message.request).__name__} with response "
                        f"{type(message.response).__name__}"
                    )
                fn, takes_ctx = call
                result = await (
                    fn(message.request, message.response, ctx)
                    if takes_ctx
                    else fn(message.request, message.response)
                )
            else:
                call = node._lookup(message)
                if call is None:
                    raise TypeError(
                        f"executor {node.id!r} has no handler for {type(message).__name__}"
                    )
                fn, takes_ctx = call
                result = await (fn(message, ctx) if takes_ctx else fn(message))
            if result is not None:
                sends.append((None, result))

    # -- routing ---------------------------------------------------------------------------
    async def _route(self, inv: Invocation) -> None:
        eid = inv.node.id
        routes = self.graph.routes.get(eid)
        for target, message in inv.sends:
            if target == eid and eid not in self.graph.successors[eid]:
                self._deliver(inv, eid, -2, message, _SELF)  # a continuation, edge or not
                continue
            if target is not None and target not in self.graph.successors[eid]:
                known = ", ".join(sorted(self.graph.successors[eid])) or "none"
                raise WorkflowError(
                    f"executor {eid!r} sent {type(message).__name__} to {target!r}, which is not "
                    f"one of its successors ({known})"
                )
            if not routes:
                inv.outputs.append(message)
                continue
            for route in routes:
                group = route.group
                kind = group.kind
                if kind == "direct":
                    dst = group.targets[0]
                    if target is not None and target != dst:
                        continue
                    cond = group.conditions[0] if group.conditions else None
                    if cond is None or await _check(cond, message, group):
                        self._deliver(inv, dst, route.keys[0], message, group)
                elif kind == "fan_in":
                    if target is None or target == group.targets[0]:
                        inv.fan_in.append((group.index, message))
                elif kind == "fan_out":
                    chosen = await _select(group, message) if group.selector is not None else None
                    for dst, key in zip(group.targets, route.keys, strict=True):
                        if (target is None or target == dst) and (chosen is None or dst in chosen):
                            self._deliver(inv, dst, key, message, group)
                else:  # switch
                    pick = await _switch(group, message)
                    dst = group.targets[pick]
                    if target is None or target == dst:
                        self._deliver(inv, dst, route.keys[pick], message, group)

    def _deliver(self, inv: Invocation, dst: str, key: int, message: Any, group: Any) -> None:
        node = self.graph.executors[dst]
        if node.can_handle(message):
            inv.deliveries.append((dst, key, message))
            return
        reason = (
            f"{dst!r} has no handler for {type(message).__name__} "
            f"(accepts {_accepts(node)}) on {group.describe()}"
        )
        if self.strict:
            raise TypeError(f"message dropped: {reason}; strict=True makes this an error")
        inv.dropped.append((dst, type(message).__name__, reason))

    # -- commit ----------------------------------------------------------------------------
    def _commit(self, invs: list[Invocation], step: int) -> None:
        st = self.state
        run_id = st.run_id
        emit = self.sink.emit
        obs = self.observer
        inbox: dict[str, list[Delivery]] = {}
        touched: list[int] = []
        seq = st.seq
        groups = self.graph.groups
        for inv in invs:
            eid = inv.node.id
            sent: dict[str, int] = {}
            for dst, key, message in inv.deliveries:
                box = inbox.get(dst)
                if box is None:
                    inbox[dst] = [(key, seq, eid, message, False)]
                else:
                    box.append((key, seq, eid, message, False))
                seq += 1
                sent[dst] = sent.get(dst, 0) + 1
                if obs is not None:
                    obs.message_sent(source_id=eid, target_id=dst)
            for gi, message in inv.fan_in:
                st.fan_in.setdefault(gi, {}).setdefault(eid, []).append(message)
                touched.append(gi)
                dst = groups[gi].targets[0]
                sent[dst] = sent.get(dst, 0) + 1
            if inv.state_writes:
                st.state.update(inv.state_writes)
            if inv.local_writes:
                st.local.setdefault(eid, {}).update(inv.local_writes)
            self._emit_results(inv, step)
            emit(ExecutorCompleted(run_id=run_id, superstep=step, executor_id=eid, messages=sent))
            st.outputs.extend(inv.outputs)
            for request in inv.requests:
                st.pending[request.request_id] = request
        for gi in sorted(set(touched)):
            seq = self._fire_fan_in(gi, inbox, seq, step)
        st.seq = seq
        st.inbox = inbox
        st.superstep = step
        st.done = {}

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
                    executor_id=eid,
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
            outputs.extend(inv.outputs if isinstance(inv, Invocation) else inv["outputs"])
        if self.durability is not None:
            try:
                await self.durability.finished(self, status)
            except CheckpointError as exc:  # the run still finishes; say what was not recorded
                if st.error is None:
                    st.error = exc
                else:
                    st.error.add_note(f"and its status was not recorded: {exc}")
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


class Durability:
    """Hooks the scheduler calls so a store can checkpoint the run (see ``_durable``)."""

    trace_link: dict[str, str] | None = None
    background = False

    async def started(self, runner: Runner) -> None:
        """The run is about to execute its first superstep of this process."""

    async def executor_finished(self, runner: Runner, inv: Invocation) -> None:
        """Record ``inv``'s outcome at once (a pending write)."""

    async def superstep_committed(self, runner: Runner) -> None:
        """Commit a checkpoint of ``runner.state``."""

    async def finished(self, runner: Runner, status: RunStatus) -> None:
        """Record the run's final status."""


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


class _SelfEdge:
    @staticmethod
    def describe() -> str:
        return "self-addressed message"


_SELF = _SelfEdge()


def _delivery_key(d: Delivery) -> tuple[int, int]:
    return (d[0], d[1])


def _accepts(node: Executor) -> str:
    return type_name(node.input_types())


async def _check(cond: Callable[[Any], Any], message: Any, group: Any) -> bool:
    try:
        result = cond(message)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        raise WorkflowError(f"condition of {group.describe()} raised {exc!r}") from exc
    return bool(result)


async def _select(group: Any, message: Any) -> set[str]:
    try:
        chosen: Any = group.selector(message, list(group.targets))
        if inspect.isawaitable(chosen):
            chosen = await chosen
        picked = {chosen} if isinstance(chosen, str) else set(chosen)
    except Exception as exc:
        raise WorkflowError(f"selection function of {group.describe()} raised {exc!r}") from exc
    unknown = picked - set(group.targets)
    if unknown:
        raise WorkflowError(
            f"selection function of {group.describe()} returned unknown target(s) "
            f"{sorted(unknown)!r}; choose from {list(group.targets)!r}"
        )
    return picked


async def _switch(group: Any, message: Any) -> int:
    default = -1
    for i, cond in enumerate(group.conditions):
        if cond is None:
            default = i
        elif await _check(cond, message, group):
            return i
    return default
