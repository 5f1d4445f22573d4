"""Workflow.as_agent / Workflow.as_tool: a workflow wherever an agent or a tool is accepted.

Streaming deltas and requests for input pass through the outer run; a paused inner run
checkpoints with the outer one and continues when the outer run is resumed, also from a
fresh workflow object reading the same SQLite store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from builders import (
    GroupChatBuilder,
    MagenticBuilder,
    SequentialBuilder,
    WorkflowBuilder,
    two_agent_chat,
)
from executors import (
    AgentError,
    AgentResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    FunctionAgent,
    ScriptedChatClient,
    ToolCall,
    WorkflowAgentExecutor,
)
from workflow import (
    Executor,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowAgent,
    WorkflowContext,
    WorkflowError,
    WorkflowTool,
    events,
    executor,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


def writer_workflow() -> Workflow:
    writer = ChatAgent("writer", "writes", "", ScriptedChatClient(["a draft about cats"]))
    return SequentialBuilder([writer], name="writing").build()


@dataclass(frozen=True)
class Question:
    text: str


class Asker(Executor):
    """Asks a person for a word, then outputs the task with that word."""

    @handler
    async def on(self, task: str, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(Question(f"word for {task}?"), response_type=str)

    @response_handler
    async def on_word(self, request: Question, word: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"{request.text} -> {word}")


def asking_workflow() -> Workflow:
    return WorkflowBuilder(start=Asker("asker"), name="asking").build()


def outer_graph(agent: WorkflowAgent, store: Any = None) -> Workflow:
    @executor(id="collect")
    async def collect(reply: AgentResponse, ctx: WorkflowContext[Any]) -> None:
        await ctx.yield_output(f"{reply.agent_name}: {reply.text}")

    return (
        WorkflowBuilder(start=agent, name="outer", checkpoint_store=store)
        .add_edge(agent, collect)
        .build()
    )


# --------------------------------------------------------------------------- as an agent


async def test_as_agent_in_a_sequential_team_answers_as_one_participant() -> None:
    inner = writer_workflow().as_agent("drafting", "Drafts a text")
    editor = FunctionAgent("editor", "edits", lambda msgs: f"edited: {msgs[-1].text}")
    result = await SequentialBuilder([inner, editor]).build().run("write about cats")
    assert result.status is RunStatus.COMPLETED
    conversation = result.outputs[-1]
    assert [(m.author, m.text) for m in conversation[1:]] == [
        ("drafting", "a draft about cats"),
        ("editor", "edited: a draft about cats"),
    ]


async def test_as_agent_in_a_graph_streams_the_inner_agents_deltas_through() -> None:
    agent = writer_workflow().as_agent("drafting")
    seen = [e async for e in outer_graph(agent).run_stream("go")]
    deltas = [e for e in seen if isinstance(e, events.AgentDelta)]
    assert "".join(d.text for d in deltas) == "a draft about cats"
    assert {d.executor_id for d in deltas} == {"drafting/writer"}
    assert [e.data for e in seen if isinstance(e, events.OutputEmitted)] == [
        "drafting: a draft about cats"
    ]


async def test_requests_pass_through_and_the_inner_run_resumes_from_the_store(
    tmp_path: Path,
) -> None:
    store_path = tmp_path / "runs.db"
    agent = asking_workflow().as_agent("asking-agent", "asks a person")
    first = await outer_graph(agent, SQLiteCheckpointStore(store_path)).run("colour")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    assert request.payload == Question("word for colour?")  # the asker's own question
    assert request.executor_id == "asking-agent/asker"

    # A fresh definition over the same store, as another process would build it.
    fresh_agent = asking_workflow().as_agent("asking-agent", "asks a person")
    fresh = outer_graph(fresh_agent, SQLiteCheckpointStore(store_path))
    done = await fresh.resume(run_id=first.run_id, responses={request.request_id: "blue"})
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["asking-agent: word for colour? -> blue"]


async def test_a_wrong_answer_type_is_refused_and_the_run_keeps_waiting() -> None:
    outer = outer_graph(asking_workflow().as_agent("asking-agent"))
    first = await outer.run("colour")
    (request,) = first.pending_requests
    with pytest.raises(TypeError):
        await outer.resume(run_id=first.run_id, responses={request.request_id: 42})
    done = await outer.resume(run_id=first.run_id, responses={request.request_id: "red"})
    assert done.outputs == ["asking-agent: word for colour? -> red"]


async def test_as_agent_takes_part_in_group_chat_two_agent_chat_and_magentic() -> None:
    inner = writer_workflow().as_agent("drafting", "Drafts a text")
    critic = FunctionAgent("critic", "criticises", lambda msgs: "fine")
    chat = GroupChatBuilder([inner, critic], max_rounds=2).build()
    result = await chat.run("topic: cats")
    assert [m.author for m in result.outputs[-1][1:]] == ["drafting", "critic"]

    inner = writer_workflow().as_agent("drafting", "Drafts a text")  # fresh scripted replies
    pair = await two_agent_chat(inner, critic, "cats please", max_turns=1)
    assert [m.author for m in pair.outputs[-1][1:]] == ["drafting", "critic"]

    from executors import MagenticManager, ProgressLedger, TaskLedger
    from executors._magentic_ledger import LedgerEntry

    class OneRound(MagenticManager):
        async def plan(self, ctx: Any) -> TaskLedger:
            return TaskLedger(facts="", plan="ask drafting")

        async def replan(self, ctx: Any) -> TaskLedger:
            return await self.plan(ctx)

        async def progress(self, ctx: Any) -> ProgressLedger:
            done = any(m.author == "drafting" for m in ctx.history)
            entry = LedgerEntry
            return ProgressLedger(
                is_request_satisfied=entry(answer=done, reason=""),
                is_in_loop=entry(answer=False, reason=""),
                is_progress_being_made=entry(answer=True, reason=""),
                next_speaker=entry(answer="drafting", reason=""),
                instruction_or_question=entry(answer="draft it", reason=""),
            )

        async def final_answer(self, ctx: Any) -> str:
            return next(m.text for m in ctx.history if m.author == "drafting")

    inner = writer_workflow().as_agent("drafting", "Drafts a text")
    team = MagenticBuilder(participants=[inner], manager=OneRound()).build()
    assert (await team.run("cats")).outputs == ["a draft about cats"]


async def test_run_outside_a_workflow_and_its_errors() -> None:
    agent = writer_workflow().as_agent("drafting")
    reply = await agent.run([ChatMessage("user", "cats")])
    assert (reply.text, reply.agent_name) == ("a draft about cats", "drafting")
    with pytest.raises(AgentError, match=r"'asking-agent'.*stopped to ask for input"):
        await asking_workflow().as_agent("asking-agent").run([ChatMessage("user", "x")])


class Order(BaseModel):
    item: str
    quantity: int


def order_workflow() -> Workflow:
    @executor(id="price")
    def price(order: Order) -> str:
        return f"{order.quantity} x {order.item} = {order.quantity * 3}"

    return WorkflowBuilder(start=price, name="pricing").build()


async def test_structured_input_is_read_as_json_and_bad_json_names_the_workflow() -> None:
    agent = order_workflow().as_agent("pricer")
    reply = await agent.run([ChatMessage("user", '{"item": "pen", "quantity": 2}')])
    assert reply.text == "2 x pen = 6"
    with pytest.raises(WorkflowError, match="'pricing' takes 'Order'"):
        await agent.run([ChatMessage("user", "two pens")])


def test_bad_descriptors_are_refused() -> None:
    with pytest.raises(WorkflowError, match="non-empty name"):
        writer_workflow().as_agent("")
    with pytest.raises(WorkflowError, match="description must be a str"):
        writer_workflow().as_tool("t", 3)  # type: ignore[arg-type]
    node = writer_workflow().as_agent("drafting").as_executor()
    assert isinstance(node, WorkflowAgentExecutor)
    assert node.id == "drafting"


# --------------------------------------------------------------------------- as a tool


def calling(tool_name: str, arguments: dict[str, Any], final: str) -> ScriptedChatClient:
    call = ToolCall(id="c1", name=tool_name, arguments=json.dumps(arguments))
    return ScriptedChatClient([ChatResponse("", tool_calls=(call,)), final])


async def test_as_tool_runs_the_workflow_and_the_model_reads_its_output() -> None:
    tool = order_workflow().as_tool("price_order", "Prices an order")
    assert isinstance(tool, WorkflowTool)
    client = calling("price_order", {"item": "pen", "quantity": 2}, "done")
    agent = ChatAgent("shop", "", "", client, tools=[tool])
    (offered,) = agent.tools
    assert offered.parameters["required"] == ["item", "quantity"]
    reply = await agent.run([ChatMessage("user", "price 2 pens")])
    tool_message = next(m for m in reply.messages if m.role == "tool")
    assert tool_message.text == "2 x pen = 6"


async def test_tool_errors_are_fed_back_to_the_model() -> None:
    text_tool = writer_workflow().as_tool("draft")
    agent = ChatAgent("a", "", "", calling("draft", {"input": "cats"}, "ok"), tools=[text_tool])
    reply = await agent.run([ChatMessage("user", "x")])
    assert next(m for m in reply.messages if m.role == "tool").text == "a draft about cats"

    bad = ChatAgent(
        "b",
        "",
        "",
        calling("price_order", {"item": "pen"}, "ok"),
        tools=[order_workflow().as_tool("price_order")],
    )
    reply = await bad.run([ChatMessage("user", "x")])
    text = next(m for m in reply.messages if m.role == "tool").text
    assert text.startswith("Error:")
    assert "quantity" in text

    asking = ChatAgent(
        "c",
        "",
        "",
        calling("ask", {"input": "x"}, "ok"),
        tools=[asking_workflow().as_tool("ask")],
    )
    reply = await asking.run([ChatMessage("user", "x")])
    text = next(m for m in reply.messages if m.role == "tool").text
    assert "stopped to ask a person" in text
    assert "Workflow.as_agent" in text


async def test_a_team_member_that_asks_a_person_pauses_the_team_and_resumes_from_the_store(
    tmp_path: Path,
) -> None:
    def team(store: Any) -> Workflow:
        asker = asking_workflow().as_agent("asking-agent", "asks a person")
        editor = FunctionAgent("editor", "edits", lambda msgs: f"edited: {msgs[-1].text}")
        return SequentialBuilder([asker, editor], checkpoint_store=store).build()

    path = tmp_path / "team.db"
    first = await team(SQLiteCheckpointStore(path)).run("hat")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    assert request.executor_id == "asking-agent/asker"
    done = await team(SQLiteCheckpointStore(path)).resume(
        run_id=first.run_id, responses={request.request_id: "fedora"}
    )
    assert done.status is RunStatus.COMPLETED
    assert [(m.author, m.text) for m in done.outputs[-1][1:]] == [
        ("asking-agent", "word for hat? -> fedora"),
        ("editor", "edited: word for hat? -> fedora"),
    ]


async def test_as_agent_in_concurrent_and_handoff_teams() -> None:
    from builders import ConcurrentBuilder, HandoffBuilder

    critic = FunctionAgent("critic", "criticises", lambda msgs: "fine")
    both = (
        await ConcurrentBuilder([writer_workflow().as_agent("drafting"), critic])
        .build()
        .run("cats")
    )
    assert [r.text for r in both.outputs[0]] == ["a draft about cats", "fine"]

    def triage_model(messages: list[ChatMessage]) -> str | ChatResponse:
        if messages[-1].role == "tool":
            return ""
        call = ToolCall(id="h1", name="handoff_to_drafting", arguments="{}")
        return ChatResponse("", tool_calls=(call,))

    triage = ChatAgent("triage", "routes", "", ScriptedChatClient(triage_model))
    drafting = writer_workflow().as_agent("drafting", "Drafts texts")
    team = HandoffBuilder([triage, drafting], {"triage": ["drafting"]}).build()
    result = await team.run("write about cats")
    assert result.status is RunStatus.COMPLETED
    assert result.outputs[-1][-1].author == "drafting"
    assert result.outputs[-1][-1].text == "a draft about cats"
