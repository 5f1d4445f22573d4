"""Eager scheduling (``scheduling="eager"``): an executor runs as soon as a message for it is
committed, without waiting for a superstep barrier.

Supersteps make every branch wait for the slowest executor of each step: a branch of ten
10 ms steps beside a branch of 100 ms steps delivers its result after ~1 s. Here each
finished invocation is committed on its own, at once, and whatever it sent can run right
away, so that result comes after ~0.1 s (``benchmarks/eager_bench.py``).

What stays as in superstep mode:

- An executor handles its deliveries one at a time: it never runs twice at once. Messages
  that arrive while it runs wait and are handled together by its next invocation, ordered
  by (edge position, send order), so one source's messages keep their send order.
- A fan-in fires when every source has a message buffered (the same buffers and the same
  batch order); outputs of a DAG are the superstep mode's outputs (their order follows
  commit order, which depends on timing; ``tests/workflow/test_eager_property.py``).
- Retries, timeouts, ``max_concurrency`` (at most that many invocations at once), the
  backend seam, human input, breakpoints and nested workflows behave as in superstep mode.

What a ``superstep`` is here: the *depth* of an invocation, 1 + the deepest of the
invocations whose messages it handles (the run's input and human answers count as depth of
the last committed step), and at least 1 + the depth of the same executor's previous
invocation. For a DAG where every executor gets one message, that is the superstep it would
have run in. Events, ``ctx.superstep`` and checkpoints carry it, an executor never runs twice
at one depth (request ids stay unique), and ``max_supersteps`` bounds it: an invocation
deeper than that does not run, and once nothing else can run the run ends
``MAX_SUPERSTEPS`` (cycles stay bounded as in superstep mode). There is no
``SuperstepStarted``/``SuperstepCompleted`` event. After a resume, messages carried in the
checkpoint count as sent at its depth (the deepest committed), an upper bound.

What is durable here: every *commit*, which is one finished invocation, or several that
finished while the previous commit was being written (group commit). A commit is one
pending write against the run's latest checkpoint (``_replay``); a checkpoint, the whole
committed state, is written every ``EAGER_CHECKPOINT_EVERY`` committed invocations, when
the run stops or pauses, and when nothing else is running. Messages in flight include
those of invocations still running: resuming replays the commits recorded after the latest
checkpoint and runs only those again; nothing committed runs twice. A commit's results
(messages, state) become visible to other executors only once it is durable (with
``durability="async"``: once its write has started). A crash loses only the invocations in
flight. ``resume(checkpoint_id=...)`` forks from that checkpoint's committed prefix, as in
superstep mode; checkpoints of either mode resume in either mode.

When an executor fails (after its retries), nothing new starts; invocations in flight finish
and commit, and the run ends ``FAILED``. A breakpoint (``pause_before``) or a question holds
only its own executor; the rest of the run goes on, and it pauses once nothing else can run.
"""

from __future__ import annotations

from collections import deque
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from ._apply import finish_commit
from ._commit import EagerCommit, InvocationRecord
from ._errors import ExecutorFailedError
from ._history import Breakpoint, breakpoint_request
from ._invocation import InvocationOutcome, message_type_name, new_request
from ._result import PendingRequest
from ._routing import absorb
from ._runner import _EMPTY, Invocation, Runner, _delivery_key
from ._runstate import Delivery
from ._types import RunStatus
from .events import (
    BreakpointHit,
    ExecutorFailed,
    ExecutorInvoked,
    MessageDropped,
    RequestInfo,
)

if TYPE_CHECKING:
    from ._executor import Executor

__all__ = ("EagerRunner",)


class _EagerInvocation(Invocation):
    """An invocation with its depth; its live events go out at once (no superstep order)."""

    __slots__ = ("depth", "rec", "runner", "taken")

    def __init__(
        self, runner: EagerRunner, node: Executor, inbox: list[Delivery], depth: int, taken: int
    ) -> None:
        # the base class's fields, set here: one call fewer per invocation
        self.sink = runner.sink
        self.node = node
        self.inbox = inbox
        self.live = True
        self.buffer = None
        self.replayed = False
        self.error = None
        self.outputs = []
        self.state_writes = _EMPTY
        self.local_writes = _EMPTY
        self.requests = ()
        self.deliveries = []
        self.fan_in = []
        self.dropped = []
        self.runner = runner
        self.depth = depth
        self.taken = taken  # how many of the executor's queued deliveries it handles
        self.rec: InvocationRecord | None = None  # its commit record (durable runs)

    async def emit(self, event: Any) -> None:
        self.sink.emit(event)
        if self.sink.streaming:
            await self.runner._flush()


class EagerRunner(Runner):
    """Drives a run eagerly: the superstep runner with another loop (see the module doc)."""

    async def _loop(self) -> RunStatus:
        st = self.state
        self._base = st.superstep
        self._qdepth: dict[str, int] = {}  # per executor: the deepest delivery it has waiting
        self._last: dict[str, int] = {}  # per executor: its last invocation's depth
        self._running: set[str] = set()
        self._ready: deque[str] = deque()
        self._queued: set[str] = set()  # in _ready
        self._blocked: set[str] = set()  # too deep for max_supersteps
        self._filled: dict[int, int] = {}  # per fan-in group: sources with a message waiting
        self._fdepth: dict[int, int] = {}  # per fan-in group: the deepest message waiting
        self._finished: list[_EagerInvocation] = []  # waiting for a durable commit
        self._committing = False
        self._force = False  # the next durable commit writes a checkpoint
        self._flushing = False
        self._failed: list[_EagerInvocation] = []
        self._workers = 0
        self._wake: anyio.Event | None = None  # made by _drive, the one that waits on it
        self._woken = False
        self._unsaved = False  # breakpoints created outside a commit
        self._waiting = {
            r.payload.executor_id for r in st.pending.values() if isinstance(r.payload, Breakpoint)
        }
        for gi, bufs in st.fan_in.items():
            self._filled[gi] = sum(1 for b in bufs.values() if b)
        if st.done:  # outcomes recorded by a superstep-mode run before it stopped
            await self._replay_done()
        candidates = list(st.inbox)
        for eid in candidates:
            self._qdepth[eid] = self._base
        self._enqueue(self._admit(candidates))
        ready = self._ready
        while len(ready) == 1 and not self._failed:  # one thing to do: here, no task group
            eid = ready.popleft()
            self._queued.discard(eid)
            await self._run(eid)
        if ready and not self._failed:
            await self._drive()
        if self._failed:
            return self._fail_run()
        status = self._status()
        if self._unsaved and self.durability is not None and status is RunStatus.AWAITING_INPUT:
            # a breakpoint no commit has recorded yet
            await self.durability.paused(st.snapshot(RunStatus.AWAITING_INPUT))
        return status

    # -- scheduling ------------------------------------------------------------------------
    async def _drive(self) -> None:
        """Workers take ready executors; more start only while all of them are waiting."""
        limit = self.workflow.max_concurrency
        self._wake = anyio.Event()
        async with anyio.create_task_group() as tg:
            self._workers = 1
            tg.start_soon(self._worker)
            batch = 2
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                self._woken = False
                ready = len(self._ready)
                if not ready or self._failed:
                    if self._workers == 0:
                        return
                    batch = 2
                    continue
                more = min(ready, batch)
                if limit is not None:
                    more = min(more, limit - self._workers)
                for _ in range(more):
                    self._workers += 1
                    tg.start_soon(self._worker)
                batch *= 2
                await anyio.lowlevel.checkpoint()

    async def _worker(self) -> None:
        ready = self._ready
        try:
            while ready and not self._failed:
                eid = ready.popleft()
                self._queued.discard(eid)
                if ready and not self._woken:
                    self._rouse()  # more is ready: the driver adds workers if we wait
                await self._run(eid)
        finally:
            self._workers -= 1
            self._rouse()

    def _rouse(self) -> None:
        """Wake the driver (to add workers, or to see that the run is done)."""
        if not self._woken and self._wake is not None:
            self._woken = True
            self._wake.set()

    def _admit(self, candidates: list[str]) -> list[str]:
        """The candidates that can run now, in graph order; the others are held or blocked."""
        if len(candidates) > 1:
            order = self.graph.order
            candidates = sorted(set(candidates), key=order.__getitem__)
        st = self.state
        runnable = []
        for eid in candidates:
            if eid in self._running or eid in self._queued or eid not in st.inbox:
                continue
            if self.pause_before and eid in self.pause_before and eid not in st.released:
                self._hold(eid)
                continue
            if eid in self._waiting:
                continue
            if self._depth(eid) > self.max_supersteps:
                self._blocked.add(eid)
                continue
            self._blocked.discard(eid)
            self._queued.add(eid)
            runnable.append(eid)
        return runnable

    def _enqueue(self, runnable: list[str]) -> None:
        self._ready.extend(runnable)

    def _depth(self, eid: str) -> int:
        return max(self._qdepth.get(eid, self._base), self._last.get(eid, self._base)) + 1

    def _hold(self, eid: str) -> None:
        """A breakpoint before ``eid``: ask once, then it waits for the answer."""
        if eid in self._waiting:
            return
        st = self.state
        depth = self._depth(eid)
        request_id, payload = breakpoint_request(eid, depth)
        st.pending[request_id] = PendingRequest(request_id, eid, payload, type(None))
        self._waiting.add(eid)
        self._unsaved = True
        emit = self.sink.emit
        emit(
            BreakpointHit(run_id=st.run_id, superstep=depth, executor_id=eid, request_id=request_id)
        )
        emit(
            RequestInfo(
                run_id=st.run_id,
                superstep=depth,
                request_id=request_id,
                executor_id=eid,
                payload=payload,
                response_type=type(None),
            )
        )

    async def _flush(self) -> None:
        """One flusher at a time (it sends everything emitted meanwhile too)."""
        if self._flushing:
            return
        self._flushing = True
        try:
            await self.sink.flush()
        finally:
            self._flushing = False

    # -- one invocation --------------------------------------------------------------------
    async def _run(self, eid: str) -> None:
        st = self.state
        sink = self.sink
        box = st.inbox[eid]
        taken = len(box)
        base = self._base
        depth = max(self._qdepth.pop(eid, base), self._last.get(eid, base)) + 1
        self._running.add(eid)
        if taken == 1:
            d = box[0]
            batch = [d]
            deliveries: tuple[tuple[str | None, Any, bool], ...] = ((d[2], d[3], d[4]),)
        else:
            batch = sorted(box, key=_delivery_key)
            deliveries = tuple([(d[2], d[3], d[4]) for d in batch])
        sink.emit(ExecutorInvoked(run_id=st.run_id, superstep=depth, executor_id=eid))
        if sink.streaming:
            await self._flush()
        inv = _EagerInvocation(self, self.graph.executors[eid], batch, depth, taken)
        obs = self.observer
        scope = None
        if obs is not None:
            scope = obs.executor(
                run_id=st.run_id,
                superstep=depth,
                executor_id=eid,
                kind=inv.node.kind,
                message_types=tuple(dict.fromkeys(message_type_name(d[3]) for d in batch)),
            )
            scope.__enter__()
        try:
            request = new_request(
                (
                    st.run_id,
                    eid,
                    deliveries,
                    st.state,
                    st.local.get(eid, _EMPTY),
                    depth,
                    1,
                )
            )
            policy = self.graph.policies.get(eid)
            outcome: InvocationOutcome | None
            if policy is None or (policy.retry is None and policy.timeout is None):
                try:
                    outcome = await self.session.invoke(request, inv.emit)
                except Exception as exc:
                    inv.error = exc
                    outcome = None
            else:
                outcome = await self._attempts(inv, request, policy)
            if outcome is not None:
                await absorb(self.graph, inv, outcome, self.strict)
            if inv.error is None and self.durability is not None:
                # a value the checkpoint cannot hold fails this invocation, not the commit
                record = inv.rec = inv.record(st.run_id, depth, self.graph.groups, False)
                failure = await self.durability.invocation_finished(record)
                if failure is not None:
                    inv.error = failure
            if inv.error is not None:
                if obs is not None:
                    obs.executor_failed(executor_id=eid, error=inv.error)
                self._running.discard(eid)
                self._failed.append(inv)
                sink.emit(
                    ExecutorFailed(
                        run_id=st.run_id, superstep=depth, executor_id=eid, error=repr(inv.error)
                    )
                )
                self._rouse()
            elif self.durability is None:
                candidates = self._apply(inv)
                if candidates:
                    self._ready.extend(self._admit(candidates))
            else:
                await self._commit_durably(inv)
        finally:
            if scope is not None:
                scope.__exit__(None, None, None)
        if sink.streaming:
            await self._flush()

    async def _commit_durably(self, inv: _EagerInvocation) -> None:
        """Group commit: whoever finds the store idle commits everything finished so far.

        Results become visible (their targets may run) only once their checkpoint is saved.
        The write is shielded: a cancelled run still records what had finished.
        """
        self._finished.append(inv)
        if self._committing:
            return
        self._committing = True
        assert self.durability is not None
        try:
            if self._ready:
                # let the others finish what is ready first and join this commit: executors
                # that never wait would otherwise commit (and checkpoint) one by one
                await anyio.lowlevel.cancel_shielded_checkpoint()
            while self._finished:
                group, self._finished = self._finished, []
                candidates: list[str] = []
                edges: dict[str, int] = {}
                for done in group:
                    candidates.extend(self._apply(done, edges))
                runnable = self._admit(candidates)  # queued only once saved
                idle = not (self._running or self._finished or self._ready or runnable)
                status = self._status() if idle and not self._failed else RunStatus.RUNNING
                st = self.state
                commits = tuple(EagerCommit(self._record(d), d.taken) for d in group)
                # a checkpoint when nothing else runs (the run ends, pauses or waits for this
                # commit alone: its state is small then) or when asked; else a pending write
                full = self._force or idle or self._failed != []
                self._force = False
                with anyio.CancelScope(shield=True):
                    saved = await self.durability.eager_committed(
                        commits, MappingProxyType(edges), status, partial(st.snapshot, status), full
                    )
                if saved:
                    self._unsaved = False
                self._enqueue(runnable)
        finally:
            self._committing = False

    def _record(self, inv: _EagerInvocation) -> InvocationRecord:
        """``inv``'s commit record (made when it finished, or now for a replayed one)."""
        if inv.rec is None:
            inv.rec = inv.record(self.state.run_id, inv.depth, self.graph.groups, False)
        return inv.rec

    # -- commit ----------------------------------------------------------------------------
    def _apply(self, inv: _EagerInvocation, edges: dict[str, int] | None = None) -> list[str]:
        """Commit one invocation's results; the executors that may have become ready."""
        st = self.state
        eid = inv.node.id
        depth = inv.depth
        emit = self.sink.emit
        obs = self.observer
        inbox = st.inbox
        box = inbox[eid]
        del box[: inv.taken]
        candidates: list[str] = []
        if box:
            candidates.append(eid)
        else:
            del inbox[eid]
        self._running.discard(eid)
        self._last[eid] = depth
        if depth > st.superstep:
            st.superstep = depth
        if st.released:
            st.released.discard(eid)
        qdepth = self._qdepth
        seq = st.seq
        sent: dict[str, int] = {}
        for dst, key, message in inv.deliveries:
            target = inbox.get(dst)
            if target is None:
                inbox[dst] = [(key, seq, eid, message, False)]
            else:
                target.append((key, seq, eid, message, False))
            seq += 1
            sent[dst] = sent.get(dst, 0) + 1
            if qdepth.get(dst, -1) < depth:
                qdepth[dst] = depth
            candidates.append(dst)
            if obs is not None:
                obs.message_sent(source_id=eid, target_id=dst)
        st.seq = seq
        if inv.fan_in:
            groups = self.graph.groups
            for gi, message in inv.fan_in:
                dst = groups[gi].targets[0]
                sent[dst] = sent.get(dst, 0) + 1
                if self._buffer(gi, eid, message, depth):
                    candidates.append(dst)
        if inv.state_writes:
            st.state = {**st.state, **inv.state_writes}  # running invocations keep their view
        if inv.local_writes:
            st.local.setdefault(eid, {}).update(inv.local_writes)
        finish_commit(st, emit, inv, depth, sent, edges)
        return candidates

    def _buffer(self, gi: int, source: str, message: Any, depth: int) -> bool:
        """Add to a fan-in buffer; fire it while every source has a message (True if fired)."""
        st = self.state
        bufs = st.fan_in.get(gi)
        if bufs is None:
            bufs = st.fan_in[gi] = {}
        # a batch counts as deep as its deepest part (an upper bound once more are waiting)
        fdepth = self._fdepth
        deepest = fdepth.get(gi, self._base)
        if deepest < depth:
            fdepth[gi] = deepest = depth
        waiting = bufs.get(source)
        if waiting:  # this source was not missing: nothing can fire
            waiting.append(message)
            return False
        bufs[source] = [message]
        filled = self._filled[gi] = self._filled.get(gi, 0) + 1
        group = self.graph.groups[gi]
        if filled < len(group.sources):
            return False
        dst = group.targets[0]
        depth = deepest
        fired = False
        sources = group.sources
        while self._filled[gi] == len(sources):
            batch = []
            for s in sources:
                buf = bufs[s]
                batch.append(buf.pop(0))
                if not buf:
                    del bufs[s]
                    self._filled[gi] -= 1
            node = self.graph.executors[dst]
            if node.can_handle(batch):
                st.inbox.setdefault(dst, []).append(
                    (self.graph.fan_in_key[gi], st.seq, None, batch, False)
                )
                st.seq += 1
                if self._qdepth.get(dst, -1) < depth:
                    self._qdepth[dst] = depth
                fired = True
            else:
                self.sink.emit(
                    MessageDropped(
                        run_id=st.run_id,
                        superstep=depth,
                        source_id=",".join(sources),
                        target_id=dst,
                        message_type="list",
                        reason=f"{dst!r} has no handler for list on {group.describe()}",
                    )
                )
        if not bufs:
            del st.fan_in[gi]
            self._fdepth.pop(gi, None)
        return fired

    async def _replay_done(self) -> None:
        """Commit outcomes a superstep-mode run recorded before it stopped (never re-run)."""
        st = self.state
        order = self.graph.order
        done, st.done = st.done, {}
        for eid in sorted(done, key=order.__getitem__):
            outcome = done[eid]
            if eid not in st.inbox:
                continue
            depth = self._depth(eid)
            self.sink.emit(ExecutorInvoked(run_id=st.run_id, superstep=depth, executor_id=eid))
            base = (
                outcome
                if isinstance(outcome, Invocation)
                else Invocation.replay(self.sink, self.graph.executors[eid], outcome)
            )
            inv = _EagerInvocation(self, base.node, [], depth, len(st.inbox[eid]))
            inv.deliveries = base.deliveries
            inv.fan_in = base.fan_in
            inv.outputs = base.outputs
            inv.state_writes = base.state_writes
            inv.local_writes = base.local_writes
            inv.requests = base.requests
            inv.dropped = base.dropped
            self._running.add(eid)
            if self.durability is None:
                self._enqueue(self._admit(self._apply(inv)))
            else:
                # a checkpoint: it supersedes the superstep run's pending writes at once
                self._force = True
                await self._commit_durably(inv)

    # -- the end ---------------------------------------------------------------------------
    def _status(self) -> RunStatus:
        """The status once nothing can run: too deep, waiting for answers, or done."""
        st = self.state
        if self._blocked:
            return RunStatus.MAX_SUPERSTEPS
        if st.pending:
            return RunStatus.AWAITING_INPUT
        return RunStatus.RUNNING if st.inbox else RunStatus.COMPLETED

    def _fail_run(self) -> RunStatus:
        st = self.state
        first = self._failed[0]
        eid = first.node.id
        err = ExecutorFailedError(
            f"executor {eid!r} failed in superstep {first.depth}: {first.error!r}",
            executor_id=eid,
            superstep=first.depth,
            run_id=st.run_id,
        )
        err.__cause__ = first.error
        st.error = err
        return RunStatus.FAILED
