"""The parts of a spec ``dump_spec`` writes for each thing it meets: functions (by name, with
their import path), clients (a key only as the name of its variable), agents, nodes and
termination conditions. ``_spec_dump`` walks a workflow by kind and uses these."""

from __future__ import annotations

import abc
import json
import os
import sys
from typing import Any

from workflow import Executor, FunctionExecutor, Workflow

from ._spec_refs import CLIENT_NAMES, KEY_ENV, SPEC_NAMES, UnsetKeyClient
from ._spec_schema import SpecError

__all__ = ("Parts",)

_MISSING = object()


class Parts(abc.ABC):
    """Collects the sections of a spec (imports, clients, agents, executors) while dumping."""

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
        self.spec_names = SPEC_NAMES.get(wf, {})

    def spec_name(self, *candidates: Any) -> str | None:
        """The name the spec ``wf`` came from gave one of ``candidates``, if any."""
        for obj in candidates:
            entry = self.spec_names.get(id(obj))
            if entry is not None and entry[1] is obj:
                return entry[0]
        return None

    def function(self, fn: Any, path: str, name: str | None = None) -> str:
        """The name ``fn`` is written as (recording its import path when it has one)."""
        if name is None:
            name = self.spec_name(fn) or getattr(fn, "__name__", None)
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
        # a wrapper (a Tool, an @executor) made from a module's function imports as that function
        for target in (fn, getattr(fn, "__wrapped__", None)):
            module = getattr(target, "__module__", None)
            qualname = getattr(target, "__qualname__", None)
            if (
                isinstance(module, str)
                and isinstance(qualname, str)
                and module != "__main__"
                and "<" not in qualname
                and _resolves(module, qualname, target)
            ):
                self.imports[name] = f"{module}:{qualname}"
                break
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
        from executors import ChatAgent, FunctionAgent

        from ._handoff import _PREFIX, _StopAfterHandoff

        if isinstance(agent, FunctionAgent) and agent.name not in self.agents:
            body: dict[str, Any] = {"description": agent.description} if agent.description else {}
            body["function"] = self.function(agent.fn, f"agents.{agent.name}.function")
            self.agents[agent.name] = body
            self.agent_objects[agent.name] = agent
            return str(agent.name)
        if isinstance(agent, FunctionAgent):
            return str(agent.name)
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
        body = {}
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
        if getattr(agent, "max_tokens", None) is not None:
            body["max_tokens"] = agent.max_tokens
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
            fn_name = self.spec_name(node, node.func) or getattr(node.func, "__name__", None)
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
            body = {"workflow": self.nested(node.workflow)}
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

    @abc.abstractmethod
    def nested(self, wf: Workflow) -> dict[str, Any]:
        """The spec of a nested workflow (the dumper of the kinds writes it)."""

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
