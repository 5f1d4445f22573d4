"""Shared fixtures and switches: the test backend, the ``local_only`` marker, required services.

async tests run on asyncio here; tests/workflow runs the core suite on trio too."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """``LEDGERFLOW_TEST_BACKEND=roundtrip|threads`` runs every workflow on that backend.

    The backends (``workflow/_backend_testing.py``) prove the dispatch seam: nothing but
    plain data crosses it, and nothing live (an ``anyio.Event``, a connection) is shared
    with a handler on another loop. ``make test`` runs the core, agents, teams, durable and
    diagram suites on both (``SEAM_ARGS`` in the Makefile).
    """
    config.addinivalue_line(
        "markers",
        "local_only(reason, on=(names,)): the test shares live objects across the backend "
        "seam; skipped on the test backends named in ``on`` (default: every one)",
    )
    name = os.environ.get("LEDGERFLOW_TEST_BACKEND", "")
    if name and name != "local":
        from workflow._backend import set_default_backend
        from workflow._backend_testing import backend_named

        set_default_backend(backend_named(name))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    name = os.environ.get("LEDGERFLOW_TEST_BACKEND", "")
    if not name or name == "local":
        return
    for item in items:
        marker = item.get_closest_marker("local_only")
        if marker is not None and name in marker.kwargs.get("on", (name,)):
            reason = marker.args[0] if marker.args else "needs the local backend"
            item.add_marker(pytest.mark.skip(reason=f"on {name}: {reason}"))


def backend_under_test() -> str:
    """The test backend this session runs workflows on (``local`` unless switched)."""
    return os.environ.get("LEDGERFLOW_TEST_BACKEND", "") or "local"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def require_service(available: bool, reason: str) -> None:
    """Skip a test whose service is missing on a laptop, but fail it in CI (CI=true)."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)
