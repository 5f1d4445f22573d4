"""Each run's OpenTelemetry spans, kept in memory by the studio for its "Trace" view.

The engine traces runs with OpenTelemetry (``workflow._telemetry``): ``workflow.run`` >
``workflow.superstep`` > ``executor.process`` > ``chat {model}`` (with ``gen_ai.usage.*``
token counts) / ``execute_tool {name}``, and ``checkpoint.save``. The studio gives each served
workflow one more observer, an ``OpenTelemetryObserver`` on a private SDK tracer provider
whose span processor files every finished span under its run: by ``ledgerflow.run.id`` when
the span carries it, else by its trace (a run's spans share the trace its ``workflow.run`` span
started). These are the engine's real spans, not a reconstruction from events; the global
tracer provider, if the application configured one, is left alone.

Kept in memory only (the newest ``max_runs`` runs, ``max_spans`` spans each): a run that ran
in an earlier studio process has no trace here, and the page says so.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from workflow._observer import Observer
from workflow._workflow import Workflow

__all__ = ("RunTraces",)

_KEEP = ("ledgerflow.", "gen_ai.", "error.type")


class RunTraces:
    """Spans by run id, and the observer that produces them (``attach`` adds it to a workflow)."""

    def __init__(self, max_runs: int = 200, max_spans: int = 5000) -> None:
        from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

        from workflow._telemetry import OpenTelemetryObserver

        self.max_runs = max_runs
        self.max_spans = max_spans
        self._lock = threading.Lock()
        self._runs: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._by_trace: dict[int, str] = {}
        store = self

        class _Processor(SpanProcessor):
            def on_start(self, span: Any, parent_context: Any = None) -> None:
                run_id = (span.attributes or {}).get("ledgerflow.run.id")
                if span.name == "workflow.run" and isinstance(run_id, str):
                    store._started(span.context.trace_id, run_id)

            def on_end(self, span: Any) -> None:
                store._ended(span)

        provider = TracerProvider()
        provider.add_span_processor(_Processor())
        self.provider = provider
        self.observer: Observer = OpenTelemetryObserver(tracer_provider=provider)

    def attach(self, wf: Workflow) -> Workflow:
        """Trace ``wf``'s runs here too (its own observers stay)."""
        if self.observer not in wf.observers:
            wf.observers = (*wf.observers, self.observer)
        return wf

    def _started(self, trace_id: int, run_id: str) -> None:
        with self._lock:
            self._by_trace[trace_id] = run_id
            self._runs.setdefault(run_id, [])
            self._runs.move_to_end(run_id)
            while len(self._runs) > self.max_runs:
                gone, _ = self._runs.popitem(last=False)
                for trace, owner in list(self._by_trace.items()):
                    if owner == gone:
                        del self._by_trace[trace]

    def _ended(self, span: Any) -> None:
        attributes = dict(span.attributes or {})
        run_id = attributes.get("ledgerflow.run.id")
        with self._lock:
            if not isinstance(run_id, str):
                run_id = self._by_trace.get(span.context.trace_id)
            if run_id is None or run_id not in self._runs:
                return
            spans = self._runs[run_id]
            if len(spans) >= self.max_spans:
                return
            parent = span.parent.span_id if span.parent is not None else None
            spans.append(
                {
                    "span_id": f"{span.context.span_id:016x}",
                    "parent_id": f"{parent:016x}" if parent else None,
                    "name": span.name,
                    "start_ns": span.start_time,
                    "end_ns": span.end_time,
                    "duration_ms": round((span.end_time - span.start_time) / 1e6, 3),
                    "status": span.status.status_code.name.lower(),
                    "attributes": {
                        k: list(v) if isinstance(v, tuple) else v
                        for k, v in attributes.items()
                        if k.startswith(_KEEP)
                    },
                }
            )

    def trace(self, run_id: str) -> dict[str, Any]:
        """The run's spans (by start time) and its model calls' token totals."""
        with self._lock:
            spans = sorted(self._runs.get(run_id, ()), key=lambda s: (s["start_ns"], s["name"]))
            recorded = run_id in self._runs
        calls = [s for s in spans if "gen_ai.request.model" in s["attributes"]]
        runs = [s for s in spans if s["name"] == "workflow.run"]
        # whole when its first execution ran here (a first run span that is not a resume)
        whole = bool(runs) and runs[0]["attributes"].get("ledgerflow.run.resumed") is False
        return {
            "run_id": run_id,
            "source": "opentelemetry",
            "recorded": recorded,
            "complete": whole,
            "spans": spans,
            "model_calls": len(calls),
            "input_tokens": sum(s["attributes"].get("gen_ai.usage.input_tokens", 0) for s in calls),
            "output_tokens": sum(
                s["attributes"].get("gen_ai.usage.output_tokens", 0) for s in calls
            ),
        }
