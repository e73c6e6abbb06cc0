#!/usr/bin/env bash
# A local PostgreSQL for AgentTracer at the default URL of the configuration:
#   postgresql://postgres:postgres@localhost:5433/agent_observability
# plus the read-only login the query role uses (agenttracer_reader / agenttracer_reader).
#
#   scripts/local-pg.sh install   install Debian's PostgreSQL server when it is missing, and
#                                 generate the de_DE.UTF-8 locale the lc_messages test needs
#   scripts/local-pg.sh start     initialise (first time) and start the cluster; idempotent
#   scripts/local-pg.sh stop      stop it
#   scripts/local-pg.sh status
#
# Data lives in $AGENTTRACER_PGDATA (default /var/tmp/agenttracer-pg), a directory the
# `postgres` user can enter (never under /root). PostgreSQL refuses to run as root, so as root
# every server command runs as the `postgres` system user.
set -euo pipefail

PGROOT="${AGENTTRACER_PGDATA:-/var/tmp/agenttracer-pg}"
PGPORT="${AGENTTRACER_PGPORT:-5433}"
DATA="$PGROOT/data"
SOCKET="$PGROOT/socket"
DB=agent_observability
READER=agenttracer_reader

pg_bindir() {
  local dir
  dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

install_postgres() {
  if pg_bindir >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "PostgreSQL server binaries are missing: install Debian's 'postgresql' package." >&2
    exit 1
  fi
  echo "installing PostgreSQL (apt-get install postgresql)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  id postgres >/dev/null 2>&1 || useradd --system --user-group --home-dir /var/lib/postgresql postgres
  pg_bindir >/dev/null
}

# A locale in which PostgreSQL's messages are translated (Debian's server package ships the
# translations; the locale itself must exist): tests/api/sqlstate.rs runs a cluster with
# lc_messages set to it, to show that no database error is classified by its English text.
TEST_LOCALE=de_DE.UTF-8

install_test_locale() {
  if locale -a 2>/dev/null | grep -qix 'de_DE\.utf-\?8'; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "the $TEST_LOCALE locale is missing (tests/api/sqlstate.rs needs it): run this as root" \
      "or generate it (localedef -i de_DE -f UTF-8 $TEST_LOCALE)." >&2
    exit 1
  fi
  if ! [ -f /usr/share/i18n/locales/de_DE ]; then
    echo "installing the locale definitions (apt-get install locales)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq locales >/dev/null
  fi
  echo "generating the $TEST_LOCALE locale" >&2
  localedef -i de_DE -c -f UTF-8 "$TEST_LOCALE"
}

# Runs a command as the postgres user when we are root.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

psql_admin() {
  "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET" -p "$PGPORT" -U postgres "$@"
}

start() {
  install_postgres
  BIN=$(pg_bindir)
  if "$BIN/pg_isready" -q -h localhost -p "$PGPORT" && ! [ -f "$DATA/postmaster.pid" ]; then
    echo "a PostgreSQL not managed by this script already listens on port $PGPORT; using it" >&2
    return 0
  fi
  mkdir -p "$PGROOT" "$SOCKET"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PGROOT" "$SOCKET"; fi
  if ! [ -f "$DATA/PG_VERSION" ]; then
    echo "initialising a PostgreSQL cluster in $DATA" >&2
    local pwfile
    pwfile=$(mktemp)
    echo postgres >"$pwfile"
    chmod 644 "$pwfile"
    as_pg "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" -E UTF8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
  fi
  if ! as_pg "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
    as_pg "$BIN/pg_ctl" start -D "$DATA" -w -l "$PGROOT/postgres.log" \
      -o "-p $PGPORT -k $SOCKET -c listen_addresses=localhost" >/dev/null
  fi
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE $DB"
  fi
  # The query role's read-only login: it may read every table, now and after later migrations.
  psql_admin -d "$DB" <<SQL
DO \$\$ BEGIN CREATE ROLE $READER LOGIN PASSWORD '$READER';
EXCEPTION WHEN duplicate_object THEN NULL; END \$\$;
GRANT CONNECT ON DATABASE $DB TO $READER;
GRANT USAGE ON SCHEMA public TO $READER;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO $READER;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO $READER;
SQL
  echo "PostgreSQL ready: postgresql://postgres:***@localhost:$PGPORT/$DB (data: $DATA)" >&2
}

stop() {
  BIN=$(pg_bindir) || exit 0
  if [ -f "$DATA/postmaster.pid" ]; then as_pg "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null; fi
  echo "PostgreSQL stopped" >&2
}

status() {
  BIN=$(pg_bindir) || { echo "PostgreSQL is not installed"; exit 1; }
  as_pg "$BIN/pg_ctl" status -D "$DATA"
}

case "${1:-}" in
  install) install_postgres; install_test_locale ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
