"""A Magentic team: a manager plans, then directs a researcher, a coder, a code runner and a critic.

The question needs all of them: the researcher finds the figures (and a counting rule) in
the documents under ``examples/data`` with a tool, the coder writes Python for the
arithmetic, the sandboxed code runner executes it, and the critic checks the result
against the documents. The ledger updates stream to the terminal; the run is checkpointed to
``.ledgerflow/runs.db`` (SQLite) and the team's diagram is written next to it.

Offline by default: the manager and the agents are ``ScriptedChatClient``s whose replies are
functions of the messages they get, so the run is deterministic. With ``OPENAI_API_KEY`` or
``OPENAI_BASE_URL`` set, the same file talks to a real model (``OPENAI_MODEL``, default
``gpt-4o-mini``; ``OPENAI_BASE_URL`` for any OpenAI-compatible server, such as the local one
``make demo-local`` starts; ``OPENAI_MAX_TOKENS`` caps each agent's reply, default 1024;
``OPENAI_TIMEOUT`` is the seconds one request may take, default 60). The
process exits 1 when the run does not complete::

    .venv/bin/python examples/magentic_team.py
    ledgerflow run examples/magentic_team.py:build_team --input "..."   # through the CLI
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

import anyio

from builders import MagenticBuilder
from executors import (
    AgentResponded,
    ChatAgent,
    ChatClient,
    ChatMessage,
    ChatResponse,
    CodeExecuted,
    CodeExecutor,
    FinalAnswer,
    MagenticPrompts,
    OpenAIChatClient,
    PlanCreated,
    ProgressLedgerUpdated,
    Replanned,
    ScriptedChatClient,
    StallDetected,
    StandardMagenticManager,
    ToolCall,
    sandbox_available,
    tool,
)
from workflow import RunStatus, SQLiteCheckpointStore, Workflow
from workflow.events import RunFinished

DATA = Path(__file__).resolve().parent / "data"
STORE_DIR = Path(".ledgerflow")
STORE_URL = "sqlite:///.ledgerflow/runs.db"
TASK = (
    "Which of our warehouses had the highest average monthly shipments in Q1 2024, and by "
    "how many pallets per month did it beat the runner-up? Follow our reporting policies."
)
TEAM_ORDER = ("researcher", "coder", "code", "critic")


# --------------------------------------------------------------------------- the tool


@tool
def search_documents(query: str) -> str:
    """Search the team's documents and return every line that mentions a word of the query.

    Args:
        query: Words to look for (case does not matter), e.g. "Q1 2024 shipments returns".
    """
    words = {w.lower() for w in re.findall(r"\w+", query) if len(w) > 1}
    found = []
    for path in sorted(DATA.glob("*.md")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if words & {w.lower() for w in re.findall(r"\w+", line)}:
                found.append(f"{path.name}: {line.strip()}")
    return "\n".join(found) or f"no document mentions any of {sorted(words)}"


# --------------------------------------------------------------------------- offline script
# Each scripted reply is a function of the messages, so the run does not depend on call order.

PROMPTS = MagenticPrompts()
INSTRUCTIONS = {
    "researcher": "Find the Q1 2024 monthly shipment figures of every warehouse, any returns, "
    "and the reporting policies that apply, and quote them with their documents.",
    "coder": "Write Python that applies the policies to the researcher's figures, computes "
    "each warehouse's average monthly shipments and prints the ranking and the winner's "
    "margin over the runner-up.",
    "code": "Run the coder's Python and report its output.",
    "critic": "Check the computed result against the documents and the policies: is it right?",
}


def _prefix(template: str) -> str:
    return template.split("{")[0][:30]


def _said(messages: list[ChatMessage]) -> str:
    return "\n".join(m.text for m in messages)


def scripted_manager(messages: list[ChatMessage]) -> str:
    """The manager's offline brain: facts, plan, then each member in turn, then the answer."""
    prompt = messages[-1].text
    if prompt.startswith(_prefix(PROMPTS.progress)):
        spoken = {m.author for m in messages if m.role == "user" and m.author in TEAM_ORDER}
        todo = [name for name in TEAM_ORDER if name not in spoken]
        done = not todo
        return json.dumps(
            {
                "is_request_satisfied": {
                    "answer": done,
                    "reason": "the critic confirmed the result" if done else "steps remain",
                },
                "is_in_loop": {"answer": False, "reason": "every turn did something new"},
                "is_progress_being_made": {"answer": True, "reason": "the last step succeeded"},
                "next_speaker": {
                    "answer": todo[0] if todo else "critic",
                    "reason": "next in the plan",
                },
                "instruction_or_question": {
                    "answer": INSTRUCTIONS[todo[0]] if todo else "Nothing more to do.",
                    "reason": "what the plan needs now",
                },
            }
        )
    if prompt.startswith(_prefix(PROMPTS.final_answer)):
        winner = re.search(r"winner: (\w+) by ([\d.]+) pallets/month over (\w+)", _said(messages))
        if winner is None:
            return "The team could not establish the answer."
        best, margin, second = winner.groups()
        return (
            f"{best.title()} had the highest average monthly shipments in Q1 2024, beating "
            f"{second.title()} by {margin} pallets per month (East's 200 returned pallets in "
            "February were subtracted, as the policy requires; without that East would lead)."
        )
    if prompt.startswith(_prefix(PROMPTS.plan)) or prompt.startswith(_prefix(PROMPTS.plan_update)):
        return (
            "- researcher: find every warehouse's Q1 2024 figures, returns and the policies\n"
            "- coder: write Python for the averages, the ranking and the margin\n"
            "- code: run that Python\n"
            "- critic: check the result against the documents"
        )
    return (
        "1. FACTS GIVEN OR VERIFIED: the question is about Q1 2024 and average monthly "
        "shipments.\n2. FACTS TO LOOK UP: each warehouse's monthly shipments and returns; the "
        "reporting policies.\n3. FACTS TO DERIVE: the averages, the ranking and the margin.\n"
        "4. EDUCATED GUESSES: returns may change the ranking."
    )


def scripted_researcher(messages: list[ChatMessage]) -> str | ChatResponse:
    """Search first; once the tool answered, report what it found."""
    if messages[-1].role == "tool":
        return "Here is what our documents say:\n" + messages[-1].text
    call = ToolCall(
        id="search-1",
        name="search_documents",
        arguments=json.dumps({"query": "Q1 2024 shipments returns"}),
    )
    return ChatResponse("", tool_calls=(call,), finish_reason="tool_calls")


def scripted_coder(messages: list[ChatMessage]) -> str:
    """Turn the figures quoted in the conversation into a small program."""
    said = _said(messages)
    figures = {
        site: [int(a), int(b), int(c)]
        for site, a, b, c in re.findall(
            r"warehouse_(\w+)\.md: Q1 2024 shipments \(pallets\): "
            r"January (\d+), February (\d+), March (\d+)",
            said,
        )
    }
    returns: dict[str, dict[str, int]] = {}
    for site, month, count in re.findall(
        r"warehouse_(\w+)\.md: Returns in Q1 2024 \(pallets\): (\w+) (\d+)", said
    ):
        returns.setdefault(site, {})[month] = int(count)
    if not figures:
        return "I need the monthly figures first; could the researcher quote them?"
    return f"""This applies the returns policy, then ranks the averages:

```python
shipments = {figures!r}
returns = {returns!r}  # policy: returned pallets are not shipments
MONTHS = ["January", "February", "March"]
for site, per_month in returns.items():
    for month, count in per_month.items():
        shipments[site][MONTHS.index(month)] -= count
averages = {{site: sum(v) / len(v) for site, v in shipments.items()}}
ranking = sorted(averages.items(), key=lambda kv: kv[1], reverse=True)
for site, average in ranking:
    print(f"{{site}}: {{average:.2f}} pallets/month")
(best, a), (second, b) = ranking[:2]
print(f"winner: {{best}} by {{a - b:.2f}} pallets/month over {{second}}")
```"""


def scripted_critic(messages: list[ChatMessage]) -> str:
    """Approve once a computed result that subtracted the returns is in the conversation."""
    said = _said(messages)
    winner = re.search(r"winner: (\w+) by ([\d.]+) pallets/month over (\w+)", said)
    if winner is None:
        return "There is no computed result to check yet."
    if "returns = {}" in said:
        return "The returns were not subtracted, which the policy requires; please redo it."
    best, margin, second = winner.groups()
    return (
        f"Checked: the figures match the documents, East's February returns were subtracted "
        f"as the policy requires, and the arithmetic holds: {best} leads {second} by {margin} "
        "pallets per month."
    )


# --------------------------------------------------------------------------- the team


def clients() -> dict[str, ChatClient]:
    """A real model for everyone when an API key is set, else the scripts."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        model = OpenAIChatClient(
            os.environ.get("OPENAI_MODEL", "gpt-4o-mini"),
            max_tokens=int(os.environ.get("OPENAI_MAX_TOKENS", "1024")),
            timeout=float(os.environ.get("OPENAI_TIMEOUT", "60")),
        )
        return dict.fromkeys(("manager", "researcher", "coder", "critic"), model)
    return {
        "manager": ScriptedChatClient(scripted_manager),
        "researcher": ScriptedChatClient(scripted_researcher),
        "coder": ScriptedChatClient(scripted_coder),
        "critic": ScriptedChatClient(scripted_critic),
    }


def code_runner(real_model: bool) -> CodeExecutor:
    """The sandboxed code node, on the best isolation this machine has."""
    available, reason = sandbox_available("auto")
    if available:
        options: dict[str, object] = {}
        if not reason.startswith("bubblewrap"):
            # Without bubblewrap the code runs as an unprivileged uid on the host files;
            # the system interpreter is readable by it where a venv under /root may not be.
            options["python"] = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        runner = CodeExecutor("code", timeout=60, **options)
    elif real_model:
        sys.exit(f"no code sandbox on this machine ({reason}); refusing to run model code")
    else:
        # Our own scripted code is trusted: run it with limits only, and say so.
        print(f"note: no sandbox ({reason}); running the scripted code with limits only\n")
        runner = CodeExecutor("code", timeout=60, isolation="none", network=True)
    return runner


def build_team(store: object = None) -> Workflow:
    """The workflow: manager, researcher (with the document tool), coder, code runner, critic."""
    c = clients()
    real = isinstance(c["manager"], OpenAIChatClient)
    researcher = ChatAgent(
        "researcher",
        "finds facts in the team's documents with the search_documents tool",
        "You answer from the team's documents. Always call search_documents before answering, "
        "and quote the lines you rely on with the document they come from.",
        c["researcher"],
        tools=[search_documents],
    )
    coder = ChatAgent(
        "coder",
        "writes Python for calculations (it cannot run it)",
        "You write Python that computes what you are asked, from figures others found. Reply "
        "with one complete ```python block that prints its results; do not invent figures.",
        c["coder"],
        max_tool_iterations=0,
    )
    critic = ChatAgent(
        "critic",
        "checks results against the documents and the policies",
        "You check the team's work against the documents and policies quoted in the "
        "conversation. Say plainly whether the result is right, and what to fix if it is not.",
        c["critic"],
        max_tool_iterations=0,
    )
    return MagenticBuilder(
        participants=[researcher, coder, code_runner(real), critic],
        descriptions={"code": "runs the ```python blocks it is sent in a sandbox, reports output"},
        manager=StandardMagenticManager(c["manager"]),
        max_round_count=12,
        max_stall_count=2,
        max_reset_count=1,
        token_budget=200_000 if real else None,
        time_budget=600 if real else None,
        checkpoint_store=store,
        name="magentic_team",
    ).build()


def _short(text: str, limit: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + " [...]"


async def main() -> RunStatus:
    """Runs the team once, printing as it goes; returns how the run ended."""
    store = SQLiteCheckpointStore(STORE_DIR / "runs.db")
    finished = RunStatus.FAILED
    wf = build_team(store)
    run_id = f"magentic-team-{uuid.uuid4().hex[:8]}"
    print(f"task: {TASK}\n")
    async for event in wf.run_stream(TASK, run_id=run_id):
        match event:
            case PlanCreated(ledger=ledger) | Replanned(ledger=ledger):
                title = "plan" if isinstance(event, PlanCreated) else "new plan"
                print(f"== {title}\n{ledger.facts}\n\n{ledger.plan}\n")
            case ProgressLedgerUpdated(round_count=n, stall_count=stall, ledger=ledger):
                if ledger.satisfied:
                    print(f"== round {n}: done ({ledger.is_request_satisfied.reason})")
                else:
                    who = ", ".join(ledger.speakers)
                    print(f"== round {n} (stall {stall}) -> {who}: {ledger.instruction}")
            case AgentResponded(agent_name=name, response=response):
                print(f"   {name}: {_short(response.text)}\n")
            case CodeExecuted(result=result):
                print(f"   code (exit {result.exit_code}):\n{_short(result.text)}\n")
            case StallDetected(stall_count=stall, reset_count=resets):
                print(f"== stalled (counter {stall}): reset #{resets}\n")
            case FinalAnswer(text=text, reason=reason):
                print(f"== final answer ({reason})\n{text}\n")
            case RunFinished(status=status, error=error):
                finished = status
                print(f"run {run_id}: {status.value}" + (f" ({error})" if error else ""))
    checkpoints = await store.list_checkpoints(run_id)
    await store.aclose()
    print(f"checkpoints: {len(checkpoints)} in {STORE_URL} (ledgerflow checkpoints {run_id})")
    from visualize import render

    suffix = ".svg" if shutil.which("dot") else ".mmd"
    diagram = render(wf, STORE_DIR / f"magentic_team{suffix}")
    print(f"diagram: {diagram}")
    for client in {id(c): c for c in clients().values()}.values():
        if isinstance(client, OpenAIChatClient):
            await client.aclose()
    return finished


if __name__ == "__main__":
    sys.exit(0 if anyio.run(main) is RunStatus.COMPLETED else 1)
