"""Semantic Kernel, offline: a native plugin's functions called by Ledgerflow agents through
the kernel (so its filters apply), and SK's own OpenAI connector, pointed at the local
OpenAI-compatible test server, as a Ledgerflow ChatClient.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, Any

import pytest
from openai import AsyncOpenAI
from semantic_kernel import Kernel
from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion
from semantic_kernel.filters import FilterTypes, FunctionInvocationContext
from semantic_kernel.functions import kernel_function

from builders import WorkflowBuilder
from executors import (
    AgentExecutor,
    ChatAgent,
    ChatClientError,
    ChatConfigError,
    ChatMessage,
    ChatResponse,
    ScriptedChatClient,
    SemanticKernelChatClient,
    ToolCall,
    sk_tools,
)
from tests.executors.openai_server import OpenAITestServer, Reply, Status
from workflow import RunStatus, events

pytestmark = pytest.mark.anyio


class Maths:
    """A native Semantic Kernel plugin."""

    @kernel_function(name="add", description="Adds two integers.")
    def add(
        self,
        a: Annotated[int, "the first number"],
        b: Annotated[int, "the second number"],
    ) -> int:
        return a + b

    @kernel_function(name="divide", description="Divides a by b.")
    def divide(self, a: float, b: float) -> float:
        return a / b


def calling(name: str, arguments: dict[str, Any], final: str = "done") -> ScriptedChatClient:
    call = ToolCall(id="c1", name=name, arguments=json.dumps(arguments))
    return ScriptedChatClient([ChatResponse("", tool_calls=(call,)), final])


def tool_text(messages: list[ChatMessage]) -> str:
    return next(m.text for m in messages if m.role == "tool")


# --------------------------------------------------------------------------- sk_tools


def test_tools_carry_semantic_kernels_own_schemas() -> None:
    tools = {t.name: t for t in sk_tools(Maths())}
    assert set(tools) == {"Maths-add", "Maths-divide"}
    add = tools["Maths-add"]
    assert add.description == "Adds two integers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert add.parameters["properties"]["a"]["description"] == "the first number"


async def test_an_agent_calls_a_plugin_function_through_the_kernel_and_its_filters() -> None:
    kernel = Kernel()
    kernel.add_plugin(Maths(), plugin_name="maths")
    seen: list[tuple[str, dict[str, Any]]] = []

    @kernel.filter(FilterTypes.FUNCTION_INVOCATION)
    async def record_and_double(
        context: FunctionInvocationContext,
        next: Callable[[FunctionInvocationContext], Awaitable[None]],
    ) -> None:
        seen.append((context.function.fully_qualified_name, dict(context.arguments or {})))
        await next(context)
        assert context.result is not None
        context.result.value = context.result.value * 2  # filters may rewrite results

    agent = ChatAgent(
        "calc", "", "", calling("maths-add", {"a": 2, "b": 3}), tools=sk_tools(kernel)
    )
    reply = await agent.run([ChatMessage("user", "2+3?")])
    assert tool_text(reply.messages) == "10"
    assert seen == [("maths-add", {"a": 2, "b": 3})]


async def test_function_errors_go_back_to_the_model_as_tool_errors() -> None:
    agent = ChatAgent(
        "calc", "", "", calling("Maths-divide", {"a": 1, "b": 0}), tools=sk_tools(Maths())
    )
    reply = await agent.run([ChatMessage("user", "1/0?")])
    text = tool_text(reply.messages)
    assert text.startswith("Error:")
    assert "division by zero" in text
    assert reply.text == "done"


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="sk_tools takes a Kernel"):
        sk_tools(Maths)
    with pytest.raises(ValueError, match="no kernel functions"):
        sk_tools(Kernel())
    with pytest.raises(TypeError, match="chat-completion service"):
        SemanticKernelChatClient("gpt-4o")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- chat client


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        yield srv


def sk_client(srv: OpenAITestServer) -> SemanticKernelChatClient:
    openai = AsyncOpenAI(base_url=srv.base_url, api_key="test-key", max_retries=0)
    return SemanticKernelChatClient(OpenAIChatCompletion(ai_model_id="m", async_client=openai))


async def test_sk_openai_connector_drives_a_chat_agent_with_sk_tools(
    server: OpenAITestServer,
) -> None:
    server.enqueue(
        Reply(None, tool_calls=(("call_1", "Maths-add", '{"a": 4, "b": 5}'),)),
        Reply("the sum is 9", prompt_tokens=11, completion_tokens=4),
    )
    agent = ChatAgent(
        "calc", "", "Be brief.", sk_client(server), tools=sk_tools(Maths()), max_tokens=64
    )
    reply = await agent.run([ChatMessage("user", "4+5?")])
    assert reply.text == "the sum is 9"
    assert tool_text(reply.messages) == "9"
    assert reply.usage.input_tokens == 7 + 11
    first, second = (r.body for r in server.requests)
    assert [t["function"]["name"] for t in first["tools"]] == ["Maths-add", "Maths-divide"]
    assert first["max_tokens"] == 64  # the agent's per-request limit reaches the service
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "Maths-add"
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["tool_call_id"] == "call_1"
    assert second["messages"][-1]["content"] == "9"


async def test_streaming_through_a_workflow_emits_agent_deltas(server: OpenAITestServer) -> None:
    server.enqueue(Reply("streamed through kernel"))
    agent = ChatAgent("writer", "", "", sk_client(server))
    wf = WorkflowBuilder(start=AgentExecutor(agent), name="sk").build()
    seen = [e async for e in wf.run_stream("write")]
    deltas = "".join(e.text for e in seen if isinstance(e, events.AgentDelta))
    assert deltas == "streamed through kernel"
    assert server.requests[0].body["stream"] is True
    finished = seen[-1]
    assert isinstance(finished, events.RunFinished)
    assert finished.status is RunStatus.COMPLETED


async def test_service_errors_become_chat_client_errors(server: OpenAITestServer) -> None:
    server.enqueue(Status(400))
    client = sk_client(server)
    with pytest.raises(ChatClientError, match="OpenAIChatCompletion"):
        await client.get_response([ChatMessage("user", "hi")])


async def test_a_service_without_tool_settings_refuses_tools() -> None:
    from semantic_kernel.connectors.ai.chat_completion_client_base import (
        ChatCompletionClientBase,
    )
    from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings

    class Plain(ChatCompletionClientBase):
        def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
            return PromptExecutionSettings

    client = SemanticKernelChatClient(Plain(ai_model_id="plain"))
    (tool,) = [t for t in sk_tools(Maths()) if t.name == "Maths-add"]
    with pytest.raises(ChatConfigError, match="takes no tools"):
        await client.get_response([ChatMessage("user", "hi")], tools=[tool.spec])


async def test_streamed_tool_calls_are_reassembled_and_run(server: OpenAITestServer) -> None:
    server.enqueue(
        Reply(None, tool_calls=(("call_7", "Maths-add", '{"a": 20, "b": 22}'),)),
        Reply("forty-two"),
    )
    agent = ChatAgent("calc", "", "", sk_client(server), tools=sk_tools(Maths()))
    wf = WorkflowBuilder(start=AgentExecutor(agent), name="sk-tools").build()
    result = await wf.run("20+22?")
    assert result.status is RunStatus.COMPLETED
    reply = result.outputs[0]
    assert reply.text == "forty-two"
    call = next(m for m in reply.messages if m.tool_calls).tool_calls[0]
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_7",
        "Maths-add",
        {"a": 20, "b": 22},
    )
    assert tool_text(reply.messages) == "42"
    assert all(r.body["stream"] is True for r in server.requests)
