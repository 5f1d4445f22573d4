"""A whole workflow as one node of another.

Each input starts a child run inside the parent's invocation: the child's outputs are sent
on as this node's messages, its events stream through the parent with namespaced executor
ids (``parent_node/child_node``), its pending requests are the parent's (each with the
child's own payload and response type, under the asker's path ``parent_node/child_node``),
and its paused state lives in this node's per-run state, so it checkpoints with the parent.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel

from workflow import (
    Executor,
    RunStatus,
    Workflow,
    WorkflowContext,
    WorkflowError,
    response_handler,
)
from workflow.authoring import ChildRun, HandlerSpec

__all__ = ("SubWorkflowError", "SubWorkflowRequest", "WorkflowExecutor")


class SubWorkflowError(WorkflowError, RuntimeError):
    """A nested workflow ended without completing (its ``max_supersteps`` limit, say).

    It is the ``__cause__`` of the parent's ``ExecutorFailedError`` for the nesting node; also
    a ``RuntimeError``, which it was before it joined the error tree. A child that failed
    with an error of its own raises that error instead.

    Attributes:
        workflow_name: The nested workflow's name.
        status: How the child run ended (``None`` when it had no paused run to answer).
    """

    def __init__(self, message: str, *, workflow_name: str, status: RunStatus | None) -> None:
        super().__init__(message)
        self.workflow_name = workflow_name
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (str(self), self.workflow_name, self.status))


def _rebuild(message: str, workflow_name: str, status: RunStatus | None) -> SubWorkflowError:
    return SubWorkflowError(message, workflow_name=workflow_name, status=status)


class SubWorkflowRequest(BaseModel):
    """Which child run and request an answer is for: the envelope this node receives.

    The parent's pending request shows the child's question itself; this envelope (its
    ``via``) routes the answer back here. ``payload`` is ``None`` in new runs (checkpoints
    written before that carry the question in it, and still resume).
    """

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
            raise SubWorkflowError(
                f"{self.id!r}: no paused child run {request.child_run_id!r} of sub-workflow "
                f"{self.workflow.name!r} waits for an answer (paused: {sorted(paused)})",
                workflow_name=self.workflow.name,
                status=None,
            )
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
            raise result.error or SubWorkflowError(
                f"sub-workflow {wf.name!r} of {self.id!r} failed without an error",
                workflow_name=wf.name,
                status=result.status,
            )
        if result.status is RunStatus.MAX_SUPERSTEPS:
            raise SubWorkflowError(
                f"sub-workflow {wf.name!r} of {self.id!r} hit its max_supersteps limit; raise "
                "max_supersteps when building it, or check it for a loop that never ends",
                workflow_name=wf.name,
                status=result.status,
            )
        if result.status is RunStatus.AWAITING_INPUT:
            paused = dict(await ctx.get_executor_state("paused", {}))
            child.state.status = result.status
            paused[child.run_id] = {"state": child.freeze(), "sent": len(result.outputs)}
            await ctx.set_executor_state("paused", paused)
            # each open question of the child becomes this run's, as the child asked it
            await child.surface(
                ctx,
                lambda req: SubWorkflowRequest(
                    child_run_id=child.run_id,
                    child_request_id=req.request_id,
                    executor_id=f"{self.id}/{req.executor_id}",
                    payload=None,  # the parent's pending request carries it
                ),
            )
