"""``ledgerflow prune``: delete old history from a store (whole runs, or old checkpoints).

``--older-than AGE`` deletes whole runs last updated before then (``--status`` narrows which),
``--keep-last N`` keeps the newest N checkpoints of every run (or of ``--run RUN_ID``). Both
may be given: old runs go first, then the rest are trimmed. A run being executed is never
deleted (the stores' run lock decides). The events a ``ledgerflow serve`` logged beside the
store for the runs that are gone are deleted too, so a stream never replays a deleted run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from typing import Any

from workflow import CheckpointError, RunStatus
from workflow._errors import store_call
from workflow._stores._common import RunLockedError

from ._common import (
    DEFAULT_STORE,
    EXIT_OK,
    RunError,
    UsageError,
    add_store_option,
    close_store,
    open_store,
    say,
)

_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def register(sub: Any) -> None:
    """Add ``prune`` to the ``ledgerflow`` subcommands."""
    prune = sub.add_parser(
        "prune",
        help="delete old runs or old checkpoints",
        description="Delete whole runs last updated before --older-than, and/or all but the "
        "newest --keep-last checkpoints of each run (or of --run). A run being executed is "
        "never deleted. Space freed inside SQLite or PostgreSQL returns to the disk on VACUUM.",
    )
    add_store_option(prune)
    prune.add_argument("--run", metavar="RUN_ID", help="trim only this run (with --keep-last)")
    prune.add_argument(
        "--keep-last", metavar="N", type=int, help="keep the newest N checkpoints of each run"
    )
    prune.add_argument(
        "--older-than",
        metavar="AGE",
        help="delete runs not updated for AGE: a number and s, m, h, d or w (30d, 12h)",
    )
    prune.add_argument(
        "--status",
        metavar="S[,S...]",
        help="with --older-than, only runs with these statuses ("
        + ", ".join(s.value for s in RunStatus)
        + ")",
    )
    prune.add_argument(
        "--vacuum",
        action="store_true",
        help="then give the freed space back to the disk: SQLite VACUUM, PostgreSQL VACUUM "
        "FULL (each table is locked while it is rewritten)",
    )
    prune.add_argument("--json", action="store_true", help="print the counts as one JSON object")
    prune.set_defaults(handler=cmd_prune)


def parse_age(text: str) -> dt.timedelta:
    """``30d`` -> 30 days; a usage error naming the value otherwise."""
    found = _AGE.fullmatch(text.strip().lower())
    if found is None:
        raise UsageError(
            f"--older-than: cannot read {text!r} as an age; write a number and a unit "
            "(s, m, h, d or w), e.g. 30d or 12h"
        )
    return dt.timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})


def _check(args: argparse.Namespace) -> None:
    if args.run is not None and args.keep_last is None:
        raise UsageError("--run RUN_ID needs --keep-last N (how many checkpoints to keep)")
    if args.keep_last is None and args.older_than is None:
        raise UsageError("say what to prune: --older-than AGE, --keep-last N, or both")
    if args.run is not None and args.older_than is not None:
        raise UsageError(
            "--run trims one run's checkpoints; --older-than deletes whole runs of the store: "
            "use one of them"
        )
    if args.status is not None and args.older_than is None:
        raise UsageError("--status selects the runs --older-than deletes; give --older-than too")


async def cmd_prune(args: argparse.Namespace) -> int:
    _check(args)
    age = parse_age(args.older_than) if args.older_than is not None else None
    if args.keep_last is not None and args.keep_last < 0:
        raise UsageError(f"--keep-last must be 0 or more, got {args.keep_last}")
    statuses = None
    if args.status is not None:
        statuses = [s.strip() for s in args.status.split(",") if s.strip()]
    store = open_store(args.store or DEFAULT_STORE)
    counts = {"runs_deleted": 0, "checkpoints_deleted": 0, "runs_trimmed": 0}
    try:
        before = await _run_ids(store)
        if age is not None:
            counts["runs_deleted"] = await store.prune_runs(age, status=statuses)
        if args.keep_last is not None:
            await _keep_last(store, args, counts)
        gone = before - await _run_ids(store)
        counts["events_deleted"] = await _forget_events(args.store or DEFAULT_STORE, gone)
        vacuumed = await _vacuum(store) if args.vacuum else None
    except ValueError as exc:  # the store's own check of an argument: a usage error
        raise UsageError(str(exc)) from None
    except CheckpointError as exc:
        raise RunError(str(exc)) from None
    finally:
        await close_store(store)
    if args.json:
        say(json.dumps({**counts, "vacuum": vacuumed} if args.vacuum else counts))
        return EXIT_OK
    if age is not None:
        which = f" ({args.status})" if statuses else ""
        say(f"deleted {counts['runs_deleted']} runs{which} not updated for {args.older_than}")
    if args.keep_last is not None:
        say(
            f"deleted {counts['checkpoints_deleted']} checkpoints of {counts['runs_trimmed']} "
            f"runs, keeping the newest {args.keep_last} of each"
        )
    if args.vacuum:
        say(
            f"ran {vacuumed}"
            if vacuumed
            else "nothing to vacuum: this store frees space as it deletes"
        )
    return EXIT_OK


async def _forget_events(url: str, gone: set[str]) -> int:
    """Delete the service's logged events of the runs pruned from the store at ``url``.

    Only runs this prune removed are touched (a run a server just started may have events
    before its first checkpoint). A log that was never written is not created.
    """
    from workflow._service._eventlog import SQLiteEventLog, eventlog_for_url

    log = eventlog_for_url(url)
    if not gone or (isinstance(log, SQLiteEventLog) and not log.path.exists()):
        return 0
    try:
        return await log.forget(gone)
    finally:
        await log.aclose()


async def _vacuum(store: Any) -> str | None:
    """Run the store's own vacuum, if it has one; returns what ran."""
    from workflow import PostgresCheckpointStore, SQLiteCheckpointStore

    if isinstance(store, PostgresCheckpointStore):
        await store.vacuum(full=True)
        return "VACUUM FULL"
    if isinstance(store, SQLiteCheckpointStore):
        await store.vacuum()
        return "VACUUM"
    return None


async def _run_ids(store: Any) -> set[str]:
    with store_call(store, "list runs", None):
        return {info.run_id for info in await store.list_runs()}


async def _keep_last(store: Any, args: argparse.Namespace, counts: dict[str, int]) -> None:
    if args.run is not None:
        deleted = await store.prune(args.run, keep_last=args.keep_last)
        counts["checkpoints_deleted"] = deleted
        counts["runs_trimmed"] = int(deleted > 0)
        return
    with store_call(store, "list runs", None):
        runs = await store.list_runs()
    for info in runs:
        try:
            deleted = await store.prune(info.run_id, keep_last=args.keep_last)
        except ValueError:
            continue  # an unknown run: deleted since it was listed
        except RunLockedError:
            continue  # --keep-last 0 and an owner is executing it: left alone
        counts["checkpoints_deleted"] += deleted
        counts["runs_trimmed"] += deleted > 0
