#!/usr/bin/env bash
# Soak: one live stream for a long time, watched by hls.js and Shaka, to find slow leaks and
# drift that short tests cannot see.
#
# ffmpeg publishes over RTMP (640x360, 2 s GOP) into `weir serve` (2 s segments, 500 ms
# parts); hls.js and Shaka (tests/e2e/play.mjs, low-latency mode, --trace) play the
# multivariant playlist in Chromium for the whole run. Every minute the script records
# weir's RSS, its open file descriptors and the object cache's bytes (/metrics
# weir_cache_bytes); the players sample their latency (wall clock minus the playhead's
# PROGRAM-DATE-TIME) every 500 ms. At the end it prints, per player, the latency per minute
# and its slope after warm-up (ms per hour), RSS growth after warm-up (MB per hour, least
# squares), stalls after the first 10 s, and whether each target holds:
#   latency drift < 100 ms/h, RSS growth < 5 MB/h, no stall after 10 s.
#
#   bench/soak.sh [minutes]          default 60; a release build unless WEIR_BIN is set
#   WEIR_BIN=target/debug/weir bench/soak.sh 1     what CI runs (scripts/test.sh)
#   SOAK_OUT=dir                     keep the raw samples (CSV, player JSON) there
#
# Exit status: 0 when the run completed and both players played without a fatal error
# (targets are judged in the report, not by the exit status, so a one-minute CI run, which
# is too short for slopes, still checks the harness and the stream end to end), 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-60}
WARMUP_MIN=${SOAK_WARMUP_MIN:-2}
for tool in ffmpeg node python3 curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup.sh)"; exit 1; }
done
if [[ -z ${WEIR_BIN:-} ]]; then
  cargo build --release -q -p weir
  WEIR_BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/weir
fi
WORK=$(mktemp -d)
OUT=${SOAK_OUT:-$WORK}
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SECS=$((MINUTES * 60))
"$WEIR_BIN" serve --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --srt 127.0.0.1:0 --whip-udp 127.0.0.1:0 --no-test-source \
  --segment-ms 2000 --part-ms 500 > "$WORK/weir.out" 2> "$WORK/weir.err" &
WEIR_PID=$!
PIDS+=("$WEIR_PID")
for _ in $(seq 100); do grep -q '^listening srt=' "$WORK/weir.out" 2>/dev/null && break; sleep 0.1; done
HTTP=$(sed -n 's/^listening http=//p' "$WORK/weir.out")
RTMP=$(sed -n 's/^listening rtmp=//p' "$WORK/weir.out")
[[ -n $HTTP && -n $RTMP ]] || { echo "weir did not start:"; cat "$WORK/weir.err"; exit 1; }

ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t $((SECS + 60)) \
  -c:v libx264 -preset ultrafast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 -b:v 800k \
  -c:a aac -b:a 64k -f flv "rtmp://$RTMP/live/soak" &
PIDS+=($!)
URL="http://$HTTP/live/soak/master.m3u8"
for _ in $(seq 150); do curl -sf "$URL" >/dev/null && break; sleep 0.2; done
curl -sf "$URL" >/dev/null || { echo "the stream never started:"; tail -20 "$WORK/weir.err"; exit 1; }

echo "soak: ${MINUTES} min, hls.js and Shaka on $URL, $(nproc) cores, weir $WEIR_BIN"
for player in hls shaka; do
  node tests/e2e/play.mjs --player "$player" --url "$URL" --seconds "$SECS" --timeout 60 --trace \
    > "$OUT/$player.json" 2> "$OUT/$player.err" &
  PIDS+=($!)
  eval "PLAYER_${player}=$!"
done

echo "minute,rss_kb,fds,cache_bytes" > "$OUT/weir.csv"
sample() {
  local rss fds cache
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$WEIR_PID/status" 2>/dev/null || echo 0)
  fds=$(ls "/proc/$WEIR_PID/fd" 2>/dev/null | wc -l)
  cache=$(curl -sf "http://$HTTP/metrics" | awk '/^weir_cache_bytes / {print $2}')
  echo "$1,${rss:-0},$fds,${cache:-0}" >> "$OUT/weir.csv"
}
sample 0
for m in $(seq 1 "$MINUTES"); do
  sleep 60
  kill -0 "$WEIR_PID" 2>/dev/null || { echo "weir died at minute $m:"; tail -20 "$WORK/weir.err"; exit 1; }
  sample "$m"
done
wait "$PLAYER_hls" "$PLAYER_shaka" || true

python3 - "$OUT" "$WARMUP_MIN" <<'PY'
import csv, json, sys
out, warmup = sys.argv[1], int(sys.argv[2])

def slope(points):
    """Least-squares slope of (x, y) points, or None with fewer than 2."""
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return None if den == 0 else sum((x - mx) * (y - my) for x, y in points) / den

def fmt(v, unit):
    return "n/a (run too short)" if v is None else f"{v:+.1f} {unit}"

ok = True
targets = []
for player in ("hls", "shaka"):
    try:
        r = json.load(open(f"{out}/{player}.json"))
    except (OSError, ValueError) as e:
        print(f"{player}: no report ({e})")
        ok = False
        continue
    trace = [t for t in r.get("trace", []) if t.get("wall")]
    if not r.get("started") or r.get("fatal") or not trace:
        print(f"{player}: started {r.get('started')}, fatal {r.get('fatal')}, {len(trace)} samples")
        ok = False
        continue
    t0 = trace[0]["wall"]
    per_minute = {}
    for t in trace:
        if t.get("latency") is not None:
            per_minute.setdefault(int((t["wall"] - t0) / 60000), []).append(t["latency"])
    medians = {m: sorted(v)[len(v) // 2] for m, v in per_minute.items()}
    after = [(m / 60, ms) for m, ms in sorted(medians.items()) if m >= warmup]
    drift = slope(after)  # ms per hour
    # A stall: the playhead did not move between two samples 500 ms apart while playing.
    stalls = sum(
        1
        for a, b in zip(trace, trace[1:])
        if b["wall"] - t0 > 10000 and not b.get("paused") and b["t"] <= a["t"]
    )
    print(f"{player}: played {r.get('played', 0):.0f} s, latency p50 {r['latency']['p50']:.3f} s, "
          f"per minute {[round(medians[m] / 1000, 2) for m in sorted(medians)]}")
    print(f"{player}: latency drift after {warmup} min: {fmt(drift, 'ms/h')}; "
          f"stalls after 10 s: {stalls}")
    targets.append((f"{player} latency drift < 100 ms/h", drift is not None and abs(drift) < 100))
    targets.append((f"{player} no stall after 10 s", stalls == 0))

rows = list(csv.DictReader(open(f"{out}/weir.csv")))
rss = [(int(r["minute"]) / 60, int(r["rss_kb"]) / 1024) for r in rows if int(r["minute"]) >= warmup]
growth = slope(rss)  # MB per hour
print("weir: minute rss_MB fds cache_MB: " + ", ".join(
    f"{r['minute']} {int(r['rss_kb']) / 1024:.1f} {r['fds']} {int(float(r['cache_bytes'])) / 1e6:.1f}" for r in rows))
print(f"weir: RSS growth after {warmup} min: {fmt(growth, 'MB/h')}")
targets.append(("weir RSS growth < 5 MB/h", growth is not None and growth < 5))
for name, held in targets:
    print(f"  {'ok  ' if held else 'MISS'} {name}")
sys.exit(0 if ok else 1)
PY
