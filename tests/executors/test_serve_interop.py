"""``ledgerflow serve --a2a --agui``: each workflow as an A2A agent (driven by the a2a-sdk's
own client) and as an AG-UI endpoint (events checked against ag-ui-protocol's models), from
the real command line on loopback.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, StreamResponse, TaskState
from ag_ui.core import Event, EventType

pytestmark = pytest.mark.anyio

WORKFLOWS = Path(__file__).with_name("mcp_workflows.py")
EVENT = pydantic.TypeAdapter(Event)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path, *targets: str) -> tuple[str, subprocess.Popen[bytes]]:
    port = _free_port()
    command = [sys.executable, "-m", "workflow.cli", "serve", *targets, "--port", str(port)]
    command += ["--store", f"sqlite:///{tmp_path / 'runs.db'}", "--a2a", "--agui"]
    proc = subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return f"http://127.0.0.1:{port}", proc
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"ledgerflow serve did not start (exit {proc.poll()})")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("serve")
    targets = [f"{WORKFLOWS}:{name}" for name in ("echo", "naming", "calculator")]
    url, proc = _start(tmp, *targets)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --------------------------------------------------------------------------- A2A


async def _send(url: str, text: str, **ids: str) -> list[StreamResponse]:
    async with httpx.AsyncClient(timeout=60) as http:
        client = await create_client(url, ClientConfig(streaming=True, httpx_client=http))
        message = Message(
            message_id=str(uuid.uuid4()), role=Role.ROLE_USER, parts=[Part(text=text)], **ids
        )
        try:
            return [e async for e in client.send_message(SendMessageRequest(message=message))]
        finally:
            await client.close()


def _states(events: list[StreamResponse]) -> list[int]:
    return [e.status_update.status.state for e in events if e.HasField("status_update")]


def _artifacts(events: list[StreamResponse]) -> list[str]:
    return [
        p.text
        for e in events
        if e.HasField("artifact_update")
        for p in e.artifact_update.artifact.parts
    ]


def test_each_workflow_has_an_agent_card(server: str) -> None:
    card = httpx.get(f"{server}/a2a/echo/.well-known/agent-card.json").json()
    assert card["name"] == "echo"
    assert card["capabilities"]["streaming"] is True
    assert card["supportedInterfaces"][0]["url"] == f"{server}/a2a/echo/"
    assert httpx.get(f"{server}/.well-known/agent-card.json").status_code == 404  # two workflows


async def test_an_a2a_task_runs_the_workflow_with_streaming(server: str) -> None:
    events = await _send(f"{server}/a2a/echo", "hello")
    assert _artifacts(events) == ["HELLO!"]
    states = _states(events)
    assert states[0] == TaskState.TASK_STATE_WORKING
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    notes = [
        p.text
        for e in events
        if e.HasField("status_update")
        for p in e.status_update.status.message.parts
    ]
    assert "shout finished" in notes


async def test_an_agents_tokens_stream_as_an_artifact_before_the_output(server: str) -> None:
    events = await _send(f"{server}/a2a/calculator", "add two and three")
    by_name: dict[str, list[str]] = {}
    for e in events:
        if e.HasField("artifact_update"):
            artifact = e.artifact_update.artifact
            by_name.setdefault(artifact.name, []).extend(p.text for p in artifact.parts)
    assert "".join(by_name["stream"]) == "the sum is 5"
    assert by_name["output"] == ["the sum is 5"]
    assert _states(events)[-1] == TaskState.TASK_STATE_COMPLETED


async def test_a_human_request_is_input_required_and_the_next_message_answers(
    server: str,
) -> None:
    first = await _send(f"{server}/a2a/naming", "dog")
    assert _states(first)[-1] == TaskState.TASK_STATE_INPUT_REQUIRED
    parts = [e for e in first if e.HasField("status_update")][-1].status_update.status.message.parts
    assert "what should the dog be called?" in parts[0].text
    schema = parts[1].data.struct_value.fields["answer_schema"].struct_value.fields
    assert schema["type"].string_value == "string"
    task = next(e.task for e in first if e.HasField("task"))
    second = await _send(f"{server}/a2a/naming", "Rex", task_id=task.id, context_id=task.context_id)
    assert _artifacts(second) == ["named: Rex"]
    assert _states(second)[-1] == TaskState.TASK_STATE_COMPLETED


def test_a_single_workflow_also_has_its_card_at_the_root(tmp_path: Path) -> None:
    url, proc = _start(tmp_path, f"{WORKFLOWS}:echo")
    try:
        card = httpx.get(f"{url}/.well-known/agent-card.json").json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert card["name"] == "echo"
    assert card["supportedInterfaces"][0]["url"] == f"{url}/a2a/echo/"


# --------------------------------------------------------------------------- AG-UI


def _agui(server: str, name: str, body: dict[str, Any]) -> list[Any]:
    with httpx.stream("POST", f"{server}/agui/{name}", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    return [EVENT.validate_python(json.loads(line.removeprefix("data: "))) for line in lines]


def _input(thread: str, **extra: Any) -> dict[str, Any]:
    body = {
        "threadId": thread,
        "runId": str(uuid.uuid4()),
        "state": {},
        "messages": [{"id": "m1", "role": "user", "content": "cat"}],
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    body.update(extra)
    return body


def test_agui_streams_steps_state_and_a_successful_finish(server: str) -> None:
    events = _agui(server, "echo", _input("t-echo"))
    kinds = [e.type for e in events]
    assert kinds[0] == EventType.RUN_STARTED
    assert kinds[-1] == EventType.RUN_FINISHED
    assert [e.step_name for e in events if e.type == EventType.STEP_STARTED] == ["shout", "exclaim"]
    snapshot = next(e for e in events if e.type == EventType.STATE_SNAPSHOT)
    assert snapshot.snapshot == {"outputs": ["CAT!"]}
    assert events[-1].outcome.type == "success"
    assert events[-1].result == ["CAT!"]
    again = _agui(server, "echo", _input("t-echo"))  # a thread holds any number of runs
    assert again[-1].result == ["CAT!"]
    lost = _agui(
        server, "echo", _input("t-new", resume=[{"interruptId": "x", "status": "resolved"}])
    )
    assert lost[-1].type == EventType.RUN_ERROR
    assert "no run waits for answers on thread 't-new'" in lost[-1].message


def test_agui_interrupts_for_a_person_and_resumes_on_the_same_thread(server: str) -> None:
    first = _agui(server, "naming", _input("t-naming"))
    finished = first[-1]
    assert finished.type == EventType.RUN_FINISHED
    assert finished.outcome.type == "interrupt"
    (interrupt,) = finished.outcome.interrupts
    assert "what should the cat be called?" in interrupt.message
    assert interrupt.response_schema == {"type": "string"}
    resume = [{"interruptId": interrupt.id, "status": "resolved", "payload": "Tom"}]
    second = _agui(server, "naming", _input("t-naming", messages=[], resume=resume))
    assert second[-1].outcome.type == "success"
    assert second[-1].result == ["named: Tom"]


def test_agui_maps_an_agents_tokens_and_tool_calls(server: str) -> None:
    events = _agui(server, "calculator", _input("t-calc"))
    kinds = [e.type for e in events]
    start = kinds.index(EventType.TOOL_CALL_START)
    assert kinds[start : start + 4] == [
        EventType.TOOL_CALL_START,
        EventType.TOOL_CALL_ARGS,
        EventType.TOOL_CALL_END,
        EventType.TOOL_CALL_RESULT,
    ]
    assert events[start].tool_call_name == "add"
    assert events[start + 3].content == "5"
    text = "".join(e.delta for e in events if e.type == EventType.TEXT_MESSAGE_CONTENT)
    assert text == "the sum is 5"
    opened = next(e for e in events if e.type == EventType.TEXT_MESSAGE_START)
    assert opened.name == "calc"
    assert kinds.index(EventType.TEXT_MESSAGE_END) < kinds.index(EventType.RUN_FINISHED)


def test_agui_rejects_bad_input_and_unknown_workflows(server: str) -> None:
    assert httpx.post(f"{server}/agui/nope", json=_input("x")).status_code == 404
    bad = httpx.post(f"{server}/agui/echo", json={"messages": "no"})
    assert bad.status_code == 422
    assert bad.json()["error"]["type"] == "invalid_input"


STALLING = """
import anyio

from builders import WorkflowBuilder
from workflow import executor


@executor(id="stall")
async def stall(text: str) -> str:
    await anyio.sleep_forever()
    return text


stalling = WorkflowBuilder(start=stall, name="stalling").build()
"""


def test_agui_client_that_goes_away_cancels_its_run(tmp_path: Path) -> None:
    target = tmp_path / "stalling.py"
    target.write_text(STALLING, encoding="utf-8")
    url, proc = _start(tmp_path, f"{target}:stalling")
    try:
        body = _input("t-stall")
        with httpx.stream("POST", f"{url}/agui/stalling", json=body, timeout=60) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if '"STEP_STARTED"' in line:
                    break  # the run is inside its executor: leave without reading on
        # the connection is closed: the response's task is cancelled, and its run with it
        run = f"/api/runs/agui-{body['runId']}"
        deadline = time.monotonic() + 60
        status = None
        while status != "cancelled" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = httpx.get(url + run, timeout=60).json().get("status")
        assert status == "cancelled"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
