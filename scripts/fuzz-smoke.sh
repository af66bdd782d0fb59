#!/usr/bin/env bash
# A short, bounded cargo-fuzz run of every fuzz target (default 8 s each), seeded with the
# real captures in host/*/tests/data. Longer runs: FUZZ_SECONDS=600 scripts/fuzz-smoke.sh.
# FUZZ_CLEAN=1 (CI) removes the ASan build afterwards: several GB, needed by nothing later.
# cargo-fuzz needs nightly features; the one toolchain here is stable, so it runs with
# RUSTC_BOOTSTRAP=1 (sanitizer flags), which is what the build below relies on.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-8}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$(pwd)/target/fuzz}
cd fuzz
# -a: debug assertions on (overflow checks, debug_assert!), so arithmetic a stranger's bytes
# can overflow is found here and not in production.
cargo fuzz build -O -a
for t in $(cargo fuzz list); do
  corpus=$(mktemp -d)
  case "$t" in
    flv*) cp ../host/ingest/tests/data/*.flv "$corpus"/ 2>/dev/null || true ;;
    ts*|pes*) cp ../host/ingest/tests/data/*.ts "$corpus"/ 2>/dev/null || true ;;
    rtmp_session) cp ../host/ingest/tests/data/*.rtmp "$corpus"/ 2>/dev/null || true ;;
  esac
  echo "== fuzz $t for ${SECS}s"
  # An input that takes over 10 s, or 2 GiB, is a finding too (timeout-*, oom-*).
  cargo fuzz run -O -a "$t" "$corpus" -- -max_total_time="$SECS" -max_len=262144 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|==.*ERROR|SUMMARY)" || true
  # cargo fuzz exits non-zero on a finding; re-check so any finding fails the run: a
  # crash, an out-of-memory, a timeout or a leak.
  if ls artifacts/"$t"/{crash,oom,timeout,leak}-* >/dev/null 2>&1; then
    echo "fuzz target $t found: $(ls artifacts/"$t"/{crash,oom,timeout,leak}-* 2>/dev/null)" >&2
    exit 1
  fi
  rm -rf "$corpus"
done
if [ "${FUZZ_CLEAN:-0}" = 1 ]; then
  echo "fuzz: removing $CARGO_TARGET_DIR ($(du -sh "$CARGO_TARGET_DIR" | cut -f1))"
  rm -rf "$CARGO_TARGET_DIR"
fi
