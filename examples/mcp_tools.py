"""MCP both ways: a workflow served as an MCP tool, called by an agent through MCPTools.

``ledgerflow mcp examples/mcp_tools.py:word_stats`` serves the ``word_stats`` workflow below
as an MCP tool over stdio. This script starts exactly that as a child process, connects to
it with ``MCPTools`` (the mcp SDK's client) and gives the tools to a ``ChatAgent``, whose
model decides to call the tool and then reports the result::

    .venv/bin/python examples/mcp_tools.py

The model is scripted, so this runs offline; pass any ``ChatClient`` (``OpenAIChatClient``)
instead to let a real model choose. Any MCP server works the same way:
``MCPTools(command=["npx", "some-mcp-server"])`` or ``MCPTools(url="http://host/mcp")``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import anyio

from builders import WorkflowBuilder
from executors import ChatAgent, ChatMessage, ChatResponse, MCPTools, ScriptedChatClient, ToolCall
from workflow import executor


@executor(id="count")
def count(text: str) -> str:
    words = text.lower().split()
    top = ", ".join(f"{w}={n}" for w, n in Counter(words).most_common(2))
    return f"{len(words)} words; most common: {top}"


word_stats = WorkflowBuilder(start=count, name="word_stats").build()


def model(messages: list[ChatMessage]) -> str | ChatResponse:
    """Scripted model: call word_stats on the user's text, then report what it said."""
    last = messages[-1]
    if last.role == "tool":
        return f"The MCP tool says: {last.text}"
    arguments = json.dumps({"input": last.text})
    return ChatResponse(tool_calls=(ToolCall(id="call_1", name="word_stats", arguments=arguments),))


async def main() -> None:
    server = [sys.executable, "-m", "workflow.cli", "mcp", f"{__file__}:word_stats"]
    async with MCPTools([*server, "--store", "memory://"]) as tools:
        print("tools offered by the server:", [t.name for t in tools])
        agent = ChatAgent("analyst", "counts words", "", ScriptedChatClient(model), tools=tools)
        reply = await agent.run([ChatMessage("user", "the cat saw the other cat")])
    print(reply.text)


if __name__ == "__main__":
    anyio.run(main)
