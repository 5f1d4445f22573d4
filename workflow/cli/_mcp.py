"""``ledgerflow mcp TARGET ...``: serve each workflow as an MCP tool (stdio, or ``--http``).

The server itself is ``executors._mcp_server`` (the mcp SDK loads only when this command
runs). Runs are kept in the store like any other run, so ``ledgerflow runs`` lists them.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._common import DEFAULT_STORE, EXIT_OK, UsageError, add_store_option, close_store, open_store
from ._load import load_workflow


def register(sub: Any) -> None:
    """Add ``mcp`` to the ``ledgerflow`` subcommands."""
    mcp = sub.add_parser("mcp", help="serve workflows as MCP tools (stdio or streamable HTTP)")
    add_store_option(mcp)
    mcp.add_argument("targets", nargs="+", metavar="TARGET", help="FILE.py[:ATTR] or a spec")
    mcp.add_argument(
        "--http", type=int, metavar="PORT", help="serve streamable HTTP at /mcp on this port"
    )
    mcp.add_argument("--host", default="127.0.0.1", help="HTTP address (default 127.0.0.1)")
    mcp.set_defaults(handler=cmd_mcp)


async def cmd_mcp(args: argparse.Namespace) -> int:
    try:
        from executors._mcp_server import WorkflowMCPServer
    except ImportError as exc:
        raise UsageError(
            f"ledgerflow mcp needs the MCP SDK ({exc}); pip install 'ledgerflow[mcp]'"
        ) from None
    if args.http is not None and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise UsageError(
            f"--host {args.host!r}: the MCP endpoint has no authentication, so it binds "
            "loopback only; put an authenticating proxy in front to reach it from elsewhere"
        )
    store = open_store(args.store or DEFAULT_STORE)
    try:
        workflows = []
        for target in args.targets:
            wf = await load_workflow(target)
            own = args.store is None and wf.checkpoint_store is not None
            workflows.append(wf if own else wf.with_store(store))
        server = WorkflowMCPServer(workflows)
        if args.http is not None:
            await server.run_http(args.host, args.http)
        else:
            await server.run_stdio()
    finally:
        await close_store(store)
    return EXIT_OK
