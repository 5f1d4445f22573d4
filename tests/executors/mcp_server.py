"""A small MCP server built with the SDK's own FastMCP, for the MCP client tests.

``python mcp_server.py stdio`` or ``python mcp_server.py http PORT`` (streamable HTTP on
127.0.0.1). Tools: ``add``, ``fail`` (raises), ``die`` (the process exits at once),
``env_var`` (reads the server's environment) and ``tell.time`` (a dotted name).
"""

from __future__ import annotations

import os
import sys

from mcp.server.fastmcp import FastMCP

server = FastMCP("test-server", host="127.0.0.1")


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message."""
    raise ValueError(message)


@server.tool()
def die() -> str:
    """Kills the server process mid-call."""
    os._exit(3)


@server.tool()
def env_var(name: str) -> str:
    """The value of an environment variable of the server, or '<unset>'."""
    return os.environ.get(name, "<unset>")


@server.tool(name="tell.time")
def tell_time() -> str:
    """A fixed time."""
    return "12:00"


if __name__ == "__main__":
    if sys.argv[1] == "http":
        server.settings.port = int(sys.argv[2])
        server.run("streamable-http")
    else:
        server.run("stdio")
