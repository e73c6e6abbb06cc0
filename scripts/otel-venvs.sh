#!/usr/bin/env bash
# Creates the Python environments the exporter tests use (tests/api/exporters.rs):
#   .venv-otel-proto  OpenTelemetry SDK + OTLP protobuf exporters (HTTP, gRPC)
#   .venv-otel-json   OpenTelemetry SDK + OTLP JSON exporter
# Each is rebuilt only when its requirements file changed. Packages come from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

for flavour in proto json; do
  venv=".venv-otel-$flavour"
  requirements="tests/otel/requirements-$flavour.txt"
  if [ -f "$venv/requirements.txt" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
    continue
  fi
  echo "creating $venv from $requirements" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
done
