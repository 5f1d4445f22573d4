"""``RayBackend``: where an invocation runs is Ray's business; everything else stays ours.

Placement and execution come from Ray; routing, retries, timeouts, commit order, events and
checkpoints stay in the runner (see ``workflow._backend``), so a run gives the same events on
Ray as in-process, and a run checkpointed on one backend resumes on the other.

How an invocation travels:

- A stateless executor (the default) runs as a Ray **task**: the executor object is put in
  the object store once per run and each invocation is one task call. Its events travel back
  with its outcome and are passed to the run's stream, in order, before ``invoke`` returns.
- An executor whose class sets ``warm = True`` (agents, the code executor: things that keep
  an HTTP client, a sandbox or a loaded model between calls) runs in a Ray **actor** that this
  backend keeps for that executor and reuses across invocations and runs, until
  :meth:`RayBackend.shutdown`. Its events stream back live (a streaming generator), so agent
  tokens reach the caller while the model is still answering.
- ``Resources`` declared for an executor become the task's or actor's Ray resource request;
  a request that no node of the cluster could ever satisfy is refused when the run opens the
  backend, naming the executor.
- Ray's own retries are off (``max_retries=0``): the executor's ``RetryPolicy`` is the one
  retry layer, also for a worker or node that dies mid-invocation. A timeout (or any
  cancellation of the run) cancels the remote invocation with ``ray.cancel(force=True)``.
- A sent value of at least ``large_message_bytes`` stays out of the driver: the worker puts
  it in Ray's object store and the outcome carries a handle, which the runner routes by type
  and the receiving worker resolves (``_held``; see docs/ray.md for what still fetches it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Awaitable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from workflow._backend import (
    Backend,
    BackendRun,
    LocalBackend,
    Resources,
    resources_for,
    run_invocation,
)
from workflow._errors import WorkflowError
from workflow._invocation import EmitEvent, InvocationOutcome, InvocationRequest

from ._held import (
    HeldMark,
    RayHeld,
    attach_held,
    hold_sends,
    resolve_request,
    resolve_request_async,
    split_large,
)

if TYPE_CHECKING:
    from workflow._executor import Executor
    from workflow._workflow import Workflow

__all__ = ("RayBackend", "RayUnavailableError")

# Keep every node of a cluster this process starts on loopback (see docs/ray.md).
_LOOPBACK_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


class RayUnavailableError(WorkflowError, RuntimeError):
    """Ray is not installed, or the cluster cannot be reached or cannot place an executor."""


class RayArgumentError(WorkflowError, ValueError):
    """An argument of ``RayBackend`` is out of range."""


class RayBackend:
    """Run invocations on a Ray cluster.

    Args:
        address: ``None`` starts (or reuses) a local Ray instance; ``"auto"`` joins the
            cluster this machine belongs to; ``"ray://host:port"`` joins through Ray Client.
            When this process is already connected to Ray, that connection is used.
        runtime_env: Ray's runtime environment for the workers (packages, working dir, env).
        namespace: Ray namespace for the warm actors this backend keeps.
        large_message_bytes: A sent value at least this large (estimated from its bytes,
            strings and arrays) goes from worker to worker through Ray's object store and
            never enters the driver unless routing or a checkpoint needs it; ``None`` sends
            every value back through the driver.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        runtime_env: Mapping[str, Any] | None = None,
        namespace: str | None = None,
        large_message_bytes: int | None = 1 << 20,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"RayBackend address must be None or a string, got {address!r}")
        if large_message_bytes is not None and (
            isinstance(large_message_bytes, bool)
            or not isinstance(large_message_bytes, int)
            or large_message_bytes < 1
        ):
            raise RayArgumentError(
                f"RayBackend large_message_bytes must be a positive int (bytes) or None, got "
                f"{large_message_bytes!r}"
            )
        self.large_message_bytes = large_message_bytes
        self.address = address
        self.runtime_env = dict(runtime_env) if runtime_env is not None else None
        self.namespace = namespace
        self._actors: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RayBackend(address={self.address!r}, namespace={self.namespace!r})"

    # -- connection -------------------------------------------------------------------------
    def _ray(self) -> Any:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RayUnavailableError(
                "RayBackend needs Ray: pip install 'ledgerflow[ray]'"
            ) from exc
        with self._lock:
            if not ray.is_initialized():
                for key, value in _LOOPBACK_ENV.items():
                    os.environ.setdefault(key, value)
                kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
                if self.address is None:
                    kwargs["include_dashboard"] = False
                else:
                    kwargs["address"] = self.address
                if self.runtime_env is not None:
                    kwargs["runtime_env"] = self.runtime_env
                if self.namespace is not None:
                    kwargs["namespace"] = self.namespace
                try:
                    ray.init(**kwargs)
                except Exception as exc:
                    raise RayUnavailableError(
                        f"cannot connect to Ray at {self.address or 'a new local instance'}: {exc}"
                    ) from exc
        return ray

    def open(self, workflow: Workflow) -> BackendRun:
        ray = self._ray()
        _check_placeable(ray, workflow)
        return _RayRun(self, ray, workflow)

    def shutdown(self) -> None:
        """Kill the warm actors this backend started (runs using them must have ended)."""
        if not self._actors:
            return
        import ray

        for actor in self._actors.values():
            ray.kill(actor)
        self._actors.clear()

    def _actor(self, ray: Any, node: Executor, options: dict[str, Any]) -> Any:
        key = (id(node), node.id)
        with self._lock:
            actor = self._actors.get(key)
            if actor is None:
                actor = (
                    ray.remote(_WarmExecutor)
                    .options(max_restarts=0, max_concurrency=64, **options)
                    .remote(node)
                )
                self._actors[key] = actor
        return actor


def _ray_options(resources: Resources) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if resources.num_cpus is not None:
        options["num_cpus"] = resources.num_cpus
    if resources.num_gpus is not None:
        options["num_gpus"] = resources.num_gpus
    if resources.memory is not None:
        options["memory"] = resources.memory
    if resources.custom:
        options["resources"] = dict(resources.custom)
    return options


def _wanted(resources: Resources) -> dict[str, float]:
    wanted: dict[str, float] = {}
    if resources.num_cpus:
        wanted["CPU"] = resources.num_cpus
    if resources.num_gpus:
        wanted["GPU"] = resources.num_gpus
    if resources.memory:
        wanted["memory"] = float(resources.memory)
    for key, amount in (resources.custom or {}).items():
        if amount:
            wanted[key] = amount
    return wanted


def _check_placeable(ray: Any, workflow: Workflow) -> None:
    """Refuse, at run start, an executor whose resources no live node could ever provide."""
    requests = {eid: _wanted(resources_for(workflow, eid)) for eid in workflow.executors}
    requests = {eid: w for eid, w in requests.items() if w}
    if not requests:
        return
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for eid, wanted in sorted(requests.items()):
        if not any(all(have.get(k, 0) >= v for k, v in wanted.items()) for have in nodes):
            offered = [
                {k: v for k, v in have.items() if not k.startswith("node:")} for have in nodes
            ]
            raise RayUnavailableError(
                f"executor {eid!r} needs {wanted!r}, which no node of the Ray cluster has "
                f"(nodes offer {offered!r}); add a node with those resources or lower the "
                f"executor's Resources"
            )


class _RayRun:
    """One run's use of the cluster: the executors' object refs and warm actors."""

    def __init__(self, backend: RayBackend, ray: Any, workflow: Workflow) -> None:
        self.backend = backend
        self.ray = ray
        self.workflow = workflow
        self.options: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, Any] = {}
        self.task = ray.remote(_invoke_task)
        # Every stateless executor of the run, shipped once: in a list, so that Ray hands the
        # worker the reference (the worker caches the executors under it) instead of
        # deserializing them for each invocation.
        self.nodes: list[Any] | None = None

    def _options(self, eid: str) -> dict[str, Any]:
        found = self.options.get(eid)
        if found is None:
            found = self.options[eid] = _ray_options(resources_for(self.workflow, eid))
        return found

    def invoke(self, request: InvocationRequest, emit: EmitEvent) -> Awaitable[InvocationOutcome]:
        return self._invoke(request, emit)

    async def _invoke(self, request: InvocationRequest, emit: EmitEvent) -> InvocationOutcome:
        node = self.workflow.executors[request.executor_id]
        options = self._options(request.executor_id)
        if getattr(node, "warm", False):
            return await self._invoke_warm(node, request, emit, options)
        if self.nodes is None:
            stateless = {
                eid: n
                for eid, n in self.workflow.executors.items()
                if not getattr(n, "warm", False)
            }
            self.nodes = [self.ray.put(stateless)]
        key = repr(sorted(options.items()))
        task = self.tasks.get(key)
        if task is None:
            task = self.tasks[key] = self.task.options(max_retries=0, **options)
        pending = task.remote(
            self.nodes, request, _trace_carrier(), self.backend.large_message_bytes
        )
        try:
            outcome: InvocationOutcome = await pending
        except anyio.get_cancelled_exc_class():
            self.ray.cancel(pending, force=True)
            raise
        except self.ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        for event in outcome.events:
            await emit(event)
        return outcome

    async def _invoke_warm(
        self, node: Executor, request: InvocationRequest, emit: EmitEvent, options: dict[str, Any]
    ) -> InvocationOutcome:
        actor = self.backend._actor(self.ray, node, options)
        stream = actor.invoke.options(num_returns="streaming").remote(
            request, _trace_carrier(), self.backend.large_message_bytes
        )
        outcome: InvocationOutcome | None = None
        held: dict[int, RayHeld] = {}
        mark: HeldMark | None = None
        try:
            async for ref in stream:
                if mark is not None:  # a large sent value: keep its reference, never fetch it
                    held[mark.index] = RayHeld(ref, mark.held_type)
                    mark = None
                    continue
                item = await ref
                if isinstance(item, InvocationOutcome):
                    outcome = item
                elif isinstance(item, HeldMark):
                    mark = item
                else:
                    await emit(item)
        except anyio.get_cancelled_exc_class():
            self.ray.cancel(stream, force=True)
            raise
        except self.ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None
        if outcome is None:  # pragma: no cover - the actor always ends with the outcome
            raise WorkflowError(f"executor {node.id!r} returned no outcome from its Ray actor")
        return attach_held(outcome, held)

    async def aclose(self) -> None:
        self.nodes = None
        self.tasks.clear()


def _cause(exc: Any) -> BaseException:
    """The handler's own exception, not Ray's wrapper (so errors read as they do locally)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


# Per worker process: executors already deserialized (by object id), and one event loop per
# thread that runs tasks, kept between tasks (a new loop per task costs more than the
# invocation itself).
_WORKER_NODES: dict[str, Mapping[str, Executor]] = {}
_WORKER_LOOPS = threading.local()


def _worker_node(ref: list[Any], executor_id: str) -> Executor:
    key = ref[0].hex()
    nodes = _WORKER_NODES.get(key)
    if nodes is None:
        import ray

        nodes = _WORKER_NODES[key] = ray.get(ref[0])
        if len(_WORKER_NODES) > 64:  # executors of finished runs: keep the cache bounded
            _WORKER_NODES.pop(next(iter(_WORKER_NODES)))
    return nodes[executor_id]


def _run_here(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` to completion on this thread's own event loop, kept between tasks.

    Ray runs a task in the worker's task thread; the invocation runs right there, on a loop
    that only turns while a task runs. An earlier version ran it on a loop kept turning in a
    second thread (an anyio blocking portal): one thread hop each way per invocation, which
    measured ~0.5-1 ms a call on this loaded 2-core machine (``ray_overhead``). The loop is
    asyncio's, the backend anyio runs on under Ray (Ray's own futures are asyncio futures);
    anyio code in handlers (threads, task groups, timeouts) works on it as on any asyncio loop.
    """
    import asyncio

    loop = getattr(_WORKER_LOOPS, "loop", None)
    if loop is None:
        loop = _WORKER_LOOPS.loop = asyncio.new_event_loop()
    return loop.run_until_complete(fn(*args))


async def _collect(event: Any) -> None:
    return None  # a task's events travel back inside its outcome


def _trace_carrier() -> dict[str, str]:
    """The caller's trace context (W3C headers), when OpenTelemetry is in use at all."""
    if "opentelemetry.trace" not in sys.modules:
        return {}  # never traced in this process: nothing to propagate, nothing to import
    from opentelemetry import propagate

    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextlib.contextmanager
def _traced(carrier: dict[str, str]) -> Iterator[None]:
    """Run a worker-side invocation inside the caller's span, so its spans are children."""
    if not carrier:
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(carrier))
    try:
        yield
    finally:
        context.detach(token)


async def _run_traced(
    node: Executor, request: InvocationRequest, carrier: dict[str, str]
) -> InvocationOutcome:
    with _traced(carrier):
        return await run_invocation(node, request, _collect, LocalBackend())


def _invoke_task(
    ref: list[Any], request: InvocationRequest, carrier: dict[str, str], threshold: int | None
) -> InvocationOutcome:
    """A Ray task: handle one invocation in a worker process."""
    node = _worker_node(ref, request.executor_id)
    request = resolve_request(request)
    outcome: InvocationOutcome = _run_here(_run_traced, node, request, carrier)
    return hold_sends(outcome, threshold)


class _WarmExecutor:
    """A Ray actor holding one executor between invocations (and runs)."""

    def __init__(self, node: Executor) -> None:
        self.node = node
        self.local: Backend = LocalBackend()

    async def invoke(
        self, request: InvocationRequest, carrier: dict[str, str], threshold: int | None
    ) -> Any:
        request = await resolve_request_async(request)
        send, receive = anyio.create_memory_object_stream[Any](64)
        result: list[InvocationOutcome] = []

        async def run() -> None:
            async with send:
                with _traced(carrier):
                    outcome = await run_invocation(self.node, request, send.send, self.local)
                result.append(outcome)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            async with receive:
                async for event in receive:
                    yield event
        outcome, large = split_large(result[0], threshold)
        for index, value in large:  # each its own stream item, owned by the caller
            yield HeldMark(index, type(value))
            yield value
        yield outcome
