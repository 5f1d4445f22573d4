"""Specs: ``load_spec(dump_spec(wf))`` runs and draws like ``wf`` for every kind, specs load
from YAML, JSON and dicts, and keys never enter a spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from builders import (
    ConcurrentBuilder,
    FunctionCallMade,
    GroupChatBuilder,
    HandoffBuilder,
    MagenticBuilder,
    MaxMessages,
    SequentialBuilder,
    SourceMatch,
    SpecError,
    TextMention,
    WorkflowBuilder,
    dump_spec,
    load_spec,
)
from executors import (
    ChatAgent,
    ChatMessage,
    ChatResponse,
    FunctionAgent,
    HumanExecutor,
    MagenticContext,
    MagenticManager,
    OpenAIChatClient,
    ProgressLedger,
    ScriptedChatClient,
    StandardMagenticManager,
    TaskLedger,
    ToolCall,
    WorkflowExecutor,
    tool,
)
from executors._magentic_ledger import LedgerEntry
from visualize import to_dot, to_mermaid
from workflow import (
    Case,
    Default,
    FunctionExecutor,
    RetryPolicy,
    Workflow,
    WorkflowContext,
    executor,
)
from workflow.events import WorkflowEvent


# -- functions a spec refers to by name (module level, so dump_spec records their imports) ------
@tool
def lookup(number: str) -> str:
    """Look an order up by its number."""
    return f"order {number}: shipped"


def shout(text: str) -> str:
    return text.upper()


def is_long(text: str) -> bool:
    return len(text) > 5


def is_empty(text: str) -> bool:
    return not text


async def long_path(text: str, ctx: WorkflowContext[Any]) -> None:
    await ctx.yield_output(f"long:{text}")


async def short_path(text: str, ctx: WorkflowContext[Any]) -> None:
    await ctx.yield_output(f"short:{text}")


@executor
async def left(text: str) -> str:
    return f"L{text}"


@executor
async def right(text: str) -> str:
    return f"R{text}"


async def join(parts: list[str], ctx: WorkflowContext[Any]) -> None:
    await ctx.yield_output("+".join(parts))


def pick_speaker(conversation: list[ChatMessage]) -> str:
    return "bob" if conversation[-1].author == "alice" else "alice"


def said_bye(conversation: list[ChatMessage]) -> bool:
    return any("bye" in m.text for m in conversation)


def count_words(messages: list[ChatMessage]) -> str:
    return f"{len(messages[-1].text.split())} words"


def longest(replies: list[ChatMessage]) -> str:
    return max(replies, key=lambda m: len(m.text)).text


class OneRound(MagenticManager):
    """Asks alice once, then answers with what she said."""

    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        return TaskLedger("facts", "alice answers")

    async def replan(self, ctx: MagenticContext) -> TaskLedger:
        return await self.plan(ctx)

    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        done = bool(ctx.history)

        def entry(answer: Any) -> LedgerEntry:
            return LedgerEntry(answer=answer, reason="scripted")

        return ProgressLedger(
            is_request_satisfied=entry(done),
            is_in_loop=entry(False),
            is_progress_being_made=entry(True),
            next_speaker=entry("alice"),
            instruction_or_question=entry("answer the task"),
        )

    async def final_answer(self, ctx: MagenticContext) -> str:
        return "final: " + ctx.history[-1].text


def _ledger(done: bool, speaker: str) -> str:
    def entry(answer: Any) -> dict[str, Any]:
        return {"answer": answer, "reason": "scripted"}

    return json.dumps(
        {
            "is_request_satisfied": entry(done),
            "is_in_loop": entry(False),
            "is_progress_being_made": entry(True),
            "next_speaker": entry(speaker),
            "instruction_or_question": entry(f"{speaker}, your turn"),
        }
    )


# -- the teams, built in Python (fresh clients each time: scripts are consumed) ---------------
def agent(name: str, replies: list[Any], **options: Any) -> ChatAgent:
    return ChatAgent(
        name, f"{name} helps", f"You are {name}.", ScriptedChatClient(replies), **options
    )


def magentic_standard() -> Workflow:
    manager = ScriptedChatClient(
        [
            "facts",
            "plan",
            _ledger(False, "alice"),
            _ledger(False, "bob"),
            _ledger(True, "bob"),
            "end",
        ]
    )
    return MagenticBuilder(
        [agent("alice", ["a1"]), agent("bob", ["b1"])],
        StandardMagenticManager(manager),
        max_round_count=7,
        max_stall_count=2,
        name="research",
    ).build()


def magentic_custom() -> Workflow:
    return MagenticBuilder([agent("alice", ["hello"])], OneRound(), plan_review=False).build()


def group_chat_llm() -> Workflow:
    selector = ScriptedChatClient(["alice", "bob", "alice"])
    return GroupChatBuilder(
        [agent("alice", ["hi", "bye"]), agent("bob", ["hello"])],
        selector,
        MaxMessages(6) | TextMention("bye", sources=["alice"]),
        max_rounds=5,
        name="chat",
    ).build()


def group_chat_function() -> Workflow:
    return GroupChatBuilder(
        [agent("alice", ["hi", "ok"]), agent("bob", ["hello", "bye"])],
        pick_speaker,
        said_bye,
        manager_name="host",
    ).build()


def sequential() -> Workflow:
    return SequentialBuilder(
        [agent("writer", ["draft"], max_tokens=200), agent("editor", ["final"])], name="pipeline"
    ).build()


def sequential_with_function_agent() -> Workflow:
    counter = FunctionAgent("counter", "Counts words.", count_words)
    return SequentialBuilder([agent("writer", ["one two three"]), counter]).build()


def concurrent_function() -> Workflow:
    return ConcurrentBuilder([agent("a", ["short"]), agent("b", ["much longer"])], longest).build()


def concurrent_agent() -> Workflow:
    return ConcurrentBuilder(
        [agent("a", ["x"]), agent("b", ["y"])], agent("judge", ["x wins"])
    ).build()


def handoff() -> Workflow:
    def call(name: str, arguments: str = "{}") -> ChatResponse:
        return ChatResponse(
            "", tool_calls=(ToolCall(id=f"c_{name}", name=name, arguments=arguments),)
        )

    triage = agent("triage", [call("handoff_to_orders")])
    orders = agent(
        "orders", [call("lookup", '{"number": "7"}'), "Your order 7 has shipped."], tools=[lookup]
    )
    return HandoffBuilder(
        [triage, orders, HumanExecutor("human")],
        {"triage": ["orders"], "orders": ["human"]},
        termination=MaxMessages(10) | FunctionCallMade("never_called") | SourceMatch(["nobody"]),
        name="desk",
    ).build()


def graph() -> Workflow:
    return (
        WorkflowBuilder(start=shout, name="router", max_supersteps=50)
        .add_switch_case_edge_group(
            shout, [Case(is_empty, short_path), Case(is_long, long_path), Default(left)]
        )
        .add_fan_out_edges(left, [right, "fanned"])
        .add_executor(echo_node("fanned"), timeout=5)
        .add_fan_in_edges([right, "fanned"], join)
        .build()
    )


def nested() -> Workflow:
    child = WorkflowBuilder(start=shout, name="inner").add_edge(shout, long_path).build()
    return (
        WorkflowBuilder(start=left, name="outer")
        .add_executor(left, retry=RetryPolicy(max_attempts=2, initial_delay=0.0))
        .add_edge(left, WorkflowExecutor(child, id="inner"))
        .build()
    )


def echo_node(node_id: str) -> FunctionExecutor:
    return FunctionExecutor(shout, id=node_id)


TEAMS = {
    "magentic_standard": (magentic_standard, "What is the answer?"),
    "magentic_custom": (magentic_custom, "Say hello"),
    "group_chat_llm": (group_chat_llm, "Talk"),
    "group_chat_function": (group_chat_function, "Talk"),
    "sequential": (sequential, "Write a story"),
    "sequential_function_agent": (sequential_with_function_agent, "Write"),
    "concurrent_function": (concurrent_function, "Answer"),
    "concurrent_agent": (concurrent_agent, "Answer"),
    "handoff": (handoff, "Where is order 7?"),
    "graph_long": (graph, "a long text"),
    "graph_short": (graph, "hey"),
    "nested": (nested, "abc"),
}


async def events(wf: Workflow, task: Any) -> list[str]:
    from workflow.cli._common import event_json

    seen: list[WorkflowEvent] = [e async for e in wf.run_stream(task, run_id="same")]
    return [event_json(e) for e in seen]


@pytest.mark.parametrize("team", sorted(TEAMS))
def test_a_dumped_spec_runs_and_draws_like_the_workflow(team: str) -> None:
    build, task = TEAMS[team]
    data = dump_spec(build())
    json.dumps(data)  # plain data
    loaded = load_spec(data, allow_imports=True)
    original = build()
    assert to_mermaid(loaded) == to_mermaid(original)
    assert to_dot(loaded).source == to_dot(original).source
    theirs, ours = anyio.run(events, original, task), anyio.run(events, loaded, task)
    assert ours == theirs
    assert any('"OutputEmitted"' in line for line in ours) or team == "handoff"
    assert dump_spec(load_spec(data, allow_imports=True)) == data  # a fixed point


def test_dumped_names_resolve_from_functions_without_imports() -> None:
    data = dump_spec(graph())
    assert data["imports"]["is_long"] == f"{__name__}:is_long"
    del data["imports"]
    functions = {f.__name__: f for f in (shout, is_long, is_empty, long_path, short_path, join)}
    functions |= {"left": left, "right": right}
    wf = load_spec(data, functions=functions)
    result = wf.run_sync("a long text")
    assert result.outputs == ["long:A LONG TEXT"]


def test_graph_spec_in_yaml_with_edges_cases_fan_out_and_fan_in(tmp_path: Path) -> None:
    text = """
kind: graph
name: router
description: Routes text by length.
executors:
  shout: {function: shout}
  short_path: {function: short_path}
  long_path: {function: long_path}
  left: {function: left}
  right: {function: right}
  fanned: {function: shout, timeout: 5}
  join: {function: join}
start: shout
edges:
  - from: shout
    cases:
      - {when: is_empty, to: short_path}
      - {when: is_long, to: long_path}
      - {to: left}
  - {from: left, to: [right, fanned]}
  - {from: [right, fanned], to: join}
"""
    path = tmp_path / "router.yaml"
    path.write_text(text)
    functions = {f.__name__: f for f in (shout, is_long, is_empty, long_path, short_path, join)}
    functions |= {"left": left, "right": right}
    for source in (path, str(path), text):
        wf = load_spec(source, functions=functions)
        assert wf.run_sync("hey").outputs == ["RLHEY+LHEY"]
        assert wf.run_sync("a long text").outputs == ["long:A LONG TEXT"]
    assert to_mermaid(wf) == to_mermaid(graph())
    assert dump_spec(wf)["description"] == "Routes text by length."
    as_json = tmp_path / "router.json"
    as_json.write_text(json.dumps(dump_spec(wf)))
    assert load_spec(as_json, allow_imports=True).run_sync("hey").outputs == ["RLHEY+LHEY"]


def test_agents_used_directly_as_graph_nodes() -> None:
    spec = {
        "kind": "graph",
        "name": "review",
        "clients": {"script": {"type": "scripted", "replies": ["draft", "looks good"]}},
        "agents": {
            "writer": {"instructions": "Write.", "client": "script"},
            "critic": {"instructions": "Review.", "client": "script"},
        },
        "start": "writer",
        "edges": [{"from": "writer", "to": "critic"}],
    }
    wf = load_spec(spec)
    assert list(wf.executors) == ["writer", "critic"]
    # both agents share one client: its replies go to them in turn
    result = wf.run_sync("Write a poem")
    assert result.status == "completed"


# -- keys --------------------------------------------------------------------------------------
def test_a_key_from_an_environment_variable_is_written_as_its_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-test-0123456789abcdef")
    import os

    client = OpenAIChatClient("gpt-4o-mini", api_key=os.environ["TEAM_KEY"])
    team = SequentialBuilder([ChatAgent("solo", "", "Be brief.", client)]).build()
    data = dump_spec(team)
    assert data["clients"]["solo"] == {
        "type": "openai",
        "model": "gpt-4o-mini",
        "api_key_env": "TEAM_KEY",
    }
    assert "sk-test" not in json.dumps(data)
    again = dump_spec(load_spec(data))
    assert again == data


def test_a_key_in_no_environment_variable_is_refused_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = OpenAIChatClient("gpt-4o-mini", api_key="sk-secret-98765432109876")
    team = SequentialBuilder([ChatAgent("solo", "", "Be brief.", client)]).build()
    with pytest.raises(SpecError) as caught:
        dump_spec(team)
    assert caught.value.path == "agents.solo.client"
    assert "environment variable" in str(caught.value)
    assert "sk-secret" not in str(caught.value)


def test_a_local_server_without_a_key_needs_no_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = OpenAIChatClient("llama", base_url="http://127.0.0.1:8080/v1")
    team = SequentialBuilder([ChatAgent("solo", "", "Be brief.", client)]).build()
    assert dump_spec(team)["clients"]["solo"] == {
        "type": "openai",
        "model": "llama",
        "base_url": "http://127.0.0.1:8080/v1",
    }


def test_an_unset_key_variable_fails_the_run_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISSING_TEAM_KEY", raising=False)
    spec = {
        "kind": "sequential",
        "name": "solo",
        "clients": {"gpt": {"type": "openai", "model": "m", "api_key_env": "MISSING_TEAM_KEY"}},
        "agents": {"solo": {"client": "gpt"}},
    }
    wf = load_spec(spec)  # loading and drawing need no key
    assert "solo" in to_mermaid(wf)
    assert dump_spec(wf)["clients"]["gpt"]["api_key_env"] == "MISSING_TEAM_KEY"
    result = wf.run_sync("hi")
    assert result.status == "failed"
    assert "MISSING_TEAM_KEY" in str(result.error)


def test_a_key_variable_that_is_set_builds_a_real_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "sk-test-0123456789abcdef")
    spec = {
        "kind": "sequential",
        "name": "solo",
        "clients": {"gpt": {"type": "openai", "model": "m", "api_key_env": "TEAM_KEY"}},
        "agents": {"solo": {"client": "gpt"}},
    }
    wf = load_spec(spec)
    node: Any = wf.executors["solo"]
    assert isinstance(node.inner.agent.chat_client, OpenAIChatClient)


def test_scripted_replies_with_tool_calls_round_trip() -> None:
    data = dump_spec(handoff())
    replies = data["clients"]["orders"]["replies"]
    assert replies[0] == {
        "text": "",
        "tool_calls": [{"id": "c_lookup", "name": "lookup", "arguments": {"number": "7"}}],
    }
    assert replies[1] == "Your order 7 has shipped."


def test_a_nested_workflow_and_a_retry_policy_are_written_inline() -> None:
    data = dump_spec(nested())
    assert data["executors"]["left"]["retry"] == {
        "max_attempts": 2,
        "initial_delay": 0.0,
        "backoff": 2.0,
        "max_delay": 30.0,
    }
    inner = data["executors"]["inner"]["workflow"]
    assert inner["kind"] == "graph"
    assert inner["start"] == "shout"
    loaded = load_spec(data, allow_imports=True)
    assert loaded.graph.policies["left"].retry == RetryPolicy(max_attempts=2, initial_delay=0.0)
    assert loaded.run_sync("abc").outputs == ["long:LABC"]
    # a mistake inside the nested spec is named by its full path
    inner["executors"]["shout"] = {"function": "missing"}
    with pytest.raises(SpecError) as caught:
        load_spec(data, allow_imports=True)
    assert caught.value.path == "executors.inner.workflow.executors.shout.function"


def test_dumping_a_loaded_spec_keeps_the_names_it_gave_functions() -> None:
    spec = {
        "kind": "graph",
        "name": "named",
        "executors": {"first": {"function": "make_loud"}, "second": {"function": "finish"}},
        "start": "first",
        "edges": [{"from": "first", "to": "second", "when": "worth_it"}],
    }
    functions = {"make_loud": shout, "finish": short_path, "worth_it": lambda text: True}
    data = dump_spec(load_spec(spec, functions=functions))
    assert data["executors"] == spec["executors"]
    assert data["edges"] == spec["edges"]
    again = load_spec(data, functions=functions)
    assert again.run_sync("hi").outputs == ["short:HI"]
