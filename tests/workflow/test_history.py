# ruff: noqa: F811  (the imported ``kit`` fixture is requested by parameter name)
"""Time travel: ``resume(..., state_updates=...)`` forks a run with edited run-wide state.

Every test that needs history runs on every store (the conformance suite's ``kit`` fixture:
memory, SQLite, files, PostgreSQL).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builders import WorkflowBuilder
from workflow import (
    Breakpoint,
    BreakpointError,
    Executor,
    RunStatus,
    StateUpdateError,
    Workflow,
    WorkflowContext,
    WorkflowError,
    handler,
    response_handler,
)
from workflow.cli import main
from workflow.cli._common import EXIT_WAITING
from workflow.events import BreakpointHit

from .test_stores import Kit, kit  # noqa: F401  (the store fixture, parametrized over stores)

pytestmark = pytest.mark.anyio


class Add(Executor):
    """Adds run-wide ``bonus`` (0 if unset) to what it gets; records that it saw it."""

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        bonus = await ctx.get_state("bonus", 0)
        await ctx.set_state(f"seen {self.id}", x)
        if self.id == "a":
            await ctx.set_state("bonus", 1)
        if self.id == "c":
            await ctx.yield_output(x + bonus)
        else:
            await ctx.send_message(x + bonus)


def chain(store: Any) -> Workflow:
    a, b, c = Add("a"), Add("b"), Add("c")
    return (
        WorkflowBuilder(start=a, name="history", checkpoint_store=store)
        .add_edge(a, b)
        .add_edge(b, c)
        .build()
    )


class Opaque:
    """Not a type any checkpoint can hold."""


async def test_fork_with_state_updates_leaves_the_original_untouched(kit: Kit) -> None:
    wf = chain(kit.store)
    first = await wf.run(10, run_id="orig")
    assert first.outputs == [12]  # 10 (+0 at a) +1 at b +1 at c
    history = await kit.store.list_checkpoints("orig")
    after_a = next(c for c in history if c.superstep == 1)

    fork = await wf.resume("orig", checkpoint_id=after_a.id, state_updates={"bonus": 100})
    assert fork.status is RunStatus.COMPLETED
    assert fork.run_id != "orig"
    assert fork.outputs == [210]  # 10 +100 at b +100 at c
    forked = await kit.store.list_checkpoints(fork.run_id)
    assert forked[0].parent_id == after_a.id
    assert forked[0].data["run"]["state"]  # the edit is in the fork's first checkpoint
    assert await kit.store.list_checkpoints("orig") == history  # untouched


async def test_a_key_the_workflow_never_wrote_is_allowed(kit: Kit) -> None:
    wf = chain(kit.store)
    await wf.run(1, run_id="orig")
    after_a = (await kit.store.list_checkpoints("orig"))[1]
    fork = await wf.resume(
        "orig", checkpoint_id=after_a.id, state_updates={"note": {"by": "a person", "n": [1, 2]}}
    )
    assert fork.outputs == [3]
    latest = await kit.store.latest(fork.run_id)
    assert latest is not None
    resumed = await wf.resume(fork.run_id)  # completed: the recorded result
    assert resumed.outputs == [3]


async def test_a_value_that_cannot_be_checkpointed_is_refused_naming_the_key(kit: Kit) -> None:
    wf = chain(kit.store)
    await wf.run(1, run_id="orig")
    history = await kit.store.list_checkpoints("orig")
    runs_before = [r.run_id for r in await kit.store.list_runs()]
    with pytest.raises(StateUpdateError, match=r"state_updates\['bad'\].*cannot be checkpointed"):
        await wf.resume("orig", checkpoint_id=history[1].id, state_updates={"bad": Opaque()})
    with pytest.raises(TypeError, match="state keys are strings"):
        await wf.resume("orig", checkpoint_id=history[1].id, state_updates={3: 1})  # type: ignore[dict-item]
    assert [r.run_id for r in await kit.store.list_runs()] == runs_before  # nothing started
    assert await kit.store.list_checkpoints("orig") == history


async def test_without_a_checkpoint_id_the_fork_starts_from_the_latest(kit: Kit) -> None:
    class Ask(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            await ctx.request_info(x, response_type=int)

        @response_handler
        async def answered(self, asked: int, answer: int, ctx: WorkflowContext[int]) -> None:
            await ctx.yield_output(asked + answer + await ctx.get_state("bonus", 0))

    wf = WorkflowBuilder(start=Ask("ask"), name="asks", checkpoint_store=kit.store).build()
    paused = await wf.run(1, run_id="orig")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    latest = await kit.store.latest("orig")
    assert latest is not None
    fork = await wf.resume(
        "orig", responses={request.request_id: 10}, state_updates={"bonus": 1000}
    )
    assert fork.run_id != "orig"
    assert fork.outputs == [1011]
    assert (await kit.store.list_checkpoints(fork.run_id))[0].parent_id == latest.id
    # the original still waits, and answering it there knows nothing of the fork's edit
    original = await wf.resume("orig", responses={request.request_id: 10})
    assert original.outputs == [11]


async def test_resume_stream_takes_state_updates(kit: Kit) -> None:
    wf = chain(kit.store)
    await wf.run(10, run_id="orig")
    after_b = (await kit.store.list_checkpoints("orig"))[2]
    async with wf.resume_stream(
        "orig", checkpoint_id=after_b.id, state_updates={"bonus": 5}
    ) as events:
        seen = [e async for e in events]
    outputs = [e.data for e in seen if type(e).__name__ == "OutputEmitted"]
    assert outputs == [16]  # b already added 1 (11): +5 at c
    assert type(seen[-1]).__name__ == "RunFinished"


async def test_without_a_store_the_updates_apply_to_the_run_kept_in_memory() -> None:
    class Ask(Executor):
        @handler
        async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
            await ctx.request_info(x, response_type=int)

        @response_handler
        async def answered(self, asked: int, answer: int, ctx: WorkflowContext[int]) -> None:
            await ctx.yield_output(asked + answer + await ctx.get_state("bonus", 0))

    wf = WorkflowBuilder(start=Ask("ask"), name="asks").build()
    paused = await wf.run(1, run_id="mem")
    (request,) = paused.pending_requests
    with pytest.raises(TypeError, match="must be a mapping"):
        await wf.resume("mem", state_updates=[("bonus", 1)])  # type: ignore[arg-type]
    done = await wf.resume("mem", responses={request.request_id: 2}, state_updates={"bonus": 7})
    assert done.run_id == "mem"
    assert done.outputs == [10]


APP = """
from builders import WorkflowBuilder
from workflow import SQLiteCheckpointStore
from tests.workflow.test_history import chain

wf = chain(None)
"""


def test_cli_resume_state_forks_with_the_edit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(APP)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["run", "app.py:wf", "--input", "10", "--run-id", "orig", "--store", store]) == 0
    capsys.readouterr()
    assert main(["checkpoints", "orig", "--store", store, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    after_a = rows[1]["checkpoint_id"]
    code = main(
        [
            "resume", "app.py:wf", "orig", "--store", store,
            "--checkpoint", after_a, "--state", "bonus=100",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "output: 210" in out
    assert "run: orig.fork-" in out
    assert main(["resume", "app.py:wf", "orig", "--store", store, "--state", "bonus"]) != 0
    assert "--state 'bonus': expected KEY=JSON" in capsys.readouterr().err


# -- breakpoints ------------------------------------------------------------------------------


def kinds(events: Any) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, getattr(e, "executor_id", None)) for e in events]


async def test_pause_before_stops_the_run_and_answering_continues_after_a_restart(
    kit: Kit,
) -> None:
    wf = chain(kit.store)
    paused = await wf.run(10, run_id="bp", pause_before=["b"])
    assert paused.status is RunStatus.AWAITING_INPUT
    seen = kinds(paused.events)
    assert ("ExecutorInvoked", "b") not in seen
    hit = [e for e in paused.events if isinstance(e, BreakpointHit)]
    assert [(e.executor_id, e.superstep) for e in hit] == [("b", 2)]
    (request,) = paused.pending_requests
    assert request.request_id == hit[0].request_id
    assert (request.executor_id, request.payload) == ("b", Breakpoint("b", 2))
    assert seen.index(("BreakpointHit", "b")) < seen.index(("RunFinished", None))

    if kit.kind == "memory":  # one process's store: there is no other object over it
        await answer_in_another_process(kit.store, request)
    else:  # another process: only the storage is shared
        async with kit.reopen() as other:
            await answer_in_another_process(other, request)


async def answer_in_another_process(store: Any, request: Any) -> None:
    again = chain(store)
    held = await again.resume("bp")  # not answered: still held, nothing runs
    assert held.status is RunStatus.AWAITING_INPUT
    assert ("ExecutorInvoked", "b") not in kinds(held.events)
    assert [r.request_id for r in held.pending_requests] == [request.request_id]
    with pytest.raises(TypeError, match="must be NoneType"):
        await again.resume("bp", responses={request.request_id: "go"})
    done = await again.resume("bp", responses={request.request_id: None})
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == [12]  # the same as a run without the breakpoint
    assert ("ExecutorInvoked", "b") in kinds(done.events)


async def test_pause_before_on_resume_and_on_streams(kit: Kit) -> None:
    wf = chain(kit.store)
    async with wf.run_stream(1, run_id="bp2", pause_before=("a", "c")) as events:
        first = [e async for e in events]
    assert [k for k in kinds(first) if k[0] != "CheckpointSaved"][-3:] == [
        ("BreakpointHit", "a"),
        ("RequestInfo", "a"),
        ("RunFinished", None),
    ]
    stop_a = next(e for e in first if isinstance(e, BreakpointHit)).request_id
    # answered, and c is held by this call's own pause_before (the run's first is not kept)
    async with wf.resume_stream("bp2", responses={stop_a: None}, pause_before=["c"]) as events:
        second = [e async for e in events]
    assert ("ExecutorInvoked", "b") in kinds(second)
    assert ("ExecutorInvoked", "c") not in kinds(second)
    stop_c = next(e for e in second if isinstance(e, BreakpointHit)).request_id
    done = await wf.resume("bp2", responses={stop_c: None})
    assert done.outputs == [3]


async def test_unknown_executor_ids_are_refused_before_anything_runs(kit: Kit) -> None:
    wf = chain(kit.store)
    with pytest.raises(BreakpointError, match=r"pause_before names 'nope', not an executor.*'a'"):
        await wf.run(1, run_id="x", pause_before=["b", "nope"])
    with pytest.raises(ValueError, match="'zz'"):
        wf.run_stream(1, pause_before=["zz"])
    assert await kit.store.list_runs() == []
    await wf.run(1, run_id="y")
    with pytest.raises(WorkflowError, match="'nope'"):
        await wf.resume("y", pause_before=["nope"])


async def test_breakpoints_without_a_store() -> None:
    wf = chain(None)
    paused = await wf.run(5, run_id="mem-bp", pause_before="c")  # a single id is accepted
    (request,) = paused.pending_requests
    assert request.executor_id == "c"
    done = await wf.resume("mem-bp", responses={request.request_id: None})
    assert done.outputs == [7]
    assert [e.executor_id for e in done.events if type(e).__name__ == "ExecutorInvoked"] == ["c"]


def test_cli_pause_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.py").write_text(APP)
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    run = ["run", "app.py:wf", "--input", "10", "--run-id", "r", "--store", store]
    assert main([*run, "--pause-before", "b"]) == EXIT_WAITING
    out = capsys.readouterr().out
    assert "status: awaiting_input" in out
    assert "breakpoint:b:2" in out
    resume = ["resume", "app.py:wf", "r", "--store", store]
    assert (
        main([*resume, "--respond", "breakpoint:b:2=null", "--pause-before", "c"]) == EXIT_WAITING
    )
    assert "breakpoint:c:3" in capsys.readouterr().out
    assert main([*resume, "--respond", "breakpoint:c:3=null"]) == 0
    assert "output: 12" in capsys.readouterr().out
    assert main([*run[:-4], "--pause-before", "nope"]) != 0
    assert "pause_before names 'nope'" in capsys.readouterr().err
