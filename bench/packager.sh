#!/usr/bin/env bash
# Packaging throughput (issue 17): weir's packager against ffmpeg's hls muxer, remuxing the
# same 10-minute H.264/AAC MPEG-TS clip, measured in the same run.
#
#   bench/packager.sh            # the full run: 600 s clip, 9 weir runs, 3 ffmpeg runs of each kind
#   BENCH_SMOKE=1 bench/packager.sh   (or --smoke): a 20 s clip, one run each; asserts only
#                                     that everything runs (CI)
#
# The clip (testsrc2 1280x720 30 fps, x264 veryfast, 2 s GOP, no B-frames, 2.5 Mbit/s, AAC
# 96 kbit/s) is made once with ffmpeg and cached in <target>/bench-packager/.
# weir-packbench (bench/packbench) demuxes it with weir's TS demuxer first (untimed in the
# headline), then times only weir_packager::Packager cutting every sample into 0.5 s parts
# and 2 s segments on a virtual clock, with the media playlist rendered (full and delta
# update) after every part as weir's stream driver does. The peer is
#   ffmpeg -i clip.ts -c copy -bsf:a aac_adtstoasc -f hls -hls_segment_type fmp4 -hls_time 2 -hls_playlist_type vod
# (Debian 12's ffmpeg 5.1 has no LL-HLS parts, so 2 s fMP4 segments are the peer), writing
# into a tmpfs, and `ffmpeg -i clip.ts -c copy -bsf:a aac_adtstoasc -f null -` for ffmpeg's demux alone.
#
# Output (stdout): a few summary lines, then
#   RATIO packager_vs_ffmpeg_hls <x>                     headline: weir packaging vs ffmpeg's
#                                                        muxing alone (hls CPU − null CPU), in
#                                                        media seconds per CPU second
#   RATIO packager_vs_ffmpeg_hls_raw <x>                 weir packaging vs ffmpeg's whole run
#   RATIO packager_with_demux_vs_ffmpeg_hls_raw <x>      weir demux + packaging vs ffmpeg's whole run
# then a Markdown section (## title, a table: CPU and wall seconds, media seconds per CPU
# second, allocations and bytes allocated per part, the command line). Progress goes to stderr.
# Measure under the machine-wide lock: flock /tmp/bench.lock bench/packager.sh
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=${BENCH_SMOKE:-}
[[ ${1:-} == --smoke ]] && smoke=1
for tool in ffmpeg cargo python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup.sh)"; exit 1; }
done

# Release; the smoke run (CI) takes the debug profile CI has already built most of.
PROFILE=release
[[ -n $smoke ]] && PROFILE=debug
cargo build $([[ $PROFILE == release ]] && echo --release) -q -p weir-packbench
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
CLIPS=$TARGET/bench-packager
mkdir -p "$CLIPS"

if [[ -n $smoke ]]; then seconds=20; reps=(--reps 1 --ffmpeg-reps 1 --smoke); else seconds=600; reps=(); fi
clip=$CLIPS/clip-1280x720-2500k-${seconds}s.ts
if [[ ! -s $clip ]]; then
  echo "making the ${seconds} s clip (once) …" >&2
  ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i "testsrc2=size=1280x720:rate=30" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$seconds" \
    -c:v libx264 -preset veryfast -b:v 2500k -maxrate 2500k -bufsize 2500k \
    -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -c:a aac -b:a 96k -f mpegts "$clip.tmp"
  mv "$clip.tmp" "$clip"
fi

# ffmpeg writes its segments into a tmpfs where there is one, so disk speed stays out of it.
if [[ -d /dev/shm && -w /dev/shm ]]; then SCRATCH=$(mktemp -d /dev/shm/packbench.XXXXXX); else SCRATCH=$(mktemp -d); fi
trap 'rm -rf "$SCRATCH"' EXIT

cmd="bench/packager.sh"
[[ -n $smoke ]] && cmd="BENCH_SMOKE=1 bench/packager.sh"
"$TARGET/$PROFILE/weir-packbench" --input "$clip" --scratch "$SCRATCH" --command "$cmd" "${reps[@]}"
