"""``POST /v1/responses`` driven by the real ``openai`` client (built on httpx2 here)."""

from __future__ import annotations

import pytest

from tests.workflow.service.conftest import Server

openai = pytest.importorskip("openai")


def _client(server: Server) -> object:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def test_a_workflow_answers_an_openai_client(server: Server) -> None:
    client = _client(server)
    response = client.responses.create(model="pipeline", input="hello")  # type: ignore[attr-defined]
    assert response.status == "completed"
    assert response.output_text == "<HELLO!>"
    run_id = response.metadata["run_id"]
    with server.client() as c:  # an ordinary run of the server
        assert c.get(f"/api/runs/{run_id}").json()["outputs"] == ["<HELLO!>"]
    messages = [{"role": "user", "content": [{"type": "input_text", "text": "as a list"}]}]
    listed = client.responses.create(model="pipeline", input=messages)  # type: ignore[attr-defined]
    assert listed.output_text == "<AS A LIST!>"


def test_streaming_sends_deltas_then_the_completed_response(server: Server) -> None:
    client = _client(server)
    stream = client.responses.create(model="pipeline", input="streamed", stream=True)  # type: ignore[attr-defined]
    kinds, deltas, numbers, final = [], [], [], None
    for event in stream:
        kinds.append(event.type)
        numbers.append(event.sequence_number)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "".join(deltas) == "<STREAMED!>"
    assert final is not None
    assert final.output_text == "<STREAMED!>"
    assert numbers == sorted(set(numbers))


def test_openai_errors_for_unknown_models_and_non_text_workflows(server: Server) -> None:
    client = _client(server)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="no-such-workflow", input="x")  # type: ignore[attr-defined]
    assert "no-such-workflow" in str(missing.value)
    with pytest.raises(openai.UnprocessableEntityError):
        client.responses.create(model="orders", input="x")  # type: ignore[attr-defined]


def test_a_failed_run_is_a_failed_response(server: Server) -> None:
    client = _client(server)
    response = client.responses.create(model="leaky", input="x")  # type: ignore[attr-defined]
    assert response.status == "failed"
    assert response.error is not None
    assert "SECRET" not in response.error.message
