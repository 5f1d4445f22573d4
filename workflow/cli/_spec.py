"""``ledgerflow spec``: the spec format's JSON Schema, and specs checked or written from code.

``spec schema`` prints the JSON Schema editors use to complete and check ``team.yaml``;
``spec check TARGET`` loads a spec (or any target) and says what it builds; ``spec dump
TARGET`` writes the spec of a workflow (from ``FILE.py[:ATTR]`` too) as YAML or JSON, which
is how a team written in Python becomes a file to review and edit.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._common import EXIT_OK, UsageError, say
from ._load import load_workflow


def register(sub: Any) -> None:
    """Add ``spec`` (with ``schema``, ``check`` and ``dump``) to the subcommands."""
    spec = sub.add_parser("spec", help="the spec format: schema, check, dump")
    actions = spec.add_subparsers(dest="action", required=True, parser_class=type(spec))
    schema = actions.add_parser("schema", help="print the JSON Schema of a spec")
    schema.set_defaults(handler=cmd_schema)
    check = actions.add_parser("check", help="load a spec and say what it builds")
    check.add_argument("target", metavar="SPEC|FILE.py[:ATTR]")
    check.set_defaults(handler=cmd_check)
    dump = actions.add_parser("dump", help="write a workflow's spec (YAML, or JSON)")
    dump.add_argument("target", metavar="FILE.py[:ATTR]|SPEC")
    dump.add_argument("--json", action="store_true", help="JSON instead of YAML")
    dump.set_defaults(handler=cmd_dump)


def cmd_schema(args: argparse.Namespace) -> int:
    from builders._spec_schema import spec_json_schema

    say(json.dumps(spec_json_schema(), indent=2))
    return EXIT_OK


async def cmd_check(args: argparse.Namespace) -> int:
    wf = await load_workflow(args.target)
    nodes = ", ".join(wf.executors)
    say(f"{wf.name}: {len(wf.executors)} nodes ({nodes}), start {wf.start_executor_id}")
    return EXIT_OK


async def cmd_dump(args: argparse.Namespace) -> int:
    from builders import SpecError, dump_spec

    wf = await load_workflow(args.target)
    try:
        data = dump_spec(wf)
    except SpecError as exc:
        raise UsageError(f"cannot write a spec of {wf.name!r}: {exc}") from None
    if args.json:
        say(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        import yaml

        say(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=96).rstrip())
    return EXIT_OK
