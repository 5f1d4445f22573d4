"""The Magentic orchestrator: a manager plans, picks who acts next, and knows when to stop.

The loop, the one rule every run follows (limits come from ``MagenticBuilder``):

1. **Plan** (outer loop). ``manager.plan(ctx)`` writes the task ledger (facts and a plan). With
   ``plan_review``, a person approves it or asks for changes (``replan`` with the feedback,
   then review again). The ledger, rendered by ``manager.team_message``, opens the history.
2. **Round** (inner loop). If ``round_count`` has reached ``max_round_count``, or a token or
   time budget is spent, stop (reason ``"max_rounds"`` / ``"budget"``). Otherwise
   ``round_count`` +1 and ``manager.progress(ctx)`` returns the progress ledger. Satisfied:
   stop (``"satisfied"``). Else ``stall_count`` moves +1 if the team is in a loop or not
   making progress, -1 otherwise (never below 0).
3. **Stall.** When ``stall_count > max_stall_count``: ``reset_count`` +1, ``stall_count`` 0;
   past ``max_reset_count`` the run stops (``"max_resets"``). Otherwise every participant
   with a handler for ``ConversationReset`` (agents and people have one) is sent one; with
   ``human_guidance_on_stall`` a person may give guidance; ``manager.replan(ctx)`` (it still
   sees the old history) writes a new ledger; the history is cleared and the outer loop
   starts again at 1's review.
4. **Delegate.** The instruction joins the history and goes to ``next_speaker`` (several names:
   they work concurrently, in one superstep). Each participant receives what was said since
   it last spoke, then the instruction. Once every addressee has replied, their replies join
   the history in team order, as ``ChatMessage(author=<participant>)``, and the next round
   starts.

Stopping always ends the same way: ``ctx.stop_reason`` is set, ``manager.final_answer(ctx)``
is the run's output, and a ``FinalAnswer`` event carries it with the reason, so a run stopped
by a limit still completes. Everything a run changes is in the orchestrator's executor state
(checkpointed, plain JSON), never on the manager, which is shared by every run.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from workflow import Executor, WorkflowContext, handler, response_handler
from workflow.authoring import HandlerSpec

from ._agent_executor import ConversationReset
from ._chat import ChatMessage
from ._magentic_events import (
    FinalAnswer,
    PlanCreated,
    ProgressLedgerUpdated,
    Replanned,
    StallDetected,
)
from ._magentic_ledger import (
    LedgerEntry,
    MagenticContext,
    MagenticError,
    MagenticLedgerError,
    PlanReviewRequest,
    PlanReviewResponse,
    ProgressLedger,
    StopReason,
    TaskLedger,
)
from ._magentic_manager import MagenticManager
from ._magentic_participants import as_member, as_participant, render, reply_text

__all__ = ("MagenticOrchestrator",)

Outgoing = list[ChatMessage] | ChatMessage | str | ConversationReset
_STATE = "magentic"


# --------------------------------------------------------------------------- orchestrator


def _narrowed(
    specs: tuple[HandlerSpec, ...], participants: Sequence[Executor]
) -> tuple[HandlerSpec, ...]:
    """The handlers with ``on_message`` narrowed from ``object`` to what can really arrive, so
    a run started with a non-``str`` input is refused before anything runs."""
    accepted: list[type] = [str]
    for ex in participants:
        sent = ex.output_types()
        if sent is None:
            return specs  # a participant may send anything: keep accepting anything
        accepted.extend(t for t in sent if t not in accepted)
    return tuple(
        dataclasses.replace(s, input_types=tuple(accepted)) if s.name == "on_message" else s
        for s in specs
    )


class _RunState(BaseModel):
    """The orchestrator's per-run state (stored as JSON in its executor state)."""

    ctx: MagenticContext
    phase: Literal["review", "working", "done"] = "working"
    awaiting: list[str] = Field(default_factory=list)
    replies: list[ChatMessage] = Field(default_factory=list)
    seen: dict[str, int] = Field(default_factory=dict)
    started_at: float = 0.0


class MagenticOrchestrator(Executor):
    """The hub of a Magentic team (see the module docs for the loop); build it with
    ``MagenticBuilder``, which wires it to every participant in both directions.

    Args:
        manager: The manager called for every decision (this object, never a copy).
        participants: The team's nodes; each one's id is its name in ledgers.
        id: The node id.
        max_round_count: Rounds (progress ledgers) before the run stops.
        max_stall_count: Stall counter value that may be reached without a reset.
        max_reset_count: Resets allowed; one more stops the run.
        plan_review: Ask a person to approve every plan.
        human_guidance_on_stall: Ask a person for guidance before replanning after a stall.
        token_budget: Stop once participants and manager spent this many tokens.
        time_budget: Stop once this many seconds have passed since the task arrived.
        descriptions: Participant name to description, for nodes that have none (or to
            override one); otherwise an agent's ``description``, an executor's
            ``description`` attribute, or the first line of its class docstring.
    """

    kind: ClassVar[str] = "orchestrator"
    warm: ClassVar[bool] = True  # holds agents/clients: one long-lived copy on a cluster

    def __init__(
        self,
        manager: MagenticManager,
        participants: Sequence[Executor],
        *,
        id: str = "orchestrator",
        max_round_count: int = 20,
        max_stall_count: int = 3,
        max_reset_count: int = 2,
        plan_review: bool = False,
        human_guidance_on_stall: bool = False,
        token_budget: int | None = None,
        time_budget: float | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(id)
        if not isinstance(manager, MagenticManager):
            raise TypeError(
                f"manager must be a MagenticManager (e.g. StandardMagenticManager(chat_client)), "
                f"got {manager!r}"
            )
        self.manager = manager
        given = dict(descriptions or {})
        self.members = {ex.id: as_member(ex, given.get(ex.id)) for ex in participants}
        self.team = {m.name: m.description for m in self.members.values()}
        self._specs = _narrowed(super().handler_specs(), participants)
        self.max_round_count = max_round_count
        self.max_stall_count = max_stall_count
        self.max_reset_count = max_reset_count
        self.plan_review = plan_review
        self.human_guidance_on_stall = human_guidance_on_stall
        self.token_budget = token_budget
        self.time_budget = time_budget

    @staticmethod
    def participant_node(item: Any) -> Executor:
        """The graph node for one team member, as ``MagenticBuilder`` wires it.

        An executor is used as it is; an agent becomes an ``AgentExecutor`` (or the node
        it names itself with ``as_executor()``).

        Raises:
            TypeError: ``item`` is neither an agent nor an executor.
        """
        return as_participant(item)

    def handler_specs(self) -> tuple[HandlerSpec, ...]:
        """``on_message`` accepts the task (``str``) and whatever the participants send."""
        return self._specs

    def checkpoint_types(self) -> tuple[type, ...]:
        return (
            ChatMessage,
            ConversationReset,
            LedgerEntry,
            PlanReviewRequest,
            PlanReviewResponse,
            ProgressLedger,
            TaskLedger,
        )

    # -- handlers -----------------------------------------------------------------------------
    @handler
    async def on_message(self, message: object, ctx: WorkflowContext[Outgoing]) -> None:
        """The run's task (from outside), or a participant's reply."""
        if ctx.source is None:
            if not isinstance(message, str):
                raise TypeError(
                    f"orchestrator {self.id!r}: the task must be a str, got "
                    f"{type(message).__name__} {message!r:.80}"
                )
            st = _RunState(
                ctx=MagenticContext(task=message, participants=dict(self.team)),
                started_at=time.time(),
            )
            ledger = await self._call(st, "plan", TaskLedger)
            st.ctx.task_ledger = ledger
            await ctx.add_event(self._event(PlanCreated, ctx, ledger=ledger))
            await self._review_or_begin(st, ctx, "plan")
        else:
            st = await self._load(ctx)
            if st.phase == "done":
                return  # a late message after the final answer changes nothing
            member = self.members[ctx.source]
            text, usage = reply_text(message)
            st.ctx.usage = st.ctx.usage + usage
            st.replies.append(ChatMessage("assistant", text, author=member.name))
            if member.name in st.awaiting:
                st.awaiting.remove(member.name)
            if not st.awaiting and st.phase == "working":
                order = list(self.members)
                st.replies.sort(key=lambda m: order.index(m.author or ""))
                st.ctx.history.extend(st.replies)
                st.replies = []
                await self._round(st, ctx)
        await self._save(st, ctx)

    @response_handler
    async def on_review(
        self,
        request: PlanReviewRequest,
        response: PlanReviewResponse,
        ctx: WorkflowContext[Outgoing],
    ) -> None:
        """A person approved a plan, asked for changes, or gave guidance on a stall."""
        st = await self._load(ctx)
        if st.phase != "review":
            raise MagenticError(
                f"orchestrator {self.id!r} got a plan review answer but is not waiting for one"
            )
        if request.kind == "stall":
            st.ctx.feedback = None if response.approved else response.feedback
            await self._replan(st, ctx)
            await self._review_or_begin(st, ctx, "replan")
        elif response.approved:
            await self._begin(st, ctx)
        else:
            st.ctx.feedback = response.feedback
            await self._replan(st, ctx)
            await self._review_or_begin(st, ctx, "replan")
        await self._save(st, ctx)

    # -- the loop -----------------------------------------------------------------------------
    async def _review_or_begin(
        self, st: _RunState, ctx: WorkflowContext[Outgoing], kind: Literal["plan", "replan"]
    ) -> None:
        if not self.plan_review:
            await self._begin(st, ctx)
            return
        assert st.ctx.task_ledger is not None
        request = PlanReviewRequest(task=st.ctx.task, ledger=st.ctx.task_ledger, kind=kind)
        await ctx.request_info(request, response_type=PlanReviewResponse)
        st.phase = "review"

    async def _begin(self, st: _RunState, ctx: WorkflowContext[Outgoing]) -> None:
        """Enter the inner loop with the current task ledger."""
        text = self.manager.team_message(self._view(st))
        st.ctx.history.append(ChatMessage("user", text, author=self.id))
        st.phase = "working"
        await self._round(st, ctx)

    async def _round(self, st: _RunState, ctx: WorkflowContext[Outgoing]) -> None:
        limit = self._limit(st)
        if limit is not None:
            await self._finish(st, ctx, limit)
            return
        c = st.ctx
        c.round_count += 1
        ledger = await self._call(st, "progress", ProgressLedger)
        problems = ledger.problems(self.team)
        if problems:
            raise MagenticLedgerError(
                f"manager {type(self.manager).__name__} returned an unusable progress ledger in "
                f"round {c.round_count}: {'; '.join(problems)}",
                errors=problems,
            )
        c.progress_ledger = ledger
        if not ledger.satisfied:
            c.stall_count = c.stall_count + 1 if ledger.stalled else max(0, c.stall_count - 1)
        await ctx.add_event(
            self._event(
                ProgressLedgerUpdated,
                ctx,
                round_count=c.round_count,
                stall_count=c.stall_count,
                ledger=ledger,
            )
        )
        if ledger.satisfied:
            await self._finish(st, ctx, "satisfied")
        elif c.stall_count > self.max_stall_count:
            await self._stall(st, ctx, ledger)
        else:
            await self._delegate(st, ctx, ledger)

    async def _stall(
        self, st: _RunState, ctx: WorkflowContext[Outgoing], ledger: ProgressLedger
    ) -> None:
        c = st.ctx
        c.reset_count += 1
        await ctx.add_event(
            self._event(
                StallDetected,
                ctx,
                round_count=c.round_count,
                stall_count=c.stall_count,
                reset_count=c.reset_count,
            )
        )
        c.stall_count = 0
        if c.reset_count > self.max_reset_count:
            await self._finish(st, ctx, "max_resets")
            return
        for member in self.members.values():
            if member.resettable:
                reason = f"the team stalled and resets (reset {c.reset_count})"
                await ctx.send_message(ConversationReset(reason=reason), target=member.name)
        if self.human_guidance_on_stall:
            assert c.task_ledger is not None
            request = PlanReviewRequest(
                task=c.task, ledger=c.task_ledger, kind="stall", progress=ledger
            )
            await ctx.request_info(request, response_type=PlanReviewResponse)
            st.phase = "review"
            return
        await self._replan(st, ctx)
        await self._review_or_begin(st, ctx, "replan")

    async def _replan(self, st: _RunState, ctx: WorkflowContext[Outgoing]) -> None:
        """New ledger (from the old history and any feedback), then a clean history."""
        ledger = await self._call(st, "replan", TaskLedger)
        c = st.ctx
        c.task_ledger = ledger
        await ctx.add_event(
            self._event(
                Replanned, ctx, ledger=ledger, reset_count=c.reset_count, feedback=c.feedback
            )
        )
        c.feedback = None
        c.history = []
        st.seen = {}

    async def _delegate(
        self, st: _RunState, ctx: WorkflowContext[Outgoing], ledger: ProgressLedger
    ) -> None:
        history = st.ctx.history
        history.append(ChatMessage("user", ledger.instruction, author=self.id))
        chosen = set(ledger.speakers)
        st.awaiting = [name for name in self.members if name in chosen]
        for name in st.awaiting:
            member = self.members[name]
            delta = [m for m in history[st.seen.get(name, 0) :] if m.author != name]
            st.seen[name] = len(history)
            payload: Outgoing
            if member.mode == "chat":
                payload = delta
            elif member.mode == "message":
                payload = ChatMessage("user", render(delta), author=self.id)
            else:
                payload = render(delta)
            await ctx.send_message(payload, target=name)
        st.phase = "working"

    async def _finish(
        self, st: _RunState, ctx: WorkflowContext[Outgoing], reason: StopReason
    ) -> None:
        st.ctx.stop_reason = reason
        text = await self._call(st, "final_answer", str)
        await ctx.yield_output(text)
        await ctx.add_event(self._event(FinalAnswer, ctx, text=text, reason=reason))
        st.phase = "done"

    def _limit(self, st: _RunState) -> StopReason | None:
        c = st.ctx
        if c.round_count >= self.max_round_count:
            return "max_rounds"
        if self.token_budget is not None and c.usage.total_tokens >= self.token_budget:
            return "budget"
        if self.time_budget is not None and time.time() - st.started_at >= self.time_budget:
            return "budget"
        return None

    # -- plumbing -----------------------------------------------------------------------------
    def _view(self, st: _RunState) -> MagenticContext:
        """A copy for the manager: it may write ``scratch`` and usage, nothing else sticks."""
        return st.ctx.model_copy(
            update={
                "participants": dict(self.team),
                "history": list(st.ctx.history),
                "scratch": copy.deepcopy(st.ctx.scratch),
            }
        )

    async def _call(self, st: _RunState, method: str, expected: type[Any]) -> Any:
        view = self._view(st)
        result = await getattr(self.manager, method)(view)
        if not isinstance(result, expected):
            raise TypeError(
                f"{type(self.manager).__name__}.{method}() must return {expected.__name__}, got "
                f"{type(result).__name__} {result!r:.80}"
            )
        st.ctx.scratch = view.scratch
        st.ctx.usage = view.usage
        return result

    def _event(self, cls: type[Any], ctx: WorkflowContext[Outgoing], **fields: Any) -> Any:
        return cls(run_id=ctx.run_id, superstep=ctx.superstep, executor_id=self.id, **fields)

    async def _load(self, ctx: WorkflowContext[Outgoing]) -> _RunState:
        data = await ctx.get_executor_state(_STATE)
        if data is None:
            raise MagenticError(
                f"orchestrator {self.id!r} got a message from {ctx.source!r} before any task; "
                "start the run with the task (a str)"
            )
        st = _RunState.model_validate(data)
        st.ctx.participants = dict(self.team)
        return st

    async def _save(self, st: _RunState, ctx: WorkflowContext[Outgoing]) -> None:
        await ctx.set_executor_state(_STATE, st.model_dump(mode="json"))
