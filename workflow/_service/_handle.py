"""A run executing in this server, and one SSE client's view of its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from workflow._result import PendingRequest
from workflow._workflow import Workflow

__all__ = ("SUBSCRIBER_BUFFER", "RunHandle", "Subscription")

SUBSCRIBER_BUFFER = 1024


@dataclass(eq=False)
class RunHandle:
    """A run executing in this server (one execution: a start, a resume or a fork)."""

    run_id: str
    workflow: Workflow
    outputs: list[Any]
    seq: int = 0
    superstep: int = 0
    status: str = "running"
    error: str | None = None
    pending: list[PendingRequest] = field(default_factory=list)
    recent: list[tuple[int, str]] = field(default_factory=list)  # not yet known to be logged
    scope: anyio.CancelScope | None = None
    done: anyio.Event = field(default_factory=anyio.Event)
    started: anyio.Event = field(default_factory=anyio.Event)
    saved: anyio.Event = field(default_factory=anyio.Event)  # its first checkpoint is stored
    failure: BaseException | None = None  # raised before the run started (lock, bad checkpoint)
    cancelled_by_user: bool = False


class Subscription:
    """One SSE client's bounded queue; falling behind closes it (the client reconnects)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.send: MemoryObjectSendStream[tuple[int, str]]
        self.receive: MemoryObjectReceiveStream[tuple[int, str]]
        self.send, self.receive = anyio.create_memory_object_stream[tuple[int, str]](
            SUBSCRIBER_BUFFER
        )
        self.cut_off = False

    def offer(self, item: tuple[int, str]) -> bool:
        try:
            self.send.send_nowait(item)
        except anyio.WouldBlock:
            self.cut_off = True
            self.send.close()
            return False
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True
