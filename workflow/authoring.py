"""The core's seam for node and graph authors: what ``builders``, ``executors`` and
``visualize`` (and third-party packages like them) need beyond ``workflow.__all__``.

Application code needs only ``workflow``; this module is for code that builds graphs
without ``WorkflowBuilder``, writes executors whose handlers are not ``@handler`` methods, or
reads a built graph. Everything else under ``workflow._*`` is private and may change between
releases; a test fails any import of it from outside the ``workflow`` package.

- Graphs: ``build_graph`` validates declared executors and ``EdgeGroup``\\ s (with a
  ``NodePolicy`` per executor) into the immutable ``WorkflowGraph`` that ``Workflow(graph)``
  runs and ``Workflow.graph`` returns; ``condition_label`` names an edge condition (a
  ``Predicate``) for diagrams.
- Executors: ``Executor.handler_specs()`` returns ``HandlerSpec``\\ s; an executor that wraps
  or generates handlers builds its own, and ``overlaps`` tells whether what one handler
  produces can reach another.
- Adapters: ``register_adapter`` installs how the ``executors`` package turns a workflow
  descriptor (``Workflow.as_agent``, ``as_tool``) into a node, an answer or a tool; the core
  cannot import ``executors`` itself.
- Nesting: ``ChildRun`` runs a whole workflow inside one invocation of another (what
  ``WorkflowExecutor`` builds on): on the backend the parent's invocation runs on, its events
  renamed into the parent's run, its paused state plain data the parent node keeps.
- Backends: a ``Backend`` (see its docstring for what it may and may not do) opens a
  ``BackendRun`` per run, receives each invocation as an ``InvocationRequest`` and returns an
  ``InvocationOutcome``, calling ``run_invocation`` to run the handlers and passing their
  events on through an ``EmitEvent`` channel; ``resources_for`` reads an executor's
  ``Resources``. ``RoundTripBackend`` is the reference: every request, outcome and event
  crosses as checkpoint-serializer JSON; ``ThreadBackend`` runs each invocation on a worker
  thread's own event loop (what a handler must not share with the caller shows up there).
- Loops: ``call_soon`` schedules a callback on another thread's event loop without waiting,
  for a resource that belongs to one loop (an MCP session) used by a handler on another's.
- Errors shown to outside clients: ``redact`` blanks credentials (``api_key=...``, bearer
  tokens, ``sk-...`` keys) in a run's error text before a server (MCP, A2A, AG-UI) sends it,
  as the HTTP service does.
- Packages: ``lazy_exports`` makes a package ``__getattr__`` that imports heavy names on first
  use, so that importing the package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._adapters import register_adapter
from ._backend import (
    Backend,
    BackendRun,
    EmitEvent,
    InvocationOutcome,
    InvocationRequest,
    resources_for,
    run_invocation,
)
from ._backend_threads import call_soon
from ._edges import EdgeGroup, Predicate, condition_label
from ._executor import HandlerSpec
from ._graph import NodePolicy, WorkflowGraph, build_graph
from ._lazy import lazy_exports
from ._nested import ChildRun
from ._telemetry import redact
from ._typing import overlaps

if TYPE_CHECKING:
    from ._backend_testing import RoundTripBackend, ThreadBackend

__getattr__ = lazy_exports(
    "workflow",
    {"RoundTripBackend": "._backend_testing", "ThreadBackend": "._backend_testing"},
    globals(),
)

__all__ = (
    "Backend",
    "BackendRun",
    "ChildRun",
    "EdgeGroup",
    "EmitEvent",
    "HandlerSpec",
    "InvocationOutcome",
    "InvocationRequest",
    "NodePolicy",
    "Predicate",
    "RoundTripBackend",
    "ThreadBackend",
    "WorkflowGraph",
    "build_graph",
    "call_soon",
    "condition_label",
    "lazy_exports",
    "overlaps",
    "redact",
    "register_adapter",
    "resources_for",
    "run_invocation",
)
