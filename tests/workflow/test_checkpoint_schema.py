"""The checkpoint payload's typed, versioned schema (``workflow/_schema.py``).

What today's code writes validates against the models; a checkpoint or pending write whose
layout is wrong (an edit that kept its checksum, a foreign writer, a newer release) is refused
with a ``CheckpointError`` naming the checkpoint and the field, for version 2 and version 1.
Any committed state survives the payload (a property, on random snapshots). Loading older
layouts is covered by ``test_checkpoint_fixtures.py``.
"""

from __future__ import annotations

import collections
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.workflow.test_durable import Calls, siblings
from workflow import CheckpointError, RunStatus, SQLiteCheckpointStore, Workflow
from workflow._checkpoint import Checkpoint
from workflow._commit import RunSnapshot
from workflow._result import PendingRequest
from workflow._schema import VERSION, CheckpointData, PendingWrite, dump_run, load_run
from workflow._serde import TypeRegistry, dumps, loads

pytestmark = pytest.mark.anyio

OVERLAY = {"ran": [], "messages": {}}

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


# --------------------------------------------------------------------------- round trip

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_ids = st.sampled_from(["a", "b", "c/d", "$x"])


@st.composite
def snapshots(draw: st.DrawFn) -> RunSnapshot:
    inbox = draw(
        st.dictionaries(
            _ids,
            st.lists(
                st.tuples(
                    st.integers(-1, 5), st.integers(0, 99), st.none() | _ids, _values, st.booleans()
                ),
                min_size=1,
                max_size=3,
            ).map(tuple),
            max_size=3,
        )
    )
    fan_in = draw(
        st.dictionaries(
            st.integers(0, 3),
            st.dictionaries(_ids, st.lists(_values, min_size=1, max_size=2).map(tuple), min_size=1),
            max_size=2,
        )
    )
    pending = draw(
        st.lists(
            st.builds(
                PendingRequest,
                st.text(min_size=1, max_size=6),
                _ids,
                _values,
                st.sampled_from([bool, str, int, list[int], dict[str, bool] | None]),
                st.none() | st.tuples(_ids, _values),
            ),
            max_size=3,
            unique_by=lambda r: r.request_id,
        ).map(tuple)
    )
    return RunSnapshot(
        run_id=draw(st.text(min_size=1, max_size=6)),
        superstep=draw(st.integers(0, 50)),
        seq=draw(st.integers(0, 500)),
        status=draw(st.sampled_from(list(RunStatus))),
        inbox=inbox,
        state=draw(st.dictionaries(st.text(max_size=5), _values, max_size=3)),
        local=draw(
            st.dictionaries(_ids, st.dictionaries(st.text(max_size=4), _values), max_size=2)
        ),
        fan_in=fan_in,
        pending=pending,
        outputs=tuple(draw(st.lists(_values, max_size=3))),
    )


@settings(max_examples=150, deadline=None)
@given(snapshots(), st.integers(0, 9))
def test_any_snapshot_survives_the_payload_as_json_bytes(snap: RunSnapshot, count: int) -> None:
    registry = TypeRegistry()
    data = {"version": VERSION, "run": dump_run(snap, count, registry), "overlay": OVERLAY}
    loaded = load_run(loads(dumps(data)), registry, checkpoint_id="c")
    assert (loaded.run_id, loaded.superstep, loaded.seq, loaded.status) == (
        snap.run_id,
        snap.superstep,
        snap.seq,
        snap.status,
    )
    assert loaded.checkpoint_count == count
    assert loaded.inbox == {t: list(box) for t, box in snap.inbox.items()}
    assert loaded.state == snap.state
    assert loaded.local == snap.local
    assert loaded.fan_in == {g: {s: list(m) for s, m in b.items()} for g, b in snap.fan_in.items()}
    assert list(loaded.pending.values()) == list(snap.pending)
    assert [r.via for r in loaded.pending.values()] == [r.via for r in snap.pending]
    assert [r.response_type for r in loaded.pending.values()] == [
        r.response_type for r in snap.pending
    ]
    assert loaded.outputs == list(snap.outputs)
