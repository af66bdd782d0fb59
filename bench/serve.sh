#!/usr/bin/env bash
# Serving: one cached part and one cached whole segment from weir, against nginx serving the
# same bytes as static files (sendfile), over HTTP/1.1 (wrk) and HTTP/2 over TLS (h2load),
# at 64 and 1,000 connections.
#
# weir runs `weir serve` (tokio multi-thread runtime, one worker per core: 2 here) with a
# publisher: ffmpeg replays a pre-encoded 720p 2.7 Mbit/s clip (-re -stream_loop -1 -c copy,
# so nothing is encoded during the runs) over RTMP; 2 s segments, 500 ms parts, a 120 s
# window so the objects stay listed for the whole bench. Once a complete segment and its
# parts are listed, curl downloads one part (the first part of the segment) and the whole
# segment into nginx's root: both servers send the same bytes. nginx 2 workers
# (worker_processes 2: as many as weir's tokio workers), sendfile, tcp_nopush, access_log off,
# keepalive_requests 1000000 (weir closes no keep-alive connection after N requests);
# `listen … ssl http2` on a second port. Both TLS listeners use one self-signed ECDSA P-256
# certificate made with openssl here. weir's config sets max_connections_per_ip = 0 (no
# limit; the default 256 would refuse most of the 1,000 connections from 127.0.0.1).
#
# Each run lasts $SECS s (default 5): wrk -t2 -cC -d, h2load -t2 -cC -m1 -D (after a 1 s
# warm-up; p99 from its per-request log). Load tool and server share the machine's cores.
# weir's CPU is read from /proc/<pid>/stat (utime+stime) before and after each run, nginx's
# from its workers; bytes served = responses × body bytes (headers not counted).
#
# Output: progress lines, then one line per comparison
#   RATIO serve_<part|segment>_<h1|h2>_<conns> <weir req/s ÷ nginx req/s>
# and a Markdown section (## Serving: weir vs nginx) with the table and the command line.
#
#   bench/serve.sh            full run (2 objects × 2 protocols × 64 and 1000 connections)
#   bench/serve.sh --smoke    (or BENCH_SMOKE=1) 1 s per run, 64 connections only
#   SECS=10 CONNS="64" bench/serve.sh   longer runs, other connection counts
#   WEIR_BIN=/tmp/weir-old bench/serve.sh   another weir binary (A/B against the same nginx)
#   PERF=1 bench/serve.sh     also `perf record $PERF_ARGS` (default -g -F 499) weir during its
#                             runs → $PERF_OUT/perf-<obj>-<proto>-<conns>.data (default .)
#
# 127.0.0.1 only; every process is killed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=${BENCH_SMOKE:-0}
[[ ${1:-} == --smoke ]] && SMOKE=1
if [[ $SMOKE == 1 ]]; then
  export BENCH_SMOKE=1 # lib.sh: the debug builds
  SECS=${SECS:-1} CONNS=${CONNS:-64}
else
  SECS=${SECS:-5} CONNS=${CONNS:-64 1000}
fi
OBJECTS=${OBJECTS:-part segment}
PROTOS=${PROTOS:-h1 h2}
for tool in nginx wrk h2load openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (scripts/setup.sh)"; exit 1; }
done
# shellcheck source=bench/lib.sh
source bench/lib.sh
WEIR=${WEIR_BIN:-$WEIR} # WEIR_BIN=path: another weir build (before/after comparisons)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
TCK=$(getconf CLK_TCK)
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }

# --- certificate, config, publisher -------------------------------------------------------
chmod 755 "$WORK" # nginx workers may run as www-data
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem"
cat > "$WORK/weir.toml" <<'TOML'
[server]
max_connections_per_ip = 0
TOML
stem=$(bench_clip 1280x720 2700k 20)
HTTPS_PORT=$(free_port)
start_weir --config "$WORK/weir.toml" --https "127.0.0.1:$HTTPS_PORT" \
  --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" \
  --segment-ms 2000 --part-ms 500 --window-s 120
ffmpeg -hide_banner -loglevel error -re -stream_loop -1 -i "$stem.flv" -c copy -f flv \
  "rtmp://$RTMP/live/bench" > "$WORK/ffmpeg.log" 2>&1 &
PIDS+=($!)

# Wait for a complete segment whose parts are listed: the segment after the first listed
# part's segment boundary, so the first part listed in that run is its first part.
mkdir -p "$WORK/www/o"
PLAYLIST="http://$HTTP/live/bench/src/index.m3u8"
found=""
for _ in $(seq 150); do
  if curl -sf "$PLAYLIST" -o "$WORK/index.m3u8"; then
    found=$(python3 - "$WORK/index.m3u8" <<'PY'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
parts, segs = [], []
run = []
seen_boundary = False
for l in lines:
    if l.startswith("#EXT-X-PART:"):
        run.append(re.search(r'URI="([^"]+)"', l).group(1))
    elif l.startswith("#EXTINF:"):
        pass
    elif l and not l.startswith("#"):
        # a segment URI: `run` holds its parts when they are all listed (the first segment
        # with parts may have lost its early ones from the list, so only count a segment
        # whose parts started after a previous segment line)
        if seen_boundary and run:
            segs.append((l, run[0]))
        seen_boundary = True
        run = []
if segs:
    print(segs[-1][0], segs[-1][1])
PY
)
    [[ -n $found ]] && break
  fi
  sleep 0.2
done
[[ -n $found ]] || { echo "no complete segment with listed parts; weir said:"; tail -5 "$WORK/weir.err"; exit 1; }
read -r SEG PART <<< "$found"
curl -sf "http://$HTTP/live/bench/src/$SEG" -o "$WORK/www/o/segment.m4s"
curl -sf "http://$HTTP/live/bench/src/$PART" -o "$WORK/www/o/part.m4s"
declare -A PATHS=([segment]="/live/bench/src/$SEG" [part]="/live/bench/src/$PART")
declare -A SIZES=([segment]=$(stat -c %s "$WORK/www/o/segment.m4s") [part]=$(stat -c %s "$WORK/www/o/part.m4s"))
echo "objects: segment $SEG ${SIZES[segment]} B, part $PART ${SIZES[part]} B"

# --- nginx ----------------------------------------------------------------------------------
NGX_HTTP=$(free_port) NGX_HTTPS=$(free_port)
cat > "$WORK/nginx.conf" <<NGX
daemon off; worker_processes 2; pid $WORK/nginx.pid; error_log $WORK/nginx.err;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000; keepalive_timeout 60s;
  types { video/mp4 mp4 m4s; }
  server {
    listen 127.0.0.1:$NGX_HTTP;
    listen 127.0.0.1:$NGX_HTTPS ssl http2;
    ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem;
    location /o/ { root $WORK/www; add_header Access-Control-Allow-Origin * always; }
  }
}
NGX
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$NGX_HTTP/o/part.m4s" -o /dev/null && break; sleep 0.1; done
for obj in part segment; do
  curl -sf "http://127.0.0.1:$NGX_HTTP/o/$obj.m4s" | cmp - "$WORK/www/o/$obj.m4s"
  curl -sf "http://$HTTP${PATHS[$obj]}" | cmp - "$WORK/www/o/$obj.m4s"
  curl -skf --http2 "https://127.0.0.1:$HTTPS_PORT${PATHS[$obj]}" | cmp - "$WORK/www/o/$obj.m4s"
done

# --- runs -----------------------------------------------------------------------------------
ticks() { # pids… → utime+stime summed
  local t=0 p f
  for p in "$@"; do
    f=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) || continue
    set -- $f
    t=$((t + ${12} + ${13}))
  done
  echo "$t"
}
nginx_workers() { pgrep -P "$NGINX_PID" | tr '\n' ' '; }

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
run() { # server obj proto conns → appends a row to $RESULTS
  local server=$1 obj=$2 proto=$3 conns=$4 url pids out="$WORK/run.out"
  if [[ $server == weir ]]; then
    pids=$WEIR_PID
    [[ $proto == h1 ]] && url="http://$HTTP${PATHS[$obj]}" || url="https://127.0.0.1:$HTTPS_PORT${PATHS[$obj]}"
  else
    pids=$(nginx_workers)
    [[ $proto == h1 ]] && url="http://127.0.0.1:$NGX_HTTP/o/$obj.m4s" || url="https://127.0.0.1:$NGX_HTTPS/o/$obj.m4s"
  fi
  local perf_pid=""
  if [[ ${PERF:-0} == 1 && $server == weir ]]; then
    # shellcheck disable=SC2086
    perf record ${PERF_ARGS:--g -F 499} -p "$WEIR_PID" -o "$WORK/perf-$obj-$proto-$conns.data" -- sleep $((SECS + 1)) > /dev/null 2>&1 &
    perf_pid=$!
  fi
  local t0 t1
  # shellcheck disable=SC2086
  t0=$(ticks $pids)
  local threads=$((conns < 2 ? conns : 2))
  if [[ $proto == h1 ]]; then
    wrk -t"$threads" -c"$conns" -d"${SECS}s" --latency "$url" > "$out" 2>&1 || true
  else
    rm -f "$WORK/h2.log"
    h2load -t"$threads" -c"$conns" -m1 -D "$SECS" --warm-up-time=1 --log-file="$WORK/h2.log" "$url" > "$out" 2>&1 || true
  fi
  # shellcheck disable=SC2086
  t1=$(ticks $pids)
  [[ -n $perf_pid ]] && { wait "$perf_pid" || true; cp "$WORK/perf-$obj-$proto-$conns.data" "${PERF_OUT:-.}/" 2>/dev/null || true; }
  python3 - "$out" "$WORK/h2.log" "$server" "$obj" "$proto" "$conns" "${SIZES[$obj]}" "$t0" "$t1" "$TCK" "$SECS" >> "$RESULTS" <<'PY'
import re, sys
out, h2log, server, obj, proto, conns, size, t0, t1, tck, secs = sys.argv[1:]
text = open(out).read()
size, tck = int(size), int(tck)
cpu_s = (int(t1) - int(t0)) / tck
def to_ms(v, unit):
    return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
rps = p99 = done = errors = None
if proto == "h1":
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    rps = float(m.group(1)) if m else 0.0
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    p99 = to_ms(*m.groups()) if m else float("nan")
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s)", text)
    done = int(m.group(1)) if m else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
else:
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    rps = float(m.group(1)) if m else 0.0
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", text)
    done = int(m.group(2)) if m else 0
    errors = int(m.group(3)) + int(m.group(4)) if m else -1
    try:
        lat = sorted(int(l.split("\t")[2]) for l in open(h2log) if l.strip())
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1000.0 if lat else float("nan")
    except FileNotFoundError:
        p99 = float("nan")
# CPU per Gbit over the whole measured interval (wrk: all of it; h2load: warm-up included in
# CPU, so count the warm-up's responses at the measured rate too).
served = rps * (float(secs) + (1.0 if proto == "h2" else 0.0)) * size
cpu_per_gbit = cpu_s / (served * 8 / 1e9) if served else float("nan")
print(f"{server}\t{obj}\t{proto}\t{conns}\t{rps:.0f}\t{p99:.2f}\t{cpu_s:.2f}\t{cpu_per_gbit:.3f}\t{done}\t{errors}\t{served*8/1e9/ (float(secs) + (1.0 if proto == 'h2' else 0.0)):.2f}")
PY
  tail -1 "$RESULTS" | awk -F'\t' '{printf "  %-5s %-7s %s c=%-5s %8s req/s  p99 %7s ms  CPU %5ss  %6s CPU-s/Gbit  %s Gbit/s  errors %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $11, $10}'
}

echo "serve bench: $(nproc) cores, $(uname -r), ${SECS} s per run, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for obj in $OBJECTS; do
  for proto in $PROTOS; do
    for conns in $CONNS; do
      run weir "$obj" "$proto" "$conns"
      run nginx "$obj" "$proto" "$conns"
    done
  done
done

python3 - "$RESULTS" "${SIZES[part]}" "${SIZES[segment]}" "$SECS" "$*" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
part, seg, secs, args = sys.argv[2:]
by = {(r[0], r[1], r[2], r[3]): r for r in rows}
table = []
for (server, obj, proto, conns), w in by.items():
    if server != "weir":
        continue
    n = by.get(("nginx", obj, proto, conns))
    if not n:
        continue
    ratio = float(w[4]) / float(n[4]) if float(n[4]) else float("nan")
    print(f"RATIO serve_{obj}_{proto}_{conns} {ratio:.2f}")
    table.append((obj, proto, conns, w, n, ratio))
print()
print("## Serving: weir vs nginx")
print()
print(f"One cached object hammered on one URL, {secs} s per run, load tool on the same 2 cores. "
      f"Part {part} B, segment {seg} B (the same bytes from both). nginx 1.x: 2 workers, sendfile; "
      "weir: tokio multi-thread (2 workers). h1 = wrk (HTTP/1.1), h2 = h2load -m1 (HTTP/2 over TLS 1.3, ECDSA P-256).")
print()
print("| object | protocol | connections | weir req/s | weir p99 (ms) | nginx req/s | nginx p99 (ms) | weir ÷ nginx | weir CPU-s/Gbit | nginx CPU-s/Gbit | errors (weir/nginx) |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for obj, proto, conns, w, n, ratio in table:
    print(f"| {obj} | {'HTTP/1.1' if proto == 'h1' else 'HTTP/2+TLS'} | {conns} | {w[4]} | {w[5]} | {n[4]} | {n[5]} | {ratio:.2f} | {w[7]} | {n[7]} | {w[9]}/{n[9]} |")
print()
print(f"Command: `bench/serve.sh{(' ' + args) if args else ''}`")
PY
