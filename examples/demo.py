"""`make demo`: the main example, offline by default.

Runs the Magentic team (examples/magentic_team.py) when present; otherwise the map-reduce
example. Set OPENAI_API_KEY (and optionally OPENAI_BASE_URL, OPENAI_MODEL) to use a real model.
"""

from __future__ import annotations

import pathlib
import runpy

HERE = pathlib.Path(__file__).resolve().parent

if __name__ == "__main__":
    main = HERE / "magentic_team.py"
    if not main.exists():
        main = HERE / "map_reduce.py"
    runpy.run_path(str(main), run_name="__main__")
