"""``MagenticManager``: the decisions of a Magentic team, behind one small interface.

The orchestrator calls the manager object it was given for every decision and keeps all
per-run state in the ``MagenticContext`` it passes, so one manager serves any number of runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ._magentic_ledger import MagenticContext, ProgressLedger, TaskLedger

__all__ = ("MagenticManager", "render_team")


class MagenticManager(ABC):
    """Decides for a Magentic team: plans, judges each round, writes the final answer.

    One manager serves every run of a workflow (and the orchestrator calls this very object),
    so keep per-run memory in ``ctx.scratch``, never on ``self``.
    """

    @abstractmethod
    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        """The first task ledger for ``ctx.task``."""

    @abstractmethod
    async def replan(self, ctx: MagenticContext) -> TaskLedger:
        """A new task ledger after a stall (``ctx.history`` shows what happened) or with a
        reviewer's ``ctx.feedback``."""

    @abstractmethod
    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        """Judge the latest round and say who acts next, and how."""

    @abstractmethod
    async def final_answer(self, ctx: MagenticContext) -> str:
        """The answer to ``ctx.task``; ``ctx.stop_reason`` says why the run stops."""

    def team_message(self, ctx: MagenticContext) -> str:
        """The message that opens each outer loop: the task, the team, the facts, the plan."""
        ledger = ctx.task_ledger
        facts = ledger.facts if ledger is not None else ""
        plan = ledger.plan if ledger is not None else ""
        return (
            f"Task:\n{ctx.task}\n\nTeam:\n{render_team(ctx.participants)}\n\n"
            f"What we know:\n{facts}\n\nPlan:\n{plan}"
        )


def render_team(participants: dict[str, str]) -> str:
    """One ``- name: description`` line per participant."""
    return "\n".join(
        f"- {name}: {desc or '(no description)'}" for name, desc in participants.items()
    )
