"""A tool that needs a person's approval, answered after a restart.

The agent's model asks to transfer money; the tool is declared with
``approval_mode="always_require"``, so the run pauses with an ``ApprovalRequest`` instead of
running it. Everything the paused turn needs is in the run's checkpoint (SQLite here), so a
brand-new process can load it, approve, and finish: the tool then runs exactly once, with
exactly the arguments that were approved::

    .venv/bin/python examples/tool_approval.py            # pause, restart, approve, finish
    .venv/bin/python examples/tool_approval.py --reject   # the model is told "no" instead

The model is scripted (a function of the conversation, so a restarted process needs no
memory of earlier replies).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

from builders import WorkflowBuilder
from executors import (
    ApprovalRequest,
    ApprovalResponse,
    ChatAgent,
    ChatMessage,
    ChatResponse,
    ScriptedChatClient,
    ToolCall,
    tool,
)
from workflow import RunStatus, SQLiteCheckpointStore, Workflow

RUN_ID = "tool-approval-demo"


def model(messages: list[ChatMessage]) -> str | ChatResponse:
    """The scripted model: ask for the transfer, then report what the tool said."""
    last = messages[-1]
    if last.role == "tool":
        if last.text.startswith("Error"):
            return f"I did not transfer anything: {last.text.removeprefix('Error: ')}."
        return f"Done: {last.text}."
    arguments = json.dumps({"to": "alice", "amount": 250})
    call = ToolCall(id="call_transfer_1", name="transfer", arguments=arguments)
    return ChatResponse(tool_calls=(call,), finish_reason="tool_calls")


def build(db: Path) -> Workflow:
    """The same definition in every process; only the checkpoint store is shared."""
    ledger = db.with_suffix(".ledger")

    @tool(approval_mode="always_require")
    def transfer(to: str, amount: int) -> str:
        """Transfer money from the company account.

        Args:
            to: The recipient.
            amount: Euros to send.
        """
        with ledger.open("a") as fh:  # the side effect that must happen at most once
            fh.write(f"{to} {amount}\n")
        return f"sent {amount} EUR to {to}"

    agent = ChatAgent(
        "treasurer",
        "moves money",
        "You pay people when asked.",
        ScriptedChatClient(model),
        tools=[transfer],
    )
    return WorkflowBuilder(
        start=agent, name="tool_approval", checkpoint_store=SQLiteCheckpointStore(db)
    ).build()


async def start(db: Path) -> str:
    """First process: run until the approval request pauses the run."""
    result = await build(db).run("Please pay alice 250 EUR for the logo.", run_id=RUN_ID)
    assert result.status is RunStatus.AWAITING_INPUT, result.status
    (pending,) = result.pending_requests
    request = pending.payload
    assert isinstance(request, ApprovalRequest)
    print(f"[process 1] run {result.run_id!r} paused: {request.agent_name} wants to call")
    print(f"            {request.tool_name}({request.arguments})  [{request.description}]")
    print(f"            request id {pending.request_id!r}; exiting without an answer\n")
    return pending.request_id


async def finish(db: Path, request_id: str, approve: bool) -> None:
    """A fresh process: load the run from the store, answer, and finish it."""
    decision = ApprovalResponse.approve() if approve else ApprovalResponse.reject("over budget")
    verb = "approves" if approve else "rejects"
    print(f"[process 2] a person {verb} {request_id!r}; resuming from the checkpoint")
    result = await build(db).resume(RUN_ID, responses={request_id: decision})
    result.raise_for_status()
    print(f"[process 2] {result.status.value}: {result.output.text}")
    ledger = db.with_suffix(".ledger")
    entries = ledger.read_text().splitlines() if ledger.exists() else []
    print(f"[process 2] ledger: {entries}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reject", action="store_true", help="reject instead of approving")
    parser.add_argument("--resume", metavar="REQUEST_ID", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.resume:  # the "restarted" process
        anyio.run(finish, args.db, args.resume, not args.reject)
        return
    workdir = Path(tempfile.mkdtemp(prefix="ledgerflow-approval-"))
    try:
        db = workdir / "runs.db"
        request_id = anyio.run(start, db)
        command = [sys.executable, __file__, "--resume", request_id, "--db", str(db)]
        subprocess.run(command + (["--reject"] if args.reject else []), check=True)
    finally:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
