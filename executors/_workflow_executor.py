"""A whole workflow as one node of another.

Each input starts a child run inside the parent's invocation: the child's outputs are sent
on as this node's messages, its events stream through the parent with namespaced executor
ids (``parent_node/child_node``), its pending requests surface as the parent's, and its
paused state lives in this node's per-run state, so it checkpoints with the parent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from workflow import Executor, Workflow, WorkflowContext, response_handler
from workflow._executor import HandlerSpec
from workflow._result import RunResult
from workflow._runner import EventSink, Runner, RunState
from workflow._serde import SerializationError
from workflow._types import RunStatus
from workflow._workflow import apply_responses
from workflow.events import (
    CheckpointSaved,
    OutputEmitted,
    RequestInfo,
    RunFinished,
    RunStarted,
    SuperstepCompleted,
    SuperstepStarted,
    WorkflowEvent,
)

__all__ = ("SubWorkflowRequest", "WorkflowExecutor")

_HIDDEN = (
    RunStarted,
    RunFinished,
    SuperstepStarted,
    SuperstepCompleted,
    RequestInfo,
    CheckpointSaved,
    OutputEmitted,
)


class SubWorkflowRequest(BaseModel):
    """A child run's question, surfaced as the parent's own pending request."""

    child_run_id: str
    child_request_id: str
    executor_id: str
    payload: Any


class _ForwardingSink(EventSink):
    """Passes a child run's events to the parent's context, renamed into the parent's run."""

    __slots__ = ("ctx", "pending", "prefix")

    def __init__(self, ctx: WorkflowContext[Any], prefix: str) -> None:
        super().__init__()
        self.ctx = ctx
        self.prefix = prefix
        self.pending: list[WorkflowEvent] = []
        self.streaming = True

    def emit(self, event: WorkflowEvent) -> None:
        self.events.append(event)
        if isinstance(event, _HIDDEN):
            return
        changes: dict[str, Any] = {"run_id": self.ctx.run_id, "superstep": self.ctx.superstep}
        prefix = self.prefix
        for name in ("executor_id", "source_id", "target_id"):  # every field naming a node
            value = getattr(event, name, None)
            if isinstance(value, str):
                changes[name] = ",".join(f"{prefix}/{part}" for part in value.split(","))
        messages = getattr(event, "messages", None)
        if isinstance(messages, Mapping):
            changes["messages"] = {f"{prefix}/{dst}": n for dst, n in messages.items()}
        self.pending.append(dataclasses.replace(event, **changes))

    async def flush(self) -> None:
        pending, self.pending = self.pending, []
        for event in pending:
            await self.ctx.add_event(event)


class WorkflowExecutor(Executor):
    """Nest ``workflow`` as a single node; it accepts what the child's start accepts."""

    kind: ClassVar[str] = "workflow"

    def __init__(self, workflow: Workflow, *, id: str | None = None) -> None:
        super().__init__(id if id is not None else workflow.name)
        self.workflow = workflow
        start = workflow.executors[workflow.start_executor_id]
        self._spec = HandlerSpec(
            name="run_child",
            func=WorkflowExecutor._run_child,
            input_types=start.input_types(),
            output_types=None,
            takes_ctx=True,
            is_async=True,
            is_method=True,
        )

    def handler_specs(self) -> tuple[HandlerSpec, ...]:
        return (self._spec, *super().handler_specs())

    async def _run_child(self, message: Any, ctx: WorkflowContext[Any]) -> None:
        count = await ctx.get_executor_state("runs", 0) + 1
        await ctx.set_executor_state("runs", count)
        state = RunState(run_id=f"{ctx.run_id}/{self.id}/{count}")
        state.deliver(self.workflow.start_executor_id, message)
        await self._drive(state, ctx, resumed=False, sent=0)

    @response_handler
    async def on_child_answer(
        self, request: SubWorkflowRequest, response: object, ctx: WorkflowContext[Any]
    ) -> None:
        paused: dict[str, Any] = dict(await ctx.get_executor_state("paused", {}))
        record = paused.get(request.child_run_id)
        if record is None:
            raise KeyError(f"{self.id!r}: no paused child run {request.child_run_id!r}")
        state = self._thaw(record["state"])
        apply_responses(state, {request.child_request_id: response})
        if state.pending:  # other questions of the same child are still open: wait for them
            paused[request.child_run_id] = {"state": self._freeze(state), "sent": record["sent"]}
            await ctx.set_executor_state("paused", paused)
            return
        del paused[request.child_run_id]
        await ctx.set_executor_state("paused", paused)
        await self._drive(state, ctx, resumed=True, sent=record["sent"])

    def _freeze(self, state: RunState) -> dict[str, Any]:
        """A paused child's state for this node's executor state, which is checkpointed.

        Pending requests' response types become their registered names: a class is no
        checkpointable value (a type the registry cannot name stays as it is, which only a
        run with a checkpoint store refuses, naming the path to it).
        """
        from workflow._durable import registry_for

        registry = registry_for(self.workflow)
        data = state.to_dict()
        pending = []
        for request_id, executor_id, payload, response_type in data["pending"]:
            try:
                response_type = registry.type_to_name(response_type)
            except SerializationError:
                pass
            pending.append([request_id, executor_id, payload, response_type])
        data["pending"] = pending
        return data

    def _thaw(self, data: dict[str, Any]) -> RunState:
        """Inverse of :meth:`_freeze`."""
        from workflow._durable import registry_for

        registry = registry_for(self.workflow)
        data = dict(data)
        data["pending"] = [
            [r[0], r[1], r[2], registry.name_to_type(r[3]) if isinstance(r[3], str) else r[3]]
            for r in data["pending"]
        ]
        return RunState.from_dict(data)

    async def _drive(
        self, state: RunState, ctx: WorkflowContext[Any], *, resumed: bool, sent: int
    ) -> None:
        wf = self.workflow
        sink = _ForwardingSink(ctx, self.id)
        runner = Runner(
            wf.graph,
            state,
            sink=sink,
            max_supersteps=wf.max_supersteps,
            max_concurrency=wf.max_concurrency,
            strict=wf.strict,
        )
        result: RunResult = await runner.execute(resumed=resumed)
        await sink.flush()
        for value in result.outputs[sent:]:  # outputs sent before a pause are not resent
            await ctx.send_message(value)
        if result.status is RunStatus.FAILED:
            raise result.error or RuntimeError(f"sub-workflow {wf.name!r} failed")
        if result.status is RunStatus.MAX_SUPERSTEPS:
            raise RuntimeError(f"sub-workflow {wf.name!r} hit its max_supersteps limit")
        if result.status is RunStatus.AWAITING_INPUT:
            paused = dict(await ctx.get_executor_state("paused", {}))
            state.status = result.status
            paused[state.run_id] = {"state": self._freeze(state), "sent": len(result.outputs)}
            await ctx.set_executor_state("paused", paused)
            for req in result.pending_requests:
                nested = req.payload if isinstance(req.payload, SubWorkflowRequest) else None
                asker = nested.executor_id if nested is not None else req.executor_id
                await ctx.request_info(
                    SubWorkflowRequest(
                        child_run_id=state.run_id,
                        child_request_id=req.request_id,
                        # the path down to the executor that asked, through nested children
                        executor_id=f"{self.id}/{asker}",
                        payload=req.payload,
                    ),
                    response_type=req.response_type,
                )
