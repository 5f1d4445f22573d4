"""``A2AAgent``: a remote Agent2Agent (A2A) agent as a Ledgerflow agent.

``A2AAgent("http://host:port")`` reads the remote agent's card (``/.well-known/
agent-card.json``) once, when created (a short blocking request, so its name and description
are known to team builders and speaker selectors), unless both ``name`` and ``description``
are given. Each ``run`` sends the conversation as one A2A message through the a2a-sdk's
client (streaming when the card allows) and answers with the task's artifacts or the agent's
reply message.

Decisions:

* Each turn is its own A2A task in a fresh context: like every Ledgerflow agent, the
  ``A2AAgent`` keeps nothing between calls; the conversation it is given is sent as text
  (one message as it is, several as ``author: text`` lines).
* A task that fails, is rejected or cancelled raises ``A2AError`` naming the agent and URL;
  so does an unreachable agent or one that gives no answer within ``timeout``.
* In a workflow (every builder asks the agent for its node, ``as_executor()``), a task that
  requires input pauses the run with an ``A2AInputRequest`` (the remote question, answered
  with a ``str``); the answer goes to the same remote task and the turn continues. The task
  and context ids travel in the request, so the pause survives a restart like any other.
  Outside a workflow (``run``), such a task ends the turn with the question as the reply.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import anyio
import httpx
from a2a.client import ClientConfig, create_client
from a2a.types.a2a_pb2 import (
    AgentCard,
    Artifact,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
)
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict

from workflow import Executor, WorkflowContext, handler, response_handler

from ._agent_executor import AgentResponded, Incoming, to_messages
from ._agents import AgentError, AgentResponse
from ._chat import ChatMessage

__all__ = ("A2AAgent", "A2AAgentExecutor", "A2AError", "A2AInputRequest")

_CARD_PATH = "/.well-known/agent-card.json"
_FAILED = {
    TaskState.TASK_STATE_FAILED: "failed",
    TaskState.TASK_STATE_REJECTED: "was rejected",
    TaskState.TASK_STATE_CANCELED: "was cancelled",
}
_WAITING = (TaskState.TASK_STATE_INPUT_REQUIRED, TaskState.TASK_STATE_AUTH_REQUIRED)


class A2AError(AgentError):
    """A remote A2A agent could not be reached, failed its task or did not answer.

    Attributes:
        url: The agent's base URL.
    """

    def __init__(self, message: str, *, agent_name: str, url: str) -> None:
        super().__init__(message, agent_name=agent_name)
        self.url = url


class _Turn:
    """What one exchange with the remote agent gave: its text, and whether it waits."""

    __slots__ = ("context_id", "task_id", "text", "waiting")

    def __init__(
        self, text: str, *, waiting: bool = False, task_id: str = "", context_id: str = ""
    ) -> None:
        self.text, self.waiting, self.task_id, self.context_id = text, waiting, task_id, context_id

    def response(self, name: str) -> AgentResponse:
        reply = ChatMessage("assistant", self.text, author=name)
        return AgentResponse(messages=[reply], text=self.text, agent_name=name)


class A2AInputRequest(BaseModel):
    """A remote A2A agent's question (its task is ``input-required``); answer with a ``str``.

    Attributes:
        agent_name: The participant asking.
        question: The remote agent's question.
        task_id: The remote task waiting for the answer.
        context_id: Its A2A context.
    """

    model_config = ConfigDict(frozen=True)

    agent_name: str
    question: str
    task_id: str
    context_id: str


class A2AAgentExecutor(Executor):
    """An ``A2AAgent`` as a node: like ``AgentExecutor``, plus questions passed to the run.

    Each message starts a remote task; an ``input-required`` task pauses the run with an
    ``A2AInputRequest`` and the answer continues that same task.
    """

    def __init__(self, agent: A2AAgent, id: str | None = None) -> None:
        super().__init__(id if id is not None else agent.name)
        self.agent = agent
        self.name = agent.name
        self.description = agent.description

    @property
    def agent_name(self) -> str:
        return self.agent.name

    @handler
    async def on_message(
        self, message: Incoming, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Send the conversation to the remote agent as a new task."""
        turn = await self.agent.turn(_render(to_messages(message, source=ctx.source)))
        return await self._settle(turn, ctx)

    @response_handler
    async def on_answer(
        self, request: A2AInputRequest, answer: str, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        """Send a person's answer to the waiting remote task."""
        turn = await self.agent.turn(answer, task_id=request.task_id, context_id=request.context_id)
        return await self._settle(turn, ctx)

    async def _settle(
        self, turn: _Turn, ctx: WorkflowContext[AgentResponse]
    ) -> AgentResponse | None:
        if turn.waiting:
            question = A2AInputRequest(
                agent_name=self.agent.name,
                question=turn.text,
                task_id=turn.task_id,
                context_id=turn.context_id,
            )
            await ctx.request_info(question, response_type=str)
            return None
        response = turn.response(self.agent.name)
        await ctx.add_event(
            AgentResponded(
                run_id=ctx.run_id,
                superstep=ctx.superstep,
                executor_id=ctx.executor_id,
                agent_name=self.agent.name,
                response=response,
            )
        )
        return response


class A2AAgent:
    """A remote A2A agent, usable wherever an agent is (teams, ``WorkflowBuilder``).

    Args:
        url: The agent's base URL (its card is at ``url + /.well-known/agent-card.json``).
        name: The participant name; defaults to the card's name (made a valid id).
        description: Defaults to the card's description.
        headers: HTTP headers for every request (e.g. ``Authorization``).
        timeout: Seconds allowed for the card and for each turn.

    Raises:
        A2AError: The card could not be read (when it is needed for the name or description).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        description: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 300.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"A2AAgent needs an http(s) URL, got {url!r}")
        if timeout <= 0:
            raise ValueError(f"A2AAgent timeout must be > 0 seconds, got {timeout!r}")
        self.url = url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.card: AgentCard | None = None
        if name is None or description is None:
            self.card = self._read_card(name or self.url)
        self.name = name if name is not None else _slug(self.card.name if self.card else "")
        self.description = (
            description if description is not None else (self.card.description if self.card else "")
        )
        if not self.name:
            raise ValueError(f"A2AAgent for {self.url!r} needs a name (the card has none)")

    def __repr__(self) -> str:
        return f"A2AAgent(name={self.name!r}, url={self.url!r})"

    def _read_card(self, label: str) -> AgentCard:
        try:
            response = httpx.get(
                self.url + _CARD_PATH, headers=self.headers, timeout=min(self.timeout, 30.0)
            )
            response.raise_for_status()
            card = AgentCard()
            json_format.ParseDict(response.json(), card, ignore_unknown_fields=True)
            return card
        except (httpx.HTTPError, ValueError, json_format.ParseError) as exc:
            raise A2AError(
                f"cannot read the agent card of A2A agent {label!r} at "
                f"{self.url + _CARD_PATH!r}: {exc}; check the URL and that the agent is running "
                "(or pass name= and description= to skip reading it)",
                agent_name=label,
                url=self.url,
            ) from exc

    def as_executor(self) -> A2AAgentExecutor:
        """The node builders use: it passes the remote agent's questions to the run."""
        return A2AAgentExecutor(self)

    async def run(self, messages: list[ChatMessage]) -> AgentResponse:
        """Send the conversation as one A2A message and answer with the remote reply.

        Raises:
            A2AError: Unreachable, no answer within ``timeout``, or the task failed.
        """
        return (await self.turn(_render(messages))).response(self.name)

    async def turn(self, text: str, *, task_id: str = "", context_id: str = "") -> _Turn:
        """One exchange: ``text`` as a new task, or as the answer to a waiting one."""
        request = SendMessageRequest(
            message=Message(
                message_id=str(uuid.uuid4()),
                role=Role.ROLE_USER,
                parts=[Part(text=text)],
                task_id=task_id,
                context_id=context_id,
            )
        )
        try:
            with anyio.fail_after(self.timeout):
                events = await self._exchange(request)
        except A2AError:
            raise
        except Exception as exc:
            raise self._error(f"could not be reached or did not answer ({exc!r})") from exc
        return self._answer(events)

    async def _exchange(self, request: SendMessageRequest) -> list[StreamResponse]:
        async with httpx.AsyncClient(headers=self.headers, timeout=self.timeout) as http:
            config = ClientConfig(streaming=True, httpx_client=http)
            client = await create_client(self.card or self.url, config)
            try:
                return [event async for event in client.send_message(request)]
            finally:
                await client.close()

    def _answer(self, events: Sequence[StreamResponse]) -> _Turn:
        artifacts: list[Artifact] = []
        status_text = ""
        task_id = context_id = ""
        for event in events:
            kind = event.WhichOneof("payload")
            if kind == "message":
                return _Turn(_text(event.message.parts))
            if kind == "task":
                task_id, context_id = event.task.id, event.task.context_id
                artifacts = list(event.task.artifacts) or artifacts
                state, status_text = event.task.status.state, _text(event.task.status.message.parts)
            elif kind == "artifact_update":
                artifacts.append(event.artifact_update.artifact)
                continue
            elif kind == "status_update":
                task_id = task_id or event.status_update.task_id
                context_id = context_id or event.status_update.context_id
                status = event.status_update.status
                state, status_text = status.state, _text(status.message.parts) or status_text
            else:
                continue
            if state in _FAILED:
                why = f": {status_text}" if status_text else ""
                raise self._error(f"{_FAILED[state]}{why}")
            if state in _WAITING:
                question = status_text or "(the agent needs more input)"
                return _Turn(question, waiting=True, task_id=task_id, context_id=context_id)
        text = "\n".join(t for t in (_text(a.parts) for a in artifacts) if t)
        return _Turn(text or status_text)

    def _error(self, what: str) -> A2AError:
        return A2AError(
            f"A2A agent {self.name!r} at {self.url!r} {what}",
            agent_name=self.name,
            url=self.url,
        )


def _text(parts: Sequence[Part]) -> str:
    out = []
    for part in parts:
        kind = part.WhichOneof("content")
        if kind == "text":
            out.append(part.text)
        elif kind == "data":
            out.append(json_format.MessageToJson(part.data, indent=None))
        elif kind == "url":
            out.append(part.url)
    return "\n".join(out)


def _render(messages: Sequence[ChatMessage]) -> str:
    usable = [m for m in messages if m.text and m.role != "tool"]
    if len(usable) == 1:
        return usable[0].text
    return "\n".join(f"{m.author or m.role}: {m.text}" for m in usable)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name.strip())
