"""``MCPTools``: the tools of a Model Context Protocol server as Ledgerflow tools.

``async with MCPTools(command=[...]) as tools`` starts the server as a child process and
talks to it over stdio; ``MCPTools(url="http://.../mcp")`` connects to a streamable-HTTP
server. Inside the block, ``tools`` is an iterable of ``Tool`` objects, one per server tool,
offering the server's own JSON Schema to the model; pass it to ``ChatAgent(tools=...)``.

Decisions:

* A call the server answers with an error (``isError``, or a JSON-RPC error such as bad
  arguments) goes back to the model as a tool error; the loop carries on.
* A server that is gone (the process died, the connection closed, no answer within
  ``timeout`` seconds) raises ``MCPServerError`` naming the server: the model cannot fix
  that, so the agent's turn fails (and with it the executor) instead of looping or hanging.
* The child process gets the SDK's minimal default environment plus ``env``: never this
  process's whole environment, so secrets do not leak to third-party servers.
* Tool names a model would refuse (dots, spaces...) become ``_``; ``prefix`` namespaces them.
"""

from __future__ import annotations

import contextlib
import math
import re
import shlex
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from datetime import timedelta
from functools import partial
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import ClientSession, McpError, StdioServerParameters
from mcp import types as mt
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

from workflow.authoring import call_soon

from ._schema_tool import SchemaTool, ToolError, ToolUnavailableError
from ._tools import ApprovalMode, Tool

__all__ = ("MCPServerError", "MCPTools")

_BAD = re.compile(r"[^a-zA-Z0-9_-]")


_Call = Callable[[], Coroutine[Any, Any, None]]  # a call handed over from another loop


class MCPServerError(ToolUnavailableError):
    """An MCP server could not be started or reached, or stopped answering.

    Attributes:
        server: The server's label (its command line or URL).
    """

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


class MCPTools:
    """An MCP server's tools, for as long as the ``async with`` block lasts.

    The session lives on the event loop that entered the block; a tool called from another
    thread's loop (a handler on a thread backend) is carried over to it and its answer back.

    Args:
        command: The server's command line (stdio transport), e.g. ``["python", "srv.py"]``.
        url: A streamable-HTTP endpoint instead, e.g. ``"http://127.0.0.1:8000/mcp"``.
        env: Extra environment variables for the stdio server's process.
        headers: HTTP headers for the HTTP transport (e.g. ``Authorization``).
        approval_mode: For every tool, or a mapping of tool name to mode (unlisted tools
            need no approval).
        prefix: Prepended to each tool name (``"fs_"``), to keep two servers' tools apart.
        timeout: Seconds to wait for the server to start and for each answer.
        cwd: Working directory of the stdio server.

    Raises:
        ValueError: Neither or both of ``command`` and ``url``; a bad approval mode.
    """

    def __init__(
        self,
        command: Sequence[str] | None = None,
        *,
        url: str | None = None,
        env: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        approval_mode: ApprovalMode | Mapping[str, ApprovalMode] = "never_require",
        prefix: str = "",
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> None:
        if (command is None) == (url is None):
            raise ValueError(
                f"MCPTools needs exactly one of command=[...] (stdio) or url=... (streamable "
                f"HTTP), got command={command!r}, url={url!r}"
            )
        if command is not None and (isinstance(command, str) or not command):
            raise ValueError(
                f"MCPTools command must be a non-empty list of arguments, got {command!r}; "
                'write ["python", "server.py"] rather than one string'
            )
        if timeout <= 0:
            raise ValueError(f"MCPTools timeout must be > 0 seconds, got {timeout!r}")
        self.command = list(command) if command is not None else None
        self.url = url
        self.env = dict(env) if env is not None else None
        self.headers = dict(headers or {})
        self.approval_mode = approval_mode
        self.prefix = prefix
        self.timeout = timeout
        self.cwd = cwd
        self.server = shlex.join(self.command) if self.command is not None else str(url)
        self._session: ClientSession | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._closed = anyio.Event()
        self._dead: BaseException | None = None
        self._tools: tuple[Tool[Any, Any], ...] = ()
        self._home: anyio.lowlevel.EventLoopToken | None = None
        self._home_thread = 0
        self._inbox: MemoryObjectSendStream[_Call] | None = None

    def __repr__(self) -> str:
        return f"MCPTools(server={self.server!r}, tools={[t.name for t in self._tools]!r})"

    # -- lifetime ------------------------------------------------------------------------------
    # The transport lives in a task of its own: the SDK's transports run task groups, and a
    # transport failing inside the caller's task would cancel the caller. Here it only ends
    # that task, which records why, and later calls fail fast naming the server.
    async def __aenter__(self) -> MCPTools:
        if self._group is not None:
            raise ToolError(f"MCPTools for {self.server!r} is already open; close it first")
        self._closed = anyio.Event()
        self._dead = None
        group = anyio.create_task_group()
        await group.__aenter__()
        try:
            self._session = await group.start(self._serve)
            self._tools = tuple(await self._list_tools(self._session))
        except BaseException as exc:
            self._closed.set()
            with contextlib.suppress(Exception):
                await group.__aexit__(type(exc), exc, exc.__traceback__)
            self._session = None
            raise
        self._group = group
        self._home, self._home_thread = anyio.lowlevel.current_token(), threading.get_ident()
        self._inbox, inbox = anyio.create_memory_object_stream[_Call](math.inf)
        group.start_soon(self._courier, inbox)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        group, self._group, self._session = self._group, None, None
        self._home = None
        if self._inbox is not None:
            self._inbox.close()  # the courier ends once what was sent has started
            self._inbox = None
        self._tools = ()
        self._closed.set()
        if group is not None:
            await group.__aexit__(None, None, None)

    async def _courier(self, inbox: MemoryObjectReceiveStream[_Call]) -> None:
        """Starts the calls other threads' loops hand over (``_call_from_afar``)."""
        async with anyio.create_task_group() as calls:
            with inbox:
                async for call in inbox:
                    calls.start_soon(call)

    async def _serve(self, *, task_status: anyio.abc.TaskStatus[ClientSession]) -> None:
        started = False
        try:
            async with contextlib.AsyncExitStack() as stack:
                session = await self._connect(stack)
                task_status.started(session)
                started = True
                await self._closed.wait()
        except Exception as exc:
            if not started:
                raise MCPServerError(
                    f"MCP server {self.server!r} could not be started or reached: "
                    f"{_leaf(exc)!r}; check the command or URL, and that the server speaks MCP",
                    server=self.server,
                ) from exc
            self._dead = exc  # the connection broke: calls from now on fail naming the server

    async def _connect(self, stack: contextlib.AsyncExitStack) -> ClientSession:
        if self.command is not None:
            params = StdioServerParameters(
                command=self.command[0], args=self.command[1:], env=self.env, cwd=self.cwd
            )
            read, write = await stack.enter_async_context(stdio_client(params))
        else:
            client = httpx.AsyncClient(
                headers=self.headers, timeout=httpx.Timeout(self.timeout, read=self.timeout)
            )
            await stack.enter_async_context(client)
            read, write, _ = await stack.enter_async_context(
                streamable_http_client(str(self.url), http_client=client)
            )
        session = await stack.enter_async_context(
            ClientSession(read, write, read_timeout_seconds=timedelta(seconds=self.timeout))
        )
        with anyio.fail_after(self.timeout):
            await session.initialize()
        return session

    async def _list_tools(self, session: ClientSession) -> list[Tool[Any, Any]]:
        found: list[mt.Tool] = []
        cursor: str | None = None
        while True:
            page = await self._request(
                session.list_tools(params=mt.PaginatedRequestParams(cursor=cursor))
            )
            found.extend(page.tools)
            cursor = page.nextCursor
            if not cursor:
                break
        tools: list[Tool[Any, Any]] = []
        seen: dict[str, str] = {}
        for spec in found:
            name = _BAD.sub("_", f"{self.prefix}{spec.name}")[:64]
            if name in seen:
                raise MCPServerError(
                    f"MCP server {self.server!r}: tools {seen[name]!r} and {spec.name!r} both "
                    f"become {name!r}; pass prefix=... or use one of them through another "
                    "MCPTools",
                    server=self.server,
                )
            seen[name] = spec.name
            tools.append(
                SchemaTool(
                    name,
                    spec.description or spec.title or spec.name,
                    dict(spec.inputSchema),
                    self._caller(spec.name),
                    approval_mode=self._mode(spec.name),
                )
            )
        return tools

    def _mode(self, name: str) -> ApprovalMode:
        if isinstance(self.approval_mode, str):
            return self.approval_mode
        return self.approval_mode.get(name, "never_require")

    # -- the tools -----------------------------------------------------------------------------
    @property
    def tools(self) -> tuple[Tool[Any, Any], ...]:
        """The server's tools (empty outside the ``async with`` block)."""
        return self._tools

    def __iter__(self) -> Iterator[Tool[Any, Any]]:
        if self._session is None:
            raise ToolError(
                f"MCPTools for {self.server!r} is not open; use `async with MCPTools(...) as "
                "tools:` and pass tools inside the block"
            )
        return iter(self._tools)

    def __len__(self) -> int:
        return len(self._tools)

    def _caller(self, tool_name: str) -> Any:
        async def call(arguments: dict[str, Any]) -> str:
            return await self.call(tool_name, arguments)

        return call

    async def call(self, tool_name: str, arguments: dict[str, Any]) -> str:
        """Calls a server tool by its own name and returns its text.

        Raises:
            MCPServerError: The server is gone or did not answer in time.
            ToolError: The tool reported an error (its text says which); also a RuntimeError.
        """
        if self._home is not None and threading.get_ident() != self._home_thread:
            return await self._call_from_afar(self._home, tool_name, arguments)
        session = self._session
        if session is None:
            raise MCPServerError(
                f"MCP server {self.server!r} was closed before tool {tool_name!r} was called; "
                "call tools inside the `async with MCPTools(...)` block",
                server=self.server,
            )
        result = await self._request(session.call_tool(tool_name, arguments))
        text = _text_of(result)
        if result.isError:
            raise ToolError(text or f"tool {tool_name!r} failed without a message")
        return text

    async def _call_from_afar(
        self, home: anyio.lowlevel.EventLoopToken, tool_name: str, arguments: dict[str, Any]
    ) -> str:
        """Run the call on the session's own loop; nothing blocks either loop meanwhile."""
        here = anyio.lowlevel.current_token()
        send, receive = anyio.create_memory_object_stream[tuple[bool, Any]](1)
        scopes: list[anyio.CancelScope] = []  # touched on the home loop only

        def answer(item: tuple[bool, Any]) -> None:  # on the caller's loop
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                send.send_nowait(item)
            send.close()

        async def at_home() -> None:
            item: tuple[bool, Any] = (False, None)  # cancelled there: the caller has left
            try:
                with anyio.CancelScope() as scope:
                    scopes.append(scope)
                    try:
                        item = (True, await self.call(tool_name, arguments))
                    except Exception as exc:
                        item = (False, exc)
            finally:
                call_soon(here, partial(answer, item))

        def start() -> None:  # on the home loop, outside any task: the courier starts it
            try:
                if self._inbox is None:
                    raise anyio.ClosedResourceError
                self._inbox.send_nowait(at_home)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                call_soon(here, partial(answer, (False, None)))  # closed meanwhile

        if not call_soon(home, start):
            raise MCPServerError(
                f"MCP server {self.server!r}: the event loop that opened it has ended",
                server=self.server,
            )
        with receive:
            try:
                ok, value = await receive.receive()
            except anyio.get_cancelled_exc_class():
                call_soon(home, partial(_cancel_all, scopes))
                raise
        if ok:
            text: str = value
            return text
        if value is None:
            raise MCPServerError(
                f"MCP server {self.server!r} was closed before tool {tool_name!r} was called; "
                "call tools inside the `async with MCPTools(...)` block",
                server=self.server,
            )
        raise value

    async def _request(self, call: Any) -> Any:
        if self._dead is not None:
            call.close()  # the coroutine is never awaited
            raise self._gone(self._dead)
        try:
            with anyio.fail_after(self.timeout):
                return await call
        except McpError as exc:
            if exc.error.code != mt.CONNECTION_CLOSED and "Timed out" not in exc.error.message:
                raise ToolError(exc.error.message) from exc  # the model's fault: feed back
            raise self._gone(exc) from exc
        except (
            TimeoutError,
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.EndOfStream,
            httpx.HTTPError,
            OSError,
        ) as exc:
            raise self._gone(exc) from exc
        except Exception as exc:
            if self._dead is None:
                raise
            raise self._gone(self._dead) from exc

    def _gone(self, exc: BaseException) -> MCPServerError:
        detail = "no answer" if isinstance(exc, TimeoutError) else repr(_leaf(exc))
        return MCPServerError(
            f"MCP server {self.server!r} stopped answering ({detail}, timeout "
            f"{self.timeout:g} s); it may have crashed or closed the connection: check its log "
            "and restart it",
            server=self.server,
        )


def _cancel_all(scopes: list[anyio.CancelScope]) -> None:
    for scope in scopes:
        scope.cancel()


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, for a readable message."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _text_of(result: mt.CallToolResult) -> str:
    """A tool result as text: text parts joined; other parts described; else the
    structured content as JSON."""
    parts: list[str] = []
    for item in result.content:
        if isinstance(item, mt.TextContent):
            parts.append(item.text)
        elif isinstance(item, mt.ImageContent | mt.AudioContent):
            parts.append(f"[{item.type}: {item.mimeType}, {len(item.data)} base64 characters]")
        elif isinstance(item, mt.EmbeddedResource):
            resource = item.resource
            text = getattr(resource, "text", None)
            parts.append(text if isinstance(text, str) else f"[resource {resource.uri}]")
        elif isinstance(item, mt.ResourceLink):
            parts.append(f"[resource link {item.uri}]")
    if not parts and result.structuredContent is not None:
        import json

        parts.append(json.dumps(result.structuredContent))
    return "\n".join(parts)
