#!/usr/bin/env bash
# Creates the Python environments the tests use:
#   .venv-otel-proto    OpenTelemetry SDK + OTLP protobuf exporters (HTTP, gRPC)  tests/api/exporters.rs
#   .venv-otel-json     OpenTelemetry SDK + OTLP JSON exporter                    tests/api/exporters.rs
#   .venv-schemathesis  schemathesis, generated requests against /openapi.json    tests/api/schema.rs
# Each is rebuilt only when its requirements file changed. Packages come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

for pair in otel-proto:tests/otel/requirements-proto.txt otel-json:tests/otel/requirements-json.txt \
  schemathesis:tests/schemathesis/requirements.txt; do
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
