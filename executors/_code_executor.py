"""``CodeExecutor``: run the Python in a message in the sandbox, as a workflow node.

All the isolation lives in ``_sandbox`` (scrubbed environment, no network, rlimits, a
timeout that kills the process tree, output cap); this node only picks the code out of
messages and reports the result. A requested isolation the machine lacks fails the run
(``SandboxUnavailableError``) rather than running model-written code with less.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from workflow import Executor, WorkflowContext, handler
from workflow.events import WorkflowEvent

from ._agent_executor import to_messages
from ._agents import AgentResponse
from ._chat import ChatMessage
from ._sandbox import CodeResult, SandboxConfig, extract_code_blocks, run_blocks

__all__ = ("CodeExecuted", "CodeExecutor")

_FENCE = re.compile(r"^ {0,3}(```|~~~)", re.MULTILINE)
NO_CODE = (
    "no Python code block found in the message, so nothing was run; put the code in a "
    "```python fenced block"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeExecuted(WorkflowEvent):
    """A code executor ran ``blocks`` (in order, in one workspace) with ``result``."""

    executor_id: str
    blocks: tuple[str, ...]
    result: CodeResult


class CodeExecutor(Executor):
    """Runs the ```python blocks of each message in a fresh sandbox and sends a ``CodeResult``.

    A ``str`` may also be bare code (no fences). In a ``ChatMessage`` or ``AgentResponse``
    (chat prose) only fenced blocks count; a message without one gets a ``CodeResult`` with
    exit code 1 saying so, so a model in the loop learns to fence its code. The result's
    ``in_reply_to`` holds the incoming message as chat messages, so a ``HumanExecutor``
    downstream sees the assistant's message as well as its output.

    Args:
        id: The node id.
        timeout: Wall-clock seconds for all blocks of one message together.
        **sandbox_options: Further ``SandboxConfig`` fields (``memory_bytes``,
            ``isolation``, ``work_dir``, ``env``...).

    Raises:
        ValueError: An invalid sandbox option (checked here, not at run time).
    """

    kind: ClassVar[str] = "code"
    warm: ClassVar[bool] = True  # keeps its client/sandbox warm on a cluster backend

    def __init__(self, id: str = "code", timeout: float = 60, **sandbox_options: Any) -> None:
        super().__init__(id)
        self.config = SandboxConfig(timeout=timeout, **sandbox_options)

    @handler
    async def on_message(
        self, message: str | ChatMessage | AgentResponse, ctx: WorkflowContext[CodeResult]
    ) -> CodeResult:
        """Run the message's code and report exit code and output."""
        if isinstance(message, str):
            blocks = [b for b in extract_code_blocks(message) if b.strip()]
        else:
            text = message.text
            fenced = _FENCE.search(text) is not None
            blocks = [b for b in extract_code_blocks(text) if b.strip()] if fenced else []
        if blocks:
            result = await run_blocks(blocks, self.config)
        else:
            result = CodeResult(exit_code=1, stdout="", stderr=NO_CODE)
        result = result.model_copy(
            update={"in_reply_to": tuple(to_messages(message, source=ctx.source))}
        )
        await ctx.add_event(
            CodeExecuted(
                run_id=ctx.run_id,
                superstep=ctx.superstep,
                executor_id=ctx.executor_id,
                blocks=tuple(blocks),
                result=result,
            )
        )
        return result
