"""Semantic Kernel inside Ledgerflow: a native SK plugin as tools, an SK chat service as
the model, and a kernel filter that sees every call.

``sk_tools(kernel)`` turns the kernel's functions into tools with Semantic Kernel's own
schemas, invoked through the kernel (so its filters run). ``SemanticKernelChatClient``
makes any SK chat-completion service a Ledgerflow ``ChatClient``. Offline by default, with
a small scripted SK service; point SK's own OpenAI connector at any OpenAI-compatible
endpoint with::

    .venv/bin/python examples/semantic_kernel.py
    .venv/bin/python examples/semantic_kernel.py --base-url http://127.0.0.1:8080/v1 --model m
"""

from __future__ import annotations

import sys
from pathlib import Path

# This script shares its name with the package it demonstrates: keep its own folder off the
# import path, or `import semantic_kernel` would import this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio
from semantic_kernel import Kernel
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import (
    AuthorRole,
    ChatHistory,
    ChatMessageContent,
    FunctionCallContent,
)
from semantic_kernel.filters import FilterTypes, FunctionInvocationContext
from semantic_kernel.functions import kernel_function

from executors import ChatAgent, ChatMessage, SemanticKernelChatClient, sk_tools


class Weather:
    """A native Semantic Kernel plugin."""

    @kernel_function(name="forecast", description="Tomorrow's forecast for a city.")
    def forecast(self, city: Annotated[str, "the city"]) -> str:
        return f"sunny and 21 C in {city}"


class ScriptedSettings(PromptExecutionSettings):
    """Settings with the OpenAI-style tools fields, so tools can be offered."""

    tools: list[dict[str, Any]] | None = None
    tool_choice: str | None = None


class ScriptedService(ChatCompletionClientBase):
    """An offline SK chat service: asks for the forecast, then reports it."""

    def get_prompt_execution_settings_class(self) -> type[PromptExecutionSettings]:
        return ScriptedSettings

    async def _inner_get_chat_message_contents(
        self, chat_history: ChatHistory, settings: PromptExecutionSettings
    ) -> list[ChatMessageContent]:
        last = chat_history.messages[-1]
        if last.role == AuthorRole.TOOL:
            result = last.items[0].result  # type: ignore[union-attr]
            return [ChatMessageContent(role=AuthorRole.ASSISTANT, content=f"Tomorrow: {result}.")]
        call = FunctionCallContent(
            id="call_1", name="Weather-forecast", arguments='{"city": "Paris"}'
        )
        return [ChatMessageContent(role=AuthorRole.ASSISTANT, items=[call])]


def service(args: argparse.Namespace) -> ChatCompletionClientBase:
    if args.base_url is None:
        return ScriptedService(ai_model_id="scripted")
    from openai import AsyncOpenAI
    from semantic_kernel.connectors.ai.open_ai import OpenAIChatCompletion

    client = AsyncOpenAI(base_url=args.base_url, api_key=args.api_key)
    return OpenAIChatCompletion(ai_model_id=args.model, async_client=client)


async def main(args: argparse.Namespace) -> None:
    kernel = Kernel()
    kernel.add_plugin(Weather(), plugin_name="Weather")

    @kernel.filter(FilterTypes.FUNCTION_INVOCATION)
    async def log_calls(
        context: FunctionInvocationContext,
        next: Callable[[FunctionInvocationContext], Awaitable[None]],
    ) -> None:
        arguments = dict(context.arguments or {})
        print(f"kernel filter: {context.function.fully_qualified_name}({arguments})")
        await next(context)

    agent = ChatAgent(
        "forecaster",
        "answers weather questions",
        "Use the tools to answer.",
        SemanticKernelChatClient(service(args)),
        tools=sk_tools(kernel),
    )
    reply = await agent.run([ChatMessage("user", "Weather in Paris tomorrow?")])
    print(reply.text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: offline)")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--api-key", default="not-needed")
    anyio.run(main, parser.parse_args())
