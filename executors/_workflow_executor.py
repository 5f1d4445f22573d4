"""A whole workflow as one node of another.

Each input starts a child run inside the parent's invocation: the child's outputs are sent
on as this node's messages, its events stream through the parent with namespaced executor
ids (``parent_node/child_node``), its pending requests surface as the parent's, and its
paused state lives in this node's per-run state, so it checkpoints with the parent.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from workflow import Executor, RunStatus, Workflow, WorkflowContext, response_handler
from workflow.authoring import ChildRun, HandlerSpec

__all__ = ("SubWorkflowRequest", "WorkflowExecutor")


class SubWorkflowRequest(BaseModel):
    """A child run's question, surfaced as the parent's own pending request."""

    child_run_id: str
    child_request_id: str
    executor_id: str
    payload: Any


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
        child = ChildRun.start(self.workflow, self.id, f"{ctx.run_id}/{self.id}/{count}", message)
        await self._drive(child, ctx, resumed=False, sent=0)

    @response_handler
    async def on_child_answer(
        self, request: SubWorkflowRequest, response: object, ctx: WorkflowContext[Any]
    ) -> None:
        paused: dict[str, Any] = dict(await ctx.get_executor_state("paused", {}))
        record = paused.get(request.child_run_id)
        if record is None:
            raise KeyError(f"{self.id!r}: no paused child run {request.child_run_id!r}")
        child = ChildRun.thaw(self.workflow, self.id, record["state"])
        child.answer(request.child_request_id, response)
        if child.state.pending:  # other questions of the same child are still open: wait
            paused[request.child_run_id] = {"state": child.freeze(), "sent": record["sent"]}
            await ctx.set_executor_state("paused", paused)
            return
        del paused[request.child_run_id]
        await ctx.set_executor_state("paused", paused)
        await self._drive(child, ctx, resumed=True, sent=record["sent"])

    async def _drive(
        self, child: ChildRun, ctx: WorkflowContext[Any], *, resumed: bool, sent: int
    ) -> None:
        wf = self.workflow
        result = await child.drive(ctx, resumed=resumed)
        for value in result.outputs[sent:]:  # outputs sent before a pause are not resent
            await ctx.send_message(value)
        if result.status is RunStatus.FAILED:
            raise result.error or RuntimeError(f"sub-workflow {wf.name!r} failed")
        if result.status is RunStatus.MAX_SUPERSTEPS:
            raise RuntimeError(f"sub-workflow {wf.name!r} hit its max_supersteps limit")
        if result.status is RunStatus.AWAITING_INPUT:
            paused = dict(await ctx.get_executor_state("paused", {}))
            child.state.status = result.status
            paused[child.run_id] = {"state": child.freeze(), "sent": len(result.outputs)}
            await ctx.set_executor_state("paused", paused)
            for req in result.pending_requests:
                nested = req.payload if isinstance(req.payload, SubWorkflowRequest) else None
                asker = nested.executor_id if nested is not None else req.executor_id
                await ctx.request_info(
                    SubWorkflowRequest(
                        child_run_id=child.run_id,
                        child_request_id=req.request_id,
                        # the path down to the executor that asked, through nested children
                        executor_id=f"{self.id}/{asker}",
                        payload=req.payload,
                    ),
                    response_type=req.response_type,
                )
