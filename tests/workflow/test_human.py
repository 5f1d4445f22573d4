"""Human in the loop without a store: pause, answer, continue in the same process."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from builders import WorkflowBuilder
from workflow import (
    CheckpointError,
    Executor,
    RunStatus,
    WorkflowContext,
    events,
    executor,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Question:
    text: str


class Asker(Executor):
    @handler
    async def on(self, topic: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"approve {topic}?"), response_type=bool)
        await ctx.request_info(Question(f"comment on {topic}?"), response_type=str)

    @response_handler
    async def on_bool(self, request: Question, answer: bool, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {'yes' if answer else 'no'}"

    @response_handler
    async def on_text(self, request: Question, answer: str, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {answer}"


@executor
async def log(line: str) -> str:
    return line.upper()


def build() -> object:
    asker = Asker("asker")
    return WorkflowBuilder(start=asker).add_edge(asker, log).build()


async def test_pause_then_answer_some_then_all() -> None:
    wf = build()
    first = await wf.run("deploy", run_id="h1")  # type: ignore[attr-defined]
    assert first.status is RunStatus.AWAITING_INPUT
    assert [r.payload for r in first.pending_requests] == [
        Question("approve deploy?"),
        Question("comment on deploy?"),
    ]
    assert all(r.executor_id == "asker" for r in first.pending_requests)
    assert any(isinstance(e, events.RequestInfo) for e in first.events)
    approve, comment = (r.request_id for r in first.pending_requests)

    second = await wf.resume("h1", responses={approve: True})  # type: ignore[attr-defined]
    assert second.status is RunStatus.AWAITING_INPUT
    assert [r.request_id for r in second.pending_requests] == [comment]
    assert second.outputs == ["APPROVE DEPLOY? -> YES"]

    third = await wf.resume("h1", responses={comment: "ship it"})  # type: ignore[attr-defined]
    assert third.status is RunStatus.COMPLETED
    assert third.outputs == ["APPROVE DEPLOY? -> YES", "COMMENT ON DEPLOY? -> SHIP IT"]


async def test_wrong_response_type_raises_and_run_stays_resumable() -> None:
    wf = build()
    first = await wf.run("x", run_id="h2")  # type: ignore[attr-defined]
    approve = first.pending_requests[0].request_id
    with pytest.raises(TypeError, match=r"must be bool, got str"):
        await wf.resume("h2", responses={approve: "yes please"})  # type: ignore[attr-defined]
    again = await wf.resume("h2", responses={approve: False})  # type: ignore[attr-defined]
    assert again.status is RunStatus.AWAITING_INPUT
    assert again.outputs == ["APPROVE X? -> NO"]


async def test_unknown_run_and_unknown_request_are_clear_errors() -> None:
    wf = build()
    with pytest.raises(CheckpointError, match="unknown run 'nope'"):
        await wf.resume("nope")  # type: ignore[attr-defined]
    await wf.run("y", run_id="h3")  # type: ignore[attr-defined]
    with pytest.raises(KeyError, match="no pending request 'bogus'"):
        await wf.resume("h3", responses={"bogus": 1})  # type: ignore[attr-defined]


async def test_request_info_without_response_handler_is_an_error() -> None:
    @executor
    async def rude(x: str, ctx: WorkflowContext) -> None:
        await ctx.request_info("hello?", response_type=str)

    result = await WorkflowBuilder(start=rude).build().run("x")
    assert result.status is RunStatus.FAILED
    assert "has no @response_handler" in str(result.error)


async def test_failed_run_resumes_only_what_had_not_finished() -> None:
    calls = {"ok": 0, "flaky": 0}
    broken = True

    @executor
    async def start(x: int) -> int:
        return x

    @executor
    async def ok(x: int) -> str:
        calls["ok"] += 1
        return "ok"

    @executor
    async def flaky(x: int) -> str:
        calls["flaky"] += 1
        if broken:
            raise RuntimeError("down")
        return "flaky"

    wf = WorkflowBuilder(start=start).add_fan_out_edges(start, [ok, flaky]).build()
    failed = await wf.run(1, run_id="f1")
    assert failed.status is RunStatus.FAILED
    broken = False
    done = await wf.resume("f1")
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["ok", "flaky"]
    assert calls == {"ok": 1, "flaky": 2}
