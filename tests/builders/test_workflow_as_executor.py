"""A ``Workflow`` passed where an executor is expected is nested, not wrapped as an agent.

A workflow has ``.name`` and ``.run``, which is what the builder used to take for an agent;
now every way of naming an executor (``start=``, ``add_edge``, ``add_chain``, fan-out, fan-in,
``add_executor``) nests it as a ``WorkflowExecutor``: its outputs become the node's
messages and its questions surface in the parent.
"""

from __future__ import annotations

import pytest

from builders import WorkflowBuilder
from executors import AgentExecutor, WorkflowExecutor
from workflow import (
    Executor,
    GraphValidationError,
    RunStatus,
    Workflow,
    WorkflowContext,
    events,
    executor,
    handler,
    response_handler,
)

pytestmark = pytest.mark.anyio


@executor(id="shout")
async def shout(text: str) -> str:
    return text.upper()


@executor(id="exclaim")
async def exclaim(text: str) -> str:
    return text + "!"


def child(name: str = "child") -> Workflow:
    return WorkflowBuilder(start=shout, name=name).add_edge(shout, exclaim).build()


@executor(id="prefix")
async def prefix(text: str) -> str:
    return f"> {text}"


@executor(id="tail")
async def tail(text: str, ctx: WorkflowContext[str]) -> None:
    await ctx.yield_output(text)


async def test_add_edge_nests_a_workflow() -> None:
    inner = child()
    wf = WorkflowBuilder(start=prefix, name="outer").add_edge(prefix, inner).build()
    node = wf.executors["child"]
    assert isinstance(node, WorkflowExecutor)
    assert not isinstance(node, AgentExecutor)
    assert node.workflow is inner
    result = await wf.run("hi")
    assert result.status is RunStatus.COMPLETED
    assert result.outputs == ["> HI!"]
    # the child's own executors show up namespaced under the node, as nesting does
    invoked = {e.executor_id for e in result.events if isinstance(e, events.ExecutorInvoked)}
    assert {"child/shout", "child/exclaim"} <= invoked


async def test_start_chain_fan_out_and_fan_in_accept_workflows() -> None:
    a, b = child("a"), child("b")

    @executor(id="join")
    async def join(parts: list[str], ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(" ".join(parts))

    wf = (
        WorkflowBuilder(start=prefix)
        .add_fan_out_edges(prefix, [a, b])
        .add_fan_in_edges([a, b], join)
        .build()
    )
    assert isinstance(wf.executors["a"], WorkflowExecutor)
    assert (await wf.run("x")).outputs == ["> X! > X!"]

    first = child("first")
    chained = WorkflowBuilder(start=first).add_chain([first, tail]).build()
    assert isinstance(chained.executors["first"], WorkflowExecutor)
    assert (await chained.run("go")).outputs == ["GO!"]


async def test_the_same_workflow_object_is_one_node() -> None:
    inner = child()
    wf = (
        WorkflowBuilder(start=inner)
        .add_executor(inner, timeout=30)
        .add_chain([inner, tail])
        .build()
    )
    assert isinstance(wf.executors["child"], WorkflowExecutor)
    assert wf.start_executor_id == "child"
    assert (await wf.run("yo")).outputs == ["YO!"]


def test_two_workflows_with_one_name_are_refused_naming_the_id() -> None:
    with pytest.raises(GraphValidationError, match="duplicate executor id 'child'"):
        WorkflowBuilder(start=prefix).add_fan_out_edges(prefix, [child(), child()]).build()


class Ask(Executor):
    @handler
    async def on(self, text: str, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(text, response_type=str)

    @response_handler
    async def on_reply(self, request: str, reply: str, ctx: WorkflowContext[str]) -> str:
        return f"{request} {reply}"


async def test_a_nested_workflows_question_is_answered_through_the_parent() -> None:
    inner = WorkflowBuilder(start=Ask(id="ask"), name="inner").build()
    wf = WorkflowBuilder(start=prefix).add_chain([prefix, inner, tail]).build()
    paused = await wf.run("name?")
    assert paused.status is RunStatus.AWAITING_INPUT
    (request,) = paused.pending_requests
    done = await wf.resume(paused.run_id, responses={request.request_id: "Ada"})
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["> name? Ada"]
