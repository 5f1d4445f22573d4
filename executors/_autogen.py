"""AutoGen-style faces: ``AssistantAgent``, ``UserProxyAgent``, ``initiate_chat``, ``ChatResult``.

A thin layer so an AutoGen 0.2 script runs with only its import line changed. Nothing here
is a second engine: an ``AssistantAgent`` is a ``ChatAgent``; a ``UserProxyAgent`` is a
``HumanExecutor`` whose auto-reply runs the ```python blocks it receives in the sandbox
(``CodeExecutor``'s configuration and ``run_blocks``); ``initiate_chat`` runs the two as an
ordinary two-node workflow (assistant <-> proxy) and turns the run into a ``ChatResult``.

Decisions, documented here once:

* **Models.** ``llm_config={"config_list": [{"model", "api_key", "base_url"}]}`` uses the
  first entry (an ``OpenAIChatClient``; ``api_key`` defaults to ``OPENAI_API_KEY``). Two
  ways to run offline: ``llm_config={"client": ScriptedChatClient([...])}`` (any
  ``ChatClient``), or the ``LEDGERFLOW_SCRIPTED_REPLIES`` environment variable, which
  overrides every config: a JSON list of replies for every assistant, a JSON object of
  lists by assistant name, or ``@path`` to a file holding either. Other ``llm_config`` keys
  (``temperature``, ``cache_seed``, ``timeout``...) are accepted and ignored.
* **Code.** ``code_execution_config={"work_dir": ..., "use_docker": False}`` (the default
  when omitted) runs code in the sandbox: a fresh workspace under ``work_dir`` per reply,
  no network, resource limits; files do not persist between replies. ``use_docker=True``
  is refused (no Docker engine is used here). ``False`` turns code execution off. Only
  fenced Python blocks run; the reply is ``exitcode: N (...)`` and the output.
* **People.** Modes other than ``NEVER`` ask through ``request_info``. In a script,
  ``initiate_chat`` answers those requests with ``input_func`` (default: ``input()`` on
  stdin; a closed stdin answers ``exit``). In a workflow, ``user_proxy.as_executor()``
  is the node, and the requests surface as the run's pending requests.
* **Output.** Messages print as they are said (``silent=True`` turns that off).
  ``chat_history`` is seen from the proxy, as AutoGen does: its own messages have role
  ``assistant``, the other side's ``user``. ``summary`` is the last message without
  ``TERMINATE``. ``cost`` holds token counts (no prices).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread

from workflow import Executor, Workflow, WorkflowError
from workflow.authoring import EdgeGroup, build_graph
from workflow.events import RunFinished, WorkflowEvent

from ._agent_executor import AgentExecutor, AgentResponded
from ._agents import AgentResponse, ChatAgent
from ._chat import ChatClient, ChatConfigError, ChatMessage, Usage
from ._code_executor import CodeExecutor
from ._human import HumanExecutor, HumanInputMode, HumanInputRequest
from ._openai import OpenAIChatClient
from ._sandbox import extract_code_blocks, run_blocks
from ._scripted import ScriptedChatClient

__all__ = ("AssistantAgent", "ChatResult", "UserProxyAgent")

SCRIPTED_REPLIES_ENV = "LEDGERFLOW_SCRIPTED_REPLIES"

DEFAULT_SYSTEM_MESSAGE = """You are a capable AI assistant who solves tasks step by step, \
with Python where it helps.
- When code is useful, write one complete, runnable program in a ```python block. The user \
runs it exactly as written and tells you its output; do not ask them to change it.
- Print what the user needs to see, and test your code (for example with assertions).
- If the output shows an error, find the cause, fix the code and send the whole program again.
- Explain your plan briefly before code when it is not obvious.
- When the task is complete and verified, answer with a short summary and end your message \
with the word TERMINATE."""

DEFAULT_DESCRIPTION = "An AI assistant that solves tasks with reasoning and Python code."

_CODE_KEYS = frozenset({"work_dir", "use_docker", "timeout", "last_n_messages"})


# --------------------------------------------------------------------------- the assistant


def _scripted_replies(name: str) -> list[str] | None:
    raw = os.environ.get(SCRIPTED_REPLIES_ENV)
    if not raw:
        return None
    source = SCRIPTED_REPLIES_ENV
    if raw.startswith("@"):
        source = raw[1:]
        with open(source, encoding="utf-8") as fh:
            raw = fh.read()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ChatConfigError(f"{source} is not JSON ({exc}); give a list of replies") from None
    if isinstance(data, dict):
        data = data.get(name, [])
    if not isinstance(data, list) or not all(isinstance(r, str) for r in data):
        raise ChatConfigError(
            f"{source} must be a JSON list of reply strings (or an object of such lists by "
            f"assistant name); for {name!r} it gives {data!r:.80}"
        )
    return data


def _client_from(llm_config: Any, name: str) -> ChatClient:
    """The chat client an AutoGen ``llm_config`` asks for (see the module docs)."""
    if llm_config is False or llm_config is None:
        raise ChatConfigError(
            f"AssistantAgent {name!r} needs an llm_config such as "
            '{"config_list": [{"model": "gpt-4o-mini"}]}, or {"client": <ChatClient>}'
        )
    if not isinstance(llm_config, Mapping):
        raise ChatConfigError(f"llm_config of {name!r} must be a dict, got {llm_config!r:.80}")
    scripted = _scripted_replies(name)
    if scripted is not None:
        return ScriptedChatClient(scripted)
    client = llm_config.get("client")
    if client is not None:
        if not isinstance(client, ChatClient):
            raise ChatConfigError(f'llm_config["client"] of {name!r} is not a ChatClient')
        return client
    entries = llm_config.get("config_list") or ([dict(llm_config)] if "model" in llm_config else [])
    if not entries or not isinstance(entries[0], Mapping) or not entries[0].get("model"):
        raise ChatConfigError(
            f"llm_config of {name!r} names no model: give "
            '{"config_list": [{"model": ..., "api_key": ..., "base_url": ...}]}'
        )
    entry = entries[0]
    try:
        return OpenAIChatClient(
            entry["model"], base_url=entry.get("base_url"), api_key=entry.get("api_key")
        )
    except ChatConfigError as exc:
        raise ChatConfigError(
            f"{exc}; to run offline, set {SCRIPTED_REPLIES_ENV} or pass "
            'llm_config={"client": ScriptedChatClient([...])}',
            model=entry["model"],
        ) from None


class AssistantAgent:
    """AutoGen's assistant: a ``ChatAgent`` configured the AutoGen way.

    It is an agent like any other (``name``, ``description``, ``run``), so it can also take
    part in the conversation builders.

    Args:
        name: The agent's name (message author, node id).
        system_message: Its instructions (default: write and fix Python, end with TERMINATE).
        llm_config: See the module docs.
        description: What it is good for (read by group-chat selectors).
    """

    def __init__(
        self,
        name: str,
        system_message: str | None = None,
        llm_config: Mapping[str, Any] | bool | None = None,
        *,
        description: str | None = None,
    ) -> None:
        self.name = name
        self.system_message = DEFAULT_SYSTEM_MESSAGE if system_message is None else system_message
        self.description = DEFAULT_DESCRIPTION if description is None else description
        self.llm_config = llm_config
        self.client = _client_from(llm_config, name)
        self.chat_agent = ChatAgent(
            name, self.description, self.system_message, self.client, max_tool_iterations=0
        )

    def __repr__(self) -> str:
        return f"AssistantAgent(name={self.name!r})"

    async def run(self, messages: list[ChatMessage]) -> AgentResponse:
        """Answer the conversation."""
        return await self.chat_agent.run(messages)

    def as_executor(self) -> AgentExecutor:
        """This assistant as a workflow node (streaming its replies)."""
        return AgentExecutor(self.chat_agent)


# --------------------------------------------------------------------------- the user proxy


@dataclass
class ChatResult:
    """What ``initiate_chat`` returns, shaped like AutoGen's.

    Attributes:
        chat_history: ``{"content", "role", "name"}`` dicts, oldest first, as seen by the
            proxy (its own messages ``assistant``, the other side's ``user``).
        summary: The last message, without ``TERMINATE``.
        cost: Token counts: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``.
        human_input: What the person typed, in order.
        chat_id: The run id.
        messages: The conversation as ``ChatMessage`` objects.
        status: How the run ended (``"completed"``; ``"max_supersteps"`` when ``max_turns``
            cut it short).
    """

    chat_history: list[dict[str, Any]] = field(default_factory=list)
    summary: str = ""
    cost: dict[str, Any] = field(default_factory=dict)
    human_input: list[str] = field(default_factory=list)
    chat_id: str = ""
    messages: list[ChatMessage] = field(default_factory=list)
    status: str = ""


InputFunction = Callable[[str], str | Awaitable[str]]


def _code_config(name: str, config: Any) -> dict[str, Any] | None:
    if config is False:
        return None
    config = {} if config is None else config
    if not isinstance(config, Mapping):
        raise ValueError(
            f"code_execution_config of {name!r} must be a dict or False, got {config!r:.80}"
        )
    unknown = sorted(set(config) - _CODE_KEYS)
    if unknown:
        raise ValueError(
            f"code_execution_config of {name!r}: unsupported key(s) {unknown!r}; supported: "
            f"{sorted(_CODE_KEYS)!r}"
        )
    if config.get("use_docker"):
        raise ValueError(
            f"UserProxyAgent {name!r}: use_docker={config['use_docker']!r} asks for Docker, "
            "which Ledgerflow does not use; code already runs in its own sandbox (bubblewrap "
            'or unshare: no network, resource limits, see docs/sandbox.md). Pass "use_docker": '
            "False"
        )
    return dict(config)


class UserProxyAgent:
    """AutoGen's user proxy: a person (or their stand-in) who runs the code it receives.

    Args:
        name: The proxy's name (message author, node id).
        human_input_mode: ``"ALWAYS"``, ``"TERMINATE"`` or ``"NEVER"`` (``HumanExecutor``'s
            rules).
        max_consecutive_auto_reply: Auto-replies in a row before the person is asked (or,
            with ``NEVER``, the chat ends); ``None``: 100.
        is_termination_msg: ``fn(message_dict) -> bool`` on ``{"content", "role", "name"}``;
            default: the text ends with ``TERMINATE``.
        code_execution_config: See the module docs.
        default_auto_reply: The auto-reply to a message without code.
        llm_config: Must be ``False``/``None``: a proxy that calls a model is not supported.
        description: What it is (read by group-chat selectors).
        input_func: ``fn(prompt) -> str`` (sync or async) answering for the person in
            ``initiate_chat`` (default: ``input()``).
    """

    def __init__(
        self,
        name: str,
        human_input_mode: HumanInputMode = "ALWAYS",
        max_consecutive_auto_reply: int | None = None,
        is_termination_msg: Callable[[dict[str, Any]], bool] | None = None,
        code_execution_config: Mapping[str, Any] | bool | None = None,
        default_auto_reply: str = "",
        llm_config: Any = None,
        system_message: str | None = None,
        *,
        description: str | None = None,
        input_func: InputFunction | None = None,
    ) -> None:
        if llm_config:
            raise ValueError(
                f"UserProxyAgent {name!r} with an llm_config is not supported: the proxy runs "
                "code and relays a person; use an AssistantAgent for model replies"
            )
        self.name = name
        self.human_input_mode: HumanInputMode = human_input_mode
        self.max_consecutive_auto_reply = max_consecutive_auto_reply
        self.is_termination_msg = is_termination_msg
        self.default_auto_reply = default_auto_reply
        self.system_message = system_message
        self.description = description or "A person who runs the code it is sent and reports."
        self.input_func = input_func
        self.code_execution_config = _code_config(name, code_execution_config)
        self.code_executor: CodeExecutor | None = None
        if self.code_execution_config is not None:
            work_dir = self.code_execution_config.get("work_dir")
            self.code_executor = CodeExecutor(
                id=f"{name}_code",
                timeout=float(self.code_execution_config.get("timeout", 60)),
                work_dir=None if work_dir is None else os.path.abspath(work_dir),
            )
        last_n = (self.code_execution_config or {}).get("last_n_messages", 1)
        if last_n != "auto" and (not isinstance(last_n, int) or last_n < 1):
            raise ValueError(
                f"code_execution_config of {name!r}: last_n_messages must be a positive int "
                f"or 'auto', got {last_n!r}"
            )
        self._last_n: int = 1 if last_n == "auto" else last_n
        self.as_executor()  # fail now, not at the first message, on a bad mode or limit

    def __repr__(self) -> str:
        return f"UserProxyAgent(name={self.name!r}, human_input_mode={self.human_input_mode!r})"

    def as_executor(self) -> HumanExecutor:
        """This proxy as a workflow node: its questions become the run's pending requests."""
        check = self.is_termination_msg
        is_termination = None if check is None else functools.partial(_check_dict, check)
        return HumanExecutor(
            self.name,
            name=self.name,
            human_input_mode=self.human_input_mode,
            max_consecutive_auto_reply=self.max_consecutive_auto_reply,
            is_termination_msg=is_termination,
            default_auto_reply=self.default_auto_reply,
            auto_reply=self._auto_reply,
        )

    # -- auto-reply: run the code ---------------------------------------------------------
    async def _auto_reply(self, conversation: list[ChatMessage]) -> str:
        blocks = self._code_to_run(conversation)
        if not blocks or self.code_executor is None:
            return self.default_auto_reply
        result = await run_blocks(blocks, self.code_executor.config)
        status = "execution succeeded" if result.exit_code == 0 else "execution failed"
        if result.timed_out:
            status = "execution timed out"
        output = result.stdout + result.stderr
        if result.truncated:
            output += "\n[output truncated]"
        return f"exitcode: {result.exit_code} ({status})\nCode output: {output}"

    def _code_to_run(self, conversation: list[ChatMessage]) -> list[str]:
        """The fenced Python blocks of the latest of the last messages others sent."""
        others = [m for m in conversation if m.author != self.name and m.role != "tool"]
        for message in reversed(others[-self._last_n :]):
            if "```" not in message.text and "~~~" not in message.text:
                continue  # prose is not code, even though it has no fence
            blocks = [b for b in extract_code_blocks(message.text) if b.strip()]
            if blocks:
                return blocks
        return []

    # -- asking the person ------------------------------------------------------------------
    async def a_get_human_input(self, prompt: str) -> str:
        """The person's answer to ``prompt`` (``input_func``, else a line from stdin)."""
        if self.input_func is not None:
            answer: Any = self.input_func(prompt)
            if inspect.isawaitable(answer):
                answer = await answer
            return str(answer)
        return await anyio.to_thread.run_sync(_read_line, prompt)

    def get_human_input(self, prompt: str) -> str:
        """Sync form of ``a_get_human_input``."""
        return anyio.run(self.a_get_human_input, prompt)

    # -- chats --------------------------------------------------------------------------------
    def initiate_chat(
        self, recipient: Any, message: str | None = None, **kwargs: Any
    ) -> ChatResult:
        """Chat with ``recipient`` starting with ``message``; blocks until the chat ends.

        Keyword options as ``a_initiate_chat``. From async code, await ``a_initiate_chat``.
        """
        return anyio.run(functools.partial(self.a_initiate_chat, recipient, message, **kwargs))

    async def a_initiate_chat(
        self,
        recipient: Any,
        message: str | None = None,
        *,
        max_turns: int | None = None,
        silent: bool = False,
        clear_history: bool = True,
        summary_method: str | None = "last_msg",
    ) -> ChatResult:
        """Send ``message`` to ``recipient`` and relay the chat until it ends.

        Args:
            recipient: An ``AssistantAgent`` or any agent.
            message: The opening message.
            max_turns: Most replies from ``recipient`` (``None``: until the proxy ends it).
            silent: Do not print the messages.
            clear_history: Accepted for compatibility; every chat starts fresh.
            summary_method: ``"last_msg"`` or ``None``.

        Raises:
            WorkflowError: The chat failed; the message names the executor and the cause.
        """
        if summary_method not in ("last_msg", None):
            raise ValueError(f"summary_method {summary_method!r} is not supported; use 'last_msg'")
        if message is None:
            raise ValueError("initiate_chat needs a message to start the chat with")
        other = _executor_for(recipient)
        if other.id == self.name:
            raise ValueError(f"the proxy and its recipient are both named {self.name!r}")
        turns = None if max_turns is None else 2 * max_turns - 1
        wf = _pair_workflow(other, self.as_executor(), f"{self.name}-{other.id}", turns)
        opening = ChatMessage("user", message, author=self.name)
        printer = _Printer(self.name, other.id, silent)
        printer.say(self.name, message)
        said: list[ChatMessage] = [opening]
        typed: list[str] = []
        usage = Usage()
        stream = wf.run_stream(opening)
        while True:
            finished: RunFinished | None = None
            async with stream as running:  # leaving early cancels the run and waits for it
                async for event in running:
                    if isinstance(event, AgentResponded):
                        said.extend(event.response.messages)
                        usage = usage + event.response.usage
                        printer.say(event.agent_name, event.response.text)
                    elif isinstance(event, RunFinished):
                        finished = event
            assert finished is not None
            if finished.status.value == "failed":
                raise WorkflowError(f"the chat of {self.name!r} failed: {finished.error}")
            requests = [r for r in finished.pending_requests if _asks_person(r)]
            if finished.status.value != "awaiting_input" or not requests:
                break
            answers = {}
            for request in requests:
                answer = await self.a_get_human_input(request.payload.prompt + "\n")
                typed.append(answer)
                answers[request.request_id] = answer
            stream = wf.resume_stream(finished.run_id, responses=answers)
        return _result(self.name, said, usage, typed, finished, summary_method)


def _check_dict(check: Callable[[dict[str, Any]], bool], message: ChatMessage) -> bool:
    return bool(check({"content": message.text, "role": message.role, "name": message.author}))


def _asks_person(request: Any) -> bool:
    return isinstance(getattr(request, "payload", None), HumanInputRequest)


def _read_line(prompt: str) -> str:
    try:
        return input(prompt)
    except EOFError:
        return "exit"  # nobody is there to answer: end the chat as a person typing exit would


def _executor_for(recipient: Any) -> Executor:
    as_executor = getattr(recipient, "as_executor", None)
    if callable(as_executor):
        node = as_executor()
        if isinstance(node, Executor):
            return node
    if isinstance(recipient, Executor):
        return recipient
    return AgentExecutor(recipient)


def _pair_workflow(first: Executor, second: Executor, name: str, steps: int | None) -> Workflow:
    """``first <-> second``, ``first`` answering the input.

    Built on the core directly: this package sits below ``builders`` and may not use them.
    """
    groups = [
        EdgeGroup(index=0, kind="direct", sources=(first.id,), targets=(second.id,)),
        EdgeGroup(index=1, kind="direct", sources=(second.id,), targets=(first.id,)),
    ]
    graph = build_graph(
        name=name,
        start=first.id,
        executors={first.id: first, second.id: second},
        groups=groups,
        policies={},
    )
    return Workflow(graph, max_supersteps=steps if steps is not None else 1000)


class _Printer:
    """Prints each message as AutoGen does, unless silent."""

    def __init__(self, proxy: str, other: str, silent: bool) -> None:
        self.names = {proxy: other, other: proxy}
        self.silent = silent

    def say(self, speaker: str, text: str) -> None:
        if self.silent:
            return
        to = self.names.get(speaker, "?")
        sys.stdout.write(f"{speaker} (to {to}):\n\n{text}\n\n{'-' * 80}\n")
        sys.stdout.flush()


def _result(
    proxy: str,
    said: list[ChatMessage],
    usage: Usage,
    typed: list[str],
    finished: WorkflowEvent,
    summary_method: str | None,
) -> ChatResult:
    history = [
        {
            "content": m.text,
            "role": "assistant" if m.author == proxy else "user",
            "name": m.author,
        }
        for m in said
        if m.role != "tool"
    ]
    summary = ""
    if summary_method == "last_msg" and history:
        summary = str(history[-1]["content"]).replace("TERMINATE", "").strip()
    return ChatResult(
        chat_history=history,
        summary=summary,
        cost={
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
        },
        human_input=typed,
        chat_id=finished.run_id,
        messages=said,
        status=getattr(getattr(finished, "status", None), "value", ""),
    )
