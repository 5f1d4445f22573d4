"""Shared fixtures: anyio runs async tests on asyncio (our only supported backend)."""

from __future__ import annotations

import os

import pytest


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
