#!/usr/bin/env bash
# CPU ladder throughput: weir's encoder against the ffmpeg CLI doing the same ladder, on the
# same 60 s 1080p30 input, in the same run.
#
# Both do one decode of the H.264 input, scale it to 1920x1080 (copy), 1280x720, 852x480 and
# 640x360 (swscale bilinear), encode each with libx264 (same preset, tune=zerolatency, no
# B-frames, 2 s GOP without scene cuts, CBR with nal-hrd=cbr at 6/3/1.2/0.6 Mbit/s) and
# encode the audio once to AAC 128 kbit/s. ffmpeg writes to the null muxer; weir hands the
# samples to a counter (examples/ladder.rs). Time is wall clock on this machine, both using
# every core; the ratio weir / ffmpeg is the target (≤ 1.0). Real-time 1080p30 ladders per
# machine = weir's source frames per second / 30.
#
#   bench/encoder.sh [PRESET] [RUNS]   default veryfast, 2 runs each (interleaved)
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in ffmpeg python3 nproc; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup.sh)"; exit 1; }
done
PRESET=${1:-veryfast}
RUNS=${2:-2}
cargo build --release -q -p weir-encoder --example ladder
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
LADDER=$TARGET/release/examples/ladder
INPUT=$TARGET/bench-encoder/input-1080p30-60s.flv
mkdir -p "$(dirname "$INPUT")"
if [ ! -s "$INPUT" ]; then
  echo "making the 60 s 1080p30 input (once)…"
  ffmpeg -hide_banner -loglevel error -y \
    -f lavfi -i "testsrc2=size=1920x1080:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
    -t 60 -c:v libx264 -preset veryfast -b:v 8M -g 60 -bf 2 -pix_fmt yuv420p -c:a aac -b:a 128k \
    -f flv "$INPUT"
fi

x264() { # bitrate_kbps
  echo "-c:v libx264 -preset $PRESET -tune zerolatency -b:v ${1}k -maxrate ${1}k -bufsize ${1}k \
    -x264-params keyint=60:min-keyint=60:scenecut=0:bframes=0:rc-lookahead=0:nal-hrd=cbr -f null -"
}
ffmpeg_ladder() {
  # shellcheck disable=SC2046
  ffmpeg -hide_banner -loglevel error -y -i "$INPUT" -sws_flags bilinear -filter_complex \
    "[0:v]split=4[a][b][c][d];[b]scale=1280:720[b2];[c]scale=852:480[c2];[d]scale=640:360[d2]" \
    -map "[a]" $(x264 6000) -map "[b2]" $(x264 3000) -map "[c2]" $(x264 1200) -map "[d2]" $(x264 600) \
    -map 0:a -c:a aac -b:a 128k -f null -
}

echo "input: $INPUT ($(nproc) cores), preset $PRESET, $RUNS runs each"
W=(); F=()
for i in $(seq "$RUNS"); do
  t0=$(date +%s.%N); ffmpeg_ladder; t1=$(date +%s.%N)
  F+=("$(python3 -c "print(round($t1 - $t0, 3))")")
  out=$("$LADDER" "$INPUT" "$PRESET")
  echo "  $(echo "$out" | head -1)"
  W+=("$(echo "$out" | sed -n 's/^seconds=\([0-9.]*\) .*/\1/p')")
  echo "  run $i: ffmpeg ${F[-1]} s, weir ${W[-1]} s"
done
python3 - "${W[*]}" "${F[*]}" <<'PY'
import sys, statistics
w = [float(x) for x in sys.argv[1].split()]
f = [float(x) for x in sys.argv[2].split()]
mw, mf = statistics.median(w), statistics.median(f)
print(f"median: weir {mw:.2f} s, ffmpeg CLI {mf:.2f} s, ratio weir/ffmpeg {mw/mf:.2f} (target <= 1.0)")
print(f"weir: {1800/mw:.1f} source frames/s = {1800/mw/30:.2f} real-time 1080p30 4-rung ladders on this machine")
print(f"ffmpeg: {1800/mf:.1f} source frames/s = {1800/mf/30:.2f} real-time ladders")
PY
