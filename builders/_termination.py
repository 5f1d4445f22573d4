"""Termination conditions for conversations, and the event that says why one ended.

A condition is configuration: the same object serves every run of a workflow, also runs
going on at the same time. What a condition remembers during one conversation (tokens
spent so far, when the conversation started, which half of an ``&`` already held) is plain
JSON that the conversation keeps in its own checkpointed state and hands back on each
check, so a resumed run stops exactly where an uninterrupted one would.

A conversation is checked once for its task and then after every speaker turn; each check
sees the whole conversation and the messages added since the previous check. Conditions
count every message, the task included. Combine them with ``|`` (either) and ``&`` (both,
each remembered once it held); a plain function of the conversation is a condition too.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from executors import ChatMessage, Usage
from workflow.events import WorkflowEvent

__all__ = (
    "AllOf",
    "AnyOf",
    "ConversationFinished",
    "ConversationView",
    "External",
    "FunctionCallMade",
    "FunctionCondition",
    "HandoffTo",
    "MaxMessages",
    "SourceMatch",
    "TerminationCondition",
    "TextMention",
    "Timeout",
    "TokenBudget",
    "as_condition",
)

ConditionFunction = Callable[[list[ChatMessage]], Any]
"""``fn(conversation) -> bool | str | None`` (or an awaitable of it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationFinished(WorkflowEvent):
    """A conversation ended; ``reason`` says which rule stopped it and why.

    Attributes:
        executor_id: The node that ended it (a group chat's manager, or the participant
            that spoke last).
        reason: Human-readable, e.g. ``"TextMention('APPROVED'): said by 'critic'"``.
        messages: Messages in the final conversation, the task included.
        turns: Speaker turns taken.
    """

    executor_id: str
    reason: str
    messages: int
    turns: int


@dataclass(frozen=True, slots=True)
class ConversationView:
    """What a condition sees at one check.

    Attributes:
        messages: The whole conversation, the task first.
        new: The messages added since the previous check (at the first check: the task).
        usage: Tokens spent since the previous check (the speaker's, plus any model call
            made to choose it).
        run_id: The run being checked, for conditions aimed at one run.
        now: Wall-clock time of the check (``time.time()``).
    """

    messages: Sequence[ChatMessage]
    new: Sequence[ChatMessage]
    usage: Usage = field(default_factory=Usage)
    run_id: str = ""
    now: float = field(default_factory=time.time)


Verdict = tuple[str | None, Any]


class TerminationCondition:
    """Base of the conditions: ``check`` returns ``(reason or None, new state)``.

    Subclasses that remember nothing override only ``_fires``; stateful ones override
    ``initial_state`` and ``check``. States are JSON values (kept in checkpoints).
    """

    def initial_state(self) -> Any:
        """The state before the first check of a conversation."""
        return None

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        """Whether the conversation should end now, and the state for the next check."""
        return self._fires(view), state

    def _fires(self, view: ConversationView) -> str | None:
        raise NotImplementedError

    def __or__(self, other: Any) -> AnyOf:
        return AnyOf([self, _coerce(other)])

    def __ror__(self, other: Any) -> AnyOf:
        return AnyOf([_coerce(other), self])

    def __and__(self, other: Any) -> AllOf:
        return AllOf([self, _coerce(other)])

    def __rand__(self, other: Any) -> AllOf:
        return AllOf([_coerce(other), self])


def _coerce(value: Any) -> TerminationCondition:
    if isinstance(value, TerminationCondition):
        return value
    if callable(value):
        return FunctionCondition(value)
    raise TypeError(
        f"cannot combine a termination condition with {value!r}; use a condition such as "
        "MaxMessages(10) or a function of the conversation"
    )


def as_condition(value: Any) -> TerminationCondition | None:
    """``None``, a condition, or a function of the conversation, as a condition."""
    return None if value is None else _coerce(value)


def _who(message: ChatMessage) -> str:
    return repr(message.author) if message.author else f"the {message.role}"


class MaxMessages(TerminationCondition):
    """Ends once the conversation holds ``n`` messages, the task included."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"MaxMessages needs a positive message count, got {n!r}")
        self.n = n

    def __repr__(self) -> str:
        return f"MaxMessages({self.n})"

    def _fires(self, view: ConversationView) -> str | None:
        count = len(view.messages)
        return f"{self!r}: the conversation has {count} messages" if count >= self.n else None


class TextMention(TerminationCondition):
    """Ends when a new message (the task included) contains ``text``.

    Args:
        text: The text to look for (case-sensitive, like AutoGen's ``TERMINATE``).
        sources: Only messages by these authors count (default: anyone's).
    """

    def __init__(self, text: str, sources: Iterable[str] | None = None) -> None:
        if not text:
            raise ValueError("TextMention needs a non-empty text to look for")
        self.text = text
        self.sources = None if sources is None else frozenset(_names(sources, "TextMention"))

    def __repr__(self) -> str:
        return f"TextMention({self.text!r})"

    def _fires(self, view: ConversationView) -> str | None:
        for message in view.new:
            if self.sources is not None and message.author not in self.sources:
                continue
            if self.text in message.text:
                return f"{self!r}: said by {_who(message)}"
        return None


class TokenBudget(TerminationCondition):
    """Ends once the conversation has spent ``n`` tokens (input plus output, every model call)."""

    def __init__(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"TokenBudget needs a positive token count, got {n!r}")
        self.n = n

    def __repr__(self) -> str:
        return f"TokenBudget({self.n})"

    def initial_state(self) -> Any:
        return 0

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        spent = int(state or 0) + view.usage.total_tokens
        reason = f"{self!r}: {spent} tokens spent" if spent >= self.n else None
        return reason, spent


class Timeout(TerminationCondition):
    """Ends at the first check ``seconds`` or more after the conversation's first check.

    Wall-clock time, checkpointed: a run paused for input or resumed in another process
    keeps counting from its original start. A turn in progress is not interrupted; the
    check after it ends the conversation.
    """

    def __init__(self, seconds: float) -> None:
        if not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"Timeout needs a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)

    def __repr__(self) -> str:
        return f"Timeout({self.seconds:g})"

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        started = view.now if state is None else float(state)
        elapsed = view.now - started
        reason = f"{self!r}: {elapsed:.1f}s elapsed" if elapsed >= self.seconds else None
        return reason, started


class HandoffTo(TerminationCondition):
    """Ends when a participant hands the conversation off to ``name`` (before it speaks)."""

    def __init__(self, name: str) -> None:
        if not name:
            raise ValueError("HandoffTo needs the name of a participant")
        self.name = name
        self.tool_name = f"handoff_to_{name}"

    def __repr__(self) -> str:
        return f"HandoffTo({self.name!r})"

    def _fires(self, view: ConversationView) -> str | None:
        for message in view.new:
            if any(call.name == self.tool_name for call in message.tool_calls):
                return f"{self!r}: {_who(message)} handed off to {self.name!r}"
        return None


class SourceMatch(TerminationCondition):
    """Ends when one of ``names`` has spoken (checked on the new messages)."""

    def __init__(self, names: str | Iterable[str]) -> None:
        self.names = frozenset(_names([names] if isinstance(names, str) else names, "SourceMatch"))

    def __repr__(self) -> str:
        return f"SourceMatch({sorted(self.names)!r})"

    def _fires(self, view: ConversationView) -> str | None:
        for message in view.new:
            if message.author in self.names:
                return f"{self!r}: {message.author!r} spoke"
        return None


class FunctionCallMade(TerminationCondition):
    """Ends when a new message calls the tool ``name`` (any tool when ``name`` is ``None``)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"FunctionCallMade({self.name!r})"

    def _fires(self, view: ConversationView) -> str | None:
        for message in view.new:
            for call in message.tool_calls:
                if self.name is None or call.name == self.name:
                    return f"{self!r}: {_who(message)} called {call.name!r}"
        return None


class External(TerminationCondition):
    """Ends conversations from outside: ``set()`` (e.g. a Stop button) stops them.

    ``set()`` stops every conversation using this condition that started before the call,
    at its next check (a turn in progress finishes first); conversations started later run
    normally. ``set(run_id=...)`` stops only that run. Safe to call from another thread.
    The flag lives in this process only: a run resumed elsewhere is not stopped by it.
    """

    def __init__(self) -> None:
        self._set_at: float | None = None
        self._runs: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return "External()"

    def set(self, run_id: str | None = None) -> None:
        """Stop the running conversations (or only ``run_id``'s) at their next check."""
        if run_id is None:
            self._set_at = time.time()
        else:
            self._runs = self._runs | {run_id}

    def reset(self) -> None:
        """Forget earlier ``set()`` calls."""
        self._set_at = None
        self._runs = frozenset()

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        started = view.now if state is None else float(state)
        if view.run_id in self._runs:
            return f"{self!r}: stopped from outside (run {view.run_id!r})", started
        if self._set_at is not None and self._set_at >= started:
            return f"{self!r}: stopped from outside", started
        return None, started


class FunctionCondition(TerminationCondition):
    """A user function of the conversation: truthy ends it (a ``str`` result is the reason).

    The function may be sync or async; it sees the whole conversation, the task first.
    """

    def __init__(self, fn: ConditionFunction) -> None:
        if not callable(fn):
            raise TypeError(f"a termination function must be callable, got {fn!r}")
        self.fn = fn

    def __repr__(self) -> str:
        return f"FunctionCondition({getattr(self.fn, '__name__', self.fn)!r})"

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        result: Any = self.fn(list(view.messages))
        if inspect.isawaitable(result):
            result = await result
        if not result:
            return None, state
        if isinstance(result, str):
            return result, state
        return f"{getattr(self.fn, '__name__', 'function')} returned {result!r}", state


class AnyOf(TerminationCondition):
    """Ends when any part holds. Every part is checked each time, so all keep counting."""

    def __init__(self, parts: Iterable[TerminationCondition]) -> None:
        self.parts: tuple[TerminationCondition, ...] = tuple(
            q for p in parts for q in (p.parts if isinstance(p, AnyOf) else (p,))
        )

    def __repr__(self) -> str:
        return " | ".join(repr(p) for p in self.parts)

    def initial_state(self) -> Any:
        return [p.initial_state() for p in self.parts]

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        states = list(state) if state is not None else self.initial_state()
        reasons = []
        for i, part in enumerate(self.parts):
            reason, states[i] = await part.check(view, states[i])
            if reason is not None:
                reasons.append(reason)
        return ("; ".join(reasons) if reasons else None), states


class AllOf(TerminationCondition):
    """Ends once every part has held, not necessarily at the same check.

    A part that held is remembered (and no longer checked) for the rest of the conversation.
    """

    def __init__(self, parts: Iterable[TerminationCondition]) -> None:
        self.parts: tuple[TerminationCondition, ...] = tuple(
            q for p in parts for q in (p.parts if isinstance(p, AllOf) else (p,))
        )

    def __repr__(self) -> str:
        return " & ".join(f"({p!r})" if isinstance(p, AnyOf) else repr(p) for p in self.parts)

    def initial_state(self) -> Any:
        return {"held": [None] * len(self.parts), "states": [p.initial_state() for p in self.parts]}

    async def check(self, view: ConversationView, state: Any) -> Verdict:
        current = state if state is not None else self.initial_state()
        held = list(current["held"])
        states = list(current["states"])
        for i, part in enumerate(self.parts):
            if held[i] is None:
                held[i], states[i] = await part.check(view, states[i])
        new_state = {"held": held, "states": states}
        if all(h is not None for h in held):
            return " and ".join(held), new_state
        return None, new_state


def _names(names: Iterable[str], what: str) -> list[str]:
    found = list(names)
    if not found or not all(isinstance(n, str) and n for n in found):
        raise ValueError(f"{what} needs participant names, got {found!r}")
    return found
