"""SSE: a slow subscriber never slows the run; it is cut off and resumes from its last id."""

from __future__ import annotations

import json
import time

from tests.workflow.service.conftest import TERMINAL, Server, read_events, wait_status


def test_a_stalled_subscriber_is_cut_off_and_resumes_from_its_last_id(server: Server) -> None:
    n = 8_000  # ~16 MB of events: more than the socket buffers and the subscriber queue
    with server.client() as c:
        run_id = c.post("/api/workflows/chatty/runs", json={"input": n}).json()["run_id"]
        with c.stream("GET", f"/api/runs/{run_id}/events") as stalled:
            lines = stalled.iter_lines()
            assert next(lines).startswith("retry:")
            # the subscriber reads nothing more; the run is not held up by it
            with server.client() as other:
                assert wait_status(other, run_id, TERMINAL, timeout=120)["status"] == "completed"
            time.sleep(0.5)
            got: list[tuple[int, dict[str, object]]] = []
            seq = None
            for line in lines:  # what it still receives, then its stream ends early
                if line.startswith("id: "):
                    seq = int(line[4:])
                elif line.startswith("data: ") and seq is not None:
                    got.append((seq, json.loads(line[6:])))
        assert got, "the stalled subscriber received nothing at all"
        assert got[-1][1]["type"] != "RunFinished"  # cut off before the end
        assert [s for s, _ in got] == list(range(got[0][0], got[-1][0] + 1))
        rest = read_events(c, run_id, last_id=got[-1][0], timeout=120)
        assert rest[0][0] == got[-1][0] + 1
        assert rest[-1][1]["type"] == "RunFinished"
        assert rest[-1][1]["status"] == "completed"
        outputs = [e for _, e in got + rest if e["type"] == "OutputEmitted"]
        assert len(outputs) == n
        assert outputs[-1]["data"].startswith(f"{n - 1:06d}")
