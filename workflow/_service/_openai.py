"""``POST /v1/responses``: any OpenAI client can call a served workflow.

``model`` names a workflow whose start executor takes text; ``input`` is text or a list of
input messages (the last user message's text is the workflow's input). The run is an ordinary
run of the server (in the store, listed, streamed); the response's ``metadata.run_id`` names it.
The answer's text is each workflow output as text (a string as it is, an object's ``text``, a
conversation's last message), joined by newlines; with ``stream: true`` each output is sent
as one ``response.output_text.delta`` when the run emits it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from ._encode import dumps, plain
from ._errors import ApiError
from ._runs import TERMINAL, RunHandle

if TYPE_CHECKING:
    from ._app import _Api

__all__ = ("output_text", "responses_endpoint")

_ALLOWED = {"model", "input", "stream", "instructions", "metadata", "store", "user"}


def output_text(value: Any) -> str:
    """One workflow output as text."""
    if isinstance(value, str):
        return value
    text = value.get("text") if isinstance(value, dict) else getattr(value, "text", None)
    if isinstance(text, str):
        return text
    if isinstance(value, list | tuple) and value:
        return output_text(value[-1])
    return dumps(plain(value))


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        for item in reversed(value):
            if not isinstance(item, dict) or item.get("role", "user") != "user":
                continue
            content = item.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                parts = [
                    p.get("text", "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") in ("input_text", "text")
                ]
                return "".join(str(p) for p in parts)
    raise ApiError(
        422,
        "invalid_input",
        '"input" must be text or a list of messages with a user message '
        '({"role": "user", "content": "..."})',
    )


def responses_endpoint(api: _Api) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    """The route handler, bound to the app's run manager."""
    manager = api.manager

    async def endpoint(request: Request) -> Response:
        body = await api.body(request)
        extra = sorted(set(body) - _ALLOWED)
        if extra:
            raise ApiError(422, "unknown_field", f"unsupported field(s) {extra}")
        model = body.get("model")
        if not isinstance(model, str):
            raise ApiError(422, "invalid_request", '"model" must name a served workflow')
        wf = manager.workflow(model)
        value = manager.convert_input(wf, _input_text(body.get("input")))
        response_id = f"resp_{uuid.uuid4().hex}"
        handle = await manager.start(wf, value)
        shell = _Shell(response_id, model, handle)
        if body.get("stream"):
            return StreamingResponse(
                _stream(manager, handle, shell),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        await handle.done.wait()
        return JSONResponse(shell.response(_texts(handle.outputs), handle))

    return endpoint


def _texts(outputs: list[Any]) -> list[str]:
    return [output_text(o) for o in outputs]


class _Shell:
    """The parts of a Response object that do not change while the run goes on."""

    def __init__(self, response_id: str, model: str, handle: RunHandle) -> None:
        self.id = response_id
        self.model = model
        self.run_id = handle.run_id
        self.created_at = int(time.time())
        self.message_id = f"msg_{uuid.uuid4().hex}"

    def message(self, text: str, status: str) -> dict[str, Any]:
        return {
            "type": "message",
            "id": self.message_id,
            "status": status,
            "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}],
        }

    def response(self, texts: list[str] | None, handle: RunHandle | None) -> dict[str, Any]:
        status = "in_progress"
        error = None
        if handle is not None:
            status = {"completed": "completed", "awaiting_input": "incomplete"}.get(
                handle.status, "failed"
            )
            if status == "failed":
                error = {"code": "server_error", "message": handle.error or handle.status}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "model": self.model,
            "output": [] if texts is None else [self.message("\n".join(texts), "completed")],
            "error": error,
            "incomplete_details": (
                {"reason": "awaiting_input"} if status == "incomplete" else None
            ),
            "parallel_tool_calls": False,
            "tool_choice": "auto",
            "tools": [],
            "metadata": {"run_id": self.run_id},
            "usage": None,
        }


async def _stream(manager: Any, handle: RunHandle, shell: _Shell) -> AsyncIterator[bytes]:
    seq = 0

    def frame(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        seq += 1
        data = {"type": kind, "sequence_number": seq, **fields}
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    sub, recent, _ = manager.subscribe(handle.run_id)
    try:
        yield frame("response.created", response=shell.response(None, None))
        yield frame("response.in_progress", response=shell.response(None, None))
        yield frame(
            "response.output_item.added", output_index=0, item=shell.message("", "in_progress")
        )
        part = {"type": "output_text", "text": "", "annotations": []}
        ids = {"item_id": shell.message_id, "output_index": 0, "content_index": 0}
        yield frame("response.content_part.added", part=part, **ids)
        texts: list[str] = []
        pending = list(recent)
        while True:
            if pending:
                _, body = pending.pop(0)
            else:
                try:
                    _, body = await sub.receive.receive()
                except Exception:  # closed: the run ended (or this stream fell behind)
                    break
            event = json.loads(body)
            if event["type"] == "OutputEmitted":
                texts.append(output_text(event["data"]))
                delta = ("\n" if len(texts) > 1 else "") + texts[-1]
                yield frame("response.output_text.delta", delta=delta, logprobs=[], **ids)
            elif event["type"] == "RunFinished" and (
                event["status"] in TERMINAL or event["status"] == "awaiting_input"
            ):
                break
        await handle.done.wait()
        texts = _texts(handle.outputs)
        text = "\n".join(texts)
        yield frame("response.output_text.done", text=text, logprobs=[], **ids)
        yield frame(
            "response.content_part.done",
            part={"type": "output_text", "text": text, "annotations": []},
            **ids,
        )
        yield frame(
            "response.output_item.done", output_index=0, item=shell.message(text, "completed")
        )
        final = shell.response(texts, handle)
        kind = {"completed": "response.completed", "incomplete": "response.incomplete"}.get(
            final["status"], "response.failed"
        )
        yield frame(kind, response=final)
    finally:
        manager.unsubscribe(sub)
