#!/usr/bin/env bash
# WebRTC costs and latency (issue 15): weir's CPU for one WHIP publisher (H.264 passed
# through; VP8 made H.264), for WHEP viewers (1 and 4), and WHEP's ingest-to-display
# latency next to hls.js's on the same stream (the peer: LL-HLS from the same server).
#
#   bench/webrtc.sh               (root: it runs inside a private network namespace)
#   BENCH_SMOKE=1 bench/webrtc.sh (debug build, short windows)
#
# Publishers and viewers are headless Chromium (tests/e2e/whip.mjs, whep.mjs) in the same
# namespace; their own CPU is not counted. weir's CPU is utime+stime from /proc over each
# window, as a share of one core. Prints RESULT/RATIO lines, then a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z ${WEIR_NETNS:-} ]]; then
  PROFILE=release
  [[ -n ${BENCH_SMOKE:-} ]] && PROFILE=debug
  cargo build $([[ $PROFILE == release ]] && echo --release) -q -p weir
  TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  exec env WEIR_NETNS=1 WEIR="$TARGET/$PROFILE/weir" PROFILE=$PROFILE unshare -n -- "$0" "$@"
fi
WIN=${BENCH_SMOKE:+3}
WIN=${WIN:-15}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip link set lo up
ip link add veth0 type veth peer name veth1
ip addr add 10.77.0.1/24 dev veth0
ip addr add 10.77.0.2/24 dev veth1
ip link set veth0 up
ip link set veth1 up
KEY=bench-webrtc-key-1
cat > "$WORK/weir.toml" <<TOML
[server]
http = "10.77.0.1:8080"
[rtmp]
listen = "127.0.0.1:0"
[srt]
enabled = false
[whip]
udp = "10.77.0.1:8189"
[test_source]
enabled = false
[[ingest.keys]]
key = "$KEY"
stream = "cam"
TOML
"$WEIR" serve -c "$WORK/weir.toml" > "$WORK/weir.out" 2> "$WORK/weir.err" &
WPID=$!
PIDS+=("$WPID")
for _ in $(seq 100); do grep -q '^listening whip-udp=' "$WORK/weir.out" 2>/dev/null && break; sleep 0.1; done
BASE=http://10.77.0.1:8080
E2E=tests/e2e
TICK=$(getconf CLK_TCK)

# cpu SECONDS: weir's CPU over the next SECONDS, percent of one core.
cpu() {
  local a b
  a=$(awk '{print $14+$15}' "/proc/$WPID/stat")
  sleep "$1"
  b=$(awk '{print $14+$15}' "/proc/$WPID/stat")
  python3 -c "print(round(($b-$a)/$TICK/$1*100, 1))"
}

publish() { # CODEC SECONDS
  node $E2E/whip.mjs --page "$BASE/" --whip "$BASE/whip" --token "$KEY" --codec "$1" --seconds "$2" \
    --started-file "$WORK/pub-$1" > "$WORK/pub-$1.json" 2>/dev/null &
  PIDS+=($!)
  for _ in $(seq 300); do [[ -e $WORK/pub-$1 ]] && break; sleep 0.1; done
}
watch() { # N SECONDS
  for i in $(seq "$1"); do
    node $E2E/whep.mjs --page "$BASE/" --whep "$BASE/whep/cam" --seconds "$2" > "$WORK/view-$1-$i.json" 2>/dev/null &
    PIDS+=($!)
  done
}

idle=$(cpu "$WIN")
publish h264 $((WIN * 4 + 40))
sleep 4
pub=$(cpu "$WIN")
watch 1 $((WIN + 8))
sleep 6
one=$(cpu "$WIN")
wait_views() { for f in "$@"; do for _ in $(seq 200); do [[ -s $f ]] && break; sleep 0.2; done; done; }
wait_views "$WORK/view-1-1.json"
watch 4 $((WIN + 8))
sleep 6
four=$(cpu "$WIN")
wait_views "$WORK"/view-4-*.json
node $E2E/play.mjs --player hls --url "$BASE/live/cam/master.m3u8" --seconds "$WIN" --current > "$WORK/hls.json" 2>/dev/null || true
pkill -f "whip.mjs" 2>/dev/null || true
sleep 4
publish vp8 $((WIN + 20))
sleep 4
vp8=$(cpu "$WIN")

python3 - "$WORK" "$idle" "$pub" "$one" "$four" "$vp8" "$PROFILE" "$WIN" <<'PY'
import json, glob, sys
work, idle, pub, one, four, vp8, profile, win = sys.argv[1], *map(float, sys.argv[2:7]), sys.argv[7], sys.argv[8]
def load(p):
    try:
        return json.loads(open(p).read().strip().splitlines()[-1])
    except Exception:
        return {}
views = [load(p) for p in sorted(glob.glob(f"{work}/view-*.json"))]
lat = [v.get("latencyMs", {}) for v in views if v.get("latencyMs", {}).get("n")]
p50 = sorted(l["p50"] for l in lat)
p95 = sorted(l["p95"] for l in lat)
hls = load(f"{work}/hls.json").get("latency", {}) or {}
hls_p50 = hls.get("p50")
per_pub = round(pub - idle, 1)
per_view1 = round(one - pub, 1)
per_view4 = round((four - pub) / 4, 1)
per_vp8 = round(vp8 - idle, 1)
med = lambda xs: xs[len(xs) // 2] if xs else None
print(f"RESULT webrtc_whip_h264_cpu_pct {per_pub}")
print(f"RESULT webrtc_whip_vp8_cpu_pct {per_vp8}")
print(f"RESULT webrtc_whep_viewer_cpu_pct {per_view4}")
print(f"RESULT webrtc_whep_latency_p50_ms {med(p50)}")
print(f"RESULT webrtc_whep_latency_p95_ms {med(p95)}")
if med(p50) and hls_p50:
    print(f"RATIO webrtc_whep_vs_hlsjs_latency {round(med(p50) / 1000 / hls_p50, 3)}")
print()
print("## WebRTC: WHIP and WHEP (bench/webrtc.sh)")
print()
print(f"`bench/webrtc.sh` ({profile} build, as root: a private network namespace; headless Chromium publishes its fake camera 640x360 and plays). weir's CPU, percent of one core, each over a {win} s window:")
print()
print("| | weir CPU |")
print("| --- | --- |")
print(f"| idle (no stream) | {idle} % |")
print(f"| + 1 WHIP publisher, H.264 passed through (+ Opus → AAC) | {pub} % (**{per_pub} %** for the publisher) |")
print(f"| + 1 WHEP viewer | {one} % (**{per_view1} %** for the viewer, with the stream's feed and its AAC → Opus) |")
print(f"| + 4 WHEP viewers | {four} % (**{per_view4} %** a viewer) |")
print(f"| 1 WHIP publisher, VP8 made H.264 | {vp8} % (**{per_vp8} %**) |")
print()
print(f"WHEP ingest-to-display latency (RTP timestamps against the wall clock, every frame shown): p50 {p50} ms, p95 {p95} ms per viewer; hls.js (current, defaults + lowLatencyMode) on the same stream: p50 {hls_p50} s.")
PY
