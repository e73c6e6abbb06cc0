#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests (tests/api), which start a PostgreSQL
# of their own (initdb into a temporary directory) unless TEST_DATABASE_URL names one, and send
# traces with the real OpenTelemetry Python exporters. Installs what is missing first: Debian's
# PostgreSQL server, and the exporters' virtual environments. Arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  scripts/local-pg.sh install
fi
scripts/venvs.sh
cargo test --locked "$@"
