"""A Ledgerflow agent, and a workflow through as_agent, used through Semantic Kernel's own
agent API (get_response, invoke, invoke_stream) with SK's ChatHistoryAgentThread."""

from __future__ import annotations

import pytest
from semantic_kernel.agents import Agent, ChatHistoryAgentThread

from builders import SequentialBuilder
from executors import (
    ChatAgent,
    ChatMessage,
    FunctionAgent,
    ScriptedChatClient,
    SemanticKernelAgent,
)

pytestmark = pytest.mark.anyio


def counter(messages: list[ChatMessage]) -> str:
    return f"I have seen {len(messages)} messages; the last said {messages[-1].text!r}"


async def test_a_ledgerflow_agent_answers_through_sks_agent_api_and_thread() -> None:
    sk_agent = SemanticKernelAgent(FunctionAgent("counter", "counts messages", counter))
    assert isinstance(sk_agent, Agent)
    assert (sk_agent.name, sk_agent.description) == ("counter", "counts messages")
    first = await sk_agent.get_response("hello")
    assert str(first.message.content) == "I have seen 1 messages; the last said 'hello'"
    assert isinstance(first.thread, ChatHistoryAgentThread)
    second = await sk_agent.get_response("again", thread=first.thread)
    assert str(second.message.content) == "I have seen 3 messages; the last said 'again'"
    items = [i async for i in sk_agent.invoke("third", thread=second.thread)]
    assert len(items) == 1
    assert "5 messages" in str(items[0].message.content)
    chunks = [i async for i in sk_agent.invoke_stream("fourth", thread=second.thread)]
    assert "7 messages" in str(chunks[0].message.content)


async def test_a_workflow_as_agent_is_an_sk_agent_too() -> None:
    writer = ChatAgent("writer", "", "", ScriptedChatClient(["a poem about ledgers"]))
    team = SequentialBuilder([writer], name="poetry").build().as_agent("poet", "writes poems")
    reply = await SemanticKernelAgent(team).get_response("write")
    assert str(reply.message.content) == "a poem about ledgers"
    assert reply.message.name == "poet"


def test_a_non_agent_is_refused() -> None:
    with pytest.raises(TypeError, match="not a Ledgerflow agent"):
        SemanticKernelAgent(object())


async def test_ledgerflow_agents_take_part_in_sks_own_sequential_orchestration() -> None:
    from semantic_kernel.agents import SequentialOrchestration
    from semantic_kernel.agents.runtime import InProcessRuntime

    upper = SemanticKernelAgent(
        FunctionAgent("upper", "uppercases", lambda msgs: msgs[-1].text.upper())
    )
    exclaim = SemanticKernelAgent(
        FunctionAgent("exclaim", "exclaims", lambda msgs: msgs[-1].text + "!")
    )
    runtime = InProcessRuntime()
    runtime.start()
    try:
        result = await SequentialOrchestration(members=[upper, exclaim]).invoke(
            task="hello there", runtime=runtime
        )
        final = await result.get(timeout=60)
    finally:
        await runtime.stop_when_idle()
    assert str(final.content) == "HELLO THERE!"
    assert final.name == "exclaim"
