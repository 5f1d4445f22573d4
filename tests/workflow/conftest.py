"""Fixtures for the core's tests: both anyio backends, and the PostgreSQL server.

The core is written against anyio only, so its tests run on asyncio *and* on trio
(``anyio_backend`` is parametrized here; the other suites stay on asyncio, the backend their
libraries need). A test that needs an asyncio-only library skips trio with
``pytest.mark.asyncio_only(reason)``; every test or case with "postgres" in its id skips
trio too (the PostgreSQL store uses asyncpg, which speaks asyncio only).
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import require_service


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    if backend == "trio":
        marker = request.node.get_closest_marker("asyncio_only")
        if marker is not None:
            pytest.skip(f"asyncio only: {marker.args[0] if marker.args else 'needs asyncio'}")
        if "postgres" in request.node.name:  # the store suites' postgres cases, by their id
            pytest.skip("asyncio only: PostgresCheckpointStore uses asyncpg, which needs asyncio")
    return backend


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "asyncio_only(reason): skip the trio run of this test, saying why"
    )


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """``DATABASE_URL`` of a disposable server: skipped on a laptop without one, fails in CI.

    Start one with ``bash .ci/postgres.sh start && source .ci/.pg_env``.
    """
    dsn = os.environ.get("DATABASE_URL", "")
    require_service(
        dsn.startswith(("postgresql://", "postgres://")),
        "DATABASE_URL is not set; run `bash .ci/postgres.sh start && source .ci/.pg_env`",
    )
    return dsn
