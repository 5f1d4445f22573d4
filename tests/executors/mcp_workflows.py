"""Workflows that tests serve with ``ledgerflow mcp`` and ``ledgerflow serve --a2a --agui``."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from builders import WorkflowBuilder
from executors import (
    AgentExecutor,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    ScriptedChatClient,
    ToolCall,
    tool,
)
from workflow import Executor, WorkflowContext, executor, handler, response_handler


@executor(id="shout")
def shout(text: str) -> str:
    return text.upper()


@executor(id="exclaim")
def exclaim(text: str) -> str:
    return text + "!"


echo = WorkflowBuilder(start=shout, name="echo").add_edge(shout, exclaim).build()


@dataclass(frozen=True)
class Question:
    text: str


class Namer(Executor):
    """Asks a person to name the thing, then outputs the name."""

    @handler
    async def on(self, thing: str, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(Question(f"what should the {thing} be called?"), response_type=str)

    @response_handler
    async def on_name(self, request: Question, name: str, ctx: WorkflowContext[str]) -> None:
        await ctx.yield_output(f"named: {name}")


naming = WorkflowBuilder(start=Namer("namer"), name="naming").build()


class Order(BaseModel):
    item: str
    quantity: int


@executor(id="price")
def price(order: Order) -> str:
    return f"{order.quantity} x {order.item} = {order.quantity * 3}"


pricing = WorkflowBuilder(start=price, name="pricing").build()


def _model(messages: list[ChatMessage]) -> str | ChatResponse:
    if messages[-1].role == "tool":
        return f"the sum is {messages[-1].text}"
    return ChatResponse(
        tool_calls=(ToolCall(id="call_1", name="add", arguments='{"a": 2, "b": 3}'),)
    )


@tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


calculator = WorkflowBuilder(
    start=AgentExecutor(ChatAgent("calc", "adds", "", ScriptedChatClient(_model), tools=[add])),
    name="calculator",
).build()


@executor(id="explode")
def explode(text: str) -> str:
    raise RuntimeError(f"cannot handle {text!r}")


broken = WorkflowBuilder(start=explode, name="broken").build()
