"""Crash soak: many SIGKILLs at random moments, each run resumed in new processes until done.

The long form of ``tests/workflow/test_crash.py`` (same worker, same invariant, checked after
every run): every (executor, superstep) result that a kill found committed is the one the
run ends with, nothing committed runs again, and the outputs equal an uninterrupted run's.
Not run by pytest.

Usage::

    .venv/bin/python benchmarks/soak_crash.py --kills 200 --stores sqlite,file --seed 1
    .venv/bin/python benchmarks/soak_crash.py --kills 100 --durability async
    .venv/bin/python benchmarks/soak_crash.py --kills 50 --stores postgres   # needs DATABASE_URL

Exit code 0 when every run held the invariant; an AssertionError names the first violation.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.workflow import crash_worker as cw


def store_url(kind: str, base: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{base / 'runs.db'}"
    if kind == "file":
        return f"file://{base / 'store'}"
    if kind == "postgres":
        dsn = os.environ.get("DATABASE_URL")
        if not dsn:
            raise SystemExit("postgres needs DATABASE_URL (bash .ci/postgres.sh start)")
        sep = "&" if "?" in dsn else "?"
        return f"{dsn}{sep}schema=soak_{uuid.uuid4().hex[:10]}"
    raise SystemExit(f"unknown store {kind!r}; use sqlite, file or postgres")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills per store")
    parser.add_argument("--stores", default="sqlite,file")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--durability", choices=("sync", "async"), default="sync")
    parser.add_argument("--keep", default=None, help="directory to keep logs and stores in")
    args = parser.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="soak-crash-"))
    rng = random.Random(args.seed)
    print(f"soak: {args.kills} kills per store, seed {args.seed}, {args.durability}, in {root}")
    t0 = time.perf_counter()
    for kind in args.stores.split(","):
        base = root / kind
        base.mkdir(parents=True, exist_ok=True)
        summary = cw.soak(
            store_url(kind, base), base, rng, args.kills, "--durability", args.durability
        )
        print(
            f"{kind:>8}: {summary['kills']} kills over {summary['runs']} runs, "
            f"{summary['with_pending']} mid fan-out with pending writes, "
            f"{summary['repeats']} executions lost to a kill and re-run, "
            f"{summary['seconds']:.1f}s: invariant held"
        )
    print(f"total {time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
