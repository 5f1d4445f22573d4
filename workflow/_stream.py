"""Streaming a run: the run produces events in a task of its own, the consumer pulls them.

Two ways to consume, both returning the same events in the same order::

    async with wf.run_stream(x) as events:     # structured: preferred
        async for event in events: ...

    async for event in wf.run_stream(x): ...    # plain: still works

With ``async with``, the run is a child of an anyio task group opened in the consumer's own
task: leaving the block (``break``, an exception, cancellation) cancels the run, waits until
it has recorded ``CANCELLED`` and released its lock, and leaves no task behind.

The plain form has no block to own the run, and nothing runs in the consumer's task when it
leaves the ``async for`` early: a ``break`` just drops the iterator (an async generator is
closed later, by a finalizer in another task). So a task group or cancel scope the consumer's
task entered for the run, lazily on the first ``__anext__`` or inside a generator, would stay
on that task's scope stack after a ``break`` and corrupt it (tried: anyio on asyncio raises
"Attempted to exit a cancel scope that isn't the current tasks's current cancel scope" where
the consumer leaves its own scope; trio, "Cancel scope stack corrupted").

So the plain form runs in a task group the consumer never enters: one per event loop, in a
host task started the first time that loop runs a plain-form stream and kept until the loop
ends. anyio has no call that starts a task no task group owns in the running loop; its public
way in from another thread does: a helper thread calls ``anyio.from_thread.run`` with the
loop's token (a task on asyncio, a system task on trio) and stays parked until the loop ends.
One parked thread and one host task per loop are the plain form's whole extra cost; each run
is then handed to the host through a memory stream. ``async with`` needs neither.
Dropping the stream (leaving the ``async for`` early) cancels the run from ``__del__``;
``await stream.aclose()`` does it and waits. Either way the run's last events are discarded
once nobody reads them, so a full buffer can never hold the run up while it records its
cancellation.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.abc
import anyio.from_thread
import anyio.lowlevel

from ._errors import WorkflowError
from .events import RunFinished, WorkflowEvent

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ("STREAM_BUFFER", "EventStream")

STREAM_BUFFER = 256

Start = Callable[[Any], Awaitable[Any]]


class _Outlet:
    """The run's end of the stream: drops events once the consumer has left."""

    __slots__ = ("abandoned", "error", "stream")

    def __init__(self, stream: MemoryObjectSendStream[WorkflowEvent]) -> None:
        self.stream = stream
        self.abandoned = False
        self.error: Exception | None = None  # what the run raised, for the reader

    async def send(self, event: WorkflowEvent) -> None:
        if self.abandoned:
            return
        try:
            await self.stream.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.abandoned = True  # the consumer closed its end: the run goes on recording


class EventStream:
    """A run's events: an async iterator, and an async context manager that owns the run.

    Iterating it raises what the run raised (a ``TypeError`` for an input the start executor
    cannot accept, a ``CheckpointError`` from ``resume``...) after the events before it.
    """

    __slots__ = ("_done", "_finished", "_outlet", "_receive", "_scope", "_start", "_tg")

    def __init__(self, start: Start) -> None:
        self._start: Start | None = start
        self._outlet: _Outlet | None = None
        self._receive: MemoryObjectReceiveStream[WorkflowEvent] | None = None
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._finished = False

    # -- structured: async with ------------------------------------------------------------
    async def __aenter__(self) -> Self:
        produce = self._open()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        tg.start_soon(produce)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tg, self._tg = self._tg, None
        try:
            self._leave()
        finally:
            if tg is not None:
                # the run was cancelled (or is done): wait for it to record that and release
                # its lock; it cannot fail here (the producer keeps its errors for the reader)
                await tg.__aexit__(None, None, None)

    # -- iteration ---------------------------------------------------------------------------
    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> WorkflowEvent:
        if self._start is not None:  # the plain form: no block owns the run
            _detach(self._open())
        receive = self._receive
        if receive is None:
            raise StopAsyncIteration
        try:
            event = await receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._close_receive()
            error = None
            if self._outlet is not None:
                error, self._outlet.error = self._outlet.error, None
            if error is not None:
                raise error from None
            raise StopAsyncIteration from None
        if isinstance(event, RunFinished):  # nested runs' own RunFinished never reach here
            self._finished = True
        return event

    async def aclose(self) -> None:
        """Stop reading: cancel the run if it is still going, and wait until it has stopped."""
        self._leave()
        if self._done is not None:
            with anyio.CancelScope(shield=True):
                await self._done.wait()

    def __del__(self) -> None:
        # the plain form left early (``break``): cancel the run; nobody can await here
        try:
            self._leave()
        except Exception:  # the loop may be closed already, at interpreter exit
            pass

    # -- internals ---------------------------------------------------------------------------
    def _open(self) -> Callable[[], Coroutine[Any, Any, None]]:
        start = self._start
        if start is None:
            raise WorkflowError(
                "this event stream was already started; call run_stream (or resume_stream) "
                "again for another run"
            )
        self._start = None
        send, self._receive = anyio.create_memory_object_stream[WorkflowEvent](STREAM_BUFFER)
        outlet = self._outlet = _Outlet(send)
        scope = self._scope = anyio.CancelScope()
        done = self._done = anyio.Event()

        async def produce() -> None:
            # refers to the outlet, never to ``self``: a dropped stream must be collectable
            # (its ``__del__`` is what cancels a plain-form run left early)
            try:
                with scope:
                    try:
                        await start(outlet)
                    except Exception as exc:  # handed to the reader, raised from __anext__
                        outlet.error = exc
            finally:
                send.close()
                done.set()

        return produce

    def _leave(self) -> None:
        """The consumer is gone: stop sending, cancel an unfinished run, close our end."""
        if self._outlet is not None:
            self._outlet.abandoned = True
        if self._scope is not None and not self._finished and not self._is_done():
            self._scope.cancel()
        self._close_receive()

    def _is_done(self) -> bool:
        return self._done is not None and self._done.is_set()

    def _close_receive(self) -> None:
        if self._receive is not None:
            self._receive.close()


_Produce = Callable[[], Coroutine[Any, Any, None]]

# per running loop (its native token: an asyncio loop, a trio token), the inbox of the task
# that hosts that loop's plain-form runs
_hosts: dict[object, MemoryObjectSendStream[tuple[contextvars.Context, _Produce]]] = {}
_hosts_lock = threading.Lock()


def _detach(produce: _Produce) -> None:
    """Start ``produce`` in a task no task group the consumer can see owns (see the module doc).

    The run starts in (a copy of) the consumer's context, as a task started here would.
    """
    token = anyio.lowlevel.current_token()
    item = (contextvars.copy_context(), produce)
    with _hosts_lock:
        inbox = _hosts.get(token.native_token)
        if inbox is not None:
            try:
                inbox.send_nowait(item)
                return
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # that host is ending with its loop: start another
        inbox, receive = anyio.create_memory_object_stream[tuple[contextvars.Context, _Produce]](
            math.inf
        )
        _hosts[token.native_token] = inbox
        inbox.send_nowait(item)  # waits in the inbox until the host is up

    def enter() -> None:
        try:
            anyio.from_thread.run(_host, token.native_token, receive, token=token)
        except BaseException:  # the loop closed under the host (its runs were cancelled)
            return

    threading.Thread(target=enter, name="ledgerflow-run-stream-host", daemon=True).start()


async def _host(
    key: object, receive: MemoryObjectReceiveStream[tuple[contextvars.Context, _Produce]]
) -> None:
    """Runs this loop's plain-form runs, from the first until the loop ends.

    Entered once per loop by a helper thread (anyio's public way to start a task that no
    task group owns), which then stays parked until the loop ends.
    """
    try:
        with receive:
            async with anyio.create_task_group() as runs:
                async for context, produce in receive:
                    context.run(runs.start_soon, _quietly, produce)
    except anyio.get_cancelled_exc_class():
        # only a closing loop cancels the host (``asyncio.run`` cancels what is left, trio its
        # system tasks): its runs have recorded CANCELLED and there is no one left to tell
        # (re-raised, asyncio.run would log it as an error at shutdown)
        return
    finally:
        with _hosts_lock:
            inbox = _hosts.pop(key, None)
        if inbox is not None:
            inbox.close()


async def _quietly(produce: _Produce) -> None:
    try:
        await produce()
    except anyio.get_cancelled_exc_class():
        return  # the loop is closing (see _host); a run cancelled by its consumer returns
