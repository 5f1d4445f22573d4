#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL on 127.0.0.1 (DATABASE_URL set), then stop it.
# Without PostgreSQL installed the command runs without DATABASE_URL (those tests skip,
# or fail when CI=true).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
started=0
stop() { [ "$started" = 1 ] && bash "$here/postgres.sh" stop >/dev/null 2>&1; started=0; }
trap stop EXIT INT TERM
if [ -z "${DATABASE_URL:-}" ] && [ -f "$here/postgres.sh" ]; then
  if bash "$here/postgres.sh" start >&2; then
    started=1
    set -a; . "$here/.pg_env"; set +a
  else
    echo "note: could not start PostgreSQL; its tests will skip (fail when CI=true)" >&2
  fi
fi
"$@"
