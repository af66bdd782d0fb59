# Shared by the load benchmarks (bench/ingest.sh, bench/plugin-faults.sh); source it from the
# repository root. It builds weir and weir-loadgen (release), sets WEIR, LOADGEN, CLIPS and a
# scratch WORK folder, and kills every process listed in PIDS on exit.
for tool in ffmpeg python3 timeout getconf curl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup.sh)"; exit 1; }
done
# Release builds; a smoke run (BENCH_SMOKE=1, CI) takes the debug builds CI already makes.
PROFILE=release
[[ -n ${BENCH_SMOKE:-} ]] && PROFILE=debug
cargo build $([[ $PROFILE == release ]] && echo --release) -q -p weir -p weir-loadgen
TARGET=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
WEIR=$TARGET/$PROFILE/weir
LOADGEN=$TARGET/$PROFILE/weir-loadgen
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

# bench_clip SIZE BITRATE SECONDS: the replay clip, made once and cached: testsrc2 at SIZE,
# 30 fps, H.264 at BITRATE (GOP 2 s, no B-frames) + 96 kbit/s AAC as FLV, and the same
# packets remuxed to MPEG-TS. Prints the path stem (add .flv or .ts).
bench_clip() {
  local size=$1 rate=$2 s=$3
  local stem="$CLIPS/clip-${size}-${rate}-${s}s"
  if [[ ! -s $stem.flv || ! -s $stem.ts ]]; then
    echo "making a ${s} s ${size} clip (once) …" >&2
    ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=30" \
      -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$s" \
      -c:v libx264 -preset veryfast -tune zerolatency -b:v "$rate" -maxrate "$rate" -bufsize "$rate" \
      -g 60 -keyint_min 60 -sc_threshold 0 -bf 0 -c:a aac -b:a 96k -f flv "$stem.flv.tmp"
    ffmpeg -hide_banner -loglevel error -y -i "$stem.flv.tmp" -c copy -f mpegts "$stem.ts.tmp"
    mv "$stem.flv.tmp" "$stem.flv"
    mv "$stem.ts.tmp" "$stem.ts"
  fi
  echo "$stem"
}

# start_weir [ARGS…]: `weir serve` on 127.0.0.1 ports (no test source) with ARGS; sets
# WEIR_PID, HTTP, RTMP and SRT, and exits the script if weir does not come up.
start_weir() {
  "$WEIR" serve --http 127.0.0.1:0 --rtmp 127.0.0.1:0 --srt 127.0.0.1:0 --whip-udp 127.0.0.1:0 --no-test-source \
    "$@" > "$WORK/weir.out" 2> "$WORK/weir.err" &
  WEIR_PID=$!
  PIDS+=("$WEIR_PID")
  for _ in $(seq 100); do grep -q '^listening srt=' "$WORK/weir.out" 2>/dev/null && break; sleep 0.1; done
  HTTP=$(sed -n 's/^listening http=//p' "$WORK/weir.out")
  RTMP=$(sed -n 's/^listening rtmp=//p' "$WORK/weir.out")
  SRT=$(sed -n 's/^listening srt=//p' "$WORK/weir.out")
  [[ -n $HTTP && -n $RTMP && -n $SRT ]] || { echo "weir did not start:"; cat "$WORK/weir.err"; exit 1; }
}

# stop_weir: ends the weir started last.
stop_weir() {
  kill "$WEIR_PID" 2>/dev/null || true
  wait "$WEIR_PID" 2>/dev/null || true
}
