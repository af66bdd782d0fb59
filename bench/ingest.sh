#!/usr/bin/env bash
# Passthrough ingest capacity: how many concurrent 2 Mbit/s publishers (half RTMP, half
# SRT) one weir process packages with every part still published on time.
#
# bench/loadgen (weir-loadgen) replays a pre-encoded H.264+AAC clip in real time per stream
# (no encoding in the loop), staggering starts 20 ms apart. After a warm-up it fetches every
# stream's media playlist several times and computes the edge lag: now minus the
# EXT-X-PROGRAM-DATE-TIME at the end of the last listed part. A part counts as on time when
# the lag stays within part target + one frame + 100 ms (633 ms for 500 ms parts at 30 fps).
# It reads weir's CPU (utime+stime) and RSS from /proc at both ends of the window, its own
# CPU and the machine's, and the part counters from /metrics. Weir and the load tool share
# this machine's cores, so the load tool's CPU is printed beside weir's.
#
#   bench/ingest.sh [N_RTMP] [N_SRT] [SECONDS]   one run (default 100 100 30 s window)
#   bench/ingest.sh search [SECONDS]             N = $STEPS (default 50 100 200 … 500), half
#                                                 each protocol, up to the first N that is late
#
# TRANSCODE=1 measures transcoded ingests instead (RTMP only): a 1080p30 6 Mbit/s clip, weir run with
# --transcode --preset $PRESET (default veryfast) into the default 4-rung ladder, the edge
# measured on the 1080p rung, and every rung's parts counted (e.g.
# TRANSCODE=1 STEPS="1 2 3" bench/ingest.sh search).
#
# 127.0.0.1 only; every process is bounded by `timeout` and killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
WARMUP_S=8
STAGGER_MS=20
SIZE=1280x720 BITRATE=1900k WEIR_ARGS=() LOADGEN_ARGS=()
if [[ ${TRANSCODE:-0} == 1 ]]; then
  SIZE=1920x1080 BITRATE=6000k
  WEIR_ARGS=(--transcode --preset "${PRESET:-veryfast}")
  LOADGEN_ARGS=(--rendition 1080p --renditions 4)
fi
# shellcheck source=bench/lib.sh
source bench/lib.sh

header() {
  echo "| streams (RTMP+SRT) | on time | edge lag p50 / p99 / max (ms) | behind (RTMP+SRT) | live | weir CPU (% of a core) | per stream | RSS (MiB) | load tool CPU | load tool late p99 / max (ms) | machine busy | parts / expected |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
}

row() { # json file
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
s, w, g, l = r["streams"], r["weir"], r["loadgen"], r["edge_lag_ms"]
f = lambda v, fmt="{:.0f}": "–" if v is None else fmt.format(v)
print(f'| {s["total"]} ({s["rtmp"]}+{s["srt"]}) | {"yes" if r["on_time"] else "**no**"} '
      f'| {f(l["p50"])} / {f(l["p99"])} / {f(l["max"])} | {r["streams_behind"]} ({r["streams_behind_rtmp"]}+{r["streams_behind_srt"]}) '
      f'| {r["streams_live_every_sweep"]}/{s["total"]} | {f(w["cpu_pct"])} | {f(w["cpu_pct_per_stream"], "{:.2f}")} '
      f'| {f(w["rss_mib"])} | {f(g["cpu_pct"])} % | {g["send_late_ms"]["p99"]} / {f(g["send_late_ms"]["max"])} | {f(r["machine"]["busy_pct"])} % '
      f'| {f(w["parts_published"])} / {f(w["parts_expected"])} |')
if r["errors"] or r["clip_ended"] or w["gap_parts"]:
    print(f'|   | errors {r["errors"]} {r["first_errors"][:2]}, gap parts {w["gap_parts"]}, clip ended {r["clip_ended"]}, '
          f'samples rejected {w["samples_rejected"]} |')
PY
}

run_once() { # n_rtmp n_srt seconds → writes $WORK/last.json, prints a table row
  local nr=$1 ns=$2 secs=$3
  local n=$((nr + ns))
  local need=$(( (n * STAGGER_MS) / 1000 + WARMUP_S + secs + 3 ))
  local stem
  stem=$(bench_clip "$SIZE" "$BITRATE" $(( (need + 59) / 60 * 60 )))
  start_weir "${WEIR_ARGS[@]}"
  echo "run: $nr RTMP + $ns SRT, ${secs} s window, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  timeout $((need + 60)) "$LOADGEN" --http "$HTTP" --rtmp "$RTMP" --srt "$SRT" \
    --rtmp-streams "$nr" --srt-streams "$ns" --flv "$stem.flv" --ts "$stem.ts" \
    --seconds "$secs" --warmup-s "$WARMUP_S" --stagger-ms "$STAGGER_MS" \
    --weir-pid "$WEIR_PID" --clk-tck "$(getconf CLK_TCK)" "${LOADGEN_ARGS[@]}" > "$WORK/last.json"
  stop_weir
  cp "$WORK/last.json" "$CLIPS/result-${nr}-${ns}.json"
  row "$WORK/last.json"
}

on_time() { python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["on_time"] else 1)' "$WORK/last.json"; }

echo "ingest bench: $(nproc) cores, $(uname -r), weir $("$WEIR" --version 2>/dev/null || echo '?')"
if [[ ${1:-} == search ]]; then
  SECS=${2:-30}
  # weir's SRT listener takes at most 256 callers, so half-SRT steps stop at 512.
  STEPS=${STEPS:-50 100 200 300 400 450 500}
  best=0
  header
  for n in $STEPS; do
    if [[ ${TRANSCODE:-0} == 1 ]]; then
      # RTMP only: weir-loadgen's srt-tokio sender stalls at 6 Mbit/s against srt-tokio
      # (libsrt callers, e.g. ffmpeg, do not); see docs/PERFORMANCE.md.
      run_once "$n" 0 "$SECS"
    else
      run_once $((n / 2)) $((n - n / 2)) "$SECS"
    fi
    if on_time; then best=$n; else break; fi
  done
  echo
  echo "largest N with every part on time: $best (of steps $STEPS)"
else
  header
  run_once "${1:-100}" "${2:-100}" "${3:-30}"
fi
