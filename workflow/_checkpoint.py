"""Checkpoint records and the protocol every checkpoint store implements.

A :class:`Checkpoint` is one committed superstep of one run: metadata plus ``data``, the
engine's snapshot as a JSON tree already produced by :func:`workflow._serde.encode`. Stores pack
large sub-trees into content-addressed blobs themselves, checksum what they write, and verify it
on load, so a corrupt or edited checkpoint is refused by id instead of resumed.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = (
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "Checkpoint",
    "CheckpointStore",
    "RunInfo",
    "check_status",
    "utcnow",
)

SCHEMA_VERSION = 1
"""Version of the ``Checkpoint`` layout; a store refuses to load versions it does not know."""

RUN_STATUSES = frozenset(
    {"running", "completed", "awaiting_input", "failed", "cancelled", "max_supersteps"}
)


def utcnow() -> dt.datetime:
    """Aware UTC now: the only clock checkpoints use."""
    return dt.datetime.now(dt.UTC)


def check_status(status: object) -> str:
    """Accept a ``RunStatus`` or its string value; reject typos before they are stored."""
    value = status.value if isinstance(status, enum.Enum) else status
    if value not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}; expected one of {sorted(RUN_STATUSES)}")
    return str(value)


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"{value!r} is naive; use an aware UTC datetime (datetime.now(UTC))")
    return value.astimezone(dt.UTC)


class Checkpoint(BaseModel):
    """One committed superstep of a run; ``parent_id`` links it to the previous one.

    A fork's first checkpoint names a checkpoint of another run as its parent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    superstep: int = Field(ge=0)
    parent_id: str | None
    created_at: dt.datetime = Field(default_factory=utcnow)
    workflow_name: str
    graph_hash: str
    status: str
    schema_version: int = SCHEMA_VERSION
    data: dict[str, Any]
    trace: dict[str, str] | None = None

    _status = field_validator("status", mode="before")(check_status)
    _created = field_validator("created_at")(_utc)


class RunInfo(BaseModel):
    """A run as the store last recorded it (newest ``updated_at`` first in ``list_runs``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    workflow_name: str
    status: str
    updated_at: dt.datetime
    latest_checkpoint_id: str | None = None

    _status = field_validator("status", mode="before")(check_status)
    _updated = field_validator("updated_at")(_utc)


@runtime_checkable
class CheckpointStore(Protocol):
    """Durable history of runs. Every method is safe to call from concurrent tasks.

    Stores do no I/O when created; the first call creates schema, tables or directories.
    """

    async def save(
        self, checkpoint: Checkpoint, *, writes: Mapping[str, dict[str, Any]] | None = None
    ) -> None:
        """Commit ``checkpoint`` with its blobs and the run's status in one transaction.

        Optimistic concurrency: ``checkpoint.parent_id`` must be the run's latest checkpoint
        (``None`` for a first checkpoint; a fork's first checkpoint may name an existing
        checkpoint of another run). Saving a child of ``C`` in ``C``'s run drops ``C``'s writes.

        Args:
            writes: pending writes (executor id -> data) recorded against ``checkpoint.id`` in
                the same commit, in this order, as if ``put_write`` had recorded each one right
                after: either the checkpoint and all of them are stored, or nothing is.

        Raises:
            CheckpointError: the run moved on, the parent is unknown, or the id exists.
        """
        ...

    async def put_write(self, checkpoint_id: str, executor_id: str, data: dict[str, Any]) -> None:
        """Record one finished executor of the superstep after ``checkpoint_id`` at once.

        Raises:
            CheckpointError: the checkpoint is unknown or no longer its run's latest.
        """
        ...

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        """Writes recorded after ``checkpoint_id``, by executor id in write order (last wins)."""
        ...

    async def set_status(self, run_id: str, workflow_name: str, status: str) -> None:
        """Upsert the run's status without a new checkpoint (e.g. ``failed``)."""
        ...

    async def list_runs(self) -> list[RunInfo]:
        """Every run, most recently updated first."""
        ...

    async def list_checkpoints(self, run_id: str) -> list[Checkpoint]:
        """A run's checkpoints, oldest first; ``[]`` for an unknown run."""
        ...

    async def load(self, checkpoint_id: str) -> Checkpoint:
        """One checkpoint, verified; ``CheckpointError`` naming it if unknown or corrupt."""
        ...

    async def latest(self, run_id: str) -> Checkpoint | None:
        """The run's newest checkpoint, or ``None``."""
        ...

    async def delete_run(self, run_id: str) -> None:
        """Forget a run, its checkpoints and writes, and blobs nothing else references."""
        ...

    async def prune(self, run_id: str, keep_last: int) -> int:
        """Delete all but the newest ``keep_last`` checkpoints of a run; returns how many.

        Their pending writes and the blobs nothing else references go in the same commit.
        A fork never needs its parent run's checkpoints: its first checkpoint holds its state.

        Raises:
            CheckpointError: the run is unknown, ``keep_last`` is not an int >= 0 (also a
                ``ValueError``), or ``keep_last`` is 0 while an owner executes the run.
        """
        ...

    async def prune_runs(
        self, older_than: dt.timedelta, status: str | Iterable[str] | None = None
    ) -> int:
        """Delete whole runs last updated more than ``older_than`` ago; returns how many.

        Args:
            older_than: a ``timedelta`` >= 0.
            status: only runs with this status (a ``RunStatus`` or its value) or one of these.

        A run that an owner executes (``lock_run`` held, in any process) is never deleted.
        Blobs nothing else references go in the same commit as the runs.

        Raises:
            CheckpointError: bad arguments (also a ``ValueError``), naming the one to fix.
        """
        ...

    def lock_run(self, run_id: str) -> AbstractAsyncContextManager[None]:
        """Own ``run_id`` while it executes; fails at once if another owner holds it.

        The lock dies with its holder (a killed process never leaves it held).

        Raises:
            CheckpointError: "run R is being executed by another process (pid N)".
        """
        ...

    async def aclose(self) -> None:
        """Release connections and files; the store cannot be used afterwards."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
