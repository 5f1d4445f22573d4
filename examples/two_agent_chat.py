"""Two-agent chat: an assistant writes Python, a user proxy runs it in a sandbox and reports.

The classic AutoGen pair, built as an explicit graph::

    assistant --(has a ```python block)--> code --> user_proxy --> assistant
    assistant --(otherwise)--------------------->  user_proxy

The user proxy never asks a person here (``human_input_mode="NEVER"``): it answers code
results with their output, anything else with a nudge, and ends the chat when the assistant
says TERMINATE (or after ``max_consecutive_auto_reply`` replies; ``max_supersteps`` is the
last guard). A code result carries the assistant's message it ran (``in_reply_to``), so the
proxy's conversation (its output, and what a person would be shown in another mode) holds
every message, including the ones that went through the code node.

Offline by default, with scripted replies. With ``OPENAI_API_KEY`` set it talks to a real
model instead (``OPENAI_MODEL``, default ``gpt-4o-mini``; ``OPENAI_BASE_URL`` for any
OpenAI-compatible server)::

    .venv/bin/python examples/two_agent_chat.py
"""

from __future__ import annotations

import os
import shutil
import sys

import anyio

from builders import WorkflowBuilder
from executors import (
    AgentResponded,
    AgentResponse,
    ChatAgent,
    ChatClient,
    CodeExecutor,
    HumanExecutor,
    OpenAIChatClient,
    ScriptedChatClient,
    extract_code_blocks,
    sandbox_available,
)
from workflow import Case, Default, RunStatus, Workflow
from workflow.events import OutputEmitted, RunFinished

TASK = "Write a Python function for Fibonacci numbers and test it."

INSTRUCTIONS = """You are a helpful AI assistant who solves tasks with Python.
Write complete, runnable code in one ```python block; the user runs it and tells you the
output. Test your code with assertions and print a short confirmation. If the output shows
an error, fix the code and send it again. When the task is done and verified, reply with a
short summary followed by the word TERMINATE."""

SCRIPT = [
    """Here is an iterative Fibonacci function, with tests:

```python
def fib(n: int) -> int:
    \"\"\"Return the n-th Fibonacci number (fib(0) == 0, fib(1) == 1).\"\"\"
    if n < 0:
        raise ValueError("n must be >= 0")
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


assert [fib(i) for i in range(10)] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
assert fib(50) == 12586269025
try:
    fib(-1)
except ValueError:
    pass
else:
    raise AssertionError("fib(-1) should raise")
print("all tests passed; fib(30) =", fib(30))
```""",
    "The tests passed: `fib` returns correct values, handles large n and rejects negative "
    "input. TERMINATE",
]


def chat_client() -> tuple[ChatClient, bool]:
    """A real model when an API key is configured, else the scripted replies."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return OpenAIChatClient(os.environ.get("OPENAI_MODEL", "gpt-4o-mini")), True
    return ScriptedChatClient(SCRIPT), False


def code_executor(real_model: bool) -> CodeExecutor:
    """The sandboxed code node, on the best isolation this machine has."""
    available, reason = sandbox_available("auto")
    if available:
        options: dict[str, object] = {}
        if not reason.startswith("bubblewrap"):
            # Without bubblewrap the code runs as an unprivileged uid on the host files;
            # the system interpreter is readable by it where a venv under /root may not be.
            options["python"] = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        return CodeExecutor("code", timeout=60, **options)
    if real_model:
        sys.exit(f"no code sandbox on this machine ({reason}); refusing to run model code")
    # Our own scripted code is trusted: run it with limits only, and say so.
    print(f"note: no sandbox ({reason}); running the scripted code with limits only\n")
    return CodeExecutor("code", timeout=60, isolation="none", network=True)


def has_code(response: AgentResponse) -> bool:
    return "```" in response.text and bool(extract_code_blocks(response.text))


def build(client: ChatClient, code: CodeExecutor) -> Workflow:
    assistant = ChatAgent(
        "assistant", "writes and fixes Python code", INSTRUCTIONS, client, max_tool_iterations=0
    )
    user_proxy = HumanExecutor(
        "user_proxy",
        human_input_mode="NEVER",
        max_consecutive_auto_reply=8,
        default_auto_reply="Please continue. Reply TERMINATE when the task is done.",
    )
    return (
        WorkflowBuilder(start=assistant, name="two_agent_chat", max_supersteps=60)
        .add_switch_case_edge_group(assistant, [Case(has_code, code), Default(user_proxy)])
        .add_edge(code, user_proxy)
        .add_edge(user_proxy, assistant)
        .build()
    )


async def main() -> RunStatus:
    """Runs the chat once, printing each message; returns how the run ended."""
    finished = RunStatus.FAILED
    client, real = chat_client()
    wf = build(client, code_executor(real))
    print(f"user_proxy (to assistant):\n{TASK}\n")
    async for event in wf.run_stream(TASK, run_id="two-agent-chat"):
        match event:
            case AgentResponded(agent_name=name, response=response):
                to = "user_proxy" if name == "assistant" else "assistant"
                print(f"{'-' * 72}\n{name} (to {to}):\n{response.text}\n")
            case OutputEmitted(executor_id="user_proxy", data=[*messages]):
                who = " -> ".join(m.author or m.role for m in messages)
                print(f"{'-' * 72}\nuser_proxy's conversation: {who}")
            case RunFinished(status=status, error=error):
                finished = status
                print(f"{'-' * 72}\nchat ended: {status.value}" + (f" ({error})" if error else ""))
    if isinstance(client, OpenAIChatClient):
        await client.aclose()
    return finished


if __name__ == "__main__":
    sys.exit(0 if anyio.run(main) is RunStatus.COMPLETED else 1)
