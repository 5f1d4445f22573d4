"""``ledgerflow viz``: draw a workflow, optionally coloured with a run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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
from ._load import load_workflow


def register(sub: Any) -> None:
    """Add ``viz`` to the ``ledgerflow`` subcommands."""
    viz = sub.add_parser("viz", help="draw a workflow (and a run's overlay)")
    add_store_option(viz)
    viz.add_argument("target", metavar="FILE.py[:ATTR]|SPEC.yaml")
    viz.add_argument(
        "-o", "--output", required=True, metavar="OUT", help=".svg .png .pdf .dot .mmd"
    )
    viz.add_argument("--run", metavar="RUN_ID", help="colour the diagram with this run")
    viz.add_argument("--direction", choices=("TB", "LR"), default="TB")
    viz.set_defaults(handler=cmd_viz)


async def cmd_viz(args: argparse.Namespace) -> int:
    from visualize import FORMATS, DotNotFoundError, load_overlay, render

    wf = await load_workflow(args.target)
    if Path(args.output).suffix.lower() not in FORMATS:
        raise UsageError(f"-o {args.output!r}: unknown suffix; use one of {', '.join(FORMATS)}")
    run: Any = None
    if args.run is not None:
        url = args.store or (None if wf.checkpoint_store is not None else DEFAULT_STORE)
        store = wf.checkpoint_store if url is None else open_store(url)
        try:
            run = await load_overlay(args.run, store)
        except LookupError:
            raise UsageError(
                f"unknown run {args.run!r}: the store has no checkpoint for it"
            ) from None
        finally:
            if url is not None:
                await close_store(store)
    try:
        path = render(wf, args.output, run=run, direction=args.direction)
    except DotNotFoundError as exc:
        raise RunError(str(exc)) from None
    except OSError as exc:
        raise RunError(f"cannot write {args.output!r}: {exc.strerror or exc}") from None
    say(str(path))
    return EXIT_OK
