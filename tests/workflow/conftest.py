"""Fixtures for the core's tests: the PostgreSQL server the store suite runs against."""

from __future__ import annotations

import os

import pytest

from tests.conftest import require_service


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
