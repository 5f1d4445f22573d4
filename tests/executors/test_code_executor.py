"""``CodeExecutor``: the sandbox as a graph node, fed by agents' messages."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from builders import WorkflowBuilder
from executors import (
    AgentResponded,
    AgentResponse,
    ChatAgent,
    ChatMessage,
    CodeExecuted,
    CodeExecutor,
    CodeResult,
    HumanExecutor,
    HumanInputRequest,
    ScriptedChatClient,
    sandbox_available,
)
from tests.conftest import require_service
from workflow import RunStatus

pytestmark = pytest.mark.anyio

FIB = """Here is the function:

```python
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
print([fib(i) for i in range(10)])
```
"""


def sandboxed(**options: Any) -> CodeExecutor:
    """A code executor on this machine's best sandbox (skipped, or failed in CI, without one)."""
    available, reason = sandbox_available("auto")
    require_service(available, f"code sandbox: {reason}")
    if not reason.startswith("bubblewrap"):
        # Without bubblewrap the code runs as an unprivileged uid on the host file tree,
        # which may not be able to read this venv's interpreter.
        options.setdefault("python", shutil.which("python3", path="/usr/bin:/bin"))
    return CodeExecutor(**options)


async def run_node(node: CodeExecutor, message: Any) -> tuple[CodeResult, CodeExecuted]:
    result = await WorkflowBuilder(start=node).build().run(message)
    assert result.status is RunStatus.COMPLETED, result.error
    (output,) = result.outputs
    (event,) = [e for e in result.events if isinstance(e, CodeExecuted)]
    assert event.result == output
    assert event.executor_id == node.id
    return output, event


async def test_runs_the_python_blocks_of_a_reply() -> None:
    node = sandboxed(timeout=30)
    assert node.kind == "code"
    assert node.id == "code"
    reply = AgentResponse(messages=[ChatMessage("assistant", FIB, author="assistant")])
    result, event = await run_node(node, reply)
    assert result.exit_code == 0
    assert result.stdout == "[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\n"
    assert len(event.blocks) == 1
    assert event.blocks[0].startswith("def fib(n):")


async def test_str_may_be_bare_code_and_blocks_share_a_workspace() -> None:
    node = sandboxed(timeout=30)
    bare, _ = await run_node(node, "print(6 * 7)")
    assert (bare.exit_code, bare.stdout) == (0, "42\n")
    two = (
        "```python\nopen('x.txt', 'w').write('hi')\n```\n"
        "```python\nprint(open('x.txt').read())\n```"
    )
    shared, event = await run_node(node, two)
    assert shared.stdout == "hi\n"
    assert len(event.blocks) == 2


async def test_failures_and_timeouts_are_results() -> None:
    node = sandboxed(timeout=2)
    failed, _ = await run_node(node, ChatMessage("assistant", "```python\n1 / 0\n```"))
    assert failed.exit_code != 0
    assert "ZeroDivisionError" in failed.stderr
    stuck, _ = await run_node(node, "while True:\n    pass\n")
    assert stuck.timed_out
    assert "timed out" in stuck.text


async def test_prose_without_a_fence_is_not_run() -> None:
    node = CodeExecutor(timeout=5)  # nothing reaches the sandbox
    for message in (
        ChatMessage("assistant", "print('this is prose about print')"),
        AgentResponse(messages=[ChatMessage("assistant", "All done. TERMINATE")]),
        "   ",
        "```sh\nls\n```",
    ):
        result, event = await run_node(node, message)
        assert result.exit_code == 1
        assert "no Python code block" in result.stderr
        assert event.blocks == ()
        assert len(result.in_reply_to) == 1  # the message it answers, as a chat message
        assert result.in_reply_to[0].text == getattr(message, "text", message)


def test_sandbox_options_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        CodeExecutor(timeout=0)
    with pytest.raises(ValueError, match="isolation='none' cannot keep the network off"):
        CodeExecutor(isolation="none")
    with pytest.raises(TypeError):
        CodeExecutor(bogus=1)
    assert CodeExecutor("runner", timeout=5, memory_bytes=2**29).config.memory_bytes == 2**29


async def test_agent_code_proxy_loop() -> None:
    assistant = ChatAgent("assistant", chat_client=ScriptedChatClient([FIB]))
    code = sandboxed(timeout=30)
    proxy = HumanExecutor("proxy", human_input_mode="NEVER", max_consecutive_auto_reply=1)
    wf = WorkflowBuilder(start=assistant).add_chain([assistant, code, proxy]).build()
    result = await wf.run("write fib")
    assert result.status is RunStatus.COMPLETED, result.error
    (reply,) = [e.response for e in result.events if isinstance(e, AgentResponded)][1:]
    assert reply.agent_name == "proxy"
    assert reply.text == "exit code: 0\nstdout:\n[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]"


async def test_the_proxy_sees_the_message_the_code_came_from() -> None:
    assistant = ChatAgent("assistant", chat_client=ScriptedChatClient(["Let me think."]))
    code = CodeExecutor(timeout=5)  # prose: nothing reaches the sandbox
    proxy = HumanExecutor("proxy", human_input_mode="ALWAYS")
    wf = WorkflowBuilder(start=assistant).add_chain([assistant, code, proxy]).build()
    paused = await wf.run("write fib")
    (request,) = paused.pending_requests
    assert isinstance(request.payload, HumanInputRequest)
    conversation = request.payload.conversation
    assert [(m.role, m.author) for m in conversation] == [
        ("assistant", "assistant"),
        ("assistant", "code"),
    ]
    assert conversation[0].text == "Let me think."
    assert conversation[1].text.startswith("exit code: 1")
