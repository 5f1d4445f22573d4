"""The backend seam: what a backend receives and returns, and what stays in the runner.

A recording backend (a real ``Backend``, delegating to ``run_invocation`` like any backend
must) shows the requests are plain data naming the executor, its deliveries with sources,
the superstep and the attempt; retries, routing and events stay the runner's; nested
workflows run their children on the same backend; ``Resources`` are validated, stored with
the node and readable by a backend.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from builders import WorkflowBuilder
from executors import WorkflowExecutor
from workflow import (
    Executor,
    GraphValidationError,
    LocalBackend,
    Resources,
    RetryPolicy,
    RunStatus,
    Workflow,
    WorkflowContext,
    events,
    executor,
    handler,
    response_handler,
)
from workflow._backend import (
    EmitEvent,
    InvocationOutcome,
    InvocationRequest,
    resources_for,
    run_invocation,
)

pytestmark = pytest.mark.anyio


@dataclasses.dataclass(frozen=True)
class Note(events.WorkflowEvent):
    text: str = ""


class Recording:
    """A backend that records every request and outcome and runs them in-process."""

    def __init__(self) -> None:
        self.opened: list[str] = []
        self.closed: list[str] = []
        self.requests: list[InvocationRequest] = []
        self.outcomes: list[InvocationOutcome] = []

    def open(self, workflow: Workflow) -> Recording.Run:
        self.opened.append(workflow.name)
        return Recording.Run(self, workflow)

    class Run:
        def __init__(self, backend: Recording, workflow: Workflow) -> None:
            self.backend = backend
            self.workflow = workflow

        async def invoke(self, request: InvocationRequest, emit: EmitEvent) -> InvocationOutcome:
            self.backend.requests.append(request)
            node = self.workflow.executors[request.executor_id]
            outcome = await run_invocation(node, request, emit, self.backend)
            self.backend.outcomes.append(outcome)
            return outcome

        async def aclose(self) -> None:
            self.backend.closed.append(self.workflow.name)


class Talker(Executor):
    @handler
    async def on(self, text: str, ctx: WorkflowContext[str]) -> None:
        await ctx.add_event(Note(run_id=ctx.run_id, superstep=ctx.superstep, text="one"))
        await ctx.add_event(Note(run_id=ctx.run_id, superstep=ctx.superstep, text="two"))
        await ctx.set_state("seen", text)
        await ctx.set_executor_state("count", 1)
        await ctx.send_message(text + "!")


def talk_chain() -> Workflow:
    @executor(id="shout")
    async def shout(text: str) -> str:
        return text.upper()

    talker = Talker("talk")
    return WorkflowBuilder(start=talker, name="talk").add_edge(talker, shout).build()


async def test_requests_and_outcomes_are_plain_data_naming_the_executor() -> None:
    backend = Recording()
    result = await talk_chain().run("hi", backend=backend)
    assert result.outputs == ["HI!"]
    assert backend.opened == ["talk"]
    assert backend.closed == ["talk"]
    first, second = backend.requests
    assert first.executor_id == "talk"
    assert first.superstep == 1
    assert first.attempt == 1
    assert first.deliveries == ((None, "hi", False),)
    assert second.executor_id == "shout"
    assert second.superstep == 2
    assert second.deliveries == (("talk", "hi!", False),)
    assert second.state == {"seen": "hi"}  # committed before superstep 2
    assert first.run_id == second.run_id == result.run_id
    out = backend.outcomes[0]
    assert out.sends == ((None, "hi!"),)
    assert dict(out.state_writes) == {"seen": "hi"}
    assert dict(out.local_writes) == {"count": 1}
    assert [e.text for e in out.events if isinstance(e, Note)] == ["one", "two"]
    with pytest.raises(AttributeError):
        first.attempt = 2  # type: ignore[misc]


async def test_events_reach_the_stream_in_order_through_the_channel() -> None:
    backend = Recording()
    seen = [e async for e in talk_chain().run_stream("hi", backend=backend)]
    kinds = [type(e).__name__ for e in seen]
    i = kinds.index("Note")
    assert kinds[i - 1 : i + 3] == ["ExecutorInvoked", "Note", "Note", "ExecutorCompleted"]
    assert [e.text for e in seen if isinstance(e, Note)] == ["one", "two"]
    assert len(backend.requests) == 2


async def test_retries_are_the_runners_and_the_attempt_is_counted() -> None:
    calls = {"n": 0}

    @executor(id="flaky")
    async def flaky(x: int) -> int:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("try again")
        return x

    wf = (
        WorkflowBuilder(start=flaky, name="flaky")
        .add_executor(flaky, retry=RetryPolicy(max_attempts=3, initial_delay=0.0))
        .build()
    )
    backend = Recording()
    result = await wf.run(7, backend=backend)
    assert result.outputs == [7]
    assert [r.attempt for r in backend.requests] == [1, 2, 3]
    assert len(backend.outcomes) == 1  # failed attempts return no outcome


async def test_routing_runs_in_the_runner_not_in_the_backend() -> None:
    @executor(id="src")
    async def src(x: int) -> int:
        return x

    @executor(id="even")
    async def even(x: int) -> str:
        return f"even {x}"

    @executor(id="odd")
    async def odd(x: int) -> str:
        return f"odd {x}"

    wf = (
        WorkflowBuilder(start=src, name="route")
        .add_edge(src, even, condition=lambda x: x % 2 == 0)
        .add_edge(src, odd, condition=lambda x: x % 2 == 1)
        .build()
    )
    backend = Recording()
    result = await wf.run(3, backend=backend)
    assert result.outputs == ["odd 3"]
    assert backend.outcomes[0].sends == ((None, 3),)  # unrouted: the backend never decides
    assert [r.executor_id for r in backend.requests] == ["src", "odd"]


class Asker(Executor):
    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> None:
        await ctx.request_info({"q": x}, response_type=int)

    @response_handler
    async def answer(self, q: dict[str, int], a: int, ctx: WorkflowContext[int]) -> None:
        await ctx.yield_output(q["q"] + a)


async def test_resume_takes_a_backend_and_replies_are_deliveries() -> None:
    wf = WorkflowBuilder(start=Asker("ask"), name="ask").build()
    first = Recording()
    paused = await wf.run(1, backend=first)
    assert paused.status is RunStatus.AWAITING_INPUT
    rid = paused.pending_requests[0].request_id
    second = Recording()
    done = await wf.resume(paused.run_id, responses={rid: 41}, backend=second)
    assert done.outputs == [42]
    (request,) = second.requests
    (delivery,) = request.deliveries
    assert delivery[0] is None
    assert delivery[2] is True
    assert delivery[1].request_id == rid
    assert delivery[1].response == 41


async def test_resume_stream_takes_a_backend() -> None:
    wf = WorkflowBuilder(start=Asker("ask"), name="ask").build()
    paused = await wf.run(1)
    rid = paused.pending_requests[0].request_id
    backend = Recording()
    seen = [e async for e in wf.resume_stream(paused.run_id, responses={rid: 1}, backend=backend)]
    assert isinstance(seen[-1], events.RunFinished)
    assert seen[-1].status is RunStatus.COMPLETED
    assert [r.executor_id for r in backend.requests] == ["ask"]


async def test_a_nested_workflow_runs_its_child_on_the_same_backend() -> None:
    child = talk_chain()
    sub = WorkflowExecutor(child, id="sub")
    wf = WorkflowBuilder(start=sub, name="parent").build()
    backend = Recording()
    result = await wf.run("yo", backend=backend)
    assert result.outputs == ["YO!"]
    assert backend.opened == ["parent", "talk"]
    assert [r.executor_id for r in backend.requests] == ["sub", "talk", "shout"]
    notes = [e for e in result.events if isinstance(e, Note)]
    assert [n.text for n in notes] == ["one", "two"]


async def test_local_backend_is_the_default_and_explicit() -> None:
    wf = talk_chain()
    assert (await wf.run("a", backend=LocalBackend())).outputs == ["A!"]
    assert (await wf.run("a")).outputs == ["A!"]
    assert repr(LocalBackend()) == "LocalBackend()"


# ------------------------------------------------------------------------------- Resources


def test_resources_are_frozen_hashable_and_stored_with_the_node() -> None:
    need = Resources(num_cpus=2, num_gpus=0.5, memory=2**30, custom={"llm_slot": 1})
    assert need == Resources(num_cpus=2, num_gpus=0.5, memory=2**30, custom={"llm_slot": 1})
    assert hash(need) == hash(Resources(2, 0.5, 2**30, {"llm_slot": 1}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        need.num_cpus = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        need.custom["llm_slot"] = 2  # type: ignore[index]
    wf = talk_chain()
    built = (
        WorkflowBuilder(start=wf.executors["talk"], name="r")
        .add_executor(wf.executors["talk"], resources=need)
        .build()
    )
    assert resources_for(built, "talk") is need
    assert resources_for(wf, "shout") == Resources()
    with pytest.raises(KeyError, match="nope"):
        resources_for(wf, "nope")


async def test_local_backend_ignores_resources() -> None:
    @executor(id="big")
    async def big(x: int) -> int:
        return x * 2

    wf = (
        WorkflowBuilder(start=big, name="big")
        .add_executor(big, resources=Resources(num_gpus=8, custom={"tpu": 4}))
        .build()
    )
    assert (await wf.run(2)).outputs == [4]


@pytest.mark.parametrize(
    ("kwargs", "culprit"),
    [
        ({"num_cpus": -1}, "num_cpus"),
        ({"num_gpus": float("nan")}, "num_gpus"),
        ({"num_cpus": "2"}, "num_cpus"),
        ({"num_cpus": True}, "num_cpus"),
        ({"memory": 1.5}, "memory"),
        ({"custom": {"": 1}}, "custom"),
        ({"custom": {"slot": -2}}, "slot"),
        ({"custom": [("slot", 1)]}, "custom"),
    ],
)
def test_bad_resources_are_refused_naming_the_field(kwargs: dict[str, Any], culprit: str) -> None:
    with pytest.raises(GraphValidationError, match=culprit):
        Resources(**kwargs)


def test_the_builder_refuses_something_that_is_not_resources() -> None:
    @executor(id="x")
    async def x(v: int) -> int:
        return v

    with pytest.raises(GraphValidationError, match=r"resources must be a workflow\.Resources"):
        WorkflowBuilder(start=x).add_executor(x, resources={"num_cpus": 1}).build()  # type: ignore[arg-type]
