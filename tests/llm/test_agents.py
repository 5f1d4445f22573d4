"""Agents and conversation teams on a real local model (see conftest)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from builders import GroupChatBuilder, SpeakerSelected, WorkflowBuilder, two_agent_chat
from executors import (
    AgentResponse,
    ChatAgent,
    ChatDelta,
    ChatMessage,
    ChatResponse,
    OpenAIChatClient,
    ToolSpec,
    tool,
)
from workflow import RunStatus
from workflow.events import AgentDelta

from .conftest import GREEDY, make_client
from .local_server import LocalLLMServer

pytestmark = [pytest.mark.anyio, pytest.mark.llm, pytest.mark.timeout(900)]


def agent(name: str, description: str, client: Any) -> ChatAgent:
    return ChatAgent(
        name,
        description,
        f"You are {name}, {description}. Answer in one or two short sentences.",
        client,
        max_tool_iterations=0,
    )


async def test_a_chat_agent_streams_its_reply_and_records_usage(
    client: OpenAIChatClient,
) -> None:
    poet = agent("poet", "who writes about the sea", client)
    result = await WorkflowBuilder(start=poet).build().run("Describe the sea.")
    assert result.status is RunStatus.COMPLETED, result.error
    (reply,) = result.outputs
    assert isinstance(reply, AgentResponse)
    deltas = [e for e in result.events if isinstance(e, AgentDelta)]
    assert len(deltas) > 1  # streamed in pieces, as the model wrote them
    assert all(d.agent_name == "poet" and d.executor_id == "poet" for d in deltas)
    assert "".join(d.text for d in deltas) == reply.text
    assert reply.text.strip()
    assert 0 < reply.usage.output_tokens <= 40  # max_tokens holds


class ForcedFirstCall:
    """Forces a tool call on the first request of a turn, then lets the model answer.

    A 135M model never chooses a tool by itself; llama.cpp's ``chatml-function-calling``
    format does produce a real, grammar-constrained call when ``tool_choice`` names it.
    """

    def __init__(self, forced: OpenAIChatClient, free: OpenAIChatClient) -> None:
        self.forced, self.free, self.model = forced, free, free.model

    def _pick(self, messages: Sequence[ChatMessage]) -> OpenAIChatClient:
        return self.free if messages[-1].role == "tool" else self.forced

    async def get_response(self, messages: Sequence[ChatMessage], **options: Any) -> ChatResponse:
        return await self._pick(messages).get_response(messages, **options)

    def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        return self._pick(messages).get_streaming_response(
            messages, tools=tools, max_tokens=max_tokens
        )


async def test_a_real_tool_call_is_executed_and_fed_back(llm_server: LocalLLMServer) -> None:
    ran: list[tuple[int, int]] = []

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers.

        Args:
            a: First addend.
            b: Second addend.
        """
        ran.append((a, b))
        return a + b

    choice = {"type": "function", "function": {"name": "add"}}
    async with (
        make_client(llm_server, extra_body={**GREEDY, "tool_choice": choice}) as forced,
        make_client(llm_server) as free,
    ):
        calc = ChatAgent(
            "calc", "adds numbers", "Use the add tool.", ForcedFirstCall(forced, free), tools=[add]
        )
        result = await WorkflowBuilder(start=calc).build().run("What is 2 + 3?")
    assert result.status is RunStatus.COMPLETED, result.error
    (reply,) = result.outputs
    call_message, tool_message, answer = reply.messages
    (call,) = call_message.tool_calls
    assert call.name == "add"
    args = json.loads(call.arguments)
    assert ran == [(args["a"], args["b"])]  # the model's own arguments reached the tool
    assert tool_message.role == "tool"
    assert tool_message.tool_call_id == call.id
    assert tool_message.text == str(args["a"] + args["b"])  # ...and its result went back
    assert answer.role == "assistant"
    assert not answer.tool_calls


async def test_the_two_agent_chat_alternates_within_its_turns(client: OpenAIChatClient) -> None:
    a = agent("planner", "who plans picnics", client)
    b = agent("critic", "who points out what a plan forgot", client)
    result = await two_agent_chat(a, b, "Plan a picnic.", max_turns=1)
    assert result.status is RunStatus.COMPLETED, result.error
    (conversation,) = result.outputs
    speakers = [m.author for m in conversation if m.role == "assistant"]
    assert speakers == ["planner", "critic"]  # a answers first, then b; one turn each
    assert all(m.text.strip() for m in conversation if m.role == "assistant")


async def test_a_group_chat_where_the_model_picks_each_speaker(
    client: OpenAIChatClient,
) -> None:
    team = [
        agent("chef", "who knows recipes", client),
        agent("grocer", "who knows prices", client),
        agent("host", "who plans the evening", client),
    ]
    wf = GroupChatBuilder(team, selector=client, max_rounds=2).build()
    result = await wf.run("Plan a dinner for four.")
    assert result.status is RunStatus.COMPLETED, result.error
    picked = [e.speaker for e in result.events if isinstance(e, SpeakerSelected)]
    assert len(picked) == 2
    assert set(picked) <= {"chef", "grocer", "host"}
    (conversation,) = result.outputs
    assert [m.author for m in conversation if m.role == "assistant"] == picked
    # the selector's schema was refused once (llama.cpp) and the client remembered
    assert client.structured_output == "json_object_schema"
