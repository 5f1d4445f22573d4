"""Committing a superstep: its invocations' results applied in graph order, or its failure.

Plain functions of the run's state and graph (the superstep runner calls them between
supersteps; nothing here awaits): sends become the next superstep's deliveries, fan-in
contributions fill their buffers and fire complete batches, writes and outputs are applied,
and the events that say so are emitted in a deterministic order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ._commit import count_sent
from ._errors import ExecutorFailedError
from ._runstate import Delivery, RunState
from ._types import RunStatus
from .events import (
    ExecutorCompleted,
    ExecutorFailed,
    MessageDropped,
    OutputEmitted,
    RequestInfo,
    WorkflowEvent,
)

if TYPE_CHECKING:
    from ._graph import WorkflowGraph
    from ._observer import Observer
    from ._step import Invocation

__all__ = ("commit_step", "emit_results", "fail_step", "fire_fan_in")

Emit = Callable[[WorkflowEvent], None]


def commit_step(
    st: RunState,
    graph: WorkflowGraph,
    emit: Emit,
    obs: Observer | None,
    invs: list[Invocation],
    step: int,
    durable: bool,
) -> dict[str, int] | None:
    """Commit a superstep's results in graph order; per-edge message counts when durable."""
    edges: dict[str, int] | None = {} if durable else None
    inbox: dict[str, list[Delivery]] = {}
    touched: list[int] = []
    seq = st.seq
    groups = graph.groups
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
        finish_commit(st, emit, inv, step, sent, edges)
    if touched:
        for gi in sorted(set(touched)):
            seq = fire_fan_in(st, graph, emit, gi, inbox, seq, step)
    st.seq = seq
    st.inbox = inbox
    st.superstep = step
    if st.done:
        st.done = {}
    return edges


def finish_commit(
    st: RunState,
    emit: Emit,
    inv: Invocation,
    step: int,
    sent: dict[str, int],
    edges: dict[str, int] | None,
) -> None:
    """The end of committing one invocation, the same in both schedulers: its result events,
    ``ExecutorCompleted``, the per-edge counts (when durable), its outputs and requests."""
    eid = inv.node.id
    if inv.dropped or inv.outputs or inv.requests:
        emit_results(emit, st.run_id, inv, step)
    emit(ExecutorCompleted(run_id=st.run_id, superstep=step, executor_id=eid, messages=sent))
    if edges is not None:
        for dst, n in sent.items():
            edge = f"{eid}->{dst}"
            edges[edge] = edges.get(edge, 0) + n
    if inv.outputs:
        st.outputs.extend(inv.outputs)
    for request in inv.requests:
        st.pending[request.request_id] = request


def emit_results(emit: Emit, run_id: str, inv: Invocation, step: int) -> None:
    """The events of what ``inv`` produced: drops, outputs, requests (in that order)."""
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


def fire_fan_in(
    st: RunState,
    graph: WorkflowGraph,
    emit: Emit,
    gi: int,
    inbox: dict[str, list[Delivery]],
    seq: int,
    step: int,
) -> int:
    """Deliver every complete batch of fan-in group ``gi``; returns the next send sequence."""
    group = graph.groups[gi]
    buffers = st.fan_in[gi]
    dst = group.targets[0]
    node = graph.executors[dst]
    key = graph.fan_in_key[gi]
    while all(buffers.get(s) for s in group.sources):
        batch = [buffers[s].pop(0) for s in group.sources]
        if node.can_handle(batch):
            inbox.setdefault(dst, []).append((key, seq, None, batch, False))
            seq += 1
        else:
            emit(
                MessageDropped(
                    run_id=st.run_id,
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
        del st.fan_in[gi]
    return seq


def fail_step(
    st: RunState, emit: Emit, invs: list[Invocation], failed: list[Invocation], step: int
) -> RunStatus:
    """A superstep with failures: siblings that finished are kept (``st.done``), none commits."""
    for inv in invs:
        eid = inv.node.id
        if inv.error is None:
            if not inv.replayed:
                emit_results(emit, st.run_id, inv, step)
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
