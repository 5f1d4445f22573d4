"""Workflows the Studio's browser tests run (loaded by ``ledgerflow studio`` as a target)."""

from __future__ import annotations

import json
from typing import Any

import anyio

from builders import WorkflowBuilder
from executors import ChatAgent, ChatMessage, ChatResponse, ScriptedChatClient, ToolCall, tool
from workflow import Executor, WorkflowContext, executor, handler, response_handler


@executor
async def first(text: str, ctx: WorkflowContext) -> None:
    await anyio.sleep(0.8)
    await ctx.send_message(text + " a")


@executor
async def second(text: str, ctx: WorkflowContext) -> None:
    await anyio.sleep(0.8)
    await ctx.send_message(text + " b")


@executor
async def third(text: str, ctx: WorkflowContext) -> None:
    await anyio.sleep(0.8)
    await ctx.send_message(text + " c")


@executor
async def last(text: str, ctx: WorkflowContext) -> None:
    await anyio.sleep(0.8)
    await ctx.yield_output(text.upper())


slow = WorkflowBuilder(start=first, name="slow").add_chain([first, second, third, last]).build()
slow.description = "Four steps of 0.8 s each."


@executor
async def greet(name: str, ctx: WorkflowContext) -> None:
    await ctx.send_message(name)


class Ask(Executor):
    """Asks a person a question in words; the answer is the output."""

    @handler
    async def on_name(self, name: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(f"What is {name}'s favourite colour?", response_type=str)

    @response_handler
    async def on_answer(self, question: str, answer: str, ctx: WorkflowContext) -> None:
        await ctx.yield_output(f"colour: {answer}")


ask = WorkflowBuilder(start=greet, name="ask").add_edge(greet, Ask("ask")).build()
ask.description = "Asks a person one question."


def _treasurer_model(messages: list[ChatMessage]) -> str | ChatResponse:
    """Scripted: ask to transfer, then report what the tool said (or that it was refused)."""
    last = messages[-1]
    if last.role == "tool":
        return f"Done: {last.text}." if not last.text.startswith("Error") else "Nothing sent."
    call = ToolCall(
        id="call_1", name="transfer", arguments=json.dumps({"to": "alice", "amount": 250})
    )
    return ChatResponse(tool_calls=(call,), finish_reason="tool_calls")


@tool(approval_mode="always_require")
def transfer(to: str, amount: int) -> str:
    """Transfer money from the company account.

    Args:
        to: The recipient.
        amount: Euros to send.
    """
    return f"sent {amount} EUR to {to}"


payer = WorkflowBuilder(
    start=ChatAgent(
        "treasurer",
        "moves money",
        "You pay people when asked.",
        ScriptedChatClient(_treasurer_model),
        tools=[transfer],
    ),
    name="payer",
).build()
payer.description = "A treasurer agent whose transfers a person approves."


@executor
async def setup(n: int, ctx: WorkflowContext) -> None:
    await ctx.set_state("threshold", 10)
    await ctx.send_message(n)


@executor
async def decide(n: int, ctx: WorkflowContext) -> None:
    threshold = await ctx.get_state("threshold")
    await ctx.yield_output(f"{n} is {'big' if n > threshold else 'small'} (threshold {threshold})")


judge = WorkflowBuilder(start=setup, name="judge").add_edge(setup, decide).build()
judge.description = "Says whether a number is over the threshold kept in state."


def _reviewed() -> Any:
    """examples/magentic_team.yaml with plan review on: a person approves or revises the plan."""
    import sys
    from pathlib import Path

    import yaml

    from builders import load_spec

    examples = Path(__file__).resolve().parents[2] / "examples"
    document = yaml.safe_load((examples / "magentic_team.yaml").read_text())
    document.update(
        name="reviewed_team",
        description="The Magentic team, with a person reviewing its plan.",
        plan_review=True,
    )
    # its imports live in examples/, on the path only while they load: left there, it would
    # shadow packages (examples/semantic_kernel.py) for every test after this one
    added = str(examples) not in sys.path
    if added:
        sys.path.insert(0, str(examples))
    try:
        return load_spec(document, allow_imports=True)
    finally:
        if added:
            sys.path.remove(str(examples))


reviewed = _reviewed()
