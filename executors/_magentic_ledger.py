"""Magentic ledgers and the data the orchestrator exchanges: plain pydantic models.

Everything here is JSON-able, so a run's ledgers, its history and a pending plan review live
in checkpoints and survive a restart. ``parse_progress_ledger`` is the one place that turns
a model's text into a ``ProgressLedger``: it tolerates the usual wrapping (code fences,
leading prose, Python literals) but never guesses a missing field.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from workflow import WorkflowError

from ._agent_executor import ConversationReset  # its home now; still importable from here
from ._chat import ChatMessage, Usage

__all__ = (
    "PROGRESS_FIELDS",
    "ConversationReset",
    "LedgerEntry",
    "MagenticContext",
    "MagenticError",
    "MagenticLedgerError",
    "PlanReviewRequest",
    "PlanReviewResponse",
    "ProgressLedger",
    "StopReason",
    "TaskLedger",
    "parse_progress_ledger",
)

StopReason = Literal["satisfied", "max_rounds", "max_resets", "budget"]
PROGRESS_FIELDS = (
    "is_request_satisfied",
    "is_in_loop",
    "is_progress_being_made",
    "next_speaker",
    "instruction_or_question",
)
_FLAGS = PROGRESS_FIELDS[:3]
_TRUE = {"true", "yes"}
_FALSE = {"false", "no"}


# --------------------------------------------------------------------------- errors


class MagenticError(WorkflowError):
    """Root of the errors a Magentic team raises on purpose (a ``WorkflowError``)."""


class MagenticLedgerError(MagenticError):
    """The manager produced no usable progress ledger, so the run cannot go on.

    Raised by ``StandardMagenticManager`` once its retries are spent, and by the
    orchestrator when any manager's ledger names a speaker that is not on the team.

    Attributes:
        attempts: How many ledgers were asked for.
        errors: What was wrong with each, oldest first.
        last_reply: The text of the last bad reply, when it came from a model.
    """

    def __init__(
        self, message: str, *, attempts: int = 1, errors: list[str], last_reply: str | None = None
    ) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.errors = errors
        self.last_reply = last_reply


# --------------------------------------------------------------------------- ledgers


class LedgerEntry(BaseModel):
    """One answer of a ledger and the reason given for it (``LedgerEntry(answer, reason)``).

    Attributes:
        answer: A yes/no flag, a participant name (or a list of names), or an instruction.
        reason: Why; read by people following the run and by the manager's next call.
    """

    model_config = ConfigDict(frozen=True)

    answer: bool | str | list[str]
    reason: str = ""

    def __init__(self, answer: bool | str | list[str], reason: str = "", **data: Any) -> None:
        super().__init__(answer=answer, reason=reason, **data)


class TaskLedger(BaseModel):
    """The outer loop's record: what is known about the task and the plan to solve it.

    Attributes:
        facts: Facts given or verified, to look up, to derive, and educated guesses.
        plan: A short bullet plan naming the team members who carry each step.
    """

    model_config = ConfigDict(frozen=True)

    facts: str
    plan: str

    def __init__(self, facts: str, plan: str, **data: Any) -> None:
        super().__init__(facts=facts, plan=plan, **data)


class ProgressLedger(BaseModel):
    """The inner loop's record for one round; each field a ``LedgerEntry``.

    The three flags' answers are normalised to ``bool`` (``"yes"``/``"true"`` and
    ``"no"``/``"false"`` are accepted, anything else is an error). ``next_speaker.answer`` is
    one participant name, or a list of names that work on the instruction concurrently.
    """

    model_config = ConfigDict(frozen=True)

    is_request_satisfied: LedgerEntry
    is_in_loop: LedgerEntry
    is_progress_being_made: LedgerEntry
    next_speaker: LedgerEntry
    instruction_or_question: LedgerEntry

    @field_validator(*_FLAGS)
    @classmethod
    def _flag(cls, entry: LedgerEntry) -> LedgerEntry:
        answer = entry.answer
        if isinstance(answer, bool):
            return entry
        if isinstance(answer, str) and answer.strip().lower() in _TRUE | _FALSE:
            return entry.model_copy(update={"answer": answer.strip().lower() in _TRUE})
        raise ValueError(f"answer must be true or false, got {answer!r}")

    @field_validator("next_speaker")
    @classmethod
    def _speaker(cls, entry: LedgerEntry) -> LedgerEntry:
        answer = entry.answer
        if isinstance(answer, bool):
            raise ValueError(f"answer must be a participant name or a list of names, not {answer}")
        if isinstance(answer, list) and len(answer) == 1:
            return entry.model_copy(update={"answer": answer[0]})
        return entry

    @field_validator("instruction_or_question")
    @classmethod
    def _instruction(cls, entry: LedgerEntry) -> LedgerEntry:
        if not isinstance(entry.answer, str):
            raise ValueError(f"answer must be a string, got {entry.answer!r}")
        return entry

    @property
    def satisfied(self) -> bool:
        """``is_request_satisfied.answer`` as a bool."""
        return self.is_request_satisfied.answer is True

    @property
    def stalled(self) -> bool:
        """Whether this round counts against the team: no progress, or going round in circles."""
        return self.is_in_loop.answer is True or self.is_progress_being_made.answer is not True

    @property
    def speakers(self) -> list[str]:
        """The names in ``next_speaker``, in the order given, without repeats."""
        answer = self.next_speaker.answer
        names = answer if isinstance(answer, list) else [str(answer)]
        return list(dict.fromkeys(n.strip() for n in names))

    @property
    def instruction(self) -> str:
        """``instruction_or_question.answer``."""
        return str(self.instruction_or_question.answer)

    def problems(self, participants: Mapping[str, str]) -> list[str]:
        """What makes this ledger unusable for a team of ``participants`` (empty: fine)."""
        if self.satisfied:
            return []
        found = []
        speakers = self.speakers
        if not speakers or not all(speakers):
            found.append("next_speaker.answer names nobody; name a team member")
        unknown = [n for n in speakers if n and n not in participants]
        if unknown:
            found.append(
                f"next_speaker.answer names {', '.join(repr(n) for n in unknown)}, not on the "
                f"team; choose from {', '.join(repr(n) for n in participants)}"
            )
        if not self.instruction.strip():
            found.append("instruction_or_question.answer is empty; say what the speaker should do")
        return found


# --------------------------------------------------------------------------- human review


class PlanReviewRequest(BaseModel):
    """A plan waiting for a person's approval (or guidance, when the team stalled).

    Attributes:
        task: The task the plan is for.
        ledger: The plan to review.
        kind: ``"plan"`` (the first plan), ``"replan"`` (a revised plan) or ``"stall"`` (the
            team is stuck; any feedback guides the next plan).
        progress: The last progress ledger, for a stall.
    """

    model_config = ConfigDict(frozen=True)

    task: str
    ledger: TaskLedger
    kind: Literal["plan", "replan", "stall"] = "plan"
    progress: ProgressLedger | None = None


class PlanReviewResponse(BaseModel):
    """A person's answer to a ``PlanReviewRequest``: ``approve()`` or ``revise(feedback)``."""

    model_config = ConfigDict(frozen=True)

    approved: bool
    feedback: str | None = None

    @classmethod
    def approve(cls) -> PlanReviewResponse:
        """Go ahead with the plan (for a stall: replan without guidance)."""
        return cls(approved=True)

    @classmethod
    def revise(cls, feedback: str) -> PlanReviewResponse:
        """Replan with ``feedback`` and ask again."""
        if not feedback.strip():
            raise ValueError(
                "revise() needs feedback saying what to change; use approve() to accept"
            )
        return cls(approved=False, feedback=feedback)


# --------------------------------------------------------------------------- context


class MagenticContext(BaseModel):
    """What a manager sees of one run; the orchestrator keeps it in checkpointed state.

    A manager is shared by every run, so anything it must remember between calls of one run
    goes in ``scratch`` (JSON values); tokens it spends go through ``add_usage`` so token
    budgets see them. The other fields are the orchestrator's: changing them has no effect.

    Attributes:
        task: The request the team works on.
        participants: Team member name to description, in team order.
        history: The shared conversation since the last reset (instructions from the
            orchestrator, then each reply with ``author`` set to the participant's name).
        round_count: Progress ledgers asked for so far (over the whole run).
        stall_count: The stall counter (see the orchestrator's rule).
        reset_count: Resets so far.
        task_ledger: The current facts and plan.
        progress_ledger: The last progress ledger.
        feedback: A person's feedback for the ``replan`` about to be made, if any.
        stop_reason: Why the run stops, set before ``final_answer``.
        usage: Tokens spent by participants and the manager.
        scratch: The manager's own per-run memory.
    """

    task: str
    participants: dict[str, str] = Field(default_factory=dict)
    history: list[ChatMessage] = Field(default_factory=list)
    round_count: int = 0
    stall_count: int = 0
    reset_count: int = 0
    task_ledger: TaskLedger | None = None
    progress_ledger: ProgressLedger | None = None
    feedback: str | None = None
    stop_reason: StopReason | None = None
    usage: Usage = Usage()
    scratch: dict[str, Any] = Field(default_factory=dict)

    def add_usage(self, usage: Usage) -> None:
        """Count tokens the manager spent (so ``token_budget`` includes them)."""
        self.usage = self.usage + usage


# --------------------------------------------------------------------------- parsing

_FENCED = re.compile(r"```[a-zA-Z0-9_-]*\s*\n(.*?)```", re.DOTALL)


def _load_object(text: str) -> Any:
    """The first JSON (or Python literal) object in ``text``; raises ``ValueError``."""
    candidates = [m.group(1) for m in _FENCED.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1 and end > start:
        candidates.append(text[start : end + 1])
    candidates.append(text)
    for candidate in candidates:
        candidate = candidate.strip()
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
        try:
            return ast.literal_eval(candidate)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    raise ValueError("the reply holds no JSON object")


def parse_progress_ledger(text: str, participants: Mapping[str, str]) -> ProgressLedger:
    """Read a model's reply as a ``ProgressLedger`` usable by a team of ``participants``.

    Raises:
        ValueError: The reply is not a JSON object with the five fields, each with
            ``answer`` and ``reason``, or its speakers or instruction are unusable. The
            message lists every problem, ready to be fed back to the model.
    """
    data = _load_object(text)
    if not isinstance(data, dict):
        raise ValueError(f"the reply is a JSON {type(data).__name__}, not an object")
    problems = []
    for name in PROGRESS_FIELDS:
        entry = data.get(name)
        if entry is None:
            problems.append(f"{name} is missing")
        elif not isinstance(entry, dict) or "answer" not in entry or "reason" not in entry:
            problems.append(f'{name} must be an object with "answer" and "reason"')
    if problems:
        raise ValueError("; ".join(problems))
    try:
        ledger = ProgressLedger.model_validate({k: data[k] for k in PROGRESS_FIELDS})
    except ValidationError as exc:
        raise ValueError(
            "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
        ) from None
    problems = ledger.problems(participants)
    if problems:
        raise ValueError("; ".join(problems))
    return ledger
