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
* A task that requires input (or authentication) ends the turn with the remote agent's
  question as the reply, so the team (or a person) sees it; answering continues as a new task.
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

from ._agents import AgentError, AgentResponse
from ._chat import ChatMessage

__all__ = ("A2AAgent", "A2AError")

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

    async def run(self, messages: list[ChatMessage]) -> AgentResponse:
        """Send the conversation as one A2A message and answer with the remote reply.

        Raises:
            A2AError: Unreachable, no answer within ``timeout``, or the task failed.
        """
        request = SendMessageRequest(
            message=Message(
                message_id=str(uuid.uuid4()),
                role=Role.ROLE_USER,
                parts=[Part(text=_render(messages))],
            )
        )
        try:
            with anyio.fail_after(self.timeout):
                events = await self._exchange(request)
        except A2AError:
            raise
        except Exception as exc:
            raise self._error(f"could not be reached or did not answer ({exc!r})") from exc
        text = self._answer(events)
        reply = ChatMessage("assistant", text, author=self.name)
        return AgentResponse(messages=[reply], text=text, agent_name=self.name)

    async def _exchange(self, request: SendMessageRequest) -> list[StreamResponse]:
        async with httpx.AsyncClient(headers=self.headers, timeout=self.timeout) as http:
            config = ClientConfig(streaming=True, httpx_client=http)
            client = await create_client(self.card or self.url, config)
            try:
                return [event async for event in client.send_message(request)]
            finally:
                await client.close()

    def _answer(self, events: Sequence[StreamResponse]) -> str:
        artifacts: list[Artifact] = []
        status_text = ""
        for event in events:
            kind = event.WhichOneof("payload")
            if kind == "message":
                return _text(event.message.parts)
            if kind == "task":
                artifacts = list(event.task.artifacts) or artifacts
                state, status_text = event.task.status.state, _text(event.task.status.message.parts)
            elif kind == "artifact_update":
                artifacts.append(event.artifact_update.artifact)
                continue
            elif kind == "status_update":
                status = event.status_update.status
                state, status_text = status.state, _text(status.message.parts) or status_text
            else:
                continue
            if state in _FAILED:
                why = f": {status_text}" if status_text else ""
                raise self._error(f"{_FAILED[state]}{why}")
            if state in _WAITING:
                return status_text or "(the agent needs more input)"
        text = "\n".join(t for t in (_text(a.parts) for a in artifacts) if t)
        return text or status_text

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
