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


def test_executors_import_loads_no_interop_sdk() -> None:
    # MCP, A2A, AG-UI and Semantic Kernel are extras: they load when their names are used.
    sdks = ["mcp", "a2a", "ag_ui", "semantic_kernel", "starlette", "uvicorn", "google.protobuf"]
    code = (
        "import sys, workflow, builders, executors; "
        f"print(','.join(m for m in {sdks!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    touched = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, executors; executors.MCPTools; print('mcp' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert touched.stdout.strip() == "True"
