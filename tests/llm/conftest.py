"""A real model behind the real client: llama-cpp-python's server with SmolLM2-135M.

One server per session on a free loopback port (``.ci/llm-venv.sh`` builds its venv once per
machine; ``make test`` runs it first). Without that venv the tests skip, and fail in CI.

A 135M model will not solve tasks, so these tests assert what the engine guarantees (replies
stream, tool calls run, ledgers parse, runs end ``COMPLETED`` within their limits, checkpoints
resume), never the model's wording. Sampling is greedy (temperature 0) to keep runs alike.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from executors import ChatDelta, ChatMessage, ChatResponse, OpenAIChatClient, ToolSpec
from tests.conftest import require_service

from .local_server import MODEL_ALIAS, LocalLLMServer, find_model, llm_venv

GREEDY = {"temperature": 0, "seed": 7}


@pytest.fixture(scope="session")
def llm_server() -> Iterator[LocalLLMServer]:
    # An explicit opt-out for a quick local run (a skip; still a failure when CI=true).
    skipped = os.environ.get("LEDGERFLOW_SKIP_LLM") == "1"
    require_service(not skipped, "LEDGERFLOW_SKIP_LLM=1: the real-model tests are switched off")
    venv = llm_venv()
    available = (venv / "bin" / "python").exists() and find_model(venv) is not None
    require_service(
        available, f"no llama-cpp-python server with SmolLM2 in {venv}; run .ci/llm-venv.sh"
    )
    with LocalLLMServer(venv) as server:
        yield server


def make_client(server: LocalLLMServer, **options: Any) -> OpenAIChatClient:
    """A client with room for a slow, busy CPU: long timeouts, short answers."""
    settings: dict[str, Any] = {
        "timeout": 600.0,
        "idle_timeout": 120.0,
        "max_retries": 1,
        "max_tokens": 40,
        "extra_body": GREEDY,
    }
    settings.update(options)
    return OpenAIChatClient(MODEL_ALIAS, base_url=server.base_url, **settings)


@pytest.fixture
async def client(llm_server: LocalLLMServer) -> AsyncIterator[OpenAIChatClient]:
    async with make_client(llm_server) as c:
        yield c


class Recorder:
    """A ``ChatClient`` that passes every request on and keeps the request and the answer."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model = inner.model
        self.exchanges: list[tuple[Any, ChatResponse]] = []

    async def get_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        response_format: type[BaseModel] | dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        response: ChatResponse = await self.inner.get_response(
            messages, tools=tools, response_format=response_format, max_tokens=max_tokens
        )
        self.exchanges.append((response_format, response))
        return response

    def get_streaming_response(
        self,
        messages: Sequence[ChatMessage],
        *,
        tools: Sequence[ToolSpec] | None = None,
        max_tokens: int | None = None,
    ) -> AsyncIterator[ChatDelta]:
        stream: AsyncIterator[ChatDelta] = self.inner.get_streaming_response(
            messages, tools=tools, max_tokens=max_tokens
        )
        return stream
