"""Runs kept in memory so a workflow without a checkpoint store can still resume them.

Without a store the only copy of a stopped run is in this process, and a long-lived process
(a server) runs without end, so what is kept is bounded:

- A run **waiting for input** (``AWAITING_INPUT``) is kept until it is answered, up to
  ``max_paused_runs`` of them (default 10,000, about 1.2 KB each for a small run). Past that,
  the run that paused longest ago is dropped; resuming it raises ``CheckpointError`` saying it
  was evicted and how to keep more (a bigger cap, or a ``checkpoint_store``).
- A **failed, cancelled or out-of-supersteps** run is kept for a retry (``resume`` runs only
  what had not finished), but only the ``max_failed_runs`` most recent ones (default 100):
  an error holds its traceback, and a server that keeps failing must not grow. Older ones are
  evicted the same way.
- A **completed** run is never kept: resuming it without a store has nothing to return.

A store keeps everything (on disk, or in its own memory for ``InMemoryCheckpointStore``) and
this cache is not used at all. The ids of the 1,000 most recently evicted runs are remembered,
only to make the error clear (an older one is reported as unknown).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from ._errors import CheckpointError
from ._types import RunStatus

if TYPE_CHECKING:
    from ._runner import RunState

__all__ = ("DEFAULT_MAX_FAILED_RUNS", "DEFAULT_MAX_PAUSED_RUNS", "PausedRuns")

DEFAULT_MAX_PAUSED_RUNS = 10_000
DEFAULT_MAX_FAILED_RUNS = 100
EVICTED_IDS_KEPT = 1_000  # recently evicted ids, remembered only to make the error clear

_RETRYABLE = (RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.MAX_SUPERSTEPS)


class PausedRuns:
    """Bounded, least recently stopped first out; see the module docstring for the policy."""

    __slots__ = ("_evicted", "_failed", "_waiting", "max_failed", "max_waiting")

    def __init__(
        self,
        max_waiting: int = DEFAULT_MAX_PAUSED_RUNS,
        max_failed: int = DEFAULT_MAX_FAILED_RUNS,
    ) -> None:
        for name, value in (("max_paused_runs", max_waiting), ("max_failed_runs", max_failed)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        self.max_waiting = max_waiting
        self.max_failed = max_failed
        self._waiting: OrderedDict[str, RunState] = OrderedDict()
        self._failed: OrderedDict[str, RunState] = OrderedDict()
        self._evicted: OrderedDict[str, str] = OrderedDict()  # run id -> why it was dropped

    def keep(self, state: RunState) -> None:
        """Remember a run that stopped short of completion (anything else is not kept)."""
        run_id = state.run_id
        self._waiting.pop(run_id, None)
        self._failed.pop(run_id, None)
        self._evicted.pop(run_id, None)
        if state.status is RunStatus.AWAITING_INPUT:
            self._put(self._waiting, state, self.max_waiting, "max_paused_runs")
        elif state.status in _RETRYABLE:
            self._put(self._failed, state, self.max_failed, "max_failed_runs")

    def take(self, run_id: str) -> RunState:
        """Remove and return a kept run, or say why there is none."""
        state = self._waiting.pop(run_id, None) or self._failed.pop(run_id, None)
        if state is not None:
            return state
        why = self._evicted.get(run_id)
        if why is not None:
            raise CheckpointError(
                f"run {run_id!r} was evicted from memory ({why}); raise the cap on the "
                "builder, or build with a checkpoint_store to keep every run"
            )
        raise CheckpointError(
            f"unknown run {run_id!r}: without a checkpoint_store only runs paused in this "
            "process can be resumed (and not while another resume of it is running)"
        )

    def _put(self, kept: OrderedDict[str, RunState], state: RunState, cap: int, name: str) -> None:
        kept[state.run_id] = state
        while len(kept) > cap:
            old_id, old = kept.popitem(last=False)
            self._remember(old_id, f"{old.status.value}; only the {name}={cap} latest are kept")

    def _remember(self, run_id: str, why: str) -> None:
        self._evicted[run_id] = why
        while len(self._evicted) > EVICTED_IDS_KEPT:
            self._evicted.popitem(last=False)

    # -- read access (tests, benchmarks) -----------------------------------------------------
    def __contains__(self, run_id: object) -> bool:
        return run_id in self._waiting or run_id in self._failed

    def __getitem__(self, run_id: str) -> RunState:
        found = self._waiting.get(run_id) or self._failed.get(run_id)
        if found is None:
            raise KeyError(run_id)
        return found

    def __len__(self) -> int:
        return len(self._waiting) + len(self._failed)
