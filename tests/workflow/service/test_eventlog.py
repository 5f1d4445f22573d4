"""The service's event logs: append, replay and forget, on every kind of log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from workflow._service._eventlog import (
    EventLog,
    MemoryEventLog,
    PostgresEventLog,
    SQLiteEventLog,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EventLog]:
    made: EventLog
    if request.param == "memory":
        made = MemoryEventLog()
    elif request.param == "sqlite":
        made = SQLiteEventLog(tmp_path / "runs.db.events")
    else:
        made = PostgresEventLog(request.getfixturevalue("postgres_dsn"))
    try:
        yield made
    finally:
        await made.aclose()


async def test_forget_deletes_only_the_named_runs(log: EventLog) -> None:
    keep, drop, other = (f"{name}-{uuid.uuid4().hex[:8]}" for name in ("keep", "drop", "other"))
    await log.append([(keep, 1, "a"), (drop, 1, "b"), (drop, 2, "c"), (other, 1, "d")])
    assert await log.forget([drop, other, drop]) == 3
    assert await log.read(drop) == []
    assert await log.last_seq(drop) == 0
    assert await log.read(other) == []
    assert await log.read(keep) == [(1, "a")]
    assert await log.forget([]) == 0
    assert await log.forget(["never-logged"]) == 0
    await log.append([(drop, 1, "again")])  # a run id may come back (a new run, same id)
    assert await log.read(drop) == [(1, "again")]
