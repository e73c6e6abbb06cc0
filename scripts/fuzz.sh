#!/usr/bin/env bash
# Fuzzes what clients send, each target for a bounded time (not part of CI):
#   run_body   POST /v1/runs bodies: JSON decoding + validation
#   otlp_body  POST /v1/traces bodies: OTLP protobuf/JSON decoding + mapping to runs and steps
#   grpc_export  OTLP/gRPC: the key check, the message frame, gzip, decoding + mapping
#   query_params GET /v1/runs and /v1/stats query strings: parsing + the statements built
# The properties checked are in src/fuzzing.rs. Usage: scripts/fuzz.sh [TARGET...]
# FUZZ_SECS (default 60) is the time per target. Needs a nightly toolchain and cargo-fuzz
# (installed here from crates.io when missing). A crash leaves its input in
# fuzz/artifacts/TARGET/; copy it into fuzz/regressions/TARGET/ and `cargo test` replays it
# for good (src/fuzzing.rs's tests), on stable.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${FUZZ_SECS:-60}"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "cargo fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
  exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(run_body otlp_body grpc_export query_params)
for target in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
  echo "== $target, ${secs}s" >&2
  # New inputs go to the first corpus directory; seeds and past findings are read too.
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" \
    "fuzz/corpus/$target" "fuzz/seeds/$target" "fuzz/regressions/$target" \
    -- -max_total_time="$secs" -max_len=16384 -rss_limit_mb=4096 -timeout=10
done
