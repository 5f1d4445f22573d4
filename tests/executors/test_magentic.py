"""The Magentic loop with a deterministic Python manager and scripted participants."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from builders import MagenticBuilder
from executors import (
    ChatMessage,
    ConversationReset,
    FinalAnswer,
    FunctionAgent,
    LedgerEntry,
    MagenticContext,
    MagenticLedgerError,
    MagenticManager,
    PlanCreated,
    PlanReviewRequest,
    PlanReviewResponse,
    ProgressLedger,
    ProgressLedgerUpdated,
    Replanned,
    StallDetected,
    TaskLedger,
)
from tests.loop_event import LoopEvent
from workflow import Executor, ExecutorFailedError, RunStatus, WorkflowContext, executor, handler
from workflow.events import WorkflowEvent

pytestmark = pytest.mark.anyio

Decide = Callable[[MagenticContext], ProgressLedger]


def ledger(
    speaker: str | list[str] = "alice",
    instruction: str = "carry on",
    *,
    satisfied: bool = False,
    loop: bool = False,
    progress: bool = True,
) -> ProgressLedger:
    """A progress ledger, spelled out once."""
    return ProgressLedger(
        is_request_satisfied=LedgerEntry(satisfied, "judged"),
        is_in_loop=LedgerEntry(loop, "judged"),
        is_progress_being_made=LedgerEntry(progress, "judged"),
        next_speaker=LedgerEntry(speaker, "best placed"),
        instruction_or_question=LedgerEntry(instruction, "next step"),
    )


class ScriptManager(MagenticManager):
    """Decisions are a pure function of the context; it records every context it saw."""

    def __init__(self, decide: Decide) -> None:
        self.decide = decide
        self.seen: list[tuple[str, MagenticContext]] = []

    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        self.seen.append(("plan", ctx))
        return TaskLedger(f"facts about {ctx.task}", "- alice does the work")

    async def replan(self, ctx: MagenticContext) -> TaskLedger:
        self.seen.append(("replan", ctx))
        return TaskLedger(
            f"facts after {len(ctx.history)} messages", f"plan #{ctx.reset_count} {ctx.feedback}"
        )

    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        self.seen.append(("progress", ctx))
        return self.decide(ctx)

    async def final_answer(self, ctx: MagenticContext) -> str:
        self.seen.append(("final", ctx))
        said = [m.text for m in ctx.history if m.author in ctx.participants]
        return f"[{ctx.stop_reason}] {said[-1] if said else 'nothing'}"


def echo(name: str) -> FunctionAgent:
    """Replies with what it was told last and how much conversation it holds."""
    return FunctionAgent(
        name, f"{name} helps", lambda ms: f"{name}<{len(ms)}>: {ms[-1].text if ms else ''}"
    )


def magentic(events: list[WorkflowEvent]) -> list[WorkflowEvent]:
    return [e for e in events if type(e).__module__.startswith("executors._magentic")]


async def test_straight_success() -> None:
    def decide(ctx: MagenticContext) -> ProgressLedger:
        return {
            1: ledger("alice", "find the facts"),
            2: ledger("bob", "check alice's facts"),
        }.get(ctx.round_count) or ledger(satisfied=True)

    manager = ScriptManager(decide)
    wf = MagenticBuilder(participants=[echo("alice"), echo("bob")], manager=manager).build()
    result = await wf.run("write a report")
    result.raise_for_status()
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == ["[satisfied] bob<4>: check alice's facts"]
    kinds = [type(e).__name__ for e in magentic(result.events)]
    assert kinds == [
        "PlanCreated",
        "ProgressLedgerUpdated",
        "ProgressLedgerUpdated",
        "ProgressLedgerUpdated",
        "FinalAnswer",
    ]
    final = magentic(result.events)[-1]
    assert isinstance(final, FinalAnswer)
    assert (final.text, final.reason) == (result.outputs[0], "satisfied")
    ctx = manager.seen[-1][1]
    assert [(m.role, m.author) for m in ctx.history] == [
        ("user", "orchestrator"),  # the task ledger
        ("user", "orchestrator"),
        ("assistant", "alice"),
        ("user", "orchestrator"),
        ("assistant", "bob"),
    ]
    assert "facts about write a report" in ctx.history[0].text
    assert ctx.participants == {"alice": "alice helps", "bob": "bob helps"}
    assert (ctx.round_count, ctx.stall_count, ctx.reset_count) == (3, 0, 0)
    # the manager object is called itself, and the contexts it got are its own copies
    assert [kind for kind, _ in manager.seen] == [
        "plan",
        "progress",
        "progress",
        "progress",
        "final",
    ]
    assert manager.seen[1][1].history != ctx.history


async def test_participants_see_the_history_delta_and_the_instruction() -> None:
    got: dict[str, list[list[ChatMessage]]] = {"alice": [], "bob": []}

    def agent(name: str) -> FunctionAgent:
        def fn(messages: list[ChatMessage]) -> str:
            got[name].append(messages)
            return f"{name} reply {len(got[name])}"

        return FunctionAgent(name, "", fn)

    def decide(ctx: MagenticContext) -> ProgressLedger:
        return {
            1: ledger("alice", "one"),
            2: ledger("bob", "two"),
            3: ledger("alice", "three"),
        }.get(ctx.round_count) or ledger(satisfied=True)

    wf = MagenticBuilder(participants=[agent("alice"), agent("bob")], manager=ScriptManager(decide))
    (await wf.build().run("task")).raise_for_status()
    texts = [[m.text for m in call] for call in got["alice"]]
    assert texts[0][1:] == ["one"]
    # alice's third-round conversation: her own earlier turn once, bob's reply, the instruction
    assert texts[1][1:] == ["one", "alice reply 1", "two", "bob reply 1", "three"]
    bob = got["bob"][0]
    assert [(m.author, m.text) for m in bob[1:]] == [
        ("orchestrator", "one"),
        ("alice", "alice reply 1"),
        ("orchestrator", "two"),
    ]


async def test_stall_resets_participants_and_replans() -> None:
    conversations: list[list[str]] = []

    def fn(messages: list[ChatMessage]) -> str:
        conversations.append([m.text for m in messages])
        return f"attempt {len(conversations)}"

    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.reset_count == 0:
            return ledger("alice", f"try {ctx.round_count}", progress=False)
        if ctx.round_count < 6:
            return ledger("alice", "try the new plan")
        return ledger(satisfied=True)

    manager = ScriptManager(decide)
    wf = MagenticBuilder(participants=[FunctionAgent("alice", "", fn)], manager=manager)
    result = await wf.build().run("task")
    result.raise_for_status()
    events = magentic(result.events)
    stalls = [e.stall_count for e in events if isinstance(e, ProgressLedgerUpdated)]
    assert stalls == [1, 2, 3, 4, 0, 0]  # reset at 4 > max_stall_count=3; then counter restarts
    (stall,) = [e for e in events if isinstance(e, StallDetected)]
    assert (stall.round_count, stall.stall_count, stall.reset_count) == (4, 4, 1)
    (replanned,) = [e for e in events if isinstance(e, Replanned)]
    # replan saw the stalled history: task ledger + 3 instructions + 3 replies
    assert replanned.ledger.facts == "facts after 7 messages"
    assert replanned.reset_count == 1
    # the first turn after the reset starts from a clean conversation: new ledger + instruction
    assert len(conversations[3]) == 2
    assert "plan #1" in conversations[3][0]
    assert conversations[3][1] == "try the new plan"
    assert len(conversations[2]) == 6  # before the reset it kept growing
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    assert final.reason == "satisfied"
    ctx = manager.seen[-1][1]
    assert ctx.reset_count == 1
    assert all("try 1" not in m.text for m in ctx.history)


async def test_loop_detection_counts_up_and_down() -> None:
    pattern = {1: True, 2: False, 3: True, 4: True}

    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.reset_count:
            return ledger(satisfied=True)
        return ledger("alice", "again", loop=pattern[ctx.round_count])

    wf = MagenticBuilder(
        participants=[echo("alice")], manager=ScriptManager(decide), max_stall_count=1
    )
    result = await wf.build().run("task")
    result.raise_for_status()
    events = magentic(result.events)
    assert [e.stall_count for e in events if isinstance(e, ProgressLedgerUpdated)][:4] == [
        1,
        0,
        1,
        2,
    ]
    assert [type(e).__name__ for e in events].count("StallDetected") == 1
    assert isinstance(events[-1], FinalAnswer)
    assert events[-1].reason == "satisfied"


async def test_reset_limit_stops_with_a_final_answer() -> None:
    manager = ScriptManager(lambda ctx: ledger("alice", "spin", progress=False))
    wf = MagenticBuilder(
        participants=[echo("alice")], manager=manager, max_stall_count=0, max_reset_count=1
    )
    result = await wf.build().run("task")
    assert result.status is RunStatus.COMPLETED
    events = magentic(result.events)
    assert [type(e).__name__ for e in events] == [
        "PlanCreated",
        "ProgressLedgerUpdated",
        "StallDetected",
        "Replanned",
        "ProgressLedgerUpdated",
        "StallDetected",
        "FinalAnswer",
    ]
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    assert final.reason == "max_resets"
    assert result.outputs == [final.text]
    assert final.text.startswith("[max_resets]")


async def test_round_limit_stops_with_a_final_answer() -> None:
    manager = ScriptManager(lambda ctx: ledger("alice", f"step {ctx.round_count}"))
    wf = MagenticBuilder(participants=[echo("alice")], manager=manager, max_round_count=3)
    result = await wf.build().run("task")
    assert result.status is RunStatus.COMPLETED
    events = magentic(result.events)
    assert sum(isinstance(e, ProgressLedgerUpdated) for e in events) == 3
    final = events[-1]
    assert isinstance(final, FinalAnswer)
    assert final.reason == "max_rounds"
    assert result.outputs == ["[max_rounds] alice<6>: step 3"]
    assert manager.seen[-1][1].stop_reason == "max_rounds"


async def test_parallel_delegation_runs_concurrently_and_orders_replies_by_team() -> None:
    started: list[str] = []
    finished: list[str] = []
    both, carol_done = LoopEvent(), LoopEvent()

    def worker(name: str, after_carol: bool) -> FunctionAgent:
        async def fn(messages: list[ChatMessage]) -> str:
            started.append(name)
            if len(started) == 2:
                both.set()
            with anyio.fail_after(30):  # a deadlock guard: run one at a time, never both start
                await both.wait()
                if after_carol:
                    await carol_done.wait()
            finished.append(name)
            carol_done.set()
            return f"{name} done"

        return FunctionAgent(name, "", fn)

    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.round_count == 1:
            return ledger(["carol", "alice"], "both of you, at once")
        return ledger(satisfied=True)

    manager = ScriptManager(decide)
    # alice finishes last, yet she is first in the team, so her reply comes first in the history
    team = [worker("alice", True), echo("bob"), worker("carol", False)]
    wf = MagenticBuilder(participants=team, manager=manager).build()
    result = await wf.run("task")
    result.raise_for_status()
    assert sorted(started) == ["alice", "carol"]
    assert finished == ["carol", "alice"]
    history = manager.seen[-1][1].history
    assert [(m.author, m.text) for m in history[-2:]] == [
        ("alice", "alice done"),
        ("carol", "carol done"),
    ]
    assert result.outputs == ["[satisfied] carol done"]


async def test_plan_review_approve() -> None:
    manager = ScriptManager(lambda ctx: ledger(satisfied=True) if ctx.round_count > 1 else ledger())
    wf = MagenticBuilder(participants=[echo("alice")], manager=manager, plan_review=True).build()
    paused = await wf.run("task")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    assert isinstance(request.payload, PlanReviewRequest)
    assert request.payload.kind == "plan"
    assert request.payload.ledger.facts == "facts about task"
    assert request.response_type is PlanReviewResponse
    done = await wf.resume(
        paused.run_id, responses={request.request_id: PlanReviewResponse.approve()}
    )
    done.raise_for_status()
    assert done.outputs == ["[satisfied] alice<2>: carry on"]


async def test_plan_review_revise_replans_and_asks_again() -> None:
    manager = ScriptManager(lambda ctx: ledger(satisfied=True) if ctx.round_count > 1 else ledger())
    wf = MagenticBuilder(participants=[echo("alice")], manager=manager, plan_review=True).build()
    paused = await wf.run("task")
    (first,) = paused.pending_requests
    again = await wf.resume(
        paused.run_id,
        responses={first.request_id: PlanReviewResponse.revise("ask bob too")},
    )
    assert again.status is RunStatus.AWAITING_INPUT
    (second,) = again.pending_requests
    assert second.payload.kind == "replan"
    assert second.payload.ledger.plan == "plan #0 ask bob too"
    (replanned,) = [e for e in again.events if isinstance(e, Replanned)]
    assert replanned.feedback == "ask bob too"
    replan_ctx = next(c for kind, c in manager.seen if kind == "replan")
    assert replan_ctx.feedback == "ask bob too"
    done = await wf.resume(
        again.run_id, responses={second.request_id: PlanReviewResponse.approve()}
    )
    done.raise_for_status()
    assert "plan #0 ask bob too" in manager.seen[-1][1].history[0].text
    with pytest.raises(ValueError, match="feedback"):
        PlanReviewResponse.revise("  ")


async def test_human_guidance_on_stall_feeds_the_replan() -> None:
    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.reset_count == 0:
            return ledger("alice", "spin", progress=False)
        return ledger(satisfied=True)

    manager = ScriptManager(decide)
    wf = MagenticBuilder(
        participants=[echo("alice")],
        manager=manager,
        max_stall_count=0,
        human_guidance_on_stall=True,
    ).build()
    paused = await wf.run("task")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    assert request.payload.kind == "stall"
    assert request.payload.progress is not None
    done = await wf.resume(
        paused.run_id, responses={request.request_id: PlanReviewResponse.revise("use the index")}
    )
    done.raise_for_status()
    (replanned,) = [e for e in done.events if isinstance(e, Replanned)]
    assert replanned.ledger.plan == "plan #1 use the index"


async def test_token_budget_stops_with_reason_budget() -> None:
    class Spender(MagenticManager):
        async def plan(self, ctx: MagenticContext) -> TaskLedger:
            return TaskLedger("f", "p")

        async def replan(self, ctx: MagenticContext) -> TaskLedger:
            return TaskLedger("f", "p")

        async def progress(self, ctx: MagenticContext) -> ProgressLedger:
            from executors import Usage

            ctx.add_usage(Usage(input_tokens=40, output_tokens=10))
            return ledger("alice")

        async def final_answer(self, ctx: MagenticContext) -> str:
            return f"{ctx.stop_reason} after {ctx.usage.total_tokens} tokens"

    wf = MagenticBuilder(participants=[echo("alice")], manager=Spender(), token_budget=120)
    result = await wf.build().run("task")
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == ["budget after 150 tokens"]
    final = magentic(result.events)[-1]
    assert isinstance(final, FinalAnswer)
    assert final.reason == "budget"


async def test_time_budget_stops_with_reason_budget() -> None:
    async def slow(messages: list[ChatMessage]) -> str:
        await anyio.sleep(0.3)
        return "slowly"

    manager = ScriptManager(lambda ctx: ledger("alice"))
    wf = MagenticBuilder(
        participants=[FunctionAgent("alice", "", slow)], manager=manager, time_budget=0.2
    )
    result = await wf.build().run("task")
    assert result.status is RunStatus.COMPLETED
    final = magentic(result.events)[-1]
    assert isinstance(final, FinalAnswer)
    assert final.reason == "budget"
    assert result.outputs == [final.text]
    assert manager.seen[-1][1].round_count == 1  # one round started in time, none after


async def test_unknown_speaker_from_a_python_manager_fails_the_run_typed() -> None:
    manager = ScriptManager(lambda ctx: ledger("mallory"))
    result = await MagenticBuilder(participants=[echo("alice")], manager=manager).build().run("t")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "orchestrator"
    cause = result.error.__cause__
    assert isinstance(cause, MagenticLedgerError)
    assert "'mallory'" in str(cause)
    assert "'alice'" in str(cause)


async def test_manager_returning_the_wrong_type_fails_naming_it() -> None:
    class Sloppy(ScriptManager):
        async def progress(self, ctx: MagenticContext) -> Any:
            return {"next_speaker": "alice"}

    result = (
        await MagenticBuilder(participants=[echo("alice")], manager=Sloppy(lambda ctx: ledger()))
        .build()
        .run("t")
    )
    assert result.status is RunStatus.FAILED
    assert "Sloppy.progress() must return ProgressLedger" in str(result.error.__cause__)


async def test_executor_participants_text_and_code_style() -> None:
    @executor(id="shout")
    def shout(text: str) -> str:
        return text.upper().splitlines()[-1]

    resets: list[str] = []

    class Counter(Executor):
        """Counts the lines it is shown."""

        @handler
        async def on_message(self, message: ChatMessage, ctx: WorkflowContext[str]) -> str:
            return "|".join(message.text.splitlines()[-5:])

        @handler
        async def on_reset(self, message: ConversationReset, ctx: WorkflowContext[str]) -> None:
            resets.append(message.reason)

    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.reset_count:
            return ledger(satisfied=True)
        return {
            1: ledger("shout", "say hi"),
            2: ledger("counter", "count"),
        }.get(ctx.round_count) or ledger("shout", "stuck", progress=False)

    manager = ScriptManager(decide)
    wf = MagenticBuilder(
        participants=[shout, Counter("counter")], manager=manager, max_stall_count=0
    ).build()
    result = await wf.run("task")
    result.raise_for_status()
    history = next(c for kind, c in manager.seen if kind == "replan").history
    assert [(m.author, m.text) for m in history if m.role == "assistant"] == [
        ("shout", "SAY HI"),
        ("counter", "shout:|SAY HI||orchestrator:|count"),
    ]
    assert manager.seen[0][1].participants["counter"] == "Counts the lines it is shown."
    assert resets == ["the team stalled and resets (reset 1)"]  # shout cannot forget: not sent


async def test_a_second_reply_after_the_answer_is_ignored() -> None:
    class Chatty(Executor):
        @handler
        async def on_message(self, message: list[ChatMessage], ctx: WorkflowContext[str]) -> None:
            await ctx.send_message("first")
            await ctx.send_message("second")

    manager = ScriptManager(
        lambda ctx: ledger("chatty") if ctx.round_count == 1 else ledger(satisfied=True)
    )
    result = (
        await MagenticBuilder(participants=[Chatty("chatty")], manager=manager).build().run("t")
    )
    result.raise_for_status()
    # "first" completes the round and the run; "second" arrives after the answer
    assert result.outputs == ["[satisfied] first"]


async def test_stream_events_and_concurrent_runs_are_isolated() -> None:
    manager = ScriptManager(
        lambda ctx: ledger("alice", ctx.task) if ctx.round_count == 1 else ledger(satisfied=True)
    )
    wf = MagenticBuilder(participants=[echo("alice")], manager=manager).build()
    seen = [type(e).__name__ async for e in wf.run_stream("streamed")]
    assert seen[0] == "RunStarted"
    assert seen[-1] == "RunFinished"
    assert "PlanCreated" in seen
    assert "FinalAnswer" in seen
    results: dict[str, Any] = {}

    async def one(task: str) -> None:
        results[task] = await wf.run(task)

    async with anyio.create_task_group() as tg:
        for task in ("red", "green", "blue"):
            tg.start_soon(one, task)
    for task, result in results.items():
        assert result.outputs == [f"[satisfied] alice<2>: {task}"]


async def test_first_events_carry_the_plan() -> None:
    manager = ScriptManager(lambda ctx: ledger(satisfied=True))
    result = await MagenticBuilder(participants=[echo("alice")], manager=manager).build().run("t")
    first = magentic(result.events)[0]
    assert isinstance(first, PlanCreated)
    assert first.ledger == TaskLedger("facts about t", "- alice does the work")
    assert first.executor_id == "orchestrator"
    assert result.outputs == ["[satisfied] nothing"]


async def test_a_human_participant_answers_through_request_info() -> None:
    from executors import HumanExecutor, HumanInputRequest

    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.round_count == 1:
            return ledger("human", "Which region matters most?")
        return ledger(satisfied=True)

    human = HumanExecutor("human", human_input_mode="ALWAYS")
    wf = MagenticBuilder(
        participants=[echo("alice"), human],
        manager=ScriptManager(decide),
        descriptions={"human": "the person who asked"},
    ).build()
    paused = await wf.run("task")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    assert isinstance(request.payload, HumanInputRequest)
    assert request.payload.conversation[-1].text == "Which region matters most?"
    done = await wf.resume(paused.run_id, responses={request.request_id: "The north."})
    done.raise_for_status()
    assert done.outputs == ["[satisfied] The north."]


async def test_a_reset_clears_a_human_participants_conversation_and_count() -> None:
    from executors import HumanExecutor

    seen: list[list[str]] = []

    def reply(conversation: list[ChatMessage]) -> str:
        seen.append([m.text for m in conversation])
        return f"answer {len(seen)}"

    def decide(ctx: MagenticContext) -> ProgressLedger:
        if ctx.reset_count == 0:
            return ledger("human", f"question {ctx.round_count}", progress=False)
        if ctx.round_count < 5:
            return ledger("human", "after the reset")
        return ledger(satisfied=True)

    # Two auto-replies reach the limit: without the reset the third message would end the
    # person's chat instead of being answered.
    human = HumanExecutor(
        "human", human_input_mode="NEVER", max_consecutive_auto_reply=2, auto_reply=reply
    )
    wf = MagenticBuilder(
        participants=[echo("alice"), human],
        manager=ScriptManager(decide),
        max_stall_count=2,
        descriptions={"human": "the person who asked"},
    ).build()
    assert wf.executors["human"] is human
    result = await wf.run("task")
    result.raise_for_status()
    assert result.outputs == ["[satisfied] answer 3"]
    assert [len(c) for c in seen] == [2, 4, 2]  # it grew, then started again from the reset
    assert seen[1][1:] == ["question 1", "answer 1", "question 2"]
    assert "plan #1" in seen[2][0]
    assert seen[2][1] == "after the reset"
    stall = next(e for e in magentic(result.events) if isinstance(e, StallDetected))
    assert stall.reset_count == 1


async def test_a_non_str_task_is_refused_before_anything_runs() -> None:
    wf = MagenticBuilder(participants=[echo("alice")], manager=ScriptManager(ledger)).build()
    assert wf.executors["orchestrator"].can_handle("a task")
    with pytest.raises(TypeError, match=r"accepts str \| AgentResponse, not int"):
        await wf.run(42)
