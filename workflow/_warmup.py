"""Load anyio's asyncio backend with the engine, not in the middle of a process's first run.

anyio imports a backend the first time a task group or stream needs it; for asyncio that is
~25 ms of imports, paid inside the first superstep that runs executors concurrently (a
first fan-out of 1,000 executors: ~31 ms instead of ~9 ms). Importing it here moves that
cost to ``import workflow``. Nothing depends on it: if a future anyio moves the module, the
backend simply loads on first use again.
"""

from __future__ import annotations

try:
    import anyio._backends._asyncio  # noqa: F401
except ImportError:  # pragma: no cover - a future anyio may move it; it then loads lazily
    pass
