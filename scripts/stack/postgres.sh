#!/usr/bin/env bash
# Throw-away PostgreSQL cluster for local runs and tests (Debian's postgresql package).
#
#   scripts/stack/postgres.sh start    # install if needed, initdb on first start, start, create db
#   scripts/stack/postgres.sh stop
#   scripts/stack/postgres.sh status   # exit 0 when accepting connections
#   scripts/stack/postgres.sh url      # postgresql+pg8000://todo@127.0.0.1:<port>/todo
#   scripts/stack/postgres.sh psql [ARGS]   # psql as role todo on db todo
#   scripts/stack/postgres.sh clean    # stop and delete the cluster
#
# Environment: PGPORT (15432: make run STACK=real; make test sets its own), TODO_STACK_DIR ($PWD/.stack).
# The cluster lives in $TODO_STACK_DIR/pg (data/, run/ = unix socket dir, postgres.log):
# listen_addresses=127.0.0.1, trust auth, database `todo` owned by role `todo`.
# Durability is off (fsync, synchronous_commit, full_page_writes): data is disposable.
#
# TLS only, as a managed PostgreSQL: PG_TLS_DIR names a folder with server.crt and server.key (and
# ca.crt, to verify client certificates when a client sends one). The server then has ssl=on and
# pg_hba.conf has hostssl lines only: a TCP connection without TLS is refused ("no encryption"); the
# unix socket (this script's own admin connection) stays trusted. PG_PASSWORD gives role todo a
# password, asked with scram-sha-256 over TCP (trust without it). A pg_hba.conf in PG_TLS_DIR replaces
# those lines (e.g. to ask some databases for client certificates). Chosen at each start.
#
# PG_STAT_STATEMENTS=1 (Stack.statement_stats) loads pg_stat_statements and creates it in database
# todo (bench P2 counts the round trips of a create with it). Chosen at each start, like TLS.
#
# Run as root, the server runs as the `postgres` system user. When that user cannot reach
# $TODO_STACK_DIR (e.g. it is under /root, mode 700), the cluster goes to
# /tmp/todo-pg-<uid>-<hash of the stack dir> instead and $TODO_STACK_DIR/pg becomes a symlink to it.
set -euo pipefail

STACK_DIR=${TODO_STACK_DIR:-$PWD/.stack}
PORT=${PGPORT:-15432}
DB=todo
ROLE=todo

log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

cmd=${1:-}; [ $# -gt 0 ] && shift

url() { echo "postgresql+pg8000://$ROLE@127.0.0.1:$PORT/$DB"; }
if [ "$cmd" = url ]; then url; exit 0; fi

# --- binaries -------------------------------------------------------------------------------
find_bindir() {
  local f
  f=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$f" ] && dirname "$f"
}
BIN=$(find_bindir || true)
if [ -z "$BIN" ]; then
  case "$cmd" in
    start)
      [ "$(id -u)" = 0 ] || die "PostgreSQL server not installed: apt-get install postgresql (as root)"
      log "installing PostgreSQL (apt-get install postgresql)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
      BIN=$(find_bindir) || die "initdb still missing after installing postgresql"
      ;;
    stop|clean) log "not installed, so not running"; exit 0 ;;
    status) echo "postgres: not installed"; exit 3 ;;
  esac
fi

# --- who runs the server, and where ---------------------------------------------------------
if [ "$(id -u)" = 0 ]; then
  RUN_AS=postgres
  id postgres >/dev/null 2>&1 || die "no 'postgres' system user (it comes with the postgresql package)"
  as_pg() { ( cd / && runuser -u postgres -- "$@" ); }
else
  RUN_AS=$(id -un)
  as_pg() { ( cd / && "$@" ); }
fi

mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd -P)
link="$STACK_DIR/pg"

# Can RUN_AS reach (traverse + write) this directory?
reachable() { as_pg test -x "$1" -a -w "$1" 2>/dev/null; }

choose_base() {
  if [ -L "$link" ]; then readlink "$link"; return; fi
  if [ -d "$link/data" ]; then echo "$link"; return; fi
  mkdir -p "$link"
  [ "$RUN_AS" = postgres ] && chown postgres: "$link"
  if reachable "$link"; then echo "$link"; return; fi
  rmdir "$link" 2>/dev/null || true
  echo "/tmp/todo-pg-$(id -u)-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-10)"
}
BASE=$(choose_base)
if [ "$BASE" != "$link" ]; then
  mkdir -p "$BASE"
  [ -L "$link" ] || ln -sfn "$BASE" "$link"
fi
[ "$RUN_AS" = postgres ] && chown postgres: "$BASE"
chmod 700 "$BASE"
DATA="$BASE/data"
SOCK="$BASE/run"
LOGF="$BASE/postgres.log"

pgctl() { as_pg "$BIN/pg_ctl" -D "$DATA" "$@"; }
is_running() { [ -f "$DATA/postmaster.pid" ] && pgctl status >/dev/null 2>&1; }
ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -d postgres -t 2; }
psql_admin() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres "$@"; }

running_port() { sed -n '4p' "$DATA/postmaster.pid" 2>/dev/null; }

# TLS: the certificate and key copied beside the data (the key must belong to the server's user, 0600),
# and an hba file that lets TCP in over TLS only. Prints the server options.
TLS="$BASE/tls"
tls_options() {
  local auth=trust ca=
  [ -n "${PG_PASSWORD:-}" ] && auth=scram-sha-256
  [ -f "$PG_TLS_DIR/server.crt" ] && [ -f "$PG_TLS_DIR/server.key" ] \
    || die "PG_TLS_DIR=$PG_TLS_DIR must hold server.crt and server.key"
  rm -rf "$TLS"; mkdir -p "$TLS"
  cp "$PG_TLS_DIR/server.crt" "$PG_TLS_DIR/server.key" "$TLS/"
  if [ -f "$PG_TLS_DIR/ca.crt" ]; then cp "$PG_TLS_DIR/ca.crt" "$TLS/"; ca=" -c ssl_ca_file=$TLS/ca.crt"; fi
  if [ -f "$PG_TLS_DIR/pg_hba.conf" ]; then
    cp "$PG_TLS_DIR/pg_hba.conf" "$TLS/pg_hba.conf"
  else
    printf '%s\n' "local all all trust" "hostssl all all 127.0.0.1/32 $auth" "hostssl all all ::1/128 $auth" \
      > "$TLS/pg_hba.conf"
  fi
  chmod 600 "$TLS/server.key"
  [ "$RUN_AS" = postgres ] && chown -R postgres: "$TLS"
  echo "-c ssl=on -c ssl_cert_file=$TLS/server.crt -c ssl_key_file=$TLS/server.key -c hba_file=$TLS/pg_hba.conf$ca"
}
mode() { if [ -n "${PG_TLS_DIR:-}" ]; then echo tls; else echo plain; fi; }

do_start() {
  if is_running; then
    local rp; rp=$(running_port)
    [ "$rp" = "$PORT" ] || die "already running on port $rp (PGPORT is $PORT): stop it first"
    [ "$(cat "$BASE/mode" 2>/dev/null || echo plain)" = "$(mode)" ] \
      || die "already running $(cat "$BASE/mode" 2>/dev/null || echo plain), not $(mode): stop it first"
    log "already running on port $PORT"
  else
    if [ ! -f "$DATA/PG_VERSION" ]; then
      log "initdb $DATA ($("$BIN/postgres" --version))"
      as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    fi
    if ready 2>/dev/null; then die "port $PORT already answers PostgreSQL (another server): set PGPORT"; fi
    as_pg mkdir -p "$SOCK"
    local tls_opts=
    [ "$(mode)" = tls ] && tls_opts=$(tls_options)
    [ "${PG_STAT_STATEMENTS:-}" = 1 ] && tls_opts="$tls_opts -c shared_preload_libraries=pg_stat_statements"
    log "starting on 127.0.0.1:$PORT ($(mode); socket dir $SOCK, log $LOGF)"
    pgctl start -w -t 60 -l "$LOGF" -o "-c port=$PORT -c listen_addresses=127.0.0.1 \
      -c unix_socket_directories=$SOCK -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off -c max_connections=200 -c log_min_messages=warning $tls_opts" >/dev/null \
      || { tail -n 30 "$LOGF" >&2 || true; die "pg_ctl start failed"; }
    mode > "$BASE/mode"
  fi
  local i
  for i in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || die "pg_isready: not accepting connections on 127.0.0.1:$PORT"

  # Role and database, idempotently.
  if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" ]; then
    psql_admin -c "CREATE ROLE \"$ROLE\" LOGIN CREATEDB"
  fi
  if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    psql_admin -c "CREATE DATABASE \"$DB\" OWNER \"$ROLE\""
  fi
  if [ "${PG_STAT_STATEMENTS:-}" = 1 ]; then
    psql_admin -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
  fi
  if [ -n "${PG_PASSWORD:-}" ]; then  # through psql's variable quoting: the password is never SQL text
    psql_admin -v pw="$PG_PASSWORD" <<< "ALTER ROLE \"$ROLE\" PASSWORD :'pw';"
  fi
  log "ready: $(url)"
}

do_stop() {
  if ! is_running; then log "not running"; return 0; fi
  log "stopping"
  pgctl stop -m fast -w -t 60 >/dev/null || pgctl stop -m immediate -w -t 30 >/dev/null
  log "stopped"
}

do_status() {
  if is_running && ready; then
    echo "postgres: running (port $PORT, data $DATA, $(url))"
  elif is_running; then
    echo "postgres: process up but not accepting connections on port $PORT"; return 1
  else
    echo "postgres: stopped"; return 3
  fi
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  status) do_status ;;
  psql) exec "$BIN/psql" -X -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d "$DB" "$@" ;;
  clean)
    do_stop
    rm -rf "$BASE"
    [ -L "$link" ] && rm -f "$link"
    log "removed $BASE" ;;
  *) sed -n '2,26p' "$0" >&2; exit 2 ;;
esac
