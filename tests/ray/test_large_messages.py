"""Large messages go from worker to worker through Ray's object store, not the driver."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

from builders import WorkflowBuilder
from workflow import (
    Case,
    Default,
    ExecutorFailedError,
    LocalBackend,
    RayBackend,
    Resources,
    RunStatus,
    SQLiteCheckpointStore,
    WorkflowError,
    executor,
    handler,
)
from workflow import Executor as BaseExecutor
from workflow._ray._held import LostMessageError, RayHeld, is_large

from .conftest import RayCluster
from .scenarios import SCENARIOS
from .test_ray_backend import signature

pytestmark = pytest.mark.anyio

MB = 1 << 20
SIZE = 200 * MB


@executor(id="produce")
async def produce(n: int) -> bytes:
    return bytes([7]) * n


@executor(id="consume")
async def consume(data: bytes) -> str:
    import ray

    digest = hashlib.sha256(data).hexdigest()[:16]
    return f"{len(data)} {digest} {ray.get_runtime_context().get_node_id()}"


def big_pipeline() -> Any:
    """``produce`` on node_a sends its bytes to ``consume`` on node_b."""
    return (
        WorkflowBuilder(start=produce, name="big")
        .add_executor(produce, resources=Resources(custom={"node_a": 1}))
        .add_executor(consume, resources=Resources(custom={"node_b": 1}))
        .add_edge(produce, consume)
        .build()
    )


class RssWatch:
    """The driver's peak RSS above its level at start, from the kernel's high-water mark
    (reset through ``/proc/self/clear_refs``) and, where that cannot be reset, from sampling
    every 2 ms."""

    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.resettable = True

    @staticmethod
    def status(key: str) -> int:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {key} in /proc/self/status")

    def __enter__(self) -> RssWatch:
        try:
            pathlib.Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.resettable = False
        self.baseline = self.peak = self.status("VmRSS:")
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self) -> None:
        while not self.stop.wait(0.002):
            self.peak = max(self.peak, self.status("VmRSS:"))

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join()
        if self.resettable:
            self.peak = max(self.peak, self.status("VmHWM:"))

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


def expected(cluster: RayCluster) -> str:
    digest = hashlib.sha256(bytes([7]) * SIZE).hexdigest()[:16]
    return f"{SIZE} {digest} {cluster.node_id('node_b')}"


async def test_a_200mb_message_between_workers_never_enters_the_driver(
    ray_cluster: RayCluster,
) -> None:
    wf = big_pipeline()
    backend = RayBackend()
    await wf.run(1024, backend=backend)  # warm-up: workers started, code shipped
    with RssWatch() as held:
        result = await wf.run(SIZE, backend=backend)
    assert result.status is RunStatus.COMPLETED, result.error
    assert result.outputs == [expected(ray_cluster)]
    assert held.growth < 40 * MB, f"driver grew {held.growth / MB:.0f} MB"
    # The same run with holding off: the measure sees the message pass through the driver.
    with RssWatch() as through:
        result = await wf.run(SIZE, backend=RayBackend(large_message_bytes=None))
    assert result.outputs == [expected(ray_cluster)]
    assert through.growth > SIZE, f"driver grew only {through.growth / MB:.0f} MB"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_same_events_as_local_with_every_message_held(
    ray_cluster: RayCluster, name: str
) -> None:
    """Every sent value held (threshold 1 byte): routing by type, conditions, fan-in lists,
    outputs, human replies, nested runs and teams behave as in-process."""
    build, value = SCENARIOS[name]
    local = await build().run(value, run_id=f"held-{name}", backend=LocalBackend())
    remote = await build().run(
        value, run_id=f"held-{name}", backend=RayBackend(large_message_bytes=1)
    )
    assert remote.status is local.status
    assert remote.outputs == local.outputs
    assert signature(remote.events) == signature(local.events)


@dataclass
class Blob:
    name: str
    data: bytes


@executor(id="make")
async def make(n: int) -> Blob:
    return Blob(f"blob{n}", bytes([n % 256]) * (4096 * n))


class Sizes(BaseExecutor):
    """Handles a ``Blob`` and a ``str`` differently: type routing must see the held class."""

    def __init__(self) -> None:
        super().__init__(id="sizes")

    @handler
    async def blob(self, b: Blob) -> str:
        return f"{b.name}: {len(b.data)} bytes of {b.data[:1].hex()}"

    @handler
    async def text(self, s: str) -> str:
        return f"text {s}"


@executor(id="small")
async def small(b: Blob) -> str:
    return f"small {b.name}"


@executor(id="large")
async def large(b: Blob) -> str:
    return f"large {b.name}"


def switched() -> Any:
    """A switch whose cases read the (held) message: the driver has to fetch it."""
    return (
        WorkflowBuilder(start=make, types=[Blob])
        .add_switch_case_edge_group(
            make, [Case(lambda b: len(b.data) > 10_000, large), Default(small)]
        )
        .build()
    )


@pytest.mark.parametrize("n", [1, 5])
async def test_a_switch_on_a_held_message_sees_its_value(ray_cluster: RayCluster, n: int) -> None:
    backend = RayBackend(large_message_bytes=1024)
    result = await switched().run(n, backend=backend)
    local = await switched().run(n, backend=LocalBackend())
    assert result.outputs == local.outputs == [f"{'large' if n == 5 else 'small'} blob{n}"]


async def test_held_messages_are_routed_by_their_type_and_checkpointed_as_values(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    """A held dataclass reaches its handler by type; a durable run's store keeps the value
    (not a handle), so the run's checkpoints load on any backend."""
    store = SQLiteCheckpointStore(str(tmp_path / "runs.db"))
    try:
        wf = WorkflowBuilder(start=make, checkpoint_store=store, types=[Blob]).add_edge(
            make, Sizes()
        )
        built = wf.build()
        result = await built.run(3, run_id="held", backend=RayBackend(large_message_bytes=1024))
        assert result.status is RunStatus.COMPLETED, result.error
        assert result.outputs == ["blob3: 12288 bytes of 03"]
        (first,) = [c for c in await store.list_checkpoints("held") if c.superstep == 1]
        # the message in flight after superstep 1 is stored as the Blob itself
        inbox = first.data["run"]["inbox"]
        assert "RayHeld" not in repr(inbox), inbox
        assert "Blob" in repr(inbox), inbox
        again = await built.resume("held", checkpoint_id=first.id, backend=LocalBackend())
        assert again.outputs == ["blob3: 12288 bytes of 03"]
    finally:
        await store.aclose()


def test_the_size_estimate() -> None:
    assert is_large(b"x" * 2048, 1024)
    assert not is_large(b"x" * 512, 1024)
    assert is_large(["x" * 600, "y" * 600], 1024)
    assert is_large(Blob("a", b"z" * 5000), 1024)
    assert is_large({"k": {"nested": [b"q" * 4000]}}, 1024)
    assert not is_large({"k": 1, "v": [1, 2, 3]}, 1024)
    assert is_large(list(range(20_000)), 10**9)  # that many parts: treated as large
    assert is_large(memoryview(b"m" * 4096), 1024)


def test_bad_threshold_is_refused() -> None:
    for bad in (0, -1, 1.5, True, "1MB"):
        with pytest.raises(WorkflowError, match="large_message_bytes"):
            RayBackend(large_message_bytes=bad)  # type: ignore[arg-type]


def test_a_handle_names_its_type() -> None:
    assert repr(RayHeld("ref", Blob)).startswith("RayHeld(Blob, ")


@executor(id="spread")
async def spread(path: str) -> str:
    return path


@executor(id="produce_big")
def produce_big(path: str) -> bytes:
    pathlib.Path(path).write_text(str(os.getpid()))
    return bytes([9]) * (2 * MB)


@executor(id="killer")
def killer(path: str) -> str:
    """Kill the worker process that holds produce_big's value once its task has finished."""
    pid_file = pathlib.Path(path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text():
            pid = int(pid_file.read_text())
            title = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            if title.startswith(b"ray::IDLE"):  # its task has returned
                time.sleep(0.5)
                os.kill(pid, signal.SIGKILL)
                return "killed"
        time.sleep(0.05)
    raise AssertionError("produce_big never finished")


@executor(id="gather")
async def gather(items: list[Any]) -> str:
    return f"got {len(items)}"


async def test_a_held_message_lost_with_its_worker_fails_naming_the_receiver(
    ray_cluster: RayCluster, tmp_path: pathlib.Path
) -> None:
    wf = (
        WorkflowBuilder(start=spread)
        .add_executor(produce_big, resources=Resources(custom={"node_a": 1}))
        .add_executor(killer, resources=Resources(custom={"node_b": 1}))
        .add_executor(gather, resources=Resources(custom={"node_b": 1}))
        .add_fan_out_edges(spread, [produce_big, killer])
        .add_fan_in_edges([produce_big, killer], gather)
        .build()
    )
    result = await wf.run(str(tmp_path / "pid"), backend=RayBackend())
    assert result.status is RunStatus.FAILED
    assert isinstance(result.error, ExecutorFailedError)
    assert result.error.executor_id == "gather"
    cause = result.error.__cause__
    assert isinstance(cause, LostMessageError), repr(cause)
    assert "'gather' cannot read a large message sent to it (from a fan-in)" in str(cause)
    assert "Resume the run from its last checkpoint" in str(cause)


@executor(id="fan")
async def fan(n: int) -> Blob:
    return Blob("fan", bytes([n]) * 8192)


@executor(id="left_half")
async def left_half(b: Blob) -> bytes:
    return b.data[: len(b.data) // 2]


@executor(id="right_half")
async def right_half(b: Blob) -> bytes:
    return b.data[len(b.data) // 2 :] + b"!"


@executor(id="joined")
async def joined(parts: list[bytes]) -> str:
    return f"{sorted(len(p) for p in parts)} {parts[0][:1].hex()}"


@pytest.mark.parametrize("scheduling", ["superstep", "eager"])
async def test_held_messages_in_both_scheduling_modes(
    ray_cluster: RayCluster, scheduling: str
) -> None:
    def build() -> Any:
        return (
            WorkflowBuilder(start=fan, types=[Blob], scheduling=scheduling)
            .add_fan_out_edges(fan, [left_half, right_half])
            .add_fan_in_edges([left_half, right_half], joined)
            .build()
        )

    local = await build().run(5, backend=LocalBackend())
    remote = await build().run(5, backend=RayBackend(large_message_bytes=1024))
    assert remote.status is RunStatus.COMPLETED, remote.error
    assert remote.outputs == local.outputs == ["[4096, 4097] 05"]


async def test_spans_name_the_held_message_type(ray_cluster: RayCluster) -> None:
    from opentelemetry import trace  # noqa: F401 - OpenTelemetry in use

    from tests.workflow.test_telemetry import Telemetry

    telemetry = Telemetry()
    wf = (
        WorkflowBuilder(start=make, types=[Blob], observers=[telemetry.observer])
        .add_edge(make, Sizes())
        .build()
    )
    result = await wf.run(3, backend=RayBackend(large_message_bytes=1024))
    assert result.outputs == ["blob3: 12288 bytes of 03"]
    types = {
        span.attributes["ledgerflow.executor.id"]: span.attributes["ledgerflow.message.types"]
        for span in telemetry.spans("executor.process")
    }
    assert types == {"make": ("int",), "sizes": ("Blob",)}
