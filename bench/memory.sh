#!/usr/bin/env bash
# Memory per passthrough stream against the media its playlist window holds.
#
# weir-loadgen replays a pre-encoded 720p30 H.264 + AAC clip (2 Mbit/s, bench/lib.sh) as N
# RTMP publishers into one weir (2 s segments, 500 ms parts, a W-second window). Once every
# stream has streamed longer than its window (the window is full and steady), weir's RSS is
# read (loadgen's /proc sample at the end of its window), the idle RSS before the first
# publisher subtracted, and the rest divided by N. The media bytes in a window are the clip's
# bytes per second (file size ÷ duration, FLV overhead included) × W.
#
#   bench/memory.sh [N] [W]        default 50 streams, 30 s window (about 1.5 minutes)
#   BENCH_SMOKE=1 bench/memory.sh  4 streams, 6 s window, a few seconds
#
# Output: `RESULT memory_per_stream_mib <v>`, `RATIO memory_per_stream_vs_window <v>` (target
# ≤ 1.2), then a Markdown section.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50}
W=${2:-30}
WARM=$((W + 6))
SECS=10
if [[ -n ${BENCH_SMOKE:-} ]]; then N=4 W=6 WARM=3 SECS=2; fi
# shellcheck source=bench/lib.sh
source bench/lib.sh
need=$(( N * 20 / 1000 + WARM + SECS + 5 ))
stem=$(bench_clip 1280x720 1900k $(( (need + 59) / 60 * 60 )))
start_weir --window-s "$W"
sleep 1
idle_kb=$(awk '/^VmRSS/ {print $2}' "/proc/$WEIR_PID/status")
timeout $((need + 60)) "$LOADGEN" --http "$HTTP" --rtmp "$RTMP" --rtmp-streams "$N" --flv "$stem.flv" \
  --seconds "$SECS" --warmup-s "$WARM" --stagger-ms 20 --weir-pid "$WEIR_PID" --clk-tck "$(getconf CLK_TCK)" > "$WORK/mem.json"
stop_weir
clip_s=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$stem.flv")
python3 - "$WORK/mem.json" "$idle_kb" "$N" "$W" "$(stat -c %s "$stem.flv")" "$clip_s" "$*" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
idle_mib, n, w = int(sys.argv[2]) / 1024, int(sys.argv[3]), int(sys.argv[4])
bytes_per_s = int(sys.argv[5]) / float(sys.argv[6])
rss = r["weir"]["rss_mib"]
per = (rss - idle_mib) / n
window_mib = bytes_per_s * w / 2**20
ok = r["on_time"]
print(f"RESULT memory_per_stream_mib {per:.2f}")
print(f"RATIO memory_per_stream_vs_window {per / window_mib:.2f}")
print(f"{n} streams, {w} s window: weir RSS {rss:.0f} MiB (idle {idle_mib:.0f}), {per:.2f} MiB per stream; "
      f"the window holds {window_mib:.2f} MiB of media ({bytes_per_s * 8 / 1e6:.2f} Mbit/s); every part on time: {ok}")
print()
print("## Memory per passthrough stream (bench/memory.sh)")
print()
print(f"{n} RTMP publishers replaying a {bytes_per_s * 8 / 1e6:.2f} Mbit/s 720p30 clip, 2 s segments / 500 ms parts, a {w} s window, "
      "RSS read once every window is full. Target: ≤ 1.2× the window's media.")
print()
print("| streams | window | RSS (idle) | per stream | window media | ratio |")
print("| --- | --- | --- | --- | --- | --- |")
print(f"| {n} | {w} s | {rss:.0f} MiB ({idle_mib:.0f}) | {per:.2f} MiB | {window_mib:.2f} MiB | {per / window_mib:.2f}× |")
print()
print("```")
print(f"bench/memory.sh {sys.argv[7]}".rstrip())
print("```")
PY
