"""A2AAgent against a remote agent served by the a2a-sdk's own server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from builders import SequentialBuilder, WorkflowBuilder
from executors import (
    A2AAgent,
    A2AAgentExecutor,
    A2AError,
    A2AInputRequest,
    AgentExecutor,
    ChatMessage,
    FunctionAgent,
)
from workflow import ExecutorFailedError, RunStatus, SQLiteCheckpointStore, Workflow

pytestmark = pytest.mark.anyio

SERVER = Path(__file__).with_name("a2a_server.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def a2a_url() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), str(port)],
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
            pytest.fail(f"the A2A test server did not start (exit {proc.poll()})")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_the_card_names_the_agent_and_a_turn_returns_the_artifact(a2a_url: str) -> None:
    remote = A2AAgent(a2a_url)
    assert (remote.name, remote.description) == ("echoer", "Echoes what it is told")
    reply = await remote.run([ChatMessage("user", "hello")])
    assert reply.text == "echo: hello"
    assert reply.agent_name == "echoer"
    assert reply.messages[0].author == "echoer"


async def test_a_remote_agent_takes_part_in_a_team_and_a_graph(a2a_url: str) -> None:
    remote = A2AAgent(a2a_url, name="remote", description="echoes")
    greeter = FunctionAgent("greeter", "greets", lambda msgs: "hi there")
    result = await SequentialBuilder([greeter, remote]).build().run("start")
    conversation = result.outputs[-1]
    assert conversation[-1].author == "remote"
    assert conversation[-1].text == "echo: user: start\ngreeter: hi there"

    wf = WorkflowBuilder(start=AgentExecutor(remote), name="one").build()
    assert (await wf.run("direct")).outputs[0].text == "echo: direct"


async def test_input_required_is_the_reply_and_failures_name_the_agent(a2a_url: str) -> None:
    remote = A2AAgent(a2a_url)
    assert (await remote.run([ChatMessage("user", "ask me")])).text == "which one?"
    with pytest.raises(A2AError, match=r"'echoer' at 'http://127\.0\.0\.1:\d+' failed: it broke"):
        await remote.run([ChatMessage("user", "please fail")])
    wf = WorkflowBuilder(start=AgentExecutor(remote), name="failing").build()
    result = await wf.run("fail now")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert isinstance(result.error.__cause__, A2AError)


async def test_unreachable_agents_are_reported_with_their_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(A2AError, match="cannot read the agent card"):
        A2AAgent(url)
    offline = A2AAgent(url, name="offline", description="not running", timeout=10)
    with pytest.raises(A2AError, match=r"'offline' at .* could not be reached"):
        await offline.run([ChatMessage("user", "hi")])
    with pytest.raises(ValueError, match="http"):
        A2AAgent("ftp://x")


async def test_in_a_workflow_the_remote_question_pauses_the_run_and_the_answer_continues_the_task(
    a2a_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "runs.db"

    def graph() -> Workflow:
        store = SQLiteCheckpointStore(path)
        return WorkflowBuilder(start=A2AAgent(a2a_url), name="asks", checkpoint_store=store).build()

    first = await graph().run("ask me something")
    assert first.status is RunStatus.AWAITING_INPUT
    (request,) = first.pending_requests
    assert isinstance(request.payload, A2AInputRequest)
    assert request.payload.question == "which one?"
    assert request.payload.task_id
    assert request.executor_id == "echoer"
    done = await graph().resume(run_id=first.run_id, responses={request.request_id: "the red one"})
    assert done.status is RunStatus.COMPLETED
    assert done.outputs[0].text == "echo: the red one"
    assert isinstance(A2AAgent(a2a_url).as_executor(), A2AAgentExecutor)
