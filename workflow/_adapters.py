"""``Workflow.as_agent`` and ``Workflow.as_tool``: a workflow dressed as an agent or a tool.

The core cannot import ``executors`` (the layering rule), yet an agent or a tool is an
``executors`` notion. So the core only defines the two descriptors, frozen records of *which*
workflow under *which* name, and ``executors`` registers how to adapt them when it is imported
(it always is by then: agents, tools and team builders all come from there). Builders and
``ChatAgent`` recognise the descriptors wherever they accept an agent or a tool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._errors import WorkflowError

if TYPE_CHECKING:
    from ._executor import Executor
    from ._workflow import Workflow

__all__ = ("WorkflowAgent", "WorkflowTool", "register_adapter")

AdapterKind = Literal["executor", "run", "tool"]
_ADAPTERS: dict[AdapterKind, Callable[..., Any]] = {}


def register_adapter(kind: AdapterKind, adapter: Callable[..., Any]) -> None:
    """Install how ``executors`` turns a descriptor into a node, an answer or a tool."""
    _ADAPTERS[kind] = adapter


def _adapter(kind: AdapterKind, what: object) -> Callable[..., Any]:
    found = _ADAPTERS.get(kind)
    if found is None:
        raise WorkflowError(
            f"{what!r} needs the executors package to act as an agent or tool; "
            "`import executors` first (any team builder or ChatAgent does)"
        )
    return found


def _check(workflow: object, name: object, description: object, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise WorkflowError(f"{what} needs a non-empty name, got {name!r}")
    if not isinstance(description, str):
        raise WorkflowError(f"{what} {name!r}: description must be a str, got {description!r}")


@dataclass(frozen=True, slots=True)
class WorkflowAgent:
    """A workflow usable wherever an agent is (returned by ``Workflow.as_agent``).

    Each message it gets starts a child run of ``workflow`` inside the caller's run: the
    child's events stream through, its requests for input become the caller's, and it
    checkpoints with the caller. Its outputs become the agent's reply.
    """

    workflow: Workflow
    name: str
    description: str = ""

    def __post_init__(self) -> None:
        _check(self.workflow, self.name, self.description, "Workflow.as_agent")

    def as_executor(self) -> Executor:
        """The node that runs this agent in a workflow (builders call this)."""
        node: Executor = _adapter("executor", self)(self)
        return node

    async def run(self, messages: list[Any]) -> Any:
        """Answer ``messages`` (``list[ChatMessage]``) with an ``AgentResponse``, outside a
        workflow; a run that stops to ask a person raises."""
        return await _adapter("run", self)(self, messages)


@dataclass(frozen=True, slots=True)
class WorkflowTool:
    """A workflow usable as a tool in ``ChatAgent(tools=...)`` (``Workflow.as_tool``).

    Its arguments schema comes from the start executor's input type; a call runs the
    workflow to its end and answers with its outputs.
    """

    workflow: Workflow
    name: str
    description: str = ""
    approval_mode: Literal["never_require", "always_require"] = "never_require"

    def __post_init__(self) -> None:
        _check(self.workflow, self.name, self.description, "Workflow.as_tool")

    def as_tool(self) -> Any:
        """The ``executors.Tool`` that calls the workflow (``ChatAgent`` calls this)."""
        return _adapter("tool", self)(self)
