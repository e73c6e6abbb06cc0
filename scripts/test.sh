#!/usr/bin/env bash
# Runs every test: unit tests and the integration tests (tests/api), which start a PostgreSQL
# of their own (initdb into a temporary directory) unless TEST_DATABASE_URL names one, and send
# traces with the real OpenTelemetry Python exporters. Installs what is missing first: Debian's
# PostgreSQL server, and the Python virtual environments (exporters, schemathesis). Arguments go
# to `cargo test`. The whole session's logs (cargo test's output, and every service the tests
# run) are kept in target/test-logs/session and checked afterwards for the API keys and database
# passwords the tests used (scripts/check-test-logs.py).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_DATABASE_URL:-}" ]; then
  scripts/local-pg.sh install
fi
scripts/venvs.sh

export TEST_LOG_DIR="$PWD/target/test-logs/session"
rm -rf "$TEST_LOG_DIR"
mkdir -p "$TEST_LOG_DIR"
status=0
cargo test --locked "$@" 2>&1 | tee "$TEST_LOG_DIR/cargo-test.log" || status=$?
[ "$status" -eq 0 ] || exit "$status"
# The browser tests (tests/api/browser.rs) run alone once the others are done: chromium on the
# two cores would slow the timing-sensitive tests beside it. `scripts/test.sh --test api --
# --ignored browser::` runs just them.
if [ $# -eq 0 ]; then
  cargo test --locked --test api -- --ignored --test-threads=1 2>&1 |
    tee -a "$TEST_LOG_DIR/cargo-test.log" || status=$?
  [ "$status" -eq 0 ] || exit "$status"
fi
# With no arguments the whole suite ran, and there must be plenty to check.
scripts/check-test-logs.py "$TEST_LOG_DIR" $([ $# -eq 0 ] && echo --full)
