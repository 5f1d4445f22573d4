"""The HTTP API on a real uvicorn: workflows, runs, answers, cancel, fork, errors, auth."""

from __future__ import annotations

import inspect
import time
from typing import Any

import pytest

from tests.workflow.service.apps import FAKE_KEY
from tests.workflow.service.conftest import TERMINAL, Server, read_events, wait_status
from workflow import Workflow, WorkflowError


def test_workflows_are_listed_with_input_schemas_and_diagrams(server: Server) -> None:
    with server.client() as c:
        listed = {w["name"]: w for w in c.get("/api/workflows").json()}
        assert {"pipeline", "approval", "slow", "orders"} <= set(listed)
        assert listed["pipeline"]["input_schema"] == {"type": "string"}
        order = listed["orders"]["input_schema"]
        assert order["required"] == ["item", "qty"]
        assert order["properties"]["qty"]["type"] == "integer"
        svg = c.get("/api/workflows/pipeline/diagram.svg")
        assert svg.status_code == 200
        assert svg.headers["content-type"] == "image/svg+xml"
        assert b"pipeline" in svg.content
        doc = c.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.")
        for path in ("/api/workflows/{name}/runs", "/api/runs/{run_id}/events", "/v1/responses"):
            assert path in doc["paths"]


def test_a_run_goes_on_in_the_server_and_its_stream_replays(server: Server) -> None:
    with server.client() as c:
        started = c.post("/api/workflows/pipeline/runs", json={"input": "hi"})
        assert started.status_code == 201
        run_id = started.json()["run_id"]
        events = read_events(c, run_id)
        kinds = [e["type"] for _, e in events]
        assert kinds[0] == "RunStarted"
        assert kinds[-1] == "RunFinished"
        assert events[-1][1]["status"] == "completed"
        assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
        assert all(e["run_id"] == run_id and "superstep" in e for _, e in events)
        outputs = [e["data"] for _, e in events if e["type"] == "OutputEmitted"]
        assert outputs == ["<HI!>"]
        run = c.get(f"/api/runs/{run_id}").json()
        assert run == {
            "run_id": run_id,
            "workflow": "pipeline",
            "status": "completed",
            "outputs": ["<HI!>"],
            "pending_requests": [],
            "error": None,
        }
        # a late subscriber gets the same events; Last-Event-ID resumes after one
        assert read_events(c, run_id) == events
        assert read_events(c, run_id, last_id=3) == events[3:]
        listed = c.get("/api/runs", params={"workflow": "pipeline"}).json()
        assert run_id in {r["run_id"] for r in listed}
        assert all(r["workflow"] == "pipeline" for r in listed)
        newest = c.get("/api/runs", params={"limit": 1}).json()
        assert len(newest) == 1
        assert newest[0]["run_id"] == c.get("/api/runs").json()[0]["run_id"]
        assert c.get("/api/runs", params={"limit": "0"}).status_code == 422
        done = c.get("/api/runs", params={"status": "completed"}).json()
        assert run_id in {r["run_id"] for r in done}
        assert c.get("/api/runs", params={"status": "failed"}).json() == [
            r for r in c.get("/api/runs").json() if r["status"] == "failed"
        ]


def test_a_person_answers_a_pending_request(server: Server) -> None:
    with server.client() as c:
        run_id = c.post("/api/workflows/approval/runs", json={"input": "v2"}).json()["run_id"]
        run = wait_status(c, run_id, {"awaiting_input"})
        [pending] = run["pending_requests"]
        assert pending["payload"] == {"text": "ship v2?"}
        schema = pending["response_schema"]
        assert schema["properties"]["approved"]["type"] == "boolean"
        assert schema["required"] == ["approved"]
        rid = pending["request_id"]
        bad = c.post(f"/api/runs/{run_id}/responses", json={rid: {"approved": "perhaps"}})
        assert bad.status_code == 422
        assert bad.json()["error"]["type"] == "invalid_answer"
        assert "approved" in bad.json()["error"]["message"]
        unknown = c.post(f"/api/runs/{run_id}/responses", json={"nope": {"approved": True}})
        assert unknown.status_code == 409
        assert rid in unknown.json()["error"]["message"]  # names the pending ones
        ok = c.post(f"/api/runs/{run_id}/responses", json={rid: {"approved": True, "note": "go"}})
        assert ok.status_code == 202
        run = wait_status(c, run_id, TERMINAL)
        assert run["status"] == "completed"
        assert run["outputs"] == ["ship v2? approved go"]
        again = c.post(f"/api/runs/{run_id}/responses", json={rid: {"approved": False}})
        assert again.status_code == 409
        assert again.json()["error"]["type"] == "not_awaiting_input"
        events = read_events(c, run_id)
        finished = [e for _, e in events if e["type"] == "RunFinished"]
        assert [e["status"] for e in finished] == ["awaiting_input", "completed"]


def test_cancel_stops_a_running_run(server: Server) -> None:
    with server.client() as c:
        run_id = c.post("/api/workflows/slow/runs", json={"input": 100_000}).json()["run_id"]
        read_events(c, run_id, stop=lambda e: e["type"] == "SuperstepCompleted")
        cancelled = c.post(f"/api/runs/{run_id}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"
        events = read_events(c, run_id)
        assert events[-1][1]["type"] == "RunFinished"
        assert events[-1][1]["status"] == "cancelled"
        again = c.post(f"/api/runs/{run_id}/cancel")
        assert again.status_code == 409


def test_cancel_a_run_waiting_for_input(server: Server) -> None:
    with server.client() as c:
        run_id = c.post("/api/workflows/approval/runs", json={"input": "v3"}).json()["run_id"]
        [pending] = wait_status(c, run_id, {"awaiting_input"})["pending_requests"]
        cancelled = c.post(f"/api/runs/{run_id}/cancel")
        assert cancelled.status_code == 200
        assert cancelled.json()["status"] == "cancelled"
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "cancelled"
        listed = c.get("/api/runs", params={"status": "cancelled"}).json()
        assert run_id in {r["run_id"] for r in listed}
        events = read_events(c, run_id)  # ends: the run is over
        assert [e["status"] for _, e in events if e["type"] == "RunFinished"] == [
            "awaiting_input",
            "cancelled",
        ]
        late = c.post(f"/api/runs/{run_id}/responses", json={pending["request_id"]: True})
        assert late.status_code == 409


def test_fork_a_waiting_run_from_its_latest_checkpoint(server: Server) -> None:
    """The fork is a new run waiting for the same answer; the original keeps waiting."""
    with server.client() as c:
        run_id = c.post("/api/workflows/approval/runs", json={"input": "v9"}).json()["run_id"]
        wait_status(c, run_id, {"awaiting_input"})
        latest = c.get(f"/api/runs/{run_id}/checkpoints").json()[-1]
        forked = c.post(f"/api/runs/{run_id}/fork", json={"checkpoint_id": latest["checkpoint_id"]})
        assert forked.status_code == 201, forked.text
        fork_id = forked.json()["run_id"]
        assert fork_id != run_id
        fork = wait_status(c, fork_id, {"awaiting_input"})
        [pending] = fork["pending_requests"]
        answer = {pending["request_id"]: {"approved": True, "note": "in the fork"}}
        answered = c.post(f"/api/runs/{fork_id}/responses", json=answer)
        assert answered.status_code == 202, answered.text
        done = wait_status(c, fork_id, TERMINAL)
        assert done["outputs"] == ["ship v9? approved in the fork"]
        assert c.get(f"/api/runs/{run_id}").json()["status"] == "awaiting_input"


def test_a_client_that_disconnects_does_not_stop_the_run(server: Server) -> None:
    with server.client() as c:
        run_id = c.post("/api/workflows/slow/runs", json={"input": 8}).json()["run_id"]
        seen = read_events(c, run_id, stop=lambda e: e["type"] == "SuperstepStarted")
        assert seen  # the stream was open; closing it leaves the run alone
    with server.client() as c:
        run = wait_status(c, run_id, TERMINAL)
        assert run["status"] == "completed"
        assert run["outputs"] == [8]


def test_fork_from_an_earlier_checkpoint(server: Server) -> None:
    with server.client() as c:
        run_id = c.post("/api/workflows/slow/runs", json={"input": 4}).json()["run_id"]
        assert wait_status(c, run_id, TERMINAL)["outputs"] == [4]
        history = c.get(f"/api/runs/{run_id}/checkpoints").json()
        assert [h["superstep"] for h in history] == list(range(len(history)))
        assert history[0]["parent_id"] is None
        middle = next(h for h in history if h["superstep"] == 2)
        forked = c.post(f"/api/runs/{run_id}/fork", json={"checkpoint_id": middle["checkpoint_id"]})
        assert forked.status_code == 201, forked.text
        fork_id = forked.json()["run_id"]
        assert fork_id != run_id
        fork = wait_status(c, fork_id, TERMINAL)
        assert fork["status"] == "completed"
        assert fork["outputs"] == [4]
        fork_history = c.get(f"/api/runs/{fork_id}/checkpoints").json()
        assert fork_history[0]["parent_id"] == middle["checkpoint_id"]
        assert c.get(f"/api/runs/{run_id}/checkpoints").json() == history  # untouched
        events = read_events(c, fork_id)
        started = [e for _, e in events if e["type"] == "ExecutorInvoked"]
        # only the supersteps after the checkpoint ran again
        assert len(started) == history[-1]["superstep"] - 2
        unknown = c.post(f"/api/runs/{run_id}/fork", json={"checkpoint_id": "nope@1"})
        assert unknown.status_code == 404
        other = c.post(f"/api/runs/{fork_id}/fork", json={"checkpoint_id": middle["checkpoint_id"]})
        assert other.status_code == 422
        updated = c.post(
            f"/api/runs/{run_id}/fork",
            json={"checkpoint_id": middle["checkpoint_id"], "state_updates": {"count": 0}},
        )
        if "state_updates" in inspect.signature(Workflow.resume_stream).parameters:
            assert updated.status_code == 201, updated.text
            updated_id = updated.json()["run_id"]
            assert updated_id not in (run_id, fork_id)
            assert wait_status(c, updated_id, TERMINAL)["outputs"] == [4]
        else:  # the engine cannot yet: refused clearly, nothing started
            assert updated.status_code == 422
            assert "state_updates" in updated.json()["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "kind"),
    [
        ("POST", "/api/workflows/nope/runs", {"input": "x"}, 404, "unknown_workflow"),
        ("GET", "/api/workflows/nope/diagram.svg", None, 404, "unknown_workflow"),
        ("GET", "/api/runs/nope", None, 404, "unknown_run"),
        ("GET", "/api/runs/nope/events", None, 404, "unknown_run"),
        ("POST", "/api/runs/nope/responses", {"x": 1}, 404, "unknown_run"),
        ("POST", "/api/runs/nope/cancel", None, 404, "unknown_run"),
        ("GET", "/api/runs/nope/checkpoints", None, 404, "unknown_run"),
        ("POST", "/api/workflows/pipeline/runs", b'{"input": ', 400, "malformed_json"),
        ("POST", "/api/workflows/pipeline/runs", b"[1, 2]", 400, "malformed_request"),
        ("POST", "/api/workflows/pipeline/runs", {"input": 5}, 422, "invalid_input"),
        ("POST", "/api/workflows/pipeline/runs", {}, 422, "invalid_input"),
        ("POST", "/api/workflows/pipeline/runs", {"input": "x", "eval": "1"}, 422, "unknown_field"),
        ("POST", "/api/workflows/pipeline/runs", {"input": "x", "run_id": "a b"}, 422, None),
        ("POST", "/api/workflows/orders/runs", {"input": {"item": "tea"}}, 422, "invalid_input"),
        ("POST", "/api/workflows/pipeline/runs", b"x" * 200_000, 413, "too_large"),
        ("DELETE", "/api/runs", None, 405, "method_not_allowed"),
        ("GET", "/nowhere", None, 404, "not_found"),
    ],
)
def test_bad_requests_get_json_errors(
    server: Server, method: str, path: str, body: Any, status: int, kind: str | None
) -> None:
    with server.client() as c:
        if isinstance(body, bytes):
            r = c.request(method, path, content=body, headers={"content-type": "application/json"})
        else:
            r = c.request(method, path, json=body)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert set(error) >= {"type", "message"}
        assert error["message"]
        if kind is not None:
            assert error["type"] == kind


def test_typed_input_is_validated_and_converted(server: Server) -> None:
    with server.client() as c:
        r = c.post("/api/workflows/orders/runs", json={"input": {"item": "tea", "qty": 3}})
        assert r.status_code == 201
        assert wait_status(c, r.json()["run_id"], TERMINAL)["outputs"] == ["3 x tea"]
        taken = c.post("/api/workflows/pipeline/runs", json={"input": "a", "run_id": "dup-1"})
        assert taken.status_code == 201
        dup = c.post("/api/workflows/pipeline/runs", json={"input": "a", "run_id": "dup-1"})
        assert dup.status_code == 409
        assert dup.json()["error"]["type"] == "run_exists"


def test_keys_never_reach_responses_or_events(server: Server) -> None:
    with server.client() as c:
        run_id = c.post("/api/workflows/leaky/runs", json={"input": "x"}).json()["run_id"]
        run = wait_status(c, run_id, TERMINAL)
        assert run["status"] == "failed"
        assert run["error"]
        assert FAKE_KEY not in c.get(f"/api/runs/{run_id}").text
        assert "SECRET" not in c.get(f"/api/runs/{run_id}").text
        events = read_events(c, run_id)
        assert any(e["type"] == "ExecutorFailed" for _, e in events)
        for _, e in events:
            assert "SECRET" not in str(e), e
        assert FAKE_KEY not in server.output()  # nor in the server's log


def test_a_token_is_required_when_set(make_server: Any, tmp_path: Any) -> None:
    srv = make_server("memory://", token="s3cret-token")
    import httpx2

    assert httpx2.get(srv.url + "/api/workflows").status_code == 401
    wrong = httpx2.get(srv.url + "/api/workflows", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "unauthorized"
    with srv.client() as c:
        assert c.get("/api/workflows").status_code == 200
        assert "access-control-allow-origin" not in c.get("/api/workflows").headers


def test_cors_only_for_the_origins_given(make_server: Any) -> None:
    srv = make_server("memory://", extra=["--cors", "http://studio.example"])
    import httpx2

    preflight = {"Access-Control-Request-Method": "POST"}
    ok = httpx2.options(
        srv.url + "/api/workflows/pipeline/runs",
        headers={"Origin": "http://studio.example", **preflight},
    )
    assert ok.headers.get("access-control-allow-origin") == "http://studio.example"
    other = httpx2.options(
        srv.url + "/api/workflows/pipeline/runs",
        headers={"Origin": "http://evil.example", **preflight},
    )
    assert "access-control-allow-origin" not in other.headers


def test_a_request_cannot_make_the_server_import_or_run_anything(
    server: Server, tmp_path: Any
) -> None:
    marker = tmp_path / "pwned"
    sneaky = {"$type": "subprocess:Popen", "args": ["touch", str(marker)], "shell": False}
    with server.client() as c:
        r = c.post("/api/workflows/echo/runs", json={"input": sneaky})
        assert r.status_code == 201
        run = wait_status(c, r.json()["run_id"], TERMINAL)
        assert run["status"] == "completed"
        assert run["outputs"] == [sneaky]  # data, kept as data through the checkpoints
        fork = c.post(
            f"/api/runs/{run['run_id']}/fork",
            json={"checkpoint_id": "subprocess:Popen", "state_updates": None},
        )
        assert fork.status_code == 404
        named = c.post("/api/workflows/os.system/runs", json={"input": "x"})
        assert named.status_code == 404
    assert not marker.exists()


def test_serving_beyond_loopback_needs_a_token() -> None:
    from workflow._service._server import check_bind

    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("0.0.0.0", "t")
    with pytest.raises(WorkflowError, match="without a token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(WorkflowError, match="--token"):
        check_bind("192.168.1.5", None)


def test_many_runs_at_once(server: Server) -> None:
    with server.client() as c:
        ids = [
            c.post("/api/workflows/pipeline/runs", json={"input": f"r{i}"}).json()["run_id"]
            for i in range(30)
        ]
        deadline = time.monotonic() + 60
        for i, run_id in enumerate(ids):
            run = wait_status(c, run_id, TERMINAL, timeout=max(1.0, deadline - time.monotonic()))
            assert run["outputs"] == [f"<R{i}!>"]
