#!/usr/bin/env bash
# Does a broken plugin slow media down? Runs N live RTMP streams (bench/loadgen, real-time
# replay of a pre-encoded clip, no encoding) through one weir, first with no plugin, then
# with a plugin in the default tenant's chain that loops forever (fault-loop), one that
# tries to allocate 4 GiB (fault-oom), and a working one (scte35). Every playlist version of
# every stream runs the chain, so the broken plugins fail all the time.
#
# The measure is loadgen's edge lag: now minus the program-date-time at the end of the last
# part a playlist lists, sampled over the window for every stream. It grows if parts are
# published late or playlists are answered late, which is what a plugin must never cause.
# Printed: p50 / p99 / max and the p99 ratio against the no-plugin run of the same script.
#
#   scripts/build-plugins.sh && bench/plugin-faults.sh [N_STREAMS] [SECONDS]   (default 20, 20)
#
# 127.0.0.1 only; every process is bounded by `timeout` and killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
SECS=${2:-20}
WARMUP_S=8
STAGGER_MS=20
TOKEN=bench-plugin-faults-token
for p in fault-loop fault-oom scte35; do
  [[ -s plugins/dist/$p.wasm ]] || { echo "plugins/dist/$p.wasm missing: run scripts/build-plugins.sh"; exit 1; }
done
cargo build --release -q -p weir -p weir-loadgen
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
WEIR=$TARGET/release/weir
LOADGEN=$TARGET/release/weir-loadgen
CLIPS=$TARGET/bench-ingest
mkdir -p "$CLIPS"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need=$(( (N * STAGGER_MS) / 1000 + WARMUP_S + SECS + 3 ))
len=$(( (need + 59) / 60 * 60 ))
stem="$CLIPS/clip-${len}s"
if [[ ! -s $stem.flv ]]; then
  echo "making a ${len} s clip (once) …" >&2
  ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$len" \
    -c:v libx264 -preset veryfast -tune zerolatency -b:v 1900k -maxrate 1900k -bufsize 1900k \
    -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -c:a aac -b:a 96k -f flv "$stem.flv.tmp"
  mv "$stem.flv.tmp" "$stem.flv"
fi

run() { # plugin (or "none") → $WORK/<plugin>.json
  local plugin=$1
  "$WEIR" serve --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --srt 127.0.0.1:0 --no-test-source \
    --api-token "$TOKEN" > "$WORK/weir.out" 2> "$WORK/weir.err" &
  local weir=$!
  PIDS+=("$weir")
  for _ in $(seq 100); do grep -q '^listening srt=' "$WORK/weir.out" 2>/dev/null && break; sleep 0.1; done
  local http rtmp
  http=$(sed -n 's/^listening http=//p' "$WORK/weir.out")
  rtmp=$(sed -n 's/^listening rtmp=//p' "$WORK/weir.out")
  [[ -n $http && -n $rtmp ]] || { echo "weir did not start:"; cat "$WORK/weir.err"; exit 1; }
  if [[ $plugin != none ]]; then
    RUST_BACKTRACE=0 "$WEIR" plugin push --server "http://$http" --token "$TOKEN" \
      --tenant default --name "$plugin" "plugins/dist/$plugin.wasm" > /dev/null
  fi
  echo "run: $N streams, plugin $plugin, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  timeout $((need + 60)) "$LOADGEN" --http "$http" --rtmp "$rtmp" --rtmp-streams "$N" \
    --flv "$stem.flv" --seconds "$SECS" --warmup-s "$WARMUP_S" --stagger-ms "$STAGGER_MS" \
    --weir-pid "$weir" --clk-tck "$(getconf CLK_TCK)" > "$WORK/$plugin.json"
  curl -s "http://$http/metrics" | grep -E '^weir_plugin_(failures|calls)_total' | grep -v '"init"' \
    > "$WORK/$plugin.metrics" || true
  kill "$weir" 2>/dev/null || true
  wait "$weir" 2>/dev/null || true
}

for p in none fault-loop fault-oom scte35; do run "$p"; done

python3 - "$WORK" <<'PY'
import json, sys, os
work = sys.argv[1]
base = json.load(open(os.path.join(work, "none.json")))["edge_lag_ms"]["p99"]
print("| plugin in the chain | on time | edge lag p50 / p99 / max (ms) | p99 vs no plugin | weir CPU (% of a core) | plugin calls / failures |")
print("| --- | --- | --- | --- | --- | --- |")
for p in ["none", "fault-loop", "fault-oom", "scte35"]:
    r = json.load(open(os.path.join(work, p + ".json")))
    l, w = r["edge_lag_ms"], r["weir"]
    calls = fails = 0
    path = os.path.join(work, p + ".metrics")
    if os.path.exists(path):
        for line in open(path):
            v = float(line.split()[-1])
            if line.startswith("weir_plugin_calls_total"): calls += v
            else: fails += v
    ratio = l["p99"] / base if base else float("nan")
    print(f'| {p} | {"yes" if r["on_time"] else "**no**"} | {l["p50"]:.0f} / {l["p99"]:.0f} / {l["max"]:.0f} '
          f'| {ratio:.3f} | {w["cpu_pct"]:.0f} | {calls:.0f} / {fails:.0f} |')
PY
