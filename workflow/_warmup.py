"""Load the running event loop's anyio backend with a workflow's definition, not in its first run.

anyio imports a backend module the first time something needs it: for asyncio that is ~20 ms
of imports (``anyio``'s asyncio backend and what it pulls in), which a process would otherwise
pay inside its first superstep that runs executors concurrently (its first task group): a
fresh process's first fan-out of 1,000 executors took 30-36 ms instead of 9.5-10 ms. A
workflow built inside a running loop (a server, a benchmark, a test) loads that loop's
backend as it is built, through anyio's public API, so its runs start warm; one built before
any loop runs pays the import in its first concurrent superstep instead.
"""

from __future__ import annotations

import anyio


def load_running_backend() -> None:
    """Make anyio load the backend of the loop running this code, if any (cheap once loaded).

    ``anyio.get_cancelled_exc_class`` is the lightest public call that needs the backend
    (anyio resolves and imports it to answer); outside a loop it raises a ``RuntimeError``
    (``NoEventLoopError``, sniffio's ``AsyncLibraryNotFoundError`` on older anyio), and the
    backend then loads on first use as before.
    """
    try:
        anyio.get_cancelled_exc_class()
    except RuntimeError:
        pass
