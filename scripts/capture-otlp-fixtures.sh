#!/usr/bin/env bash
# Regenerates tests/fixtures/otlp/: the spans real OpenAI instrumentation libraries make, recorded by
# tests/otel/capture_instrumentation.py against its fake model server, as OTLP/JSON. Manual: the
# fixtures are committed, and neither scripts/test.sh nor CI runs this.
#
# Creates (or reuses, while their requirements file is unchanged) three environments from PyPI:
#   .venv-instr                  tests/otel/requirements-instrumentation.txt
#                                (OpenTelemetry GenAI with opentelemetry-util-genai 0.4b0,
#                                OpenInference, OpenLLMetry current)
#   .venv-instr-genai-util-1     tests/otel/requirements-instrumentation-genai-util-1.txt
#                                (OpenTelemetry GenAI with opentelemetry-util-genai 1.1b0)
#   .venv-instr-openllmetry-old  tests/otel/requirements-instrumentation-openllmetry-old.txt
# Fixture files are named after the library and the installed versions.
set -euo pipefail
cd "$(dirname "$0")/.."

make_venv() {
  local venv="$1" requirements="$2"
  if [ -f "$venv/requirements.txt" ] && cmp -s "$requirements" "$venv/requirements.txt"; then
    return
  fi
  echo "creating $venv from $requirements" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
}

version_of() {
  "$1/bin/python" -c 'import sys; from importlib.metadata import version; print(version(sys.argv[1]))' "$2"
}

make_venv .venv-instr tests/otel/requirements-instrumentation.txt
make_venv .venv-instr-genai-util-1 tests/otel/requirements-instrumentation-genai-util-1.txt
make_venv .venv-instr-openllmetry-old tests/otel/requirements-instrumentation-openllmetry-old.txt

out=tests/fixtures/otlp
mkdir -p "$out"
genai=$(version_of .venv-instr opentelemetry-instrumentation-openai-v2)
util=$(version_of .venv-instr opentelemetry-util-genai)
genai_1=$(version_of .venv-instr-genai-util-1 opentelemetry-instrumentation-openai-v2)
util_1=$(version_of .venv-instr-genai-util-1 opentelemetry-util-genai)
openinference=$(version_of .venv-instr openinference-instrumentation-openai)
openllmetry=$(version_of .venv-instr opentelemetry-instrumentation-openai)
openllmetry_old=$(version_of .venv-instr-openllmetry-old opentelemetry-instrumentation-openai)

capture() {
  local venv="$1" library="$2" file="$3"
  "$venv/bin/python" tests/otel/capture_instrumentation.py "$library" --out "$out/$file"
  echo "wrote $out/$file" >&2
}

capture .venv-instr genai "genai-$genai-util-$util.json"
capture .venv-instr genai-experimental "genai-$genai-util-$util-latest-experimental.json"
capture .venv-instr-genai-util-1 genai-experimental "genai-$genai_1-util-$util_1-latest-experimental.json"
capture .venv-instr openinference "openinference-$openinference.json"
capture .venv-instr openllmetry "openllmetry-$openllmetry.json"
capture .venv-instr-openllmetry-old openllmetry-old "openllmetry-$openllmetry_old.json"
