//! The real thing: an x264 + AAC capture (tests/data/testsrc2-4s.flv) packaged, then decoded
//! by ffmpeg as one fragmented MP4 and as an HLS playlist.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use weir_packager::{Output, Packager, Settings};

use crate::flv;

pub const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/testsrc2-4s.flv");
const VIDEO_FRAMES: usize = 120;

pub struct Packaged {
    pub init: Vec<u8>,
    /// Part bodies by part sequence number.
    pub parts: BTreeMap<u64, Vec<u8>>,
    /// (msn, part seqs) of every completed segment.
    pub segments: Vec<(u64, std::ops::Range<u64>)>,
    pub playlist: String,
    pub audio_samples: usize,
    pub video_samples: usize,
}

pub fn package_capture(settings: Settings) -> Packaged {
    let data = std::fs::read(CAPTURE).unwrap();
    let demuxed = flv::demux(&data, 320, 240);
    let mut p = Packager::new(settings, demuxed.tracks, 0, 0).unwrap();
    let mut out = Packaged {
        init: p.init_segment().to_vec(),
        parts: BTreeMap::new(),
        segments: Vec::new(),
        playlist: String::new(),
        // Audio that plays before the first keyframe is dropped (ffmpeg starts the video at
        // 21 ms, after the first AAC frame).
        audio_samples: {
            let key = demuxed.samples.iter().find(|s| s.track == 0 && s.keyframe);
            let key_ms = key.map_or(0, |s| s.dts / 90);
            demuxed
                .samples
                .iter()
                .filter(|s| s.track == 1 && s.dts / 48 >= key_ms)
                .count()
        },
        video_samples: demuxed.samples.iter().filter(|s| s.track == 0).count(),
    };
    let collect = |p: &mut Packager, out: &mut Packaged| {
        while let Some(o) = p.poll_output() {
            match o {
                Output::PartStarted { seq, .. } => {
                    assert!(out.parts.insert(seq, Vec::new()).is_none());
                }
                Output::Chunk { seq, bytes } => {
                    out.parts.get_mut(&seq).unwrap().extend_from_slice(&bytes)
                }
                Output::SegmentCompleted { msn, parts, .. } => out.segments.push((msn, parts)),
                _ => {}
            }
        }
    };
    for (i, sample) in demuxed.samples.into_iter().enumerate() {
        p.push(super::T0 + i as u64, sample).unwrap();
        collect(&mut p, &mut out);
    }
    p.finish();
    collect(&mut p, &mut out);
    out.playlist = p.media_playlist().render(false);
    out
}

fn have_ffmpeg() -> bool {
    let ok = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if ok("ffmpeg") && ok("ffprobe") {
        true
    } else {
        eprintln!("skipping: ffmpeg/ffprobe not found on PATH");
        false
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-packager-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a tool, asserting it succeeds and says nothing on stderr (`-v error`).
fn run(tool: &str, args: &[&str], dir: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{tool} {args:?} in {}: {}\n{stderr}",
        dir.display(),
        out.status
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write_files(dir: &Path, p: &Packaged) {
    std::fs::write(dir.join("init0.mp4"), &p.init).unwrap();
    let mut all = p.init.clone();
    for (seq, body) in &p.parts {
        std::fs::write(dir.join(format!("part{seq}.m4s")), body).unwrap();
        all.extend_from_slice(body);
    }
    for (msn, parts) in &p.segments {
        let body: Vec<u8> = parts.clone().flat_map(|s| p.parts[&s].clone()).collect();
        std::fs::write(dir.join(format!("seg{msn}.m4s")), body).unwrap();
    }
    std::fs::write(dir.join("all.mp4"), all).unwrap();
    std::fs::write(dir.join("index.m3u8"), &p.playlist).unwrap();
}

fn count_frames(dir: &Path, input: &str, stream: &str) -> usize {
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            stream,
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            input,
        ],
        dir,
    );
    // An HLS input lists the stream once per program as well: take the first.
    out.lines()
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap()
}

fn check_decodes(name: &str, settings: Settings) {
    if !have_ffmpeg() {
        return;
    }
    let packaged = package_capture(settings);
    assert_eq!(packaged.video_samples, VIDEO_FRAMES);
    let dir = temp_dir(name);
    write_files(&dir, &packaged);

    // The init segment alone, the whole stream as one file, and the HLS playlist.
    run("ffprobe", &["-v", "error", "init0.mp4"], &dir);
    run(
        "ffmpeg",
        &["-v", "error", "-i", "all.mp4", "-f", "null", "-"],
        &dir,
    );
    run(
        "ffmpeg",
        &["-v", "error", "-i", "index.m3u8", "-f", "null", "-"],
        &dir,
    );

    assert_eq!(count_frames(&dir, "all.mp4", "v:0"), VIDEO_FRAMES);
    assert_eq!(count_frames(&dir, "all.mp4", "a:0"), packaged.audio_samples);
    assert_eq!(count_frames(&dir, "index.m3u8", "v:0"), VIDEO_FRAMES);

    // Video timestamps: increasing, one frame apart (FLV rounds to ms: 2970–3060 at 90 kHz).
    let pts = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts",
            "-of",
            "csv=p=0",
            "all.mp4",
        ],
        &dir,
    );
    let dts: Vec<i64> = pts
        .lines()
        .map(|l| l.split(',').nth(1).unwrap().trim().parse().unwrap())
        .collect();
    assert_eq!(dts.len(), VIDEO_FRAMES);
    for pair in dts.windows(2) {
        let step = pair[1] - pair[0];
        assert!(
            (2900..=3100).contains(&step),
            "video dts step {step}: {pair:?}"
        );
    }
    // Audio: gapless, 1024 per frame.
    let audio = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "a:0",
            "-show_entries",
            "packet=dts",
            "-of",
            "csv=p=0",
            "all.mp4",
        ],
        &dir,
    );
    let dts: Vec<i64> = audio.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert!(dts.windows(2).all(|w| w[1] - w[0] == 1024), "{dts:?}");

    // Every complete segment also decodes on its own after the init segment.
    for (msn, _) in &packaged.segments {
        let mut body = packaged.init.clone();
        body.extend(std::fs::read(dir.join(format!("seg{msn}.m4s"))).unwrap());
        let file = format!("alone{msn}.mp4");
        std::fs::write(dir.join(&file), body).unwrap();
        run(
            "ffmpeg",
            &["-v", "error", "-i", &file, "-f", "null", "-"],
            &dir,
        );
    }
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn capture_decodes_2s_500ms() {
    check_decodes("2s", Settings::default());
}

#[test]
fn capture_decodes_1s_200ms() {
    check_decodes("1s", crate::settings(1000, 200, 30));
}

#[test]
fn capture_cuts_where_expected() {
    let p = package_capture(Settings::default());
    // GOP of 30 frames = 1 s: two 2 s segments of four parts each.
    assert_eq!(p.segments, vec![(0, 0..4), (1, 4..8)]);
    assert!(p.playlist.contains("#EXT-X-ENDLIST"));
    assert_eq!(
        p.playlist.matches("#EXTINF:2.00").count(),
        2,
        "{}",
        p.playlist
    );
    let p = package_capture(crate::settings(1000, 200, 30));
    assert_eq!(p.segments.len(), 4);
    assert_eq!(p.segments[0], (0, 0..5));
}

/// The capture, then ~3 s without a publisher, then the capture again as a new session.
struct Returned {
    inits: Vec<Vec<u8>>,
    /// Each init's generation (the sequence number of its first part): its URI's number.
    init_names: Vec<u64>,
    /// Real parts by sequence number.
    parts: BTreeMap<u64, Vec<u8>>,
    /// (msn, parts, gap, init generation) of every completed segment.
    segments: Vec<(u64, std::ops::Range<u64>, bool, usize)>,
    gap_parts: usize,
    playlist: String,
}

fn package_with_return() -> Returned {
    let data = std::fs::read(CAPTURE).unwrap();
    let demuxed = flv::demux(&data, 320, 240);
    let tracks = demuxed.tracks.clone();
    let mut p = Packager::new(Settings::default(), demuxed.tracks.clone(), 0, 0).unwrap();
    let mut out = Returned {
        inits: vec![p.init_segment().to_vec()],
        init_names: vec![p.init_generation()],
        parts: BTreeMap::new(),
        segments: Vec::new(),
        gap_parts: 0,
        playlist: String::new(),
    };
    let mut generation_of_segment = BTreeMap::new();
    let collect = |p: &mut Packager, out: &mut Returned, gens: &mut BTreeMap<u64, usize>| {
        while let Some(o) = p.poll_output() {
            match o {
                Output::PartStarted { seq, msn, gap, .. } => {
                    gens.entry(msn).or_insert(out.inits.len() - 1);
                    if gap {
                        out.gap_parts += 1;
                    } else {
                        assert!(out.parts.insert(seq, Vec::new()).is_none());
                    }
                }
                Output::Chunk { seq, bytes } => {
                    out.parts.get_mut(&seq).unwrap().extend_from_slice(&bytes)
                }
                Output::SegmentCompleted {
                    msn, parts, gap, ..
                } => out.segments.push((msn, parts, gap, gens[&msn])),
                Output::InitChanged { generation, bytes } => {
                    assert!(out.init_names.last().is_some_and(|g| *g < generation));
                    out.init_names.push(generation);
                    out.inits.push(bytes.to_vec());
                }
                _ => {}
            }
        }
    };
    let ms = |s: &weir_media::Sample| {
        let ts = if s.track == 0 { 90 } else { 48 };
        (s.dts / ts) as u64
    };
    for sample in demuxed.samples.clone() {
        p.push(super::T0 + ms(&sample), sample).unwrap();
        collect(&mut p, &mut out, &mut generation_of_segment);
    }
    // The publisher stalls after 4 s: the pipeline notices 1.5 s later and calls gap()
    // every part target until the new one arrives at 7.1 s.
    let mut now = super::T0 + 4000 + 1500;
    while now <= super::T0 + 7000 {
        p.gap(now);
        collect(&mut p, &mut out, &mut generation_of_segment);
        now += 500;
    }
    p.restart(tracks).unwrap();
    for sample in demuxed.samples {
        p.push(super::T0 + 7100 + ms(&sample), sample).unwrap();
        collect(&mut p, &mut out, &mut generation_of_segment);
    }
    p.finish();
    collect(&mut p, &mut out, &mut generation_of_segment);
    out.playlist = p.media_playlist().render(false);
    out
}

#[test]
fn capture_gap_and_return_decode_per_generation_and_as_hls() {
    let r = package_with_return();
    assert_eq!(r.inits.len(), 2);
    assert!(r.gap_parts >= 5, "{}", r.gap_parts);
    assert!(r.segments.iter().any(|s| s.2), "a gap segment");
    assert!(r.playlist.contains("#EXT-X-GAP\n"), "{}", r.playlist);
    let second = format!(
        "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init{}.mp4\"\n",
        r.init_names[1]
    );
    assert!(r.playlist.contains(&second), "{}", r.playlist);
    // Every gap segment is complete by now, and complete gap segments are listed whole,
    // without their GAP=YES parts (the in-progress case is the media_gap golden).
    assert!(!r.playlist.contains("GAP=YES"), "{}", r.playlist);
    if !have_ffmpeg() {
        return;
    }
    let dir = temp_dir("return");
    for (generation, init) in r.inits.iter().enumerate() {
        let name = r.init_names[generation];
        std::fs::write(dir.join(format!("init{name}.mp4")), init).unwrap();
        let mut all = init.clone();
        for (msn, parts, gap, g) in &r.segments {
            let body: Vec<u8> = parts
                .clone()
                .filter_map(|s| r.parts.get(&s).cloned())
                .flatten()
                .collect();
            if *gap {
                assert!(body.is_empty());
                continue;
            }
            std::fs::write(dir.join(format!("seg{msn}.m4s")), &body).unwrap();
            if *g == generation {
                all.extend(body);
            }
        }
        let file = format!("gen{generation}.mp4");
        std::fs::write(dir.join(&file), all).unwrap();
        run(
            "ffmpeg",
            &["-v", "error", "-i", &file, "-f", "null", "-"],
            &dir,
        );
        assert_eq!(count_frames(&dir, &file, "v:0"), VIDEO_FRAMES, "{file}");
    }
    std::fs::write(dir.join("index.m3u8"), &r.playlist).unwrap();
    // ffmpeg 5.1's HLS reader does not know EXT-X-GAP: it tries the gap segments, warns that
    // they cannot be opened (below `-v error`) and goes on across the discontinuity.
    run(
        "ffmpeg",
        &["-v", "error", "-i", "index.m3u8", "-f", "null", "-"],
        &dir,
    );
    assert_eq!(count_frames(&dir, "index.m3u8", "v:0"), 2 * VIDEO_FRAMES);
    // And without the gap segments at all, as a player that skips them reads it.
    let without_gaps = strip_gap_segments(&r.playlist);
    std::fs::write(dir.join("nogap.m3u8"), &without_gaps).unwrap();
    run(
        "ffmpeg",
        &["-v", "error", "-i", "nogap.m3u8", "-f", "null", "-"],
        &dir,
    );
    assert_eq!(count_frames(&dir, "nogap.m3u8", "v:0"), 2 * VIDEO_FRAMES);
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The playlist without its `EXT-X-GAP` segments (their date, parts, tags and URI).
fn strip_gap_segments(playlist: &str) -> String {
    let mut out = String::new();
    let mut pending = String::new();
    let mut gap = false;
    for line in playlist.lines() {
        if line.starts_with("#EXT-X-PROGRAM-DATE-TIME")
            || line.starts_with("#EXT-X-PART:")
            || line.starts_with("#EXT-X-DISCONTINUITY")
            || line.starts_with("#EXT-X-MAP")
            || line.starts_with("#EXTINF")
            || line == "#EXT-X-GAP"
        {
            gap |= line == "#EXT-X-GAP";
            pending.push_str(line);
            pending.push('\n');
        } else if !line.starts_with('#') && !pending.is_empty() {
            if !gap {
                out.push_str(&pending);
                out.push_str(line);
                out.push('\n');
            }
            pending.clear();
            gap = false;
        } else {
            out.push_str(&pending);
            pending.clear();
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(&pending);
    out
}
