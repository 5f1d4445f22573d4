"""``ledgerflow``: run, resume, list and draw workflows from the command line.

The one part of ``workflow`` that wires the layers together (it imports ``visualize`` and
``builders``). Commands: ``run``, ``resume``, ``runs``, ``checkpoints``, ``viz``, ``spec``
(and one per module added below); every one that reads runs takes ``--store URL`` (default
``sqlite:///.ledgerflow/runs.db``). A target is ``FILE.py[:ATTR]`` or a spec file
(``.yaml``/``.yml``/``.json``, see ``builders.load_spec``); ``_load.load_workflow`` loads
either. A workflow loaded from a file runs with the CLI's store: ``--store`` when given, else
the workflow's own store, else the default.

Exit codes: 0 completed, 3 awaiting input, 1 failed (or cancelled, or out of supersteps, or
an environment problem such as a missing ``dot``), 2 usage errors. Errors are one line on
stderr; ``LEDGERFLOW_TRACEBACK=1`` shows the traceback of unexpected ones. Progress is drawn
on stderr when it is a terminal; stdout carries the run id and outputs (or, with ``--json``,
one JSON object per event).

Adding a subcommand: create one module here, e.g. ``workflow/cli/_serve.py``, with a
function ``register(sub)`` that adds its parser(s) to ``sub`` (argparse's subparsers object)
and sets ``handler=`` on each::

    def register(sub: Any) -> None:
        serve = sub.add_parser("serve", help="serve workflows over HTTP")
        add_store_option(serve)              # from ._common, if it reads runs
        serve.add_argument("target", metavar="TARGET")
        serve.set_defaults(handler=cmd_serve)

    async def cmd_serve(args: argparse.Namespace) -> int: ...   # or a plain function

The parser imports every module of this package and calls each ``register`` it finds, in
module-name order; no list to edit. A handler is ``async`` (run under ``anyio.run``) or
plain, returns the exit code, and raises ``UsageError`` (exit 2) or ``RunError`` (exit 1) for
one-line errors. Every module is imported on each start: import heavy things (a web server,
an SDK) inside the handler. Shared helpers live in ``_common`` (``say``, ``warn``,
``open_store``, ``close_store``, ``jsonable``, ``event_json``) and ``_load`` (target loading).
"""

from __future__ import annotations

import sys

from ._app import build_parser, main
from ._common import DEFAULT_STORE, RunError, UsageError, jsonable
from ._load import load_workflow, split_target
from ._run import parse_responses, read_input

__all__ = (
    "DEFAULT_STORE",
    "RunError",
    "UsageError",
    "build_parser",
    "jsonable",
    "load_workflow",
    "main",
    "parse_responses",
    "read_input",
    "split_target",
)

if __name__ == "__main__":
    sys.exit(main())
