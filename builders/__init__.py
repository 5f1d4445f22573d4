"""Builders assemble graphs and return ordinary ``workflow.Workflow`` objects: explicit graphs
(``WorkflowBuilder``), Magentic teams and conversation patterns."""

from __future__ import annotations

from ._magentic import MagenticBuilder
from ._workflow_builder import WorkflowBuilder

__all__ = ("MagenticBuilder", "WorkflowBuilder")
