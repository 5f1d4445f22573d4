"""The spec format as pydantic models: one source for validation and for the JSON Schema.

A spec is data a person writes, reviews and versions (see ``load_spec``). Everything it
names (clients, agents, executors, functions) is a plain string resolved by the loader;
nothing in it is code. Models forbid unknown keys and are strict about types, so a typo or
a number written as text is an error naming its place in the document, not a silent default.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from workflow import GraphValidationError

__all__ = (
    "KINDS",
    "AgentSpec",
    "ClientSpec",
    "EdgeSpec",
    "ExecutorSpec",
    "SpecError",
    "SpecModel",
    "TerminationSpec",
    "spec_json_schema",
)

KINDS = ("graph", "magentic", "group_chat", "sequential", "concurrent", "handoff")


class SpecError(GraphValidationError):
    """A spec is malformed or names something unknown; the message names the place and the fix.

    Attributes:
        path: Where in the document (``agents.coder.client``), or ``""`` for the whole spec.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
ImportPath = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)

    def _one_of(self, *fields: str) -> None:
        given = [f for f in fields if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(fields)} (got {given or 'none'})")


# -- clients -----------------------------------------------------------------------------------
class OpenAIClientSpec(_Strict):
    """An OpenAI-compatible endpoint. The key is read from the variable ``api_key_env`` names."""

    type: Literal["openai"]
    model: str = Field(min_length=1)
    base_url: str | None = None
    api_key_env: EnvName | None = Field(
        None,
        description="Name of the environment variable holding the key (default "
        "OPENAI_API_KEY); never the key itself.",
    )
    timeout: float | None = Field(None, gt=0)
    max_retries: int | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)


class ToolCallSpec(_Strict):
    """A scripted tool call; ``arguments`` is a JSON object or its text."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class UsageSpec(_Strict):
    input_tokens: int = Field(0, ge=0)
    output_tokens: int = Field(0, ge=0)


class ReplySpec(_Strict):
    """A scripted reply with more than text: tool calls, usage, a finish reason."""

    text: str = ""
    tool_calls: list[ToolCallSpec] = Field(default_factory=list)
    usage: UsageSpec | None = None
    finish_reason: str | None = None


class ScriptedClientSpec(_Strict):
    """Replies in order (deterministic, offline), or a named function of the messages."""

    type: Literal["scripted"]
    replies: list[str | ReplySpec] | None = None
    function: Name | None = None
    model: str = "scripted"

    @model_validator(mode="after")
    def _replies_or_function(self) -> ScriptedClientSpec:
        self._one_of("replies", "function")
        return self


ClientSpec = Annotated[OpenAIClientSpec | ScriptedClientSpec, Field(discriminator="type")]


# -- agents and executors ----------------------------------------------------------------------
class AgentSpec(_Strict):
    """A chat agent: a model (``client``), instructions and tools (function names); or a
    function agent: a named ``function`` of the messages that returns the reply."""

    description: str = ""
    instructions: str = ""
    client: Name | None = None
    function: Name | None = None
    tools: list[Name] = Field(default_factory=list)
    max_tool_iterations: int = Field(10, ge=0)
    max_tokens: int | None = Field(None, ge=1, description="Output tokens per model request.")

    @model_validator(mode="after")
    def _client_or_function(self) -> AgentSpec:
        self._one_of("client", "function")
        if self.function is not None and (self.tools or self.instructions):
            raise ValueError(
                "a function agent takes no instructions or tools (its function answers)"
            )
        return self


class CodeSpec(_Strict):
    """A sandboxed Python runner (``CodeExecutor``); the sandbox limits of ``SandboxConfig``."""

    timeout: float = Field(60, gt=0)
    cpu_seconds: int | None = Field(None, ge=1)
    memory_bytes: int | None = Field(None, ge=1)
    file_size_bytes: int | None = Field(None, ge=1)
    max_processes: int | None = Field(None, ge=1)
    max_open_files: int | None = Field(None, ge=1)
    output_limit_bytes: int | None = Field(None, ge=1)
    tmp_bytes: int | None = Field(None, ge=1)
    network: bool = False
    isolation: Literal["auto", "bubblewrap", "unshare", "none"] = "auto"
    python: str | None = Field(None, description="Interpreter path (default: this Python).")


class HumanSpec(_Strict):
    """A person in the loop (``HumanExecutor``)."""

    name: str | None = None
    human_input_mode: Literal["ALWAYS", "TERMINATE", "NEVER"] = "ALWAYS"
    max_consecutive_auto_reply: int | None = Field(None, ge=0)
    default_auto_reply: str = ""


class RetrySpec(_Strict):
    """Retries of a failing node (``RetryPolicy``): delays grow by ``backoff`` up to
    ``max_delay``."""

    max_attempts: int = Field(3, ge=1)
    initial_delay: float = Field(0.5, ge=0)
    backoff: float = Field(2.0, ge=1)
    max_delay: float = Field(30.0, ge=0)


class ExecutorSpec(_Strict):
    """One node: an agent of ``agents``, a named function (or executor), code, a person, or a
    whole workflow (a spec of its own, nested as one node)."""

    agent: Name | None = None
    function: Name | None = None
    code: CodeSpec | None = None
    human: HumanSpec | None = None
    workflow: SpecModel | None = None
    description: str | None = Field(
        None, description="What the node does, for the team (a Magentic manager reads it)."
    )
    timeout: float | None = Field(None, gt=0, description="Seconds per invocation.")
    retry: RetrySpec | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> ExecutorSpec:
        self._one_of("agent", "function", "code", "human", "workflow")
        return self


class CaseSpec(_Strict):
    """A switch case: the first whose ``when`` holds wins; the one without ``when`` is the
    default."""

    when: Name | None = None
    to: Name


class EdgeSpec(_Strict):
    """``from`` -> ``to``: one target (optionally ``when``), several (fan-out, optionally
    ``select``), several sources (fan-in), or ``cases`` (switch)."""

    from_: Name | list[Name] = Field(alias="from")
    to: Name | list[Name] | None = None
    when: Name | None = None
    select: Name | None = None
    cases: list[CaseSpec] | None = None

    @model_validator(mode="after")
    def _shape(self) -> EdgeSpec:
        self._one_of("to", "cases")
        if isinstance(self.from_, list) and (self.when or self.select or self.cases):
            raise ValueError("a fan-in edge (several sources) takes no when, select or cases")
        if self.when is not None and not isinstance(self.to, str):
            raise ValueError("when applies to an edge with one target; use cases to branch")
        if self.select is not None and not isinstance(self.to, list):
            raise ValueError("select applies to a fan-out edge (to: a list of targets)")
        return self


# -- team options ------------------------------------------------------------------------------
class TextMentionSpec(_Strict):
    text: str = Field(min_length=1)
    sources: list[Name] | None = None


class TerminationSpec(_Strict):
    """One condition, or ``any``/``all`` of several; exactly one key."""

    max_messages: int | None = Field(None, ge=1)
    text_mention: str | TextMentionSpec | None = None
    token_budget: int | None = Field(None, ge=1)
    timeout: float | None = Field(None, gt=0)
    handoff_to: Name | None = None
    source_match: list[Name] | None = None
    function_call_made: Name | bool | None = Field(
        None, description="A tool name, or true for any tool call."
    )
    function: Name | None = Field(None, description="A named function of the conversation.")
    any: list[TerminationSpec] | None = None
    all: list[TerminationSpec] | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> TerminationSpec:
        self._one_of(*type(self).model_fields)
        return self


class SelectorSpec(_Strict):
    """Who speaks next in a group chat: a model (``client``) or a named function."""

    client: Name | None = None
    function: Name | None = None
    attempts: int = Field(3, ge=1)
    allow_repeated_speaker: bool = True
    history_window: int = Field(20, ge=1)

    @model_validator(mode="after")
    def _client_or_function(self) -> SelectorSpec:
        self._one_of("client", "function")
        return self


class ManagerSpec(_Strict):
    """The Magentic manager: the standard LLM-driven one on ``client``, or a named one."""

    client: Name | None = None
    function: Name | None = Field(
        None, description="A MagenticManager, or a function of no arguments returning one."
    )
    max_ledger_retries: int = Field(3, ge=0)

    @model_validator(mode="after")
    def _client_or_function(self) -> ManagerSpec:
        self._one_of("client", "function")
        return self


# -- the document ------------------------------------------------------------------------------
class _Base(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    imports: dict[Name, ImportPath] = Field(
        default_factory=dict,
        description="Function name -> 'package.module:attr'; loaded only with allow_imports=True.",
    )
    clients: dict[Name, ClientSpec] = Field(default_factory=dict)
    agents: dict[Name, AgentSpec] = Field(default_factory=dict)
    executors: dict[Name, ExecutorSpec] = Field(default_factory=dict)


class _Team(_Base):
    participants: list[Name] | None = Field(
        None, description="Agent or executor names in order (default: all agents, then executors)."
    )


class GraphSpec(_Base):
    kind: Literal["graph"]
    start: Name
    edges: list[EdgeSpec] = Field(default_factory=list)
    max_supersteps: int | None = Field(None, ge=1)
    scheduling: Literal["superstep", "eager"] = Field(
        "superstep",
        description="'eager' runs an executor as soon as a message for it is committed.",
    )


class MagenticSpec(_Team):
    kind: Literal["magentic"]
    manager: ManagerSpec
    max_round_count: int = Field(20, ge=1)
    max_stall_count: int = Field(3, ge=0)
    max_reset_count: int = Field(2, ge=0)
    plan_review: bool = False
    human_guidance_on_stall: bool = False
    token_budget: int | None = Field(None, ge=1)
    time_budget: float | None = Field(None, gt=0)


class GroupChatSpec(_Team):
    kind: Literal["group_chat"]
    selector: Literal["round_robin"] | SelectorSpec = "round_robin"
    termination: TerminationSpec | None = None
    max_rounds: int | None = Field(None, ge=1)
    manager_name: Name = "manager"
    max_supersteps: int | None = Field(None, ge=1)


class SequentialSpec(_Team):
    kind: Literal["sequential"]


class ConcurrentSpec(_Team):
    kind: Literal["concurrent"]
    aggregator: Name | None = Field(
        None, description="An agent (gets the task and the replies) or a function of the replies."
    )


class HandoffSpec(_Team):
    kind: Literal["handoff"]
    handoffs: dict[Name, list[Name]] = Field(default_factory=dict)
    start: Name | None = None
    termination: TerminationSpec | None = None
    max_supersteps: int | None = Field(None, ge=1)


SpecModel = Annotated[
    GraphSpec | MagenticSpec | GroupChatSpec | SequentialSpec | ConcurrentSpec | HandoffSpec,
    Field(discriminator="kind"),
]


# ExecutorSpec nests whole specs (a workflow as one node): resolve that cycle now.
_RECURSIVE: tuple[type[BaseModel], ...] = (
    ExecutorSpec,
    GraphSpec,
    MagenticSpec,
    GroupChatSpec,
    SequentialSpec,
    ConcurrentSpec,
    HandoffSpec,
)
for _model in _RECURSIVE:
    _model.model_rebuild()


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec document, for editors and UIs."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(SpecModel).json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Ledgerflow workflow spec"
    return schema
