"""Adapters behind ``Workflow.as_agent`` and ``Workflow.as_tool`` (the core's side is
``workflow._adapters``; ``workflow.authoring.register_adapter`` installs these).

A workflow as an agent is a node that, for each message, starts a child run of the
workflow exactly as ``WorkflowExecutor`` does (the child's events stream through with
namespaced ids, its requests for input become the parent's, its paused state is this node's
checkpointed executor state, so resuming the parent continues the child) and answers with
one ``AgentResponse`` made of the child's outputs.

What the child gets, from the conversation it is given: the messages if its start accepts
``list[ChatMessage]``, else the last message if it accepts ``ChatMessage``, else that
message's text if it accepts ``str``, else that text read as JSON into its input type.

A workflow as a tool offers its start's input type as the tool's schema (``{"input": ...}``
for text) and answers with its outputs. A tool call cannot wait for a person, so a child run
that stops to ask one ends the call with an error naming the request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, cast

import pydantic
import pydantic_core

from workflow import (
    Executor,
    RunStatus,
    Workflow,
    WorkflowAgent,
    WorkflowContext,
    WorkflowError,
    WorkflowTool,
    handler,
    response_handler,
)
from workflow.authoring import register_adapter

from ._agent_executor import Incoming, dump, load, to_messages
from ._agents import AgentError, AgentResponse
from ._chat import ChatMessage
from ._schema_tool import SchemaTool
from ._workflow_executor import SubWorkflowRequest, WorkflowExecutor

__all__ = ("WorkflowAgentExecutor", "workflow_tool")


# --------------------------------------------------------------------------- conversions


def _start_accepts(workflow: Workflow, tp: type) -> bool:
    start = workflow.executors[workflow.start_executor_id]
    return any(s.accepts(tp) is not None for s in start.handler_specs() if not s.is_response)


def _structured_type(workflow: Workflow) -> Any:
    start = workflow.executors[workflow.start_executor_id]
    types = [t for t in start.input_types() or () if t is not object]
    if len(types) != 1:
        raise WorkflowError(
            f"workflow {workflow.name!r} accepts {types!r}; as an agent or tool it needs a start "
            "that accepts str, ChatMessage, list[ChatMessage] or exactly one structured type"
        )
    return types[0]


def child_input(workflow: Workflow, messages: list[ChatMessage]) -> Any:
    """What the child run starts with, given the conversation (see the module docs)."""
    if _start_accepts(workflow, list):
        return list(messages)
    last = messages[-1] if messages else ChatMessage("user", "")
    if _start_accepts(workflow, ChatMessage):
        return last
    if _start_accepts(workflow, str):
        return last.text
    tp = _structured_type(workflow)
    try:
        return pydantic.TypeAdapter(tp).validate_json(last.text or "{}")
    except pydantic.ValidationError as exc:
        raise WorkflowError(
            f"workflow {workflow.name!r} takes {getattr(tp, '__name__', tp)!r}, and the message "
            f"{last.text!r:.120} is not that type as JSON ({exc.error_count()} errors); send "
            "its JSON or give the workflow a start that accepts str"
        ) from exc


def output_text(value: Any) -> str:
    """A child output as text for a model (an agent's reply, a tool's result)."""
    if isinstance(value, str):
        return value
    if isinstance(value, AgentResponse):
        return value.text
    if isinstance(value, ChatMessage):
        return value.text
    if isinstance(value, list) and value and all(isinstance(m, ChatMessage) for m in value):
        return str(value[-1].text)
    return pydantic_core.to_json(value).decode()


def reply_messages(outputs: list[Any], given: list[ChatMessage], name: str) -> list[ChatMessage]:
    """The agent's new messages from the child's outputs, authored by the agent."""
    out: list[ChatMessage] = []
    for value in outputs:
        if isinstance(value, AgentResponse):
            messages = list(value.messages)
        elif isinstance(value, list) and all(isinstance(m, ChatMessage) for m in value):
            # A conversation's output repeats what it was given: keep only what it added.
            messages = value[len(given) :] if value[: len(given)] == given else list(value)
        elif isinstance(value, ChatMessage):
            messages = [value]
        else:
            messages = [ChatMessage("assistant", output_text(value))]
        out.extend(m.model_copy(update={"author": name}) for m in messages)
    return out


def _response(messages: list[ChatMessage], name: str) -> AgentResponse:
    text = next((m.text for m in reversed(messages) if m.text), "")
    return AgentResponse(messages=messages, text=text, agent_name=name)


# --------------------------------------------------------------------------- the node


class _Collecting:
    """The context the nested ``WorkflowExecutor`` gets: the child's outputs are kept here
    (they become one reply), everything else goes to the real context."""

    def __init__(self, ctx: WorkflowContext[Any]) -> None:
        self._ctx = ctx
        self.sent: list[Any] = []
        self.asked = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)

    async def send_message(self, message: Any, *, target: str | None = None) -> None:
        self.sent.append(message)

    async def request_info(self, payload: Any, *, response_type: Any = object) -> str:
        self.asked += 1
        return await self._ctx.request_info(payload, response_type=response_type)


class WorkflowAgentExecutor(Executor):
    """The node of a ``WorkflowAgent``: one child run per message, one reply per child run.

    Accepts what ``AgentExecutor`` accepts (``str``, ``ChatMessage``, ``list[ChatMessage]``,
    ``AgentResponse``) and sends an ``AgentResponse`` authored by the agent's name.
    """

    kind: ClassVar[str] = "workflow"
    warm: ClassVar[bool] = True  # holds agents/clients: one long-lived copy on a cluster

    def __init__(self, agent: WorkflowAgent, id: str | None = None) -> None:
        super().__init__(id if id is not None else agent.name)
        self.name = agent.name
        self.description = agent.description or agent.workflow.name
        self.workflow = agent.workflow  # the checkpoint allowlist and diagrams look here
        self._child = WorkflowExecutor(agent.workflow, id=self.id)
        child_input(agent.workflow, [])  # fails now, naming the workflow, if it cannot be fed

    def __repr__(self) -> str:
        return f"WorkflowAgentExecutor(name={self.name!r}, workflow={self.workflow.name!r})"

    def checkpoint_types(self) -> tuple[type, ...]:
        """The child's message, request and state types too: a paused child lives in this
        node's state, also where a wrapper (a team's participant node) hides ``.workflow``."""
        return tuple(dict.fromkeys([*super().checkpoint_types(), *_types_of(self.workflow)]))

    @handler
    async def on_message(
        self, message: Incoming, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Start a child run on the conversation so far and answer with its outputs."""
        given = to_messages(message, source=ctx.source)
        proxy = _Collecting(ctx)
        before = set(await ctx.get_executor_state("paused", {}))
        await self._child._run_child(child_input(self.workflow, given), cast(Any, proxy))
        new = reply_messages(proxy.sent, given, self.name)
        if proxy.asked:
            (child_id,) = set(await ctx.get_executor_state("paused", {})) - before
            waiting = dict(await ctx.get_executor_state("replies", {}))
            waiting[child_id] = {"given": dump(given), "new": dump(new)}
            await ctx.set_executor_state("replies", waiting)
            return None
        return _response(new, self.name)

    @response_handler
    async def on_child_answer(
        self, request: SubWorkflowRequest, response: object, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Pass an answer to the paused child; once it finishes, reply with all it output."""
        proxy = _Collecting(ctx)
        await self._child.on_child_answer(request, response, cast(Any, proxy))
        waiting = dict(await ctx.get_executor_state("replies", {}))
        record = waiting.get(request.child_run_id, {"given": [], "new": []})
        new = load(record["new"]) + reply_messages(proxy.sent, load(record["given"]), self.name)
        if request.child_run_id in await ctx.get_executor_state("paused", {}):
            waiting[request.child_run_id] = {"given": record["given"], "new": dump(new)}
            await ctx.set_executor_state("replies", waiting)
            return None
        waiting.pop(request.child_run_id, None)
        await ctx.set_executor_state("replies", waiting)
        return _response(new, self.name)


def _types_of(workflow: Workflow, depth: int = 0) -> list[type]:
    found: list[type] = list(workflow.types)
    for ex in workflow.executors.values():
        for spec in ex.handler_specs():
            for group in (spec.input_types, spec.output_types, spec.response_types):
                found.extend(t for t in group or () if isinstance(t, type))
        found.extend(ex.checkpoint_types())
        child = getattr(ex, "workflow", None)
        if isinstance(child, Workflow) and depth < 20:
            found.extend(_types_of(child, depth + 1))
    return found


# --------------------------------------------------------------------------- outside a run


async def run_agent(agent: WorkflowAgent, messages: list[ChatMessage]) -> AgentResponse:
    """``WorkflowAgent.run``: one run of the workflow on ``messages``, outside any workflow.

    Raises:
        AgentError: The run stopped to ask for input (only a workflow can wait for it).
        WorkflowError: The run failed (``ExecutorFailedError``) or hit a limit.
    """
    result = await agent.workflow.run(child_input(agent.workflow, list(messages)))
    if result.status is RunStatus.AWAITING_INPUT:
        ids = ", ".join(repr(r.request_id) for r in result.pending_requests)
        raise AgentError(
            f"agent {agent.name!r} (workflow {agent.workflow.name!r}) stopped to ask for input "
            f"(requests {ids}) in run {result.run_id!r}; use it inside a workflow so the "
            "question reaches a person, or answer it with workflow.resume",
            agent_name=agent.name,
        )
    result.raise_for_status()
    return _response(reply_messages(result.outputs, list(messages), agent.name), agent.name)


def tool_schema(workflow: Workflow) -> tuple[dict[str, Any], Callable[[dict[str, Any]], Any]]:
    """The tool's arguments schema and how to turn arguments into the child's input."""
    if any(_start_accepts(workflow, tp) for tp in (str, ChatMessage, list)):
        schema = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The task, as text."}},
            "required": ["input"],
        }
        return schema, lambda args: child_input(
            workflow, [ChatMessage("user", str(args.get("input", "")))]
        )
    tp = _structured_type(workflow)
    adapter = pydantic.TypeAdapter(tp)
    schema = adapter.json_schema()
    if schema.get("type") == "object":
        return schema, adapter.validate_python
    wrapped = {"type": "object", "properties": {"input": schema}, "required": ["input"]}
    return wrapped, lambda args: adapter.validate_python(args.get("input"))


def workflow_tool(spec: WorkflowTool) -> SchemaTool:
    """``WorkflowTool.as_tool``: a ``SchemaTool`` that runs the workflow per call."""
    workflow = spec.workflow
    schema, to_input = tool_schema(workflow)

    async def call(arguments: dict[str, Any]) -> str:
        result = await workflow.run(to_input(arguments))
        if result.status is RunStatus.AWAITING_INPUT:
            ids = ", ".join(repr(r.request_id) for r in result.pending_requests)
            raise WorkflowError(
                f"workflow {workflow.name!r} stopped to ask a person (requests {ids}, run "
                f"{result.run_id!r}); a tool call cannot wait for an answer, so use the "
                "workflow as an agent (Workflow.as_agent) when it needs people"
            )
        result.raise_for_status()
        return "\n".join(output_text(v) for v in result.outputs)

    return SchemaTool(
        spec.name,
        spec.description or f"Runs the workflow {workflow.name!r}.",
        schema,
        call,
        approval_mode=spec.approval_mode,
    )


def _executor(agent: WorkflowAgent) -> Executor:
    return WorkflowAgentExecutor(agent)


_run: Callable[[WorkflowAgent, list[ChatMessage]], Awaitable[AgentResponse]] = run_agent
register_adapter("executor", _executor)
register_adapter("run", _run)
register_adapter("tool", workflow_tool)
