"""``AgentExecutor``: agents as workflow nodes, streaming, approvals across pauses, chaining."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from builders import WorkflowBuilder
from executors import (
    AgentExecutor,
    AgentResponded,
    AgentResponse,
    ApprovalRequest,
    ApprovalResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    ConversationReset,
    FunctionAgent,
    ScriptedChatClient,
    ToolCall,
    ToolLoopLimitError,
    Usage,
    tool,
)
from workflow import (
    ExecutorFailedError,
    GraphValidationError,
    InMemoryCheckpointStore,
    RunStatus,
    SQLiteCheckpointStore,
    Workflow,
    WorkflowContext,
    executor,
)
from workflow.events import AgentDelta, ExecutorInvoked, WorkflowEvent

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def calls(*items: tuple[str, str, str]) -> ChatResponse:
    return ChatResponse(
        tool_calls=tuple(ToolCall(id=i, name=n, arguments=a) for i, n, a in items),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=10, output_tokens=2),
    )


def of(events: list[WorkflowEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


class Payments:
    """A tool needing approval, and a record of every call that really ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []

        @tool(approval_mode="always_require")
        def pay(to: str, amount: int) -> str:
            """Send money.

            Args:
                to: Who gets it.
                amount: How much.
            """
            self.ran.append((to, amount))
            return f"sent {amount} to {to}"

        self.pay = pay


def payment_workflow(
    payments: Payments, replies: list[str | ChatResponse], store: Any = None
) -> tuple[Workflow, ScriptedChatClient]:
    client = ScriptedChatClient(replies)
    agent = ChatAgent("banker", "moves money", "Be careful.", client, tools=[payments.pay, add])
    return WorkflowBuilder(start=agent, name="pay", checkpoint_store=store).build(), client


async def executor_state(store: InMemoryCheckpointStore, run_id: str, eid: str) -> Any:
    checkpoint = await store.latest(run_id)
    assert checkpoint is not None
    return checkpoint.data["run"]["local"][eid]


# --------------------------------------------------------------------------- basics


async def test_agent_in_a_workflow_calls_a_tool_and_answers() -> None:
    client = ScriptedChatClient([calls(("c1", "add", '{"a": 2, "b": 3}')), "2 plus 3 is 5"])
    agent = ChatAgent("calc", "adds", "You add.", client, tools=[add])
    wf = WorkflowBuilder(start=agent).build()
    node = wf.executors["calc"]
    assert isinstance(node, AgentExecutor)
    assert node.kind == "agent"
    assert node.agent is agent
    result = await wf.run("what is 2 + 3?")
    assert result.status is RunStatus.COMPLETED
    (output,) = result.outputs
    assert isinstance(output, AgentResponse)
    assert output.text == "2 plus 3 is 5"
    assert [m.text for m in output.messages if m.role == "tool"] == ["5"]
    deltas = of(result.events, AgentDelta)
    assert "".join(d.text for d in deltas) == "2 plus 3 is 5"
    assert [d.text for d in deltas] == ["2 ", "plus ", "3 ", "is ", "5"]
    assert {(d.executor_id, d.agent_name) for d in deltas} == {("calc", "calc")}
    (responded,) = of(result.events, AgentResponded)
    assert responded.response == output
    assert responded.agent_name == "calc"


async def test_deltas_carry_the_superstep_of_their_invocation() -> None:
    agent = ChatAgent("calc", chat_client=ScriptedChatClient(["one two"]))
    result = await WorkflowBuilder(start=agent).build().run("hi")
    (invoked,) = [e for e in of(result.events, ExecutorInvoked) if e.executor_id == "calc"]
    assert {d.superstep for d in of(result.events, AgentDelta)} == {invoked.superstep}


async def test_streaming_can_be_turned_off_and_id_overridden() -> None:
    agent = ChatAgent("calc", chat_client=ScriptedChatClient(["fine"]))
    node = AgentExecutor(agent, id="node", stream=False)
    result = await WorkflowBuilder(start=node).build().run("hi")
    assert result.outputs[0].text == "fine"
    assert of(result.events, AgentDelta) == []
    with pytest.raises(TypeError, match="is not an agent"):
        AgentExecutor(object())  # type: ignore[arg-type]


async def test_accepts_str_message_list_and_response() -> None:
    seen: list[list[ChatMessage]] = []

    def record(messages: list[ChatMessage]) -> str:
        seen.append(messages)
        return "ok"

    wf = WorkflowBuilder(start=FunctionAgent("f", fn=record)).build()
    hello = ChatMessage("user", "hello", author="ann")
    upstream = AgentResponse(messages=[ChatMessage("assistant", "x", author="g")], agent_name="g")
    for message in ("hello", hello, [hello, hello], upstream):
        result = await wf.run(message)
        assert result.status is RunStatus.COMPLETED, result.error
    assert seen == [
        [ChatMessage("user", "hello")],
        [hello],
        [hello, hello],
        [ChatMessage("assistant", "x", author="g")],
    ]
    failed = await wf.run([hello, "not a message"])
    assert failed.status is RunStatus.FAILED
    assert "item #2 is str" in str(failed.error)


async def test_user_defined_agent_is_stamped_and_checked() -> None:
    class Anonymous:
        name = "anon"
        description = "forgets to sign"

        async def run(self, messages: list[ChatMessage]) -> AgentResponse:
            return AgentResponse(messages=[ChatMessage("assistant", "hi")])

    class Broken:
        name = "broken"
        description = "returns text"

        async def run(self, messages: list[ChatMessage]) -> str:
            return "oops"

    result = await WorkflowBuilder(start=Anonymous()).build().run("x")
    (out,) = result.outputs
    assert out.agent_name == "anon"
    assert out.messages[0].author == "anon"
    assert out.text == "hi"
    failed = await WorkflowBuilder(start=Broken()).build().run("x")
    assert failed.status is RunStatus.FAILED
    assert "run() must return AgentResponse, got str" in str(failed.error)


async def test_handlers_are_typed_for_the_builder() -> None:
    @executor
    def wants_int(n: int) -> int:
        return n

    agent = FunctionAgent("f", fn=lambda m: "x")
    with pytest.raises(GraphValidationError, match="'f' sends AgentResponse"):
        WorkflowBuilder(start=agent).add_edge(agent, wants_int).build()


# --------------------------------------------------------------------------- conversation


async def test_agents_chain_with_conversation_context() -> None:
    writer_client = ScriptedChatClient(["Roses are red."])
    critic_client = ScriptedChatClient(["Too short."])
    writer = ChatAgent("writer", instructions="Write poems.", chat_client=writer_client)
    critic = ChatAgent("critic", instructions="Critique.", chat_client=critic_client)
    result = await WorkflowBuilder(start=writer).add_edge(writer, critic).build().run("a poem")
    assert result.outputs[0].text == "Too short."
    assert result.outputs[0].agent_name == "critic"
    # The critic saw the writer's reply as a user message signed by the writer (the task
    # itself went only to the writer).
    assert critic_client.calls[0] == [
        ChatMessage("system", "Critique."),
        ChatMessage("user", "Roses are red.", author="writer"),
    ]


async def test_conversation_grows_within_a_run_and_is_isolated_between_runs() -> None:
    client = ScriptedChatClient(lambda messages: f"reply {len(messages)}")
    agent = ChatAgent("a", chat_client=client)

    @executor
    def again(response: AgentResponse) -> str:
        return "more"

    wf = (
        WorkflowBuilder(start=agent, max_supersteps=10)
        .add_edge(agent, again, condition=lambda r: r.text != "reply 5")
        .add_edge(again, agent)
        .build()
    )
    first = await wf.run("start")
    assert first.status is RunStatus.COMPLETED
    assert [len(c) for c in client.calls] == [1, 3, 5]  # the conversation accumulates
    assert client.calls[2][-1] == ChatMessage("user", "more", author="again")
    await wf.run("start")
    assert [len(c) for c in client.calls[3:]] == [1, 3, 5]  # a new run starts empty


async def test_a_reset_forgets_the_conversation() -> None:
    client = ScriptedChatClient(lambda messages: f"reply {len(messages)}")
    agent = ChatAgent("a", chat_client=client)

    @executor
    def talk(task: str, ctx: WorkflowContext[str | ConversationReset]) -> None:
        ctx.send_message("one")
        ctx.send_message(ConversationReset(reason="start over"))
        ctx.send_message("two")

    result = await WorkflowBuilder(start=talk).add_edge(talk, agent).build().run("go")
    assert [o.text for o in result.outputs] == ["reply 1", "reply 1"]  # nothing for the reset
    assert client.calls == [
        [ChatMessage("user", "one", author="talk")],
        [ChatMessage("user", "two", author="talk")],
    ]


async def test_usage_is_kept_per_run_in_executor_state() -> None:
    store = InMemoryCheckpointStore()
    client = ScriptedChatClient([calls(("c1", "add", '{"a": 1, "b": 2}')), "3"])
    agent = ChatAgent("calc", chat_client=client, tools=[add])
    wf = WorkflowBuilder(start=agent, checkpoint_store=store).build()
    result = await wf.run("1+2", run_id="u1")
    assert result.outputs[0].usage == Usage(input_tokens=12, output_tokens=3)
    state = await executor_state(store, "u1", "calc")
    assert state["usage"] == {"input_tokens": 12, "output_tokens": 3}
    assert [m["role"] for m in state["conversation"]] == ["user", "assistant", "tool", "assistant"]


# --------------------------------------------------------------------------- approvals


async def test_approval_pauses_then_runs_the_tool_once_with_the_exact_arguments() -> None:
    payments = Payments()
    args = '{"to": "bob", "amount": 30}'
    store = InMemoryCheckpointStore()
    wf, client = payment_workflow(
        payments, [calls(("p1", "pay", args)), "Sent 30 to bob."], store=store
    )
    paused = await wf.run("pay bob 30", run_id="r1")
    assert paused.status is RunStatus.AWAITING_INPUT
    assert payments.ran == []
    (pending,) = paused.pending_requests
    assert pending.executor_id == "banker"
    assert pending.response_type is ApprovalResponse
    assert pending.payload == ApprovalRequest(
        agent_name="banker",
        tool_name="pay",
        arguments=args,
        call_id="p1",
        description="Send money.",
    )
    state = await executor_state(store, "r1", "banker")
    json.dumps(state)  # plain JSON: no live objects in the executor's state
    assert "$type" not in json.dumps(state)
    assert state["turn"]["new_messages"][0]["tool_calls"][0]["arguments"] == args

    done = await wf.resume("r1", responses={pending.request_id: ApprovalResponse.approve()})
    assert done.status is RunStatus.COMPLETED
    assert payments.ran == [("bob", 30)]
    (output,) = done.outputs
    assert output.text == "Sent 30 to bob."
    assert [m.text for m in output.messages if m.role == "tool"] == ["sent 30 to bob"]
    # The scripted client counts words: the second call read 9 (instructions, task, result).
    assert output.usage == Usage(input_tokens=10 + 9, output_tokens=2 + 4)
    assert client.calls[1][-1] == ChatMessage(
        "tool", "sent 30 to bob", author="banker", tool_call_id="p1"
    )
    assert (await executor_state(store, "r1", "banker"))["turn"] is None


async def test_rejection_is_reported_to_the_model() -> None:
    payments = Payments()
    wf, client = payment_workflow(
        payments, [calls(("p1", "pay", '{"to": "eve", "amount": 999}')), "Understood."]
    )
    paused = await wf.run("pay eve", run_id="r2")
    (pending,) = paused.pending_requests
    reply = ApprovalResponse.reject("eve is not a customer")
    done = await wf.resume("r2", responses={pending.request_id: reply})
    assert done.status is RunStatus.COMPLETED
    assert payments.ran == []
    told = client.calls[1][-1]
    assert told.role == "tool"
    assert told.tool_call_id == "p1"
    assert told.text == "Error: the user rejected this call of tool 'pay': eve is not a customer"
    assert done.outputs[0].text == "Understood."


async def test_wrong_answer_type_is_refused_and_the_run_stays_paused() -> None:
    payments = Payments()
    wf, _ = payment_workflow(payments, [calls(("p1", "pay", '{"to": "a", "amount": 1}')), "ok"])
    paused = await wf.run("pay", run_id="r3")
    (pending,) = paused.pending_requests
    with pytest.raises(TypeError, match="must be ApprovalResponse"):
        await wf.resume("r3", responses={pending.request_id: "yes"})
    done = await wf.resume("r3", responses={pending.request_id: {"approved": True}})
    assert done.status is RunStatus.COMPLETED
    assert payments.ran == [("a", 1)]


async def test_every_call_of_a_round_waits_for_all_decisions() -> None:
    payments = Payments()
    round_ = calls(
        ("p1", "pay", '{"to": "a", "amount": 1}'),
        ("s1", "add", '{"a": 1, "b": 1}'),
        ("p2", "pay", '{"to": "b", "amount": 2}'),
    )
    wf, client = payment_workflow(payments, [round_, "all done"])
    paused = await wf.run("go", run_id="r4")
    first, second = paused.pending_requests
    assert [first.payload.call_id, second.payload.call_id] == ["p1", "p2"]
    still = await wf.resume("r4", responses={second.request_id: ApprovalResponse.reject()})
    assert still.status is RunStatus.AWAITING_INPUT
    assert [p.request_id for p in still.pending_requests] == [first.request_id]  # not asked twice
    assert payments.ran == []
    done = await wf.resume("r4", responses={first.request_id: ApprovalResponse.approve()})
    assert done.status is RunStatus.COMPLETED
    assert payments.ran == [("a", 1)]
    results = [m.text for m in client.calls[1] if m.role == "tool"]
    assert results == ["sent 1 to a", "2", "Error: the user rejected this call of tool 'pay'"]


async def test_approval_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    args = '{"to": "carol", "amount": 5}'
    before = Payments()
    wf, _ = payment_workflow(
        before, [calls(("p1", "pay", args))], store=SQLiteCheckpointStore(path)
    )
    paused = await wf.run("pay carol", run_id="restart")
    (pending,) = paused.pending_requests
    # A fresh process: new agent, tool, client and workflow objects; only the store is shared.
    after = Payments()
    wf2, client2 = payment_workflow(after, ["paid."], store=SQLiteCheckpointStore(path))
    done = await wf2.resume("restart", responses={pending.request_id: ApprovalResponse.approve()})
    assert done.status is RunStatus.COMPLETED, done.error
    assert (before.ran, after.ran) == ([], [("carol", 5)])
    assert done.outputs[0].text == "paid."
    assert client2.calls[0][-2].tool_calls[0].arguments == args


async def test_approved_tool_runs_once_even_if_the_next_model_call_fails(tmp_path: Path) -> None:
    """The tools' results are committed before the model is asked again (exactly once)."""
    path = tmp_path / "runs.db"
    args = '{"to": "dan", "amount": 7}'
    payments = Payments()
    wf, _ = payment_workflow(
        payments, [calls(("p1", "pay", args))], store=SQLiteCheckpointStore(path)
    )
    paused = await wf.run("pay dan", run_id="once")
    (pending,) = paused.pending_requests

    def model_down(messages: list[ChatMessage]) -> str:
        raise ConnectionError("model unavailable")

    agent = ChatAgent(
        "banker",
        "moves money",
        "Be careful.",
        ScriptedChatClient(model_down),
        tools=[payments.pay, add],
    )
    down = WorkflowBuilder(start=agent, name="pay", checkpoint_store=SQLiteCheckpointStore(path))
    failed = await down.build().resume(
        "once", responses={pending.request_id: ApprovalResponse.approve()}
    )
    assert failed.status is RunStatus.FAILED
    assert payments.ran == [("dan", 7)]

    wf3, client3 = payment_workflow(payments, ["paid dan."], store=SQLiteCheckpointStore(path))
    done = await wf3.resume("once")
    assert done.status is RunStatus.COMPLETED, done.error
    assert payments.ran == [("dan", 7)]  # not again
    assert done.outputs[-1].text == "paid dan."
    assert client3.calls[0][-1] == ChatMessage(
        "tool", "sent 7 to dan", author="banker", tool_call_id="p1"
    )


async def test_messages_arriving_during_a_pause_are_answered_after_it() -> None:
    payments = Payments()

    @executor
    def two_requests(task: str, ctx: WorkflowContext[str]) -> None:
        ctx.send_message("pay a")
        ctx.send_message("then say hi")

    client = ScriptedChatClient([calls(("p1", "pay", '{"to": "a", "amount": 1}')), "paid", "hi"])
    agent = ChatAgent("banker", chat_client=client, tools=[payments.pay])
    wf = WorkflowBuilder(start=two_requests).add_edge(two_requests, agent).build()
    paused = await wf.run("go", run_id="q1")
    (pending,) = paused.pending_requests
    assert len(client.calls) == 1
    done = await wf.resume("q1", responses={pending.request_id: ApprovalResponse.approve()})
    assert [o.text for o in done.outputs] == ["paid", "hi"]
    assert client.calls[2][-1] == ChatMessage("user", "then say hi", author="two_requests")


async def test_messages_queue_again_during_a_later_pause() -> None:
    payments = Payments()

    @executor
    def two_requests(task: str, ctx: WorkflowContext[str]) -> None:
        ctx.send_message("pay a")
        ctx.send_message("pay b")

    @executor
    def nudge(response: AgentResponse, ctx: WorkflowContext[str]) -> None:
        if response.text == "paid a":
            ctx.send_message("and say bye")  # arrives while the turn for "pay b" waits

    client = ScriptedChatClient(
        [
            calls(("p1", "pay", '{"to": "a", "amount": 1}')),
            "paid a",
            calls(("p2", "pay", '{"to": "b", "amount": 2}')),
            "paid b",
            "bye",
        ]
    )
    agent = ChatAgent("banker", chat_client=client, tools=[payments.pay])
    wf = (
        WorkflowBuilder(start=two_requests)
        .add_edge(two_requests, agent)
        .add_edge(agent, nudge)
        .add_edge(nudge, agent)
        .build()
    )
    (first,) = (await wf.run("go", run_id="q2")).pending_requests
    (second,) = (
        await wf.resume("q2", responses={first.request_id: ApprovalResponse.approve()})
    ).pending_requests
    done = await wf.resume("q2", responses={second.request_id: ApprovalResponse.approve()})
    assert done.status is RunStatus.COMPLETED, done.error
    assert payments.ran == [("a", 1), ("b", 2)]
    said = [e.response.text for e in of(done.events, AgentResponded)]
    assert said == ["paid b", "bye"]
    assert client.calls[-1][-1] == ChatMessage("user", "and say bye", author="nudge")


async def test_tool_loop_limit_fails_the_run_naming_the_agent() -> None:
    client = ScriptedChatClient(lambda _: calls(("c1", "add", '{"a": 1, "b": 1}')))
    agent = ChatAgent("looper", chat_client=client, tools=[add], max_tool_iterations=1)
    result = await WorkflowBuilder(start=agent).build().run("go")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert isinstance(result.error.__cause__, ToolLoopLimitError)
    assert "looper" in str(result.error)


# --------------------------------------------------------------------------- determinism


async def test_same_script_same_events() -> None:
    def build() -> Workflow:
        payments = Payments()
        client = ScriptedChatClient(
            [calls(("c1", "add", '{"a": 2, "b": 2}')), "four", "a fine answer"]
        )
        solver = ChatAgent("solver", chat_client=client, tools=[add, payments.pay])
        critic = FunctionAgent("critic", fn=lambda m: f"{len(m)} messages")
        return WorkflowBuilder(start=solver).add_chain([solver, critic]).build()

    first = await build().run("2+2?", run_id="same")
    second = await build().run("2+2?", run_id="same")
    assert first.status is RunStatus.COMPLETED
    assert first.events == second.events
    assert first.outputs == second.outputs
