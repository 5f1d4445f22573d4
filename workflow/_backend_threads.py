"""A backend that runs each invocation on an event loop in a worker thread.

It proves the other half of the seam: a handler that touched the runner's event loop, an
``anyio.Event`` of the caller's, or the runner's task would break here, while the suites
that only pass plain data keep passing.

The worker loops are process-wide daemon threads, started the first time a run needs them
(a thread and a loop per run would cost more than most invocations). Nothing ever blocks
one loop on another: work, events, results and cancellation cross threads only as
callbacks scheduled on the receiving loop (``call_soon_threadsafe`` on asyncio, a trio
token's ``run_sync_soon``), so nested workflows whose invocations hop between the loops in
both directions cannot deadlock.
"""

from __future__ import annotations

import contextvars
import itertools
import math
import sys
import threading
from collections.abc import Callable, Coroutine, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.lowlevel

from ._backend import EmitEvent, InvocationOutcome, InvocationRequest, run_invocation
from ._errors import WorkflowError

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream

    from ._executor import Executor
    from ._workflow import Workflow

__all__ = ("ThreadBackend",)

_EVENT: Final = 0  # an event the invocation emitted, in order
_DONE: Final = 1  # the outcome
_RAISED: Final = 2  # what its handler raised
_STOPPED: Final = 3  # it was cancelled there

_Item = tuple[int, Any]
_Start = tuple[contextvars.Context, Callable[[], Coroutine[Any, Any, None]]]


class ThreadBackend:
    """Runs each invocation on an event loop in one of ``threads`` worker threads.

    A run's events travel back to its own loop in order while the invocation runs; a
    timeout or a cancelled run cancels the invocation on its thread and waits for it to
    stop. The context (contextvars: the trace's current span) goes with the invocation,
    as it would with a thread pool.
    """

    def __init__(self, threads: int = 2) -> None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads!r}")
        self.threads = threads
        self._turn = itertools.count()

    def open(self, workflow: Workflow) -> _ThreadRun:
        return _ThreadRun(self, workflow.executors)

    def __repr__(self) -> str:
        return f"ThreadBackend(threads={self.threads})"

    def _loop_for_next(self) -> _Loop | None:
        """The next worker loop in turn, never the caller's own (``None``: only that one)."""
        loops = _worker_loops(self.threads)
        here = threading.get_ident()
        for _ in range(len(loops)):
            loop = loops[next(self._turn) % len(loops)]
            if loop.ident != here:
                return loop
        return None


class _ThreadRun:
    def __init__(self, backend: ThreadBackend, executors: Mapping[str, Executor]) -> None:
        self.backend = backend
        self.executors = executors

    async def invoke(self, request: InvocationRequest, emit: EmitEvent) -> InvocationOutcome:
        node = self.executors[request.executor_id]
        loop = self.backend._loop_for_next()
        if loop is None:  # a nested run on the only worker loop: it is off the caller's already
            return await run_invocation(node, request, emit, self.backend)
        send, receive = anyio.create_memory_object_stream[_Item](math.inf)
        job = _Job(node, request, self.backend, anyio.lowlevel.current_token(), send)
        loop.submit(contextvars.copy_context(), job)
        with receive:
            try:
                async for kind, value in receive:
                    if kind == _EVENT:
                        await emit(value)
                    elif kind == _DONE:
                        outcome: InvocationOutcome = value
                        return outcome
                    elif kind == _RAISED:
                        raise value
                    else:
                        break
                raise WorkflowError(
                    f"invocation of {request.executor_id!r} stopped on its worker thread "
                    "without a result"
                )
            except BaseException:
                # a timeout, a cancelled run or a failed emit: stop it there and wait, so
                # nothing of it runs on after the caller moved on
                if loop.call(job.cancel):
                    with anyio.CancelScope(shield=True):
                        async for kind, _ in receive:
                            if kind != _EVENT:
                                break
                raise

    async def aclose(self) -> None:
        return None


class _Job:
    """One invocation, run on a worker loop; it reports back only through ``post``."""

    def __init__(
        self,
        node: Executor,
        request: InvocationRequest,
        backend: ThreadBackend,
        home: anyio.lowlevel.EventLoopToken,
        send: MemoryObjectSendStream[_Item],
    ) -> None:
        self.node = node
        self.request = request
        self.backend = backend
        self.home = home
        self.send = send
        self.scope: anyio.CancelScope | None = None
        self.cancelled = False

    def post(self, kind: int, value: Any) -> None:
        call_soon(self.home, partial(_deliver, self.send, (kind, value)))

    async def emit(self, event: Any) -> None:
        self.post(_EVENT, event)

    def cancel(self) -> None:
        """Runs on the worker loop: before the job started, or while it runs."""
        self.cancelled = True
        if self.scope is not None:
            self.scope.cancel()

    async def __call__(self) -> None:
        kind: int = _STOPPED
        value: Any = None
        try:
            if not self.cancelled:
                with anyio.CancelScope() as self.scope:
                    try:
                        value = await run_invocation(
                            self.node, self.request, self.emit, self.backend
                        )
                        kind = _DONE
                    except anyio.get_cancelled_exc_class() as exc:
                        if self.scope.cancel_called:
                            raise  # ours (the caller left): the scope ends it here
                        kind, value = _RAISED, exc  # the handler's own: never the loop's
                    except BaseException as exc:  # the caller raises it; the loop lives on
                        kind, value = _RAISED, exc
        finally:
            self.post(kind, value)


def _deliver(send: MemoryObjectSendStream[_Item], item: _Item) -> None:
    try:
        send.send_nowait(item)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the caller has stopped listening (it already moved on)
    if item[0] != _EVENT:
        send.close()  # the last item: on the caller's loop, like every use of ``send``


def call_soon(token: anyio.lowlevel.EventLoopToken, fn: Callable[[], object]) -> bool:
    """Schedule ``fn`` on ``token``'s loop from any thread without waiting for it.

    For a resource that belongs to one event loop (an MCP session) used from another's.
    anyio's own ``from_thread`` calls wait for the other loop to run them: two loops each
    waiting on the other would deadlock, so this uses the loops' non-blocking hooks
    (asyncio's ``call_soon_threadsafe``, a trio token's ``run_sync_soon``). ``fn`` runs on
    that loop outside any task, where anyio cannot tell which library runs the loop: it may
    set events and send on memory streams made there (a task receiving them does the rest),
    not start tasks or await. ``False`` when that loop has ended (``fn`` never runs).
    """
    native: Any = token.native_token
    schedule = getattr(native, "call_soon_threadsafe", None) or native.run_sync_soon
    try:
        schedule(fn)
    except RuntimeError:
        return False  # that loop has ended (trio's RunFinishedError is a RuntimeError too)
    return True


def _forget_async_library() -> None:
    """A trio caller's copied context names trio; the worker loop is asyncio."""
    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        sniffio.current_async_library_cvar.set(None)


class _Loop:
    """A daemon thread running an event loop that takes jobs from any thread."""

    def __init__(self, index: int) -> None:
        self.ident = 0
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._send: MemoryObjectSendStream[_Start] | None = None
        ready = threading.Event()
        name = f"ledgerflow-thread-backend-{index}"
        self.thread = threading.Thread(
            target=anyio.run, args=(self._serve, ready), name=name, daemon=True
        )
        self.thread.start()
        ready.wait()

    async def _serve(self, ready: threading.Event) -> None:
        send, receive = anyio.create_memory_object_stream[_Start](math.inf)
        self._send, self._token = send, anyio.lowlevel.current_token()
        self.ident = threading.get_ident()
        ready.set()
        async with anyio.create_task_group() as tg:
            async for context, job in receive:
                context.run(_forget_async_library)  # before anyio in the task asks for it
                context.run(tg.start_soon, job)  # the task runs in a copy of the caller's

    def submit(
        self, context: contextvars.Context, job: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """Start ``job`` on this loop in (a copy of) ``context``."""
        assert self._send is not None
        if not self.call(partial(self._send.send_nowait, (context, job))):
            raise WorkflowError(f"worker thread {self.thread.name!r} has stopped")

    def call(self, fn: Callable[[], object]) -> bool:
        """Schedule ``fn`` there; ``False`` when the loop has ended."""
        assert self._token is not None
        return call_soon(self._token, fn)


_loops: list[_Loop] = []
_loops_lock = threading.Lock()


def _worker_loops(count: int) -> list[_Loop]:
    with _loops_lock:
        for index, loop in enumerate(_loops[:count]):
            if not loop.thread.is_alive():  # never expected: jobs keep their errors
                _loops[index] = _Loop(index)
        while len(_loops) < count:
            _loops.append(_Loop(len(_loops)))
        return _loops[:count]
