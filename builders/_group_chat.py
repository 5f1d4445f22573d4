"""``GroupChatBuilder``: a manager picks who speaks next, round after round.

The graph is a star: the manager sends the conversation to the chosen participant, whose
reply comes back to the manager, which checks the termination rules and picks again. The
manager keeps the conversation, the turn count and the termination state in its own
checkpointed executor state, so a group chat resumes (or forks) like any workflow.

Selectors:

* ``"round_robin"``: participants in the order given;
* a ``ChatClient``: a model reads the members' names and descriptions and the recent
  conversation and names the next speaker; an answer naming no member (or a member not
  allowed to speak now) is fed back and asked again, up to ``selector_attempts`` times;
* a function of the conversation ``(list[ChatMessage]) -> name`` (sync or async).

``candidate_filter(conversation) -> names`` narrows who may speak next, for every selector.
A selector that names no candidate fails the run with ``SpeakerSelectionError`` (as the
``__cause__`` of the run's ``ExecutorFailedError``).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from executors import ChatClient, ChatMessage, Usage
from workflow import (
    Executor,
    GraphValidationError,
    Workflow,
    WorkflowContext,
    WorkflowError,
    handler,
    model_call_span,
)
from workflow.events import WorkflowEvent

from ._participant import Conversation, TurnPolicy, end_reason, finish_conversation, plain
from ._participant_node import Participant, participant_nodes
from ._termination import TerminationCondition, as_condition
from ._workflow_builder import WorkflowBuilder

__all__ = (
    "GroupChatBuilder",
    "GroupChatManager",
    "LLMSelector",
    "Selection",
    "SpeakerSelected",
    "SpeakerSelectionError",
    "SpeakerSelector",
)

SelectorFunction = Callable[[list[ChatMessage]], Any]
CandidateFilter = Callable[[list[ChatMessage]], Any]


class SpeakerSelectionError(WorkflowError):
    """The selector named no participant that may speak now.

    Attributes:
        answers: What the selector answered, every attempt.
        candidates: The names it could have chosen.
    """

    def __init__(self, message: str, *, answers: list[str], candidates: list[str]) -> None:
        super().__init__(message)
        self.answers = answers
        self.candidates = candidates


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakerSelected(WorkflowEvent):
    """The manager chose ``speaker`` for turn ``turn`` (1-based)."""

    executor_id: str
    speaker: str
    turn: int


@dataclass(frozen=True, slots=True)
class Selection:
    """What a selector decides from.

    Attributes:
        conversation: The whole conversation, the task first.
        candidates: Who may speak next, in participant order.
        participants: Every participant's name and description, in order.
        last_speaker: Who spoke last (``None`` before the first turn).
    """

    conversation: list[ChatMessage]
    candidates: list[str]
    participants: dict[str, str]
    last_speaker: str | None


class SpeakerSelector(Protocol):
    """Chooses the next speaker; returns the name and the tokens spent choosing."""

    async def select(self, selection: Selection) -> tuple[str, Usage]:
        """The next speaker's name (one of ``selection.candidates``)."""
        ...


class _RoundRobin:
    """The participants in order, skipping any the candidate filter leaves out."""

    async def select(self, selection: Selection) -> tuple[str, Usage]:
        order = list(selection.participants)
        start = 0 if selection.last_speaker is None else order.index(selection.last_speaker) + 1
        for offset in range(len(order)):
            name = order[(start + offset) % len(order)]
            if name in selection.candidates:
                return name, Usage()
        raise SpeakerSelectionError(  # unreachable: candidates is never empty
            "round robin found no candidate", answers=[], candidates=selection.candidates
        )


class _FunctionSelector:
    """A user function of the conversation names the next speaker."""

    def __init__(self, fn: SelectorFunction) -> None:
        self.fn = fn

    async def select(self, selection: Selection) -> tuple[str, Usage]:
        answer = self.fn(list(selection.conversation))
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, str) or answer not in selection.candidates:
            where = getattr(self.fn, "__name__", repr(self.fn))
            raise SpeakerSelectionError(
                f"selector function {where!r} returned {answer!r}, which is not one of the "
                f"participants that may speak now ({selection.candidates!r}); return one of "
                "those names",
                answers=[repr(answer)],
                candidates=list(selection.candidates),
            )
        return answer, Usage()


_SYSTEM = """You moderate a conversation between the members of a team, and your only job is \
to choose who speaks next.

The team:
{roster}

Read the conversation and choose the member best placed to move the task forward now. \
Reply with a JSON object {{"next_speaker": "<name>"}} naming exactly one member from this \
list: {names}."""

_ASK = """The conversation so far (oldest first):

{history}

Who speaks next? Reply with one of: {names}.{repeat}"""

_RETRY = """{answer!r} does not name exactly one of the members who may speak now. Reply with \
a JSON object {{"next_speaker": "<name>"}} naming exactly one of: {names}."""


def speaker_format(candidates: Sequence[str]) -> dict[str, Any]:
    """The selector's ``response_format``: a strict JSON schema whose one answer is a name.

    A server that constrains generation to it can only name a candidate; one that refuses it
    gets a simpler format from the client, and a bare name in plain text is accepted too.
    """
    schema = {
        "type": "object",
        "properties": {"next_speaker": {"type": "string", "enum": list(candidates)}},
        "required": ["next_speaker"],
        "additionalProperties": False,
    }
    return {
        "type": "json_schema",
        "json_schema": {"name": "next_speaker", "schema": schema, "strict": True},
    }


def _named(answer: str) -> str:
    """The name in a ``{"next_speaker": ...}`` answer, else the answer itself."""
    try:
        data = json.loads(_FENCE.sub("", answer).strip())
    except ValueError:
        return answer
    if isinstance(data, dict) and isinstance(data.get("next_speaker"), str):
        return str(data["next_speaker"])
    return answer


class LLMSelector:
    """A model names the next speaker from the roster and the recent conversation.

    Args:
        client: Any ``ChatClient``.
        attempts: Model calls per selection before giving up with ``SpeakerSelectionError``.
        allow_repeated_speaker: Whether the last speaker may be chosen again.
        history_window: How many of the latest messages the model is shown.
        max_tokens: Output token limit per selection request (a name is a few tokens; the
            limit stops a small model from rambling on).
    """

    def __init__(
        self,
        client: ChatClient,
        *,
        attempts: int = 3,
        allow_repeated_speaker: bool = True,
        history_window: int = 20,
        max_tokens: int | None = 60,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"selector attempts must be >= 1, got {attempts!r}")
        if history_window < 1:
            raise ValueError(f"history_window must be >= 1, got {history_window!r}")
        self.client = client
        self.attempts = attempts
        self.allow_repeated_speaker = allow_repeated_speaker
        self.history_window = history_window
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"selector max_tokens must be >= 1 or None, got {max_tokens!r}")
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"LLMSelector({self.client!r})"

    async def select(self, selection: Selection) -> tuple[str, Usage]:
        candidates = list(selection.candidates)
        last = selection.last_speaker
        if not self.allow_repeated_speaker and last in candidates and len(candidates) > 1:
            candidates.remove(last)
        names = ", ".join(candidates)
        roster = "\n".join(
            f"- {name}: {description or '(no description)'}"
            for name, description in selection.participants.items()
        )
        shown = [m for m in selection.conversation if m.text][-self.history_window :]
        history = "\n\n".join(f"[{m.author or m.role}]: {m.text}" for m in shown) or "(empty)"
        repeat = (
            f" {last} has just spoken and may not speak twice in a row."
            if last is not None and last not in candidates
            else ""
        )
        prompt = [
            ChatMessage("system", _SYSTEM.format(roster=roster, names=names)),
            ChatMessage("user", _ASK.format(history=history, names=names, repeat=repeat)),
        ]
        usage = Usage()
        answers: list[str] = []
        fmt = speaker_format(candidates)
        for _ in range(self.attempts):
            # a GenAI span per selection request, as agents have (free when nothing is traced)
            with model_call_span(_model_name(self.client)) as span:
                response = await self.client.get_response(
                    prompt, response_format=fmt, max_tokens=self.max_tokens
                )
                span.record_tokens(response.usage.input_tokens, response.usage.output_tokens)
            usage = usage + response.usage
            answers.append(response.text)
            chosen = _match(_named(response.text), candidates)
            if chosen is not None:
                return chosen, usage
            prompt = [
                *prompt,
                ChatMessage("assistant", response.text),
                ChatMessage("user", _RETRY.format(answer=response.text, names=names)),
            ]
        raise SpeakerSelectionError(
            f"the speaker-selection model answered {answers!r} in {self.attempts} attempt(s), "
            f"never naming exactly one of {candidates!r}; give the participants clearer "
            "names and descriptions, or raise selector_attempts",
            answers=answers,
            candidates=candidates,
        )


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*$|^\s*```\s*$", re.MULTILINE)


def _match(answer: str, candidates: list[str]) -> str | None:
    """The one candidate an answer names: exactly, ignoring case and quotes, or mentioned once."""
    cleaned = answer.strip().strip("\"'`*.:").strip()
    for name in candidates:
        if cleaned == name:
            return name
    folded = [n for n in candidates if n.lower() == cleaned.lower()]
    if len(folded) == 1:
        return folded[0]
    mentioned = [
        n for n in candidates if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", answer, re.I)
    ]
    return mentioned[0] if len(mentioned) == 1 else None


# --------------------------------------------------------------------------- the manager


class _BackToManager(TurnPolicy):
    """Group chat: every reply goes back to the manager."""

    output_types: tuple[type, ...] = (Conversation,)

    async def start(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> Conversation | None:
        raise TypeError(
            f"participant {node.name!r} got the task directly; in a group chat the manager "
            "starts the conversation"
        )

    async def route(
        self, node: Participant, conversation: Conversation, ctx: WorkflowContext[Any]
    ) -> None:
        await ctx.send_message(conversation)


class GroupChatManager(Executor):
    """Keeps the conversation, checks the termination rules and picks each speaker.

    Executor state (per run): ``conversation`` (the messages), ``turns``, ``last_speaker``,
    ``termination`` (the condition's state) and ``selector_usage`` (tokens spent choosing
    the speaker, counted with the next turn).
    """

    kind: ClassVar[str] = "orchestrator"
    warm: ClassVar[bool] = True  # holds agents/clients: one long-lived copy on a cluster

    def __init__(
        self,
        id: str,
        participants: dict[str, str],
        selector: SpeakerSelector,
        *,
        termination: TerminationCondition | None = None,
        max_rounds: int | None = None,
        candidate_filter: CandidateFilter | None = None,
    ) -> None:
        super().__init__(id)
        self.participants = dict(participants)
        self.selector = selector
        self.termination = termination
        self.max_rounds = max_rounds
        self.candidate_filter = candidate_filter

    def checkpoint_types(self) -> tuple[type, ...]:
        return (Conversation, ChatMessage, Usage)

    @handler
    async def on_message(
        self,
        message: Conversation | str | ChatMessage | list[ChatMessage],
        ctx: WorkflowContext[Conversation],
    ) -> None:
        """The task starts a conversation; a participant's reply continues it."""
        if isinstance(message, Conversation) and ctx.source in self.participants:
            history = _load(await ctx.get_executor_state("conversation"))
            spent = Usage.model_validate(await ctx.get_executor_state("selector_usage", {}))
            current = message.model_copy(
                update={
                    "messages": [*history, *message.new],
                    "usage": message.usage + spent,
                    "turns": await ctx.get_executor_state("turns", 0) + 1,
                    "termination": await ctx.get_executor_state("termination"),
                }
            )
        else:
            task = message.messages if isinstance(message, Conversation) else message
            current = Conversation.start(task, source=ctx.source)
        await self._next_turn(current, ctx)

    async def _next_turn(self, conversation: Conversation, ctx: WorkflowContext[Any]) -> None:
        reason, conversation = await end_reason(self.termination, conversation, ctx)
        turns = conversation.turns
        if reason is None and self.max_rounds is not None and turns >= self.max_rounds:
            reason = f"max_rounds={self.max_rounds}: {turns} speaker turns taken"
        messages = conversation.messages
        await ctx.set_executor_state("conversation", plain(messages))
        await ctx.set_executor_state("turns", turns)
        await ctx.set_executor_state("termination", conversation.termination)
        if reason is not None:
            await finish_conversation(ctx, messages, turns, reason)
            return
        last = conversation.speaker
        selection = Selection(
            conversation=list(messages),
            candidates=await self._candidates(messages),
            participants=self.participants,
            last_speaker=last,
        )
        speaker, spent = await self.selector.select(selection)
        if speaker not in selection.candidates:  # a custom selector must be held to it too
            raise SpeakerSelectionError(
                f"selector {self.selector!r} chose {speaker!r}, which is not one of the "
                f"participants that may speak now ({selection.candidates!r})",
                answers=[speaker],
                candidates=selection.candidates,
            )
        await ctx.set_executor_state("selector_usage", plain(spent))
        await ctx.add_event(
            SpeakerSelected(
                run_id=ctx.run_id,
                superstep=ctx.superstep,
                executor_id=ctx.executor_id,
                speaker=speaker,
                turn=turns + 1,
            )
        )
        outgoing = Conversation(messages=list(messages), turns=turns, speaker=last)
        await ctx.send_message(outgoing, target=speaker)

    async def _candidates(self, messages: list[ChatMessage]) -> list[str]:
        everyone = list(self.participants)
        if self.candidate_filter is None:
            return everyone
        chosen: Any = self.candidate_filter(list(messages))
        if inspect.isawaitable(chosen):
            chosen = await chosen
        picked = [chosen] if isinstance(chosen, str) else list(chosen or ())
        unknown = [n for n in picked if n not in self.participants]
        if unknown or not picked:
            raise SpeakerSelectionError(
                f"candidate_filter returned {picked!r}: "
                + (f"{unknown!r} are not participants" if unknown else "no candidates")
                + f"; return a non-empty list of participant names from {everyone!r}",
                answers=[],
                candidates=everyone,
            )
        return [n for n in everyone if n in picked]


def _load(data: list[dict[str, Any]] | None) -> list[ChatMessage]:
    return [ChatMessage.model_validate(d) for d in data or ()]


# --------------------------------------------------------------------------- the builder


class GroupChatBuilder:
    """A manager-led conversation among ``participants``; see the module docs.

    The run's input is the task (a ``str``, a ``ChatMessage`` or a list of them); the output
    is the conversation as ``list[ChatMessage]``, each message authored by its speaker. With
    neither ``termination`` nor ``max_rounds`` the chat goes on until a participant ends it
    (a person typing ``exit``) or the run reaches ``max_supersteps`` (status
    ``MAX_SUPERSTEPS``).

    Args:
        participants: Agents, executors, workflows or functions; names must be unique.
        selector: ``"round_robin"``, a ``ChatClient``, a function of the conversation
            returning a name, or any ``SpeakerSelector``.
        termination: A condition (``MaxMessages(10) | TextMention("DONE")``) or a function
            of the conversation.
        max_rounds: Most speaker turns.
        allow_repeated_speaker: Whether the model selector may choose the last speaker again.
        candidate_filter: ``fn(conversation) -> names`` that may speak next.
        selector_attempts: Model calls per selection before ``SpeakerSelectionError``.
        manager_name: The manager's node id.
        name: The workflow's name.
        checkpoint_store: Where runs are checkpointed.
        max_supersteps: The run's superstep limit (each turn takes two).
    """

    def __init__(
        self,
        participants: Sequence[Any],
        selector: Literal["round_robin"] | ChatClient | SelectorFunction | SpeakerSelector = (
            "round_robin"
        ),
        termination: Any = None,
        max_rounds: int | None = None,
        *,
        allow_repeated_speaker: bool = True,
        candidate_filter: CandidateFilter | None = None,
        selector_attempts: int = 3,
        manager_name: str = "manager",
        name: str = "group_chat",
        checkpoint_store: Any = None,
        max_supersteps: int = 1000,
    ) -> None:
        if max_rounds is not None and (not isinstance(max_rounds, int) or max_rounds < 1):
            raise ValueError(f"max_rounds must be a positive int or None, got {max_rounds!r}")
        self.participants = list(participants)
        self.selector = selector
        self.termination = as_condition(termination)
        self.max_rounds = max_rounds
        self.allow_repeated_speaker = allow_repeated_speaker
        self.candidate_filter = candidate_filter
        self.selector_attempts = selector_attempts
        self.manager_name = manager_name
        self.name = name
        self.checkpoint_store = checkpoint_store
        self.max_supersteps = max_supersteps

    def _selector(self) -> SpeakerSelector:
        chosen = self.selector
        if chosen == "round_robin":
            return _RoundRobin()
        if isinstance(chosen, str):
            raise ValueError(
                f"unknown selector {chosen!r}; use 'round_robin', a ChatClient or a function "
                "of the conversation returning a participant name"
            )
        if callable(getattr(chosen, "select", None)):
            return chosen  # type: ignore[return-value]
        if isinstance(chosen, ChatClient):
            return LLMSelector(
                chosen,
                attempts=self.selector_attempts,
                allow_repeated_speaker=self.allow_repeated_speaker,
            )
        if callable(chosen):
            return _FunctionSelector(chosen)
        raise TypeError(
            f"selector {chosen!r} is not 'round_robin', a ChatClient, a function or a "
            "SpeakerSelector"
        )

    def build(self) -> Workflow:
        """A star around the manager; raises ``GraphValidationError``."""
        inner = participant_nodes(self.participants, pattern="GroupChatBuilder")
        if self.manager_name in inner:
            raise GraphValidationError(
                f"GroupChatBuilder: a participant is named {self.manager_name!r}, like the "
                "manager; rename it or pass manager_name=..."
            )
        policy = _BackToManager()
        nodes = [Participant(executor, name, policy) for name, executor in inner.items()]
        manager = GroupChatManager(
            self.manager_name,
            {name: _description(executor) for name, executor in inner.items()},
            self._selector(),
            termination=self.termination,
            max_rounds=self.max_rounds,
            candidate_filter=self.candidate_filter,
        )
        builder = WorkflowBuilder(
            start=manager,
            name=self.name,
            checkpoint_store=self.checkpoint_store,
            max_supersteps=self.max_supersteps,
        )
        for node in nodes:
            builder.add_edge(manager, node).add_edge(node, manager)
        return builder.build()


def _description(executor: Executor) -> str:
    agent = getattr(executor, "agent", None)
    for source in (agent, executor, getattr(executor, "workflow", None)):
        text = getattr(source, "description", None)
        if isinstance(text, str) and text:
            return text
    return ""


def _model_name(client: Any) -> str:
    """The model a client asks (for its span's name), else the client's class name."""
    return str(getattr(client, "model", None) or type(client).__name__)
