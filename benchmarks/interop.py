"""Interop costs, one JSON line per workload (``python benchmarks/interop.py [WORKLOAD N]``).

* ``mcp_call``: N tool calls, one at a time, from ``MCPTools`` to ``ledgerflow mcp`` serving
  the one-node ``echo`` workflow below over stdio (each call runs the workflow in the server).
* ``as_agent``: N runs of a graph whose only node is a one-node workflow ``as_agent``, against
  N runs of that workflow alone (the price of nesting: a child run per message).
* ``import``: ``import executors`` in a fresh process (no interop SDK loads).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import anyio

from builders import WorkflowBuilder
from workflow import executor


@executor(id="upper")
def upper(text: str) -> str:
    return text.upper()


echo = WorkflowBuilder(start=upper, name="echo").build()


async def mcp_call(n: int) -> dict[str, Any]:
    from executors import MCPTools

    command = [sys.executable, "-m", "workflow.cli", "mcp", f"{__file__}:echo"]
    started = time.perf_counter()
    async with MCPTools([*command, "--store", "memory://"]) as tools:
        ready = time.perf_counter() - started
        (tool,) = [t for t in tools if t.name == "echo"]
        begin = time.perf_counter()
        for i in range(n):
            outcome = await tool.invoke(json.dumps({"input": f"call {i}"}))
            assert outcome.text == f"CALL {i}", outcome
        seconds = time.perf_counter() - begin
    per_call = round(1000 * seconds / n, 2)
    return {"connect_s": round(ready, 3), "seconds": round(seconds, 3), "per_call_ms": per_call}


async def as_agent(n: int) -> dict[str, Any]:
    import executors  # noqa: F401 - registers the as_agent adapters

    agent = echo.as_agent("echo-agent")
    outer = WorkflowBuilder(start=agent, name="outer").build()
    for i in range(20):  # warm up both paths (thread pool, dispatch caches)
        await echo.run(f"w{i}")
        await outer.run(f"w{i}")
    begin = time.perf_counter()
    for i in range(n):
        await echo.run(f"x{i}")
    plain = time.perf_counter() - begin
    begin = time.perf_counter()
    for i in range(n):
        result = await outer.run(f"x{i}")
        assert result.outputs[0].text == f"X{i}", result
    nested = time.perf_counter() - begin
    return {
        "plain_s": round(plain, 3),
        "as_agent_s": round(nested, 3),
        "per_run_us": {"plain": round(1e6 * plain / n, 1), "as_agent": round(1e6 * nested / n, 1)},
    }


def import_cost(n: int) -> dict[str, Any]:
    code = "import time; t = time.perf_counter(); import executors; print(time.perf_counter() - t)"
    run = [sys.executable, "-c", code]
    times = sorted(
        float(subprocess.run(run, capture_output=True, text=True, check=True).stdout)
        for _ in range(n)
    )
    return {"median_s": round(times[len(times) // 2], 3)}


WORKLOADS = {"mcp_call": (mcp_call, 200), "as_agent": (as_agent, 1000), "import": (import_cost, 5)}


def main() -> None:
    chosen = [sys.argv[1]] if len(sys.argv) > 1 else list(WORKLOADS)
    for name in chosen:
        fn, default_n = WORKLOADS[name]
        n = int(sys.argv[2]) if len(sys.argv) > 2 else default_n
        result = anyio.run(fn, n) if name != "import" else fn(n)
        print(json.dumps({"workload": name, "n": n, **result}))


if __name__ == "__main__":
    main()
