"""Child-process script for the durability tests: runs or resumes one workflow, then reports.

Usage::

    python tests/workflow/crash_worker.py WORKFLOW STORE_URL RUN_ID [--log PATH] [--go PATH]
        [--respond REQUEST_ID=JSON ...] [--checkpoint CHECKPOINT_ID]

``WORKFLOW`` is one of :data:`WORKFLOWS`. The script prints ``READY`` once it is about to start
(so a test can time a kill from there), then ``RESULT <json>`` (status, outputs, pending
requests, error) or ``ERROR <json>`` (an exception escaped ``run``/``resume``; exit code 1).
Without a checkpoint in the store for ``RUN_ID`` it starts the run, else it resumes it.

The tests import the same builders, so "a freshly built workflow in a new process" is the very
definition the first process ran.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import anyio

from builders import WorkflowBuilder
from executors import WorkflowExecutor
from workflow import (
    Case,
    Default,
    Executor,
    RunResult,
    Workflow,
    WorkflowContext,
    handler,
    response_handler,
    store_from_url,
)
from workflow._durable import FAILURE_KEY, registry_for
from workflow._serde import decode

# --------------------------------------------------------------------------- side effects


def side_effect(log: str, executor_id: str, superstep: int) -> int:
    """Append ``"<executor_id> <superstep> <attempt>"`` to ``log``, durably; return the attempt.

    The attempt counts earlier lines of the same (executor, superstep), so it is 1 the first
    time a key runs and n on its n-th execution. The line is fsynced before returning, so a
    SIGKILL right after it still leaves it on disk.
    """
    prefix = f"{executor_id} {superstep} "
    try:
        lines = Path(log).read_text().splitlines()
    except FileNotFoundError:
        lines = []
    attempt = 1 + sum(line.startswith(prefix) for line in lines)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{prefix}{attempt}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return attempt


def read_log(log: str) -> list[tuple[str, int, int]]:
    """The side-effect log as ``(executor_id, superstep, attempt)`` lines, in order."""
    try:
        text = Path(log).read_text()
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        eid, step, attempt = line.split(" ")
        out.append((eid, int(step), int(attempt)))
    return out


def marker_key(executor_id: str, superstep: int) -> str:
    """The run-state key under which an executor records which attempt produced its result."""
    return f"m {executor_id} {superstep}"


# --------------------------------------------------------------------------- the crash workflow

ROUNDS = 13
"""Rounds of head -> fan-out to three workers -> fan-in join: 3 supersteps each, + done = 40."""
SUPERSTEPS = 3 * ROUNDS + 1
WORKERS = (("w0", 0.001, 0.006), ("w1", 0.008, 0.02), ("w2", 0.02, 0.045))


@dataclass(frozen=True)
class Part:
    """One worker's share of a round."""

    round: int
    executor_id: str
    value: int


class Head(Executor):
    """Starts a round (superstep 3r+1) and fans its number out to the workers."""

    def __init__(self, log: str) -> None:
        super().__init__("head")
        self.log = log

    @handler
    async def on_round(self, r: int, ctx: WorkflowContext[int]) -> int:
        step = 3 * r + 1
        await ctx.set_executor_state("rounds", await ctx.get_executor_state("rounds", 0) + 1)
        await ctx.set_state(marker_key(self.id, step), side_effect(self.log, self.id, step))
        return r


class Worker(Executor):
    """Superstep 3r+2: sleeps a seeded while (siblings finish at different times), reports."""

    def __init__(self, executor_id: str, low: float, high: float, log: str) -> None:
        super().__init__(executor_id)
        self.low, self.high, self.log = low, high, log

    @handler
    async def on_round(self, r: int, ctx: WorkflowContext[Part]) -> Part:
        step = 3 * r + 2
        rounds = await ctx.get_state("head rounds", 0)  # read what join committed
        await anyio.sleep(random.Random(f"{self.id}/{r}").uniform(self.low, self.high))
        value = (r + 1) * (int(self.id[1:]) + 2) + rounds
        if self.id == "w1":
            await ctx.yield_output(f"w1@{r}={value}")
        await ctx.set_state(marker_key(self.id, step), side_effect(self.log, self.id, step))
        return Part(r, self.id, value)


class Join(Executor):
    """Superstep 3r+3: the fan-in of the three workers; adds up run-wide state."""

    def __init__(self, log: str) -> None:
        super().__init__("join")
        self.log = log

    @handler
    async def on_parts(self, parts: list[Part], ctx: WorkflowContext[int]) -> int:
        r = parts[0].round
        step = 3 * r + 3
        assert [p.executor_id for p in parts] == [w[0] for w in WORKERS]
        assert {p.round for p in parts} == {r}
        total = await ctx.get_state("total", 0)
        await ctx.set_state("total", total + sum(p.value for p in parts))
        await ctx.set_state("head rounds", await ctx.get_state("head rounds", 0) + 1)
        await ctx.set_state(marker_key(self.id, step), side_effect(self.log, self.id, step))
        return r + 1


class Done(Executor):
    """Superstep 40: the final output."""

    def __init__(self, log: str) -> None:
        super().__init__("done")
        self.log = log

    @handler
    async def on_end(self, rounds: int, ctx: WorkflowContext[Any]) -> None:
        step = SUPERSTEPS
        await ctx.set_state(marker_key(self.id, step), side_effect(self.log, self.id, step))
        total = await ctx.get_state("total", 0)
        await ctx.yield_output({"rounds": rounds, "total": total})


def build_crash(store: Any, log: str, **options: Any) -> Workflow:
    """The 40-superstep workflow of the crash test."""
    head = Head(log)
    workers = [Worker(eid, low, high, log) for eid, low, high in WORKERS]
    join, done = Join(log), Done(log)
    return (
        WorkflowBuilder(start=head, name="crash", checkpoint_store=store, **options)
        .add_fan_out_edges(head, workers)
        .add_fan_in_edges(workers, join)
        .add_switch_case_edge_group(join, [Case(lambda n: n < ROUNDS, head), Default(done)])
        .build()
    )


# --------------------------------------------------------------------------- siblings


class Fast(Executor):
    """Logs and finishes at once."""

    def __init__(self, log: str) -> None:
        super().__init__("fast")
        self.log = log

    @handler
    async def on(self, x: int, ctx: WorkflowContext[str]) -> str:
        side_effect(self.log, self.id, 2)
        return f"fast:{x}"


class Gate(Executor):
    """Logs, then waits until the file ``go`` exists (forever, if nobody creates it)."""

    def __init__(self, log: str, go: str) -> None:
        super().__init__("gate")
        self.log, self.go = log, go

    @handler
    async def on(self, x: int, ctx: WorkflowContext[str]) -> str:
        side_effect(self.log, self.id, 2)
        # another process creates the file: there is no event to wait on, so poll
        while not await anyio.Path(self.go).exists():  # noqa: ASYNC110
            await anyio.sleep(0.01)
        return f"gate:{x}"


class Start(Executor):
    def __init__(self) -> None:
        super().__init__("start")

    @handler
    async def on(self, x: int, ctx: WorkflowContext[int]) -> int:
        return x


def build_siblings(store: Any, log: str, go: str) -> Workflow:
    """``start`` fans out to ``fast`` (finishes) and ``gate`` (waits for the go file)."""
    start = Start()
    return (
        WorkflowBuilder(start=start, name="siblings", checkpoint_store=store)
        .add_fan_out_edges(start, [Fast(log), Gate(log, go)])
        .build()
    )


# --------------------------------------------------------------------------- human input


@dataclass(frozen=True)
class Question:
    text: str


class Asker(Executor):
    """Asks two questions (a bool and a str) and forwards each answer."""

    def __init__(self, id: str = "asker") -> None:
        super().__init__(id)

    @handler
    async def on(self, topic: str, ctx: WorkflowContext) -> None:
        await ctx.request_info(Question(f"approve {topic}?"), response_type=bool)
        await ctx.request_info(Question(f"comment on {topic}?"), response_type=str)

    @response_handler
    async def on_bool(self, request: Question, answer: bool, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {'yes' if answer else 'no'}"

    @response_handler
    async def on_text(self, request: Question, answer: str, ctx: WorkflowContext[str]) -> str:
        return f"{request.text} -> {answer}"


class Shout(Executor):
    def __init__(self, id: str = "shout") -> None:
        super().__init__(id)

    @handler
    async def on(self, line: str, ctx: WorkflowContext[str]) -> str:
        return line.upper()


def build_human(store: Any) -> Workflow:
    asker = Asker()
    return (
        WorkflowBuilder(start=asker, name="human", checkpoint_store=store)
        .add_edge(asker, Shout())
        .build()
    )


def build_nested(store: Any, levels: int = 1) -> Workflow:
    """``Asker -> shout`` nested ``levels`` deep in WorkflowExecutors, then ``shout`` again."""
    inner = build_human(None)
    for level in range(levels):
        node = WorkflowExecutor(inner, id=f"sub{level}")
        inner = (
            WorkflowBuilder(start=node, name=f"level{level}")
            .add_edge(node, Shout(f"after{level}"))
            .build()
        )
    outer = WorkflowExecutor(inner, id="outer")
    return (
        WorkflowBuilder(start=outer, name="nested", checkpoint_store=store)
        .add_edge(outer, Shout("final"))
        .build()
    )


# --------------------------------------------------------------------------- for the tests

SCRIPT = Path(__file__).resolve()


def spawn(workflow: str, store: str, run_id: str, *extra: str) -> subprocess.Popen[bytes]:
    """Start this script in a new process; wait for its ``READY`` line."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), workflow, store, run_id, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,  # unbuffered: reading READY must not swallow the report behind it
        cwd=SCRIPT.parents[2],
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != b"READY":
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"worker did not start: {line!r}\n{err.decode()}")
    return proc


def outcome(proc: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    """Wait for a worker and parse its report: ``{"result": {...}}`` or ``{"error": {...}}``."""
    raw_out, raw_err = proc.communicate(timeout=timeout)
    out, err = raw_out.decode(), raw_err.decode()
    for line in out.splitlines():
        kind, _, body = line.partition(" ")
        if kind == "RESULT":
            return {"result": json.loads(body)}
        if kind == "ERROR":
            return {"error": json.loads(body)}
    raise AssertionError(f"worker exited {proc.returncode} without a report:\n{out}\n{err}")


def run_worker(workflow: str, store: str, run_id: str, *extra: str) -> dict[str, Any]:
    """Start a worker and wait for its report."""
    return outcome(spawn(workflow, store, run_id, *extra))


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker (no cleanup of any kind runs) and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()


async def committed(url: str, run_id: str) -> tuple[dict[str, int], set[str]]:
    """What the store holds for ``run_id`` right now: attempt markers, and executors written.

    Returns:
        ``(markers, pending)``: every ``marker_key -> attempt`` in the latest checkpoint's run
        state or in one of its pending writes (each executor's result carries the attempt that
        produced it), and the executors that have a pending write after that checkpoint.
    """
    registry = registry_for(build_crash(None, ""))
    store = store_from_url(url)
    try:
        latest = await store.latest(run_id)
        if latest is None:
            return {}, set()
        state = decode(latest.data["run"]["state"], registry)
        markers = {k: v for k, v in state.items() if k.startswith("m ")}
        pending = set()
        for eid, data in (await store.get_writes(latest.id)).items():
            if eid == FAILURE_KEY:
                continue
            pending.add(eid)
            for k, v in decode(data["state"], registry).items():
                if k.startswith("m "):
                    assert k not in markers, f"{k} both checkpointed and pending"
                    markers[k] = v
        return markers, pending
    finally:
        await store.aclose()


def attempts_by_key(log: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for eid, step, attempt in read_log(log):
        out.setdefault(marker_key(eid, step), []).append(attempt)
    return out


def drive(
    url: str,
    run_id: str,
    log: str,
    rng: random.Random,
    max_delay: float,
    kills_left: int,
    *extra: str,
) -> tuple[dict[str, Any], int, int]:
    """Start ``run_id``, SIGKILL it up to ``kills_left`` times, resume until it completes.

    After each kill, reads what the store committed and checks that no result committed at
    an earlier kill changed since. Returns the final report, the kills made, and how many
    kills found pending writes (an executor committed while its siblings were still running).
    """
    ever: dict[str, int] = {}
    kills = with_pending = 0
    while True:
        proc = spawn("crash", url, run_id, "--log", log, *extra)
        try:
            if kills < kills_left:
                try:
                    proc.wait(timeout=rng.uniform(0, max_delay))
                except subprocess.TimeoutExpired:  # still running: the random point has come
                    kill(proc)
                    kills += 1
                    markers, pending = anyio.run(committed, url, run_id)
                    with_pending += bool(pending)
                    lost = set(ever) - set(markers)
                    assert not lost, f"committed results lost: {sorted(lost)}"
                    for key, attempt in markers.items():
                        assert ever.setdefault(key, attempt) == attempt, (
                            f"{key}: attempt {ever[key]} was committed, now {attempt} is: "
                            "a committed executor ran again"
                        )
                    continue
            report = outcome(proc)
        finally:
            if proc.poll() is None:
                kill(proc)
        assert "result" in report, report
        final, pending = anyio.run(committed, url, run_id)
        assert not pending
        for key, attempt in ever.items():
            assert final[key] == attempt, f"{key}: committed attempt {attempt}, final {final[key]}"
        return report["result"], kills, with_pending


def soak(url: str, base: Path, rng: random.Random, kills: int, *extra: str) -> dict[str, Any]:
    """Kill and resume crash runs on ``url`` until ``kills`` kills were made; verify each run.

    First one uninterrupted run (the reference, and the yardstick for the random delays),
    then runs ``crashed-1``, ``crashed-2``, ... each killed at random moments and resumed in
    new processes until it completes (another run starts if one finishes before the kills
    are used up). See ``test_crash.py`` for the invariant checked.

    Returns:
        ``kills``, ``with_pending`` (kills that found pending writes), ``runs``, ``repeats``
        (executions whose result a kill lost) and ``seconds``.
    """
    t0 = time.perf_counter()
    clean_log = str(base / "clean.log")
    clean = run_worker("crash", url, "clean", "--log", clean_log, *extra)["result"]
    assert clean["status"] == "completed", clean
    assert all(a == [1] for a in attempts_by_key(clean_log).values())
    max_delay = max(clean["seconds"], 0.2) / 6
    made = with_pending = repeats = runs = 0
    while made < kills:
        runs += 1
        # a run that completes before its random kill point uses no kill: bound the retries
        assert runs <= 10 * kills, f"only {made} of {kills} kills landed in {runs - 1} runs"
        run_id, log = f"crashed-{runs}", str(base / f"crashed-{runs}.log")
        result, k, pending = drive(url, run_id, log, rng, max_delay, kills - made, *extra)
        made += k
        with_pending += pending
        assert result["status"] == "completed", result
        assert result["outputs"] == clean["outputs"], (result["outputs"], clean["outputs"])
        final, _ = anyio.run(committed, url, run_id)
        executed = attempts_by_key(log)
        assert len(final) == SUPERSTEPS + 2 * ROUNDS  # 40 + two more workers a round
        assert set(executed) == set(final)
        for key, attempts in executed.items():
            assert attempts == list(range(1, len(attempts) + 1)), (key, attempts)
            assert final[key] == attempts[-1], (
                f"{key}: attempt {final[key]} is committed but attempt {attempts[-1]} ran after it"
            )
            repeats += len(attempts) - 1
    return {
        "kills": made,
        "with_pending": with_pending,
        "runs": runs,
        "repeats": repeats,
        "seconds": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------- the script

WORKFLOWS: dict[str, Callable[[Any, argparse.Namespace], Workflow]] = {
    "crash": lambda store, a: build_crash(store, a.log, durability=a.durability),
    "siblings": lambda store, a: build_siblings(store, a.log, a.go),
    "human": lambda store, a: build_human(store),
    "nested": lambda store, a: build_nested(store, 1),
    "nested2": lambda store, a: build_nested(store, 2),
}
INPUTS: dict[str, Any] = {
    "crash": 0,
    "siblings": 7,
    "human": "deploy",
    "nested": "deploy",
    "nested2": "deploy",
}


def plain(value: Any) -> Any:
    """A JSON-able form of outputs and payloads for the report line."""
    if is_dataclass(value) and not isinstance(value, type):
        return {type(value).__name__: plain(asdict(value))}
    if hasattr(value, "model_dump"):
        return {type(value).__name__: plain(value.model_dump())}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def report(result: RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "status": result.status.value,
        "outputs": plain(result.outputs),
        "pending": [
            [r.request_id, r.executor_id, plain(r.payload)] for r in result.pending_requests
        ],
        "error": None if result.error is None else str(result.error),
        "checkpoint_id": result.checkpoint_id,
    }


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workflow", choices=sorted(WORKFLOWS))
    parser.add_argument("store")
    parser.add_argument("run_id")
    parser.add_argument("--log", default=os.devnull)
    parser.add_argument("--go", default="")
    parser.add_argument("--respond", action="append", default=[])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--durability", choices=("sync", "async"), default="sync")
    args = parser.parse_args(argv)
    store = store_from_url(args.store)
    wf = WORKFLOWS[args.workflow](store, args)
    responses = {}
    for item in args.respond:
        request_id, _, value = item.partition("=")
        responses[request_id] = json.loads(value)
    say("READY")
    t0 = time.perf_counter()
    try:
        if await store.latest(args.run_id) is None:
            result = await wf.run(INPUTS[args.workflow], run_id=args.run_id)
        else:
            result = await wf.resume(
                args.run_id, checkpoint_id=args.checkpoint, responses=responses or None
            )
    except Exception as exc:
        kinds = [c.__name__ for c in type(exc).__mro__]  # e.g. RunLockedError, CheckpointError
        error = {"type": type(exc).__name__, "kinds": kinds, "message": str(exc)}
        say("ERROR " + json.dumps(error))
        return 1
    finally:
        await store.aclose()
    out = report(result)
    out["seconds"] = time.perf_counter() - t0
    say("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    # Run as the importable module, not as ``__main__``: checkpoints name their classes by
    # module (``tests.workflow.crash_worker:Part``), and the test process must read them too.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.workflow import crash_worker

    sys.exit(anyio.run(crash_worker.main, sys.argv[1:]))
