"""Workflows served as A2A agents (``ledgerflow serve --a2a``), with the a2a-sdk's server.

Each workflow ``name`` gets an Agent Card at ``/a2a/{name}/.well-known/agent-card.json`` and a
JSON-RPC endpoint at ``/a2a/{name}/`` (streaming supported); with a single workflow, its card
is also at ``/.well-known/agent-card.json``. An A2A task is one workflow run (run id
``a2a-{task_id}``, kept in the service's store):

* the task's first message is the run's input (as for ``Workflow.as_agent``: the text, or
  the text read as JSON into the start's input type);
* while it runs, each finished executor is a ``working`` status update and streamed model
  tokens are appended to a ``stream`` artifact; each workflow output is an artifact;
* a run that stops for a person puts the task in ``input-required``, with the question as
  text and, as a data part, the request id and the answer's JSON Schema; the next message on
  that task is the answer (JSON when the answer is not text) and the run continues;
* a run that fails fails the task with the error message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import pydantic
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    Task,
    TaskState,
    TaskStatus,
)
from google.protobuf import struct_pb2
from starlette.routing import BaseRoute, Mount

from workflow import PendingRequest, RunStatus, Workflow, events
from workflow.authoring import redact

from ._chat import ChatMessage
from ._workflow_agent import child_input, output_text

__all__ = ("a2a_routes",)


class WorkflowA2AExecutor(AgentExecutor):
    """Runs one workflow per A2A task; a follow-up message answers its pending request."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id, context_id = str(context.task_id), str(context.context_id)
        text = context.get_user_input()
        if context.current_task is None:
            await event_queue.enqueue_event(
                Task(
                    id=task_id,
                    context_id=context_id,
                    status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
                    history=[context.message] if context.message else [],
                )
            )
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.start_work()
        run_id = f"a2a-{task_id}"
        waiting = _waiting(context.current_task)
        try:
            if waiting is None:
                value = child_input(self.workflow, [ChatMessage("user", text)])
                stream = self.workflow.run_stream(value, run_id=run_id)
            else:
                request_id, expects_text = waiting
                answer: Any = text
                if not expects_text:
                    try:
                        answer = json.loads(text)
                    except json.JSONDecodeError:
                        answer = text
                stream = self.workflow.resume_stream(run_id=run_id, responses={request_id: answer})
            # the run is a child of this task: an error while following it (or this task's
            # cancellation) cancels the run and waits until it has recorded that
            async with stream as running:
                await self._follow(running, updater)
        except (pydantic.ValidationError, TypeError, KeyError, ValueError) as exc:
            await updater.failed(updater.new_agent_message([Part(text=f"bad input: {exc}")]))

    async def _follow(
        self, stream: AsyncIterator[events.WorkflowEvent], updater: TaskUpdater
    ) -> None:
        outputs = 0
        stream_id: str | None = None  # this execution's token artifact, once created
        async for event in stream:
            if isinstance(event, events.AgentDelta):
                first = stream_id is None
                stream_id = stream_id or f"stream-{uuid.uuid4().hex}"
                await updater.add_artifact(
                    [Part(text=event.text)], artifact_id=stream_id, name="stream", append=not first
                )
            elif isinstance(event, events.ExecutorCompleted):
                note = updater.new_agent_message([Part(text=f"{event.executor_id} finished")])
                await updater.update_status(TaskState.TASK_STATE_WORKING, note)
            elif isinstance(event, events.OutputEmitted):
                outputs += 1
                await updater.add_artifact(
                    [Part(text=output_text(event.data))],
                    artifact_id=f"output-{outputs}",
                    name="output",
                )
            elif isinstance(event, events.RunFinished):
                await self._finish(event, updater)

    async def _finish(self, event: events.RunFinished, updater: TaskUpdater) -> None:
        if event.status is RunStatus.COMPLETED:
            await updater.complete()
        elif event.status is RunStatus.AWAITING_INPUT:
            request: PendingRequest = event.pending_requests[0]
            await updater.requires_input(updater.new_agent_message(_question(request)))
        else:
            why = redact(event.error) if event.error else event.status.value
            await updater.failed(updater.new_agent_message([Part(text=f"run failed: {why}")]))

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Cancellation of a running task is not offered (the card says so)."""
        raise NotImplementedError("cancelling a Ledgerflow A2A task is not supported")


def _schema(tp: Any) -> dict[str, Any]:
    try:
        return dict(pydantic.TypeAdapter(tp).json_schema())
    except Exception:
        return {}


def _question(request: PendingRequest) -> list[Part]:
    payload = request.payload
    text = getattr(payload, "text", None) or getattr(payload, "prompt", None)
    if not isinstance(text, str):
        text = json.dumps(json.loads(pydantic.RootModel[Any](payload).model_dump_json()))
    schema = _schema(request.response_type)
    data = struct_pb2.Value()
    data.struct_value.update(
        {
            "request_id": request.request_id,
            "executor_id": request.executor_id,
            "answer_schema": schema,
        }
    )
    return [Part(text=f"{request.executor_id} asks: {text}"), Part(data=data)]


def _waiting(task: Task | None) -> tuple[str, bool] | None:
    """The pending request a task in input-required waits for, and whether it wants text."""
    if task is None or task.status.state != TaskState.TASK_STATE_INPUT_REQUIRED:
        return None
    for part in task.status.message.parts:
        if part.WhichOneof("content") == "data":
            fields = part.data.struct_value.fields
            schema = fields["answer_schema"].struct_value.fields
            wants_text = schema.get("type") is not None and schema["type"].string_value == "string"
            return fields["request_id"].string_value, wants_text
    return None


def agent_card(workflow: Workflow, url: str) -> AgentCard:
    """The Agent Card of ``workflow`` served at ``url``."""
    description = str(getattr(workflow, "description", "") or "") or (
        f"The Ledgerflow workflow {workflow.name!r}."
    )
    return AgentCard(
        name=workflow.name,
        description=description,
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(url=url, protocol_binding="JSONRPC", protocol_version="1.0")
        ],
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id=workflow.name, name=workflow.name, description=description, tags=["workflow"]
            )
        ],
    )


def a2a_routes(base_url: str) -> Callable[[Mapping[str, Workflow]], Sequence[BaseRoute]]:
    """A route factory for the service: each workflow as an A2A agent under ``/a2a/{name}``.

    Args:
        base_url: Where clients reach the server (``http://127.0.0.1:8765``), for the cards.
    """

    def routes(workflows: Mapping[str, Workflow]) -> Sequence[BaseRoute]:
        found: list[BaseRoute] = []
        for name, wf in workflows.items():
            card = agent_card(wf, f"{base_url.rstrip('/')}/a2a/{name}/")
            handler = DefaultRequestHandler(WorkflowA2AExecutor(wf), InMemoryTaskStore(), card)
            inner = [*create_agent_card_routes(card), *create_jsonrpc_routes(handler, rpc_url="/")]
            found.append(Mount(f"/a2a/{name}", routes=inner))
            if len(workflows) == 1:
                found.extend(create_agent_card_routes(card))
        return found

    return routes
