//! `weir-loadgen fanout`: the load side of `bench/fanout.sh`, blocking fan-out.
//!
//! Publishes `--streams` RTMP streams (`fan-{i}`, the clip replayed in real time as in the
//! ingest bench), opens `--waiters` HTTP/1.1 keep-alive connections per stream, and runs
//! `--rounds` rounds on every stream at once. A round: read the stream's media playlist,
//! pick the part after the next one (so that every request is written well before that part
//! is published: a part target of slack), send one `_HLS_msn=M&_HLS_part=P` blocking reload
//! on every connection of the stream, and timestamp (wall clock) each complete answer.
//!
//! The part's publication time is estimated two ways, both reported:
//! - `first`: the earliest answer of the round on that stream. Latencies from it are lower
//!   bounds (it is the wake spread: how long after the first waiter the last one is answered).
//! - `pdt`: the end of the awaited part by its program date time in the answered playlist
//!   (EXT-X-PROGRAM-DATE-TIME plus the durations listed after it). weir cuts a part when the
//!   frame after its end arrives, and the publisher replays frames at their timestamps, so
//!   this is when the part could be published at the earliest; latencies from it include
//!   the cut and the packaging.
//!
//! Prints one JSON object on stdout (per-round and overall quantiles, weir's RSS and peak
//! RSS, errors), progress on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clip::FlvClip;
use crate::stats::Schedule;
use crate::{probe, quantile, rtmp};

const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Parser, Debug)]
#[command(
    name = "weir-loadgen fanout",
    about = "Blocked LL-HLS playlist requests on N streams: wake latency per part"
)]
struct Args {
    /// weir's HTTP address.
    #[arg(long)]
    http: SocketAddr,
    #[arg(long)]
    rtmp: SocketAddr,
    /// The clip every stream replays (H.264 + AAC FLV).
    #[arg(long)]
    flv: PathBuf,
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Blocked requests (connections) per stream.
    #[arg(long, default_value_t = 100)]
    waiters: usize,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Between two publisher starts.
    #[arg(long, default_value_t = 20)]
    stagger_ms: u64,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// weir's process id, for its memory.
    #[arg(long)]
    weir_pid: Option<String>,
    /// Tokio worker threads of the load tool.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Longest the run may take (the publishers stop then).
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
}

pub fn main(argv: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = Args::parse_from(argv);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// One stream's round.
struct Round {
    stream: usize,
    round: usize,
    msn: u64,
    part: u32,
    /// Unix ms.
    answers: Vec<f64>,
    errors: usize,
    /// Answers that came before the last request of the round was written (the part was
    /// published before every waiter was armed).
    early: usize,
    first_ms: f64,
    pdt_end_ms: Option<f64>,
    armed_in_ms: f64,
}

async fn run(args: Args) -> anyhow::Result<()> {
    ensure!(args.streams > 0 && args.waiters > 0, "nothing to do");
    let clip = Arc::new(FlvClip::load(&args.flv)?);
    let start = Instant::now();
    let stop = start + Duration::from_secs(args.max_seconds);
    ensure!(
        clip.duration() >= Duration::from_secs(args.max_seconds),
        "{} lasts {:?}, the run may need {} s",
        args.flv.display(),
        clip.duration(),
        args.max_seconds
    );
    let sched = Schedule {
        window_start: start,
        window_end: stop,
        stop,
    };
    let keys: Vec<String> = (0..args.streams).map(|i| format!("fan-{i}")).collect();
    let mut publishers = JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        let at = start + Duration::from_millis(args.stagger_ms * i as u64);
        let (key, clip, addr) = (key.clone(), Arc::clone(&clip), args.rtmp);
        publishers.spawn(async move {
            tokio::time::sleep_until(at).await;
            rtmp::run(addr, key, clip, sched).await
        });
    }
    // Every stream has a playlist with parts.
    let deadline = Instant::now() + Duration::from_secs(30);
    for key in &keys {
        loop {
            let path = format!("/live/{key}/src/index.m3u8");
            if let Ok((200, body)) = probe::get(args.http, &path).await {
                if String::from_utf8_lossy(&body).contains("#EXT-X-PART:") {
                    break;
                }
            }
            ensure!(
                Instant::now() < deadline,
                "{key} has no playlist after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "fanout: {} streams live after {:?}",
        args.streams,
        start.elapsed()
    );
    let idle = memory(&args)?;

    // Open every connection.
    let t = Instant::now();
    let total = args.streams * args.waiters;
    let http = args.http;
    let opened: Vec<anyhow::Result<TcpStream>> = futures_util::stream::iter(0..total)
        .map(|_| async move {
            let sock = TcpStream::connect(http).await?;
            sock.set_nodelay(true)?;
            anyhow::Ok(sock)
        })
        .buffered(args.connect_concurrency.max(1))
        .collect()
        .await;
    let mut conns: Vec<Vec<TcpStream>> = (0..args.streams).map(|_| Vec::new()).collect();
    for (i, c) in opened.into_iter().enumerate() {
        conns[i % args.streams].push(c.context("connect")?);
    }
    eprintln!("fanout: {total} connections open in {:?}", t.elapsed());
    let connected = memory(&args)?;

    // Every stream runs its rounds on its own; the memory sampler runs beside them.
    let mut streams = JoinSet::new();
    for (stream, (key, socks)) in keys.iter().zip(conns).enumerate() {
        let key = key.clone();
        let rounds = args.rounds;
        streams.spawn(async move { stream_rounds(http, stream, key, socks, rounds).await });
    }
    let mut rounds = Vec::new();
    while let Some(r) = streams.join_next().await {
        rounds.extend(r.context("stream task panicked")??);
    }
    let after = memory(&args)?;
    publishers.abort_all();

    report(&args, &rounds, idle, connected, after);
    Ok(())
}

fn memory(args: &Args) -> anyhow::Result<Option<(u64, u64)>> {
    args.weir_pid.as_deref().map(probe::memory_kib).transpose()
}

/// The next part's coordinates in `playlist`: (`msn` of the segment in progress, how many of
/// its parts are listed).
fn edge(playlist: &str) -> anyhow::Result<(u64, u32)> {
    let mut msn: Option<u64> = None;
    let mut parts = 0u32;
    for line in playlist.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            msn = Some(v.trim().parse()?);
        } else if line.starts_with("#EXT-X-PART:") {
            parts += 1;
        } else if !line.is_empty() && !line.starts_with('#') {
            // A segment URI: the next segment starts.
            msn = msn.map(|m| m + 1);
            parts = 0;
        }
    }
    let Some(msn) = msn else {
        bail!("no EXT-X-MEDIA-SEQUENCE");
    };
    Ok((msn, parts))
}

async fn stream_rounds(
    http: SocketAddr,
    stream: usize,
    key: String,
    mut socks: Vec<TcpStream>,
    rounds: usize,
) -> anyhow::Result<Vec<Round>> {
    let path = format!("/live/{key}/src/index.m3u8");
    let mut out = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (status, body) = probe::get(http, &path).await?;
        ensure!(status == 200, "{path}: {status}");
        let (msn, parts) = edge(&String::from_utf8_lossy(&body))?;
        // Part `parts` of segment `msn` is the one being written; wait for the one after.
        // An index past the segment's last part means the next segment's first part (RFC
        // 8216bis 6.2.5.2), which weir follows.
        let part = parts + 1;
        let request: Arc<[u8]> =
            format!("GET {path}?_HLS_msn={msn}&_HLS_part={part} HTTP/1.1\r\nHost: {http}\r\n\r\n")
                .into_bytes()
                .into();
        let t0_ms = probe::now_unix_ms();
        let mut set = JoinSet::new();
        for (i, mut sock) in socks.drain(..).enumerate() {
            let request = Arc::clone(&request);
            set.spawn(async move {
                let r = tokio::time::timeout(ANSWER_TIMEOUT, ask(&mut sock, &request)).await;
                (i, sock, r)
            });
        }
        let mut answers = Vec::with_capacity(set.len());
        let mut errors = 0;
        let mut first_body: Option<(f64, Vec<u8>)> = None;
        let mut back: Vec<(usize, TcpStream)> = Vec::with_capacity(set.len());
        let mut last_sent = 0.0f64;
        while let Some(r) = set.join_next().await {
            let (i, sock, r) = r.context("waiter panicked")?;
            match r {
                Ok(Ok(a)) if a.status == 200 => {
                    answers.push(a.at_ms);
                    last_sent = last_sent.max(a.sent_ms);
                    if first_body.as_ref().is_none_or(|(t, _)| a.at_ms < *t) {
                        first_body = Some((a.at_ms, a.body));
                    }
                    back.push((i, sock));
                }
                Ok(Ok(a)) => {
                    errors += 1;
                    last_sent = last_sent.max(a.sent_ms);
                    back.push((i, sock));
                }
                Ok(Err(e)) => {
                    errors += 1;
                    if errors == 1 {
                        eprintln!("fanout: {key} round {round}: {e:#}");
                    }
                }
                Err(_) => errors += 1,
            }
        }
        back.sort_by_key(|(i, _)| *i);
        socks = back.into_iter().map(|(_, s)| s).collect();
        let first_ms = answers.iter().copied().fold(f64::INFINITY, f64::min);
        let early = answers.iter().filter(|a| **a < last_sent).count();
        let pdt_end_ms = first_body.and_then(|(_, body)| {
            probe::live_edge(&String::from_utf8_lossy(&body))
                .ok()
                .map(|e| e.end_unix_ms)
        });
        out.push(Round {
            stream,
            round,
            msn,
            part,
            answers,
            errors,
            early,
            first_ms,
            pdt_end_ms,
            armed_in_ms: last_sent - t0_ms,
        });
        ensure!(!socks.is_empty(), "{key}: every connection failed");
    }
    Ok(out)
}

struct Answer {
    status: u16,
    /// Unix ms: the request written, the whole answer read.
    sent_ms: f64,
    at_ms: f64,
    body: Vec<u8>,
}

/// One request on a keep-alive connection; the answer must carry `Content-Length`.
async fn ask(sock: &mut TcpStream, request: &[u8]) -> anyhow::Result<Answer> {
    sock.write_all(request).await?;
    let sent_ms = probe::now_unix_ms();
    let mut buf = Vec::with_capacity(4096);
    let (head_end, status, len) = loop {
        if buf.len() == buf.capacity() {
            buf.reserve(buf.len());
        }
        let n = sock.read_buf(&mut buf).await?;
        ensure!(n > 0, "closed by weir");
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("no status")?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .context("no Content-Length")?;
            break (end + 4, status, len);
        }
    };
    while buf.len() < head_end + len {
        buf.reserve(head_end + len - buf.len());
        let n = sock.read_buf(&mut buf).await?;
        ensure!(n > 0, "closed mid-body");
    }
    let at_ms = probe::now_unix_ms();
    Ok(Answer {
        status,
        sent_ms,
        at_ms,
        body: buf.split_off(head_end),
    })
}

fn stats(v: &mut [f64]) -> serde_json::Value {
    v.sort_by(f64::total_cmp);
    json!({
        "n": v.len(),
        "p50": quantile(v, 0.50),
        "p99": quantile(v, 0.99),
        "max": v.last().copied().unwrap_or(f64::NAN),
    })
}

fn report(
    args: &Args,
    rounds: &[Round],
    idle: Option<(u64, u64)>,
    connected: Option<(u64, u64)>,
    after: Option<(u64, u64)>,
) {
    let mut from_first_all = Vec::new();
    let mut from_pdt_all = Vec::new();
    let mut per_round = Vec::new();
    for r in rounds {
        let mut from_first: Vec<f64> = r.answers.iter().map(|a| a - r.first_ms).collect();
        let mut from_pdt: Vec<f64> = r
            .pdt_end_ms
            .map(|p| r.answers.iter().map(|a| a - p).collect())
            .unwrap_or_default();
        from_first_all.extend_from_slice(&from_first);
        from_pdt_all.extend_from_slice(&from_pdt);
        if args.streams <= 4 {
            eprintln!(
                "fanout: stream {} round {} (msn {} part {}): {} answers, {} errors, {} early, armed in {:.1} ms, last {:.1} ms after the first, first {:.1} ms after the part's end",
                r.stream,
                r.round,
                r.msn,
                r.part,
                r.answers.len(),
                r.errors,
                r.early,
                r.armed_in_ms,
                from_first.iter().copied().fold(0.0, f64::max),
                r.pdt_end_ms.map_or(f64::NAN, |p| r.first_ms - p),
            );
            per_round.push(json!({
                "stream": r.stream,
                "round": r.round,
                "msn": r.msn,
                "part": r.part,
                "errors": r.errors,
                "early": r.early,
                "armed_in_ms": r.armed_in_ms,
                "from_first_ms": stats(&mut from_first),
                "from_pdt_ms": stats(&mut from_pdt),
            }));
        }
    }
    let answers: usize = rounds.iter().map(|r| r.answers.len()).sum();
    let errors: usize = rounds.iter().map(|r| r.errors).sum();
    let early: usize = rounds.iter().map(|r| r.early).sum();
    let armed_max = rounds.iter().map(|r| r.armed_in_ms).fold(0.0, f64::max);
    let kib =
        |m: Option<(u64, u64)>, i: usize| m.map(|m| if i == 0 { m.0 } else { m.1 } as f64 / 1024.0);
    let out = json!({
        "streams": args.streams,
        "waiters_per_stream": args.waiters,
        "waiters": args.streams * args.waiters,
        "rounds": args.rounds,
        "answers": answers,
        "expected": args.streams * args.waiters * args.rounds,
        "errors": errors,
        "early": early,
        "armed_in_ms_max": armed_max,
        "from_first_ms": stats(&mut from_first_all),
        "from_pdt_ms": stats(&mut from_pdt_all),
        "weir": {
            "rss_mib_idle": kib(idle, 0),
            "rss_mib_connected": kib(connected, 0),
            "rss_mib_after": kib(after, 0),
            "peak_rss_mib": kib(after, 1),
        },
        "per_round": per_round,
    });
    println!("{out}");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_edge_is_the_segment_in_progress() {
        let p = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-PART:DURATION=0.5,URI=\"a\"\n\
            #EXTINF:2.0,\nseg7.m4s\n#EXTINF:2.0,\nseg8.m4s\n\
            #EXT-X-PART:DURATION=0.5,URI=\"b\"\n#EXT-X-PART:DURATION=0.5,URI=\"c\"\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"d\"\n";
        assert_eq!(edge(p).unwrap(), (9, 2));
        let p = "#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2.0,\nseg3.m4s\n";
        assert_eq!(edge(p).unwrap(), (4, 0));
    }
}
