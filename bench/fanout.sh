#!/usr/bin/env bash
# Blocking fan-out: many LL-HLS blocking playlist reloads (_HLS_msn=M&_HLS_part=P, the part
# after the next one, so every request is written before it is published) waiting on one
# stream, and on many streams at once; how soon after the part is published each waiter is
# answered, and weir's memory.
#
# The load tool is `weir-loadgen fanout` (bench/loadgen/src/fanout.rs): it publishes the
# streams itself (RTMP, a pre-encoded 426x240 clip replayed in real time, as bench/ingest.sh
# does; 2 s segments, 500 ms parts), opens the connections (HTTP/1.1 keep-alive, one blocked
# request at a time on each; a round sends one per connection) and timestamps every complete
# answer with the wall clock. Per round and stream, the part's publication time is taken
#   - "first": the earliest answer of the round (latencies from it are lower bounds: the
#     wake spread), and
#   - "pdt": the awaited part's end by its EXT-X-PROGRAM-DATE-TIME in the answer (weir cuts
#     a part when the frame after it arrives; latencies from it include that cut).
# weir's RSS is read from /proc/<pid>/status (VmRSS before and after the connections open and
# after the last round, VmHWM for the peak). Each case's JSON is kept in target/bench-ingest/.
# weir's config sets [server] and [ingest] max_connections_per_ip = 0 (every waiter and
# publisher comes from 127.0.0.1) and keeps [server] max_connections at its default (16,384).
#
# Output: progress on stderr, then
#   RESULT fanout_<streams>x<waiters>_wake_p99_ms <p99 from first answer>
#   RESULT fanout_<streams>x<waiters>_pdt_p99_ms <p99 from the part's end>
#   RESULT fanout_<streams>x<waiters>_last_ms <last answer from first answer>
#   RESULT fanout_<streams>x<waiters>_peak_rss_mib <VmHWM>
# (no peer: nothing else in this bench serves LL-HLS blocking reloads) and a Markdown section
# (## Blocking fan-out) with a table and the command line.
#
#   bench/fanout.sh           1 × 10,000 and 100 × 100, 5 rounds each
#   bench/fanout.sh --smoke   (or BENCH_SMOKE=1) 1 × 200, 1 round
#   CASES="1x10000" ROUNDS=3 bench/fanout.sh
#   WEIR_BIN=/tmp/weir-old bench/fanout.sh    another weir binary
#
# 127.0.0.1 only; the load tool stops by itself (timeout), every process is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=${BENCH_SMOKE:-0}
[[ ${1:-} == --smoke ]] && SMOKE=1
if [[ $SMOKE == 1 ]]; then
  export BENCH_SMOKE=1
  CASES=${CASES:-1x200} ROUNDS=${ROUNDS:-1}
else
  CASES=${CASES:-1x10000 100x100} ROUNDS=${ROUNDS:-5}
fi
# shellcheck source=bench/lib.sh
source bench/lib.sh
WEIR=${WEIR_BIN:-$WEIR} # WEIR_BIN=path: another weir build (before/after comparisons)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
stem=$(bench_clip 426x240 300k 120)
cat > "$WORK/weir.toml" <<'TOML'
[server]
max_connections_per_ip = 0
[ingest]
max_connections_per_ip = 0
TOML
RESULTS=$WORK/results
mkdir -p "$RESULTS"

echo "fanout bench: $(nproc) cores, $(uname -r), $ROUNDS rounds, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for c in $CASES; do
  streams=${c%x*} waiters=${c#*x}
  start_weir --config "$WORK/weir.toml" --segment-ms 2000 --part-ms 500
  echo "case $streams streams × $waiters waiters (weir pid $WEIR_PID)" >&2
  timeout 150 "$LOADGEN" fanout --http "$HTTP" --rtmp "$RTMP" --flv "$stem.flv" \
    --streams "$streams" --waiters "$waiters" --rounds "$ROUNDS" --weir-pid "$WEIR_PID" \
    --max-seconds 110 > "$RESULTS/$c.json"
  stop_weir
  cp "$RESULTS/$c.json" "$CLIPS/fanout-$c.json" # kept for a look after the run
done

python3 - "$RESULTS" "$ROUNDS" "$*" <<'PY'
import json, os, sys
d, rounds, args = sys.argv[1], sys.argv[2], sys.argv[3]
rows = []
for f in sorted(os.listdir(d)):
    r = json.load(open(os.path.join(d, f)))
    name = f"fanout_{r['streams']}x{r['waiters_per_stream']}"
    first, pdt, w = r["from_first_ms"], r["from_pdt_ms"], r["weir"]
    for k, v in [("wake_p50_ms", first["p50"]), ("wake_p99_ms", first["p99"]), ("pdt_p50_ms", pdt["p50"]),
                 ("pdt_p99_ms", pdt["p99"]), ("last_ms", first["max"]), ("peak_rss_mib", w["peak_rss_mib"])]:
        print(f"RESULT {name}_{k} {v:.1f}")
    rows.append(r)
print()
print("## Blocking fan-out")
print()
print(f"HTTP/1.1 keep-alive connections, one `_HLS_msn=M&_HLS_part=P` blocked reload each per round, "
      f"{rounds} rounds (parts); 2 s segments, 500 ms parts; load tool (`weir-loadgen fanout`) on the same 2 cores. "
      "'from first' = answer time minus the round's earliest answer on that stream (the wake spread); "
      "'from part end' = answer time minus the awaited part's end by its program date time.")
print()
print("| streams × waiters | answers / expected | errors | armed early | from first p50 / p99 / last (ms) | from part end p50 / p99 / max (ms) | weir RSS idle → connected → after (MiB) | weir peak RSS (MiB) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    f, p, w = r["from_first_ms"], r["from_pdt_ms"], r["weir"]
    print(f"| {r['streams']} × {r['waiters_per_stream']} | {r['answers']} / {r['expected']} | {r['errors']} | {r['early']} "
          f"| {f['p50']:.1f} / {f['p99']:.1f} / {f['max']:.1f} | {p['p50']:.1f} / {p['p99']:.1f} / {p['max']:.1f} "
          f"| {w['rss_mib_idle']:.0f} → {w['rss_mib_connected']:.0f} → {w['rss_mib_after']:.0f} | {w['peak_rss_mib']:.0f} |")
print()
print(f"Command: `bench/fanout.sh{(' ' + args) if args else ''}`")
PY
