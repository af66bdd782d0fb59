//! The encoder against real media: ffmpeg-made captures decoded by the real H.264/AAC
//! decoders, encoded by libx264 and FFmpeg's AAC encoder. Clock-driven, so each test runs a
//! few seconds of real time.
#![allow(clippy::unwrap_used)]
#![allow(clippy::disallowed_methods)] // tests and benches drive real peers on the real clock

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use weir_encoder::{spawn, EncoderEvent, EncoderMetrics, EncoderSettings, RungSpec, Source, Start};
use weir_media::{Codec, MediaEvent, Sample};

fn settings() -> EncoderSettings {
    EncoderSettings {
        ladder: vec![
            RungSpec::new("240p", 240, 400_000),
            RungSpec::new("180p", 180, 250_000),
            RungSpec::new("120p", 120, 150_000),
        ],
        preset: "ultrafast".to_owned(),
        gop: Duration::from_secs(1),
        hold: Duration::from_millis(300),
        slate_after: Duration::from_millis(900),
        ..EncoderSettings::default()
    }
}

#[derive(Default, Debug)]
struct RungOut {
    tracks: Vec<weir_media::Track>,
    video: Vec<Sample>,
    audio: Vec<Sample>,
}

async fn collect(
    rx: &mut mpsc::Receiver<EncoderEvent>,
    for_: Duration,
    ladder: &mut Vec<weir_encoder::Rung>,
    out: &mut BTreeMap<usize, RungOut>,
) {
    let end = tokio::time::Instant::now() + for_;
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, rx.recv()).await {
        match ev {
            EncoderEvent::Ladder(l) => *ladder = l,
            EncoderEvent::Media { rung, event } => {
                let r = out.entry(rung).or_default();
                match event {
                    MediaEvent::Tracks(t) => {
                        assert!(r.tracks.is_empty(), "tracks sent twice for rung {rung}");
                        r.tracks = t;
                    }
                    MediaEvent::Sample(s) => {
                        assert!(!r.tracks.is_empty(), "sample before tracks");
                        if s.track == 0 {
                            r.video.push(s);
                        } else {
                            r.audio.push(s);
                        }
                    }
                    MediaEvent::Cue(_) => {}
                }
            }
        }
    }
}

fn check_rungs(out: &BTreeMap<usize, RungOut>, sizes: &[(u16, u16)]) {
    assert_eq!(out.len(), sizes.len());
    let mut key_pts: Vec<Vec<i64>> = Vec::new();
    for (i, r) in out.values().enumerate() {
        let Codec::H264(c) = &r.tracks[0].codec else {
            panic!("video first")
        };
        assert_eq!((c.width, c.height), sizes[i]);
        assert!(matches!(&r.tracks[1].codec, Codec::Aac(a) if a.sample_rate == 48_000));
        assert!(r.video[0].keyframe, "a rung starts on an IDR");
        assert!(r.video.iter().all(|s| s.cts_offset == 0), "no B-frames");
        assert!(r.video.windows(2).all(|w| w[0].dts < w[1].dts));
        assert!(r.audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));
        key_pts.push(
            r.video
                .iter()
                .filter(|s| s.keyframe)
                .map(|s| s.dts)
                .collect(),
        );
    }
    // The same IDR timestamps on every rung (compare the common prefix: the channel may
    // stop mid-frame), one a second.
    let n = key_pts.iter().map(Vec::len).min().unwrap();
    assert!(n >= 3, "at least three IDRs: {key_pts:?}");
    for k in &key_pts {
        assert_eq!(k[..n], key_pts[0][..n], "IDRs aligned across rungs");
    }
    // The first GOP runs to the next point of the grid; the rest are a second long.
    for w in key_pts[0][1..n].windows(2) {
        assert!((w[1] - w[0] - 90_000).abs() <= 3_000, "GOP of 1 s: {w:?}");
    }
}

/// A capture from host/ingest/tests/data, demuxed.
fn capture(name: &str) -> Vec<MediaEvent> {
    let path = format!(
        "{}/../host/ingest/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    weir_ingest::flv::read_file(&std::fs::read(path).unwrap()).unwrap()
}

/// An encoder reading a contribution: its input, its output and its counters.
fn contribution_encoder(
    name: &str,
) -> (
    mpsc::Sender<MediaEvent>,
    mpsc::Receiver<EncoderEvent>,
    Arc<EncoderMetrics>,
) {
    let (in_tx, in_rx) = mpsc::channel(256);
    let (tx, rx) = mpsc::channel(4096);
    let metrics = Arc::new(EncoderMetrics::default());
    spawn(
        name,
        settings(),
        Source::Contribution(in_rx),
        Start::default(),
        tx,
        Arc::clone(&metrics),
    )
    .unwrap();
    (in_tx, rx, metrics)
}

/// Sends `events` at their timestamps' pace (video 90 kHz, audio 48 kHz), like a publisher.
async fn feed(events: Vec<MediaEvent>, in_tx: mpsc::Sender<MediaEvent>) {
    let start = tokio::time::Instant::now();
    for e in events {
        if let MediaEvent::Sample(s) = &e {
            let ts = if s.track == 0 { 90_000 } else { 48_000 };
            let at = Duration::from_secs_f64(s.dts.max(0) as f64 / f64::from(ts));
            tokio::time::sleep_until(start + at).await;
        }
        if in_tx.send(e).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_pattern_ladder_has_aligned_idrs_and_no_b_frames() {
    let (tx, mut rx) = mpsc::channel(1024);
    let metrics = Arc::new(EncoderMetrics::default());
    spawn(
        "pattern",
        settings(),
        Source::TestPattern {
            width: 426,
            height: 240,
        },
        Start::default(),
        tx,
        Arc::clone(&metrics),
    )
    .unwrap();
    let (mut ladder, mut out) = (Vec::new(), BTreeMap::new());
    collect(&mut rx, Duration::from_millis(3200), &mut ladder, &mut out).await;
    drop(rx);
    let names: Vec<_> = ladder.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["240p", "180p", "120p"]);
    check_rungs(&out, &[(426, 240), (318, 180), (212, 120)]);
    // About 30 frames a second on the wall clock.
    let frames = out[&0].video.len();
    assert!((75..=110).contains(&frames), "{frames} frames in 3.2 s");
    assert!(out[&0].audio.len() > 100);
    assert_eq!(metrics.x264.load(Ordering::Relaxed), 1);
}

/// A real capture with B-frames, fed in real time: decoded once, three rungs out. Then the
/// feed stops: held frames, then the slate, keep the cadence. Then a new publisher (new
/// tracks, its timestamps from zero again) and the live picture returns, with the output
/// clock still going forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contribution_is_decoded_held_slated_and_resumed() {
    let events = capture("testsrc-bframes.flv");
    let (in_tx, mut rx, metrics) = contribution_encoder("contribution");
    let (mut ladder, mut out) = (Vec::new(), BTreeMap::new());
    let feeder = tokio::spawn(feed(events.clone(), in_tx.clone()));
    collect(&mut rx, Duration::from_millis(3300), &mut ladder, &mut out).await;
    feeder.await.unwrap();
    // 320x240 source: never upscaled, so three rungs at or below it.
    check_rungs(&out, &[(320, 240), (240, 180), (160, 120)]);
    let live_frames = out[&0].video.len();
    assert!(
        live_frames >= 80,
        "{live_frames} frames from a 3 s, 30 fps capture"
    );
    assert!(metrics.frames_decoded.load(Ordering::Relaxed) >= 85);

    // Loss: 1.5 s without media.
    collect(&mut rx, Duration::from_millis(1500), &mut ladder, &mut out).await;
    let held = metrics.held_frames.load(Ordering::Relaxed);
    let slate = metrics.slate_frames.load(Ordering::Relaxed);
    assert!(held >= 10, "held {held}");
    assert!(slate >= 5, "slate {slate}");
    let during_loss = out[&0].video.len() - live_frames;
    assert!(
        during_loss >= 30,
        "the cadence goes on: {during_loss} frames in 1.5 s"
    );

    // A new publisher (the same capture again: timestamps restart at zero).
    let before = metrics.frames_decoded.load(Ordering::Relaxed);
    let feeder = tokio::spawn(feed(events, in_tx));
    collect(&mut rx, Duration::from_millis(2000), &mut ladder, &mut out).await;
    feeder.abort();
    assert!(metrics.frames_decoded.load(Ordering::Relaxed) > before + 30);
    let v = &out[&0].video;
    assert!(v.windows(2).all(|w| w[0].dts < w[1].dts), "still monotonic");
    // The frame spacing stays on the 30 fps cadence across loss and return (no jumps
    // beyond a few frames).
    let worst = v.windows(2).map(|w| w[1].dts - w[0].dts).max().unwrap();
    assert!(worst <= 4 * 3_000, "largest gap {worst} ticks");
    check_rungs(&out, &[(320, 240), (240, 180), (160, 120)]);
}

/// Corrupt video (garbage where H.264 should be, keyframe flags and all) is refused by the
/// decoder, counted, and survived: the output keeps its cadence on held frames and the
/// picture returns with the next good keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_video_is_counted_and_survived() {
    let events = capture("testsrc.flv");
    let (in_tx, mut rx, metrics) = contribution_encoder("corrupt");
    // Good for 1 s, then 1 s of garbage frames on the same clock, then good again.
    let mut seq = Vec::new();
    let mut junk = 0x1234_5678u32;
    for e in &events {
        match e {
            MediaEvent::Sample(s) if s.track == 0 && (30 * 3000..60 * 3000).contains(&s.dts) => {
                let mut bad = s.clone();
                let bytes: Vec<u8> = (0..600)
                    .map(|_| {
                        junk ^= junk << 13;
                        junk ^= junk >> 17;
                        junk ^= junk << 5;
                        junk as u8
                    })
                    .collect();
                let mut data = (bytes.len() as u32).to_be_bytes().to_vec();
                data.extend_from_slice(&bytes);
                bad.data = data.into();
                seq.push(MediaEvent::Sample(bad));
            }
            other => seq.push(other.clone()),
        }
    }
    let feeder = tokio::spawn(feed(seq, in_tx));
    let (mut ladder, mut out) = (Vec::new(), BTreeMap::new());
    collect(&mut rx, Duration::from_millis(3600), &mut ladder, &mut out).await;
    feeder.await.unwrap();
    assert!(
        metrics.decode_errors.load(Ordering::Relaxed) > 0,
        "garbage refused and counted"
    );
    let v = &out[&0].video;
    assert!(v.windows(2).all(|w| w[0].dts < w[1].dts));
    let worst = v.windows(2).map(|w| w[1].dts - w[0].dts).max().unwrap();
    assert!(
        worst <= 4 * 3_000,
        "cadence kept through the garbage: gap {worst}"
    );
    // 3 s of clip, 30 fps: the held frames filled the garbage second.
    assert!(v.len() >= 85, "{} frames", v.len());
    // Decoding resumed after the garbage (the clip's third second).
    assert!(metrics.frames_decoded.load(Ordering::Relaxed) >= 55);
}

/// One frame of an ffmpeg lavfi `source` as a PNG at `path`; false without an ffmpeg CLI.
fn write_png(path: &std::path::Path, source: &str) -> bool {
    std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", source])
        .args(["-frames:v", "1"])
        .arg(path)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_still_image_becomes_a_loopable_clip() {
    let dir = std::env::temp_dir().join(format!("weir-still-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Bigger than 1080p, 16:10: scaled down to fit, aspect kept.
    let png = dir.join("still.png");
    if !write_png(&png, "color=c=magenta:size=2400x1500") {
        eprintln!("SKIPPED: no ffmpeg CLI here");
        return;
    }
    let events = weir_encoder::still_clip(&png, &EncoderSettings::default(), 2).unwrap();
    let MediaEvent::Tracks(tracks) = &events[0] else {
        panic!(
            "tracks first: {:?}",
            events.first().map(std::mem::discriminant)
        )
    };
    let Codec::H264(config) = &tracks[0].codec else {
        panic!("video first: {tracks:?}")
    };
    assert_eq!((config.width, config.height), (1728, 1080));
    assert!(matches!(tracks[1].codec, Codec::Aac(_)));
    let samples: Vec<&Sample> = events[1..]
        .iter()
        .map(|e| match e {
            MediaEvent::Sample(s) => s,
            other => panic!("only samples after the tracks: {other:?}"),
        })
        .collect();
    let video: Vec<&&Sample> = samples.iter().filter(|s| s.track == 0).collect();
    assert_eq!(video.len(), 60);
    // An IDR every second, nothing else independent, frames 3000 ticks apart.
    let keys: Vec<i64> = video.iter().filter(|s| s.keyframe).map(|s| s.dts).collect();
    assert_eq!(keys, vec![0, 90_000]);
    assert!(video.windows(2).all(|w| w[1].dts - w[0].dts == 3000));
    // At least as much audio as video.
    let audio_end = samples
        .iter()
        .filter(|s| s.track == 1)
        .map(|s| s.dts + i64::from(s.duration.unwrap()))
        .max()
        .unwrap();
    assert!(audio_end >= 2 * 48_000, "{audio_end}");
    // In time order across the two timescales.
    let times: Vec<i64> = samples
        .iter()
        .map(|s| s.dts * 1_000_000 / i64::from(tracks[s.track].timescale))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let e = weir_encoder::still_clip(&junk, &EncoderSettings::default(), 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("junk.png"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn slate_images_are_checked() {
    let dir = std::env::temp_dir().join(format!("weir-slate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let png = dir.join("slate.png");
    if write_png(&png, "color=c=navy:size=320x180") {
        assert_eq!(weir_encoder::check_image(&png).unwrap(), (320, 180));
    } else {
        eprintln!("SKIPPED the PNG half: no ffmpeg CLI here");
    }
    let junk = dir.join("junk.png");
    std::fs::write(&junk, b"not an image").unwrap();
    let e = weir_encoder::check_image(&junk).unwrap_err().to_string();
    assert!(e.contains("junk.png"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
