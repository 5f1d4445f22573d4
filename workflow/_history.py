"""Time travel (forking a run with edited run-wide state) and breakpoints.

``resume(run_id, checkpoint_id=..., state_updates={...})`` starts a new run (its own id, its
first checkpoint's parent the one forked from) whose run-wide state has those keys replaced.
The values go through the checkpoint serializer exactly like a handler's ``set_state``: a
value that cannot be checkpointed is refused before anything is stored, naming the key, and
the fork holds a decoded copy, so the caller's object is never shared with the run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._errors import WorkflowError

if TYPE_CHECKING:  # the serializer (and what it imports) loads only when a fork needs it
    from ._runstate import RunState
    from ._serde import TypeRegistry

__all__ = (
    "Breakpoint",
    "BreakpointError",
    "StateUpdateError",
    "apply_state_updates",
    "breakpoint_request",
    "check_pause_before",
    "check_state_updates",
)


class StateUpdateError(WorkflowError, TypeError):
    """A ``state_updates`` entry is not a string key or its value cannot be checkpointed."""


def check_state_updates(
    updates: Mapping[str, Any], registry: TypeRegistry | None
) -> dict[str, Any]:
    """Validate every entry first (a bad one changes nothing); return the values to apply.

    With a ``registry`` (the workflow has a store) each value is encoded and decoded as a
    checkpoint would; without one the values are kept as given (nothing is serialized then).
    """
    if not isinstance(updates, Mapping):
        raise StateUpdateError(
            f"state_updates must be a mapping {{key: value}}, got {type(updates).__name__}"
        )
    from ._serde import SerializationError, decode, encode

    checked: dict[str, Any] = {}
    for key, value in updates.items():
        if not isinstance(key, str):
            raise StateUpdateError(
                f"state_updates key {key!r} is a {type(key).__name__}; state keys are strings"
            )
        if registry is None:
            checked[key] = value
            continue
        try:
            checked[key] = decode(encode(value, registry, path=f"state[{key!r}]"), registry)
        except SerializationError as exc:
            raise StateUpdateError(
                f"state_updates[{key!r}] cannot be checkpointed: {exc}; pass a JSON value, a "
                "dataclass or pydantic model the workflow declares (types=...)"
            ) from None
    return checked


def apply_state_updates(state: RunState, checked: Mapping[str, Any]) -> None:
    """Replace those run-wide keys (a key the workflow never wrote is simply added)."""
    state.state.update(checked)


# -- breakpoints ------------------------------------------------------------------------------
#
# ``pause_before=[...]`` (on run, resume and their streams) stops the run before a superstep in
# which a named executor would run: nothing of that superstep runs, the run ends
# ``AWAITING_INPUT`` with a ``BreakpointHit`` event and a pending request whose payload is a
# ``Breakpoint``. The request is stored like any other (so it survives a restart); while it is
# pending the executor stays held, whether or not the resuming call passes ``pause_before``.
# Answering it with ``None`` releases the executor for its next superstep.


class BreakpointError(WorkflowError, ValueError):
    """``pause_before`` names an executor the workflow does not have."""


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """The payload of a breakpoint request: the run stopped before ``executor_id`` ran."""

    executor_id: str
    superstep: int


def check_pause_before(
    pause_before: Iterable[str] | None, executors: Collection[str], workflow: str
) -> frozenset[str]:
    """The executor ids to pause before; an unknown id is refused, naming the known ones."""
    if pause_before is None:
        return frozenset()
    if isinstance(pause_before, str):
        pause_before = (pause_before,)  # a single id, not its characters
    ids = frozenset(pause_before)
    unknown = sorted(i for i in ids if i not in executors)
    if unknown:
        raise BreakpointError(
            f"pause_before names {', '.join(map(repr, unknown))}, not an executor of workflow "
            f"{workflow!r}; use one of {', '.join(map(repr, sorted(executors)))}"
        )
    return ids


def breakpoint_request(executor_id: str, superstep: int) -> tuple[str, Breakpoint]:
    """The (deterministic) request id and payload of a breakpoint before ``superstep``."""
    return f"breakpoint:{executor_id}:{superstep}", Breakpoint(executor_id, superstep)
