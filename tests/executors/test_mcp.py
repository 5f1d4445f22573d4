"""MCPTools against real MCP SDK servers (FastMCP): a stdio child process and a
streamable-HTTP server on loopback.

Tools keep the server's JSON Schemas, tool errors go back to the model, approval applies
as for any tool, the child gets no secrets from our environment, and a server that dies
fails the run with an error naming it, quickly, never a hang.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from builders import WorkflowBuilder
from executors import (
    AgentExecutor,
    ApprovalRequest,
    ApprovalResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    MCPServerError,
    MCPTools,
    ScriptedChatClient,
    ToolCall,
)
from workflow import ExecutorFailedError, RunStatus

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).with_name("mcp_server.py")
STDIO = [sys.executable, str(SERVER), "stdio"]


def calls(*pairs: tuple[str, dict[str, Any]], final: str = "done") -> ScriptedChatClient:
    replies: list[Any] = [
        ChatResponse("", tool_calls=(ToolCall(id=f"c{i}", name=n, arguments=json.dumps(a)),))
        for i, (n, a) in enumerate(pairs)
    ]
    return ScriptedChatClient([*replies, final])


def tool_texts(messages: list[ChatMessage]) -> list[str]:
    return [m.text for m in messages if m.role == "tool"]


# --------------------------------------------------------------------------- stdio


async def test_stdio_tools_keep_their_schemas_and_results_and_errors_reach_the_model() -> None:
    async with MCPTools(STDIO) as tools:
        by_name = {t.name: t for t in tools}
        assert set(by_name) == {"add", "fail", "die", "env_var", "tell_time"}  # dot -> _
        assert by_name["add"].parameters["required"] == ["a", "b"]
        assert by_name["add"].parameters["properties"]["a"]["type"] == "integer"
        assert by_name["add"].description == "Adds two integers."
        client = calls(
            ("add", {"a": 2, "b": 3}),
            ("fail", {"message": "boom"}),
            ("add", {"a": "x"}),
            ("tell_time", {}),
        )
        agent = ChatAgent("calc", "", "", client, tools=tools)
        reply = await agent.run([ChatMessage("user", "go")])
    texts = tool_texts(reply.messages)
    assert texts[0] == "5"
    assert texts[1].startswith("Error:")
    assert "boom" in texts[1]
    assert texts[2].startswith("Error:")
    assert "validation error" in texts[2]
    assert texts[3] == "12:00"
    assert reply.text == "done"


async def test_prefix_keeps_two_servers_tools_apart_and_the_original_names_are_called() -> None:
    async with MCPTools(STDIO, prefix="one_") as one, MCPTools(STDIO, prefix="two_") as two:
        tools = [*one, *two]
        names = {t.name for t in tools}
        assert {"one_add", "two_add", "one_tell_time", "two_tell_time"} <= names
        agent = ChatAgent("calc", "", "", calls(("two_add", {"a": 1, "b": 2})), tools=tools)
        reply = await agent.run([ChatMessage("user", "go")])
    assert tool_texts(reply.messages) == ["3"]


async def test_the_server_gets_only_the_env_given_never_our_secrets() -> None:
    os.environ["LEDGERFLOW_TEST_SECRET"] = "s3cret"
    try:
        async with MCPTools(STDIO, env={"GREETING": "hi"}) as tools:
            env_var = next(t for t in tools if t.name == "env_var")
            assert (await env_var.invoke('{"name": "GREETING"}')).text == "hi"
            assert (await env_var.invoke('{"name": "LEDGERFLOW_TEST_SECRET"}')).text == "<unset>"
    finally:
        del os.environ["LEDGERFLOW_TEST_SECRET"]


async def test_approval_mode_pauses_the_run_until_a_person_decides() -> None:
    async with MCPTools(STDIO, approval_mode={"add": "always_require"}) as tools:
        agent = ChatAgent("calc", "", "", calls(("add", {"a": 1, "b": 1})), tools=tools)
        wf = WorkflowBuilder(start=AgentExecutor(agent), name="approve").build()
        first = await wf.run("add one and one")
        assert first.status is RunStatus.AWAITING_INPUT
        (request,) = first.pending_requests
        assert isinstance(request.payload, ApprovalRequest)
        assert request.payload.tool_name == "add"
        done = await wf.resume(
            run_id=first.run_id, responses={request.request_id: ApprovalResponse(approved=True)}
        )
    assert done.status is RunStatus.COMPLETED
    assert tool_texts(done.outputs[0].messages) == ["2"]


async def test_a_server_that_dies_mid_run_fails_the_run_naming_it() -> None:
    async with MCPTools(STDIO) as tools:
        agent = ChatAgent("calc", "", "", calls(("die", {})), tools=tools)
        wf = WorkflowBuilder(start=AgentExecutor(agent), name="dying").build()
        with anyio.fail_after(30):
            result = await wf.run("die")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    cause = result.error.__cause__
    assert isinstance(cause, MCPServerError)
    assert "mcp_server.py stdio" in str(cause)
    assert cause.server.endswith("mcp_server.py stdio")


async def test_bad_configuration_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        MCPTools()
    with pytest.raises(ValueError, match="exactly one of"):
        MCPTools(["x"], url="http://127.0.0.1:1/mcp")
    with pytest.raises(ValueError, match="list of arguments"):
        MCPTools("python server.py")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="not open"):
        list(MCPTools(STDIO))
    with anyio.fail_after(30), pytest.raises(MCPServerError, match="no-such-mcp-server"):
        async with MCPTools(["no-such-mcp-server-binary"]):
            pass


# --------------------------------------------------------------------------- streamable HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the streamable-HTTP MCP server did not start within 30 s")
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        proc.kill()
        proc.wait()


async def test_streamable_http_tools_work_and_a_killed_server_is_reported(
    http_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, proc = http_server
    async with MCPTools(url=url, timeout=3) as tools:
        add = next(t for t in tools if t.name == "add")
        assert (await add.invoke('{"a": 20, "b": 22}')).text == "42"
        fail = next(t for t in tools if t.name == "fail")
        assert (await fail.invoke('{"message": "nope"}')).is_error
        proc.kill()
        proc.wait()
        with anyio.fail_after(30), pytest.raises(MCPServerError, match=r"127\.0\.0\.1"):
            await add.invoke('{"a": 1, "b": 2}')


async def test_an_unreachable_url_is_reported_naming_it() -> None:
    url = f"http://127.0.0.1:{_free_port()}/mcp"
    with anyio.fail_after(30), pytest.raises(MCPServerError, match="could not be started"):
        async with MCPTools(url=url, timeout=5):
            pass


async def test_a_handler_on_another_threads_loop_is_carried_over_to_the_session() -> None:
    """The session lives on the loop that opened it; other loops' calls hop there and back."""
    from workflow.authoring import ThreadBackend

    def elsewhere(tools: MCPTools, a: int) -> str:
        async def call() -> str:
            return await tools.call("add", {"a": a, "b": 1})

        return anyio.run(call)  # a loop of its own, on a thread of its own

    async with MCPTools(STDIO) as tools:
        with anyio.fail_after(30):
            answers = []
            async with anyio.create_task_group() as tg:

                async def one(a: int) -> None:
                    answers.append(await anyio.to_thread.run_sync(elsewhere, tools, a))

                for a in range(4):
                    tg.start_soon(one, a)
            assert sorted(answers) == ["1", "2", "3", "4"]
            agent = ChatAgent("calc", "", "", calls(("add", {"a": 20, "b": 22})), tools=tools)
            wf = WorkflowBuilder(start=AgentExecutor(agent), name="far").build()
            result = await wf.run("go", backend=ThreadBackend())
    assert result.status is RunStatus.COMPLETED, result.error
    assert tool_texts(result.outputs[0].messages) == ["42"]
    with pytest.raises(MCPServerError, match="was closed before tool 'add' was called"):
        await anyio.to_thread.run_sync(elsewhere, tools, 1)
