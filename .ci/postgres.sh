#!/usr/bin/env bash
# Throwaway PostgreSQL on 127.0.0.1 for the test suite.
#
#   bash .ci/postgres.sh start   # install if missing, start, create db "test", write .ci/.pg_env
#   bash .ci/postgres.sh stop    # stop the server and delete its data directory
#   bash .ci/postgres.sh status
#
# .ci/.pg_env holds `export DATABASE_URL=postgresql://postgres@127.0.0.1:PORT/test`: source it
# from a shell, or `include` it from make. Both commands are idempotent. The server trusts
# every local connection and runs with fsync=off: never point it at data you want to keep.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ENV_FILE="$HERE/.pg_env"
STATE_FILE="$HERE/.pg_state"   # PGDATA=... and PORT=... of the running server
PREFERRED_PORT=${PG_PORT:-54329}

log() { echo "postgres.sh: $*" >&2; }

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
    [[ -n "$bin" && -x "$bin/initdb" ]] && echo "$bin"
}

# Run a PostgreSQL tool as the postgres user when we are root (initdb refuses root).
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    local port=${1:-$PREFERRED_PORT}
    while port_in_use "$port"; do
        port=$((port + 1))
        if ((port > PREFERRED_PORT + 100)); then
            log "no free port in $PREFERRED_PORT..$port"
            exit 1
        fi
    done
    echo "$port"
}

install() {
    if [[ -n "$(pg_bin)" ]]; then return; fi
    if [[ $(id -u) -ne 0 ]]; then
        log "PostgreSQL is not installed and we are not root: apt-get install postgresql"
        exit 1
    fi
    log "installing postgresql (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq postgresql >&2
}

running() {
    [[ -f "$STATE_FILE" ]] || return 1
    # shellcheck disable=SC1090
    source "$STATE_FILE"
    [[ -d "${PGDATA:-}" ]] || return 1
    as_pg "$(pg_bin)/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1
}

write_env() {
    echo "export DATABASE_URL=postgresql://postgres@127.0.0.1:$PORT/test" >"$ENV_FILE"
    cat "$ENV_FILE"
}

start() {
    if running; then
        log "already running (port $PORT, data $PGDATA)"
        write_env
        return
    fi
    [[ -f "$STATE_FILE" ]] && stop
    install
    local bin port=$((PREFERRED_PORT - 1)) data attempt
    bin=$(pg_bin)
    data=$(mktemp -d /tmp/ledgerflow-pg.XXXXXX)
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$data"
    printf 'PGDATA=%q\nPORT=\n' "$data" >"$STATE_FILE"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
    # The free port can be taken between the check and the bind (another suite starting its
    # own server): then the start fails with "Address already in use" and we try the next one.
    for attempt in 1 2 3 4 5; do
        port=$(free_port $((port + 1)))
        printf 'PGDATA=%q\nPORT=%q\n' "$data" "$port" >"$STATE_FILE"
        if as_pg "$bin/pg_ctl" -D "$data" -l "$data/log" -w -t 120 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c fsync=off -c max_connections=200" \
            start >/dev/null; then
            break
        fi
        if ((attempt == 5)) || ! grep -q "Address already in use" "$data/log"; then
            log "could not start PostgreSQL (log: $data/log)"
            tail -n 5 "$data/log" >&2
            exit 1
        fi
        log "port $port was taken meanwhile; trying another"
        : >"$data/log"
    done
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
    PGDATA=$data PORT=$port
    log "started on 127.0.0.1:$port (data $data)"
    write_env
}

stop() {
    if [[ -f "$STATE_FILE" ]]; then
        # shellcheck disable=SC1090
        source "$STATE_FILE"
        local bin
        bin=$(pg_bin || true)
        if [[ -n "$bin" && -d "${PGDATA:-}" ]]; then
            as_pg "$bin/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null 2>&1 || true
        fi
        if [[ "${PGDATA:-}" == /tmp/ledgerflow-pg.* ]]; then
            rm -rf "$PGDATA"
        fi
        log "stopped"
    fi
    rm -f "$STATE_FILE" "$ENV_FILE"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status)
    if running; then
        log "running on 127.0.0.1:$PORT (data $PGDATA)"
    else
        log "not running"
        exit 1
    fi
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
