"""Node kinds: chat clients and agents, tools, sandboxed code execution, human input,
sub-workflows and the Magentic orchestrator, all built on ``workflow.Executor``."""

from __future__ import annotations

from ._chat import (
    ChatClient,
    ChatClientError,
    ChatConfigError,
    ChatDelta,
    ChatMessage,
    ChatParseError,
    ChatResponse,
    ChatResponseError,
    ChatRetryError,
    ChatStatusError,
    ChatStreamAccumulator,
    ChatTruncatedError,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    collect_response,
)
from ._openai import OpenAIChatClient
from ._sandbox import (
    CodeResult,
    SandboxConfig,
    SandboxUnavailableError,
    extract_code_blocks,
    run_blocks,
    run_code,
    sandbox_available,
)
from ._scripted import ScriptedChatClient
from ._tools import Tool, ToolOutcome, tool
from ._workflow_executor import SubWorkflowRequest, WorkflowExecutor

__all__: tuple[str, ...] = (
    # chat clients and their vocabulary
    "ChatClient",
    "ChatClientError",
    "ChatConfigError",
    "ChatDelta",
    "ChatMessage",
    "ChatParseError",
    "ChatResponse",
    "ChatResponseError",
    "ChatRetryError",
    "ChatStatusError",
    "ChatStreamAccumulator",
    "ChatTruncatedError",
    "CodeResult",
    "OpenAIChatClient",
    "SandboxConfig",
    "SandboxUnavailableError",
    "ScriptedChatClient",
    "SubWorkflowRequest",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolOutcome",
    "ToolSpec",
    "Usage",
    "WorkflowExecutor",
    "collect_response",
    "extract_code_blocks",
    "run_blocks",
    "run_code",
    "sandbox_available",
    "tool",
)
