"""Builders assemble graphs and return ordinary ``workflow.Workflow`` objects: explicit graphs
(``WorkflowBuilder``), Magentic teams and conversation patterns, in code or from a declarative
spec (``load_spec``; ``dump_spec`` writes any of them back as one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflow.authoring import lazy_exports

from ._workflow_builder import WorkflowBuilder

if TYPE_CHECKING:
    from ._concurrent import ConcurrentBuilder
    from ._group_chat import (
        GroupChatBuilder,
        GroupChatManager,
        LLMSelector,
        Selection,
        SpeakerSelected,
        SpeakerSelectionError,
        SpeakerSelector,
    )
    from ._handoff import HandoffBuilder, HandoffError
    from ._magentic import MagenticBuilder
    from ._participant import Conversation
    from ._participant_node import Participant
    from ._sequential import SequentialBuilder
    from ._spec_dump import dump_spec
    from ._spec_load import load_spec
    from ._spec_schema import SpecError
    from ._termination import (
        AllOf,
        AnyOf,
        ConversationFinished,
        ConversationView,
        External,
        FunctionCallMade,
        FunctionCondition,
        HandoffTo,
        MaxMessages,
        SourceMatch,
        TerminationCondition,
        TextMention,
        Timeout,
        TokenBudget,
    )
    from ._two_agent import two_agent_chat, two_agent_workflow

# The team builders pull in the agent layer (pydantic models, chat clients): load them on
# first use so that `import builders` for explicit graphs stays cheap.
_LAZY = {
    "AllOf": "._termination",
    "AnyOf": "._termination",
    "ConcurrentBuilder": "._concurrent",
    "Conversation": "._participant",
    "ConversationFinished": "._termination",
    "ConversationView": "._termination",
    "External": "._termination",
    "FunctionCallMade": "._termination",
    "FunctionCondition": "._termination",
    "GroupChatBuilder": "._group_chat",
    "GroupChatManager": "._group_chat",
    "HandoffBuilder": "._handoff",
    "HandoffError": "._handoff",
    "HandoffTo": "._termination",
    "LLMSelector": "._group_chat",
    "MagenticBuilder": "._magentic",
    "MaxMessages": "._termination",
    "Participant": "._participant_node",
    "Selection": "._group_chat",
    "SequentialBuilder": "._sequential",
    "SpecError": "._spec_schema",
    "SourceMatch": "._termination",
    "SpeakerSelected": "._group_chat",
    "SpeakerSelectionError": "._group_chat",
    "SpeakerSelector": "._group_chat",
    "TerminationCondition": "._termination",
    "TextMention": "._termination",
    "Timeout": "._termination",
    "TokenBudget": "._termination",
    "dump_spec": "._spec_dump",
    "load_spec": "._spec_load",
    "two_agent_chat": "._two_agent",
    "two_agent_workflow": "._two_agent",
}


__getattr__ = lazy_exports(__name__, _LAZY, globals())

__all__ = (
    "AllOf",
    "AnyOf",
    "ConcurrentBuilder",
    "Conversation",
    "ConversationFinished",
    "ConversationView",
    "External",
    "FunctionCallMade",
    "FunctionCondition",
    "GroupChatBuilder",
    "GroupChatManager",
    "HandoffBuilder",
    "HandoffError",
    "HandoffTo",
    "LLMSelector",
    "MagenticBuilder",
    "MaxMessages",
    "Participant",
    "Selection",
    "SequentialBuilder",
    "SourceMatch",
    "SpeakerSelected",
    "SpeakerSelectionError",
    "SpeakerSelector",
    "SpecError",
    "TerminationCondition",
    "TextMention",
    "Timeout",
    "TokenBudget",
    "WorkflowBuilder",
    "dump_spec",
    "load_spec",
    "two_agent_chat",
    "two_agent_workflow",
)
