"""A ChatAgent on the real ``OpenAIChatClient``, in a workflow, against a local server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from builders import WorkflowBuilder
from executors import (
    AgentExecutor,
    AgentResponse,
    ApprovalResponse,
    ChatAgent,
    OpenAIChatClient,
    Usage,
    tool,
)
from workflow import RunStatus
from workflow.events import AgentDelta

from .openai_server import OpenAITestServer, Reply

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: First addend.
        b: Second addend.
    """
    return a + b


@pytest.fixture
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as srv:
        yield srv
    assert srv.errors == []


@pytest.fixture
async def client(server: OpenAITestServer) -> AsyncIterator[OpenAIChatClient]:
    async with OpenAIChatClient(
        "test-model", base_url=server.base_url, api_key="sk-test", timeout=5.0, max_retries=0
    ) as c:
        yield c


def messages_of(server: OpenAITestServer, index: int) -> list[dict[str, Any]]:
    body = server.completion_requests()[index].body
    assert isinstance(body, dict)
    return list(body["messages"])


async def test_streaming_agent_calls_a_tool_and_answers(
    server: OpenAITestServer, client: OpenAIChatClient
) -> None:
    server.enqueue(
        Reply(tool_calls=(("call_1", "add", '{"a": 2, "b": 3}'),)),
        Reply("The sum is 5"),
    )
    agent = ChatAgent("calc", "adds numbers", "Use the add tool.", client, tools=[add])
    result = await WorkflowBuilder(start=agent).build().run("What is 2 + 3?", run_id="e2e")
    assert result.status is RunStatus.COMPLETED, result.error
    (output,) = result.outputs
    assert isinstance(output, AgentResponse)
    assert output.text == "The sum is 5"
    assert output.usage == Usage(input_tokens=14, output_tokens=10)
    deltas = [e for e in result.events if isinstance(e, AgentDelta)]
    assert [d.text for d in deltas] == ["The ", "sum ", "is ", "5"]
    assert all(d.agent_name == "calc" and d.executor_id == "calc" for d in deltas)

    first, _second = server.completion_requests()
    assert first.body["stream"] is True
    assert first.body["tools"][0]["function"]["name"] == "add"
    assert messages_of(server, 0) == [
        {"role": "system", "content": "Use the add tool."},
        {"role": "user", "content": "What is 2 + 3?"},
    ]
    assistant, result_message = messages_of(server, 1)[-2:]
    assert assistant["tool_calls"][0]["id"] == "call_1"
    assert assistant["tool_calls"][0]["function"]["arguments"] == '{"a": 2, "b": 3}'
    assert result_message == {"role": "tool", "tool_call_id": "call_1", "content": "5"}


async def test_non_streaming_agent_feeds_bad_arguments_back(
    server: OpenAITestServer, client: OpenAIChatClient
) -> None:
    server.enqueue(
        Reply(tool_calls=(("call_1", "add", '{"a": "two", "b": 3}'),)),
        Reply(tool_calls=(("call_2", "add", '{"a": 2, "b": 3}'),)),
        Reply("5"),
    )
    agent = ChatAgent("calc", chat_client=client, tools=[add])
    node = AgentExecutor(agent, stream=False)
    result = await WorkflowBuilder(start=node).build().run("2+3")
    assert result.status is RunStatus.COMPLETED, result.error
    assert not any(isinstance(e, AgentDelta) for e in result.events)
    assert all(r.body.get("stream") is not True for r in server.completion_requests())
    error = messages_of(server, 1)[-1]
    assert error["role"] == "tool"
    assert error["tool_call_id"] == "call_1"
    assert error["content"].startswith("Error: invalid arguments for tool 'add'")
    assert result.outputs[0].text == "5"


async def test_truncated_stream_is_marked(
    server: OpenAITestServer, client: OpenAIChatClient
) -> None:
    server.enqueue(Reply("It all began", finish_reason="length"))
    agent = ChatAgent("storyteller", chat_client=client)
    result = await WorkflowBuilder(start=agent).build().run("tell a long story")
    (output,) = result.outputs
    assert output.truncated
    assert output.text == "It all began"


async def test_approval_round_trip_on_the_real_client(
    server: OpenAITestServer, client: OpenAIChatClient
) -> None:
    ran: list[str] = []

    @tool(approval_mode="always_require")
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return f"deleted {path}"

    server.enqueue(
        Reply(tool_calls=(("call_9", "delete_file", '{"path": "/tmp/x"}'),)),
        Reply("Deleted."),
    )
    agent = ChatAgent("janitor", chat_client=client, tools=[delete_file])
    wf = WorkflowBuilder(start=agent).build()
    paused = await wf.run("clean up", run_id="appr")
    (pending,) = paused.pending_requests
    assert pending.payload.arguments == '{"path": "/tmp/x"}'
    assert len(server.completion_requests()) == 1
    assert ran == []
    done = await wf.resume("appr", responses={pending.request_id: ApprovalResponse.approve()})
    assert done.status is RunStatus.COMPLETED, done.error
    assert ran == ["/tmp/x"]
    assert messages_of(server, 1)[-1]["content"] == "deleted /tmp/x"
