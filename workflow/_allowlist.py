"""The checkpoint allowlist of a workflow: every type its values may be decoded as.

Built from the workflow's own handler annotations (inputs, outputs, responses), the types
executors declare for their checkpointed state, the workflow's extra ``types`` and those of
nested workflows. Loading a checkpoint or a backend's wire message never imports or calls
anything outside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._history import Breakpoint
from ._runstate import Reply
from ._serde import TypeRegistry

if TYPE_CHECKING:
    from ._workflow import Workflow

__all__ = ("registry_for",)


def registry_for(wf: Workflow) -> TypeRegistry:
    """The allowlist of one workflow: its handlers' types, nested workflows', and extras."""
    cached = getattr(wf, "_registry", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    registry = TypeRegistry([Reply, Breakpoint])
    seen: set[int] = set()

    def add(tp: Any) -> None:
        if isinstance(tp, type) and tp not in registry:
            try:
                registry.register(tp)
            except TypeError:
                pass  # builtins, protocols, plain classes: not registrable, not needed

    def walk(workflow: Workflow) -> None:
        if id(workflow) in seen:
            return
        seen.add(id(workflow))
        for tp in workflow.types:
            add(tp)
        for ex in workflow.executors.values():
            for spec in ex.handler_specs():
                for group in (spec.input_types, spec.output_types, spec.response_types):
                    for tp in group or ():
                        add(tp)
            for tp in ex.checkpoint_types():
                add(tp)
            child = getattr(ex, "workflow", None)
            if child is not None and hasattr(child, "executors"):
                walk(child)

    walk(wf)
    wf._registry = registry
    return registry
