//! `weir-loadgen`: the load side of `bench/ingest.sh`.
//!
//! Publishes `--rtmp-streams` RTMP streams (`lg-rtmp-{i}`) and `--srt-streams` SRT streams
//! (`lg-srt-{i}`) to one weir, each replaying a pre-encoded clip in real time: FLV tags at
//! their timestamps over rml_rtmp's client session, 1316-byte MPEG-TS messages at their PCR
//! times over srt-tokio. Nothing is encoded. Starts are staggered, then after a warm-up a
//! steady window runs, during which it
//!
//! - fetches every stream's media playlist a few times and computes the *edge lag*: now
//!   minus the program-date-time at the end of the last listed part (a part that is published
//!   on time leaves a lag of at most one part target plus a frame);
//! - reads weir's CPU time and memory from /proc (and its own CPU, and the machine's), and
//!   the part counters from /metrics, at the window's start and end.
//!
//! It prints one JSON object on stdout and progress on stderr, and stops by itself: every
//! publisher ends one second after the window. 127.0.0.1 is the only sensible target.
//!
//! `weir-loadgen fanout …` is the blocking fan-out bench instead (see `fanout.rs`).

#![allow(clippy::disallowed_methods)] // tests and benches drive real peers on the real clock

mod clip;
mod fanout;
mod probe;
mod rtmp;
mod srt;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use clap::Parser;
use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;

use crate::clip::{FlvClip, TsClip};
use crate::stats::{Lateness, Schedule, StreamReport};

#[derive(Parser, Debug)]
#[command(about = "Publish N live RTMP/SRT streams to weir and measure its live edge")]
struct Args {
    /// weir's HTTP address (playlists, /metrics).
    #[arg(long)]
    http: SocketAddr,
    #[arg(long)]
    rtmp: Option<SocketAddr>,
    #[arg(long)]
    srt: Option<SocketAddr>,
    #[arg(long, default_value_t = 0)]
    rtmp_streams: usize,
    #[arg(long, default_value_t = 0)]
    srt_streams: usize,
    /// The clip for RTMP publishers (H.264 + AAC FLV).
    #[arg(long)]
    flv: Option<PathBuf>,
    /// The same clip remuxed to MPEG-TS, for SRT publishers.
    #[arg(long)]
    ts: Option<PathBuf>,
    /// Length of the steady window, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// From the last stream's start to the window.
    #[arg(long, default_value_t = 8)]
    warmup_s: u64,
    /// Between two stream starts.
    #[arg(long, default_value_t = 20)]
    stagger_ms: u64,
    /// Playlist sweeps (every stream once) spread over the window.
    #[arg(long, default_value_t = 6)]
    probes: u32,
    /// Playlist requests in flight during a sweep.
    #[arg(long, default_value_t = 4)]
    probe_concurrency: usize,
    /// weir's process id, for CPU and memory.
    #[arg(long)]
    weir_pid: Option<String>,
    /// `getconf CLK_TCK`.
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// The rendition whose live edge is measured (`src` when passing through; a rung's
    /// name, e.g. `1080p`, when weir transcodes).
    #[arg(long, default_value = "src")]
    rendition: String,
    /// Renditions each stream publishes (the rungs when transcoding), for the expected part
    /// count.
    #[arg(long, default_value_t = 1)]
    renditions: u32,
    /// weir's part target; a part is on time while the edge lag is within
    /// part + frame + slack.
    #[arg(long, default_value_t = 500)]
    part_ms: u64,
    #[arg(long, default_value_t = 33.4)]
    frame_ms: f64,
    #[arg(long, default_value_t = 100)]
    slack_ms: u64,
    /// Tokio worker threads of the load tool.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    // `weir-loadgen fanout …`: the blocking fan-out bench (fanout.rs).
    if std::env::args().nth(1).as_deref() == Some("fanout") {
        return fanout::main(std::env::args().skip(1));
    }
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?
        .block_on(run(args))
}

/// One stream's playlist at one sweep: `None` lag when it was not a 200 with a live edge.
struct Sample {
    stream: usize,
    lag_ms: Option<f64>,
    gaps: usize,
}

/// Counters and CPU at one instant.
struct Snapshot {
    at: Instant,
    weir_ticks: Option<u64>,
    self_ticks: u64,
    machine: (u64, u64),
    metrics: String,
}

async fn snapshot(args: &Args) -> anyhow::Result<Snapshot> {
    let metrics = match probe::get(args.http, "/metrics").await {
        Ok((200, body)) => String::from_utf8_lossy(&body).into_owned(),
        Ok((s, _)) => anyhow::bail!("/metrics answered {s}"),
        Err(e) => return Err(e.context("/metrics")),
    };
    Ok(Snapshot {
        at: Instant::now(),
        weir_ticks: args.weir_pid.as_deref().map(probe::cpu_ticks).transpose()?,
        self_ticks: probe::cpu_ticks("self")?,
        machine: probe::machine_ticks()?,
        metrics,
    })
}

async fn sweep(args: &Args, keys: &[String]) -> Vec<Sample> {
    let http = args.http;
    futures_util::stream::iter(keys.iter().enumerate())
        .map(|(stream, key)| async move {
            let path = format!("/live/{key}/{}/index.m3u8", args.rendition);
            let edge = match probe::get(http, &path).await {
                Ok((200, body)) => probe::live_edge(&String::from_utf8_lossy(&body)).ok(),
                _ => None,
            };
            let now = probe::now_unix_ms();
            Sample {
                stream,
                lag_ms: edge.map(|e| now - e.end_unix_ms),
                gaps: edge.map_or(0, |e| e.gaps),
            }
        })
        .buffer_unordered(args.probe_concurrency.max(1))
        .collect()
        .await
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn run(args: Args) -> anyhow::Result<()> {
    let total = args.rtmp_streams + args.srt_streams;
    ensure!(total > 0, "no streams to publish");
    let ramp = Duration::from_millis(args.stagger_ms * (total as u64 - 1));
    let warmup = Duration::from_secs(args.warmup_s);
    let window = Duration::from_secs(args.seconds);
    let tail = Duration::from_secs(1);
    let needed = ramp + warmup + window + tail;

    let flv = match args.rtmp_streams {
        0 => None,
        _ => {
            let path = args.flv.as_deref().context("--flv is needed for RTMP")?;
            let clip = FlvClip::load(path)?;
            ensure!(
                clip.duration() >= needed,
                "{} lasts {:?}, the run needs {needed:?}",
                path.display(),
                clip.duration()
            );
            Some(Arc::new(clip))
        }
    };
    let ts = match args.srt_streams {
        0 => None,
        _ => {
            let path = args.ts.as_deref().context("--ts is needed for SRT")?;
            let clip = TsClip::load(path)?;
            ensure!(
                clip.duration() >= needed,
                "{} lasts {:?}, the run needs {needed:?}",
                path.display(),
                clip.duration()
            );
            Some(Arc::new(clip))
        }
    };

    let start = Instant::now();
    let sched = Schedule {
        window_start: start + ramp + warmup,
        window_end: start + ramp + warmup + window,
        stop: start + ramp + warmup + window + tail,
    };
    // Alternate the protocols so both ramp up together.
    let mut keys = Vec::with_capacity(total);
    let mut tasks = Vec::with_capacity(total);
    for i in 0..args.rtmp_streams.max(args.srt_streams) {
        if i < args.rtmp_streams {
            if let (Some(addr), Some(clip)) = (args.rtmp, &flv) {
                let key = format!("lg-rtmp-{i}");
                let at = start + Duration::from_millis(args.stagger_ms * keys.len() as u64);
                keys.push(key.clone());
                let clip = Arc::clone(clip);
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    rtmp::run(addr, key, clip, sched).await
                }));
            } else {
                anyhow::bail!("--rtmp is needed for RTMP streams");
            }
        }
        if i < args.srt_streams {
            if let (Some(addr), Some(clip)) = (args.srt, &ts) {
                let key = format!("lg-srt-{i}");
                let at = start + Duration::from_millis(args.stagger_ms * keys.len() as u64);
                keys.push(key.clone());
                let clip = Arc::clone(clip);
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    srt::run(addr, key, clip, sched).await
                }));
            } else {
                anyhow::bail!("--srt is needed for SRT streams");
            }
        }
    }
    eprintln!(
        "loadgen: {} rtmp + {} srt streams, ramp {ramp:?}, warm-up {warmup:?}, window {window:?}",
        args.rtmp_streams, args.srt_streams
    );

    tokio::time::sleep_until(sched.window_start).await;
    let before = snapshot(&args).await?;
    let mut samples: Vec<Vec<Sample>> = Vec::new();
    let probes = args.probes.max(1);
    for k in 0..probes {
        let at = sched.window_start + window.mul_f64((f64::from(k) + 0.5) / f64::from(probes));
        tokio::time::sleep_until(at).await;
        let t = Instant::now();
        let sweep = sweep(&args, &keys).await;
        let lags: Vec<f64> = sweep.iter().filter_map(|s| s.lag_ms).collect();
        eprintln!(
            "loadgen: sweep {k}: {}/{total} live, max edge lag {:.0} ms, took {:?}",
            lags.len(),
            lags.iter().copied().fold(f64::NAN, f64::max),
            t.elapsed()
        );
        samples.push(sweep);
    }
    tokio::time::sleep_until(sched.window_end).await;
    let after = snapshot(&args).await?;
    let memory = args
        .weir_pid
        .as_deref()
        .map(probe::memory_kib)
        .transpose()?;

    let mut reports: Vec<StreamReport> = Vec::with_capacity(total);
    for t in tasks {
        reports.push(t.await.context("publisher task panicked")?);
    }

    let threshold = args.part_ms as f64 + args.frame_ms + args.slack_ms as f64;
    let mut lags: Vec<f64> = samples.iter().flatten().filter_map(|s| s.lag_ms).collect();
    lags.sort_by(f64::total_cmp);
    let missing = samples
        .iter()
        .flatten()
        .filter(|s| s.lag_ms.is_none())
        .count();
    let is_rtmp: Vec<bool> = keys.iter().map(|k| k.starts_with("lg-rtmp")).collect();
    let lag_range = |rtmp: bool| {
        let lags = samples
            .iter()
            .flatten()
            .filter(|s| is_rtmp[s.stream] == rtmp)
            .filter_map(|s| s.lag_ms);
        (
            lags.clone().fold(f64::NAN, f64::min),
            lags.fold(f64::NAN, f64::max),
        )
    };
    let mut behind = vec![false; total];
    let mut live_always = vec![true; total];
    for s in samples.iter().flatten() {
        match s.lag_ms {
            Some(l) if l > threshold => behind[s.stream] = true,
            Some(_) => {}
            None => live_always[s.stream] = false,
        }
    }
    let playlist_gaps = samples.iter().flatten().map(|s| s.gaps).max().unwrap_or(0);

    let secs = (after.at - before.at).as_secs_f64();
    let tck = args.clk_tck as f64;
    let pct = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / tck / secs * 100.0;
    let weir_cpu = match (before.weir_ticks, after.weir_ticks) {
        (Some(a), Some(b)) => Some(pct(a, b)),
        _ => None,
    };
    let self_cpu = pct(before.self_ticks, after.self_ticks);
    let machine_busy = {
        let (b0, t0) = before.machine;
        let (b1, t1) = after.machine;
        (b1 - b0) as f64 / ((t1 - t0).max(1)) as f64 * 100.0
    };
    let delta = |name: &str| -> Option<f64> {
        Some(probe::metric(&after.metrics, name)? - probe::metric(&before.metrics, name)?)
    };
    let parts = delta("weir_parts_published_total").unwrap_or(f64::NAN);
    let parts_expected =
        total as f64 * f64::from(args.renditions) * secs * 1000.0 / args.part_ms as f64;
    let gap_parts = delta("weir_gap_parts_published_total").unwrap_or(f64::NAN);

    let mut late = Lateness::default();
    for r in &reports {
        late.merge(&r.late);
    }
    let connected = reports.iter().filter(|r| r.connected).count();
    let errors: Vec<String> = reports
        .iter()
        .filter_map(|r| r.error.as_ref().map(|e| format!("{}: {e}", r.key)))
        .collect();
    let clip_ended = reports.iter().filter(|r| r.clip_ended).count();
    let bytes: u64 = reports.iter().map(|r| r.bytes_sent).sum();
    let streams_behind = behind.iter().filter(|b| **b).count();
    let behind_rtmp = behind
        .iter()
        .zip(&is_rtmp)
        .filter(|(b, r)| **b && **r)
        .count();
    let sending: f64 = reports.iter().map(|r| r.sending.as_secs_f64()).sum();
    let live_all = live_always.iter().filter(|b| **b).count();

    let on_time = connected == total
        && errors.is_empty()
        && clip_ended == 0
        && missing == 0
        && streams_behind == 0
        && gap_parts == 0.0
        && parts >= 0.98 * parts_expected;

    let out = json!({
        "streams": { "rtmp": args.rtmp_streams, "srt": args.srt_streams, "total": total },
        "on_time": on_time,
        "window_s": secs,
        "threshold_ms": threshold,
        "connected": connected,
        "errors": errors.len(),
        "first_errors": errors.iter().take(5).collect::<Vec<_>>(),
        "clip_ended": clip_ended,
        "edge_lag_ms": {
            "samples": lags.len(),
            "p50": quantile(&lags, 0.50),
            "p99": quantile(&lags, 0.99),
            "max": lags.last().copied().unwrap_or(f64::NAN),
            "min": lags.first().copied().unwrap_or(f64::NAN),
            "rtmp_min_max": lag_range(true),
            "srt_min_max": lag_range(false),
        },
        "playlists_missing": missing,
        "streams_behind": streams_behind,
        "streams_behind_rtmp": behind_rtmp,
        "streams_behind_srt": streams_behind - behind_rtmp,
        "streams_live_every_sweep": live_all,
        "playlist_gap_entries_max": playlist_gaps,
        "weir": {
            "cpu_pct": weir_cpu,
            "cpu_pct_per_stream": weir_cpu.map(|c| c / total as f64),
            "rss_mib": memory.map(|m| m.0 as f64 / 1024.0),
            "peak_rss_mib": memory.map(|m| m.1 as f64 / 1024.0),
            "parts_published": parts,
            "parts_expected": parts_expected,
            "gap_parts": gap_parts,
            "samples_rejected": delta("weir_samples_rejected_total"),
            "contribution_losses": delta("weir_contribution_losses_total"),
            "streams_active": probe::metric(&after.metrics, "weir_streams_active"),
        },
        "loadgen": {
            "cpu_pct": self_cpu,
            "mbit_s_per_stream": bytes as f64 * 8.0 / 1e6 / sending.max(1e-9),
            "mbit_s_total": bytes as f64 * 8.0 / 1e6 / sending.max(1e-9) * total as f64,
            "send_late_ms": { "p99": late.quantile_ms(0.99), "max": late.max.as_secs_f64() * 1000.0 },
        },
        "machine": { "busy_pct": machine_busy, "cores": std::thread::available_parallelism().map_or(0, |n| n.get()) },
    });
    println!("{out}");
    Ok(())
}
