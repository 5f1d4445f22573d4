"""Streaming a run: the runner works in its own task, the consumer pulls events.

This is the one place that touches asyncio directly. A stream must survive its consumer
leaving early (``break`` out of ``async for``): Python then closes the generator from a
finalizer task, where a task group opened inside the generator could not be exited. So the
run lives in a task of its own, which the generator cancels on the way out; the run's own
cancellation handling records it as ``CANCELLED``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from .events import WorkflowEvent

__all__ = ("stream_events",)

STREAM_BUFFER = 256


async def stream_events(
    start: Callable[[Any], Awaitable[Any]],
) -> AsyncIterator[WorkflowEvent]:
    """Run ``start(send_stream)`` in a task and yield what it sends, with backpressure."""
    send, receive = anyio.create_memory_object_stream[WorkflowEvent](STREAM_BUFFER)

    async def drive() -> None:
        async with send:
            await start(send)

    task = asyncio.get_running_loop().create_task(drive())
    try:
        async with receive:
            async for event in receive:
                yield event
        await task  # re-raise anything the run itself raised
    finally:
        if not task.done():
            task.cancel()
            with anyio.CancelScope(shield=True):
                try:
                    await task
                except (asyncio.CancelledError, Exception):
                    pass
