"""`import workflow, builders` stays light: the SDKs and the agent layer load only when used."""

from __future__ import annotations

import subprocess
import sys


def test_core_import_does_not_load_heavy_dependencies() -> None:
    code = (
        "import sys, workflow, builders; "
        "heavy = ['openai', 'graphviz', 'opentelemetry.sdk', 'networkx', 'executors', 'pydantic']; "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
