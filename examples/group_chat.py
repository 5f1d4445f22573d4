"""Group chat: a planner, a coder and a critic, with a model choosing who speaks next.

Roles are nothing special: each is a participant with its own instructions. A manager node
keeps the conversation; after every turn it checks the termination rule and asks the
selector model for the next speaker, showing it the team (names and descriptions) and the
recent conversation. The chat ends when the critic says APPROVED (or after 12 messages)::

    .venv/bin/python examples/group_chat.py

Offline by default: every model is a ``ScriptedChatClient``. With ``OPENAI_API_KEY`` set,
all of them (the selector too) use a real model instead (``OPENAI_MODEL``, default
``gpt-4o-mini``; ``OPENAI_BASE_URL`` for any OpenAI-compatible server).
"""

from __future__ import annotations

import os
import sys

import anyio

from builders import (
    ConversationFinished,
    GroupChatBuilder,
    MaxMessages,
    SpeakerSelected,
    TextMention,
)
from executors import (
    AgentResponded,
    ChatAgent,
    ChatClient,
    OpenAIChatClient,
    ScriptedChatClient,
)
from workflow import RunStatus, Workflow
from workflow.events import RunFinished

TASK = "Write a Python function that checks whether a string is a palindrome."

PLANNER = """You plan the work of a small team. Break the task into a few concrete steps, \
say who should do what, and keep it short. Do not write code yourself."""
CODER = """You write Python. Follow the plan, answer with one complete ```python block, and \
fix whatever the critic points out."""
CRITIC = """You review the coder's work against the task: correctness, edge cases, clarity. \
List concrete problems, or, when there are none left, reply with the single word APPROVED."""

SCRIPTS = {
    "selector": ["planner", "coder", "critic", "coder", "critic"],
    "planner": [
        "Plan: 1) coder writes is_palindrome(text) ignoring case and non-letters; "
        "2) critic checks edge cases (empty string, punctuation); 3) coder fixes."
    ],
    "coder": [
        "```python\ndef is_palindrome(text: str) -> bool:\n    return text == text[::-1]\n```",
        "```python\ndef is_palindrome(text: str) -> bool:\n"
        "    letters = [c.lower() for c in text if c.isalnum()]\n"
        "    return letters == letters[::-1]\n```",
    ],
    "critic": [
        "It ignores case and punctuation: 'A man, a plan, a canal: Panama' fails. "
        "Normalise the text first.",
        "APPROVED",
    ],
}


def clients() -> dict[str, ChatClient]:
    """One client per role: a real model when configured, else the scripts."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        shared = OpenAIChatClient(os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
        return dict.fromkeys(SCRIPTS, shared)
    return {role: ScriptedChatClient(replies) for role, replies in SCRIPTS.items()}


def build(models: dict[str, ChatClient]) -> Workflow:
    team = [
        ChatAgent("planner", "Breaks the task into steps.", PLANNER, models["planner"]),
        ChatAgent("coder", "Writes and fixes the Python code.", CODER, models["coder"]),
        ChatAgent("critic", "Reviews the code; says APPROVED when done.", CRITIC, models["critic"]),
    ]
    return GroupChatBuilder(
        team,
        selector=models["selector"],
        termination=TextMention("APPROVED", sources=["critic"]) | MaxMessages(12),
        allow_repeated_speaker=False,
        name="palindrome_team",
    ).build()


async def main() -> RunStatus:
    """Runs the chat once, printing each turn; returns how the run ended."""
    finished = RunStatus.FAILED
    models = clients()
    wf = build(models)
    print(f"task: {TASK}\n")
    async for event in wf.run_stream(TASK):
        match event:
            case SpeakerSelected(speaker=speaker, turn=turn):
                print(f"--- turn {turn}: the selector picks {speaker}")
            case AgentResponded(agent_name=name, response=response):
                print(f"[{name}]\n{response.text}\n")
            case ConversationFinished(reason=reason, messages=count):
                print(f"=== finished after {count} messages: {reason}")
            case RunFinished(status=status, error=error):
                finished = status
                if error is not None:
                    print(f"=== run {status.value}: {error}")
    for client in {id(c): c for c in models.values()}.values():
        if isinstance(client, OpenAIChatClient):
            await client.aclose()
    return finished


if __name__ == "__main__":
    sys.exit(0 if anyio.run(main) is RunStatus.COMPLETED else 1)
