"""One error tree: every exception the four packages raise on purpose is a WorkflowError.

Two walks keep it so. One imports every module of ``workflow``, ``builders``, ``executors``
and ``visualize`` and collects the exception classes defined there, so a new error class
outside the tree fails here (or is added to ``ALLOWED`` with the reason it may stay outside).
The other parses every ``raise`` in their source, so raising a builtin such as
``RuntimeError`` for a run-time failure fails here too (or is added to ``RAISE_ALLOWED``).
"""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pathlib
import pickle
import pkgutil

import pytest

import builders
import executors
import visualize
import workflow
from builders import MagenticBuilder, WorkflowBuilder
from executors import (
    AgentError,
    AgentExecutor,
    FunctionAgent,
    MagenticContext,
    MagenticError,
    MagenticManager,
    ProgressLedger,
    SubWorkflowError,
    TaskLedger,
    ToolError,
    ToolUnavailableError,
    WorkflowExecutor,
)
from executors._agent_executor import ContinueTurn
from visualize import load_overlay
from workflow import (
    CheckpointError,
    Executor,
    ExecutorFailedError,
    InMemoryCheckpointStore,
    RunStatus,
    WorkflowContext,
    WorkflowError,
    executor,
    handler,
    response_handler,
)
from workflow._errors import UnknownRequestError

pytestmark = pytest.mark.anyio

# qualified name -> why it may stay outside the tree
ALLOWED = {
    "workflow._serde_registry._Fail": "private control flow: caught in _serde and re-raised as "
    "SerializationError with the path to the value",
    "executors._openai_wire.MalformedResponse": "internal to the OpenAI client: its retry "
    "policy maps it to ChatResponseError",
    "executors._openai_retry.FormatRefused": "internal to the OpenAI client: it steps down to a "
    "weaker structured-output format and retries",
    "executors._openai_retry.StreamIdle": "internal to the OpenAI client: classified as a "
    "timeout and retried, then surfaced as a ChatClientError",
    "workflow.cli._common.UsageError": "CLI signal: main() turns it into one stderr line and "
    "exit code 2; never reaches Python callers",
    "workflow.cli._common.RunError": "CLI signal: main() turns it into one stderr line and "
    "exit code 1; never reaches Python callers",
}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for pkg in (workflow, builders, executors, visualize):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # running it would start the CLI
            module = importlib.import_module(info.name)
            for name, value in vars(module).items():
                if (
                    inspect.isclass(value)
                    and issubclass(value, BaseException)
                    and value.__module__ == module.__name__
                ):
                    found[f"{module.__name__}.{name}"] = value
    return found


def test_every_exception_class_derives_from_workflow_error() -> None:
    classes = _exception_classes()
    # the walk must see the errors the contract names, else it proves nothing
    for expected in (
        "executors._chat.ChatClientError",
        "executors._agents.AgentError",
        "executors._magentic_ledger.MagenticError",
        "executors._sandbox_isolation.SandboxUnavailableError",
        "workflow._errors.CheckpointError",
        "visualize._render.DotNotFoundError",
    ):
        assert expected in classes
    outside = sorted(
        name
        for name, cls in classes.items()
        if not issubclass(cls, WorkflowError) and name not in ALLOWED
    )
    assert outside == [], f"derive these from workflow.WorkflowError (or allow-list): {outside}"
    stale = sorted(set(ALLOWED) - set(classes))
    assert stale == [], f"allow-listed classes that no longer exist: {stale}"


def test_public_error_roots() -> None:
    from executors import ChatClientError

    assert issubclass(ChatClientError, WorkflowError)


# -- raise sites ---------------------------------------------------------------------------

PACKAGES_ROOT = pathlib.Path(__file__).resolve().parents[2]
# Builtins that stay builtins, as the contract says: bad arguments at call time (ValueError,
# TypeError) and the protocols Python itself defines (abstract methods, async iteration).
BUILTIN_KINDS_ALLOWED = frozenset(
    {"ValueError", "TypeError", "NotImplementedError", "StopIteration", "StopAsyncIteration"}
)
# "path:function:Builtin" -> why that raise may stay a builtin
RAISE_ALLOWED = {
    "workflow/_backend.py:resources_for:KeyError": "a mapping-style lookup of the caller's "
    "executor id, like workflow.executors[id]",
    "workflow/_paused.py:PausedRuns.__getitem__:KeyError": "the mapping protocol of the "
    "paused-run table (tests and benchmarks read it)",
    "workflow/_stores/_file.py:FileCheckpointStore._get_blob:KeyError": "internal protocol of "
    "blob lookup: _serde_blobs turns it into a CheckpointError naming the blob",
    "workflow/_lazy.py:lazy_exports.__getattr__:AttributeError": "the module __getattr__ "
    "protocol: Python's import machinery and hasattr expect AttributeError",
    "workflow/_runner.py:Runner._attempts:TimeoutError": "an executor's own timeout, raised in "
    "place of the handler: retry policies see a TimeoutError, and the run fails with an "
    "ExecutorFailedError whose __cause__ it is, as for any handler error",
    "workflow/_stores/_postgres_db.py:load_asyncpg:ImportError": "a missing optional extra, "
    "reported the way Python reports a missing module",
    "workflow/_service/_runs.py:RunManager._spawn:RuntimeError": "app wiring misuse (the run "
    "manager used outside the app's lifespan), never a run failure a caller handles",
    "visualize/_overlay.py:_blocking:RuntimeError": "call-time misuse, as asyncio.run inside a "
    "running event loop: the message says to await load_overlay instead",
    "executors/_agui.py:run_events:LookupError": "caught a few lines below in the same "
    "function and sent to the AG-UI client as a RUN_ERROR event; never reaches a caller",
    "executors/_openai.py:OpenAIChatClient.get_response:AssertionError": "unreachable: "
    "the last step sends no response_format, so it is never refused",
}


def _builtin_raises(path: pathlib.Path, rel: str) -> list[tuple[str, int]]:
    """``("rel:qualname:Builtin", line)`` for each builtin exception a ``raise`` names.

    Looks inside the whole raised expression, so ``raise err or RuntimeError(...)`` counts.
    """
    tree = ast.parse(path.read_text(), str(path))
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, scope: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, (*scope, child.name))
                continue
            if isinstance(child, ast.Raise) and child.exc is not None:
                for sub in ast.walk(child.exc):
                    if isinstance(sub, ast.Name) and _is_builtin_exception(sub.id):
                        if sub.id not in BUILTIN_KINDS_ALLOWED:
                            found.append((f"{rel}:{'.'.join(scope)}:{sub.id}", child.lineno))
            visit(child, scope)

    visit(tree, ())
    return found


def _is_builtin_exception(name: str) -> bool:
    value = getattr(builtins, name, None)
    return inspect.isclass(value) and issubclass(value, BaseException)


def _package_raises() -> list[tuple[str, int]]:
    found = []
    for top in ("workflow", "builders", "executors", "visualize"):
        for path in sorted((PACKAGES_ROOT / top).rglob("*.py")):
            found += _builtin_raises(path, path.relative_to(PACKAGES_ROOT).as_posix())
    return found


def test_no_package_raises_a_bare_builtin_for_a_run_time_failure() -> None:
    found = _package_raises()
    offenders = sorted(f"{key} (line {line})" for key, line in found if key not in RAISE_ALLOWED)
    assert offenders == [], (
        "raise a WorkflowError subclass (MagenticError, AgentError, ...; a new one may keep "
        "the builtin as a second base), or allow-list the site with a reason:\n"
        + "\n".join(offenders)
    )
    stale = sorted(set(RAISE_ALLOWED) - {key for key, _ in found})
    assert stale == [], f"allow-listed raise sites that no longer exist: {stale}"


def test_raise_walk_sees_every_form(tmp_path: pathlib.Path) -> None:
    """The walk flags what it must, so the test above cannot pass vacuously."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "def f(result):\n"
        "    raise RuntimeError('a')\n"
        "class C:\n"
        "    async def m(self):\n"
        "        raise Exception\n"
        "    def n(self, result):\n"
        "        raise result.error or RuntimeError('b')\n"
        "def g():\n"
        "    def inner():\n"
        "        raise KeyError('c') from None\n"
        "    raise ValueError('bad argument')\n"  # allowed: call-time validation
        "def h(exc):\n"
        "    raise exc\n"  # re-raising what was caught: not a new builtin
        "raise LookupError('module level')\n"
    )
    assert _builtin_raises(bad, "bad.py") == [
        ("bad.py:f:RuntimeError", 2),
        ("bad.py:C.m:Exception", 5),
        ("bad.py:C.n:RuntimeError", 7),
        ("bad.py:g.inner:KeyError", 10),
        ("bad.py::LookupError", 14),
    ]
    # and it reads the real packages: the known allowed sites are there
    keys = {key for key, _ in _package_raises()}
    assert "workflow/_runner.py:Runner._attempts:TimeoutError" in keys


class Ask(Executor):
    @handler
    async def on_text(self, text: str, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(text, response_type=str)

    @response_handler
    async def on_reply(self, request: str, reply: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(reply)


@pytest.mark.parametrize("with_store", [False, True])
async def test_unknown_request_id_is_a_workflow_error_and_a_key_error(with_store: bool) -> None:
    store = InMemoryCheckpointStore() if with_store else None
    wf = WorkflowBuilder(start=Ask(id="ask"), checkpoint_store=store).build()
    paused = await wf.run("question?")
    assert paused.status is RunStatus.AWAITING_INPUT
    (pending,) = paused.pending_requests
    with pytest.raises(UnknownRequestError) as info:
        await wf.resume(paused.run_id, responses={"nope": "x"})
    err = info.value
    assert isinstance(err, WorkflowError)
    assert isinstance(err, KeyError)
    assert err.request_id == "nope"
    assert err.pending == (pending.request_id,)
    text = str(err)
    assert "'nope'" in text
    assert repr(pending.request_id) in text
    assert not text.startswith('"')  # not KeyError's quoted repr
    assert pickle.loads(pickle.dumps(err)).pending == err.pending
    # the run is untouched: the right id still completes it
    done = await wf.resume(paused.run_id, responses={pending.request_id: "answer"})
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["answer"]


async def test_unknown_run_is_a_checkpoint_error() -> None:
    wf = WorkflowBuilder(start=Ask(id="ask")).build()
    with pytest.raises(CheckpointError, match="'ghost'"):
        await wf.resume("ghost", responses={"x": 1})


# -- the run-time failures that were builtins, driven through the public API ----------------


class Forever(Executor):
    """Sends itself its input again, so a run of it never completes on its own."""

    @handler
    async def on(self, n: int, ctx: WorkflowContext[int]) -> None:
        await ctx.send_message(n + 1)


async def test_nested_workflow_past_max_supersteps_fails_the_parent_with_a_workflow_error() -> None:
    loop = Forever(id="loop")
    child = WorkflowBuilder(start=loop, name="spinner", max_supersteps=3).add_edge(loop, loop)
    outer = WorkflowExecutor(child.build(), id="outer")
    result = await WorkflowBuilder(start=outer, name="parent").build().run(0)
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "outer"
    cause = result.error.__cause__
    assert isinstance(cause, SubWorkflowError)
    assert isinstance(cause, RuntimeError)  # what it was before: old handlers still work
    assert (cause.workflow_name, cause.status) == ("spinner", RunStatus.MAX_SUPERSTEPS)
    assert "'spinner'" in str(cause)
    assert "'outer'" in str(cause)
    assert "max_supersteps" in str(cause)
    again = pickle.loads(pickle.dumps(cause))
    assert (again.workflow_name, again.status, str(again)) == (
        "spinner",
        RunStatus.MAX_SUPERSTEPS,
        str(cause),
    )


class NeverAsked(MagenticManager):
    """A manager for a team that must fail before it plans anything."""

    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        raise AssertionError("no task arrived, so nothing is planned")

    replan = plan

    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        raise AssertionError("no task arrived")

    async def final_answer(self, ctx: MagenticContext) -> str:
        raise AssertionError("no task arrived")


async def test_magentic_orchestrator_fed_before_any_task_fails_with_a_magentic_error() -> None:
    team = MagenticBuilder(
        participants=[FunctionAgent("alice", "helps", lambda ms: "hi")],
        manager=NeverAsked(),
    ).build()
    orchestrator = team.executors["orchestrator"]

    @executor(id="feeder")
    async def feeder(text: str, ctx: WorkflowContext[str]) -> None:
        await ctx.send_message(text)  # a message with a source, before any task

    wf = WorkflowBuilder(start=feeder).add_edge(feeder, orchestrator).build()
    result = await wf.run("not the task")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "orchestrator"
    cause = result.error.__cause__
    assert isinstance(cause, MagenticError)
    assert "'orchestrator'" in str(cause)
    assert "'feeder'" in str(cause)
    assert "before any task" in str(cause)


async def test_agent_executor_told_to_continue_without_a_turn_fails_with_an_agent_error() -> None:
    agent = AgentExecutor(FunctionAgent("writer", "writes", lambda ms: "text"), id="writer")

    @executor(id="nudge")
    async def nudge(text: str, ctx: WorkflowContext[ContinueTurn]) -> None:
        await ctx.send_message(ContinueTurn(agent_name="writer"))

    result = await WorkflowBuilder(start=nudge).add_edge(nudge, agent).build().run("go")
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    cause = result.error.__cause__
    assert isinstance(cause, AgentError)
    assert cause.agent_name == "writer"
    assert "'writer'" in str(cause)
    assert "no turn to continue" in str(cause)


async def test_overlay_of_an_unknown_run_is_a_checkpoint_error_and_a_lookup_error() -> None:
    store = InMemoryCheckpointStore()
    with pytest.raises(CheckpointError, match="no checkpoint of run 'ghost'") as info:
        await load_overlay("ghost", store)
    assert isinstance(info.value, LookupError)  # what it was before: the CLI catches that


def test_tool_errors_are_workflow_errors_and_runtime_errors() -> None:
    assert issubclass(ToolError, WorkflowError)
    assert issubclass(ToolError, RuntimeError)
    # a tool's own failure goes back to the model; only a dead service fails the turn
    assert not issubclass(ToolError, ToolUnavailableError)


async def test_mcp_tools_used_outside_their_block_raise_a_tool_error() -> None:
    pytest.importorskip("mcp")
    from executors import MCPTools, ToolError

    tools = MCPTools(["some-mcp-server"])
    with pytest.raises(ToolError, match=r"MCPTools for .*some-mcp-server.* is not open"):
        list(tools)


async def test_semantic_kernel_function_failure_is_a_tool_error() -> None:
    pytest.importorskip("semantic_kernel")
    from semantic_kernel.functions import kernel_function

    from executors import ToolError, sk_tools

    class Maths:
        @kernel_function(name="divide", description="Divides a by b.")
        def divide(self, a: int, b: int) -> float:
            return a / b

    (tool,) = sk_tools(Maths())
    with pytest.raises(ToolError, match="division by zero"):
        await tool.call({"a": 1, "b": 0})
    outcome = await tool.invoke('{"a": 1, "b": 0}')  # inside a turn: fed back to the model
    assert outcome.is_error
    assert "division by zero" in outcome.text
