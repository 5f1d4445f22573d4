"""Workflows the diagram tests draw: every edge kind, node kinds, nesting and awkward ids."""

from __future__ import annotations

from typing import Any

from builders import WorkflowBuilder
from workflow import (
    Case,
    Default,
    Executor,
    Workflow,
    WorkflowContext,
    executor,
    handler,
    response_handler,
)


class Agent(Executor):
    """Stands in for an agent node: only ``kind`` matters to the diagrams."""

    kind = "agent"

    @handler
    async def reply(self, text: str, ctx: WorkflowContext[str]) -> str:
        return text + "!"


class Search(Executor):
    kind = "tool"

    @handler
    async def look(self, text: str) -> str:
        return text.upper()


class Approve(Executor):
    """A human step: asks for input, forwards the answer."""

    kind = "human"

    @handler
    async def ask(self, n: int, ctx: WorkflowContext[str]) -> None:
        await ctx.request_info(f"approve {n}?", response_type=str)

    @response_handler
    async def answered(self, request: str, answer: str, ctx: WorkflowContext[str]) -> str:
        return answer


class SubWorkflow(Executor):
    """Stands in for ``executors.WorkflowExecutor``: kind "workflow" and ``.workflow``."""

    kind = "workflow"

    def __init__(self, workflow: Workflow, id: str) -> None:
        super().__init__(id)
        self.workflow = workflow

    @handler
    async def run_child(self, text: str) -> str:
        result = await self.workflow.run(text)
        return str(result.output)


def passthrough(eid: str) -> Executor:
    async def step(text: str) -> str:
        return text

    return executor(id=eid)(step)


def is_long(n: int) -> bool:
    return n > 10


def pipeline() -> Workflow:
    """Fan-out, fan-in, a switch with cases and default, a condition, a cycle, node kinds."""

    @executor(id="parse")
    async def parse(text: str) -> str:
        return text

    @executor(id="merge")
    async def merge(parts: list[str]) -> str:
        return "+".join(parts)

    @executor(id="score")
    async def score(text: str) -> int:
        return len(text)

    @executor(id="publish")
    async def publish(n: int) -> str:
        return f"published {n}"

    @executor(id="fix")
    async def fix(n: int) -> str:
        if n == 6:
            raise ValueError(f"cannot fix {n}")
        return f"fixed {n}"

    writer, reviewer = Agent("writer"), Agent("reviewer")
    search, approve = Search("search"), Approve("approve")
    return (
        WorkflowBuilder(start=parse, name="review pipeline")
        .add_fan_out_edges(parse, [writer, search])
        .add_fan_in_edges([writer, search], merge)
        .add_edge(merge, score)
        .add_switch_case_edge_group(
            score,
            [
                Case(is_long, publish),
                Case(lambda n: n < 5, approve),
                Default(fix),
            ],
        )
        .add_edge(publish, reviewer)
        .add_edge(
            reviewer,
            parse,
            condition=lambda text: text.endswith("again!"),
        )
        .build()
    )


def nested() -> Workflow:
    """A sub-workflow inside a sub-workflow, with a loop in the innermost one."""
    draft, critique, final = passthrough("draft"), passthrough("critique"), passthrough("final")
    inner = (
        WorkflowBuilder(start=draft, name="inner loop")
        .add_edge(draft, critique)
        .add_edge(critique, final, condition=lambda text: len(text) > 3)
        .add_edge(critique, draft)
        .build()
    )
    intro, refine, outro = passthrough("intro"), SubWorkflow(inner, "refine"), passthrough("outro")
    middle = WorkflowBuilder(start=intro, name="middle").add_chain([intro, refine, outro]).build()
    first, write, last = passthrough("first"), SubWorkflow(middle, "write"), passthrough("last")
    return WorkflowBuilder(start=first, name="outer").add_chain([first, write, last]).build()


AWKWARD_IDS = (
    'say "hi"',
    "two words",
    "a:b",
    "back\\slash\\",
    "<b>bold</b>",
    "end",
    "graph",
    "node",
    "subgraph",
    "o",
    "x-ray",
    "42",
    "élan ✍",
    "a|b",
    "#hash;",
    "a_b",
    "a b",
)


def awkward() -> Workflow:
    """A chain through ids that break naive DOT or Mermaid quoting."""
    nodes = [passthrough(eid) for eid in AWKWARD_IDS]
    return WorkflowBuilder(start=nodes[0], name='odd "names" \\N').add_chain(nodes).build()


def selected() -> Workflow:
    """A fan-out with a selection function."""
    source, a, b = passthrough("source"), passthrough("left"), passthrough("right")

    def route(text: str, targets: list[str]) -> Any:
        return targets[:1]

    return (
        WorkflowBuilder(start=source, name="selected")
        .add_fan_out_edges(source, [a, b], selection_func=route)
        .build()
    )
