"""The checkpoint payload's typed, versioned schema (``workflow/_schema.py``).

What today's code writes validates against the models; a checkpoint or pending write whose
layout is wrong (an edit that kept its checksum, a foreign writer, a newer release) is refused
with a ``CheckpointError`` naming the checkpoint and the field, for version 2 and version 1.
Loading older layouts is covered by ``test_checkpoint_fixtures.py``.
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workflow.test_durable import Calls, siblings
from workflow import CheckpointError, RunStatus, SQLiteCheckpointStore, Workflow
from workflow._checkpoint import Checkpoint
from workflow._schema import VERSION, CheckpointData, PendingWrite

pytestmark = pytest.mark.anyio

Edit = Callable[[dict[str, Any]], None]


class EditingStore:
    """A real store whose loaded checkpoints (and writes) are edited on the way out."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.edit_checkpoint: Edit | None = None
        self.edit_write: Edit | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _edited(self, checkpoint: Checkpoint | None) -> Checkpoint | None:
        if checkpoint is None or self.edit_checkpoint is None:
            return checkpoint
        data = copy.deepcopy(checkpoint.data)
        self.edit_checkpoint(data)
        return checkpoint.model_copy(update={"data": data})

    async def latest(self, run_id: str) -> Checkpoint | None:
        return self._edited(await self.inner.latest(run_id))

    async def load(self, checkpoint_id: str) -> Checkpoint | None:
        return self._edited(await self.inner.load(checkpoint_id))

    async def get_writes(self, checkpoint_id: str) -> dict[str, dict[str, Any]]:
        writes: dict[str, dict[str, Any]] = await self.inner.get_writes(checkpoint_id)
        if self.edit_write is not None:
            writes = copy.deepcopy(writes)
            for data in writes.values():
                if "version" in data:  # not the failure record
                    self.edit_write(data)
        return writes


async def failed_fan_out(tmp_path: Path) -> tuple[Workflow, EditingStore, Calls]:
    """``siblings`` failed with ``flaky`` down: a checkpoint with in-flight messages and
    ``ok``'s pending write after it."""
    calls: Calls = collections.Counter()
    store = EditingStore(SQLiteCheckpointStore(tmp_path / "runs.db"))
    broken = {"flaky"}
    wf = siblings(store, calls, broken)
    first = await wf.run(1, run_id="r")
    assert first.status is RunStatus.FAILED
    broken.clear()
    return wf, store, calls


async def test_what_is_written_validates_against_the_models(tmp_path: Path) -> None:
    wf, store, _ = await failed_fan_out(tmp_path)
    latest = await store.latest("r")
    assert latest is not None
    data = CheckpointData.model_validate(latest.data)
    assert data.version == VERSION == 2
    assert (latest.id, latest.superstep) == ("r@2", 1)
    assert [box.target for box in data.run.inbox] == ["ok", "flaky"]
    assert [d.source for d in data.run.inbox[0].deliveries] == ["start"]
    writes = await store.get_writes(latest.id)
    ok = PendingWrite.model_validate(writes["ok"])
    assert [c.message for c in ok.fan_in] == [3]
    done = await wf.resume("r")
    assert done.status is RunStatus.COMPLETED, done.error


def _pending_type(data: dict[str, Any]) -> None:
    data["run"]["pending"] = [
        {"request_id": "q", "executor_id": "ok", "payload": 1, "response_type": 3}
    ]


def _version(data: dict[str, Any]) -> None:
    data["version"] = 99


def _extra(data: dict[str, Any]) -> None:
    data["run"]["surprise"] = True


def _unknown_type(data: dict[str, Any]) -> None:
    data["run"]["state"] = {"x": {"$type": "os:system"}}


def _missing(data: dict[str, Any]) -> None:
    del data["run"]["seq"]


def _delivery(data: dict[str, Any]) -> None:
    data["run"]["inbox"] = [{"target": "ok", "deliveries": [{"key": "0"}]}]


def _v1_request(data: dict[str, Any]) -> None:
    # the unversioned layout, with a positional request of the wrong length
    del data["version"]
    run = data["run"]
    run["inbox"], run["fan_in"] = [], []
    run["pending"] = [["q", "ok", 1, "builtins:int", "only five"]]


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_pending_type, "run.pending.0.response_type"),
        (_version, "payload version 99"),
        (_extra, "run.surprise"),
        (_unknown_type, "run.state"),
        (_missing, "run.seq"),
        (_delivery, "run.inbox.0.deliveries.0.key"),
        (_v1_request, "run.pending.0"),
    ],
)
async def test_an_invalid_checkpoint_is_refused_naming_it_and_the_field(
    tmp_path: Path, edit: Edit, field: str
) -> None:
    wf, store, calls = await failed_fan_out(tmp_path)
    latest = await store.latest("r")
    assert latest is not None
    store.edit_checkpoint = edit
    with pytest.raises(CheckpointError) as info:
        await wf.resume("r")
    assert repr(latest.id) in str(info.value)
    assert field in str(info.value)
    assert calls["flaky"] == 1  # nothing ran
    store.edit_checkpoint = None  # the stored one is intact: it still resumes
    assert (await wf.resume("r")).status is RunStatus.COMPLETED


def _write_field(data: dict[str, Any]) -> None:
    data["fan_in"] = [{"group": -1, "message": 3}]


def _write_missing(data: dict[str, Any]) -> None:
    del data["outputs"]


@pytest.mark.parametrize(
    ("edit", "field"), [(_write_field, "fan_in.0.group"), (_write_missing, "outputs")]
)
async def test_an_invalid_pending_write_is_refused_naming_its_executor_and_field(
    tmp_path: Path, edit: Edit, field: str
) -> None:
    wf, store, _ = await failed_fan_out(tmp_path)
    store.edit_write = edit
    with pytest.raises(CheckpointError) as info:
        await wf.resume("r")
    message = str(info.value)
    assert "executor 'ok'" in message
    assert "r@2" in message
    assert field in message
