#!/usr/bin/env bash
# Runs Weir's whole test suite: unit and integration tests of every crate, then the
# end-to-end tests (real ffmpeg → weir → hls.js/Shaka in Chromium). Run scripts/setup.sh
# once first. End-to-end tests fail (instead of skipping) when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export WEIR_E2E_REQUIRED=${WEIR_E2E_REQUIRED:-1}
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Each stage's heading carries the free disk space, so a full disk names its stage.
stage() { echo "== $*  [disk free: $(df -h --output=avail . | tail -1 | tr -d ' ')]"; }

stage "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

stage "deploy: Kubernetes overlays render and validate, the Dockerfile lints"
deploy/validate.sh

stage "build (the end-to-end tests run this binary)"
cargo build --locked -p weir

stage "encoder with the cuda feature (cudarc loads CUDA at run time: no GPU or toolkit needed;"
echo "   the GPU tests print SKIPPED without one)"
cargo clippy --locked -p weir-encoder --all-targets --features cuda -- -D warnings
cargo test --locked -p weir-encoder --features cuda --lib cuda -- --nocapture

stage "plugins: build the Wasm components (the plugin host's tests load them), test their logic"
./scripts/build-plugins.sh
./scripts/test-plugins.sh

stage "unit and integration tests"
cargo test --workspace --locked --exclude weir-e2e

stage "fuzz smoke (every parser, bounded)"
./scripts/fuzz-smoke.sh

stage "end-to-end tests"
# One at a time: they share two cores with ffmpeg and Chromium.
cargo test --locked -p weir-e2e -- --test-threads=1 --nocapture

stage "benches, smoke (bench/run-all --smoke: each bench runs end to end on the debug builds;"
echo "   what they measure is a bench run's business, never asserted here)"
bench/run-all --smoke

stage "soak, one minute (bench/soak.sh: the whole harness end to end; an hour is a bench run)"
WEIR_BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/weir" \
  bench/soak.sh 1
