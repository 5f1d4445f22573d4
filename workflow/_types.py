"""Typed ids and the run status enum shared by every layer."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

__all__ = ("CheckpointId", "ExecutorId", "RequestId", "RunId", "RunStatus")

ExecutorId = NewType("ExecutorId", str)
RunId = NewType("RunId", str)
CheckpointId = NewType("CheckpointId", str)
RequestId = NewType("RequestId", str)


class RunStatus(StrEnum):
    """How a run ended (or ``RUNNING`` while it has not)."""

    RUNNING = "running"
    COMPLETED = "completed"
    AWAITING_INPUT = "awaiting_input"
    FAILED = "failed"
    CANCELLED = "cancelled"
    MAX_SUPERSTEPS = "max_supersteps"
