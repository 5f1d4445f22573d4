"""``StandardMagenticManager``: the Magentic manager driven by a chat model.

Each decision is one or two model calls with prompts from ``MagenticPrompts`` (override any
of them). The progress ledger is asked for with its JSON schema, built for the team (the
speaker must be one of its names), so a server that constrains generation returns exactly
that shape; ``OpenAIChatClient`` steps the request down (JSON object with the schema, JSON
object, plain text) on endpoints that refuse it. The reply is read by
``parse_progress_ledger`` (tolerant of the usual wrapping) and checked against the team; a
reply that fails, including one cut at the token limit, is asked for again with the problem
quoted, at most ``max_ledger_retries`` times, then ``MagenticLedgerError`` fails the run. Text
answers (facts, plans, the final answer) get the same bounded retry when they are truncated.

Every request carries a ``max_tokens`` for its kind (``MagenticTokenLimits``), so a model
that rambles is cut at a known length and asked again, instead of running into a timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from workflow import model_call_span

from ._chat import ChatClient, ChatMessage, ChatResponse
from ._magentic_ledger import (
    PROGRESS_FIELDS,
    MagenticContext,
    MagenticLedgerError,
    ProgressLedger,
    TaskLedger,
    parse_progress_ledger,
)
from ._magentic_manager import MagenticManager, render_team

__all__ = (
    "MagenticPrompts",
    "MagenticTokenLimits",
    "StandardMagenticManager",
    "progress_ledger_format",
)


@dataclass(frozen=True, slots=True)
class MagenticTokenLimits:
    """The output token limit (``max_tokens``) of each kind of request the manager makes.

    ``None`` leaves that kind to the client's default. The defaults fit the prompts: a ledger
    is five short entries, facts and plans are lists, the final answer is a few paragraphs.
    """

    facts: int | None = 500
    plan: int | None = 400
    ledger: int | None = 400
    final_answer: int | None = 800

    def __post_init__(self) -> None:
        for name in ("facts", "plan", "ledger", "final_answer"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"MagenticTokenLimits.{name} must be >= 1 or None, got {value!r}")


def progress_ledger_format(names: list[str]) -> dict[str, Any]:
    """The progress ledger's ``response_format``: a strict JSON schema naming the team.

    ``next_speaker.answer`` is one of ``names`` (or a list of them, to work concurrently);
    the three flags are booleans; every entry has an ``answer`` and a ``reason``.
    """
    speaker = {"type": "string", "enum": list(names)}

    def entry(answer: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"answer": answer, "reason": {"type": "string"}},
            "required": ["answer", "reason"],
            "additionalProperties": False,
        }

    flag = entry({"type": "boolean"})
    schema = {
        "type": "object",
        "properties": {
            "is_request_satisfied": flag,
            "is_in_loop": flag,
            "is_progress_being_made": flag,
            "next_speaker": entry(
                {"anyOf": [speaker, {"type": "array", "items": speaker, "minItems": 1}]}
            ),
            "instruction_or_question": entry({"type": "string"}),
        },
        "required": list(PROGRESS_FIELDS),
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": "progress_ledger", "schema": schema, "strict": True},
    }


@dataclass(frozen=True, slots=True)
class MagenticPrompts:
    """The prompts of ``StandardMagenticManager``: ``str.format`` templates.

    Fields they may use: ``{task}``, ``{team}`` (one line per member), ``{names}``,
    ``{facts}``, ``{plan}``, ``{feedback}`` (a sentence, or empty) and, in ``final_answer``,
    ``{stop_note}``. Literal braces are doubled.
    """

    system: str = (
        "You lead a team of agents. You do not do the work yourself: you take stock of what "
        "is known, make a plan, decide who acts next and with what instruction, and judge "
        "when the request has been met. Be brief and concrete."
    )
    facts: str = (
        "Here is a request:\n\n{task}\n\n"
        "Before anyone starts, take stock. Do not solve the request yet. Write four short "
        "sections with exactly these headings:\n\n"
        "1. FACTS GIVEN OR VERIFIED: stated in the request or otherwise confirmed.\n"
        "2. FACTS TO LOOK UP: still needed, and where they could be found.\n"
        "3. FACTS TO DERIVE: to be worked out by reasoning, calculation or running code.\n"
        "4. EDUCATED GUESSES: likely from memory or common sense; mark them as guesses.\n\n"
        "A section may be empty. One or two lines per entry."
    )
    plan: str = (
        "The team that will handle the request:\n\n{team}\n\n{feedback}"
        "Write a short plan as a bullet list. Each bullet names the team member who does "
        "that step. Not every member has to take part. Reply with the bullet list only."
    )
    ledger: str = (
        "We are working on this request:\n\n{task}\n\n"
        "The team:\n{team}\n\n"
        "What we know so far:\n\n{facts}\n\n"
        "The plan:\n\n{plan}\n\n"
        "Follow the plan, and say so when something turns out differently than expected."
    )
    progress: str = (
        "Take stock of where the team stands on this request:\n\n{task}\n\n"
        "The team:\n{team}\n\n"
        "Answer with one JSON object with exactly these five keys. Each maps to an object "
        'with "answer" and "reason" (one sentence on why):\n\n'
        '- "is_request_satisfied": true only if the request has been fully and correctly '
        "handled, else false.\n"
        '- "is_in_loop": true if the team keeps repeating the same requests or replies '
        "without getting anywhere.\n"
        '- "is_progress_being_made": true if the latest messages moved the work forward; '
        "false if the team is stuck or errors keep happening.\n"
        '- "next_speaker": who acts next: one of {names}; or a list of several of them who '
        "should work on the same instruction at the same time.\n"
        '- "instruction_or_question": a specific, self-contained instruction or question '
        "for that member.\n\n"
        'Shape: {{"is_request_satisfied": {{"answer": false, "reason": "..."}}, '
        '"is_in_loop": {{...}}, "is_progress_being_made": {{...}}, "next_speaker": '
        '{{"answer": "...", "reason": "..."}}, "instruction_or_question": '
        '{{"answer": "...", "reason": "..."}}}}\n\n'
        "Reply with the JSON object and nothing else."
    )
    facts_update: str = (
        "The team has not managed to finish this request yet:\n\n{task}\n\n{feedback}"
        "Earlier we wrote down:\n\n{facts}\n\n"
        "Update that list with what the conversation so far has taught us: move what is now "
        "confirmed to FACTS GIVEN OR VERIFIED, add what still has to be looked up or derived, "
        "and revise the guesses, adding at least one about what went wrong. Keep the four "
        "headings and reply with the whole updated list."
    )
    plan_update: str = (
        "In a sentence or two, say what got in the way. Then write a new plan as a bullet "
        "list that works around it, each bullet naming the team member responsible. The "
        "team:\n\n{team}\n\n{feedback}"
    )
    final_answer: str = (
        "The work on this request is over:\n\n{task}\n\n{stop_note}\n\n"
        "From the conversation above, write the final answer for the person who asked. "
        "Answer the request directly, give the result, and say what remains uncertain."
    )


_STOP_NOTES = {
    "satisfied": "The team judged the request to be met.",
    "max_rounds": (
        "The team ran out of turns before finishing. Give the best answer the conversation "
        "supports and say what is missing."
    ),
    "max_resets": (
        "The team got stuck repeatedly and was stopped. Give the best answer the conversation "
        "supports and say what is missing."
    ),
    "budget": (
        "The team used up its budget before finishing. Give the best answer the conversation "
        "supports and say what is missing."
    ),
}


class StandardMagenticManager(MagenticManager):
    """A ``MagenticManager`` whose decisions come from a chat model.

    Args:
        chat_client: Any ``ChatClient`` (``OpenAIChatClient``, ``ScriptedChatClient``...).
        max_ledger_retries: How many times a bad reply is asked for again before the run
            fails with ``MagenticLedgerError``.
        prompts: The prompt templates (see ``MagenticPrompts``).
        response_format: Passed with the progress request instead of the team's ledger
            schema (``progress_ledger_format``), e.g. ``{"type": "json_object"}``.
        max_tokens: The output token limit of each kind of request.
    """

    def __init__(
        self,
        chat_client: ChatClient,
        *,
        max_ledger_retries: int = 3,
        prompts: MagenticPrompts | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: MagenticTokenLimits | None = None,
    ) -> None:
        if max_ledger_retries < 0:
            raise ValueError(f"max_ledger_retries must be >= 0, got {max_ledger_retries!r}")
        self.chat_client = chat_client
        self.max_ledger_retries = max_ledger_retries
        self.prompts = prompts or MagenticPrompts()
        self.response_format = response_format
        self.max_tokens = max_tokens or MagenticTokenLimits()

    def __repr__(self) -> str:
        return f"StandardMagenticManager({self.chat_client!r})"

    # -- the four decisions ------------------------------------------------------------------
    async def plan(self, ctx: MagenticContext) -> TaskLedger:
        """Survey the facts, then plan with the team in view."""
        p = self.prompts
        ask_facts = ChatMessage("user", self._fill(p.facts, ctx))
        facts = await self._text(ctx, [self._system(), ask_facts], "facts")
        ask_plan = ChatMessage("user", self._fill(p.plan, ctx))
        plan = await self._text(
            ctx, [self._system(), ask_facts, ChatMessage("assistant", facts), ask_plan], "plan"
        )
        return TaskLedger(facts=facts, plan=plan)

    async def replan(self, ctx: MagenticContext) -> TaskLedger:
        """Update the facts from what happened, then plan around what went wrong.

        With no history yet (a reviewer revising a plan before any work), nothing new is
        known: the facts stay and only the plan is redone, with the reviewer's feedback.
        """
        p = self.prompts
        if not ctx.history and ctx.task_ledger is not None:
            facts = ctx.task_ledger.facts
            ask_plan = ChatMessage("user", self._fill(p.plan, ctx))
            plan = await self._text(
                ctx,
                [
                    self._system(),
                    ChatMessage("user", self._fill(p.facts, ctx)),
                    ChatMessage("assistant", facts),
                    ask_plan,
                ],
                "plan",
            )
            return TaskLedger(facts=facts, plan=plan)
        base = [self._system(), *self._transcript(ctx)]
        ask_facts = ChatMessage("user", self._fill(p.facts_update, ctx))
        facts = await self._text(ctx, [*base, ask_facts], "facts update")
        ask_plan = ChatMessage("user", self._fill(p.plan_update, ctx))
        plan = await self._text(
            ctx, [*base, ask_facts, ChatMessage("assistant", facts), ask_plan], "plan update"
        )
        return TaskLedger(facts=facts, plan=plan)

    def team_message(self, ctx: MagenticContext) -> str:
        """The task ledger as the team reads it."""
        return self._fill(self.prompts.ledger, ctx)

    async def progress(self, ctx: MagenticContext) -> ProgressLedger:
        """Ask for the ledger as JSON; re-ask with the problem quoted until it is usable."""
        messages = [
            self._system(),
            *self._transcript(ctx),
            ChatMessage("user", self._fill(self.prompts.progress, ctx)),
        ]
        fmt = self.response_format or progress_ledger_format(list(ctx.participants))
        errors: list[str] = []
        reply = ""
        for _ in range(self.max_ledger_retries + 1):
            response = await self._ask(
                ctx, messages, response_format=fmt, max_tokens=self.max_tokens.ledger
            )
            reply = response.text
            try:
                if response.truncated:
                    raise ValueError(
                        "the reply was cut off at the token limit; answer with the JSON object "
                        "only, with shorter reasons"
                    )
                return parse_progress_ledger(reply, ctx.participants)
            except ValueError as exc:
                errors.append(str(exc))
            messages = [
                *messages,
                ChatMessage("assistant", reply),
                ChatMessage(
                    "user",
                    f"That reply cannot be used: {errors[-1]}. Answer again with only the JSON "
                    "object described above, all five keys, each with an answer and a reason.",
                ),
            ]
        raise MagenticLedgerError(
            f"no usable progress ledger from {self.chat_client!r} in round {ctx.round_count} "
            f"after {len(errors)} attempts (max_ledger_retries={self.max_ledger_retries}); "
            f"last problem: {errors[-1]}",
            attempts=len(errors),
            errors=errors,
            last_reply=reply,
        )

    async def final_answer(self, ctx: MagenticContext) -> str:
        """Write the answer from the conversation, saying why the work stopped."""
        ask = ChatMessage("user", self._fill(self.prompts.final_answer, ctx))
        return await self._text(ctx, [self._system(), *self._transcript(ctx), ask], "final answer")

    # -- helpers ------------------------------------------------------------------------------
    def _system(self) -> ChatMessage:
        return ChatMessage("system", self.prompts.system)

    def _fill(self, template: str, ctx: MagenticContext) -> str:
        ledger = ctx.task_ledger
        feedback = (
            f"A reviewer asked for changes; follow this feedback:\n{ctx.feedback}\n\n"
            if ctx.feedback
            else ""
        )
        return template.format(
            task=ctx.task,
            team=render_team(ctx.participants),
            names=", ".join(repr(n) for n in ctx.participants),
            facts=ledger.facts if ledger is not None else "",
            plan=ledger.plan if ledger is not None else "",
            feedback=feedback,
            stop_note=_STOP_NOTES.get(ctx.stop_reason or "satisfied", ""),
        )

    @staticmethod
    def _transcript(ctx: MagenticContext) -> list[ChatMessage]:
        """The shared history as this model sees it: its own messages, the others' by name."""
        out = []
        for m in ctx.history:
            if m.role == "user" and m.author not in ctx.participants:
                out.append(ChatMessage("assistant", m.text))
            else:
                out.append(ChatMessage("user", f"{m.author or m.role}:\n{m.text}", author=m.author))
        return out

    async def _ask(
        self,
        ctx: MagenticContext,
        messages: list[ChatMessage],
        *,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        # a GenAI span per ledger request, as agents have (free when nothing is traced)
        model = str(getattr(self.chat_client, "model", None) or type(self.chat_client).__name__)
        with model_call_span(model) as span:
            response = await self.chat_client.get_response(
                messages, response_format=response_format, max_tokens=max_tokens
            )
            span.record_tokens(response.usage.input_tokens, response.usage.output_tokens)
        ctx.add_usage(response.usage)
        return response

    def _limit(self, what: str) -> int | None:
        limits = self.max_tokens
        if what.startswith("facts"):
            return limits.facts
        if what.startswith("plan"):
            return limits.plan
        return limits.final_answer

    async def _text(self, ctx: MagenticContext, messages: list[ChatMessage], what: str) -> str:
        """A free-text answer, re-asked (briefer) while it comes back truncated."""
        attempts = self.max_ledger_retries + 1
        last = ""
        for _ in range(attempts):
            response = await self._ask(ctx, messages, max_tokens=self._limit(what))
            if not response.truncated:
                return response.text.strip()
            last = response.text
            messages = [
                *messages,
                ChatMessage("assistant", last),
                ChatMessage(
                    "user", "That answer was cut off at the token limit; answer again, briefer."
                ),
            ]
        raise MagenticLedgerError(
            f"the {what} from {self.chat_client!r} was cut off at the token limit "
            f"{attempts} times (max_ledger_retries={self.max_ledger_retries})",
            attempts=attempts,
            errors=["truncated"] * attempts,
            last_reply=last,
        )
