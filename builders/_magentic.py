"""``MagenticBuilder``: a manager-led team as an ordinary ``Workflow``.

The graph is a star: the orchestrator (the start node) has an edge to every participant and
every participant one back, in team order, so run, stream, checkpoint, resume and diagrams
work as for any workflow. The loop itself is documented in ``executors._magentic``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from executors import MagenticManager, MagenticOrchestrator
from workflow import Executor, GraphValidationError, Workflow

from ._workflow_builder import WorkflowBuilder

__all__ = ("MagenticBuilder",)

ORCHESTRATOR_ID = "orchestrator"


class MagenticBuilder:
    """Builds a Magentic team: an orchestrator and its participants.

    Args:
        participants: Agents (each becomes a plain ``AgentExecutor``) or any ``Executor``
            (an ``AgentExecutor``, a ``CodeExecutor``, a ``HumanExecutor``...), used as it
            is. A participant's name, used in ledgers, is its node id (an agent's name by
            default). A team reset reaches every participant with a handler for
            ``ConversationReset`` (agents and people have one).
        manager: The ``MagenticManager`` making every decision.
        max_round_count: Rounds before the run stops with reason ``"max_rounds"``.
        max_stall_count: Stall counter value tolerated; one more triggers a reset.
        max_reset_count: Resets allowed; one more stops the run (``"max_resets"``).
        plan_review: Ask a person to approve each plan (``PlanReviewRequest``).
        human_guidance_on_stall: Ask a person for guidance before each replan after a stall.
        checkpoint_store: Where checkpoints go (as for ``WorkflowBuilder``).
        name: The workflow's name (default ``"magentic"``).
        token_budget: Stop (reason ``"budget"``) once this many tokens were spent.
        time_budget: Stop (reason ``"budget"``) once this many seconds passed.
        descriptions: Participant name to description, for executors that have none (the
            manager reads descriptions to choose speakers).
        **options: Further ``WorkflowBuilder`` options (``max_concurrency``, ``observers``...).

    Raises:
        ValueError: A limit or budget out of range (at once).
        TypeError: ``manager`` is not a ``MagenticManager``.
    """

    def __init__(
        self,
        participants: Sequence[Any],
        manager: MagenticManager,
        *,
        max_round_count: int = 20,
        max_stall_count: int = 3,
        max_reset_count: int = 2,
        plan_review: bool = False,
        human_guidance_on_stall: bool = False,
        checkpoint_store: Any = None,
        name: str | None = None,
        token_budget: int | None = None,
        time_budget: float | None = None,
        descriptions: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        _at_least("max_round_count", max_round_count, 1)
        _at_least("max_stall_count", max_stall_count, 0)
        _at_least("max_reset_count", max_reset_count, 0)
        if token_budget is not None:
            _at_least("token_budget", token_budget, 1)
        if time_budget is not None and (
            isinstance(time_budget, bool)
            or not isinstance(time_budget, int | float)
            or not math.isfinite(time_budget)
            or time_budget <= 0
        ):
            raise ValueError(
                f"time_budget must be a positive number of seconds, got {time_budget!r}"
            )
        if not isinstance(manager, MagenticManager):
            raise TypeError(
                "manager must be a MagenticManager (e.g. StandardMagenticManager(chat_client) or "
                f"your subclass), got {manager!r}"
            )
        self.participants = list(participants)
        self.manager = manager
        self.name = name if name is not None else "magentic"
        self.max_round_count = max_round_count
        self.max_stall_count = max_stall_count
        self.max_reset_count = max_reset_count
        self.plan_review = plan_review
        self.human_guidance_on_stall = human_guidance_on_stall
        self.token_budget = token_budget
        self.time_budget = time_budget
        self.descriptions = dict(descriptions or {})
        self.checkpoint_store = checkpoint_store
        self.options = options

    def build(self) -> Workflow:
        """Wire the team and validate it; raises ``GraphValidationError`` naming each problem."""
        problems: list[str] = []
        if not self.participants:
            problems.append(
                "a Magentic team needs at least one participant; pass participants=[...]"
            )
        nodes: list[Executor] = []
        for item in self.participants:
            try:
                nodes.append(MagenticOrchestrator.participant_node(item))
            except TypeError as exc:
                problems.append(str(exc))
        seen: dict[str, Executor] = {}
        for node in nodes:
            if node.id == ORCHESTRATOR_ID:
                problems.append(
                    f"participant {node!r} is named {ORCHESTRATOR_ID!r}, the orchestrator's id; "
                    "rename it"
                )
            elif node.id in seen:
                problems.append(
                    f"two participants are named {node.id!r} ({seen[node.id]!r} and {node!r}); "
                    "participant names must be unique, so rename one"
                )
            seen.setdefault(node.id, node)
        for unknown in [n for n in self.descriptions if n not in seen]:
            problems.append(
                f"descriptions names {unknown!r}, which is not a participant; participants: "
                f"{', '.join(repr(n) for n in seen) or 'none'}"
            )
        if problems:
            raise GraphValidationError(
                f"Magentic workflow {self.name!r} is invalid:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        try:
            orchestrator = MagenticOrchestrator(
                self.manager,
                nodes,
                id=ORCHESTRATOR_ID,
                max_round_count=self.max_round_count,
                max_stall_count=self.max_stall_count,
                max_reset_count=self.max_reset_count,
                plan_review=self.plan_review,
                human_guidance_on_stall=self.human_guidance_on_stall,
                token_budget=self.token_budget,
                time_budget=self.time_budget,
                descriptions=self.descriptions,
            )
        except TypeError as exc:
            raise GraphValidationError(f"Magentic workflow {self.name!r}: {exc}") from None
        # Each round takes two supersteps (orchestrator, then participants); leave room for
        # resets and reviews so the run's own limits, not the scheduler's, end it.
        steps = 4 * (self.max_round_count + self.max_reset_count) + 10
        options = {"max_supersteps": max(1000, steps), **self.options}
        builder = WorkflowBuilder(
            start=orchestrator,
            name=self.name,
            checkpoint_store=self.checkpoint_store,
            **options,
        )
        for node in nodes:
            builder.add_edge(orchestrator, node)
            builder.add_edge(node, orchestrator)
        return builder.build()


def _at_least(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
