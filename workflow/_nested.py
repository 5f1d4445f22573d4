"""Running a workflow inside an invocation of another (what ``WorkflowExecutor`` builds on).

A child run is driven by the core's own runner, on the backend the parent's invocation runs
on, with its events renamed into the parent's run (``parent_node/child_node``). Its paused
state is plain data the parent node keeps in its executor state, so it checkpoints with the
parent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ._result import NestedQuestion, PendingRequest, RunResult
from ._runstate import EventSink, RunState
from .events import (
    CheckpointSaved,
    OutputEmitted,
    RequestInfo,
    RunFinished,
    RunStarted,
    SuperstepCompleted,
    SuperstepStarted,
    WorkflowEvent,
)

if TYPE_CHECKING:
    from ._context import WorkflowContext
    from ._workflow import Workflow

__all__ = ("ChildRun",)

_HIDDEN = (
    RunStarted,
    RunFinished,
    SuperstepStarted,
    SuperstepCompleted,
    RequestInfo,
    CheckpointSaved,
    OutputEmitted,
)


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


class ChildRun:
    """One run of ``workflow`` nested in the invocation ``ctx`` of node ``node_id``."""

    def __init__(self, workflow: Workflow, node_id: str, state: RunState) -> None:
        self.workflow = workflow
        self.node_id = node_id
        self.state = state

    @classmethod
    def start(cls, workflow: Workflow, node_id: str, run_id: str, message: Any) -> ChildRun:
        """A new child run whose start executor receives ``message``."""
        state = RunState(run_id=run_id)
        state.deliver(workflow.start_executor_id, message)
        return cls(workflow, node_id, state)

    @property
    def run_id(self) -> str:
        return self.state.run_id

    async def drive(self, ctx: WorkflowContext[Any], *, resumed: bool) -> RunResult:
        """Run the child to a final status on the parent invocation's backend."""
        wf = self.workflow
        sink = _ForwardingSink(ctx, self.node_id)
        runner = wf._runner_class()(
            wf,
            self.state,
            sink=sink,
            max_supersteps=wf.max_supersteps,
            max_concurrency=wf.max_concurrency,
            strict=wf.strict,
            backend=ctx._backend,
        )
        result = await runner.execute(resumed=resumed)
        await sink.flush()
        return result

    async def surface(
        self, ctx: WorkflowContext[Any], envelope: Callable[[PendingRequest], Any]
    ) -> None:
        """Ask the child's open questions as the parent node's own, each as the child asked.

        The parent's pending request shows the asker's payload and response type and its
        path (``node/asker``, deeper for nested children); the answer comes back to this node
        as a reply whose request is ``envelope(child_request)``.
        """
        for request in self.state.pending.values():
            path = f"{self.node_id}/{request.executor_id}"
            question = NestedQuestion(path, request.payload, envelope(request))
            await ctx.request_info(question, response_type=request.response_type)

    def answer(self, request_id: str, response: Any) -> None:
        """Deliver the answer to one of the child's pending requests (validated)."""
        from ._workflow import apply_responses

        apply_responses(self.state, {request_id: response})

    def freeze(self) -> dict[str, Any]:
        """The child's state as plain data, for the parent node's (checkpointed) state.

        Pending requests' response types become their registered names: a class is no
        checkpointable value (a type the registry cannot name stays as it is, which only a
        run with a checkpoint store refuses, naming the path to it).
        """
        from ._allowlist import registry_for
        from ._serde import SerializationError

        registry = registry_for(self.workflow)
        data = self.state.to_dict()
        for request in data["pending"]:
            try:
                request["response_type"] = registry.type_to_name(request["response_type"])
            except SerializationError:
                pass
        return data

    @classmethod
    def thaw(cls, workflow: Workflow, node_id: str, data: dict[str, Any]) -> ChildRun:
        """Inverse of :meth:`freeze`."""
        from ._allowlist import registry_for

        registry = registry_for(workflow)
        pending = []
        for raw in data["pending"]:  # by name, or positional as older code froze them
            request = PendingRequest.from_fields(raw)
            if isinstance(request.response_type, str):
                tp = registry.name_to_type(request.response_type)
                request = dataclasses.replace(request, response_type=tp)
            pending.append(request.fields())
        data = {**data, "pending": pending}
        return cls(workflow, node_id, RunState.from_dict(data))
