"""A whole workflow as one agent of a team, and as a tool of another agent.

``research`` is a two-agent sequential workflow (a searcher, then a summariser).
``research.as_agent(...)`` makes it one participant of a group chat with a critic: the
inner agents' streamed tokens pass through the outer run's events, and the team sees one
speaker, "research". ``research.as_tool(...)`` gives the same workflow to a ``ChatAgent``
as a tool whose schema is the workflow's input::

    .venv/bin/python examples/workflow_as_agent.py

Models are scripted, so this runs offline.
"""

from __future__ import annotations

import json

import anyio

from builders import GroupChatBuilder, SequentialBuilder
from executors import ChatAgent, ChatMessage, ChatResponse, ScriptedChatClient, ToolCall
from workflow import Workflow, events


def research_workflow() -> Workflow:
    searcher = ChatAgent(
        "searcher", "finds facts", "", ScriptedChatClient(lambda m: "ledgers date to Mesopotamia")
    )
    summariser = ChatAgent(
        "summariser",
        "summarises",
        "",
        ScriptedChatClient(lambda m: f"Summary: {m[-1].text}."),
    )
    return SequentialBuilder([searcher, summariser], name="research").build()


async def main() -> None:
    research = research_workflow().as_agent("research", "Researches a topic and summarises it")
    critic = ChatAgent("critic", "checks claims", "", ScriptedChatClient(lambda m: "Looks right."))
    team = GroupChatBuilder([research, critic], max_rounds=2).build()
    streamed: list[str] = []
    async for event in team.run_stream("How old are ledgers?"):
        if isinstance(event, events.AgentDelta):
            streamed.append(event.executor_id)
        if isinstance(event, events.OutputEmitted):
            for message in event.data[1:]:
                print(f"{message.author}: {message.text}")
    print("tokens streamed from:", sorted(set(streamed)))

    def model(messages: list[ChatMessage]) -> str | ChatResponse:
        if messages[-1].role == "tool":
            return f"Via the research tool: {messages[-1].text}"
        call = ToolCall(id="c1", name="research", arguments=json.dumps({"input": "ledgers"}))
        return ChatResponse(tool_calls=(call,))

    tool = research_workflow().as_tool("research", "Researches a topic")
    writer = ChatAgent("writer", "writes", "", ScriptedChatClient(model), tools=[tool])
    reply = await writer.run([ChatMessage("user", "Write one line about ledgers.")])
    print(reply.text)


if __name__ == "__main__":
    anyio.run(main)
