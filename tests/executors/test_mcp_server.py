"""``ledgerflow mcp``: workflows as MCP tools, driven by the mcp SDK's own client, over stdio
(the client starts the CLI) and over streamable HTTP on loopback.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp import types as mt
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.anyio

WORKFLOWS = Path(__file__).with_name("mcp_workflows.py")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "workflow.cli", "mcp", *args]


@asynccontextmanager
async def stdio_session(
    tmp_path: Path, *targets: str, **session_options: Any
) -> AsyncIterator[ClientSession]:
    command = cli(*targets, "--store", f"sqlite:///{tmp_path / 'runs.db'}")
    # The SDK gives the server a minimal environment; keep PYTHONPATH so that the server runs
    # the same code as the tests when they run against a checkout.
    env = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else None
    params = StdioServerParameters(command=command[0], args=command[1:], cwd=str(tmp_path), env=env)
    with anyio.fail_after(60):
        async with (
            stdio_client(params) as (read, write),
            ClientSession(read, write, **session_options) as session,
        ):
            await session.initialize()
            yield session


def text_of(result: mt.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mt.TextContent))


async def test_each_workflow_is_a_tool_with_its_input_schema_and_progress(
    tmp_path: Path,
) -> None:
    targets = [f"{WORKFLOWS}:echo", f"{WORKFLOWS}:pricing"]
    async with stdio_session(tmp_path, *targets) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert set(tools) == {"echo", "pricing", "respond_to_run"}
        assert tools["echo"].inputSchema["required"] == ["input"]
        assert tools["pricing"].inputSchema["required"] == ["item", "quantity"]

        progress: list[tuple[float, str | None]] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append((value, message))

        result = await session.call_tool("echo", {"input": "hi"}, progress_callback=on_progress)
        assert not result.isError
        assert text_of(result) == "HI!"
        assert [v for v, _ in progress] == [1, 2]
        assert progress[0][1] is not None
        assert "shout" in progress[0][1]

        priced = await session.call_tool("pricing", {"item": "pen", "quantity": 2})
        assert text_of(priced) == "2 x pen = 6"
        bad = await session.call_tool("pricing", {"item": "pen"})
        assert bad.isError
        assert "quantity" in text_of(bad)


async def test_without_elicitation_a_waiting_run_answers_how_to_respond(tmp_path: Path) -> None:
    async with stdio_session(tmp_path, f"{WORKFLOWS}:naming") as session:
        first = await session.call_tool("naming", {"input": "cat"})
        assert not first.isError
        waiting = json.loads(text_of(first))
        assert waiting["status"] == "awaiting_input"
        (request,) = waiting["pending_requests"]
        assert request["question"] == {"text": "what should the cat be called?"}
        assert request["answer_schema"] == {"type": "string"}
        assert "respond_to_run" in waiting["how_to_respond"]
        done = await session.call_tool(
            "respond_to_run",
            {"run_id": waiting["run_id"], "request_id": request["request_id"], "answer": "Tom"},
        )
        assert text_of(done) == "named: Tom"
        other = json.loads(text_of(await session.call_tool("naming", {"input": "dog"})))
        unknown = await session.call_tool(
            "respond_to_run", {"run_id": "nope", "request_id": "x", "answer": 1}
        )
        assert unknown.isError
        assert "'nope'" in text_of(unknown)
        assert other["run_id"] not in text_of(unknown)  # another client's run stays private


async def test_the_runs_waiting_for_an_answer_are_capped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mcp.shared.memory import create_connected_server_and_client_session

    from executors import _mcp_server
    from tests.executors.mcp_workflows import naming

    monkeypatch.setattr(_mcp_server, "MAX_WAITING_RUNS", 2)
    served = _mcp_server.WorkflowMCPServer([naming])
    with anyio.fail_after(60):
        async with create_connected_server_and_client_session(served.server) as session:
            waiting = [
                json.loads(text_of(await session.call_tool("naming", {"input": thing})))
                for thing in ("cat", "dog", "owl")
            ]
            assert list(served._runs) == [w["run_id"] for w in waiting[1:]]

            async def answer(w: dict[str, Any]) -> mt.CallToolResult:
                request_id = w["pending_requests"][0]["request_id"]
                return await session.call_tool(
                    "respond_to_run",
                    {"run_id": w["run_id"], "request_id": request_id, "answer": "X"},
                )

            evicted = await answer(waiting[0])  # no store to find it in again
            assert evicted.isError
            assert repr(waiting[0]["run_id"]) in text_of(evicted)
            assert text_of(await answer(waiting[2])) == "named: X"
            assert list(served._runs) == [waiting[1]["run_id"]]


async def test_a_waiting_run_can_be_answered_after_the_server_restarts(tmp_path: Path) -> None:
    async with stdio_session(tmp_path, f"{WORKFLOWS}:naming") as session:
        waiting = json.loads(text_of(await session.call_tool("naming", {"input": "owl"})))
    (request,) = waiting["pending_requests"]
    async with stdio_session(tmp_path, f"{WORKFLOWS}:naming") as session:  # a new process
        done = await session.call_tool(
            "respond_to_run",
            {"run_id": waiting["run_id"], "request_id": request["request_id"], "answer": "Hoot"},
        )
    assert text_of(done) == "named: Hoot"


async def test_with_elicitation_the_client_is_asked_and_the_run_finishes(tmp_path: Path) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []

    async def answer(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        assert isinstance(params, mt.ElicitRequestFormParams)
        asked.append((params.message, params.requestedSchema))
        return mt.ElicitResult(action="accept", content={"answer": "Felix"})

    async with stdio_session(
        tmp_path, f"{WORKFLOWS}:naming", elicitation_callback=answer
    ) as session:
        result = await session.call_tool("naming", {"input": "cat"})
    assert text_of(result) == "named: Felix"
    ((message, schema),) = asked
    assert "what should the cat be called?" in message
    assert schema["properties"]["answer"]["type"] == "string"


async def test_a_declined_elicitation_answers_with_the_pending_request(tmp_path: Path) -> None:
    async def decline(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        return mt.ElicitResult(action="decline")

    async with stdio_session(
        tmp_path, f"{WORKFLOWS}:naming", elicitation_callback=decline
    ) as session:
        result = await session.call_tool("naming", {"input": "cat"})
    waiting = json.loads(text_of(result))
    assert waiting["status"] == "awaiting_input"
    assert waiting["pending_requests"][0]["question"] == {"text": "what should the cat be called?"}


async def test_a_failed_run_is_a_tool_error_naming_the_run(tmp_path: Path) -> None:
    async with stdio_session(tmp_path, f"{WORKFLOWS}:broken") as session:
        result = await session.call_tool("broken", {"input": "x"})
    assert result.isError
    assert "of 'broken' ended failed" in text_of(result)
    assert "cannot handle 'x'" in text_of(result)


async def test_a_failed_run_does_not_show_a_key_in_its_error(tmp_path: Path) -> None:
    async with stdio_session(tmp_path, f"{WORKFLOWS}:broken") as session:
        result = await session.call_tool("broken", {"input": "api_key=sk-abcdef123456"})
    assert result.isError
    assert "of 'broken' ended failed" in text_of(result)
    assert "sk-abcdef123456" not in text_of(result)


def test_a_public_http_host_is_refused() -> None:
    out = subprocess.run(
        cli(f"{WORKFLOWS}:echo", "--http", "1", "--host", "0.0.0.0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "loopback only" in out.stderr


# --------------------------------------------------------------------------- streamable HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def http_url(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [*cli(f"{WORKFLOWS}:echo", "--http", str(port)), "--store", "memory://"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        else:
            pytest.fail(f"ledgerflow mcp --http did not start (exit {proc.poll()})")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_streamable_http_serves_the_same_tools(http_url: str) -> None:
    with anyio.fail_after(60):
        async with (
            streamable_http_client(http_url) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            names = [t.name for t in (await session.list_tools()).tools]
            assert names == ["echo", "respond_to_run"]
            result = await session.call_tool("echo", {"input": "over http"})
    assert text_of(result) == "OVER HTTP!"
