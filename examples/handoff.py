"""Handoffs: triage routes each customer to billing or tech support, who may ask the customer.

Each allowed handoff is an edge, and each agent that may hand off gets a generated
``handoff_to_<name>`` tool; calling it ends that agent's turn and passes the whole
conversation on. Handing off to the ``human`` participant pauses the run with a request for
their input; their answer goes back to whoever asked::

    triage --> billing
    triage --> tech_support <--> human

Two conversations run here: a billing question that billing answers with a tool, and a
crash report where tech support needs one more detail from the customer (typed at the
prompt when run interactively, a canned answer otherwise)::

    .venv/bin/python examples/handoff.py

Offline by default: the models are scripted (functions of the conversation). With
``OPENAI_API_KEY`` set, a real model plays every agent (``OPENAI_MODEL``, default
``gpt-4o-mini``).
"""

from __future__ import annotations

import os
import sys

import anyio

from builders import HandoffBuilder, MaxMessages
from executors import (
    AgentResponded,
    ChatAgent,
    ChatClient,
    ChatMessage,
    ChatResponse,
    HumanExecutor,
    HumanInputRequest,
    OpenAIChatClient,
    ScriptedChatClient,
    ToolCall,
    tool,
)
from workflow import RunResult, RunStatus, Workflow

CUSTOMERS = [
    "Hi, I was charged twice for invoice 1042 this month.",
    "The app crashes every time I upload a photo.",
]
CANNED_ANSWER = "Version 3.2 on Android 14, and the photo is about 20 MB."


@tool
def lookup_invoice(number: str) -> str:
    """Look up an invoice by its number.

    Args:
        number: The invoice number, e.g. "1042".
    """
    return f"invoice {number}: 49.00 EUR, paid twice on 3 and 4 March; refund possible"


# --------------------------------------------------------------------------- offline models


def _call(name: str, arguments: str = "{}", text: str = "") -> ChatResponse:
    return ChatResponse(
        text, tool_calls=(ToolCall(id=f"call_{name}", name=name, arguments=arguments),)
    )


def triage_model(messages: list[ChatMessage]) -> ChatResponse:
    request = next(m.text for m in messages if m.role == "user")
    target = "billing" if "charged" in request or "invoice" in request else "tech_support"
    return _call(f"handoff_to_{target}")


def billing_model(messages: list[ChatMessage]) -> ChatResponse:
    if messages[-1].role == "tool" and messages[-1].text.startswith("invoice"):
        return ChatResponse(
            "You were indeed charged twice for invoice 1042; I have refunded 49.00 EUR."
        )
    return _call("lookup_invoice", '{"number": "1042"}')


def tech_model(messages: list[ChatMessage]) -> ChatResponse:
    if messages[-1].author == "human":
        return ChatResponse(
            "Thanks! 3.2 cannot upload photos over 10 MB on Android 14; update to 3.3, which "
            "fixes it, or shrink the photo meanwhile."
        )
    return _call(
        "handoff_to_human",
        text="Which app version and phone do you use, and how large is the photo?",
    )


def models() -> dict[str, ChatClient]:
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        real = OpenAIChatClient(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
        return dict.fromkeys(("triage", "billing", "tech_support"), real)
    return {
        "triage": ScriptedChatClient(triage_model),
        "billing": ScriptedChatClient(billing_model),
        "tech_support": ScriptedChatClient(tech_model),
    }


def build(clients: dict[str, ChatClient]) -> Workflow:
    triage = ChatAgent(
        "triage",
        "Greets customers and routes them.",
        "You route customer requests. Hand billing questions to billing and technical "
        "problems to tech_support; do not answer them yourself.",
        clients["triage"],
    )
    billing = ChatAgent(
        "billing",
        "Handles invoices, charges and refunds.",
        "You handle billing. Look invoices up before answering, then resolve the issue.",
        clients["billing"],
        tools=[lookup_invoice],
    )
    tech = ChatAgent(
        "tech_support",
        "Fixes technical problems with the app.",
        "You fix app problems. If you need details from the customer, ask your question and "
        "hand off to human; once you know enough, give the fix.",
        clients["tech_support"],
    )
    customer = HumanExecutor("human", human_input_mode="ALWAYS")
    return HandoffBuilder(
        [triage, billing, tech, customer],
        handoffs={"triage": ["billing", "tech_support"], "tech_support": ["human"]},
        termination=MaxMessages(20),  # a guard against agents handing off forever
        name="customer_service",
    ).build()


def answer_for(request: HumanInputRequest) -> str:
    """The customer's answer: typed when interactive, else a canned one."""
    asked = [m.text for m in request.conversation if m.text and m.role == "assistant"]
    print(f"    ({request.participant} is asked: {asked[-1] if asked else request.prompt})")
    if sys.stdin.isatty():
        return input("    your answer> ")
    print(f"    your answer> {CANNED_ANSWER}")
    return CANNED_ANSWER


def show(result: RunResult) -> None:
    for event in result.events:
        if isinstance(event, AgentResponded):
            for message in event.response.messages:
                if message.text and message.role != "tool":
                    print(f"    [{message.author}] {message.text}")
                for call in message.tool_calls:
                    print(f"    [{message.author}] calls {call.name}({call.arguments})")


async def main() -> None:
    clients = models()
    wf = build(clients)
    for number, text in enumerate(CUSTOMERS, 1):
        print(f"customer {number}: {text}")
        result = await wf.run(text, run_id=f"customer-{number}")
        show(result)
        while result.status is RunStatus.AWAITING_INPUT:
            answers = {}
            for request in result.pending_requests:
                assert isinstance(request.payload, HumanInputRequest)
                answers[request.request_id] = answer_for(request.payload)
            result = await wf.resume(result.run_id, responses=answers)
            show(result)
        result.raise_for_status()
        (conversation,) = result.outputs
        print(f"    => {len(conversation)} messages, last from {conversation[-1].author}\n")
    for client in {id(c): c for c in clients.values()}.values():
        if isinstance(client, OpenAIChatClient):
            await client.aclose()


if __name__ == "__main__":
    anyio.run(main)
