"""The references of a spec: its clients, agents, executors and termination conditions,
each made once per name, every name checked against what the spec defines (so an error names
the place in the document and what is known there). ``_spec_build`` assembles them per kind.
"""

from __future__ import annotations

import difflib
import json
import os
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

from workflow import Executor

from . import _spec_schema as s
from ._spec_schema import SpecError

if TYPE_CHECKING:
    from ._spec_load import _Names

__all__ = ("CLIENT_NAMES", "KEY_ENV", "SPEC_NAMES", "References", "UnsetKeyClient")

# The environment variable each client built from a spec read its key from (``None``: the
# default, OPENAI_API_KEY or no key for a local server). ``dump_spec`` writes it back.
KEY_ENV: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()
# The name each client had in its spec, so that dumping a loaded spec keeps it.
CLIENT_NAMES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# The names a spec gave the functions it used (id -> (name, function)), per loaded workflow.
SPEC_NAMES: weakref.WeakKeyDictionary[Any, dict[int, tuple[str, Any]]] = weakref.WeakKeyDictionary()


class UnsetKeyClient:
    """Stands for an OpenAI client whose key variable is not set: loading and drawing work,
    the first model call fails saying which variable to export."""

    def __init__(self, model: str, base_url: str | None, env: str, where: str) -> None:
        self.model = model
        self.base_url = base_url
        self.env = env
        self.where = where

    def __repr__(self) -> str:
        return f"UnsetKeyClient(model={self.model!r}, env={self.env!r})"

    def _fail(self) -> Exception:
        from executors import ChatConfigError

        return ChatConfigError(
            f"{self.where}: environment variable {self.env!r} is not set; export it with the "
            f"API key for model {self.model!r}",
            model=self.model,
        )

    async def get_response(self, messages: Sequence[Any], **options: Any) -> Any:
        raise self._fail()

    async def get_streaming_response(
        self, messages: Sequence[Any], **options: Any
    ) -> AsyncIterator[Any]:
        raise self._fail()
        yield  # an async generator, like a real client's stream


def _known(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) or "none"


class References:
    """Makes and caches what a spec's names refer to."""

    def __init__(self, spec: Any, names: _Names) -> None:
        self.spec = spec
        self.names = names
        self._clients: dict[str, Any] = {}
        self._agents: dict[str, Any] = {}
        self._executors: dict[str, Executor] = {}

    # -- references ----------------------------------------------------------------------------
    def client(self, name: str, path: str) -> Any:
        if name not in self.spec.clients:
            close = difflib.get_close_matches(name, list(self.spec.clients), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                path,
                f"unknown client {name!r}{hint}; known: {_known(list(self.spec.clients))}; "
                "define it under clients:",
            )
        if name not in self._clients:
            client = self._make_client(name, self.spec.clients[name])
            try:
                CLIENT_NAMES[client] = name
            except TypeError:  # a client type without weak references keeps no name
                pass
            self._clients[name] = client
        return self._clients[name]

    def _make_client(self, name: str, spec: Any) -> Any:
        from executors import ChatResponse, ScriptedChatClient, ToolCall, Usage

        where = f"clients.{name}"
        if isinstance(spec, s.ScriptedClientSpec):
            if spec.function is not None:
                return ScriptedChatClient(
                    self.names.get(spec.function, f"{where}.function"), model=spec.model
                )
            replies: list[Any] = []
            for reply in spec.replies or []:
                if isinstance(reply, str):
                    replies.append(reply)
                    continue
                calls = tuple(
                    ToolCall(
                        id=call.id or f"call_{i}_{call.name}",
                        name=call.name,
                        arguments=call.arguments
                        if isinstance(call.arguments, str)
                        else json.dumps(call.arguments),
                    )
                    for i, call in enumerate(reply.tool_calls)
                )
                usage = Usage(**reply.usage.model_dump()) if reply.usage else Usage()
                replies.append(
                    ChatResponse(
                        reply.text, tool_calls=calls, usage=usage, finish_reason=reply.finish_reason
                    )
                )
            return ScriptedChatClient(replies, model=spec.model)
        from executors import ChatConfigError, OpenAIChatClient

        options: dict[str, Any] = {}
        if spec.timeout is not None:
            options["timeout"] = spec.timeout
        if spec.max_retries is not None:
            options["max_retries"] = spec.max_retries
        if spec.max_tokens is not None:
            options["max_tokens"] = spec.max_tokens
        env = spec.api_key_env
        key = os.environ.get(env) if env is not None else None
        if env is not None and not key:
            client: Any = UnsetKeyClient(spec.model, spec.base_url, env, where)
        else:
            try:
                client = OpenAIChatClient(spec.model, spec.base_url, key, **options)
            except ChatConfigError:  # no key anywhere: fail at the first call, not here
                client = UnsetKeyClient(spec.model, spec.base_url, "OPENAI_API_KEY", where)
        KEY_ENV[client] = env
        return client

    def agent(self, name: str, path: str) -> Any:
        if name not in self.spec.agents:
            raise SpecError(
                path, f"unknown agent {name!r}; known: {_known(list(self.spec.agents))}"
            )
        if name not in self._agents:
            from executors import ChatAgent, FunctionAgent, Tool

            spec = self.spec.agents[name]
            where = f"agents.{name}"
            if spec.function is not None:
                fn = self.names.get(spec.function, f"{where}.function")
                try:
                    self._agents[name] = FunctionAgent(name, spec.description, fn)
                except (TypeError, ValueError) as exc:
                    raise SpecError(f"{where}.function", str(exc)) from None
                return self._agents[name]
            tools = []
            for i, tool_name in enumerate(spec.tools):
                fn = self.names.get(tool_name, f"{where}.tools[{i}]")
                if not isinstance(fn, Tool):
                    if not callable(fn):
                        raise SpecError(f"{where}.tools[{i}]", f"{tool_name!r} is not a function")
                    try:
                        fn = Tool(fn, name=tool_name)
                    except (TypeError, ValueError) as exc:
                        raise SpecError(f"{where}.tools[{i}]", str(exc)) from None
                tools.append(fn)
            client = self.client(str(spec.client), f"{where}.client")
            try:
                self._agents[name] = ChatAgent(
                    name,
                    spec.description,
                    spec.instructions,
                    client,
                    tools=tools,
                    max_tool_iterations=spec.max_tool_iterations,
                    **({} if spec.max_tokens is None else {"max_tokens": spec.max_tokens}),
                )
            except ValueError as exc:
                raise SpecError(where, str(exc)) from None
        return self._agents[name]

    def executor(self, name: str, path: str) -> Executor:
        """Node ``name``: an entry of ``executors``, or an agent used directly."""
        if name in self._executors:
            return self._executors[name]
        spec = self.spec.executors.get(name)
        if spec is None:
            if name in self.spec.agents:
                from executors import AgentExecutor

                node: Executor = AgentExecutor(self.agent(name, path))
                self._executors[name] = node
                return node
            known = [*self.spec.executors, *self.spec.agents]
            raise SpecError(
                path,
                f"unknown executor {name!r}; known: {_known(known)}; define it under "
                "executors: or agents:",
            )
        where = f"executors.{name}"
        if spec.agent is not None:
            from executors import AgentExecutor

            node = AgentExecutor(self.agent(spec.agent, f"{where}.agent"), id=name)
        elif spec.function is not None:
            node = self.names.executor(spec.function, name, f"{where}.function")
        elif spec.code is not None:
            from executors import CodeExecutor

            node = CodeExecutor(name, **spec.code.model_dump(exclude_none=True))
        elif spec.workflow is not None:
            from executors import WorkflowExecutor

            child = spec.workflow
            try:
                from ._spec_build import build_workflow  # the kinds; they import this module

                child_names = self.names.nested(child.imports)
                inner = build_workflow(child, child_names)
                SPEC_NAMES[inner] = child_names.used
            except SpecError as exc:
                inner_path = f"{where}.workflow" + (f".{exc.path}" if exc.path else "")
                message = str(exc).removeprefix(f"{exc.path}: ") if exc.path else str(exc)
                raise SpecError(inner_path, message) from None
            inner.description = child.description
            node = WorkflowExecutor(inner, id=name)
        else:
            from executors import HumanExecutor

            human = spec.human
            node = HumanExecutor(
                name,
                name=human.name,
                human_input_mode=human.human_input_mode,
                max_consecutive_auto_reply=human.max_consecutive_auto_reply,
                default_auto_reply=human.default_auto_reply,
            )
        self._executors[name] = node
        return node

    def participants(self, exclude: str | None = None) -> list[Any]:
        """Team members: agents as agents (the builder wraps them), executors as nodes."""
        names = self.spec.participants
        if names is None:
            wrapped = {e.agent for e in self.spec.executors.values() if e.agent is not None}
            names = [n for n in self.spec.agents if n not in wrapped and n != exclude]
            names += [n for n in self.spec.executors if n != exclude]
        if not names:
            raise SpecError(
                "participants", "a team needs participants; define agents: or list participants:"
            )
        found: list[Any] = []
        for i, name in enumerate(names):
            path = f"participants[{i}]"
            if name in self.spec.executors:
                found.append(self.executor(name, path))
            elif name in self.spec.agents:
                found.append(self.agent(name, path))
            else:
                known = [*self.spec.agents, *self.spec.executors]
                raise SpecError(path, f"unknown participant {name!r}; known: {_known(known)}")
        return found

    def termination(self, spec: Any, path: str) -> Any:
        from . import _termination as t

        if spec is None:
            return None
        if spec.max_messages is not None:
            return t.MaxMessages(spec.max_messages)
        if spec.text_mention is not None:
            mention = spec.text_mention
            if isinstance(mention, str):
                return t.TextMention(mention)
            return t.TextMention(mention.text, mention.sources)
        if spec.token_budget is not None:
            return t.TokenBudget(spec.token_budget)
        if spec.timeout is not None:
            return t.Timeout(spec.timeout)
        if spec.handoff_to is not None:
            return t.HandoffTo(spec.handoff_to)
        if spec.source_match is not None:
            return t.SourceMatch(spec.source_match)
        if spec.function_call_made is not None:
            made = spec.function_call_made
            if made is False:
                raise SpecError(f"{path}.function_call_made", "use a tool name or true")
            return t.FunctionCallMade(None if made is True else made)
        if spec.function is not None:
            return t.FunctionCondition(self.names.get(spec.function, f"{path}.function"))
        parts = spec.any if spec.any is not None else spec.all
        key = "any" if spec.any is not None else "all"
        if not parts:
            raise SpecError(f"{path}.{key}", "list at least one condition")
        built = [self.termination(p, f"{path}.{key}[{i}]") for i, p in enumerate(parts)]
        return t.AnyOf(built) if key == "any" else t.AllOf(built)

    # -- kinds ---------------------------------------------------------------------------------
