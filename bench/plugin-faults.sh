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
# shellcheck source=bench/lib.sh
source bench/lib.sh

need=$(( (N * STAGGER_MS) / 1000 + WARMUP_S + SECS + 3 ))
stem=$(bench_clip 1280x720 1900k $(( (need + 59) / 60 * 60 )))

run() { # plugin (or "none") → $WORK/<plugin>.json
  local plugin=$1
  start_weir --api-token "$TOKEN"
  if [[ $plugin != none ]]; then
    RUST_BACKTRACE=0 "$WEIR" plugin push --server "http://$HTTP" --token "$TOKEN" \
      --tenant default --name "$plugin" "plugins/dist/$plugin.wasm" > /dev/null
  fi
  echo "run: $N streams, plugin $plugin, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  timeout $((need + 60)) "$LOADGEN" --http "$HTTP" --rtmp "$RTMP" --rtmp-streams "$N" \
    --flv "$stem.flv" --seconds "$SECS" --warmup-s "$WARMUP_S" --stagger-ms "$STAGGER_MS" \
    --weir-pid "$WEIR_PID" --clk-tck "$(getconf CLK_TCK)" > "$WORK/$plugin.json"
  curl -s "http://$HTTP/metrics" | grep -E '^weir_plugin_(failures|calls)_total' | grep -v '"init"' \
    > "$WORK/$plugin.metrics" || true
  stop_weir
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
