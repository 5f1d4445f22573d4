"""One error tree: every exception class the four packages define derives from WorkflowError.

The walk imports every module of ``workflow``, ``builders``, ``executors`` and ``visualize``
and collects the exception classes defined there, so a new error class outside the tree
fails here (or is added to ``ALLOWED`` with the reason it may stay outside).
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import builders
import executors
import visualize
import workflow
from builders import WorkflowBuilder
from workflow import (
    CheckpointError,
    Executor,
    InMemoryCheckpointStore,
    RunStatus,
    WorkflowContext,
    WorkflowError,
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
