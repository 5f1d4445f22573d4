"""Executors: the nodes of a workflow graph, and the decorators that declare their handlers.

A message goes to the handler whose annotated input type matches it most specifically: the
nearest class in the message's MRO wins, a concrete type beats a union containing it, and
``Any``/``object`` comes last. Two handlers that tie are a build error, never "first by name".
Handler tables are resolved once per class and dispatch is cached per message type, so the
hot path is one dict lookup.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    TypeVar,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

import anyio.to_thread

from ._typing import Types, runtime_types, type_name

if TYPE_CHECKING:
    pass

__all__ = (
    "Executor",
    "FunctionExecutor",
    "HandlerSpec",
    "executor",
    "handler",
    "response_handler",
)

F = TypeVar("F", bound=Callable[..., Any])
Call = Callable[..., Awaitable[Any]]

_MARK = "_ledgerflow_handler"
_NOTHING: tuple[type, ...] = ()


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    """What build-time checks and dispatch need to know about one handler."""

    name: str
    func: Callable[..., Any]
    input_types: Types
    output_types: Types
    takes_ctx: bool
    is_async: bool
    is_method: bool
    response_types: Types = None
    is_response: bool = False

    def accepts(self, tp: type) -> tuple[int, int] | None:
        """Rank how well this handler fits ``tp`` (lower is better), or ``None``."""
        return _rank(self.input_types, tp)

    def describe(self) -> str:
        return f"{self.name}({type_name(self.input_types)})"


def _rank(accepted: Types, tp: type) -> tuple[int, int] | None:
    mro = tp.__mro__
    if accepted is None:
        return (len(mro) + 1, 1)
    best: tuple[int, int] | None = None
    for candidate in accepted:
        if candidate is object:
            rank = (len(mro) + 1, len(accepted))
        elif issubclass(tp, candidate):
            depth = mro.index(candidate) if candidate in mro else len(mro)
            rank = (depth, len(accepted))
        else:
            continue
        if best is None or rank < best:
            best = rank
    return best


def handler(func: F | None = None, *, output: Any = None) -> Any:
    """Mark a method ``async def on_x(self, msg: X, ctx: WorkflowContext) -> Y`` as a handler.

    Args:
        func: The method (when used bare, as ``@handler``).
        output: Types the handler sends, when neither the return annotation nor
            ``WorkflowContext[T]`` says so (used by ``build()``'s type checks).
    """

    def mark(f: F) -> F:
        setattr(f, _MARK, ("message", output))
        return f

    return mark(func) if func is not None else mark


def response_handler(func: F | None = None, *, output: Any = None) -> Any:
    """Mark ``async def on_reply(self, request: P, response: T, ctx)`` as a response handler.

    It receives the answers to this executor's ``ctx.request_info`` calls; with several, the
    most specific (request type, response type) pair wins.
    """

    def mark(f: F) -> F:
        setattr(f, _MARK, ("response", output))
        return f

    return mark(func) if func is not None else mark


def _is_context(annotation: Any) -> bool:
    from ._context import WorkflowContext

    return annotation is WorkflowContext or get_origin(annotation) is WorkflowContext


def _build_spec(
    func: Callable[..., Any], *, name: str, is_method: bool, kind: str, output: Any
) -> HandlerSpec:
    where = getattr(func, "__qualname__", name)
    try:
        hints = get_type_hints(func)
    except Exception as exc:  # any failure to resolve a forward reference
        raise TypeError(f"handler {where!r}: cannot resolve its annotations: {exc}") from exc
    params = list(inspect.signature(func).parameters.values())
    if is_method:
        params = params[1:]
    wanted = 2 if kind == "response" else 1
    if len(params) < wanted or len(params) > wanted + 1:
        shape = "(request, response[, ctx])" if kind == "response" else "(message[, ctx])"
        raise TypeError(f"handler {where!r} must take {shape}; it takes {len(params)} parameter(s)")
    for p in params[:wanted]:
        if p.name not in hints:
            raise TypeError(
                f"handler {where!r}: parameter {p.name!r} has no type annotation; annotate it "
                "so messages can be routed by type (use object to accept anything)"
            )
    takes_ctx = len(params) == wanted + 1
    ctx_types: Types = _NOTHING
    ctx_known = False
    if takes_ctx:
        ctx_hint = hints.get(params[-1].name)
        if ctx_hint is not None and _is_context(ctx_hint) and get_args(ctx_hint):
            ctx_types = runtime_types(get_args(ctx_hint)[0])
            ctx_known = True
    outputs: list[type] = []
    unknown = False
    if output is not None:
        explicit = runtime_types(output)
        unknown = explicit is None
        outputs.extend(explicit or ())
    if ctx_types is None:
        unknown = True
    else:
        outputs.extend(ctx_types)
    ret = hints.get("return", inspect.Parameter.empty)
    if ret is inspect.Parameter.empty:
        unknown = unknown or (output is None and not ctx_known)
    elif ret is None or ret is type(None):
        unknown = unknown or (takes_ctx and output is None and not ctx_known)
    else:
        ret_types = runtime_types(ret)
        if ret_types is None:
            unknown = True
        else:
            outputs.extend(t for t in ret_types if t is not type(None))
    first = hints[params[0].name]
    return HandlerSpec(
        name=name,
        func=func,
        input_types=runtime_types(first),
        output_types=None if unknown else tuple(dict.fromkeys(outputs)),
        takes_ctx=takes_ctx,
        is_async=inspect.iscoroutinefunction(func),
        is_method=is_method,
        response_types=runtime_types(hints[params[1].name]) if kind == "response" else None,
        is_response=kind == "response",
    )


def _class_specs(cls: type) -> tuple[HandlerSpec, ...]:
    cached = cls.__dict__.get("_ledgerflow_specs")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    marked: dict[str, Callable[..., Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, attr in vars(klass).items():
            if callable(attr) and hasattr(attr, _MARK):
                marked[name] = attr
            elif name in marked:
                del marked[name]  # overridden by something that is not a handler
    specs = tuple(
        _build_spec(
            f, name=n, is_method=True, kind=getattr(f, _MARK)[0], output=getattr(f, _MARK)[1]
        )
        for n, f in marked.items()
    )
    setattr(cls, "_ledgerflow_specs", specs)  # noqa: B010 - cache on this exact class
    return specs


class Executor:
    """A node of the workflow graph; subclass it and declare ``@handler`` methods.

    Instance attributes are configuration shared by every run of the workflow. What a run
    changes belongs in ``ctx`` state, so concurrent runs stay isolated and resumable.
    """

    kind: ClassVar[str] = "executor"
    # True for executors that keep warm resources between invocations (an HTTP client, a
    # sandbox, a loaded model): a cluster backend keeps such an executor in a long-lived
    # worker (a Ray actor) instead of shipping it to a fresh task per invocation.
    warm: ClassVar[bool] = False

    def __init__(self, id: str | None = None) -> None:
        self.id: str = id if id is not None else type(self).__name__
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"executor id must be a non-empty string, got {self.id!r}")
        self._calls: dict[type, tuple[Call, bool] | None] = {}
        self._reply_calls: dict[tuple[type, type], tuple[Call, bool] | None] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"

    # -- introspection, used by build() and the diagrams ---------------------------------
    def handler_specs(self) -> tuple[HandlerSpec, ...]:
        """Every handler and response handler of this executor."""
        return _class_specs(type(self))

    @functools.cached_property
    def _message_specs(self) -> tuple[HandlerSpec, ...]:
        return tuple(s for s in self.handler_specs() if not s.is_response)

    @functools.cached_property
    def _response_specs(self) -> tuple[HandlerSpec, ...]:
        return tuple(s for s in self.handler_specs() if s.is_response)

    def input_types(self) -> Types:
        """Classes this executor accepts (``None``: anything)."""
        found: list[type] = []
        for spec in self._message_specs:
            if spec.input_types is None:
                return None
            found.extend(spec.input_types)
        return tuple(dict.fromkeys(found))

    def output_types(self) -> Types:
        """Classes this executor may send (``None``: unknown, so not checked)."""
        found: list[type] = []
        for spec in self.handler_specs():
            if spec.output_types is None:
                return None
            found.extend(spec.output_types)
        return tuple(dict.fromkeys(found))

    def handler_conflicts(self) -> list[str]:
        """Pairs of handlers that would tie for some message type (a build error)."""
        problems = []
        specs = self._message_specs
        for i, a in enumerate(specs):
            for b in specs[i + 1 :]:
                if a.input_types is None or b.input_types is None:
                    tie = a.input_types is None and b.input_types is None
                    shared = "Any" if tie else ""
                else:
                    common = [t for t in a.input_types if t in b.input_types]
                    tie = bool(common) and len(a.input_types) == len(b.input_types)
                    shared = type_name(tuple(common))
                if tie:
                    problems.append(
                        f"executor {self.id!r}: handlers {a.name!r} and {b.name!r} both accept "
                        f"{shared} equally specifically; narrow one of their input types"
                    )
        return problems

    def checkpoint_types(self) -> tuple[type, ...]:
        """Extra classes this executor keeps in checkpointed state (beyond its handlers')."""
        return ()

    # -- dispatch ------------------------------------------------------------------------
    def can_handle(self, message: Any) -> bool:
        """Whether some handler accepts ``message`` (cached per type)."""
        tp = type(message)
        try:
            return self._calls[tp] is not None
        except KeyError:
            return self._resolve(tp) is not None

    def _resolve(self, tp: type) -> tuple[Call, bool] | None:
        best: HandlerSpec | None = None
        best_rank: tuple[int, int] | None = None
        for spec in self._message_specs:
            rank = spec.accepts(tp)
            if rank is not None and (best_rank is None or rank < best_rank):
                best, best_rank = spec, rank
        call = None if best is None else (self._bind(best), best.takes_ctx)
        self._calls[tp] = call
        return call

    def _bind(self, spec: HandlerSpec) -> Call:
        func = spec.func
        target: Callable[..., Any] = func.__get__(self) if spec.is_method else func
        if spec.is_async:
            return target
        return functools.partial(_in_thread, target)

    def _lookup(self, message: Any) -> tuple[Call, bool] | None:
        try:
            return self._calls[type(message)]
        except KeyError:
            return self._resolve(type(message))

    def _lookup_reply(self, request: Any, response: Any) -> tuple[Call, bool] | None:
        key = (type(request), type(response))
        try:
            return self._reply_calls[key]
        except KeyError:
            pass
        best: HandlerSpec | None = None
        best_rank: tuple[int, ...] | None = None
        for spec in self._response_specs:
            r1 = _rank(spec.input_types, key[0])
            r2 = _rank(spec.response_types, key[1])
            if r1 is None or r2 is None:
                continue
            rank = r1 + r2
            if best_rank is None or rank < best_rank:
                best, best_rank = spec, rank
        call = None if best is None else (self._bind(best), best.takes_ctx)
        self._reply_calls[key] = call
        return call


async def _in_thread(func: Callable[..., Any], *args: Any) -> Any:
    """Run a sync handler in a worker thread so it cannot stall the other executors."""
    return await anyio.to_thread.run_sync(func, *args)


class FunctionExecutor(Executor):
    """An executor made from one plain function by ``@executor``."""

    kind: ClassVar[str] = "function"

    def __init__(
        self, func: Callable[..., Any], *, id: str | None = None, output: Any = None
    ) -> None:
        super().__init__(id if id is not None else func.__name__)
        self.func = func
        self._spec = _build_spec(
            func, name=func.__name__, is_method=False, kind="message", output=output
        )
        functools.update_wrapper(self, func)

    def handler_specs(self) -> tuple[HandlerSpec, ...]:
        return (self._spec,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly (handy in unit tests)."""
        return self.func(*args, **kwargs)


@overload
def executor(func: Callable[..., Any], /) -> FunctionExecutor: ...
@overload
def executor(
    *, id: str | None = None, output: Any = None
) -> Callable[[Callable[..., Any]], FunctionExecutor]: ...
def executor(
    func: Callable[..., Any] | None = None, /, *, id: str | None = None, output: Any = None
) -> Any:
    """Turn ``f(msg: X) -> Y`` or ``f(msg: X, ctx) -> Y`` (sync or async) into an executor.

    Sync functions run in a worker thread, so a slow one never stalls the others.
    """

    def wrap(f: Callable[..., Any]) -> FunctionExecutor:
        return FunctionExecutor(f, id=id, output=output)

    return wrap(func) if func is not None else wrap
