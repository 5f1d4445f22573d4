"""Workflows served as AG-UI agents (``ledgerflow serve --agui``): ``POST /agui/{name}``.

The body is AG-UI's ``RunAgentInput``; the answer is a server-sent event stream of AG-UI
events (``ag-ui-protocol``'s own models and encoder), mapped from the run's events:

* ``RUN_STARTED`` first; ``RUN_FINISHED`` (outcome ``success``, ``result`` the outputs) or
  ``RUN_ERROR`` last;
* each executor invocation is a step (``STEP_STARTED`` / ``STEP_FINISHED``);
* an agent's streamed tokens are a text message (``TEXT_MESSAGE_START`` / ``CONTENT`` /
  ``END``, ``name`` the agent); an agent that did not stream sends its reply as one; its tool
  calls and their results are ``TOOL_CALL_START`` / ``ARGS`` / ``END`` / ``RESULT``;
* each output updates the state: ``STATE_SNAPSHOT`` ``{"outputs": [...]}``;
* a run that stops for a person ends with ``RUN_FINISHED`` whose outcome is ``interrupt``,
  one ``Interrupt`` per pending request (``id`` the request id, ``response_schema`` the
  answer's JSON Schema); the client answers with a new ``RunAgentInput`` on the same
  ``thread_id`` whose ``resume`` entries carry the answers (``payload``).

Each AG-UI run starts a workflow run (run id ``agui-{run_id}``, kept in the service's store);
a thread remembers its run waiting for answers (in memory), which ``resume`` continues.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pydantic
from ag_ui.core import (
    BaseEvent,
    Interrupt,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunFinishedSuccessOutcome,
    RunStartedEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Send

from workflow import PendingRequest, RunStatus, Workflow, events
from workflow.authoring import redact

from ._agent_executor import AgentResponded
from ._chat import ChatMessage
from ._workflow_agent import child_input

__all__ = ("agui_routes", "run_events")


def _jsonable(value: Any) -> Any:
    return json.loads(pydantic.RootModel[Any](value).model_dump_json())


def _schema(tp: Any) -> dict[str, Any]:
    try:
        return dict(pydantic.TypeAdapter(tp).json_schema())
    except Exception:
        return {}


def _messages(data: RunAgentInput) -> list[ChatMessage]:
    out = []
    for message in data.messages:
        role = getattr(message, "role", "user")
        content = getattr(message, "content", "")
        if role in ("user", "assistant", "system") and isinstance(content, str):
            out.append(ChatMessage(role, content))  # type: ignore[arg-type]
    return out


def _interrupt(request: PendingRequest) -> Interrupt:
    payload = request.payload
    text = getattr(payload, "text", None) or getattr(payload, "prompt", None)
    if not isinstance(text, str):
        text = json.dumps(_jsonable(payload))
    kind = type(getattr(payload, "payload", payload)).__name__
    return Interrupt(
        id=request.request_id,
        reason="tool_approval" if kind == "ApprovalRequest" else "input_required",
        message=f"{request.executor_id} asks: {text}",
        response_schema=_schema(request.response_type),
        metadata={"executor_id": request.executor_id, "payload": _jsonable(payload)},
    )


@contextlib.asynccontextmanager
async def run_events(
    workflow: Workflow, data: RunAgentInput, paused: dict[str, str] | None = None
) -> AsyncIterator[AsyncIterator[BaseEvent]]:
    """The AG-UI events of one AG-UI run of ``workflow`` (see the module docs).

    ``async with run_events(wf, data) as agui: async for event in agui: ...``: the block
    owns the workflow run (a child of the calling task, as with ``async with
    wf.run_stream(...)``); leaving it early cancels the run and waits until it has recorded
    that. ``paused`` maps a thread to its workflow run waiting for answers (kept by the
    route). A bad input or resume ends the events with ``RUN_ERROR``, never an exception.
    """
    waiting = paused if paused is not None else {}
    refused: Exception | None = None
    try:
        if data.resume:
            run_id = waiting.get(data.thread_id)
            if run_id is None:
                raise LookupError(
                    f"no run waits for answers on thread {data.thread_id!r}; send resume "
                    "entries only after a RUN_FINISHED with an interrupt outcome"
                )
            answers = {e.interrupt_id: e.payload for e in data.resume if e.status == "resolved"}
            stream = workflow.resume_stream(run_id=run_id, responses=answers)
        else:
            value = child_input(workflow, _messages(data))
            stream = workflow.run_stream(value, run_id=f"agui-{data.run_id}")
    except Exception as exc:  # sent as the RUN_ERROR that follows RUN_STARTED
        refused = exc
    if refused is not None:
        yield _translated(None, data, waiting, refused)
        return
    async with stream as running:
        yield _translated(running, data, waiting, None)


async def _translated(
    running: AsyncIterator[events.WorkflowEvent] | None,
    data: RunAgentInput,
    waiting: dict[str, str],
    refused: Exception | None,
) -> AsyncIterator[BaseEvent]:
    """``RUN_STARTED``, the run's events mapped, and ``RUN_ERROR`` for what it raised."""
    yield RunStartedEvent(thread_id=data.thread_id, run_id=data.run_id)
    try:
        if refused is not None:
            raise refused
        if running is not None:
            async for event in _mapped(running, data, waiting):
                yield event
    except Exception as exc:  # a bad input or resume: the stream ends with RUN_ERROR
        yield RunErrorEvent(message=f"{type(exc).__name__}: {exc}", code=type(exc).__name__)


async def _mapped(
    stream: AsyncIterator[events.WorkflowEvent], data: RunAgentInput, waiting: dict[str, str]
) -> AsyncIterator[BaseEvent]:
    outputs: list[Any] = []
    open_text: dict[str, str] = {}  # executor id -> message id of its streamed text
    async for event in stream:
        if isinstance(event, events.ExecutorInvoked):
            yield StepStartedEvent(step_name=event.executor_id)
        elif isinstance(event, events.AgentDelta):
            message_id = open_text.get(event.executor_id)
            if message_id is None:
                message_id = open_text[event.executor_id] = str(uuid.uuid4())
                yield TextMessageStartEvent(
                    message_id=message_id, role="assistant", name=event.agent_name
                )
            yield TextMessageContentEvent(message_id=message_id, delta=event.text)
        elif isinstance(event, AgentResponded):
            streamed = open_text.pop(event.executor_id, None)
            for item in _agent_turn(event, streamed):
                yield item
        elif isinstance(event, events.ExecutorCompleted):
            yield StepFinishedEvent(step_name=event.executor_id)
        elif isinstance(event, events.OutputEmitted):
            outputs.append(_jsonable(event.data))
            yield StateSnapshotEvent(snapshot={"outputs": list(outputs)})
        elif isinstance(event, events.RunFinished):
            if event.status is RunStatus.AWAITING_INPUT:
                waiting[data.thread_id] = event.run_id
            else:
                waiting.pop(data.thread_id, None)
            if event.status is RunStatus.COMPLETED:
                yield RunFinishedEvent(
                    thread_id=data.thread_id,
                    run_id=data.run_id,
                    result=outputs,
                    outcome=RunFinishedSuccessOutcome(),
                )
            elif event.status is RunStatus.AWAITING_INPUT:
                interrupts = [_interrupt(r) for r in event.pending_requests]
                yield RunFinishedEvent(
                    thread_id=data.thread_id,
                    run_id=data.run_id,
                    outcome=RunFinishedInterruptOutcome(interrupts=interrupts),
                )
            else:
                why = redact(event.error) if event.error else None
                yield RunErrorEvent(
                    message=why or f"the run ended {event.status.value}",
                    code=event.status.value,
                )


def _agent_turn(event: AgentResponded, streamed: str | None) -> list[BaseEvent]:
    """A finished agent turn: its tool calls and results, and its text unless streamed."""
    out: list[BaseEvent] = []
    if streamed is not None:
        out.append(TextMessageEndEvent(message_id=streamed))
    for message in event.response.messages:
        for call in message.tool_calls:
            out.append(ToolCallStartEvent(tool_call_id=call.id, tool_call_name=call.name))
            out.append(ToolCallArgsEvent(tool_call_id=call.id, delta=call.arguments))
            out.append(ToolCallEndEvent(tool_call_id=call.id))
        if message.role == "tool" and message.tool_call_id:
            out.append(
                ToolCallResultEvent(
                    message_id=str(uuid.uuid4()),
                    tool_call_id=message.tool_call_id,
                    content=message.text,
                    role="tool",
                )
            )
    if streamed is None and event.response.text:
        message_id = str(uuid.uuid4())
        out.append(
            TextMessageStartEvent(message_id=message_id, role="assistant", name=event.agent_name)
        )
        out.append(TextMessageContentEvent(message_id=message_id, delta=event.response.text))
        out.append(TextMessageEndEvent(message_id=message_id))
    return out


def agui_routes() -> Callable[[Mapping[str, Workflow]], Sequence[BaseRoute]]:
    """A route factory for the service: ``POST /agui/{name}`` for each workflow."""

    def routes(workflows: Mapping[str, Workflow]) -> Sequence[BaseRoute]:
        paused: dict[str, str] = {}  # thread id -> its run waiting for answers

        async def endpoint(request: Request) -> Response:
            name = request.path_params["name"]
            workflow = workflows.get(name)
            if workflow is None:
                return _error(404, "not_found", f"no workflow {name!r}; known: {sorted(workflows)}")
            try:
                data = RunAgentInput.model_validate_json(await request.body())
            except pydantic.ValidationError as exc:
                return _error(422, "invalid_input", f"not an AG-UI RunAgentInput: {exc}")
            encoder = EventEncoder(accept=request.headers.get("accept") or "text/event-stream")
            return _RunResponse(run_events(workflow, data, paused), encoder)

        return [Route("/agui/{name}", endpoint, methods=["POST"])]

    return routes


class _RunResponse(StreamingResponse):
    """A server-sent event stream that owns its AG-UI run.

    The run is a child of the task that streams the response (``async with``, no helper
    thread, and no task group held across an async generator's ``yield``, which a consumer
    that stops early would leave open): a client that goes away (``send`` fails, or the
    disconnect listener cancels the stream) cancels the run, which records ``CANCELLED``.
    """

    def __init__(
        self,
        run: contextlib.AbstractAsyncContextManager[AsyncIterator[BaseEvent]],
        encoder: EventEncoder,
    ) -> None:
        super().__init__((), media_type=encoder.get_content_type())  # body set when streaming
        self._run = run
        self._encoder = encoder

    async def stream_response(self, send: Send) -> None:
        async with self._run as agui:
            self.body_iterator = (self._encoder.encode(event) async for event in agui)
            await super().stream_response(send)


def _error(status: int, kind: str, message: str) -> Response:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status)
