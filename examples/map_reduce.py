"""Map-reduce with fan-out and fan-in: split, count words in parallel, merge.

Run: .venv/bin/python examples/map_reduce.py
"""

from __future__ import annotations

import sys
from collections import Counter

import anyio

from builders import WorkflowBuilder
from workflow import Executor, RunStatus, events, executor

TEXT = """It was the best of times, it was the worst of times, it was the age of wisdom,
it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity"""

MAPPERS = 3


@executor
async def split(text: str) -> list[str]:
    return text.split()


def mapper(i: int) -> Executor:
    async def count_slice(words: list[str]) -> dict[str, int]:
        await anyio.sleep(0.01)  # mappers run concurrently in one superstep
        return dict(Counter(w.strip(",.").lower() for w in words[i::MAPPERS]))

    return executor(id=f"map{i}")(count_slice)


@executor
async def reduce(partials: list[dict[str, int]]) -> list[tuple[str, int]]:
    """A fan-in target gets one list, ordered as the sources were given."""
    total: Counter[str] = Counter()
    for part in partials:
        total.update(part)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:5]


mappers = [mapper(i) for i in range(MAPPERS)]
workflow = (
    WorkflowBuilder(start=split, name="map_reduce")
    .add_fan_out_edges(split, mappers)
    .add_fan_in_edges(mappers, reduce)
    .build()
)


async def main() -> RunStatus:
    """Runs the map-reduce once, printing each superstep; returns how the run ended."""
    finished = RunStatus.FAILED
    async for event in workflow.run_stream(TEXT):
        match event:
            case events.SuperstepStarted(superstep=n, executor_ids=ids):
                print(f"superstep {n}: {', '.join(ids)}")
            case events.OutputEmitted(data=top):
                print("top words:", top)
            case events.RunFinished(status=status, error=error):
                finished = status
                if error is not None:
                    print(f"run {status.value}: {error}")
    return finished


if __name__ == "__main__":
    sys.exit(0 if anyio.run(main) is RunStatus.COMPLETED else 1)
