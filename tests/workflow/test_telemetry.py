"""OpenTelemetry observer: span names, nesting across tasks, attributes, errors, metrics.

Providers are passed explicitly (the global one can be set only once per process); the one
test of the global path runs in a subprocess.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from builders import WorkflowBuilder
from workflow import (
    Executor,
    RunStatus,
    Workflow,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)
from workflow._telemetry import (
    OpenTelemetryObserver,
    auto_observer,
    model_call_span,
    record_tokens,
    redact,
    tool_call_span,
)

pytestmark = pytest.mark.anyio


class Telemetry:
    """An observer wired to in-memory span and metric exporters."""

    def __init__(self) -> None:
        self.spans_out = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.observer = OpenTelemetryObserver(
            tracer_provider=tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        found = list(self.spans_out.get_finished_spans())
        return [s for s in found if name is None or s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.spans(name)
        assert len(found) == 1, [s.name for s in self.spans()]
        return found[0]

    def points(self, metric: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for m in scope.metrics
            if m.name == metric
            for point in m.data.data_points
        ]


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.meter_provider.shutdown()


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def fan_out(observer: OpenTelemetryObserver, n: int = 4, fail: str | None = None) -> Workflow:
    @executor(id="source")
    async def source(x: int) -> int:
        return x

    def worker(i: int) -> Executor:
        async def work(x: int) -> int:
            await anyio.sleep(0.01 * (n - i))  # finish out of order, all concurrently
            if f"w{i}" == fail:
                raise ValueError("token=abc123 leaked? no: api_key=sk-secretsecret")
            return x + i

        return executor(id=f"w{i}")(work)

    @executor(id="total")
    async def total(xs: list[int]) -> int:
        return sum(xs)

    workers = [worker(i) for i in range(n)]
    return (
        WorkflowBuilder(start=source, name="fan", observers=[observer])
        .add_fan_out_edges(source, workers)
        .add_fan_in_edges(workers, total)
        .build()
    )


async def test_span_tree_across_concurrent_tasks(otel: Telemetry, caplog: Any) -> None:
    caplog.set_level(logging.ERROR)
    result = await fan_out(otel.observer).run(1, run_id="r1")
    assert result.status is RunStatus.COMPLETED
    run = otel.one("workflow.run")
    assert run.parent is None
    assert run.attributes == {
        "ledgerflow.workflow.name": "fan",
        "ledgerflow.run.id": "r1",
        "ledgerflow.run.resumed": False,
        "ledgerflow.run.status": "completed",
    }
    steps = otel.spans("workflow.superstep")
    assert [s.attributes["ledgerflow.superstep.index"] for s in steps] == [1, 2, 3]
    assert all(parent_id(s) == run.context.span_id for s in steps)
    assert steps[1].attributes["ledgerflow.superstep.executor_ids"] == ("w0", "w1", "w2", "w3")
    by_step = {s.attributes["ledgerflow.superstep.index"]: s.context.span_id for s in steps}
    execs = otel.spans("executor.process")
    assert sorted(str(s.attributes["ledgerflow.executor.id"]) for s in execs) == [
        "source", "total", "w0", "w1", "w2", "w3",
    ]  # fmt: skip
    for span in execs:
        step = span.attributes["ledgerflow.superstep.index"]
        assert parent_id(span) == by_step[step], span.attributes
        assert span.context.trace_id == run.context.trace_id
    w2 = next(s for s in execs if s.attributes["ledgerflow.executor.id"] == "w2")
    assert w2.attributes["ledgerflow.executor.kind"] == "function"
    assert w2.attributes["ledgerflow.message.types"] == ("int",)
    total = next(s for s in execs if s.attributes["ledgerflow.executor.id"] == "total")
    assert total.attributes["ledgerflow.message.types"] == ("list",)
    overlapping = [s for s in execs if s.attributes["ledgerflow.superstep.index"] == 2]
    assert max(s.start_time for s in overlapping) < min(s.end_time for s in overlapping)
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]


async def test_bounded_concurrency_and_streaming_keep_the_tree(otel: Telemetry) -> None:
    wf = fan_out(otel.observer)
    limited = Workflow(wf.graph, max_concurrency=2, observers=[otel.observer])
    await limited.run(1)
    async for _ in wf.run_stream(1):
        pass
    runs = otel.spans("workflow.run")
    assert len(runs) == 2
    steps = {s.context.span_id: s for s in otel.spans("workflow.superstep")}
    for span in otel.spans("executor.process"):
        step = steps[parent_id(span)]  # type: ignore[index]
        assert (
            step.attributes["ledgerflow.superstep.index"]
            == span.attributes["ledgerflow.superstep.index"]
        )
        assert parent_id(step) in {r.context.span_id for r in runs}


async def test_leaving_a_stream_early_ends_every_span(otel: Telemetry, caplog: Any) -> None:
    caplog.set_level(logging.ERROR)
    async with aclosing(fan_out(otel.observer).run_stream(1)) as stream:
        async for _ in stream:
            break
    run = otel.one("workflow.run")
    assert run.attributes["ledgerflow.run.status"] == "cancelled"
    assert run.status.status_code is StatusCode.UNSET
    assert not [r for r in caplog.records if "detach" in r.getMessage().lower()]


async def test_failure_marks_executor_and_run(otel: Telemetry) -> None:
    result = await fan_out(otel.observer, fail="w1").run(1, run_id="bad")
    assert result.status is RunStatus.FAILED
    failed = [s for s in otel.spans("executor.process") if s.status.status_code is StatusCode.ERROR]
    assert [s.attributes["ledgerflow.executor.id"] for s in failed] == ["w1"]
    span = failed[0]
    assert span.attributes["error.type"] == "ValueError"
    assert span.status.description is not None
    assert span.status.description.startswith("ValueError: token=[REDACTED]")
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "builtins.ValueError"
    message = str(event.attributes["exception.message"])
    assert "abc123" not in message
    assert "sk-secret" not in message
    assert "sk-secret" not in str(event.attributes["exception.stacktrace"])
    run = otel.one("workflow.run")
    assert run.status.status_code is StatusCode.ERROR
    assert run.attributes["ledgerflow.run.status"] == "failed"
    durations = otel.points("ledgerflow.executor.duration")
    bad = [p for p in durations if p.attributes.get("error.type") == "ValueError"]
    assert [p.attributes["ledgerflow.executor.id"] for p in bad] == ["w1"]


async def test_metrics(otel: Telemetry) -> None:
    await fan_out(otel.observer).run(1)
    durations = otel.points("ledgerflow.executor.duration")
    assert {p.attributes["ledgerflow.executor.id"]: p.count for p in durations} == {
        "source": 1, "w0": 1, "w1": 1, "w2": 1, "w3": 1, "total": 1,
    }  # fmt: skip
    w0 = next(p for p in durations if p.attributes["ledgerflow.executor.id"] == "w0")
    assert w0.sum >= 0.035  # w0 sleeps 0.04 s
    messages = otel.points("ledgerflow.messages")
    pairs = {
        (p.attributes["ledgerflow.source.id"], p.attributes["ledgerflow.target.id"]): p.value
        for p in messages
    }
    assert pairs == {("source", f"w{i}"): 1 for i in range(4)}  # fan-in is not a delivery yet


async def test_model_and_tool_spans_inside_an_executor(otel: Telemetry) -> None:
    class Agentish(Executor):
        kind = "agent"

        @handler
        async def reply(self, text: str, ctx: WorkflowContext[str]) -> str:
            with model_call_span("gpt-test") as call:
                with tool_call_span("lookup"):
                    pass
                record_tokens(10, 3, "gpt-test")
                call.record_tokens(2, 1)
                call.set_attribute("gen_ai.response.model", "gpt-test-001")
            return text

    wf = WorkflowBuilder(start=Agentish("writer"), observers=[otel.observer]).build()
    await wf.run("hi")
    exec_span = otel.one("executor.process")
    model = otel.one("chat gpt-test")
    tool = otel.one("execute_tool lookup")
    assert parent_id(model) == exec_span.context.span_id
    assert parent_id(tool) == model.context.span_id
    assert model.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 4,
        "gen_ai.response.model": "gpt-test-001",
    }
    assert tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "lookup",
    }
    tokens = {p.attributes["gen_ai.token.type"]: p for p in otel.points("ledgerflow.tokens")}
    assert tokens["input"].value == 12
    assert tokens["output"].value == 4
    assert tokens["input"].attributes == {
        "gen_ai.request.model": "gpt-test",
        "ledgerflow.executor.id": "writer",
        "gen_ai.token.type": "input",
    }


async def test_model_call_failure_is_recorded(otel: Telemetry) -> None:
    class Failing(Executor):
        @handler
        async def reply(self, text: str) -> str:
            with model_call_span("gpt-test"):
                raise ConnectionError("Authorization: Bearer abc.def")

    wf = WorkflowBuilder(start=Failing("x"), observers=[otel.observer]).build()
    await wf.run("hi")
    model = otel.one("chat gpt-test")
    assert model.status.status_code is StatusCode.ERROR
    assert "abc.def" not in str(model.status.description)


def test_helpers_are_free_without_an_observer() -> None:
    first = model_call_span("m")
    assert first is model_call_span("other") is tool_call_span("t")  # one shared no-op
    with first as call:
        call.record_tokens(1, 2)
        call.set_attribute("k", "v")
    record_tokens(1, 2, "m")
    assert auto_observer() is None  # the API is imported, the provider is the default proxy


def test_checkpoint_saved_span_and_size(otel: Telemetry) -> None:
    with otel.observer.run(run_id="r", workflow_name="w", resumed=False, link=None):
        otel.observer.checkpoint_saved(
            run_id="r", checkpoint_id="c1", duration=0.25, size_bytes=2048
        )
        otel.observer.checkpoint_saved(run_id="r", checkpoint_id="c2", duration=0.001)
    run = otel.one("workflow.run")
    saves = otel.spans("checkpoint.save")
    assert [s.attributes["ledgerflow.checkpoint.id"] for s in saves] == ["c1", "c2"]
    assert all(parent_id(s) == run.context.span_id for s in saves)
    assert saves[0].end_time - saves[0].start_time == 250_000_000  # type: ignore[operator]
    assert saves[0].attributes["ledgerflow.checkpoint.size"] == 2048
    assert "ledgerflow.checkpoint.size" not in saves[1].attributes  # type: ignore[operator]
    (size,) = otel.points("ledgerflow.checkpoint.size")
    assert size.sum == 2048
    (duration,) = otel.points("ledgerflow.checkpoint.duration")
    assert duration.count == 2


def test_resumed_run_links_to_the_stored_context(otel: Telemetry) -> None:
    obs = otel.observer
    assert obs.trace_context() is None  # nothing current
    with obs.run(run_id="r", workflow_name="w", resumed=False, link=None):
        carrier = obs.trace_context()
    assert carrier is not None
    first = otel.one("workflow.run")
    assert carrier["traceparent"].split("-")[2] == format(first.context.span_id, "016x")
    with obs.run(run_id="r", workflow_name="w", resumed=True, link=carrier):
        pass
    with obs.run(run_id="r", workflow_name="w", resumed=True, link={"traceparent": "junk"}):
        pass
    _, resumed, junk = otel.spans("workflow.run")
    assert resumed.attributes["ledgerflow.run.resumed"] is True
    assert resumed.context.trace_id != first.context.trace_id  # a new trace, linked
    (link,) = resumed.links
    assert link.context.span_id == first.context.span_id
    assert link.context.trace_id == first.context.trace_id
    assert link.attributes == {"ledgerflow.link": "resumed_from"}
    assert list(junk.links) == []


async def test_human_input_resume_in_process(otel: Telemetry) -> None:
    class Ask(Executor):
        @handler
        async def ask(self, text: str, ctx: WorkflowContext[str]) -> None:
            await ctx.request_info(text, response_type=str)

        @response_handler
        async def answer(self, request: str, response: str, ctx: WorkflowContext[str]) -> None:
            await ctx.yield_output(response)

    wf = WorkflowBuilder(start=Ask("ask"), observers=[otel.observer]).build()
    paused = await wf.run("ok?", run_id="h")
    assert paused.status is RunStatus.AWAITING_INPUT
    done = await wf.resume("h", responses={paused.pending_requests[0].request_id: "yes"})
    assert done.outputs == ["yes"]
    first, second = otel.spans("workflow.run")
    assert first.attributes["ledgerflow.run.status"] == "awaiting_input"
    assert second.attributes["ledgerflow.run.resumed"] is True


def test_redact() -> None:
    assert redact("api_key=abc def") == "api_key=[REDACTED] def"
    assert redact("PASSWORD: hunter2") == "PASSWORD: [REDACTED]"
    assert redact("use sk-1234567890abcdef now") == "use sk-[REDACTED] now"
    assert redact("Authorization: Bearer x.y") == "Authorization: [REDACTED]"
    assert redact("header Bearer x.y-z") == "header Bearer [REDACTED]"
    assert redact("nothing to hide") == "nothing to hide"


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_no_opentelemetry_import_without_the_application() -> None:
    out = run_python(
        """
        import sys
        from builders import WorkflowBuilder
        from workflow import executor

        @executor
        async def one(x: int) -> int:
            return x

        WorkflowBuilder(start=one).build().run_sync(1)
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    assert out.strip() == "[]"


def test_global_provider_is_picked_up_automatically() -> None:
    out = run_python(
        """
        import sys
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from builders import WorkflowBuilder
        from workflow import executor
        from workflow._telemetry import auto_observer

        assert auto_observer() is None
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        assert auto_observer() is auto_observer()

        @executor
        async def one(x: int) -> int:
            return x

        WorkflowBuilder(start=one).build().run_sync(1)
        print(",".join(s.name for s in exporter.get_finished_spans()))
        """
    )
    assert out.strip() == "executor.process,workflow.superstep,workflow.run"


async def test_durable_run_saves_checkpoints_and_links_its_resume(otel: Telemetry) -> None:
    from workflow import InMemoryCheckpointStore

    class Ask(Executor):
        @handler
        async def ask(self, text: str, ctx: WorkflowContext[str]) -> None:
            await ctx.request_info(text, response_type=str)

        @response_handler
        async def answer(self, request: str, response: str, ctx: WorkflowContext[str]) -> None:
            await ctx.yield_output(response)

    store = InMemoryCheckpointStore()
    wf = WorkflowBuilder(
        start=Ask("ask"), observers=[otel.observer], checkpoint_store=store
    ).build()
    paused = await wf.run("ok?", run_id="d")
    done = await wf.resume("d", responses={paused.pending_requests[0].request_id: "yes"})
    assert done.outputs == ["yes"]
    first, second = otel.spans("workflow.run")
    saves = otel.spans("checkpoint.save")
    assert saves
    assert {parent_id(s) for s in saves} <= {first.context.span_id, second.context.span_id}
    assert [link.context.span_id for link in second.links] == [first.context.span_id]
    sizes = [s.attributes["ledgerflow.checkpoint.size"] for s in saves]  # type: ignore[index]
    assert all(isinstance(n, int) and n > 0 for n in sizes)
    assert sum(p.sum for p in otel.points("ledgerflow.checkpoint.size")) == store.bytes_written
    stored = await store.list_checkpoints("d")
    assert stored[0].trace is not None
    assert stored[0].trace["traceparent"].split("-")[1] == format(first.context.trace_id, "032x")


async def test_chat_agent_model_and_tool_calls_are_spans(otel: Telemetry) -> None:
    """A real ChatAgent in a workflow: one GenAI span per model request, one per tool call."""
    from executors import ChatAgent, ChatResponse, ScriptedChatClient, ToolCall, Usage, tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    client = ScriptedChatClient(
        [
            ChatResponse(
                tool_calls=(ToolCall(id="c1", name="add", arguments='{"a": 2, "b": 3}'),),
                usage=Usage(input_tokens=7, output_tokens=2),
            ),
            ChatResponse("5", usage=Usage(input_tokens=9, output_tokens=1)),
        ]
    )
    agent = ChatAgent("calc", "adds", "You add.", client, tools=[add])
    wf = WorkflowBuilder(start=agent, observers=[otel.observer]).build()
    result = await wf.run("2 + 3?")
    assert result.outputs[-1].text == "5"
    exec_span = otel.one("executor.process")
    models = otel.spans("chat scripted")
    assert len(models) == 2
    assert all(parent_id(m) == exec_span.context.span_id for m in models)
    assert [m.attributes["gen_ai.usage.input_tokens"] for m in models] == [7, 9]
    assert otel.one("execute_tool add").attributes["gen_ai.tool.name"] == "add"
    tokens = {p.attributes["gen_ai.token.type"]: p.value for p in otel.points("ledgerflow.tokens")}
    assert tokens == {"input": 16, "output": 3}
