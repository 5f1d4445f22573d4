"""Ray as a backend: invocations run on a Ray cluster, durability stays with the store.

Imported only when ``workflow.RayBackend`` is first used; ``ray`` itself is imported when a
run first opens the backend (``pip install ledgerflow[ray]``).
"""

from __future__ import annotations

from ._backend import RayBackend

__all__ = ("RayBackend",)
