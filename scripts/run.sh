#!/usr/bin/env bash
# Runs AgentTracer on this machine: `serve --role all`, ingest on :8000 and query on :8001.
#
# With no DATABASE_URL (and no database.url in config/agenttracer.toml changed from the
# default), it first starts a local PostgreSQL at the default URL (scripts/local-pg.sh) and
# points the query role at its read-only login. Extra arguments go to `agenttracer serve`.
# Stop with Ctrl-C; the database keeps running (scripts/local-pg.sh stop).
#
# The web UI (http://localhost:8001/) sends its write actions (baselines, resolving drift) from the
# browser to the ingest listener: ui.ingest_url is set to it unless given, and the ingest listener
# then allows the UI's origin (docs/ui.md, Writes). This variable wins over the config file.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ] && [ -z "${AGENTTRACER_DATABASE__URL:-}" ]; then
  scripts/local-pg.sh start
  export DATABASE_READ_URL="${DATABASE_READ_URL:-postgresql://agenttracer_reader:agenttracer_reader@localhost:${AGENTTRACER_PGPORT:-5433}/agent_observability}"
  if [ -n "${AGENTTRACER_PGPORT:-}" ]; then
    export DATABASE_URL="postgresql://postgres:postgres@localhost:$AGENTTRACER_PGPORT/agent_observability"
  fi
fi

export AGENTTRACER_UI__INGEST_URL="${AGENTTRACER_UI__INGEST_URL-http://localhost:${INGEST_API_PORT:-8000}}"

cargo build --release --locked --bin agenttracer
# (Where cargo put it: a CARGO_TARGET_DIR set for the user is honoured.)
exec "${CARGO_TARGET_DIR:-target}/release/agenttracer" serve --role all "$@"
