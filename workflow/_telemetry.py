"""OpenTelemetry observer: spans and metrics for runs, supersteps, executors, checkpoints.

Spans (names are stable; tests assert them): ``workflow.run`` > ``workflow.superstep`` >
``executor.process`` > ``chat {model}`` / ``execute_tool {name}``, and ``checkpoint.save``
under the run. A resumed run links to the trace context stored in its checkpoint. Metrics:
``ledgerflow.executor.duration`` (s), ``ledgerflow.messages``, ``ledgerflow.tokens``,
``ledgerflow.checkpoint.duration`` (s) and ``ledgerflow.checkpoint.size`` (bytes).

Free when unused: ``auto_observer`` only looks for a configured tracer provider if the
application already imported ``opentelemetry.trace`` (never the SDK), and the helpers agents
call (``model_call_span``, ``tool_call_span``, ``record_tokens``) return a shared no-op when
no observer is active. Attributes carry ids, kinds, type and model names and counts only;
error texts are passed through ``redact`` first.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._observer import Observer

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

__all__ = (
    "ModelCall",
    "OpenTelemetryObserver",
    "auto_observer",
    "model_call_span",
    "record_tokens",
    "redact",
    "tool_call_span",
)

SCOPE = "ledgerflow"
_SECRETS = (
    (re.compile(
        r"(?i)\b(api[_-]?key|token|secret|password|passwd|authorization)(\s*[=:]\s*)"
        r"(?:bearer\s+)?\S+"
    ), r"\1\2[REDACTED]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [REDACTED]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), "sk-[REDACTED]"),
)  # fmt: skip

# The observer of the executor (or run) being traced in this task, for the agent helpers.
_ACTIVE: ContextVar[OpenTelemetryObserver | None] = ContextVar("ledgerflow_otel", default=None)
_EXECUTOR: ContextVar[_ExecutorScope | None] = ContextVar("ledgerflow_otel_exec", default=None)
_CALL: ContextVar[ModelCall | None] = ContextVar("ledgerflow_otel_call", default=None)


class _ExecutorScope:
    """The executor being traced in this task: its id, and its error type once it failed."""

    __slots__ = ("error_type", "executor_id")

    def __init__(self, executor_id: str) -> None:
        self.executor_id = executor_id
        self.error_type: str | None = None


def redact(text: str) -> str:
    """Blank out things that look like credentials before text goes into telemetry."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class OpenTelemetryObserver(Observer):
    """Emits the run's spans and metrics through OpenTelemetry's API.

    Args:
        tracer_provider: Where spans go; the global provider when ``None``.
        meter_provider: Where metrics go; the global provider when ``None``.

    One observer serves any number of concurrent runs: per-run state lives in the span
    context (contextvars), never on the observer.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        tracers = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        meters = meter_provider if meter_provider is not None else metrics.get_meter_provider()
        self.tracer = tracers.get_tracer(SCOPE)
        meter = meters.get_meter(SCOPE)
        self._duration = meter.create_histogram(
            "ledgerflow.executor.duration",
            unit="s",
            description="Time an executor spent per superstep",
        )
        self._messages = meter.create_counter(
            "ledgerflow.messages",
            unit="{message}",
            description="Messages delivered between executors",
        )
        self._tokens = meter.create_counter(
            "ledgerflow.tokens", unit="{token}", description="Model tokens used, by type and model"
        )
        self._ckpt_duration = meter.create_histogram(
            "ledgerflow.checkpoint.duration", unit="s", description="Time to commit a checkpoint"
        )
        self._ckpt_size = meter.create_histogram(
            "ledgerflow.checkpoint.size", unit="By", description="Size of a committed checkpoint"
        )
        self._pairs: dict[tuple[str, str], dict[str, str]] = {}

    # -- spans around the run's structure ------------------------------------------------
    def run(
        self, *, run_id: str, workflow_name: str, resumed: bool, link: dict[str, str] | None
    ) -> AbstractContextManager[Any]:
        links = []
        if link:
            context = self._trace.get_current_span(
                self._propagator.extract(link)
            ).get_span_context()
            if context.is_valid:
                links.append(self._trace.Link(context, {"ledgerflow.link": "resumed_from"}))
        span = self.tracer.start_span(
            "workflow.run",
            attributes={
                "ledgerflow.workflow.name": workflow_name,
                "ledgerflow.run.id": run_id,
                "ledgerflow.run.resumed": resumed,
            },
            links=links,
        )
        return self._current(span)

    def superstep(
        self, *, run_id: str, superstep: int, executor_ids: tuple[str, ...]
    ) -> AbstractContextManager[Any]:
        span = self.tracer.start_span(
            "workflow.superstep",
            attributes={
                "ledgerflow.run.id": run_id,
                "ledgerflow.superstep.index": superstep,
                "ledgerflow.superstep.executor_ids": executor_ids,
            },
        )
        return self._current(span)

    def executor(
        self,
        *,
        run_id: str,
        superstep: int,
        executor_id: str,
        kind: str,
        message_types: tuple[str, ...],
    ) -> AbstractContextManager[Any]:
        span = self.tracer.start_span(
            "executor.process",
            attributes={
                "ledgerflow.run.id": run_id,
                "ledgerflow.superstep.index": superstep,
                "ledgerflow.executor.id": executor_id,
                "ledgerflow.executor.kind": kind,
                "ledgerflow.message.types": message_types,
            },
        )
        return self._timed(span, executor_id, kind)

    @contextmanager
    def _current(self, span: Span) -> Iterator[Span]:
        token = _ACTIVE.set(self)
        try:
            with self._trace.use_span(
                span, end_on_exit=True, record_exception=False, set_status_on_exception=False
            ):
                yield span
        finally:
            _ACTIVE.reset(token)

    @contextmanager
    def _timed(self, span: Span, executor_id: str, kind: str) -> Iterator[Span]:
        started = time.perf_counter()
        scope = _ExecutorScope(executor_id)
        token = _EXECUTOR.set(scope)
        try:
            with self._current(span):
                yield span
        finally:
            _EXECUTOR.reset(token)
            attributes = {"ledgerflow.executor.id": executor_id, "ledgerflow.executor.kind": kind}
            if scope.error_type is not None:
                attributes["error.type"] = scope.error_type
            self._duration.record(time.perf_counter() - started, attributes)

    # -- point events ----------------------------------------------------------------------
    def executor_failed(self, *, executor_id: str, error: BaseException) -> None:
        scope = _EXECUTOR.get()
        if scope is not None and scope.executor_id == executor_id:
            scope.error_type = type(error).__qualname__
        fail_span(self._trace.get_current_span(), error)

    def message_sent(self, *, source_id: str, target_id: str) -> None:
        pair = (source_id, target_id)
        attributes = self._pairs.get(pair)
        if attributes is None:
            attributes = {"ledgerflow.source.id": source_id, "ledgerflow.target.id": target_id}
            self._pairs[pair] = attributes
        self._messages.add(1, attributes)

    def checkpoint_saved(
        self, *, run_id: str, checkpoint_id: str, duration: float, size_bytes: int | None = None
    ) -> None:
        """Record the commit as a span that ended now and began ``duration`` seconds ago."""
        end = time.time_ns()
        attributes: dict[str, Any] = {
            "ledgerflow.run.id": run_id,
            "ledgerflow.checkpoint.id": checkpoint_id,
        }
        if size_bytes is not None:
            attributes["ledgerflow.checkpoint.size"] = size_bytes
        span = self.tracer.start_span(
            "checkpoint.save", attributes=attributes, start_time=end - int(duration * 1e9)
        )
        span.end(end_time=end)
        self._ckpt_duration.record(duration, {"ledgerflow.run.id": run_id})
        if size_bytes is not None:
            self._ckpt_size.record(size_bytes, {"ledgerflow.run.id": run_id})

    def run_finished(self, *, run_id: str, status: str) -> None:
        span = self._trace.get_current_span()
        span.set_attribute("ledgerflow.run.status", status)
        if status in ("failed", "max_supersteps"):
            span.set_status(self._trace.StatusCode.ERROR, f"run ended {status}")

    def trace_context(self) -> dict[str, str] | None:
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier)
        return carrier or None

    # -- model and tool calls (agents call the module-level helpers) ------------------------
    def model_call(self, model: str, operation: str) -> AbstractContextManager[ModelCall]:
        span = self.tracer.start_span(
            f"{operation} {model}",
            kind=self._trace.SpanKind.CLIENT,
            attributes={"gen_ai.operation.name": operation, "gen_ai.request.model": model},
        )
        return self._call(span, ModelCall(self, span, model))

    def tool_call(self, name: str) -> AbstractContextManager[ModelCall]:
        span = self.tracer.start_span(
            f"execute_tool {name}",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name},
        )
        return self._call(span, ModelCall(self, span, None))

    @contextmanager
    def _call(self, span: Span, call: ModelCall) -> Iterator[ModelCall]:
        token = _CALL.set(call if call.model is not None else _CALL.get())
        try:
            with self._trace.use_span(
                span, end_on_exit=True, record_exception=False, set_status_on_exception=False
            ):
                try:
                    yield call
                except Exception as exc:
                    fail_span(span, exc)
                    raise
        finally:
            _CALL.reset(token)

    def add_tokens(self, input_tokens: int, output_tokens: int, model: str) -> None:
        base = {"gen_ai.request.model": model}
        scope = _EXECUTOR.get()
        if scope is not None:
            base["ledgerflow.executor.id"] = scope.executor_id
        if input_tokens:
            self._tokens.add(input_tokens, {**base, "gen_ai.token.type": "input"})
        if output_tokens:
            self._tokens.add(output_tokens, {**base, "gen_ai.token.type": "output"})


class ModelCall:
    """Handle of a model or tool call span; a shared instance does nothing when untraced."""

    __slots__ = ("input_tokens", "model", "observer", "output_tokens", "span")

    def __init__(
        self, observer: OpenTelemetryObserver | None, span: Any, model: str | None
    ) -> None:
        self.observer = observer
        self.span = span
        self.model = model
        self.input_tokens = 0
        self.output_tokens = 0

    def __enter__(self) -> ModelCall:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def record_tokens(self, input: int, output: int) -> None:
        """Add this call's token usage (same as ``record_tokens(input, output, model)``)."""
        if self.observer is not None:
            record_tokens(input, output, self.model or "unknown")

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        """Annotate the span (e.g. ``gen_ai.response.model``); never pass prompts or keys."""
        if self.span is not None:
            self.span.set_attribute(key, value)


_NULL_CALL = ModelCall(None, None, None)


def _observer() -> OpenTelemetryObserver | None:
    found = _ACTIVE.get()
    if found is not None or "opentelemetry.trace" not in sys.modules:
        return found
    auto = auto_observer()
    return auto if isinstance(auto, OpenTelemetryObserver) else None


def model_call_span(model: str, operation: str = "chat") -> AbstractContextManager[ModelCall]:
    """Wrap one model request in a GenAI span (``gen_ai.operation.name``, ``...request.model``).

    Use as ``with model_call_span("gpt-4o") as call: ...; call.record_tokens(i, o)``. Costs a
    context-variable lookup when nothing is traced.
    """
    observer = _observer()
    return _NULL_CALL if observer is None else observer.model_call(model, operation)


def tool_call_span(name: str) -> AbstractContextManager[ModelCall]:
    """Wrap one tool invocation in an ``execute_tool {name}`` span; free when untraced."""
    observer = _observer()
    return _NULL_CALL if observer is None else observer.tool_call(name)


def record_tokens(input: int, output: int, model: str) -> None:
    """Count tokens (``ledgerflow.tokens``) and add them to the enclosing model call span."""
    observer = _observer()
    if observer is None:
        return
    observer.add_tokens(input, output, model)
    call = _CALL.get()
    if call is not None and call.model == model and call.span is not None:
        call.input_tokens += input
        call.output_tokens += output
        call.span.set_attribute("gen_ai.usage.input_tokens", call.input_tokens)
        call.span.set_attribute("gen_ai.usage.output_tokens", call.output_tokens)


def fail_span(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed with a redacted exception event (no raw message escapes)."""
    from opentelemetry.trace import StatusCode

    kind = type(error).__qualname__
    message = redact(str(error))
    span.set_attribute("error.type", kind)
    span.add_event(
        "exception",
        {
            "exception.type": f"{type(error).__module__}.{kind}",
            "exception.message": message,
            "exception.stacktrace": redact(
                "".join(traceback.format_exception(type(error), error, error.__traceback__))
            ),
        },
    )
    span.set_status(StatusCode.ERROR, f"{kind}: {message}")


_cache: tuple[object, OpenTelemetryObserver] | None = None
_env_provider: bool | None = None
_UNKNOWN = object()


def auto_observer() -> Observer | None:
    """An OpenTelemetry observer when the application configured a tracer provider.

    Called once per run, so it is cheap: ``None`` at once unless ``opentelemetry.trace`` is
    already imported; then ``None`` unless the global provider is a real one (not the
    default proxy or no-op). The observer is reused while the provider stays the same.
    """
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None
    # get_tracer_provider() reads os.environ on every call (about 1 us); the global it
    # returns can be set only once, so peek at it and read the environment once.
    provider = getattr(trace, "_TRACER_PROVIDER", _UNKNOWN)
    if provider is None:
        global _env_provider
        if _env_provider is None:
            _env_provider = "OTEL_PYTHON_TRACER_PROVIDER" in os.environ
        if not _env_provider:
            return None
        provider = trace.get_tracer_provider()
    elif provider is _UNKNOWN:
        provider = trace.get_tracer_provider()
    cached = _cache
    if cached is not None and cached[0] is provider:
        return cached[1]
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return _remember(provider)


def _remember(provider: Any) -> OpenTelemetryObserver:
    global _cache
    observer = OpenTelemetryObserver(tracer_provider=provider)
    _cache = (provider, observer)
    return observer
