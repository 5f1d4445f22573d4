"""``HumanExecutor``: a person as a conversation participant, with AutoGen's user-proxy rules.

``human_input_mode`` decides when the person is asked (via ``ctx.request_info``, answered
with a ``str``) and when the node answers by itself:

* ``"ALWAYS"``: ask on every incoming message. An empty answer means "auto-reply", except
  on a termination message, where it ends the chat.
* ``"TERMINATE"``: auto-reply, asking only when the incoming message is a termination
  message (an empty answer then ends the chat) or when ``max_consecutive_auto_reply``
  auto-replies in a row have been sent (an empty answer auto-replies once more).
* ``"NEVER"``: never ask; auto-reply, and end the chat on a termination message or once
  the auto-reply limit is reached.

Answering ``"exit"`` always ends the chat; a non-empty answer resets the auto-reply count.
The auto-reply to a ``CodeResult`` is its output (so a code executor's result goes back to
the assistant), and the message the code came from (``in_reply_to``) joins the conversation
before the output; otherwise the auto-reply is ``auto_reply(conversation)`` or
``default_auto_reply``.
Ending the chat sends nothing and emits the conversation this node has seen as an output.

Executor state keys (per run): ``conversation`` (what this participant has seen and said),
``asking`` (a question to the person is pending), ``auto_replies`` (auto-replies in a row)
and ``code_output`` (the output of the code result being answered, if any). A
``ConversationReset`` clears them all, as for an agent.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from workflow import Executor, WorkflowContext, handler, response_handler

from ._agent_executor import (
    AgentResponded,
    ConversationReset,
    Incoming,
    dump,
    load,
    to_messages,
)
from ._agents import AgentResponse
from ._chat import ChatMessage
from ._sandbox import CodeResult

__all__ = ("HumanExecutor", "HumanInputMode", "HumanInputRequest")

HumanInputMode = Literal["ALWAYS", "TERMINATE", "NEVER"]
AskReason = Literal["always", "termination", "auto_reply_limit"]
_MODES = ("ALWAYS", "TERMINATE", "NEVER")
DEFAULT_MAX_CONSECUTIVE_AUTO_REPLY = 100  # AutoGen's default when None is given


class HumanInputRequest(BaseModel):
    """What a person is asked for: the next message of the conversation.

    Attributes:
        participant: The name the person speaks as.
        prompt: The question to show.
        conversation: The messages this participant has seen, oldest first.
        reason: Why the person is asked: ``"always"`` (mode ALWAYS), ``"termination"`` (the
            last message asks to end the chat) or ``"auto_reply_limit"``.
        is_termination: Whether the last message is a termination message (an empty answer
            then ends the chat).
    """

    model_config = ConfigDict(frozen=True)

    participant: str
    prompt: str
    conversation: list[ChatMessage] = Field(default_factory=list)
    reason: AskReason = "always"
    is_termination: bool = False


def _ends_with_terminate(message: ChatMessage) -> bool:
    return message.text.rstrip().endswith("TERMINATE")


class HumanExecutor(Executor):
    """A person in the conversation: asks for input per ``human_input_mode``, else auto-replies.

    Args:
        id: The node id.
        name: The name the person speaks as (message author); defaults to ``id``.
        human_input_mode: ``"ALWAYS"``, ``"TERMINATE"`` or ``"NEVER"`` (see the module docs).
        max_consecutive_auto_reply: Auto-replies in a row before the limit applies
            (``None``: 100, as in AutoGen).
        is_termination_msg: Whether an incoming message asks to end the chat (default: its
            text ends with ``TERMINATE``).
        default_auto_reply: The auto-reply when no ``auto_reply`` function is given.
        auto_reply: ``fn(conversation) -> str`` (sync or async) computing auto-replies.
    """

    kind: ClassVar[str] = "human"

    def __init__(
        self,
        id: str = "human",
        *,
        name: str | None = None,
        human_input_mode: HumanInputMode = "ALWAYS",
        max_consecutive_auto_reply: int | None = None,
        is_termination_msg: Callable[[ChatMessage], bool] | None = None,
        default_auto_reply: str = "",
        auto_reply: Callable[[list[ChatMessage]], str | Awaitable[str]] | None = None,
    ) -> None:
        super().__init__(id)
        if human_input_mode not in _MODES:
            raise ValueError(
                f"human {id!r}: human_input_mode must be one of {_MODES}, got {human_input_mode!r}"
            )
        limit = max_consecutive_auto_reply
        if limit is not None and limit < 0:
            raise ValueError(
                f"human {id!r}: max_consecutive_auto_reply must be >= 0, got {limit!r}"
            )
        self.name = name if name is not None else id
        self.human_input_mode: HumanInputMode = human_input_mode
        self.max_consecutive_auto_reply = (
            DEFAULT_MAX_CONSECUTIVE_AUTO_REPLY if limit is None else limit
        )
        self.is_termination_msg = is_termination_msg or _ends_with_terminate
        self.default_auto_reply = default_auto_reply
        self.auto_reply = auto_reply

    # -- handlers -----------------------------------------------------------------------------
    @handler
    async def on_message(
        self, message: Incoming, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """A participant spoke: ask the person, auto-reply, or end the chat."""
        return await self._receive(to_messages(message, source=ctx.source), None, ctx)

    @handler
    async def on_code_result(
        self, result: CodeResult, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Code ran: its output is the auto-reply (the person may still be asked first)."""
        output = ChatMessage("assistant", result.text, author=ctx.source or "code")
        return await self._receive([*result.in_reply_to, output], result, ctx)

    @handler
    async def on_reset(
        self, message: ConversationReset, ctx: WorkflowContext[AgentResponse]
    ) -> None:
        """Forget this run's conversation, a pending question and the auto-reply count."""
        await ctx.set_executor_state("conversation", None)
        await ctx.set_executor_state("asking", False)
        await ctx.set_executor_state("auto_replies", 0)
        await ctx.set_executor_state("code_output", None)

    @response_handler
    async def on_reply(
        self, request: HumanInputRequest, reply: str, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """The person answered (``""``: skip, ``"exit"``: end the chat)."""
        await ctx.set_executor_state("asking", False)
        answer = reply.strip()
        if request.reason == "termination" and self.human_input_mode != "ALWAYS":
            answer = answer or "exit"
        elif not answer and request.is_termination:
            answer = "exit"
        if answer == "exit":
            await self._end(ctx)
            return None
        if answer or self.max_consecutive_auto_reply == 0:
            await ctx.set_executor_state("auto_replies", 0)
            return await self._say(reply, ctx)
        return await self._auto(ctx)

    # -- the rules ----------------------------------------------------------------------------
    async def _receive(
        self,
        incoming: list[ChatMessage],
        code: CodeResult | None,
        ctx: WorkflowContext[AgentResponse],
    ) -> AgentResponse | None:
        conversation = load(await ctx.get_executor_state("conversation")) + incoming
        await ctx.set_executor_state("conversation", dump(conversation))
        await ctx.set_executor_state("code_output", code.text if code is not None else None)
        if await ctx.get_executor_state("asking", False):
            return None  # the pending question covers this message too
        last = incoming[-1] if incoming else None
        terminating = last is not None and self.is_termination_msg(last)
        exhausted = (
            await ctx.get_executor_state("auto_replies", 0) >= self.max_consecutive_auto_reply
        )
        mode = self.human_input_mode
        if mode == "ALWAYS":
            await self._ask("termination" if terminating else "always", terminating, ctx)
            return None
        if exhausted:
            if mode == "NEVER":
                await self._end(ctx)
                return None
            await self._ask("auto_reply_limit", terminating, ctx)
            return None
        if terminating:
            if mode == "NEVER":
                await self._end(ctx)
                return None
            await self._ask("termination", terminating, ctx)
            return None
        return await self._auto(ctx)

    async def _ask(
        self, reason: AskReason, terminating: bool, ctx: WorkflowContext[AgentResponse]
    ) -> None:
        if reason == "termination" and self.human_input_mode != "ALWAYS":
            prompt = "Please give feedback. Press enter or type 'exit' to end the conversation."
        else:
            prompt = (
                "Provide feedback. Press enter to skip and use the auto-reply, or type 'exit' "
                "to end the conversation."
            )
        conversation = load(await ctx.get_executor_state("conversation"))
        request = HumanInputRequest(
            participant=self.name,
            prompt=prompt,
            conversation=conversation,
            reason=reason,
            is_termination=terminating,
        )
        await ctx.request_info(request, response_type=str)
        await ctx.set_executor_state("asking", True)

    async def _auto(self, ctx: WorkflowContext[AgentResponse]) -> AgentResponse:
        count = await ctx.get_executor_state("auto_replies", 0)
        await ctx.set_executor_state("auto_replies", count + 1)
        code_output = await ctx.get_executor_state("code_output")
        if code_output is not None:
            text: Any = code_output
        elif self.auto_reply is not None:
            text = self.auto_reply(load(await ctx.get_executor_state("conversation")))
            if inspect.isawaitable(text):
                text = await text
        else:
            text = self.default_auto_reply
        if not isinstance(text, str):
            raise TypeError(
                f"human {self.id!r}: auto_reply must return str, got {type(text).__name__}"
            )
        return await self._say(text, ctx)

    async def _say(self, text: str, ctx: WorkflowContext[AgentResponse]) -> AgentResponse:
        message = ChatMessage("user", text, author=self.name)
        conversation = [*load(await ctx.get_executor_state("conversation")), message]
        await ctx.set_executor_state("conversation", dump(conversation))
        response = AgentResponse(messages=[message], text=text, agent_name=self.name)
        await ctx.add_event(
            AgentResponded(
                run_id=ctx.run_id,
                superstep=ctx.superstep,
                executor_id=ctx.executor_id,
                agent_name=self.name,
                response=response,
            )
        )
        return response

    async def _end(self, ctx: WorkflowContext[AgentResponse]) -> None:
        await ctx.set_executor_state("auto_replies", 0)
        await ctx.yield_output(load(await ctx.get_executor_state("conversation")))
