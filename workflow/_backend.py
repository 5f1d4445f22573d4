"""The dispatch seam: where an executor's invocation runs.

The runner decides *what* runs (which executor, with which deliveries, in which superstep)
and everything around it: the order deliveries are handled in, retries and timeouts, routing
(user predicates and selection functions run in the runner, never in a backend), the commit
order of a superstep's results, events, outputs and checkpoints. A backend decides only
*where* one invocation runs: it receives an :class:`InvocationRequest` (frozen plain data),
calls the executor's handlers and returns an :class:`InvocationOutcome` (frozen plain data).

Both are made only of values the checkpoint serializer can encode (given the workflow's type
registry), so a backend may ship them to another process or machine; the executor is named by
id, and the backend receives the built workflow once, when a run starts (``Backend.open``).

``LocalBackend`` (the default) calls the handlers in this process, in the runner's task:
today's behaviour, with nothing copied.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ._context import WorkflowContext
from ._errors import GraphValidationError
from ._invocation import (
    _EMPTY,
    Delivery,
    EmitEvent,
    InvocationOutcome,
    InvocationRequest,
    new_outcome,
)
from ._isolate import IMMUTABLE, isolated

if TYPE_CHECKING:
    from ._executor import Executor
    from ._workflow import Workflow

__all__ = (
    "Backend",
    "BackendRun",
    "Delivery",
    "EmitEvent",
    "InvocationOutcome",
    "InvocationRequest",
    "LocalBackend",
    "Resources",
    "default_backend",
    "resources_for",
    "run_invocation",
    "set_default_backend",
)


class BackendRun(Protocol):
    """One run's use of a backend, from ``Backend.open`` to ``aclose``."""

    def invoke(self, request: InvocationRequest, emit: EmitEvent) -> Awaitable[InvocationOutcome]:
        """Run one invocation and return its outcome, or raise what its handler raised.

        Usually an ``async def``.
        ``await emit(event)`` passes each event the invocation emits (``ctx.add_event``:
        agent deltas, custom events) to the run's stream, in order, before ``invoke``
        returns; a backend that cannot stream may pass them all just before returning.
        Raising cancels nothing else: the runner records the error and decides (retry,
        or fail the superstep after its siblings finish).
        """
        ...

    async def aclose(self) -> None:
        """Release what ``open`` acquired; called once, when the run ends in any way."""
        ...


class Backend(Protocol):
    """Where invocations run. ``LocalBackend`` is the default.

    A backend **may**: run an invocation in another thread, process or machine; run several
    invocations of one superstep at once (the runner dispatches them concurrently, up to the
    workflow's ``max_concurrency``); serialize requests and outcomes (with the checkpoint
    serializer and the workflow's type registry, see ``_durable.registry_for``); read an
    executor's ``Resources`` (``resources_for``) to place its invocations; keep per-run
    resources (workers, actors) between ``open`` and ``aclose``.

    A backend **must not**: route messages, evaluate edge conditions, retry, time out,
    reorder or drop deliveries, commit anything, or emit events of its own into the run
    (the runner does all of that, identically for every backend, so the same input gives
    the same events everywhere); mutate a request; let one invocation see another's
    uncommitted writes; return an outcome for a handler that raised.

    To invoke an executor the backend calls :func:`run_invocation` with the executor of that
    id (from the workflow given to ``open``, or a copy of it elsewhere), the request, an
    ``emit`` channel and itself (nested workflows run their children on the same backend).
    """

    def open(self, workflow: Workflow) -> BackendRun:
        """Start using this backend for one run of ``workflow`` (also for a nested run)."""
        ...


@dataclass(frozen=True, slots=True)
class Resources:
    """What one invocation of an executor needs; honoured by cluster backends.

    ``LocalBackend`` ignores them. ``num_cpus``/``num_gpus`` may be fractional; ``memory``
    is in bytes; ``custom`` names resources a cluster defines (``{"llm_slot": 1}``).
    """

    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: int | None = None
    custom: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        for name in ("num_cpus", "num_gpus", "memory"):
            _check_amount(f"Resources.{name}", getattr(self, name), integer=name == "memory")
        if self.custom is not None:
            if not isinstance(self.custom, Mapping):
                raise GraphValidationError(
                    f"Resources.custom must be a mapping of resource name to amount, got "
                    f"{self.custom!r}"
                )
            for key, amount in self.custom.items():
                if not isinstance(key, str) or not key:
                    raise GraphValidationError(
                        f"Resources.custom: resource names must be non-empty strings, got {key!r}"
                    )
                _check_amount(f"Resources.custom[{key!r}]", amount, integer=False)
            object.__setattr__(self, "custom", MappingProxyType(dict(self.custom)))

    def __hash__(self) -> int:
        custom = tuple(sorted(self.custom.items())) if self.custom is not None else None
        return hash((self.num_cpus, self.num_gpus, self.memory, custom))


def _check_amount(what: str, value: Any, *, integer: bool) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (integer and not isinstance(value, int))
    ):
        need = "an int (bytes)" if integer else "a number"
        raise GraphValidationError(f"{what} must be {need} or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise GraphValidationError(f"{what} must be a finite number >= 0, got {value!r}")


def resources_for(workflow: Workflow, executor_id: str) -> Resources:
    """The resources declared for ``executor_id`` (``Resources()`` when none were)."""
    if executor_id not in workflow.executors:
        raise KeyError(f"workflow {workflow.name!r} has no executor {executor_id!r}")
    policy = workflow.graph.policies.get(executor_id)
    found = policy.resources if policy is not None else None
    return found if found is not None else Resources()


async def run_invocation(
    node: Executor, request: InvocationRequest, emit: EmitEvent, backend: Backend
) -> InvocationOutcome:
    """Call ``node``'s handlers for each of ``request``'s deliveries, in order.

    The one implementation of "handle an invocation" every backend uses, wherever it runs:
    it raises what a handler raises (the attempt's partial results are then discarded).
    ``backend`` is the backend nested workflows run their children on.
    """
    ctx: WorkflowContext[Any] = WorkflowContext(node, request, emit, backend)
    sends = ctx._sends
    for source, message, is_reply in request.deliveries:
        ctx.source = source
        if is_reply:
            call = node._lookup_reply(message.request, message.response)
            if call is None:
                raise TypeError(
                    f"executor {node.id!r} has no @response_handler for request "
                    f"{type(message.request).__name__} with response "
                    f"{type(message.response).__name__}"
                )
            fn, takes_ctx = call
            # its own copies, like a message's: the pending request and the answer stay as
            # they were for the caller and for a retry if the handler mutates them and fails
            asked, answer = message.request, message.response
            if type(asked) not in IMMUTABLE:
                asked = isolated(asked)
            if type(answer) not in IMMUTABLE:
                answer = isolated(answer)
            result = await (fn(asked, answer, ctx) if takes_ctx else fn(asked, answer))
        else:
            if type(message) not in IMMUTABLE:  # the handler gets its own copy
                message = isolated(message)
            call = node._lookup(message)
            if call is None:
                raise TypeError(f"executor {node.id!r} has no handler for {type(message).__name__}")
            fn, takes_ctx = call
            result = await (fn(message, ctx) if takes_ctx else fn(message))
        if result is not None:
            sends.append((None, result))
    return new_outcome(  # inlined ctx._outcome(): one call fewer per invocation
        (
            tuple(sends),
            tuple(ctx._outputs) if ctx._outputs else (),
            ctx._state_writes or _EMPTY,
            ctx._local_writes or _EMPTY,
            tuple(ctx._requests) if ctx._requests else (),
            tuple(ctx._events) if ctx._events else (),
        )
    )


class LocalBackend:
    """Runs every invocation in this process, in the runner's own task (the default)."""

    __slots__ = ()

    def open(self, workflow: Workflow) -> BackendRun:
        return _LocalRun(self, workflow.executors)

    def __repr__(self) -> str:
        return "LocalBackend()"


class _LocalRun:
    __slots__ = ("backend", "executors")

    def __init__(self, backend: Backend, executors: Mapping[str, Executor]) -> None:
        self.backend = backend
        self.executors = executors

    def invoke(self, request: InvocationRequest, emit: EmitEvent) -> Awaitable[InvocationOutcome]:
        # no wrapper coroutine on the hot path: the handler loop's own coroutine is returned
        return run_invocation(self.executors[request.executor_id], request, emit, self.backend)

    async def aclose(self) -> None:
        return None


_default: list[Backend] = [LocalBackend()]


def default_backend() -> Backend:
    """The backend runs use when ``backend=`` is not given (``LocalBackend()``)."""
    return _default[0]


def set_default_backend(backend: Backend | None) -> None:
    """Change the process-wide default backend (``None`` restores ``LocalBackend()``).

    Meant for test sessions that run a whole suite on another backend.
    """
    _default[0] = backend if backend is not None else LocalBackend()
