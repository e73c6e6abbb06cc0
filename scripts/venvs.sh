#!/usr/bin/env bash
# Creates the Python environments the tests use:
#   .venv-otel-proto    OpenTelemetry SDK + OTLP protobuf exporters (HTTP, gRPC)  tests/api/exporters.rs
#   .venv-otel-json     OpenTelemetry SDK + OTLP JSON exporter                    tests/api/exporters.rs
#   .venv-schemathesis  schemathesis, generated requests against /openapi.json    tests/api/schema.rs
#   .venv-browser       Playwright, driving Debian's chromium                     tests/api/browser.rs
# and installs Debian's chromium for the browser tests when it is missing (Playwright's own
# browser download is not reachable here; the tests give it chromium's path).
# Each is rebuilt only when its requirements file changed. Packages come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

for pair in otel-proto:tests/otel/requirements-proto.txt otel-json:tests/otel/requirements-json.txt \
  schemathesis:tests/schemathesis/requirements.txt browser:tests/browser/requirements.txt; do
  venv=".venv-${pair%%:*}"
  requirements="${pair#*:}"
  if [ -f "$venv/requirements.txt" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
    continue
  fi
  echo "creating $venv from $requirements" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
done

if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (Debian) for the browser tests" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
