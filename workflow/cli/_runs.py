"""``ledgerflow runs`` and ``ledgerflow checkpoints``: list what a store holds."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow import CheckpointError
from workflow._errors import store_call

from ._common import (
    DEFAULT_STORE,
    EXIT_OK,
    RunError,
    UsageError,
    add_store_option,
    close_store,
    open_store,
    say,
    warn,
)


def register(sub: Any) -> None:
    """Add ``runs`` and ``checkpoints`` to the ``ledgerflow`` subcommands."""
    runs = sub.add_parser("runs", help="list runs")
    add_store_option(runs)
    runs.add_argument("--json", action="store_true", help="one JSON object per run")
    runs.set_defaults(handler=cmd_runs)

    checkpoints = sub.add_parser("checkpoints", help="list a run's checkpoints")
    add_store_option(checkpoints)
    checkpoints.add_argument("run_id", metavar="RUN_ID")
    checkpoints.add_argument("--json", action="store_true", help="one JSON object per checkpoint")
    checkpoints.set_defaults(handler=cmd_checkpoints)


async def cmd_runs(args: argparse.Namespace) -> int:
    store = open_store(args.store or DEFAULT_STORE)
    try:
        with store_call(store, "list runs", None):
            runs = await store.list_runs()
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    finally:
        await close_store(store)
    rows = [[r.run_id, r.workflow_name, str(r.status), r.updated_at.isoformat()] for r in runs]
    _table(args, ["run_id", "workflow", "status", "updated_at"], rows, "no runs in the store")
    return EXIT_OK


async def cmd_checkpoints(args: argparse.Namespace) -> int:
    store = open_store(args.store or DEFAULT_STORE)
    try:
        with store_call(store, "list checkpoints", args.run_id):
            checkpoints = await store.list_checkpoints(args.run_id)
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    finally:
        await close_store(store)
    if not checkpoints:
        raise UsageError(f"unknown run {args.run_id!r}: the store has no checkpoints for it")
    rows = [
        [c.id, str(c.superstep), c.parent_id or "-", str(c.status), c.created_at.isoformat()]
        for c in checkpoints
    ]
    _table(args, ["checkpoint_id", "superstep", "parent_id", "status", "created_at"], rows, "")
    return EXIT_OK


def _table(args: argparse.Namespace, header: list[str], rows: list[list[str]], empty: str) -> None:
    if args.json:
        for row in rows:
            say(json.dumps(dict(zip(header, row, strict=True)), ensure_ascii=False))
        return
    if not rows:
        warn(empty)
        return
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]
    for row in [[h.upper() for h in header], *rows]:
        say("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
