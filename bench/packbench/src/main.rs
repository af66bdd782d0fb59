//! `weir-packbench`: the measuring side of `bench/packager.sh`.
//!
//! Reads an H.264/AAC MPEG-TS clip, demuxes it whole with weir's TS demuxer (the SRT ingest's;
//! timed apart and not counted against the packager), then packages every sample with
//! [`weir_packager::Packager`] into CMAF parts and segments on a virtual clock (each sample is
//! pushed at the wall-clock time its DTS says, as if it arrived live), rendering the media
//! playlist (and its delta-update form, as weir's stream driver does) after every completed
//! part. Only that loop is timed. Chunks are held for the parts of one 30 s window, then
//! dropped, as the origin's part store holds them (the stream driver hands them on by
//! reference), so their memory is not just reused hot from the allocator.
//!
//! The peer is ffmpeg's hls muxer remuxing the same file (`-c copy -f hls -hls_segment_type
//! fmp4 -hls_time 2`), timed as a child process (wall and CPU from /proc), and ffmpeg's own
//! demux + copy with `-f null`, so that ffmpeg's muxing cost alone is hls minus null.
//!
//! Throughput is media seconds per CPU second. Prints a human summary, the `RATIO` lines and a
//! Markdown section on stdout.

#![allow(clippy::disallowed_methods)] // a bench reads the real clock around what it measures

mod alloc;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use bytes::Bytes;
use clap::Parser;
use weir_media::{MediaEvent, Sample, Track, TrackKind};
use weir_packager::{Output, Packager, Settings};

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// 2026-11-25T16:00:00.000Z: where the virtual clock starts.
const T0_MS: u64 = 1_795_622_400_000;

#[derive(Parser, Debug)]
#[command(about = "weir's packager vs ffmpeg's hls muxer, remuxing one H.264/AAC MPEG-TS clip")]
struct Args {
    /// The clip (MPEG-TS, H.264 + AAC).
    #[arg(long)]
    input: PathBuf,
    /// Timed packaging runs (the median is reported).
    #[arg(long, default_value_t = 9)]
    reps: usize,
    /// Timed ffmpeg runs of each kind (the median is reported).
    #[arg(long, default_value_t = 3)]
    ffmpeg_reps: usize,
    #[arg(long, default_value = "ffmpeg")]
    ffmpeg: String,
    /// Scratch folder for ffmpeg's segments (emptied before each run); a tmpfs keeps disk
    /// writes out of the measurement.
    #[arg(long)]
    scratch: PathBuf,
    /// The command line to show in the Markdown section.
    #[arg(long, default_value = "bench/packager.sh")]
    command: String,
    /// Only the packaging runs, no ffmpeg and no report: for `perf record`.
    #[arg(long)]
    profile: bool,
    /// Label the Markdown section as a smoke run.
    #[arg(long)]
    smoke: bool,
}

/// What one packaging run produced and cost.
#[derive(Clone, Copy, Debug, Default)]
struct PackRun {
    cpu: Duration,
    wall: Duration,
    allocs: u64,
    alloc_bytes: u64,
    parts: u64,
    segments: u64,
    chunks: u64,
    media_bytes: u64,
    playlists: u64,
    playlist_bytes: u64,
    /// FNV-1a of the output, when asked for.
    digest: u64,
}

/// One timed child process.
#[derive(Clone, Copy, Debug, Default)]
struct ProcRun {
    cpu: Duration,
    wall: Duration,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.reps > 0 && args.ffmpeg_reps > 0,
        "--reps and --ffmpeg-reps must be > 0"
    );
    let data = std::fs::read(&args.input).with_context(|| format!("reading {:?}", args.input))?;

    // Demux, outside the measurement.
    let (cpu0, wall0) = (thread_cpu()?, Instant::now());
    let (events, stats) = weir_ingest::ts::read_all(&data);
    let demux = ProcRun {
        cpu: thread_cpu()? - cpu0,
        wall: wall0.elapsed(),
    };
    let mut tracks: Option<Vec<Track>> = None;
    let mut samples = Vec::with_capacity(events.len());
    for event in events {
        match event {
            MediaEvent::Tracks(t) if tracks.is_none() => tracks = Some(t),
            MediaEvent::Tracks(_) => bail!("the clip changes codec parameters mid-stream"),
            MediaEvent::Sample(s) => samples.push(s),
            MediaEvent::Cue(_) => {}
        }
    }
    let tracks = tracks.context("no tracks in the clip")?;
    ensure!(
        tracks.iter().any(|t| t.kind() == TrackKind::Video)
            && tracks.iter().any(|t| t.kind() == TrackKind::Audio),
        "the clip needs video and audio"
    );
    let media_s = media_seconds(&tracks, &samples)?;
    eprintln!(
        "demuxed {:.1} MB: {} samples ({} video, {} audio, {} dropped), {media_s:.2} s of media, \
         in {:.3} s CPU",
        data.len() as f64 / 1e6,
        samples.len(),
        stats.video_samples,
        stats.audio_samples,
        stats.dropped,
        demux.cpu.as_secs_f64(),
    );

    // One untimed run first: page in the samples, warm the allocator, and digest the output
    // (every chunk and playlist), so that a change to the packager can show it wrote the same.
    let digest = package(&tracks, samples.clone(), true)?.digest;
    eprintln!("output digest (FNV-1a of every chunk and playlist): {digest:016x}");
    let mut runs = Vec::with_capacity(args.reps);
    for _ in 0..args.reps {
        let input = samples.clone();
        runs.push(package(&tracks, input, false)?);
    }
    let weir = median_by(&runs, |r| r.cpu);
    ensure!(
        weir.parts > 0 && weir.segments > 0,
        "the packager made no parts"
    );
    eprintln!(
        "weir packager: {} parts, {} segments, {:.1} MB of chunks, {} playlists; median {:.3} s \
         CPU ({:.3} s wall) over {} runs; {:.1} allocations, {:.0} bytes allocated per part",
        weir.parts,
        weir.segments,
        weir.media_bytes as f64 / 1e6,
        weir.playlists,
        weir.cpu.as_secs_f64(),
        weir.wall.as_secs_f64(),
        runs.len(),
        weir.allocs as f64 / weir.parts as f64,
        weir.alloc_bytes as f64 / weir.parts as f64,
    );

    if args.profile {
        return Ok(());
    }

    // The peer, on the same file. ADTS to raw AAC (aac_adtstoasc) is part of remuxing TS to
    // MP4, as weir's demuxer does it; the null run does it too, so the difference is muxing.
    let input = args.input.to_string_lossy().into_owned();
    let hls_dir = args.scratch.join("hls");
    let playlist = hls_dir.join("index.m3u8").to_string_lossy().into_owned();
    let segment_pattern = hls_dir.join("seg%d.m4s").to_string_lossy().into_owned();
    let hls_args: Vec<&str> = vec![
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-i",
        &input,
        "-map",
        "0",
        "-c",
        "copy",
        "-bsf:a",
        "aac_adtstoasc",
        "-f",
        "hls",
        "-hls_segment_type",
        "fmp4",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        "vod",
        "-hls_fmp4_init_filename",
        "init.mp4",
        "-hls_segment_filename",
        &segment_pattern,
        &playlist,
    ];
    let null_args: Vec<&str> = vec![
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-y",
        "-i",
        &input,
        "-map",
        "0",
        "-c",
        "copy",
        "-bsf:a",
        "aac_adtstoasc",
        "-f",
        "null",
        "-",
    ];
    let mut hls = Vec::new();
    let mut null = Vec::new();
    let mut ff_segments = 0;
    let mut ff_bytes = 0;
    for _ in 0..args.ffmpeg_reps {
        let _ = std::fs::remove_dir_all(&hls_dir);
        std::fs::create_dir_all(&hls_dir)?;
        hls.push(run_child(&args.ffmpeg, &hls_args)?);
        (ff_segments, ff_bytes) = dir_summary(&hls_dir)?;
        null.push(run_child(&args.ffmpeg, &null_args)?);
    }
    let _ = std::fs::remove_dir_all(&hls_dir);
    let hls = median_by(&hls, |r| r.cpu);
    let null = median_by(&null, |r| r.cpu);
    ensure!(ff_segments > 0, "ffmpeg wrote no segments");
    // In a smoke run (a few seconds of media) both are mostly ffmpeg's start-up and the
    // difference is noise, possibly zero: the ratio then means nothing, and says so (inf).
    let mux_cpu = hls.cpu.saturating_sub(null.cpu);

    let tput = |cpu: Duration| media_s / cpu.as_secs_f64();
    let weir_tput = tput(weir.cpu);
    let ff_mux_tput = tput(mux_cpu);
    let ff_raw_tput = tput(hls.cpu);
    let e2e_tput = tput(weir.cpu + demux.cpu);
    let ratio = weir_tput / ff_mux_tput;
    let ratio_raw = weir_tput / ff_raw_tput;
    let ratio_e2e = e2e_tput / ff_raw_tput;
    let per_part = |x: u64| x as f64 / weir.parts as f64;

    println!(
        "weir packager: {:.0} media s per CPU s ({:.1} µs CPU per part), {:.1} allocations and \
         {:.0} bytes allocated per part",
        weir_tput,
        weir.cpu.as_secs_f64() * 1e6 / weir.parts as f64,
        per_part(weir.allocs),
        per_part(weir.alloc_bytes),
    );
    println!(
        "ffmpeg hls: {:.3} s CPU, -f null {:.3} s CPU, muxing alone {:.3} s ({ff_segments} files, \
         {:.1} MB)",
        hls.cpu.as_secs_f64(),
        null.cpu.as_secs_f64(),
        mux_cpu.as_secs_f64(),
        ff_bytes as f64 / 1e6,
    );
    println!("RATIO packager_vs_ffmpeg_hls {ratio:.2}");
    println!("RATIO packager_vs_ffmpeg_hls_raw {ratio_raw:.2}");
    println!("RATIO packager_with_demux_vs_ffmpeg_hls_raw {ratio_e2e:.2}");

    // The Markdown section.
    let secs = |d: Duration| format!("{:.3}", d.as_secs_f64());
    println!();
    println!(
        "## Packaging: weir's packager vs ffmpeg's hls muxer{}",
        if args.smoke { " (smoke run)" } else { "" }
    );
    println!();
    println!(
        "Remuxing {media_s:.0} s of H.264 1280x720 30 fps (2 s GOP, no B-frames, 2.5 Mbit/s) + \
         AAC 96 kbit/s from one MPEG-TS file ({:.1} MB, {} samples). weir: \
         `weir_packager::Packager` on a virtual clock, default settings (2 s segments, 0.5 s \
         parts, 30 s window), the media playlist rendered in full and as a delta update after \
         each part as weir's stream driver does, the chunks of the last 64 parts held in memory \
         as the origin holds them; the samples were demuxed beforehand by weir's \
         TS demuxer (shown, not counted in the headline). ffmpeg {}: `-c copy -bsf:a aac_adtstoasc -f hls \
         -hls_segment_type fmp4 -hls_time 2` (2 s fMP4 segments: this ffmpeg's hls muxer has \
         no LL-HLS parts) into a tmpfs, and `-c copy -f null` to measure its demux alone. \
         Medians of {} weir runs (thread CPU time) and {} ffmpeg runs of each kind (the process's user + system time).",
        data.len() as f64 / 1e6,
        samples.len(),
        ffmpeg_version(&args.ffmpeg),
        runs.len(),
        args.ffmpeg_reps,
    );
    println!();
    println!("| what | CPU s | wall s | media s per CPU s | output |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| weir packager (parts + segments + 2 playlists per part) | {} | {} | {:.0} | {} parts, \
         {} segments, {:.1} MB; {:.1} allocations, {:.0} bytes allocated per part |",
        secs(weir.cpu),
        secs(weir.wall),
        weir_tput,
        weir.parts,
        weir.segments,
        weir.media_bytes as f64 / 1e6,
        per_part(weir.allocs),
        per_part(weir.alloc_bytes),
    );
    println!(
        "| weir TS demux (not in the headline) | {} | {} | {:.0} | {} samples |",
        secs(demux.cpu),
        secs(demux.wall),
        tput(demux.cpu),
        samples.len(),
    );
    println!(
        "| ffmpeg hls muxer, raw (demux + mux) | {} | {} | {:.0} | {} files, {:.1} MB |",
        secs(hls.cpu),
        secs(hls.wall),
        ff_raw_tput,
        ff_segments,
        ff_bytes as f64 / 1e6,
    );
    println!(
        "| ffmpeg `-f null` (demux + copy) | {} | {} | {:.0} | |",
        secs(null.cpu),
        secs(null.wall),
        tput(null.cpu),
    );
    println!(
        "| ffmpeg hls muxing alone (raw − null) | {} | | {:.0} | |",
        secs(mux_cpu),
        ff_mux_tput,
    );
    println!();
    println!(
        "Headline `RATIO packager_vs_ffmpeg_hls` = {ratio:.2} (weir's packaging vs ffmpeg's \
         muxing alone, both without demux; target >= 3). Against ffmpeg's raw run: {ratio_raw:.2}; \
         weir's demux + packaging against ffmpeg's raw run: {ratio_e2e:.2}."
    );
    println!();
    println!("Command: `{}`", args.command);
    Ok(())
}

/// Packages `samples` into a fresh packager, draining its outputs as weir's stream driver
/// does, and renders the playlists after each completed part. Timed and counted.
fn package(tracks: &[Track], samples: Vec<Sample>, digest: bool) -> anyhow::Result<PackRun> {
    let timescales: Vec<u64> = tracks.iter().map(|t| u64::from(t.timescale)).collect();
    let mut run = PackRun {
        digest: if digest { FNV_OFFSET } else { 0 },
        ..PackRun::default()
    };
    // What the origin would hold: the latest rendered playlists (replaced at each part, as the
    // stream driver's snapshot is) and the chunks of the parts in the window, so that the
    // chunks' memory is not simply reused at once (ffmpeg's segments fill a tmpfs).
    let mut latest = Held::default();
    let (allocs0, bytes0) = alloc::counts();
    let (cpu0, wall0) = (thread_cpu()?, Instant::now());

    let mut packager = Packager::new(Settings::default(), tracks.to_vec(), 0, 0)?;
    for sample in samples {
        let ts = timescales[sample.track];
        let now = T0_MS + u64::try_from(sample.dts).unwrap_or(0) * 1000 / ts;
        packager.push(now, sample)?;
        drain(&mut packager, &mut run, &mut latest);
    }
    packager.finish();
    drain(&mut packager, &mut run, &mut latest);
    drop(packager);
    drop(latest);

    run.cpu = thread_cpu()? - cpu0;
    run.wall = wall0.elapsed();
    let (allocs1, bytes1) = alloc::counts();
    run.allocs = allocs1 - allocs0;
    run.alloc_bytes = bytes1 - bytes0;
    Ok(run)
}

/// The parts of a 30 s window of 0.5 s parts, and a few more.
const HELD_PARTS: u64 = 64;

#[derive(Default)]
struct Held {
    playlist: Bytes,
    skip: Option<Bytes>,
    chunks: std::collections::VecDeque<(u64, Bytes)>,
}

fn drain(packager: &mut Packager, run: &mut PackRun, latest: &mut Held) {
    let mut published_part = false;
    while let Some(out) = packager.poll_output() {
        match out {
            Output::Chunk { seq, bytes } => {
                run.chunks += 1;
                run.media_bytes += bytes.len() as u64;
                fnv(&mut run.digest, &bytes);
                latest.chunks.push_back((seq, bytes));
            }
            Output::PartCompleted {
                seq, gap: false, ..
            } => {
                while latest
                    .chunks
                    .front()
                    .is_some_and(|(s, _)| s + HELD_PARTS <= seq)
                {
                    latest.chunks.pop_front();
                }
                run.parts += 1;
                published_part = true;
            }
            Output::SegmentCompleted { gap: false, .. } => run.segments += 1,
            _ => {}
        }
    }
    if published_part {
        let playlist = packager.media_playlist();
        let full = render(&playlist, false);
        let skip = playlist.can_skip_until.map(|_| render(&playlist, true));
        run.playlists += 1 + u64::from(skip.is_some());
        fnv(&mut run.digest, &full);
        fnv(&mut run.digest, skip.as_deref().unwrap_or_default());
        run.playlist_bytes += full.len() as u64 + skip.as_ref().map_or(0, |s| s.len() as u64);
        latest.playlist = full;
        latest.skip = skip;
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Folds `bytes` into an FNV-1a digest; a digest of 0 means none was asked for.
fn fnv(digest: &mut u64, bytes: &[u8]) {
    if *digest == 0 {
        return;
    }
    for b in bytes {
        *digest = (*digest ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
}

/// As weir-stream's rendition driver renders a playlist.
fn render(playlist: &weir_packager::MediaPlaylist, skip: bool) -> Bytes {
    let mut out = Vec::with_capacity(4096);
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out, skip);
    Bytes::from(out)
}

/// The video track's span: last DTS minus first, plus one frame.
fn media_seconds(tracks: &[Track], samples: &[Sample]) -> anyhow::Result<f64> {
    let video = tracks
        .iter()
        .position(|t| t.kind() == TrackKind::Video)
        .context("no video track")?;
    let dts: Vec<i64> = samples
        .iter()
        .filter(|s| s.track == video)
        .map(|s| s.dts)
        .collect();
    let (Some(first), Some(last)) = (dts.first(), dts.last()) else {
        bail!("no video samples");
    };
    let frame = if dts.len() > 1 {
        (last - first) / (dts.len() as i64 - 1)
    } else {
        0
    };
    Ok((last - first + frame) as f64 / f64::from(tracks[video].timescale))
}

fn median_by<T: Copy, K: Ord>(runs: &[T], key: impl Fn(&T) -> K) -> T {
    let mut sorted = runs.to_vec();
    sorted.sort_by_key(|r| key(r));
    sorted[sorted.len() / 2]
}

/// CPU time of the calling thread, from /proc/thread-self/schedstat (nanoseconds on CPU).
fn thread_cpu() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

/// Runs `program args…` under bash's `time`, which reads the child's CPU time from
/// `wait4`'s rusage at microsecond resolution (/proc's cutime counts 10 ms ticks).
fn run_child(program: &str, args: &[&str]) -> anyhow::Result<ProcRun> {
    let wall0 = Instant::now();
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"TIMEFORMAT='CPUTIME %3U %3S'; time "$@""#)
        .arg("bash")
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    let wall = wall0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "{program} {args:?}: {}\n{stderr}",
        out.status
    );
    let cpu = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("CPUTIME "))
        .context("no CPU time from bash's time")?
        .split_whitespace()
        .map(|x| x.parse::<f64>())
        .sum::<Result<f64, _>>()?;
    Ok(ProcRun {
        cpu: Duration::from_secs_f64(cpu),
        wall,
    })
}

/// (files, bytes) of the media files ffmpeg wrote.
fn dir_summary(dir: &Path) -> anyhow::Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.path().extension().is_some_and(|e| e == "m4s") {
            files += 1;
            bytes += entry.metadata()?.len();
        }
    }
    Ok((files, bytes))
}

fn ffmpeg_version(ffmpeg: &str) -> String {
    Command::new(ffmpeg)
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(2).map(str::to_owned))
        .unwrap_or_else(|| "(unknown version)".to_owned())
}
