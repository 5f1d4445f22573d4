"""What every subcommand shares: errors and exit codes, output helpers, stores, options."""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from workflow.events import WorkflowEvent

DEFAULT_STORE = "sqlite:///.ledgerflow/runs.db"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_WAITING = 0, 1, 2, 3


class UsageError(Exception):
    """A mistake in what the user asked for: one line on stderr, exit code 2."""


class RunError(Exception):
    """The environment or the run failed: one line on stderr, exit code 1."""


def say(text: str) -> None:
    """A line of results on stdout (flushed: a reader may be waiting for it)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def warn(text: str) -> None:
    """A line for the human on stderr."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors exit with code 2 and one ``ledgerflow:`` line."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ledgerflow: error: {message}\n")


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """``--store URL``: every command that reads or writes runs takes it."""
    help_text = f"checkpoint store (default {DEFAULT_STORE})"
    parser.add_argument("--store", metavar="URL", help=help_text)


def add_streaming_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--no-input``: the options of commands that stream a run."""
    parser.add_argument("--json", action="store_true", help="stream events as JSON lines")
    parser.add_argument("--no-input", action="store_true", help="never prompt on a terminal")


# -- stores ------------------------------------------------------------------------------------
def open_store(url: str) -> Any:
    """The store ``url`` names; a bad URL is a usage error."""
    from_url = _store_from_url()
    try:
        return from_url(url)
    except ValueError as exc:
        raise UsageError(f"--store: {exc}") from None


def _store_from_url() -> Callable[[str], Any]:
    import workflow

    found: Any = getattr(workflow, "store_from_url", None)
    if found is None:  # not re-exported yet: the stores package has it
        from workflow._stores import store_from_url

        found = store_from_url
    return found  # type: ignore[no-any-return]


async def close_store(store: Any) -> None:
    """Close ``store`` if it holds connections (``aclose``); other stores need nothing."""
    close = getattr(store, "aclose", None)
    if close is not None:
        await close()


# -- output ------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Turn an event field into JSON: containers recursively, models dumped, the rest str."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, type):
        return value.__qualname__
    if dataclasses.is_dataclass(value):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return jsonable(dump(mode="json"))
        except Exception:
            return str(value)
    return str(value)


def event_json(event: WorkflowEvent) -> str:
    """One JSON line: ``{"event": ClassName, ...fields}``."""
    body = {"event": type(event).__name__}
    body.update({f.name: jsonable(getattr(event, f.name)) for f in dataclasses.fields(event)})
    return json.dumps(body, ensure_ascii=False)


def show(value: Any) -> str:
    """An output on one line: text as is, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(jsonable(value), ensure_ascii=False)
