"""A local OpenAI-compatible chat completions server for driving the real client in tests.

Loopback only, port 0, one background thread; each request takes the next scripted behaviour
from a queue (a ``Reply`` or a fault) and falls back to echoing the last user message::

    with OpenAITestServer() as srv:
        srv.enqueue(Status(429, retry_after=0.05), Reply("hello"))
        client = OpenAIChatClient("m", base_url=srv.base_url, api_key="k")
        ...
        assert len(srv.requests) == 2

Every response closes its connection, so no keep-alive socket outlives a test and a fault in
one request cannot poison the next.
"""

from __future__ import annotations

import collections
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "Behaviour",
    "Disconnect",
    "Malformed",
    "OpenAITestServer",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Stall",
    "Status",
]


@dataclass(frozen=True)
class Reply:
    """A successful completion, sent as JSON or as SSE chunks when the request streams."""

    text: str | None = ""
    tool_calls: tuple[tuple[str, str, str], ...] = ()  # (id, name, arguments JSON)
    finish_reason: str | None = None  # default: "tool_calls" if tool_calls else "stop"
    prompt_tokens: int = 7
    completion_tokens: int = 5
    model: str | None = None  # default: the requested model
    malformed_chunk_after: int | None = None  # streaming: send invalid JSON after N chunks
    error_event_after: int | None = None  # streaming: send an {"error": ...} event, then stop
    chunk_delay: float = 0.0  # streaming: seconds between chunks (a slow but steady model)
    stream_usage: bool = True  # streaming: False never sends usage (like llama-cpp-python)
    stall_after: int | None = None  # streaming: go silent after N chunks...
    stall_seconds: float = 5.0  # ...for this long (or until the server stops), then hang up


@dataclass(frozen=True)
class Status:
    """An HTTP error with an OpenAI-style error body."""

    code: int
    message: str = "scripted failure"
    retry_after: float | None = None
    echo_authorization: bool = False  # put the Authorization header into the message


@dataclass(frozen=True)
class Reset:
    """Read the request, then reset the connection without answering."""


@dataclass(frozen=True)
class Stall:
    """Answer nothing for ``seconds`` (longer than the client's timeout), then hang up."""

    seconds: float = 5.0


@dataclass(frozen=True)
class Malformed:
    """A 200 response whose body is not valid JSON."""

    body: bytes = b'{"id": "x", "choices": [{"message": '
    content_type: str = "application/json"


@dataclass(frozen=True)
class Disconnect:
    """Streaming: send the first ``after_chunks`` SSE chunks of ``reply``, then drop the line."""

    reply: Reply = field(default_factory=lambda: Reply("one two three four five"))
    after_chunks: int = 2


Behaviour = Reply | Status | Reset | Stall | Malformed | Disconnect


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: a clean shutdown
    block_on_close = True

    def __init__(self, owner: OpenAITestServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Faults break sockets on purpose; a traceback on stderr would only be noise.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        owner = self.server.owner
        self.close_connection = True
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        behaviour = owner._record_and_next(RecordedRequest("POST", self.path, headers, body))
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        request = body if isinstance(body, dict) else {}
        owner._track(self.connection)
        try:
            self._serve(behaviour, request, headers)
        except OSError:
            pass  # the client gave up (timeout) or we cut the line on purpose
        except Exception as exc:  # a bug in this server: make it visible to the test
            owner.errors.append(exc)
            raise
        finally:
            owner._untrack(self.connection)

    def _serve(self, b: Behaviour | None, request: dict[str, Any], headers: dict[str, str]) -> None:
        streaming = bool(request.get("stream"))
        if b is None:
            b = Reply(f"echo: {_last_user_text(request)}")
        if isinstance(b, Reply):
            if streaming:
                self._stream(b, request, cut_after=None)
            else:
                self._send_json(200, _completion(b, request))
        elif isinstance(b, Status):
            message = b.message
            if b.echo_authorization:
                message += f" (received {headers.get('authorization', '')})"
            extra = {} if b.retry_after is None else {"Retry-After": f"{b.retry_after:g}"}
            body = {"error": {"message": message, "type": "scripted", "code": str(b.code)}}
            self._send_json(b.code, body, extra)
        elif isinstance(b, Reset):
            self._reset()
        elif isinstance(b, Stall):
            self.server.owner._stopping.wait(b.seconds)
            self._reset()
        elif isinstance(b, Malformed):
            self._send_raw(200, b.body, b.content_type)
        elif isinstance(b, Disconnect):
            self._stream(b.reply, request, cut_after=b.after_chunks)

    # ----------------------------------------------------------------- writers

    def _send_json(
        self, code: int, payload: Any, extra_headers: dict[str, str] | None = None
    ) -> None:
        self._send_raw(code, json.dumps(payload).encode(), "application/json", extra_headers)

    def _send_raw(
        self,
        code: int,
        data: bytes,
        content_type: str,
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _stream(self, reply: Reply, request: dict[str, Any], cut_after: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        include_usage = include_usage and reply.stream_usage
        for n, event in enumerate(_chunks(reply, request, include_usage)):
            if reply.stall_after is not None and n == reply.stall_after:
                self.server.owner._stopping.wait(reply.stall_seconds)
                self._reset()
                return
            if reply.chunk_delay and n:
                time.sleep(reply.chunk_delay)
            if cut_after is not None and n >= cut_after:
                self.wfile.flush()
                self._reset()  # no terminating zero-length chunk: an incomplete body
                return
            if reply.malformed_chunk_after is not None and n == reply.malformed_chunk_after:
                self._write_chunk(b"data: {not json\n\n")
            if reply.error_event_after is not None and n == reply.error_event_after:
                error = {"error": {"message": "model overloaded", "type": "server_error"}}
                self._write_chunk(f"data: {json.dumps(error)}\n\n".encode())
                break
            self._write_chunk(f"data: {json.dumps(event)}\n\n".encode())
        self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _reset(self) -> None:
        # SO_LINGER 0 makes close() send RST: the client sees a reset, not a clean EOF.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


class OpenAITestServer:
    """A scripted OpenAI-compatible server on 127.0.0.1, run in a background thread.

    Attributes:
        requests: Every request received, oldest first.
        errors: Unexpected handler exceptions (bugs in this server), for tests to assert empty.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.errors: list[Exception] = []  # unexpected exceptions in handlers
        self._queue: collections.deque[Behaviour] = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._live: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give a client as ``base_url`` (ends in ``/v1``)."""
        if self._server is None:
            raise RuntimeError("OpenAITestServer is not running; use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def enqueue(self, *behaviours: Behaviour) -> None:
        """Scripts how the next requests are answered, in order."""
        with self._lock:
            self._queue.extend(behaviours)

    def completion_requests(self) -> list[RecordedRequest]:
        """The requests made to ``/v1/chat/completions``."""
        with self._lock:
            return [r for r in self.requests if r.path.rstrip("/") == "/v1/chat/completions"]

    def _record_and_next(self, request: RecordedRequest) -> Behaviour | None:
        with self._lock:
            self.requests.append(request)
            return self._queue.popleft() if self._queue else None

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.add(sock)

    def _untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.discard(sock)

    def __enter__(self) -> OpenAITestServer:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="openai-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        assert self._thread is not None
        self._stopping.set()  # wakes stalled handlers
        self._server.shutdown()
        with self._lock:
            live = list(self._live)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()  # joins handler threads
        self._thread.join(timeout=5)
        self._server = None


def _last_user_text(request: dict[str, Any]) -> str:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content") or "")
    return ""


def _finish_reason(reply: Reply) -> str:
    if reply.finish_reason is not None:
        return reply.finish_reason
    return "tool_calls" if reply.tool_calls else "stop"


def _completion(reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}
            for cid, name, args in reply.tool_calls
        ]
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or request.get("model", "unknown"),
        "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply)}],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def _chunks(reply: Reply, request: dict[str, Any], include_usage: bool) -> list[dict[str, Any]]:
    model = reply.model or request.get("model", "unknown")

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    words = (reply.text or "").split(" ")
    for i, word in enumerate(words):
        piece = word if i == len(words) - 1 else word + " "
        if piece:
            out.append(chunk({"content": piece}))
    for index, (cid, name, args) in enumerate(reply.tool_calls):
        head = {"index": index, "id": cid, "type": "function"}
        out.append(chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]}))
        for start in range(0, len(args), 4):  # arguments arrive in small fragments
            frag = {"index": index, "function": {"arguments": args[start : start + 4]}}
            out.append(chunk({"tool_calls": [frag]}))
    out.append(chunk({}, _finish_reason(reply)))
    if include_usage:
        out.append(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": reply.prompt_tokens,
                    "completion_tokens": reply.completion_tokens,
                    "total_tokens": reply.prompt_tokens + reply.completion_tokens,
                },
            }
        )
    return out
