"""Eager commits recorded as pending writes, and their replay on top of a checkpoint.

An eager run commits each finished invocation at once, but writes the whole committed state
(a checkpoint) only now and then: in between, each commit is one pending write against the
run's latest checkpoint, keyed ``#`` + its commit number, holding its invocations in commit
order (what each produced, and how many deliveries it handled from the head of its inbox).
Resume loads the checkpoint and replays those writes in order, which gives back the state
the run had committed when it stopped: only invocations in flight are lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._commit import EagerCommit
from ._errors import CheckpointError
from ._schema import VERSION, dump_record, load_record
from ._serde import TypeRegistry

if TYPE_CHECKING:
    from ._graph import WorkflowGraph as Graph
    from ._runstate import RunState

__all__ = ("EAGER_PREFIX", "apply_commit", "dump_commits", "eager_key", "load_commits")

# Key prefix of an eager commit's pending write ("#" cannot start an executor id that matters)
EAGER_PREFIX = "#"


def eager_key(number: int) -> str:
    """The pending-write key of eager commit ``number`` (sorts in commit order)."""
    return f"{EAGER_PREFIX}{number:010d}"


def dump_commits(
    commits: tuple[EagerCommit, ...],
    encoded: Mapping[tuple[str, int], dict[str, Any]],
    registry: TypeRegistry,
) -> dict[str, Any]:
    """One eager commit as a pending write (``encoded``: records already encoded, by id)."""
    items = []
    for c in commits:
        r = c.record
        data = encoded.get((r.executor_id, r.superstep))
        if data is None:
            data = dump_record(r, registry)
        item = {"executor_id": r.executor_id, "superstep": r.superstep, "taken": c.taken}
        items.append({**item, "write": data})
    return {"version": VERSION, "commits": items}


def load_commits(
    writes: Mapping[str, Mapping[str, Any]],
    registry: TypeRegistry,
    graph: Graph,
    *,
    what: str,
    run_id: str,
) -> list[EagerCommit]:
    """The eager commits among ``writes``, in commit order, validated."""
    targets = {gi: group.targets[0] for gi, group in enumerate(graph.groups)}
    out: list[EagerCommit] = []
    for key in sorted(k for k in writes if k.startswith(EAGER_PREFIX)):
        data = writes[key]
        where = f"the eager commit {key!r} after {what}"
        items = data.get("commits") if isinstance(data, Mapping) else None
        if data.get("version") != VERSION or not isinstance(items, list):
            raise CheckpointError(
                f"{where} is not an eager commit of payload version {VERSION}; "
                "resume from (or fork off) an earlier checkpoint instead"
            )
        for i, item in enumerate(items):
            eid = item.get("executor_id") if isinstance(item, Mapping) else None
            depth = item.get("superstep") if isinstance(item, Mapping) else None
            taken = item.get("taken") if isinstance(item, Mapping) else None
            if (
                not isinstance(eid, str)
                or eid not in graph.executors
                or type(depth) is not int
                or type(taken) is not int
                or taken < 0
                or not isinstance(item.get("write"), Mapping)
            ):
                raise CheckpointError(
                    f"{where} is invalid at commits.{i} (executor id, superstep, taken or "
                    "write); resume from (or fork off) an earlier checkpoint instead"
                )
            record = load_record(
                item["write"],
                registry,
                what=f"{where} at commits.{i}",
                run_id=run_id,
                executor_id=eid,
                superstep=depth,
                fan_in_targets=targets,
            )
            out.append(EagerCommit(record, taken))
    return out


def apply_commit(state: RunState, graph: Graph, commit: EagerCommit, what: str) -> None:
    """Apply one committed invocation to ``state`` as the eager loop did when it committed.

    Its handled deliveries leave the head of its inbox, its sends are queued with the next
    sequence numbers, its fan-in contributions are buffered (firing full groups), and its
    state writes, outputs and requests are recorded.
    """
    r = commit.record
    eid = r.executor_id
    inbox = state.inbox
    box = inbox.get(eid, [])
    if len(box) < commit.taken:
        raise CheckpointError(
            f"{what}: executor {eid!r} handled {commit.taken} message(s) but only {len(box)} "
            "are queued for it; resume from (or fork off) an earlier checkpoint instead"
        )
    del box[: commit.taken]
    if not box:
        inbox.pop(eid, None)
    if r.superstep > state.superstep:
        state.superstep = r.superstep
    for dst, key, message in r.deliveries:
        inbox.setdefault(dst, []).append((key, state.seq, eid, message, False))
        state.seq += 1
    for gi, message in r.fan_in:
        bufs = state.fan_in.setdefault(gi, {})
        bufs.setdefault(eid, []).append(message)
        group = graph.groups[gi]
        while all(bufs.get(s) for s in group.sources):
            batch = [bufs[s].pop(0) for s in group.sources]
            for s in group.sources:
                if not bufs[s]:
                    del bufs[s]
            dst = group.targets[0]
            if graph.executors[dst].can_handle(batch):  # else dropped, as when it committed
                fired = (graph.fan_in_key[gi], state.seq, None, batch, False)
                inbox.setdefault(dst, []).append(fired)
                state.seq += 1
        if not bufs:
            del state.fan_in[gi]
    if r.state_writes:
        state.state = {**state.state, **r.state_writes}
    if r.local_writes:
        state.local.setdefault(eid, {}).update(r.local_writes)
    state.outputs.extend(r.outputs)
    for request in r.requests:
        state.pending[request.request_id] = request
