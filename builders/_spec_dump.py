"""``dump_spec``: a built ``Workflow`` back to spec data (a dict ``load_spec`` accepts).

The workflow is read, not its builder: the team kind is recognised from the nodes the
builders make (a Magentic orchestrator, a group-chat manager, conversation participants),
so a team written in Python dumps as well as one loaded from a spec. Functions are written
by name, with their import path under ``imports`` when they have one (``load_spec`` uses it
only with ``allow_imports=True``). A key is never written: only the name of the environment
variable it comes from, and a workflow whose key cannot be traced to one is refused.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from workflow import Executor, FunctionExecutor, Workflow

from ._spec_build import CLIENT_NAMES, KEY_ENV, UnsetKeyClient
from ._spec_schema import SpecError

__all__ = ("dump_spec",)

_MISSING = object()


def dump_spec(wf: Workflow) -> dict[str, Any]:
    """The spec of ``wf``: ``load_spec(dump_spec(wf), functions=...)`` runs and draws like it.

    Raises:
        SpecError: Something in ``wf`` has no spec form (a lambda, a custom client or
            executor class, an API key in no environment variable); the message says which.
    """
    return _Dumper(wf).dump()


class _Dumper:
    def __init__(self, wf: Workflow) -> None:
        self.wf = wf
        self.imports: dict[str, str] = {}
        self.functions: dict[str, Any] = {}
        self.clients: dict[str, dict[str, Any]] = {}
        self.client_names: dict[int, str] = {}
        self.agents: dict[str, dict[str, Any]] = {}
        self.agent_objects: dict[str, Any] = {}
        self.executors: dict[str, dict[str, Any]] = {}
        self._held: list[Any] = []  # keeps id() keys unique while dumping

    def dump(self) -> dict[str, Any]:
        from executors import MagenticOrchestrator

        from ._concurrent import _Dispatch
        from ._group_chat import GroupChatManager
        from ._handoff import _Handoff
        from ._participant_node import Participant
        from ._sequential import _PassAlong

        wf = self.wf
        start = wf.executors[wf.start_executor_id]
        nodes = list(wf.executors.values())
        if isinstance(start, MagenticOrchestrator):
            body = self._magentic(start)
        elif isinstance(start, GroupChatManager):
            body = self._group_chat(start)
        elif isinstance(start, _Dispatch):
            body = self._concurrent()
        elif nodes and all(isinstance(n, Participant) for n in nodes):
            policies = {type(n.policy) for n in nodes if isinstance(n, Participant)}
            if policies == {_PassAlong}:
                body = self._sequential()
            elif policies == {_Handoff}:
                body = self._handoff()
            else:
                raise SpecError("kind", f"workflow {wf.name!r} is a conversation of no known kind")
        else:
            body = self._graph()
        doc: dict[str, Any] = {"kind": body.pop("kind"), "name": wf.name}
        description = getattr(wf, "description", "")
        if description:
            doc["description"] = description
        for key, value in (
            ("imports", self.imports),
            ("clients", self.clients),
            ("agents", self.agents),
            ("executors", self.executors),
        ):
            if value:
                doc[key] = value
        doc.update(body)
        return doc

    # -- names -------------------------------------------------------------------------------
    def function(self, fn: Any, path: str, name: str | None = None) -> str:
        """The name ``fn`` is written as (recording its import path when it has one)."""
        if name is None:
            name = getattr(fn, "__name__", None)
        if not isinstance(name, str) or not name or name == "<lambda>":
            raise SpecError(
                path,
                f"{fn!r} has no name a spec can refer to (a lambda?); define it with def and "
                "pass it to load_spec as functions={name: fn}",
            )
        known = self.functions.get(name, _MISSING)
        if known is not _MISSING and known is not fn:
            raise SpecError(
                path,
                f"two different functions are named {name!r}; a spec refers to functions by "
                "name, so rename one",
            )
        self.functions[name] = fn
        module = getattr(fn, "__module__", None)
        qualname = getattr(fn, "__qualname__", None)
        if (
            isinstance(module, str)
            and isinstance(qualname, str)
            and module != "__main__"
            and "<" not in qualname
            and _resolves(module, qualname, fn)
        ):
            self.imports[name] = f"{module}:{qualname}"
        return name

    def client(self, client: Any, path: str, hint: str) -> str:
        """The name of ``client`` under ``clients`` (added on first use, named after ``hint``)."""
        from ._handoff import _StopAfterHandoff

        while isinstance(client, _StopAfterHandoff):
            client = client.client
        known = self.client_names.get(id(client))
        if known is not None:
            return known
        body = self._client_body(client, path)
        try:
            hint = CLIENT_NAMES.get(client, hint)
        except TypeError:
            pass
        name, n = hint, 1
        while name in self.clients:
            n += 1
            name = f"{hint}_{n}"
        self.clients[name] = body
        self.client_names[id(client)] = name
        self._held.append(client)
        return name

    def _client_body(self, client: Any, path: str) -> dict[str, Any]:
        from executors import ChatResponse, OpenAIChatClient, ScriptedChatClient

        if isinstance(client, ScriptedChatClient):
            body: dict[str, Any] = {"type": "scripted"}
            fn = getattr(client, "_fn", None)
            if fn is not None:
                body["function"] = self.function(fn, path)
            else:
                body["replies"] = [
                    r if isinstance(r, str) else _reply(r)
                    for r in getattr(client, "_replies", [])
                    if isinstance(r, str | ChatResponse)
                ]
            if client.model != "scripted":
                body["model"] = client.model
            return body
        if isinstance(client, UnsetKeyClient):
            body = {"type": "openai", "model": client.model}
            if client.base_url:
                body["base_url"] = client.base_url
            body["api_key_env"] = client.env
            return body
        if isinstance(client, OpenAIChatClient):
            body = {"type": "openai", "model": client.model}
            if client.base_url:
                body["base_url"] = client.base_url
            if client.timeout != 60.0:
                body["timeout"] = client.timeout
            if client.max_retries != 3:
                body["max_retries"] = client.max_retries
            if getattr(client, "max_tokens", None) is not None:
                body["max_tokens"] = client.max_tokens
            env = _key_env(client, path)
            if env is not None:
                body["api_key_env"] = env
            return body
        raise SpecError(
            path,
            f"client {client!r} ({type(client).__name__}) has no spec form; a spec knows "
            "OpenAIChatClient (type: openai) and ScriptedChatClient (type: scripted)",
        )

    def agent(self, agent: Any, path: str, *, strip_handoffs: bool = False) -> str:
        """The name of ``agent`` under ``agents`` (a ``ChatAgent``; added on first use)."""
        from executors import ChatAgent

        from ._handoff import _PREFIX, _StopAfterHandoff

        if not isinstance(agent, ChatAgent):
            raise SpecError(
                path,
                f"agent {agent!r} ({type(agent).__name__}) has no spec form; a spec describes "
                "ChatAgent (instructions, client, tools)",
            )
        known = self.agent_objects.get(agent.name)
        if known is not None:
            if known is not agent and not strip_handoffs:
                raise SpecError(path, f"two different agents are named {agent.name!r}")
            return str(agent.name)
        tools = list(agent.tools)
        iterations = agent.max_tool_iterations
        if strip_handoffs and isinstance(agent.chat_client, _StopAfterHandoff):
            tools = [t for t in tools if not t.name.startswith(_PREFIX)]
            iterations -= 1  # the builder added one round for the handoff
        where = f"agents.{agent.name}"
        body: dict[str, Any] = {}
        if agent.description:
            body["description"] = agent.description
        if agent.instructions:
            body["instructions"] = agent.instructions
        body["client"] = self.client(agent.chat_client, f"{where}.client", agent.name)
        if tools:
            body["tools"] = [
                self.function(t, f"{where}.tools[{i}]", name=t.name) for i, t in enumerate(tools)
            ]
        if iterations != 10:
            body["max_tool_iterations"] = iterations
        self.agents[agent.name] = body
        self.agent_objects[agent.name] = agent
        return str(agent.name)

    def node(self, node: Executor, path: str, *, strip_handoffs: bool = False) -> str:
        """The name a node is referred to by: an agent's name, or an ``executors`` entry."""
        from executors import AgentExecutor, CodeExecutor, HumanExecutor, WorkflowExecutor

        policy = self.wf.graph.policies.get(node.id)
        timeout = policy.timeout if policy is not None else None
        retry = _retry(policy.retry, f"executors.{node.id}.retry") if policy else None
        body: dict[str, Any]
        if isinstance(node, AgentExecutor):
            name = self.agent(node.agent, path, strip_handoffs=strip_handoffs)
            if node.id == name and timeout is None and retry is None:
                return name
            body = {"agent": name}
        elif isinstance(node, FunctionExecutor):
            module, qualname = getattr(node, "__module__", ""), getattr(node, "__qualname__", "")
            # an @executor at module level: the module's attribute is the executor itself
            target = node if _resolves(str(module), str(qualname), node) else node.func
            fn_name = getattr(node.func, "__name__", None)
            body = {"function": self.function(target, f"executors.{node.id}.function", fn_name)}
        elif isinstance(node, CodeExecutor):
            body = {"code": _code_options(node.config)}
        elif isinstance(node, HumanExecutor):
            human: dict[str, Any] = {"human_input_mode": node.human_input_mode}
            if node.name != node.id:
                human["name"] = node.name
            if node.default_auto_reply:
                human["default_auto_reply"] = node.default_auto_reply
            human["max_consecutive_auto_reply"] = node.max_consecutive_auto_reply
            if node.auto_reply is not None:
                raise SpecError(f"executors.{node.id}", "auto_reply functions have no spec form")
            body = {"human": human}
        elif isinstance(node, WorkflowExecutor):
            body = {"workflow": _Dumper(node.workflow).dump()}
        else:
            raise SpecError(
                f"executors.{node.id}",
                f"{type(node).__name__} nodes have no spec form; a spec has agents, functions "
                "(FunctionExecutor / @executor), code and human nodes",
            )
        if timeout is not None:
            body["timeout"] = timeout
        if retry is not None:
            body["retry"] = retry
        self.executors[node.id] = body
        return node.id

    def termination(self, condition: Any, path: str) -> Any:
        from . import _termination as t

        if isinstance(condition, t.MaxMessages):
            return {"max_messages": condition.n}
        if isinstance(condition, t.TextMention):
            if condition.sources is None:
                return {"text_mention": condition.text}
            return {"text_mention": {"text": condition.text, "sources": sorted(condition.sources)}}
        if isinstance(condition, t.TokenBudget):
            return {"token_budget": condition.n}
        if isinstance(condition, t.Timeout):
            return {"timeout": condition.seconds}
        if isinstance(condition, t.HandoffTo):
            return {"handoff_to": condition.name}
        if isinstance(condition, t.SourceMatch):
            return {"source_match": sorted(condition.names)}
        if isinstance(condition, t.FunctionCallMade):
            return {"function_call_made": True if condition.name is None else condition.name}
        if isinstance(condition, t.FunctionCondition):
            return {"function": self.function(condition.fn, f"{path}.function")}
        if isinstance(condition, t.AnyOf | t.AllOf):
            key = "any" if isinstance(condition, t.AnyOf) else "all"
            return {
                key: [
                    self.termination(p, f"{path}.{key}[{i}]") for i, p in enumerate(condition.parts)
                ]
            }
        raise SpecError(
            path,
            f"{condition!r} has no spec form (External is set from code; custom conditions "
            "can be a function: {function: name})",
        )

    def _supersteps(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.wf.max_supersteps != 1000:
            body["max_supersteps"] = self.wf.max_supersteps
        return body

    # -- kinds -------------------------------------------------------------------------------
    def _participants(self, skip: set[str], *, strip_handoffs: bool = False) -> list[str]:
        from ._participant_node import Participant

        names: list[str] = []
        for node_id, node in self.wf.executors.items():
            if node_id in skip or not isinstance(node, Participant):
                continue
            path = f"participants[{len(names)}]"
            names.append(self.node(node.inner, path, strip_handoffs=strip_handoffs))
        return names

    def _magentic(self, orchestrator: Any) -> dict[str, Any]:
        from executors import AgentExecutor, StandardMagenticManager

        participants = []
        for i, node in enumerate(n for n in self.wf.executors.values() if n is not orchestrator):
            name = self.node(node, f"participants[{i}]")
            participants.append(name)
            if not isinstance(node, AgentExecutor):
                self.executors[name]["description"] = orchestrator.team[name]
        manager = orchestrator.manager
        if isinstance(manager, StandardMagenticManager):
            spec: dict[str, Any] = {
                "client": self.client(manager.chat_client, "manager.client", "manager")
            }
            if manager.max_ledger_retries != 3:
                spec["max_ledger_retries"] = manager.max_ledger_retries
        else:
            spec = {"function": self.function(type(manager), "manager.function")}
        body: dict[str, Any] = {"kind": "magentic", "participants": participants, "manager": spec}
        for key in ("max_round_count", "max_stall_count", "max_reset_count"):
            body[key] = getattr(orchestrator, key)
        for key in ("plan_review", "human_guidance_on_stall"):
            if getattr(orchestrator, key):
                body[key] = True
        for key in ("token_budget", "time_budget"):
            if getattr(orchestrator, key) is not None:
                body[key] = getattr(orchestrator, key)
        return body

    def _group_chat(self, manager: Any) -> dict[str, Any]:
        from ._group_chat import LLMSelector, _FunctionSelector, _RoundRobin

        if manager.candidate_filter is not None:
            raise SpecError("selector", "candidate_filter has no spec form yet")
        participants = self._participants({manager.id})
        body: dict[str, Any] = {"kind": "group_chat", "participants": participants}
        chosen = manager.selector
        if isinstance(chosen, LLMSelector):
            body["selector"] = {
                "client": self.client(chosen.client, "selector.client", "selector"),
                "attempts": chosen.attempts,
                "allow_repeated_speaker": chosen.allow_repeated_speaker,
                "history_window": chosen.history_window,
            }
        elif isinstance(chosen, _FunctionSelector):
            body["selector"] = {"function": self.function(chosen.fn, "selector.function")}
        elif not isinstance(chosen, _RoundRobin):
            raise SpecError(
                "selector",
                f"{chosen!r} has no spec form; use round_robin, a client or a function",
            )
        if manager.termination is not None:
            body["termination"] = self.termination(manager.termination, "termination")
        if manager.max_rounds is not None:
            body["max_rounds"] = manager.max_rounds
        if manager.id != "manager":
            body["manager_name"] = manager.id
        return self._supersteps(body)

    def _sequential(self) -> dict[str, Any]:
        return {"kind": "sequential", "participants": self._participants(set())}

    def _concurrent(self) -> dict[str, Any]:
        from ._concurrent import _Collect, _FinalMessage
        from ._participant_node import Participant

        aggregator: str | None = None
        skip = {"dispatcher", "collector", "gather"}
        for node in self.wf.executors.values():
            if isinstance(node, Participant) and isinstance(node.policy, _FinalMessage):
                skip.add(node.id)
                aggregator = self.node(node.inner, "aggregator")
            elif isinstance(node, _Collect) and node.aggregator is not None:
                aggregator = self.function(node.aggregator, "aggregator")
        body: dict[str, Any] = {"kind": "concurrent", "participants": self._participants(skip)}
        if aggregator is not None:
            body["aggregator"] = aggregator
        return body

    def _handoff(self) -> dict[str, Any]:
        from ._participant_node import Participant

        participants = self._participants(set(), strip_handoffs=True)
        handoffs: dict[str, list[str]] = {}
        termination: Any = None
        for node in self.wf.executors.values():
            assert isinstance(node, Participant)
            policy: Any = node.policy
            termination = policy.termination
            if policy.targets:
                handoffs[node.name] = list(policy.targets)
        body: dict[str, Any] = {"kind": "handoff", "participants": participants}
        if handoffs:
            body["handoffs"] = handoffs
        first = self.wf.executors[self.wf.start_executor_id]
        if isinstance(first, Participant) and first.name != participants[0]:
            body["start"] = first.name
        if termination is not None:
            body["termination"] = self.termination(termination, "termination")
        return self._supersteps(body)

    def _graph(self) -> dict[str, Any]:
        graph = self.wf.graph
        refs = {i: self.node(node, f"executors.{i}") for i, node in graph.executors.items()}
        edges: list[dict[str, Any]] = []
        for i, group in enumerate(graph.groups):
            where = f"edges[{i}]"
            src = [refs[s] for s in group.sources]
            dst = [refs[t] for t in group.targets]
            edge: dict[str, Any]
            if group.kind == "switch":
                cases = []
                for j, (target, cond) in enumerate(zip(dst, group.conditions, strict=True)):
                    case = {"to": target}
                    if cond is not None:
                        case = {"when": self.function(cond, f"{where}.cases[{j}].when"), **case}
                    cases.append(case)
                edge = {"from": src[0], "cases": cases}
            elif group.kind == "fan_in":
                edge = {"from": src, "to": dst[0]}
            elif group.kind == "fan_out":
                edge = {"from": src[0], "to": dst}
                if group.selector is not None:
                    edge["select"] = self.function(group.selector, f"{where}.select")
            else:
                edge = {"from": src[0], "to": dst[0]}
                condition = group.conditions[0] if group.conditions else None
                if condition is not None:
                    edge["when"] = self.function(condition, f"{where}.when")
            edges.append(edge)
        body: dict[str, Any] = {"kind": "graph", "start": refs[graph.start], "edges": edges}
        return self._supersteps(body)


def _retry(policy: Any, path: str) -> dict[str, Any] | None:
    if policy is None:
        return None
    if tuple(policy.retry_on) != (Exception,):
        raise SpecError(path, "retry_on has no spec form (a spec retries on any Exception)")
    keys = ("max_attempts", "initial_delay", "backoff", "max_delay")
    return {key: getattr(policy, key) for key in keys}


def _code_options(config: Any) -> dict[str, Any]:
    """The sandbox options of a ``CodeExecutor`` that differ from the defaults."""
    from executors import CodeExecutor

    default = CodeExecutor("defaults").config
    keys = "cpu_seconds memory_bytes file_size_bytes max_processes max_open_files"
    keys += " output_limit_bytes tmp_bytes network isolation python"
    body: dict[str, Any] = {"timeout": config.timeout}
    for key in keys.split():
        if getattr(config, key) != getattr(default, key):
            body[key] = getattr(config, key)
    return body


def _reply(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"text": response.text}
    if response.tool_calls:
        body["tool_calls"] = [
            {"id": call.id, "name": call.name, "arguments": _arguments(call.arguments)}
            for call in response.tool_calls
        ]
    usage = response.usage
    if usage.input_tokens or usage.output_tokens:
        body["usage"] = {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}
    if response.finish_reason is not None:
        body["finish_reason"] = response.finish_reason
    return body


def _arguments(text: str) -> Any:
    """A JSON object when that writes back to the same text, else the text as is."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, dict) and json.dumps(value) == text else text


def _key_env(client: Any, path: str) -> str | None:
    """The variable the client's key comes from; ``None`` when it needs none."""
    recorded = KEY_ENV.get(client, _MISSING)
    if recorded is not _MISSING:
        return recorded  # type: ignore[return-value]
    # the SDK client holds the key (a public attribute of openai.AsyncOpenAI)
    secret = getattr(getattr(client, "_client", None), "api_key", None)
    if not secret or secret == "no-key-needed":
        return None
    names = sorted(os.environ, key=lambda n: (n != "OPENAI_API_KEY", n))
    for name in names:
        if os.environ[name] == secret:
            return name
    raise SpecError(
        path,
        f"the client for model {client.model!r} holds an API key that is in no environment "
        "variable, so dump_spec cannot name it (a spec never holds a key); create the client "
        "with the key read from a variable (OPENAI_API_KEY, or load it from a spec with "
        "api_key_env)",
    )


def _resolves(module: str, qualname: str, fn: Any) -> bool:
    """Whether ``module:qualname`` names ``fn`` in an already imported module."""
    value: Any = sys.modules.get(module)
    for part in qualname.split("."):
        value = getattr(value, part, None)
    return value is fn
