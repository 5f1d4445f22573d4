"""Node kinds: chat clients and agents, tools, sandboxed code execution, human input,
sub-workflows and the Magentic orchestrator, all built on ``workflow.Executor``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflow.authoring import lazy_exports

from ._agent_executor import AgentExecutor, AgentResponded, ConversationReset
from ._agents import (
    Agent,
    AgentError,
    AgentResponse,
    AgentTurn,
    ApprovalRequiredError,
    ChatAgent,
    FunctionAgent,
    ToolLoopLimitError,
    TruncatedResponseError,
)
from ._approval import ApprovalRequest, ApprovalResponse
from ._autogen import AssistantAgent, ChatResult, UserProxyAgent
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
from ._code_executor import CodeExecuted, CodeExecutor
from ._human import HumanExecutor, HumanInputMode, HumanInputRequest
from ._magentic import MagenticOrchestrator
from ._magentic_events import (
    FinalAnswer,
    PlanCreated,
    ProgressLedgerUpdated,
    Replanned,
    StallDetected,
)
from ._magentic_ledger import (
    LedgerEntry,
    MagenticContext,
    MagenticError,
    MagenticLedgerError,
    PlanReviewRequest,
    PlanReviewResponse,
    ProgressLedger,
    TaskLedger,
)
from ._magentic_manager import MagenticManager
from ._magentic_standard import (
    MagenticPrompts,
    MagenticTokenLimits,
    StandardMagenticManager,
    progress_ledger_format,
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
from ._schema_tool import SchemaTool, ToolError, ToolUnavailableError
from ._scripted import ScriptedChatClient
from ._tools import Tool, ToolOutcome, tool
from ._workflow_agent import WorkflowAgentExecutor
from ._workflow_executor import SubWorkflowError, SubWorkflowRequest, WorkflowExecutor

if TYPE_CHECKING:
    from ._a2a import A2AAgent, A2AAgentExecutor, A2AError, A2AInputRequest
    from ._mcp import MCPServerError, MCPTools
    from ._semantic_kernel import SemanticKernelChatClient, sk_tools
    from ._semantic_kernel_agent import SemanticKernelAgent

# Interop SDKs (mcp, a2a-sdk, semantic-kernel) are extras: load them only when used.
_LAZY = {
    "A2AAgent": "._a2a",
    "A2AAgentExecutor": "._a2a",
    "A2AError": "._a2a",
    "A2AInputRequest": "._a2a",
    "MCPServerError": "._mcp",
    "MCPTools": "._mcp",
    "SemanticKernelAgent": "._semantic_kernel_agent",
    "SemanticKernelChatClient": "._semantic_kernel",
    "sk_tools": "._semantic_kernel",
}
__getattr__ = lazy_exports(__name__, _LAZY, globals())

__all__: tuple[str, ...] = (
    "A2AAgent",
    "A2AAgentExecutor",
    "A2AError",
    "A2AInputRequest",
    "Agent",
    "AgentError",
    "AgentExecutor",
    "AgentResponded",
    "AgentResponse",
    "AgentTurn",
    "ApprovalRequest",
    "ApprovalRequiredError",
    "ApprovalResponse",
    "AssistantAgent",
    "ChatAgent",
    # chat clients and their vocabulary
    "ChatClient",
    "ChatClientError",
    "ChatConfigError",
    "ChatDelta",
    "ChatMessage",
    "ChatParseError",
    "ChatResponse",
    "ChatResponseError",
    "ChatResult",
    "ChatRetryError",
    "ChatStatusError",
    "ChatStreamAccumulator",
    "ChatTruncatedError",
    "CodeExecuted",
    "CodeExecutor",
    "CodeResult",
    "ConversationReset",
    "FinalAnswer",
    "FunctionAgent",
    "HumanExecutor",
    "HumanInputMode",
    "HumanInputRequest",
    "LedgerEntry",
    "MCPServerError",
    "MCPTools",
    "MagenticContext",
    "MagenticError",
    "MagenticLedgerError",
    "MagenticManager",
    "MagenticOrchestrator",
    "MagenticPrompts",
    "MagenticTokenLimits",
    "OpenAIChatClient",
    "PlanCreated",
    "PlanReviewRequest",
    "PlanReviewResponse",
    "ProgressLedger",
    "ProgressLedgerUpdated",
    "Replanned",
    "SandboxConfig",
    "SandboxUnavailableError",
    "SchemaTool",
    "ScriptedChatClient",
    "SemanticKernelAgent",
    "SemanticKernelChatClient",
    "StallDetected",
    "StandardMagenticManager",
    "SubWorkflowError",
    "SubWorkflowRequest",
    "TaskLedger",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolError",
    "ToolLoopLimitError",
    "ToolOutcome",
    "ToolSpec",
    "ToolUnavailableError",
    "TruncatedResponseError",
    "Usage",
    "UserProxyAgent",
    "WorkflowAgentExecutor",
    "WorkflowExecutor",
    "collect_response",
    "extract_code_blocks",
    "progress_ledger_format",
    "run_blocks",
    "run_code",
    "sandbox_available",
    "sk_tools",
    "tool",
)
