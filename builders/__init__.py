"""Builders assemble graphs and return ordinary ``workflow.Workflow`` objects: explicit graphs
(``WorkflowBuilder``), Magentic teams and conversation patterns."""

from __future__ import annotations

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
from ._sequential import Conversation, Participant, SequentialBuilder
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
from ._workflow_builder import WorkflowBuilder

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
    "TerminationCondition",
    "TextMention",
    "Timeout",
    "TokenBudget",
    "WorkflowBuilder",
    "two_agent_chat",
    "two_agent_workflow",
)
