#!/usr/bin/env bash
# A shared MLflow tracking server for timeblind: MLflow on a PostgreSQL of its own, both started
# and stopped here (make mlflow-server / make mlflow-server-stop).
#
#   workflow/scripts/tracking_server.sh start    # initdb on first use, PostgreSQL, MLflow; waits for /health
#   workflow/scripts/tracking_server.sh stop     # MLflow (its whole process group), then PostgreSQL
#   workflow/scripts/tracking_server.sh status   # exit 0 when both run and MLflow answers /health
#   workflow/scripts/tracking_server.sh uri      # the MLFLOW_TRACKING_URI the jobs should use
#
# Settings (environment; relative paths are relative to the current directory):
#   TRACKING_DIR     results/tracking-server  database cluster, password file, pid file, logs
#   MLFLOW_ARTIFACTS results/mlartifacts       where the server stores the artifacts clients upload
#   MLFLOW_HOST      127.0.0.1                 0.0.0.0 to serve other machines (cluster nodes): they
#                                              use the URI `uri` prints (this machine's name)
#   MLFLOW_PORT      5000
#   MLFLOW_WORKERS   4                         uvicorn worker processes
#   MLFLOW_ALLOWED_HOSTS                       --allowed-hosts, the Host headers MLflow accepts, with
#                                              ports (host:5000); default for 0.0.0.0: this machine's
#                                              names and address, localhost and 127.0.0.1
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION  false  true starts MLflow's GenAI job runner (7 more processes,
#                                              a huey queue in /dev/shm); tracking does not need it
#   PG_PORT          5433                      PostgreSQL listens on 127.0.0.1 only, on this port
#   PG_BIN           newest /usr/lib/postgresql/*/bin, else the directory of initdb on PATH
#   PG_OS_USER       postgres                  the account PostgreSQL runs as when this runs as root
#   START_TIMEOUT    120                       seconds to wait for MLflow's /health
#
# PostgreSQL refuses to run as root. Run as root, it runs as $PG_OS_USER (Debian's postgresql
# package creates `postgres`), which must be able to reach $TRACKING_DIR. Every connection is
# TCP on 127.0.0.1 with a password (scram-sha-256); the passwords are random, made at initdb and
# kept in $TRACKING_DIR/pgpass (mode 600), which MLflow reads through PGPASSFILE: none appears in
# a URI or a command line. Clients of the MLflow server need no database credentials.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=$(realpath -m "${TRACKING_DIR:-results/tracking-server}")
ARTIFACTS=$(realpath -m "${MLFLOW_ARTIFACTS:-results/mlartifacts}")
HOST=${MLFLOW_HOST:-127.0.0.1}
PORT=${MLFLOW_PORT:-5000}
WORKERS=${MLFLOW_WORKERS:-4}
PG_PORT=${PG_PORT:-5433}
PG_OS_USER=${PG_OS_USER:-postgres}
START_TIMEOUT=${START_TIMEOUT:-120}

PGDIR=$DIR/postgres      # owned by the account PostgreSQL runs as
DATA=$PGDIR/data
PGLOG=$PGDIR/postgres.log
PGPASS=$DIR/pgpass
PIDFILE=$DIR/mlflow.pid
LOG=$DIR/mlflow.log
ENVFILE=$DIR/server.env

say() { echo "tracking-server: $*"; }
die() { echo "tracking-server: error: $*" >&2; exit 1; }

find_pg_bin() {
    if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
    local newest
    newest=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
    if command -v initdb >/dev/null; then dirname "$(command -v initdb)"; return; fi
    die "PostgreSQL server binaries (initdb, pg_ctl) not found: install them (Debian: apt-get install postgresql) or set PG_BIN"
}

find_mlflow() {
    if [ -n "${MLFLOW:-}" ]; then echo "$MLFLOW"; return; fi
    if command -v mlflow >/dev/null; then command -v mlflow; return; fi
    if [ -x "$ROOT/.venv/bin/mlflow" ]; then echo "$ROOT/.venv/bin/mlflow"; return; fi
    die "mlflow not found: run 'make' setup first or put the project's .venv/bin on PATH"
}

as_pg() {  # run a PostgreSQL server command as an account it accepts
    if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pg_running() { [ -f "$DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

mlflow_pid() {  # the server's pid (also its process group) when it is alive
    local pid
    [ -f "$PIDFILE" ] || return 1
    pid=$(cat "$PIDFILE")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

check_host() { case "$HOST" in 0.0.0.0|::|127.0.0.1) echo 127.0.0.1 ;; *) echo "$HOST" ;; esac; }

healthy() { curl -fsS --max-time 3 "http://$(check_host):$1/health" >/dev/null 2>&1; }

public_uri() {  # what clients put in MLFLOW_TRACKING_URI
    local host=$HOST
    case "$host" in 0.0.0.0|::) host=$(hostname -f 2>/dev/null || hostname) ;; esac
    echo "http://$host:$PORT"
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
seconds_since() { local ms=$(( $(now_ms) - $1 )); printf '%d.%d' $((ms / 1000)) $(((ms % 1000) / 100)); }

load_started_settings() {  # host and port of the last start, whatever the environment now
    if [ -f "$ENVFILE" ]; then
        HOST=$(sed -n 's/^MLFLOW_HOST=//p' "$ENVFILE")
        PORT=$(sed -n 's/^MLFLOW_PORT=//p' "$ENVFILE")
    fi
}

random_password() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

init_cluster() {
    mkdir -p "$DIR" "$PGDIR"
    chmod 700 "$PGDIR"
    if [ "$(id -u)" = 0 ]; then
        id "$PG_OS_USER" >/dev/null 2>&1 || die "PostgreSQL refuses to run as root and there is no '$PG_OS_USER' account to run it as (set PG_OS_USER)"
        chown "$PG_OS_USER" "$PGDIR"
        runuser -u "$PG_OS_USER" -- test -w "$PGDIR" || die "PostgreSQL runs as '$PG_OS_USER' (it refuses root), which cannot reach $PGDIR: a parent directory is not searchable by it (e.g. under /root, or a mode-700 temporary directory). Set TRACKING_DIR to a directory it can reach."
    fi
    [ -f "$DATA/PG_VERSION" ] && return 0
    say "creating the database cluster in $DATA"
    local super_pw mlflow_pw pwfile=$PGDIR/superuser.pw
    super_pw=$(random_password)
    mlflow_pw=$(random_password)
    (umask 077; printf '%s\n' "$super_pw" > "$pwfile")
    if [ "$(id -u)" = 0 ]; then chown "$PG_OS_USER" "$pwfile"; fi
    as_pg "$PG_BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
        --encoding=UTF8 --no-locale > "$PGDIR/initdb.log" 2>&1 || { rm -f "$pwfile"; cat "$PGDIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$pwfile"
    (umask 077; printf '127.0.0.1:*:*:postgres:%s\n127.0.0.1:*:*:mlflow:%s\n' "$super_pw" "$mlflow_pw" > "$PGPASS")
    echo "$mlflow_pw" > "$PGPASS.new-role"  # read once by create_database, then removed
    chmod 600 "$PGPASS.new-role"
}

start_postgres() {
    if pg_running; then say "PostgreSQL already running ($DATA)"; return 0; fi
    port_busy "$PG_PORT" && die "port $PG_PORT on 127.0.0.1 is in use: set PG_PORT to a free port"
    if [ "$(id -u)" = 0 ]; then touch "$PGLOG"; chown "$PG_OS_USER" "$PGLOG"; fi
    # TCP on loopback only, no Unix socket (its path would be limited to ~100 characters).
    as_pg "$PG_BIN/pg_ctl" -D "$DATA" -l "$PGLOG" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=''" start >/dev/null \
        || { tail -n 20 "$PGLOG" >&2; die "PostgreSQL did not start (log: $PGLOG)"; }
    say "PostgreSQL on 127.0.0.1:$PG_PORT"
}

create_database() {  # the mlflow role and database, once
    local psql=("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)
    export PGPASSFILE=$PGPASS
    if [ -f "$PGPASS.new-role" ]; then
        # through stdin: a password on a command line would show in ps
        "${psql[@]}" >/dev/null <<< "CREATE ROLE mlflow LOGIN PASSWORD '$(cat "$PGPASS.new-role")'"
        rm -f "$PGPASS.new-role"
    fi
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'mlflow'")" != 1 ]; then
        "${psql[@]}" -c "CREATE DATABASE mlflow OWNER mlflow" >/dev/null
    fi
}

start_mlflow() {
    local pid t0 mlflow
    if pid=$(mlflow_pid); then
        healthy "$PORT" && { say "MLflow already running (pid $pid): $(public_uri)"; return 0; }
        die "an MLflow server (pid $pid) is running but does not answer on port $PORT; run '$0 stop' first"
    fi
    port_busy "$PORT" && die "port $PORT is in use by another program: set MLFLOW_PORT (make mlflow-server PORT=...)"
    mlflow=$(find_mlflow)
    mkdir -p "$ARTIFACTS"
    local args=(server --backend-store-uri "postgresql://mlflow@127.0.0.1:$PG_PORT/mlflow"
                --artifacts-destination "$ARTIFACTS" --host "$HOST" --port "$PORT" --workers "$WORKERS")
    if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
        args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
    elif [ "$HOST" = 0.0.0.0 ] || [ "$HOST" = "::" ]; then
        # MLflow answers 403 to a Host header it does not know (DNS-rebinding guard), and this
        # list replaces its localhost default: this machine's names and address, with the port.
        local names=("$(hostname -f 2>/dev/null || hostname)" "$(hostname)" localhost 127.0.0.1) address
        address=$(hostname -I 2>/dev/null | awk '{print $1}' || true)
        if [ -n "$address" ]; then names+=("$address"); fi
        args+=(--allowed-hosts "$(printf "%s:$PORT," "${names[@]}" | sed 's/,$//')")
    fi
    t0=$(now_ms)
    # setsid: the server and its uvicorn workers form one process group, stopped together.
    echo "=== $(date -u +%FT%TZ) $mlflow ${args[*]}" >> "$LOG"
    PGPASSFILE=$PGPASS MLFLOW_SERVER_ENABLE_JOB_EXECUTION=${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false} \
        setsid "$mlflow" "${args[@]}" >> "$LOG" 2>&1 < /dev/null &
    pid=$!
    echo "$pid" > "$PIDFILE"
    # what status and uri report later, whatever the environment then
    printf 'MLFLOW_TRACKING_URI=%s\nMLFLOW_HOST=%s\nMLFLOW_PORT=%s\nPG_PORT=%s\nMLFLOW_ARTIFACTS=%s\n' \
        "$(public_uri)" "$HOST" "$PORT" "$PG_PORT" "$ARTIFACTS" > "$ENVFILE"
    until healthy "$PORT"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            tail -n 30 "$LOG" >&2
            die "MLflow exited before answering (log: $LOG)"
        fi
        if [ $(( $(now_ms) - t0 )) -gt $(( START_TIMEOUT * 1000 )) ]; then
            tail -n 30 "$LOG" >&2
            stop_mlflow
            die "MLflow did not answer /health within ${START_TIMEOUT}s (log: $LOG)"
        fi
        sleep 0.5
    done
    say "MLflow healthy after $(seconds_since "$t0")s (pid $pid, log $LOG)"
}

stop_mlflow() {
    local pid
    if pid=$(mlflow_pid); then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            kill -0 -- "-$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$pid" 2>/dev/null || true
        say "MLflow stopped (pid $pid)"
    else
        say "MLflow not running"
    fi
    rm -f "$PIDFILE"
}

stop_postgres() {
    if pg_running; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
        say "PostgreSQL stopped"
    else
        say "PostgreSQL not running"
    fi
}

PG_BIN=$(find_pg_bin)
case "${1:-}" in
    start)
        t_start=$(now_ms)
        started=0
        # whatever fails on the way, leave nothing half-started behind
        if ! mlflow_pid >/dev/null && port_busy "$PORT"; then
            die "port $PORT is in use by another program: set MLFLOW_PORT (make mlflow-server PORT=...)"
        fi
        trap 'if [ "$started" != 1 ]; then stop_mlflow >/dev/null 2>&1 || true; stop_postgres >/dev/null 2>&1 || true; fi' EXIT
        init_cluster
        start_postgres
        create_database
        start_mlflow
        started=1
        say "up in $(seconds_since "$t_start")s; artifacts in $ARTIFACTS"
        say "export MLFLOW_TRACKING_URI=$(public_uri)"
        ;;
    stop)
        stop_mlflow
        stop_postgres
        ;;
    status)
        load_started_settings
        ok=0
        if pg_running; then say "PostgreSQL running ($DATA)"; else say "PostgreSQL not running"; ok=3; fi
        if pid=$(mlflow_pid) && healthy "$PORT"; then say "MLflow healthy (pid $pid): $(public_uri)"
        else say "MLflow not running or not answering on port $PORT"; ok=3; fi
        exit $ok
        ;;
    uri)
        load_started_settings
        public_uri
        ;;
    *)
        echo "usage: $0 start|stop|status|uri  (settings: see the comment at the top of this file)" >&2
        exit 2
        ;;
esac
