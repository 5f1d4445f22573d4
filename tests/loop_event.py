"""An event that a test and its handlers can share whichever thread's loop each runs on.

On the thread test backend (``LEDGERFLOW_TEST_BACKEND=threads``) handlers run on worker
threads' event loops; an ``anyio.Event`` belongs to the loop that first waits on it, so a
gate shared between a test and a handler (or two handlers) must be one of these instead.
"""

from __future__ import annotations

import threading

import anyio
import anyio.lowlevel

from workflow.authoring import call_soon


class LoopEvent:
    """``set`` from any thread; ``wait`` on any loop (each waiter is woken on its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._waiters: list[tuple[anyio.lowlevel.EventLoopToken, anyio.Event]] = []

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        with self._lock:
            self._set = True
            waiters, self._waiters = self._waiters, []
        for token, event in waiters:
            call_soon(token, event.set)

    async def wait(self) -> None:
        with self._lock:
            if self._set:
                event = None
            else:
                event = anyio.Event()
                self._waiters.append((anyio.lowlevel.current_token(), event))
        if event is None:
            await anyio.lowlevel.checkpoint()
        else:
            await event.wait()
