"""RayBackend on a real multi-node cluster: same events as LocalBackend, placement,
failures, retries, timeouts and human input."""

from __future__ import annotations

import os
import pathlib
import time
from typing import Any

import anyio
import pytest

from builders import WorkflowBuilder
from workflow import (
    ExecutorFailedError,
    LocalBackend,
    RayBackend,
    Resources,
    RetryPolicy,
    RunResult,
    RunStatus,
    executor,
)
from workflow.events import AgentDelta, RunFinished, WorkflowEvent

from .conftest import RayCluster
from .scenarios import SCENARIOS, Asker, bump, retries, shout

pytestmark = pytest.mark.anyio


def write(path: str, text: str) -> None:
    pathlib.Path(path).write_text(text)


async def eventually(check: Any, what: str, seconds: float = 30, detail: Any = None) -> None:
    """Poll ``check`` until it holds, failing with ``what`` after ``seconds``."""
    for _ in range(int(seconds / 0.1)):
        if check():
            return
        await anyio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what} ({detail() if detail else ''})")


def signature(events: list[WorkflowEvent]) -> list[tuple[Any, ...]]:
    """What must not depend on the backend: types, executor ids, supersteps, data, ids."""
    out = []
    for e in events:
        out.append(
            (
                type(e).__name__,
                e.superstep,
                getattr(e, "executor_id", None),
                repr(getattr(e, "data", None)),
                getattr(e, "request_id", None),
                getattr(e, "status", None),
            )
        )
    return out


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_same_events_as_local(ray_cluster: RayCluster, name: str) -> None:
    build, value = SCENARIOS[name]
    local = await build().run(value, run_id=f"local-{name}", backend=LocalBackend())
    remote = await build().run(value, run_id=f"local-{name}", backend=RayBackend())
    assert remote.status is local.status
    assert remote.outputs == local.outputs
    assert signature(remote.events) == signature(local.events)
    if name == "failing":
        assert isinstance(remote.error, ExecutorFailedError)
        assert isinstance(remote.error.__cause__, ValueError)  # the handler's own error
        assert "cannot handle 7" in str(remote.error)


async def test_human_input_answered_on_ray(ray_cluster: RayCluster) -> None:
    build, _ = SCENARIOS["human"]
    wf = build()
    backend = RayBackend()
    first = await wf.run("deploy", backend=backend)
    assert first.status is RunStatus.AWAITING_INPUT
    (req,) = first.pending_requests
    done = await wf.resume(first.run_id, responses={req.request_id: True}, backend=backend)
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == ["APPROVE DEPLOY? -> YES"]


async def test_retries_run_again_on_the_cluster(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "tries"
    result = await retries(str(marker)).run(5, backend=RayBackend())
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == ["value 5"]
    assert marker.read_text() == "xxx"


@executor(id="where")
async def where(x: int) -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())


@pytest.mark.parametrize("node", ["node_a", "node_b"])
async def test_resources_place_the_invocation(ray_cluster: RayCluster, node: str) -> None:
    wf = (
        WorkflowBuilder(start=where)
        .add_executor(where, resources=Resources(custom={node: 1}))
        .build()
    )
    for _ in range(3):
        result = await wf.run(1, backend=RayBackend())
        assert result.outputs == [ray_cluster.node_id(node)]


async def test_resources_no_node_has_are_refused_at_run_start(ray_cluster: RayCluster) -> None:
    wf = (
        WorkflowBuilder(start=where)
        .add_executor(where, resources=Resources(num_gpus=1, custom={"node_a": 1}))
        .build()
    )
    started = time.monotonic()
    with anyio.fail_after(60):
        result = await _run_or_error(wf, 1)
    text = str(result)
    assert "'where'" in text
    assert "GPU" in text
    assert time.monotonic() - started < 60  # refused, not queued forever


async def _run_or_error(wf: Any, value: Any) -> Any:
    try:
        result: RunResult = await wf.run(value, backend=RayBackend())
    except Exception as exc:
        return exc
    assert result.status is RunStatus.FAILED
    return result.error


@executor(id="sleepy")
async def sleepy(path: str) -> str:
    write(path, str(os.getpid()))
    await anyio.sleep(120)
    return "woke"


async def test_timeout_cancels_the_remote_invocation(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    import psutil

    marker = tmp_path / "pid"
    wf = WorkflowBuilder(start=sleepy).add_executor(sleepy, timeout=3).build()
    result = await wf.run(str(marker), backend=RayBackend())
    assert result.status is RunStatus.FAILED
    assert "timeout" in str(result.error.__cause__)
    pid = int(marker.read_text())

    def gone() -> bool:
        return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    await eventually(gone, "the worker running the timed-out invocation is killed")


@executor(id="crashy")
async def crashy(path: str) -> str:
    tries = bump(path)
    if tries == 1:
        os._exit(1)  # the worker process dies mid-invocation
    return f"survived after {tries} attempts"


async def test_a_dead_worker_is_retried_under_the_retry_policy(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    wf = (
        WorkflowBuilder(start=crashy)
        .add_executor(crashy, retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
        .build()
    )
    result = await wf.run(str(tmp_path / "m"), backend=RayBackend())
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == ["survived after 2 attempts"]
    # without a retry policy the lost worker fails the run, naming the executor
    wf = WorkflowBuilder(start=crashy).build()
    failed = await wf.run(str(tmp_path / "n"), backend=RayBackend())
    assert failed.status is RunStatus.FAILED
    assert "'crashy'" in str(failed.error)


async def test_a_paused_run_holds_no_cluster_resources(ray_cluster: RayCluster) -> None:
    import ray

    asker = Asker("asker")
    wf = WorkflowBuilder(start=asker).add_edge(asker, shout).build()
    result = await wf.run("x", backend=RayBackend())
    assert result.status is RunStatus.AWAITING_INPUT

    def reservable(resources: dict[str, float]) -> dict[str, float]:
        # what a task or actor reserves (objects in the store are not reservations)
        return {k: v for k, v in resources.items() if k != "object_store_memory"}

    total = reservable(ray.cluster_resources())
    await eventually(
        lambda: reservable(ray.available_resources()) == total,
        "every CPU and custom resource is free again: nothing reserved for the paused run",
        detail=lambda: f"available {ray.available_resources()} of {total}",
    )


async def test_agent_deltas_stream_in_order_from_a_warm_actor(ray_cluster: RayCluster) -> None:
    from executors import ChatAgent, ScriptedChatClient

    def build() -> Any:
        agent = ChatAgent("poet", "writes", "Be brief.", ScriptedChatClient(["roses are red"]))
        return WorkflowBuilder(start=agent).build()

    local = await build().run("a poem", run_id="p", backend=LocalBackend())
    events: list[WorkflowEvent] = []
    async with build().run_stream("a poem", run_id="p", backend=RayBackend()) as stream:
        async for event in stream:
            events.append(event)
    deltas = [e.text for e in events if isinstance(e, AgentDelta)]
    assert len(deltas) > 1
    assert "".join(deltas) == "roses are red"
    assert signature(events) == signature(local.events)
    assert isinstance(events[-1], RunFinished)


def driver(mode: str, cluster: RayCluster, tmp: pathlib.Path) -> list[str]:
    """The command line of a driver process (tests/ray/driver.py) over ``tmp``'s store."""
    import sys

    store, log = str(tmp / "runs.db"), str(tmp / "effects.log")
    return [sys.executable, "-m", "tests.ray.driver", mode, store, cluster.address, log, "lost"]


def driver_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(pathlib.Path(__file__).resolve().parents[2])}


def start_driver(argv: list[str]) -> Any:
    import subprocess

    return subprocess.Popen(
        argv, env=driver_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def run_driver(argv: list[str]) -> Any:
    import subprocess

    return subprocess.run(
        argv, env=driver_env(), capture_output=True, text=True, timeout=300, check=False
    )


def read_lines(path: pathlib.Path) -> list[str]:
    return path.read_text().split()


async def test_a_lost_driver_is_resumed_by_a_new_one(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    """SIGKILL the driver mid-run; a new driver process resumes from the store: the outputs
    equal an uninterrupted run's and no committed step ran twice."""
    import signal

    from workflow import SQLiteCheckpointStore

    from .driver import STEPS

    first = start_driver(driver("run", ray_cluster, tmp_path))
    store = SQLiteCheckpointStore(str(tmp_path / "runs.db"))
    try:

        async def committed() -> int:
            try:
                return len(await store.list_checkpoints("lost"))
            except Exception:  # the file may not exist yet
                return 0

        for _ in range(600):  # kill once steps 1-2 are committed (checkpoint 0 is the input)
            if await committed() >= 3 or first.poll() is not None:
                break
            await anyio.sleep(0.1)
        assert first.poll() is None, "the driver finished before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        done_before = await committed() - 1
    finally:
        await store.aclose()
    second = run_driver(driver("resume", ray_cluster, tmp_path))
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.strip().splitlines()[-1] == f"completed [{STEPS * 10}]"
    effects = read_lines(tmp_path / "effects.log")
    assert sorted(set(effects)) == [f"step{i}" for i in range(1, STEPS + 1)]
    assert done_before >= 2
    for i in range(1, done_before + 1):
        assert effects.count(f"step{i}") == 1, (f"step{i} committed, then ran again", effects)


@executor(id="traced")
async def traced(x: int) -> str:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}/{context.span_id:016x}"


async def test_worker_invocations_run_inside_the_runs_trace(ray_cluster: RayCluster) -> None:
    from opentelemetry import trace  # noqa: F401 - OpenTelemetry in use, as with a real exporter

    from tests.workflow.test_telemetry import Telemetry

    telemetry = Telemetry()
    wf = WorkflowBuilder(start=traced, observers=[telemetry.observer]).build()
    result = await wf.run(1, backend=RayBackend())
    assert result.status is RunStatus.COMPLETED, result.error
    (seen,) = result.outputs
    run_span = telemetry.one("workflow.run")
    process = telemetry.one("executor.process")
    trace_id, parent_id = seen.split("/")
    assert trace_id == f"{run_span.context.trace_id:032x}"
    assert parent_id == f"{process.context.span_id:016x}"  # worker spans nest under it


async def test_an_approved_tool_runs_once_across_workers_and_a_restart(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    """Pause for approval on the cluster; approve from a freshly built workflow (as after a
    restart), also on the cluster: the tool's side effect happens exactly once."""
    from examples.tool_approval import RUN_ID, build
    from executors import ApprovalResponse

    db = tmp_path / "runs.db"
    first = await build(db).run("Please pay alice 250 EUR.", run_id=RUN_ID, backend=RayBackend())
    assert first.status is RunStatus.AWAITING_INPUT
    (pending,) = first.pending_requests
    answer = {pending.request_id: ApprovalResponse.approve()}
    done = await build(db).resume(RUN_ID, responses=answer, backend=RayBackend())
    assert done.status is RunStatus.COMPLETED, done.error
    again = await build(db).resume(RUN_ID, backend=RayBackend())  # completed: runs nothing
    assert again.status is RunStatus.COMPLETED
    assert read_lines(db.with_suffix(".ledger")) == ["alice", "250"]


def sandbox_leftovers(marker: str) -> list[int]:
    import psutil

    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(marker in part for part in (p.info["cmdline"] or []))
    ]


async def test_sandboxed_code_on_a_worker_kills_its_process_tree(ray_cluster: RayCluster) -> None:
    from executors import CodeExecutor, CodeResult

    code = (
        "import subprocess, time\n"
        "subprocess.Popen(['sleep', '600.4242'])\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    runner = CodeExecutor(id="code", timeout=3)
    wf = WorkflowBuilder(start=runner).build()
    result = await wf.run(code, backend=RayBackend())
    assert result.status is RunStatus.COMPLETED, result.error
    (out,) = result.outputs
    assert isinstance(out, CodeResult)
    assert out.timed_out
    assert "started" in out.stdout
    await eventually(
        lambda: not sandbox_leftovers("600.4242"), "the sandbox's background sleep is gone"
    )


@executor(id="long_haul")
async def long_haul(path: str) -> str:
    import ray

    tries = bump(path + ".tries")
    if tries == 1:  # first attempt: say where it runs, then work until its node is killed
        write(path, str(ray.get_runtime_context().get_node_id()))
        await anyio.sleep(120)
    return f"finished on attempt {tries}"


async def test_a_killed_node_is_retried_on_another_node(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    marker = tmp_path / "where"
    wf = (
        WorkflowBuilder(start=long_haul)
        .add_executor(long_haul, retry=RetryPolicy(max_attempts=2, initial_delay=0.01))
        .build()
    )
    async with anyio.create_task_group() as tg:
        outcome: list[RunResult] = []

        async def run() -> None:
            outcome.append(await wf.run(str(marker), backend=RayBackend()))

        tg.start_soon(run)
        await eventually(lambda: marker.exists() and marker.read_text(), "the first attempt runs")
        node_id = marker.read_text()
        (victim,) = [n for n, node in ray_cluster.nodes.items() if str(node.node_id) == node_id]
        ray_cluster.replace_node(victim)  # the node dies mid-invocation (a fresh one joins)
    (result,) = outcome
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == ["finished on attempt 2"]
