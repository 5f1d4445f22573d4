"""Semantic Kernel: its functions as Ledgerflow tools, its chat services as a ``ChatClient``.

``sk_tools(kernel_or_plugin)`` turns every kernel function into a tool whose schema is the
one Semantic Kernel itself offers models (``kernel_function_metadata_to_function_call_format``)
and whose calls go through ``Kernel.invoke``, so the kernel's function-invocation filters
(logging, approval, argument rewriting) run for every call a Ledgerflow agent makes.

``SemanticKernelChatClient(service)`` wraps any Semantic Kernel chat-completion service
(OpenAI, Azure OpenAI, Ollama, ...). Tools are passed to the service in its execution
settings' ``tools`` field, without Semantic Kernel's auto-invocation: the model's tool calls
come back to the Ledgerflow agent, which runs them with its own approval and error rules.
A service whose settings have no ``tools`` field gets a ``ChatConfigError`` when tools are
offered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from semantic_kernel import Kernel
from semantic_kernel.connectors.ai.chat_completion_client_base import ChatCompletionClientBase
from semantic_kernel.connectors.ai.function_calling_utils import (
    kernel_function_metadata_to_function_call_format,
)
from semantic_kernel.connectors.ai.prompt_execution_settings import PromptExecutionSettings
from semantic_kernel.contents import (
    AuthorRole,
    ChatHistory,
    ChatMessageContent,
    FunctionCallContent,
    FunctionResultContent,
    StreamingChatMessageContent,
    TextContent,
)
from semantic_kernel.functions import KernelArguments, KernelPlugin

from ._chat import (
    ChatClientError,
    ChatConfigError,
    ChatDelta,
    ChatMessage,
    ChatResponse,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from ._schema_tool import SchemaTool, ToolError
from ._tools import ApprovalMode, Tool

__all__ = ("SemanticKernelChatClient", "sk_tools")


# --------------------------------------------------------------------------- tools


def _kernel_of(source: Kernel | KernelPlugin | object) -> Kernel:
    if isinstance(source, Kernel):
        return source
    kernel = Kernel()
    if isinstance(source, KernelPlugin):
        kernel.add_plugin(source)
    elif isinstance(source, type) or source is None:
        raise TypeError(
            f"sk_tools takes a Kernel, a KernelPlugin or a plugin object (an instance with "
            f"@kernel_function methods), got {source!r}"
        )
    else:
        kernel.add_plugin(source, plugin_name=type(source).__name__)
    return kernel


def sk_tools(
    plugin_or_kernel: Kernel | KernelPlugin | object,
    *,
    approval_mode: ApprovalMode = "never_require",
) -> list[Tool[Any, Any]]:
    """Every kernel function of a kernel (or of one plugin) as a Ledgerflow tool.

    Tool names are Semantic Kernel's fully qualified names (``plugin-function``). A plugin
    or plugin object is added to a fresh kernel; pass your own kernel to have its filters
    applied.

    Raises:
        TypeError: The argument is neither a kernel, a plugin nor a plugin object.
        ValueError: The kernel has no functions.
    """
    kernel = _kernel_of(plugin_or_kernel)
    tools: list[Tool[Any, Any]] = []
    for metadata in kernel.get_full_list_of_function_metadata():
        spec = kernel_function_metadata_to_function_call_format(metadata)["function"]
        tools.append(
            SchemaTool(
                spec["name"],
                spec["description"] or metadata.name,
                spec["parameters"],
                _invoker(kernel, metadata.plugin_name or "", metadata.name),
                approval_mode=approval_mode,
            )
        )
    if not tools:
        raise ValueError(
            f"{plugin_or_kernel!r} has no kernel functions; decorate methods with "
            "@kernel_function or add a plugin to the kernel"
        )
    return tools


def _invoker(kernel: Kernel, plugin: str, function: str) -> Any:
    async def call(arguments: dict[str, Any]) -> str:
        try:
            result = await kernel.invoke(
                function_name=function, plugin_name=plugin, arguments=KernelArguments(**arguments)
            )
        except Exception as exc:
            cause = exc.__cause__
            raise ToolError(f"{exc}" + (f": {cause}" if cause else "")) from exc
        if result is None:
            raise ToolError(f"the kernel's filters cancelled the call of {plugin}-{function}")
        value = result.value
        return value if isinstance(value, str) else str(result)

    return call


# --------------------------------------------------------------------------- chat client


class SemanticKernelChatClient:
    """Any Semantic Kernel chat-completion service as a ``ChatClient``.

    Args:
        service: A ``ChatCompletionClientBase`` (e.g. ``OpenAIChatCompletion``).
        settings: Execution settings to start from (temperature, max tokens...); copied per
            request.

    Raises:
        TypeError: ``service`` is not a chat-completion service.
    """

    def __init__(
        self, service: ChatCompletionClientBase, settings: PromptExecutionSettings | None = None
    ) -> None:
        if not isinstance(service, ChatCompletionClientBase):
            raise TypeError(
                f"SemanticKernelChatClient needs a Semantic Kernel chat-completion service "
                f"(ChatCompletionClientBase), got {service!r}"
            )
        self.service = service
        self.settings = settings
        self.model = str(service.ai_model_id)

    def __repr__(self) -> str:
        return f"SemanticKernelChatClient({type(self.service).__name__}, model={self.model!r})"

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        """The service's complete answer, with its tool calls and token usage."""
        settings = self._settings(tools, response_format, max_tokens)
        try:
            content = await self.service.get_chat_message_content(_history(messages), settings)
        except Exception as exc:
            raise self._error(exc) from exc
        if content is None:
            raise ChatClientError(
                f"Semantic Kernel service {self.model!r} returned no message", model=self.model
            )
        calls = tuple(
            ToolCall(id=str(item.id), name=str(item.name), arguments=_arguments(item.arguments))
            for item in content.items
            if isinstance(item, FunctionCallContent)
        )
        return ChatResponse(
            content.content or "",
            tool_calls=calls,
            usage=_usage(content.metadata.get("usage")) or Usage(),
            finish_reason=_finish(content.finish_reason),
            model=content.ai_model_id or self.model,
        )

    async def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        """The answer as the service streams it: text pieces, tool-call fragments, usage."""
        settings = self._settings(tools, None, max_tokens)
        stream = self.service.get_streaming_chat_message_contents(_history(messages), settings)
        try:
            async for chunk in stream:
                for part in chunk[:1]:  # one choice
                    delta = _delta(part, self.model)
                    if delta is not None:
                        yield delta
        except Exception as exc:
            raise self._error(exc) from exc
        finally:
            await stream.aclose()

    def _settings(
        self,
        tools: Sequence[ToolSpec] | None,
        response_format: type[BaseModel] | dict[str, Any] | None,
        max_tokens: int | None = None,
    ) -> PromptExecutionSettings:
        cls = self.service.get_prompt_execution_settings_class()
        base = self.settings.model_dump(exclude_none=True) if self.settings is not None else {}
        settings = cls(**base)
        fields = type(settings).model_fields
        if tools:
            if "tools" not in fields:
                raise ChatConfigError(
                    f"Semantic Kernel service {type(self.service).__name__} ({self.model!r}) "
                    "takes no tools in its execution settings; use an agent without tools, or "
                    "an OpenAI-compatible service",
                    model=self.model,
                )
            settings.tools = [t.to_openai() for t in tools]  # type: ignore[attr-defined]
            settings.tool_choice = "auto"  # type: ignore[attr-defined]
        if max_tokens is not None:
            if "max_tokens" in fields:  # OpenAI-style settings; others keep their own limit
                settings.max_tokens = max_tokens  # type: ignore[attr-defined]
            elif "max_completion_tokens" in fields:
                settings.max_completion_tokens = max_tokens  # type: ignore[attr-defined]
        if response_format is not None:
            if "response_format" not in fields:
                raise ChatConfigError(
                    f"Semantic Kernel service {self.model!r} takes no response_format",
                    model=self.model,
                )
            settings.response_format = response_format  # type: ignore[attr-defined]
        return settings

    def _error(self, exc: Exception) -> ChatClientError:
        if isinstance(exc, ChatClientError):
            return exc
        cause = exc.__cause__
        return ChatClientError(
            f"Semantic Kernel service {type(self.service).__name__} ({self.model!r}) failed: "
            f"{exc}" + (f" ({cause})" if cause else ""),
            model=self.model,
        )


def _history(messages: Iterable[ChatMessage]) -> ChatHistory:
    history = ChatHistory()
    names: dict[str, str] = {}
    for message in messages:
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            result = FunctionResultContent(
                id=call_id, name=names.get(call_id, "tool"), result=message.text
            )
            history.add_message(ChatMessageContent(role=AuthorRole.TOOL, items=[result]))
        elif message.role == "assistant" and message.tool_calls:
            items: list[Any] = [TextContent(text=message.text)] if message.text else []
            for call in message.tool_calls:
                names[call.id] = call.name
                items.append(
                    FunctionCallContent(id=call.id, name=call.name, arguments=call.arguments)
                )
            history.add_message(ChatMessageContent(role=AuthorRole.ASSISTANT, items=items))
        else:
            role = {
                "system": AuthorRole.SYSTEM,
                "assistant": AuthorRole.ASSISTANT,
            }.get(message.role, AuthorRole.USER)
            history.add_message(ChatMessageContent(role=role, content=message.text))
    return history


def _arguments(arguments: Any) -> str:
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments
    import json

    return json.dumps(dict(arguments))


def _usage(usage: Any) -> Usage | None:
    if usage is None:
        return None
    return Usage(
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
    )


def _finish(reason: Any) -> str | None:
    if reason is None:
        return None
    return str(getattr(reason, "value", reason))


def _delta(part: StreamingChatMessageContent, model: str) -> ChatDelta | None:
    text = ""
    calls: list[ToolCallDelta] = []
    for item in part.items:
        if isinstance(item, FunctionCallContent):
            calls.append(
                ToolCallDelta(
                    index=item.index or 0,
                    id=item.id,
                    name=item.name,
                    arguments=item.arguments if isinstance(item.arguments, str) else "",
                )
            )
        elif isinstance(item, TextContent):
            text += item.text
    usage = _usage(part.metadata.get("usage"))
    finish = _finish(part.finish_reason)
    if not text and not calls and usage is None and finish is None:
        return None
    return ChatDelta(
        text=text,
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=usage,
        model=part.ai_model_id or model,
    )
