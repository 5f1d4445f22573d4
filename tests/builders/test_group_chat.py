"""Group chat: speaker order per selector, selection failures, people, tools, nesting, resume."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from builders import (
    ConversationFinished,
    GroupChatBuilder,
    LLMSelector,
    MaxMessages,
    SequentialBuilder,
    SpeakerSelected,
    SpeakerSelectionError,
    TextMention,
    TokenBudget,
)
from builders._group_chat import speaker_format
from executors import (
    AgentResponded,
    ApprovalRequest,
    ApprovalResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    FunctionAgent,
    HumanExecutor,
    HumanInputRequest,
    ScriptedChatClient,
    SubWorkflowRequest,
    ToolCall,
    tool,
)
from tests.loop_event import LoopEvent
from workflow import (
    ExecutorFailedError,
    GraphValidationError,
    RunResult,
    RunStatus,
    SQLiteCheckpointStore,
)
from workflow.events import AgentDelta

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]


def counter(name: str, description: str = "") -> FunctionAgent:
    """Says its name and how long the conversation it saw was."""
    return FunctionAgent(name, description or f"{name} speaks", lambda m: f"{name} #{len(m)}")


def speakers(result: RunResult) -> list[str | None]:
    assert result.status is RunStatus.COMPLETED, result.error
    (conversation,) = result.outputs
    return [m.author for m in conversation][1:]


def finished(result: RunResult) -> ConversationFinished:
    (event,) = [e for e in result.events if isinstance(e, ConversationFinished)]
    return event


async def test_round_robin_takes_turns_in_order_and_sees_the_whole_conversation() -> None:
    wf = GroupChatBuilder([counter("a"), counter("b"), counter("c")], max_rounds=5).build()
    result = await wf.run("the task")
    assert speakers(result) == ["a", "b", "c", "a", "b"]
    (conversation,) = result.outputs
    assert [m.text for m in conversation] == ["the task", "a #1", "b #2", "c #3", "a #4", "b #5"]
    assert finished(result).reason == "max_rounds=5: 5 speaker turns taken"
    selected = [e.speaker for e in result.events if isinstance(e, SpeakerSelected)]
    assert selected == ["a", "b", "c", "a", "b"]
    responded = [e.executor_id for e in result.events if isinstance(e, AgentResponded)]
    assert responded == ["a", "b", "c", "a", "b"]


async def test_the_graph_is_a_star_around_the_manager() -> None:
    wf = GroupChatBuilder([counter("a"), counter("b")], max_rounds=1).build()
    assert wf.start_executor_id == "manager"
    assert set(wf.graph.successors["manager"]) == {"a", "b"}
    assert wf.graph.successors["a"] == {"manager"}
    assert wf.executors["a"].kind == "agent"
    assert wf.executors["manager"].kind == "orchestrator"


async def test_function_selector_sync_and_async() -> None:
    def pick(conversation: list[ChatMessage]) -> str:
        return "b" if conversation[-1].author == "a" else "a"

    async def pick_async(conversation: list[ChatMessage]) -> str:
        return "c" if len(conversation) % 2 else "b"

    team = [counter("a"), counter("b"), counter("c")]
    assert speakers(await GroupChatBuilder(team, pick, max_rounds=4).build().run("t")) == [
        "a",
        "b",
        "a",
        "b",
    ]
    assert speakers(await GroupChatBuilder(team, pick_async, max_rounds=3).build().run("t")) == [
        "c",
        "b",
        "c",
    ]


async def test_function_selector_naming_nobody_fails_with_a_typed_error() -> None:
    wf = GroupChatBuilder([counter("a")], lambda conversation: "zed", max_rounds=3).build()
    result = await wf.run("t")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "manager"
    cause = result.error.__cause__
    assert isinstance(cause, SpeakerSelectionError)
    assert cause.candidates == ["a"]
    assert "'zed'" in str(cause)


async def test_llm_selector_reads_names_descriptions_and_history() -> None:
    client = ScriptedChatClient(["b", "  'a'. ", "I think critic should go next"])
    team = [counter("a", "writes code"), counter("b", "plans"), counter("critic", "reviews")]
    result = await GroupChatBuilder(team, client, max_rounds=3).build().run("build a thing")
    assert speakers(result) == ["b", "a", "critic"]
    system, ask = client.calls[1]
    assert "- a: writes code" in system.text
    assert "- critic: reviews" in system.text
    assert "[user]: build a thing" in ask.text
    assert "[b]: b #1" in ask.text
    assert "a, b, critic" in ask.text


async def test_llm_selector_naming_an_unknown_agent_is_asked_again() -> None:
    client = ScriptedChatClient(["nobody", "b"])
    result = (
        await GroupChatBuilder([counter("a"), counter("b")], client, max_rounds=1).build().run("t")
    )
    assert speakers(result) == ["b"]
    retry = client.calls[1]
    assert retry[-2] == ChatMessage("assistant", "nobody")
    assert "'nobody' does not name exactly one" in retry[-1].text


async def test_llm_selector_asks_for_a_schema_with_a_token_limit_and_reads_json() -> None:
    client = ScriptedChatClient(['{"next_speaker": "zed"}', '```json\n{"next_speaker": "b"}\n```'])
    wf = GroupChatBuilder([counter("a"), counter("b")], client, max_rounds=1).build()
    assert speakers(await wf.run("t")) == ["b"]
    assert client.limits == [60, 60]
    fmt = client.formats[0]
    assert fmt == speaker_format(["a", "b"])
    assert isinstance(fmt, dict)
    assert fmt["json_schema"]["schema"]["properties"]["next_speaker"]["enum"] == ["a", "b"]
    assert "zed" in client.calls[1][-1].text
    tight = LLMSelector(client, max_tokens=None)
    assert tight.max_tokens is None
    with pytest.raises(ValueError, match="max_tokens"):
        LLMSelector(client, max_tokens=0)


async def test_llm_selector_that_never_names_a_participant_fails_the_run() -> None:
    client = ScriptedChatClient(["nobody", "a and b", "everyone"])
    wf = GroupChatBuilder([counter("a"), counter("b")], client, max_rounds=2).build()
    result = await wf.run("t")
    assert result.status is RunStatus.FAILED
    cause = result.error.__cause__ if result.error else None
    assert isinstance(cause, SpeakerSelectionError)
    assert cause.answers == ["nobody", "a and b", "everyone"]
    assert len(client.calls) == 3  # bounded: selector_attempts=3
    with pytest.raises(ExecutorFailedError):
        result.raise_for_status()


async def test_llm_selector_without_repeated_speakers() -> None:
    # "a" again after "a" is refused and asked again; the retry names "b"
    client = ScriptedChatClient(["a", "a", "b"])
    wf = GroupChatBuilder(
        [counter("a"), counter("b")], client, max_rounds=2, allow_repeated_speaker=False
    ).build()
    assert speakers(await wf.run("t")) == ["a", "b"]
    assert "a has just spoken and may not speak twice in a row" in client.calls[1][1].text
    assert "Reply with one of: b." in client.calls[1][1].text


async def test_candidate_filter_narrows_every_selector() -> None:
    def only_bc(conversation: list[ChatMessage]) -> list[str]:
        return ["b", "c"]

    team = [counter("a"), counter("b"), counter("c")]
    wf = GroupChatBuilder(team, max_rounds=3, candidate_filter=only_bc).build()
    assert speakers(await wf.run("t")) == ["b", "c", "b"]
    client = ScriptedChatClient(["c"])
    wf = GroupChatBuilder(team, client, max_rounds=1, candidate_filter=only_bc).build()
    assert speakers(await wf.run("t")) == ["c"]
    assert "Reply with one of: b, c." in client.calls[0][1].text
    bad = GroupChatBuilder(team, max_rounds=1, candidate_filter=lambda c: ["x"]).build()
    result = await bad.run("t")
    assert isinstance(result.error and result.error.__cause__, SpeakerSelectionError)


async def test_participant_names_must_be_unique() -> None:
    with pytest.raises(GraphValidationError, match="two participants are named 'a'"):
        GroupChatBuilder([counter("a"), counter("a")]).build()
    with pytest.raises(GraphValidationError, match="like the manager"):
        GroupChatBuilder([counter("manager")]).build()
    with pytest.raises(GraphValidationError, match="non-empty list"):
        GroupChatBuilder([]).build()
    with pytest.raises(ValueError, match="unknown selector"):
        GroupChatBuilder([counter("a")], "random").build()  # type: ignore[arg-type]


async def test_termination_counts_selector_tokens_too() -> None:
    client = ScriptedChatClient(lambda messages: "a")  # ~40 words of prompt per selection
    wf = GroupChatBuilder([counter("a")], client, termination=TokenBudget(60)).build()
    result = await wf.run("t")
    assert finished(result).reason.startswith("TokenBudget(60)")
    assert 1 <= finished(result).turns <= 2


def scripted_agent(name: str, description: str = "") -> ChatAgent:
    """A model-backed agent whose replies depend only on what it is shown (deterministic)."""
    client = ScriptedChatClient(lambda messages: f"{name} answers {len(messages)} messages")
    return ChatAgent(name, description, f"You are {name}.", client)


async def test_chat_agents_stream_and_keep_their_own_history() -> None:
    planner, coder = scripted_agent("planner"), scripted_agent("coder")
    wf = GroupChatBuilder([planner, coder], max_rounds=4).build()
    events = [event async for event in wf.run_stream("plan it")]
    deltas = {e.executor_id for e in events if isinstance(e, AgentDelta)}
    assert deltas == {"planner", "coder"}
    (output,) = [e.data for e in events if type(e).__name__ == "OutputEmitted"]
    # each model sees its instructions, then everything said before its turn
    assert [m.text for m in output] == [
        "plan it",
        "planner answers 2 messages",
        "coder answers 3 messages",
        "planner answers 4 messages",
        "coder answers 5 messages",
    ]


async def test_a_person_in_the_group_pauses_the_run() -> None:
    human = HumanExecutor("boss", human_input_mode="ALWAYS")
    wf = GroupChatBuilder([counter("a"), human], max_rounds=3).build()
    first = await wf.run("t", run_id="g1")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    assert isinstance(request.payload, HumanInputRequest)
    assert request.executor_id == "boss"
    assert [m.text for m in request.payload.conversation] == ["t", "a #1"]
    done = await wf.resume("g1", responses={request.request_id: "ship it"})
    assert speakers(done) == ["a", "boss", "a"]
    assert done.outputs[0][2] == ChatMessage("user", "ship it", author="boss")
    # a person typing exit ends the conversation
    again = await wf.run("t", run_id="g2")
    stop = await wf.resume("g2", responses={again.pending_requests[0].request_id: "exit"})
    assert finished(stop).reason == "'boss' ended the conversation"


async def test_tool_approval_pauses_a_participant_and_its_turn_continues() -> None:
    @tool(approval_mode="always_require")
    def deploy(target: str) -> str:
        """Deploy to a target."""
        return f"deployed to {target}"

    client = ScriptedChatClient(
        [
            ChatResponse(
                tool_calls=(ToolCall(id="c1", name="deploy", arguments='{"target": "prod"}'),)
            ),
            "deployment done",
        ]
    )
    ops = ChatAgent("ops", "deploys", "", client, tools=[deploy])
    wf = GroupChatBuilder([ops, counter("qa")], max_rounds=2).build()
    first = await wf.run("ship", run_id="t1")
    (request,) = first.pending_requests
    assert isinstance(request.payload, ApprovalRequest)
    done = await wf.resume("t1", responses={request.request_id: ApprovalResponse.approve()})
    assert done.status is RunStatus.COMPLETED, done.error
    (conversation,) = done.outputs
    assert [(m.author, m.role, m.text) for m in conversation] == [
        (None, "user", "ship"),
        ("ops", "assistant", ""),
        ("ops", "tool", "deployed to prod"),
        ("ops", "assistant", "deployment done"),
        ("qa", "assistant", "qa #4"),
    ]


async def test_a_nested_workflow_is_a_participant_with_requests_flowing_through() -> None:
    reviewer = HumanExecutor("reviewer", human_input_mode="ALWAYS")
    review = SequentialBuilder([counter("writer"), reviewer], name="review").build()
    wf = GroupChatBuilder([counter("lead"), review], max_rounds=3).build()
    assert getattr(wf.executors["review"], "workflow", None) is review  # diagrams nest it
    first = await wf.run("write docs", run_id="n1")
    assert first.status is RunStatus.AWAITING_INPUT, first.error
    (request,) = first.pending_requests
    # the reviewer's own question, under its full path (the envelope stays internal)
    assert request.executor_id == "review/reviewer"
    assert request.via is not None
    assert isinstance(request.via[1], SubWorkflowRequest)
    assert any(
        isinstance(e, AgentResponded) and e.executor_id == "review/writer" for e in first.events
    )
    done = await wf.resume("n1", responses={request.request_id: "looks good"})
    assert done.status is RunStatus.COMPLETED, done.error
    (conversation,) = done.outputs
    assert [(m.author, m.text) for m in conversation] == [
        (None, "write docs"),
        ("lead", "lead #1"),
        ("writer", "writer #2"),  # the child conversation's new messages keep their authors
        ("reviewer", "looks good"),
        ("lead", "lead #4"),
    ]


# --------------------------------------------------------------------------- kill and resume


class Gate:
    """Blocks the checker's third answer until released (only while ``armed``)."""

    def __init__(self, *, armed: bool = True) -> None:
        self.armed = armed
        self.reached = LoopEvent()

    async def reply(self, messages: list[ChatMessage]) -> str:
        if self.armed and len(messages) >= 5:
            self.reached.set()
            await anyio.sleep_forever()
        return f"checker saw {len(messages)}"


def alternate(messages: list[ChatMessage]) -> str:
    """A stateless stand-in for a selector model: whoever did not speak last."""
    authors = re.findall(r"^\[(\w+)\]:", messages[-1].text, re.MULTILINE)
    return "checker" if authors[-1] == "writer" else "writer"


def resumable_team(store: Any, gate: Gate) -> GroupChatBuilder:
    team = [scripted_agent("writer", "writes"), FunctionAgent("checker", "checks", gate.reply)]
    return GroupChatBuilder(
        team,
        ScriptedChatClient(alternate),
        # the mention holds before the kill; only checkpointed state remembers it after
        termination=TextMention("checker saw 2") & MaxMessages(9),
        max_rounds=12,
        checkpoint_store=store,
    )


async def test_killed_mid_run_then_resumed_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    reference = await resumable_team(None, Gate(armed=False)).build().run("go", run_id="ref")
    (expected,) = reference.outputs
    assert finished(reference).reason.endswith("the conversation has 9 messages")

    store = SQLiteCheckpointStore(str(tmp_path / "runs.db"))
    gate = Gate()
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            functools.partial(resumable_team(store, gate).build().run, "go", run_id="killed")
        )
        await gate.reached.wait()
        tg.cancel_scope.cancel()  # the process dies mid-turn, as far as the run can tell
    (info,) = [r for r in await store.list_runs() if r.run_id == "killed"]
    assert info.status == "cancelled"

    gate.armed = False
    fresh = resumable_team(store, gate).build()  # new objects: nothing survives but the store
    resumed = await fresh.resume("killed")
    assert resumed.status is RunStatus.COMPLETED, resumed.error
    assert resumed.outputs == [expected]
    assert finished(resumed).reason == finished(reference).reason


async def test_selector_choice_streams_and_max_messages_ends_it() -> None:
    wf = GroupChatBuilder([counter("a"), counter("b")], termination=MaxMessages(3)).build()
    kinds = [type(e).__name__ async for e in wf.run_stream("go")]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "RunFinished"
    assert kinds.count("SpeakerSelected") == 2
    assert "ConversationFinished" in kinds


def test_the_example_runs_offline() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(REPO / "examples" / "group_chat.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "turn 5: the selector picks critic" in done.stdout
    assert "finished after 6 messages: TextMention('APPROVED'): said by 'critic'" in done.stdout
