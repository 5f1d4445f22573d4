"""The ``ledgerflow`` parser, built from the subcommand modules found in this package."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
from collections.abc import Sequence
from typing import Any

import anyio

from ._common import EXIT_FAILED, EXIT_USAGE, Parser, RunError, UsageError, warn


def _command_modules() -> list[Any]:
    """Every module of this package that has a ``register`` function, in name order.

    Discovered rather than listed so that a new subcommand is one new file and no edit to a
    shared one (several people add subcommands at the same time).
    """
    package = __name__.rpartition(".")[0]
    path = importlib.import_module(package).__path__
    modules = []
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        if info.name.startswith("__"):  # __main__ runs the CLI when imported
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if callable(getattr(module, "register", None)):
            modules.append(module)
    return modules


def build_parser() -> argparse.ArgumentParser:
    """The ``ledgerflow`` argument parser, one subcommand group per command module."""
    parser = Parser(prog="ledgerflow", description="Run, resume and draw Ledgerflow workflows.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    handler = args.handler
    try:
        if inspect.iscoroutinefunction(handler):
            return int(anyio.run(handler, args))
        return int(handler(args))
    except UsageError as exc:
        warn(f"ledgerflow: error: {exc}")
        return EXIT_USAGE
    except RunError as exc:
        warn(f"ledgerflow: error: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        warn("ledgerflow: interrupted")
        return 130
    except Exception as exc:
        if os.environ.get("LEDGERFLOW_TRACEBACK") == "1":
            raise
        warn(
            f"ledgerflow: internal error: {type(exc).__name__}: {exc} "
            "(LEDGERFLOW_TRACEBACK=1 shows where)"
        )
        return EXIT_FAILED
