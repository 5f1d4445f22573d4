"""A Ledgerflow agent (or a workflow, through ``Workflow.as_agent``) as a Semantic Kernel agent.

``SemanticKernelAgent(agent)`` subclasses Semantic Kernel's own ``Agent`` base class, so it
goes wherever SK takes an agent: ``get_response`` / ``invoke`` / ``invoke_stream`` with an
``AgentThread``, SK's orchestrations. The conversation lives in SK's
``ChatHistoryAgentThread``, as for SK's ``ChatCompletionAgent``; each call passes the whole
thread to the Ledgerflow agent's ``run`` (which keeps nothing between calls) and adds its
reply to the thread. Streaming yields the reply in one piece (a Ledgerflow agent's own
streaming goes through workflows as ``AgentDelta`` events).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any

from pydantic import Field
from semantic_kernel.agents import Agent as SKAgent
from semantic_kernel.agents import AgentResponseItem, AgentThread, ChatHistoryAgentThread
from semantic_kernel.contents import (
    AuthorRole,
    ChatMessageContent,
    StreamingChatMessageContent,
)

from ._agents import AgentResponse
from ._chat import ChatMessage

__all__ = ("SemanticKernelAgent",)

SKMessages = str | ChatMessageContent | list[str | ChatMessageContent] | None


class SemanticKernelAgent(SKAgent):
    """A Ledgerflow agent behind Semantic Kernel's agent API.

    Args:
        agent: Any Ledgerflow agent (``ChatAgent``, ``FunctionAgent``, ``A2AAgent``,
            ``wf.as_agent(...)``...): ``.name``, ``.description``, ``async run(messages)``.
    """

    ledgerflow_agent: Any = Field(exclude=True)

    def __init__(self, agent: Any, **kwargs: Any) -> None:
        name = getattr(agent, "name", None)
        if not isinstance(name, str) or not callable(getattr(agent, "run", None)):
            raise TypeError(
                f"{agent!r} is not a Ledgerflow agent: it needs .name and async run(messages)"
            )
        super().__init__(  # type: ignore[call-arg]
            ledgerflow_agent=agent,
            name=_sk_name(name),
            description=str(getattr(agent, "description", "") or ""),
            **kwargs,
        )

    async def _answer(
        self, messages: SKMessages, thread: AgentThread | None
    ) -> tuple[ChatMessageContent, ChatHistoryAgentThread]:
        chat_thread = await self._ensure_thread_exists_with_messages(
            messages=messages,
            thread=thread,
            construct_thread=ChatHistoryAgentThread,
            expected_type=ChatHistoryAgentThread,
        )
        history = [m async for m in chat_thread.get_messages()]
        response = await self.ledgerflow_agent.run([_to_ledgerflow(m) for m in history])
        if not isinstance(response, AgentResponse):
            raise TypeError(f"agent {self.name!r} returned {type(response).__name__}")
        reply = ChatMessageContent(role=AuthorRole.ASSISTANT, content=response.text, name=self.name)
        await self._notify_thread_of_new_message(chat_thread, reply)
        return reply, chat_thread

    async def get_response(
        self, messages: SKMessages = None, *, thread: AgentThread | None = None, **kwargs: Any
    ) -> AgentResponseItem[ChatMessageContent]:
        """The agent's reply to the thread plus ``messages``."""
        reply, chat_thread = await self._answer(messages, thread)
        return AgentResponseItem(message=reply, thread=chat_thread)

    async def invoke(
        self,
        messages: SKMessages = None,
        *,
        thread: AgentThread | None = None,
        on_intermediate_message: Callable[[ChatMessageContent], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[AgentResponseItem[ChatMessageContent]]:
        """Yields the one reply (the Ledgerflow agent answers in one turn)."""
        reply, chat_thread = await self._answer(messages, thread)
        yield AgentResponseItem(message=reply, thread=chat_thread)

    async def invoke_stream(
        self,
        messages: SKMessages = None,
        *,
        thread: AgentThread | None = None,
        on_intermediate_message: Callable[[ChatMessageContent], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[AgentResponseItem[StreamingChatMessageContent]]:
        """Yields the reply as one streaming chunk."""
        reply, chat_thread = await self._answer(messages, thread)
        chunk = StreamingChatMessageContent(
            role=AuthorRole.ASSISTANT, content=reply.content, name=self.name, choice_index=0
        )
        yield AgentResponseItem(message=chunk, thread=chat_thread)


def _to_ledgerflow(message: ChatMessageContent) -> ChatMessage:
    if message.role == AuthorRole.SYSTEM:
        return ChatMessage("system", message.content or "")
    if message.role == AuthorRole.ASSISTANT:
        return ChatMessage("assistant", message.content or "", author=message.name)
    return ChatMessage("user", message.content or "", author=message.name)


def _sk_name(name: str) -> str:
    # SK agent names allow letters, digits, '_' and '-'.
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "agent"
