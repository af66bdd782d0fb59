#!/usr/bin/env bash
# Ingest → hls.js playhead latency on loopback: wall clock minus the playhead's
# EXT-X-PROGRAM-DATE-TIME, sampled every 500 ms by tests/e2e/play.mjs.
#
# Measures, in one run, on this machine:
#   1. weir, 2 s segments / 500 ms parts (ffmpeg RTMP publish, GOP 2 s)
#   2. weir, 1 s segments / 200 ms parts (GOP 1 s)
#   1b, 2b. the same with hls.js maxLiveSyncPlaybackRate 1.5 (play.mjs --catchup)
#   3. the peer: ffmpeg's own HLS muxer (fMP4, 2 s segments, program_date_time) behind nginx
# and prints p50/p95 latency, stalls, and weir's p50 as a ratio of the peer's.
#
#   bench/latency.sh [play-seconds]      (needs scripts/setup.sh, nginx, a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
PEER_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
cargo build --release -q -p weir
BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/weir
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

publish() { # url gop seconds
  ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t "$3" -c:v libx264 -preset veryfast -tune zerolatency -g "$2" -keyint_min "$2" -sc_threshold 0 -b:v 2500k \
    -c:a aac -b:a 96k -f flv "$1" &
  PIDS+=($!)
}

play() { # url label [play.mjs options]
  local f="$WORK/$(echo "$2" | tr -c 'A-Za-z0-9\n' '_').json"
  node tests/e2e/play.mjs --player hls --url "$1" --seconds "$SECS" --timeout 30 "${@:3}" > "$f"
  python3 - "$f" "$2" <<'PY' || true
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency"]
print(f'{sys.argv[2]:<28} p50 {l["p50"]:.3f} s  p95 {l["p95"]:.3f} s  stalls {r["stalls"]}  fatal {len(r["fatal"])}  played {r["played"]:.1f} s  samples {len(l["samples"])}')
PY
}

run_weir() { # seg part gop label [play.mjs options]
  "$BIN" serve --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --no-test-source --segment-ms "$1" --part-ms "$2" > "$WORK/weir.out" 2> "$WORK/weir.err" &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 50); do grep -q '^weir ' "$WORK/weir.out" 2>/dev/null && break; sleep 0.1; done
  local http rtmp
  http=$(sed -n 's/^listening http=//p' "$WORK/weir.out")
  rtmp=$(sed -n 's/^listening rtmp=//p' "$WORK/weir.out")
  publish "rtmp://$rtmp/live/bench" "$3" $((SECS + 25))
  local pub=$!
  for _ in $(seq 100); do curl -sf "http://$http/live/bench/master.m3u8" >/dev/null && break; sleep 0.2; done
  sleep 4
  play "http://$http/live/bench/master.m3u8" "$4" "${@:5}"
  kill "$pub" "$pid" 2>/dev/null || true
  wait "$pub" "$pid" 2>/dev/null || true
}

echo "latency bench: ${SECS}s of hls.js playback each, $(nproc) cores"
run_weir 2000 500 60 "weir 2s/500ms"
run_weir 1000 200 30 "weir 1s/200ms"
run_weir 2000 500 60 "weir 2s/500ms catch-up" --catchup
run_weir 1000 200 30 "weir 1s/200ms catch-up" --catchup

# The peer: ffmpeg's HLS muxer writing to disk, nginx serving it.
mkdir -p "$WORK/hls"
chmod 755 "$WORK"  # nginx workers run as www-data when started by root
cat > "$WORK/nginx.conf" <<NGX
daemon off; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
events { worker_connections 256; }
http {
  access_log off;
  types { application/vnd.apple.mpegurl m3u8; video/mp4 mp4 m4s; }
  server {
    listen 127.0.0.1:${PEER_PORT};
    location / { root $WORK/hls; add_header Access-Control-Allow-Origin * always; add_header Cache-Control no-cache; }
  }
}
NGX
nginx -c "$WORK/nginx.conf" -p "$WORK" &
PIDS+=($!)
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t $((SECS + 25)) -c:v libx264 -preset veryfast -tune zerolatency -g 60 -keyint_min 60 -sc_threshold 0 -b:v 2500k -c:a aac -b:a 96k \
  -f hls -hls_time 2 -hls_list_size 10 -hls_segment_type fmp4 -hls_flags delete_segments+program_date_time+independent_segments \
  "$WORK/hls/index.m3u8" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:${PEER_PORT}/index.m3u8 >/dev/null && break; sleep 0.2; done
sleep 6
play http://127.0.0.1:${PEER_PORT}/index.m3u8 "ffmpeg hls + nginx (peer)"

python3 - "$WORK" <<'PY'
import json, re, sys
d = sys.argv[1]
f = lambda label: f"{d}/{re.sub('[^A-Za-z0-9]', '_', label)}.json"
peer = json.load(open(f("ffmpeg hls + nginx (peer)")))["latency"]["p50"]
for label in ["weir 2s/500ms", "weir 1s/200ms", "weir 2s/500ms catch-up", "weir 1s/200ms catch-up"]:
    p50 = json.load(open(f(label)))["latency"]["p50"]
    print(f"{label}: p50 {p50:.3f} s = {p50/peer:.2f}x the peer's {peer:.3f} s")
PY
