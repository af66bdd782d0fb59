#!/usr/bin/env bash
# Ingest → playhead latency on loopback, with the current hls.js and Shaka releases: wall
# clock minus the playhead's EXT-X-PROGRAM-DATE-TIME, sampled every 500 ms by
# tests/e2e/play.mjs (each player's defaults plus low-latency mode, nothing else).
#
# Rows, in one run on this machine: {hls.js, Shaka} (current) × {2 s/500 ms, 1 s/200 ms} ×
# {passthrough (ffmpeg RTMP 1280x720, GOP = one segment), transcoded (640x360 in, x264
# ladder 360p + 240p, ultrafast), transcoded with `keyframes = "part"` (every part
# INDEPENDENT)}; then the peer, ffmpeg's own HLS muxer (fMP4, 2 s,
# program_date_time) behind nginx, played by hls.js.
#
# Each row also breaks its latency down by stage, from the request log (play.mjs
# --log-requests) and the playlists the player received, all against the part's PDT (the
# wall-clock arrival of its first frame at weir):
#   listed   the first playlist that lists the part reaches the player
#   bytes    the part's last byte reaches the player
#   screen   the playhead shows it (the latency itself)
# so bytes − part duration is what packaging and serving add, and screen − bytes is the
# player's own hold.
#
#   bench/latency.sh [play-seconds]         default 15 (a release build, or WEIR_BIN)
#   BENCH_SMOKE=1 bench/latency.sh          one 4 s row, no peer, the debug build (CI)
#
# Output: one `RESULT latency_<player>_<seg>_<mode>_p50 <s>` line per row, one
# `RATIO latency_<row>_vs_peer <x>` per row (weir p50 ÷ the peer's), then a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-15}
SMOKE=${BENCH_SMOKE:-}
[[ -n $SMOKE ]] && SECS=4
command -v nginx >/dev/null || { echo "needs nginx (apt-get install nginx-light)"; exit 1; }
# A release build, or WEIR_BIN; the smoke run takes the debug build CI already has.
BIN=${WEIR_BIN:-}
if [[ -z $BIN ]]; then
  profile=release
  [[ -n $SMOKE ]] && profile=debug
  cargo build -q -p weir $([[ $profile == release ]] && echo --release)
  BIN=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/$profile/weir
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
cat > "$WORK/ladder.toml" <<'TOML'
[encoder]
enabled = true
preset = "ultrafast"
[[encoder.ladder]]
name = "360p"
height = 360
bitrate = 800000
[[encoder.ladder]]
name = "240p"
height = 240
bitrate = 400000
TOML
sed 's/^preset = "ultrafast"$/preset = "ultrafast"\nkeyframes = "part"/' "$WORK/ladder.toml" > "$WORK/ladder-idr.toml"

publish() { # url size gop seconds
  ffmpeg -hide_banner -loglevel error -re -f lavfi -i "testsrc2=size=$2:rate=30" -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t "$4" -c:v libx264 -preset veryfast -tune zerolatency -g "$3" -keyint_min "$3" -sc_threshold 0 -b:v 2500k \
    -c:a aac -b:a 96k -f flv "$1" &
  PIDS+=($!)
}

play() { # player url label [play.mjs options]
  local f
  f="$WORK/$(echo "$3" | tr -c 'A-Za-z0-9\n' '_')"
  node tests/e2e/play.mjs --player "$1" --url "$2" --seconds "$SECS" --timeout 30 --log-requests "${@:4}" > "$f.json" 2> "$f.log" || true
}

run_weir() { # player seg part gop mode label
  local extra=() size=1280x720
  case $5 in
    transcoded) extra=(--config "$WORK/ladder.toml"); size=640x360 ;;
    transcoded-idr-parts) extra=(--config "$WORK/ladder-idr.toml"); size=640x360 ;;
  esac
  "$BIN" serve --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --srt 127.0.0.1:0 --whip-udp 127.0.0.1:0 --no-test-source --segment-ms "$2" --part-ms "$3" "${extra[@]}" \
    > "$WORK/weir.out" 2> "$WORK/weir.err" &
  local pid=$!
  PIDS+=($pid)
  for _ in $(seq 100); do grep -q '^listening srt=' "$WORK/weir.out" 2>/dev/null && break; sleep 0.1; done
  local http rtmp
  http=$(sed -n 's/^listening http=//p' "$WORK/weir.out")
  rtmp=$(sed -n 's/^listening rtmp=//p' "$WORK/weir.out")
  publish "rtmp://$rtmp/live/bench" "$size" "$4" $((SECS + 25))
  local pub=$!
  for _ in $(seq 150); do curl -sf "http://$http/live/bench/master.m3u8" >/dev/null && break; sleep 0.2; done
  sleep 4
  play "$1" "http://$http/live/bench/master.m3u8" "$6" --current
  kill "$pub" "$pid" 2>/dev/null || true
  wait "$pub" "$pid" 2>/dev/null || true
}

ROWS=()
echo "latency bench: ${SECS}s of playback per row, $(nproc) cores, $(date -u +%FT%TZ)"
if [[ -n $SMOKE ]]; then
  run_weir hls 2000 500 60 passthrough "hls.js 2s/500ms passthrough"; ROWS+=("hls.js 2s/500ms passthrough")
else
  for mode in passthrough transcoded transcoded-idr-parts; do
    for p in hls shaka; do
      name=$([[ $p == hls ]] && echo hls.js || echo Shaka)
      run_weir $p 2000 500 60 $mode "$name 2s/500ms $mode"; ROWS+=("$name 2s/500ms $mode")
      run_weir $p 1000 200 30 $mode "$name 1s/200ms $mode"; ROWS+=("$name 1s/200ms $mode")
    done
  done

  # The peer: ffmpeg's HLS muxer writing to disk, nginx serving it.
  PEER_PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
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
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:${PEER_PORT}/index.m3u8" >/dev/null && break; sleep 0.2; done
  sleep 6
  play hls "http://127.0.0.1:${PEER_PORT}/index.m3u8" "peer" --current
fi

python3 - "$WORK" "$SECS" "${ROWS[@]}" <<'PY'
import json, re, statistics, sys
from datetime import datetime

work, secs, rows = sys.argv[1], sys.argv[2], sys.argv[3:]
stem = lambda label: f"{work}/{re.sub('[^A-Za-z0-9]', '_', label)}"

def stages(log_path):
    """Per part the player fetched: (listed, bytes) seconds after its PDT, medians."""
    pdt, listed, done = {}, {}, {}
    lines = open(log_path).read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\d{13}) ([<>]) (\S+)$", lines[i])
        i += 1
        if not m:
            continue
        t, way, url = int(m[1]) / 1000, m[2], m[3]
        name = url.split("?")[0].rsplit("/", 1)[-1]
        if way == "<" and ".m3u8" in url:
            cur, off = None, 0.0
            while i < len(lines) and not re.match(r"^\d{13} [<>] ", lines[i]):
                l = lines[i]
                i += 1
                if l.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                    cur = datetime.fromisoformat(l.split(":", 1)[1].replace("Z", "+00:00")).timestamp()
                    off = 0.0
                elif l.startswith("#EXT-X-PART:") and cur is not None:
                    d = float(re.search(r"DURATION=([\d.]+)", l)[1])
                    uri = re.search(r'URI="([^"]+)"', l)[1].rsplit("/", 1)[-1]
                    if "BYTERANGE" not in l:
                        pdt.setdefault(uri, cur + off)
                        listed.setdefault(uri, t)
                    off += d
        elif way == "<" and name in pdt:
            done.setdefault(name, t)
    ls = [listed[u] - pdt[u] for u in done if u in listed]
    bs = [done[u] - pdt[u] for u in done]
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    return med(ls), med(bs), len(bs)

out = []
peer = None
try:
    peer = json.load(open(stem("peer") + ".json"))["latency"]["p50"]
except Exception:
    pass
table = ["| row | p50 | p95 | stalls | played | listed | bytes at player | ÷ peer |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
for label in rows:
    try:
        r = json.load(open(stem(label) + ".json"))
    except Exception as e:
        print(f"{label}: no report ({e})")
        continue
    l = r["latency"]
    p50, p95 = l.get("p50"), l.get("p95")
    listed, bytes_, n = stages(stem(label) + ".log")
    key = re.sub("[^a-z0-9]+", "_", label.lower()).strip("_")
    if p50 is None:
        print(f"{label}: never played: fatal {r['fatal']} errors {r['errors'][:3]}")
        continue
    print(f"RESULT latency_{key}_p50 {p50:.3f}")
    ratio = ""
    if peer:
        print(f"RATIO latency_{key}_vs_peer {p50 / peer:.2f}")
        ratio = f"{p50 / peer:.2f}×"
    print(f"{label:<32} p50 {p50:.3f} s  p95 {p95:.3f} s  stalls {r['stalls']}  fatal {len(r['fatal'])}  played {r['played']:.1f} s  listed {listed:.3f} s  bytes {bytes_:.3f} s  ({n} parts)")
    table.append(f"| {label} | {p50:.2f} s | {p95:.2f} s | {r['stalls']} | {r['played']:.1f} s | {listed:.2f} s | {bytes_:.2f} s | {ratio} |")
if peer:
    table.append(f"| peer: ffmpeg -f hls (fMP4, 2 s) + nginx, hls.js | {peer:.2f} s | | | | | | 1× |")
print()
print("## Ingest → playhead latency (bench/latency.sh)")
print()
print(f"{secs} s of playback per row, the current hls.js and Shaka with their defaults plus low-latency mode. "
      "`listed` and `bytes at player`: medians over the parts fetched, seconds after each part's PDT (its first frame's arrival at weir).")
print()
print("\n".join(table))
print()
print("```")
print(f"bench/latency.sh {secs}")
print("```")
PY
