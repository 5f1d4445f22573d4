"""Workflows served as MCP tools (``ledgerflow mcp TARGET``), with the mcp SDK's server.

Each workflow is one tool: its input schema is the start executor's input type (as for
``Workflow.as_tool``), a call runs the workflow and answers with its outputs. While it runs,
a client that asked for progress (a ``progressToken``) gets a notification per finished
executor. A run that stops for a person:

* asks through MCP elicitation when the client supports it and the answer fits a form (a
  text, number or yes/no, or an object of those): the answer resumes the run, in the call;
* otherwise answers with the pending requests (ids, questions, the answer's JSON Schema)
  and how to respond: the ``respond_to_run`` tool with the run id, request id and answer.

Served over stdio (the client starts ``ledgerflow mcp``) or streamable HTTP on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import pydantic
import pydantic_core
from mcp import types as mt
from mcp.server.lowlevel import Server

from workflow import PendingRequest, RunStatus, Workflow, WorkflowError, events
from workflow.authoring import redact

from ._workflow_agent import output_text, tool_schema

__all__ = ("RESPOND_TOOL", "WorkflowMCPServer")

RESPOND_TOOL = "respond_to_run"
_BAD = re.compile(r"[^a-zA-Z0-9_-]")
_PRIMITIVE = {"string", "integer", "number", "boolean"}
MAX_WAITING_RUNS = 10_000  # as a workflow's own default cap on paused runs kept in memory


@dataclass(frozen=True)
class _Entry:
    workflow: Workflow
    schema: dict[str, Any]
    to_input: Callable[[dict[str, Any]], Any]


@dataclass
class _Outcome:
    run_id: str
    status: RunStatus
    outputs: list[Any]
    pending: tuple[PendingRequest, ...]
    error: str | None


class WorkflowMCPServer:
    """An MCP server with one tool per workflow, plus ``respond_to_run``.

    Raises:
        WorkflowError: No workflows, or two whose tool names collide.
    """

    def __init__(self, workflows: Sequence[Workflow], *, name: str = "ledgerflow") -> None:
        if not workflows:
            raise WorkflowError("ledgerflow mcp needs at least one workflow to serve")
        self.entries: dict[str, _Entry] = {}
        for wf in workflows:
            tool_name = _BAD.sub("_", wf.name)[:64] or "workflow"
            if tool_name in self.entries or tool_name == RESPOND_TOOL:
                raise WorkflowError(
                    f"two workflows would both be served as MCP tool {tool_name!r}; give "
                    f"{wf.name!r} another name"
                )
            schema, to_input = tool_schema(wf)
            self.entries[tool_name] = _Entry(wf, schema, to_input)
        # run id -> tool name of the runs waiting for an answer, oldest first; capped like a
        # workflow's own paused runs (an evicted run is found again through its store)
        self._runs: OrderedDict[str, str] = OrderedDict()
        self.server: Server[Any, Any] = Server(name)
        self.server.list_tools()(self._list_tools)  # type: ignore[no-untyped-call]
        self.server.call_tool()(self._call_tool)

    # -- MCP handlers ----------------------------------------------------------------------
    async def _list_tools(self) -> list[mt.Tool]:
        tools = [
            mt.Tool(
                name=name,
                description=str(getattr(e.workflow, "description", "") or "")
                or f"Runs the Ledgerflow workflow {e.workflow.name!r}.",
                inputSchema=e.schema,
            )
            for name, e in self.entries.items()
        ]
        tools.append(
            mt.Tool(
                name=RESPOND_TOOL,
                description=(
                    "Answers a request of a workflow run that stopped to ask a person, and "
                    "continues the run."
                ),
                inputSchema={
                    "type": "object",
                    "properties": {
                        "run_id": {"type": "string"},
                        "request_id": {"type": "string"},
                        "answer": {"description": "The answer, matching the request's schema."},
                    },
                    "required": ["run_id", "request_id", "answer"],
                },
            )
        )
        return tools

    async def _call_tool(self, name: str, arguments: dict[str, Any]) -> list[mt.ContentBlock]:
        if name == RESPOND_TOOL:
            tool = self._runs.get(str(arguments.get("run_id"))) or await self._stored(
                str(arguments.get("run_id"))
            )
            if tool is None:
                # other clients' run ids are not listed: a run id is all it takes to answer
                raise WorkflowError(
                    f"no run {arguments.get('run_id')!r} of this server is waiting for input; "
                    "pass the run_id from the answer that listed the pending requests"
                )
            entry = self.entries[tool]
            async with entry.workflow.resume_stream(
                run_id=str(arguments["run_id"]),
                responses={str(arguments["request_id"]): arguments.get("answer")},
            ) as running:
                outcome = await self._drive(entry, running)
        else:
            found = self.entries.get(name)
            if found is None:
                raise WorkflowError(f"unknown tool {name!r}; tools: {sorted(self.entries)}")
            entry = found
            try:
                value = entry.to_input(arguments)
            except pydantic.ValidationError as exc:
                raise WorkflowError(f"invalid arguments for {name!r}: {exc}") from exc
            async with entry.workflow.run_stream(value) as running:
                outcome = await self._drive(entry, running)
        outcome = await self._elicit(entry, outcome)
        return [mt.TextContent(type="text", text=self._answer(name, outcome))]

    async def _stored(self, run_id: str) -> str | None:
        """The tool of a run this process does not know (say, from before a restart), found
        through its workflow's checkpoint store."""
        for name, entry in self.entries.items():
            store = entry.workflow.checkpoint_store
            if store is None:
                continue
            try:
                latest = await store.latest(run_id)
            except Exception:  # a store that cannot answer: the run is not found there
                continue
            if latest is not None and latest.workflow_name == entry.workflow.name:
                return name
        return None

    # -- running ---------------------------------------------------------------------------
    async def _drive(self, entry: _Entry, running: AsyncIterator[events.WorkflowEvent]) -> _Outcome:
        """Follow a run's events (its caller's ``async with`` owns the run: leaving that
        block, on an error here or a cancelled call, cancels the run and waits for it)."""
        ctx = self.server.request_context
        token = ctx.meta.progressToken if ctx.meta is not None else None
        outputs: list[Any] = []
        steps = 0
        outcome: _Outcome | None = None
        async for event in running:
            if isinstance(event, events.OutputEmitted):
                outputs.append(event.data)
            elif isinstance(event, events.ExecutorCompleted) and token is not None:
                steps += 1
                await ctx.session.send_progress_notification(
                    token,
                    steps,
                    message=f"{event.executor_id} finished (superstep {event.superstep})",
                    related_request_id=str(ctx.request_id),
                )
            elif isinstance(event, events.RunFinished):
                outcome = _Outcome(
                    event.run_id,
                    event.status,
                    outputs,
                    tuple(event.pending_requests),
                    event.error,
                )
        if outcome is None:
            raise WorkflowError(f"workflow {entry.workflow.name!r} ended without a RunFinished")
        if outcome.status is RunStatus.AWAITING_INPUT:
            self._runs[outcome.run_id] = next(n for n, e in self.entries.items() if e is entry)
            self._runs.move_to_end(outcome.run_id)
            while len(self._runs) > MAX_WAITING_RUNS:
                self._runs.popitem(last=False)
        else:
            self._runs.pop(outcome.run_id, None)
        return outcome

    async def _elicit(self, entry: _Entry, outcome: _Outcome) -> _Outcome:
        """Ask the client's user for each pending answer while the client can and will."""
        ctx = self.server.request_context
        session = ctx.session
        params = session.client_params
        if params is None or params.capabilities.elicitation is None:
            return outcome
        while outcome.status is RunStatus.AWAITING_INPUT:
            request = outcome.pending[0]
            form = _form(request.response_type)
            if form is None:
                return outcome
            schema, unwrap = form
            with anyio.fail_after(3600):
                reply = await session.elicit(
                    _question(request),
                    schema,
                    related_request_id=self.server.request_context.request_id,
                )
            if reply.action != "accept" or reply.content is None:
                return outcome
            async with entry.workflow.resume_stream(
                run_id=outcome.run_id, responses={request.request_id: unwrap(reply.content)}
            ) as running:
                outcome = await self._drive(entry, running)
        return outcome

    def _answer(self, name: str, outcome: _Outcome) -> str:
        if outcome.status is RunStatus.COMPLETED:
            return "\n".join(output_text(v) for v in outcome.outputs)
        if outcome.status is RunStatus.AWAITING_INPUT:
            pending = [
                {
                    "request_id": r.request_id,
                    "executor_id": r.executor_id,
                    "question": _jsonable(r.payload),
                    "answer_schema": _schema(r.response_type),
                }
                for r in outcome.pending
            ]
            return json.dumps(
                {
                    "status": "awaiting_input",
                    "run_id": outcome.run_id,
                    "outputs_so_far": [output_text(v) for v in outcome.outputs],
                    "pending_requests": pending,
                    "how_to_respond": (
                        f"call the tool {RESPOND_TOOL!r} with run_id, request_id and an answer "
                        "matching answer_schema"
                    ),
                },
                indent=1,
            )
        raise WorkflowError(
            f"workflow run {outcome.run_id!r} of {name!r} ended {outcome.status.value}"
            + (f": {redact(outcome.error)}" if outcome.error else "")
        )

    # -- transports ------------------------------------------------------------------------
    async def run_stdio(self) -> None:
        """Serve on this process's stdin and stdout until the client closes them."""
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read, write):
            await self.server.run(read, write, self.server.create_initialization_options())

    def http_app(self) -> Any:
        """A Starlette app serving streamable HTTP at ``/mcp``."""
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from starlette.applications import Starlette
        from starlette.routing import Mount

        manager = StreamableHTTPSessionManager(app=self.server)

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            async with manager.run():
                yield

        return Starlette(routes=[Mount("/mcp", app=manager.handle_request)], lifespan=lifespan)

    async def run_http(self, host: str, port: int) -> None:
        """Serve streamable HTTP at ``http://host:port/mcp`` until cancelled."""
        import uvicorn

        config = uvicorn.Config(self.http_app(), host=host, port=port, log_level="warning")
        await uvicorn.Server(config).serve()


def _jsonable(value: Any) -> Any:
    return json.loads(pydantic_core.to_json(value, fallback=repr))


def _schema(tp: Any) -> dict[str, Any]:
    try:
        return dict(pydantic.TypeAdapter(tp).json_schema())
    except Exception:
        return {}


def _question(request: PendingRequest) -> str:
    payload = request.payload
    text = getattr(payload, "text", None) or getattr(payload, "prompt", None)
    if not isinstance(text, str):
        text = json.dumps(_jsonable(payload))
    return f"{request.executor_id} asks: {text}"


def _form(tp: Any) -> tuple[dict[str, Any], Callable[[Mapping[str, Any]], Any]] | None:
    """An elicitation form for an answer of type ``tp`` (flat primitives only), and how to
    read the answer back from the form's content."""
    schema = _schema(tp)
    if schema.get("type") in _PRIMITIVE:
        form = {"type": "object", "properties": {"answer": schema}, "required": ["answer"]}
        return form, lambda content: content.get("answer")
    props = schema.get("properties")
    if schema.get("type") == "object" and isinstance(props, dict) and "$defs" not in schema:
        if all(isinstance(p, dict) and p.get("type") in _PRIMITIVE for p in props.values()):
            return schema, dict
    return None
