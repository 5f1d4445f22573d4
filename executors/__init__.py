"""Node kinds: chat clients and agents, tools, sandboxed code execution, human input,
sub-workflows and the Magentic orchestrator, all built on ``workflow.Executor``."""

from __future__ import annotations

__all__: tuple[str, ...] = ()
