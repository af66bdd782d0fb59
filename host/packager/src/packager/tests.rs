//! Helpers shared by the packager's unit tests (`cutter`, `session`, `window` and `assembly`
//! have their own `tests.rs`), and the tests of what the façade itself does: numbering from
//! the wall clock, and cue placement.

use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use mp4_atom::{Any, Decode};
use weir_media::{CueEvent, Sample};

use super::*;
use crate::cmaf::tests::{audio_track, video_track};

pub(super) const T0: u64 = 1_795_622_400_000;

pub(super) fn settings(segment_ms: u64, part_ms: u64) -> Settings {
    Settings {
        segment_target: Duration::from_millis(segment_ms),
        part_target: Duration::from_millis(part_ms),
        window: Duration::from_secs(30),
    }
}

pub(super) fn video(i: i64, gop: i64) -> Sample {
    Sample {
        track: 0,
        dts: i * 3000,
        cts_offset: 0,
        keyframe: i % gop == 0,
        duration: None,
        data: Bytes::from(vec![0xaa; 100]),
    }
}

pub(super) fn audio(track: usize, i: i64) -> Sample {
    Sample {
        track,
        dts: i * 1024,
        cts_offset: 0,
        keyframe: true,
        duration: Some(1024),
        data: Bytes::from(vec![0x55; 10]),
    }
}

/// Pushes `frames` of 30 fps video (keyframe every `gop`) and the AAC frames that fall
/// between them, interleaved by time as a muxer would.
pub(super) fn feed(p: &mut Packager, frames: i64, gop: i64, with_audio: bool) {
    let mut a = 0;
    for i in 0..frames {
        let t_ms = i * 1000 / 30;
        while with_audio && a * 1024 * 1000 / 48_000 < t_ms {
            p.push(T0 + (a * 1024 * 1000 / 48_000) as u64, audio(1, a))
                .unwrap();
            a += 1;
        }
        p.push(T0 + t_ms as u64, video(i, gop)).unwrap();
    }
}

pub(super) fn drain(p: &mut Packager) -> Vec<Output> {
    std::iter::from_fn(|| p.poll_output()).collect()
}

pub(super) fn completed_segments(out: &[Output]) -> Vec<(u64, Duration, Range<u64>)> {
    out.iter()
        .filter_map(|o| match o {
            Output::SegmentCompleted {
                msn,
                duration,
                parts,
                ..
            } => Some((*msn, *duration, parts.clone())),
            _ => None,
        })
        .collect()
}

/// Every chunk decoded: (part seq, track id, tfdt, sample count).
pub(super) fn chunk_runs(out: &[Output]) -> Vec<(u64, u32, u64, usize)> {
    let mut runs = Vec::new();
    for o in out {
        let Output::Chunk { seq, bytes } = o else {
            continue;
        };
        let mut buf = bytes.as_ref();
        while !buf.is_empty() {
            if let Any::Moof(moof) = Any::decode(&mut buf).unwrap() {
                for traf in moof.traf {
                    runs.push((
                        *seq,
                        traf.tfhd.track_id,
                        traf.tfdt.unwrap().base_media_decode_time,
                        traf.trun[0].samples.len(),
                    ));
                }
            }
        }
    }
    runs
}

/// Pushes `frames` of 30 fps video (keyframe every `gop`) with AAC interleaved, for a
/// session whose timestamps start at `dts0_ms` and whose first frame arrives at `wall0`.
pub(super) fn feed_session(p: &mut Packager, frames: i64, gop: i64, dts0_ms: i64, wall0: u64) {
    let mut a = 0;
    for i in 0..frames {
        let t_ms = i * 1000 / 30;
        while a * 1024 * 1000 / 48_000 < t_ms {
            let mut s = audio(1, a);
            s.dts += dts0_ms * 48;
            p.push(wall0 + (a * 1024 * 1000 / 48_000) as u64, s)
                .unwrap();
            a += 1;
        }
        let mut s = video(i, gop);
        s.dts += dts0_ms * 90;
        p.push(wall0 + t_ms as u64, s).unwrap();
    }
}

/// `feed_session` continued from frame `from`.
pub(super) fn feed_session_more(
    p: &mut Packager,
    from: i64,
    to: i64,
    gop: i64,
    dts0_ms: i64,
    wall0: u64,
) {
    let mut a = (0..).take_while(|a| a * 1024 * 30 < from * 48_000).count() as i64;
    for i in from..to {
        let t_ms = i * 1000 / 30;
        while a * 1024 * 1000 / 48_000 < t_ms {
            let mut s = audio(1, a);
            s.dts += dts0_ms * 48;
            p.push(wall0 + (a * 1024 * 1000 / 48_000) as u64, s)
                .unwrap();
            a += 1;
        }
        let mut s = video(i, gop);
        s.dts += dts0_ms * 90;
        p.push(wall0 + t_ms as u64, s).unwrap();
    }
}

fn splice(id: u32, out: bool, pts_ms: Option<i64>) -> CueEvent {
    CueEvent {
        id,
        kind: weir_media::CueKind::SpliceInsert,
        out_of_network: out,
        pts: pts_ms.map(|ms| ms * 90),
        duration: out.then_some(Duration::from_secs(30)),
        segmentation_type: None,
        section: Bytes::from_static(&[0xfc, 0x30, 0x11]),
    }
}

#[test]
fn wall_clock_numbers_never_go_backwards() {
    for (segment_ms, part_ms) in [(2000, 500), (1000, 200), (1500, 333), (6000, 1000)] {
        let s = settings(segment_ms, part_ms);
        for start in [T0, T0 + 1, T0 + 777, T0 + segment_ms - 1] {
            let (msn, seq) = wall_clock_start(start, &s);
            let mut p = Packager::new(s.clone(), vec![video_track()], msn, seq).unwrap();
            // Keyframes as often as possible (every frame at 10 fps): segments and parts
            // come out as short as the cutter makes them.
            let frames = 10 * 60;
            for i in 0..frames {
                let sample = Sample {
                    track: 0,
                    dts: i * 9000,
                    cts_offset: 0,
                    keyframe: true,
                    duration: None,
                    data: Bytes::from_static(&[0; 4]),
                };
                let now = start + i as u64 * 100;
                p.push(now, sample).unwrap();
                // Weir restarts now: the new numbers are beyond everything used so far.
                let (msn2, seq2) = wall_clock_start(now, &s);
                assert!(msn2 >= p.next_msn(), "{segment_ms}/{part_ms} at {i}");
                assert!(seq2 >= p.next_part_seq(), "{segment_ms}/{part_ms} at {i}");
            }
        }
    }
    // Pure arithmetic: segments of exactly half the target, back to back.
    let s = Settings::default();
    let (msn0, _) = wall_clock_start(T0, &s);
    for n in 0..10_000u64 {
        let (msn, _) = wall_clock_start(T0 + n * 1000, &s);
        assert!(msn >= msn0 + n);
    }
}

#[test]
fn cues_are_dated_placed_and_paired() {
    let s = Settings {
        segment_target: Duration::from_secs(2),
        part_target: Duration::from_millis(500),
        window: Duration::from_secs(6),
    };
    let mut p = Packager::new(s, vec![video_track(), audio_track()], 0, 0).unwrap();
    // Timed before the first keyframe: waits for the session's clock.
    p.push_cue(T0, splice(1, true, Some(3000)));
    feed(&mut p, 30 * 5 + 1, 30, true);
    // Immediately: the next frame's date (frame 151 at 5033 ms).
    p.push_cue(T0 + 9999, splice(2, false, None));
    p.push_cue(T0 + 5000, splice(1, false, Some(4500)));
    p.push_cue(T0 + 5000, splice(1, false, Some(4500)));
    let mut null = splice(0, false, None);
    null.kind = weir_media::CueKind::SpliceNull;
    null.section = Bytes::new();
    null.pts = Some(9000 * 90);
    p.push_cue(T0 + 5000, null);

    let cues = p.cues();
    let dated: Vec<(u32, bool, u64, Option<u64>)> = cues
        .iter()
        .map(|c| {
            (
                c.cue.id,
                c.cue.out_of_network,
                c.start_ms - T0,
                c.end_ms.map(|e| e - T0),
            )
        })
        .collect();
    assert_eq!(
        dated,
        vec![
            (1, true, 3000, Some(4500)),
            (1, false, 4500, None),
            (2, false, 5033, None),
            (0, false, 9000, None),
        ]
    );
    let pl = p.media_playlist();
    assert_eq!(pl.dateranges.len(), 4);
    let text = pl.render(false);
    let out = "#EXT-X-DATERANGE:ID=\"splice-1\",START-DATE=\"2026-11-25T16:00:03.000Z\",PLANNED-DURATION=30.000,SCTE35-OUT=0xFC3011\n";
    let back = "#EXT-X-DATERANGE:ID=\"splice-1\",START-DATE=\"2026-11-25T16:00:03.000Z\",DURATION=1.500,SCTE35-IN=0xFC3011\n";
    let lone = "#EXT-X-DATERANGE:ID=\"splice-2\",START-DATE=\"2026-11-25T16:00:05.033Z\",SCTE35-IN=0xFC3011\n";
    let null = "#EXT-X-DATERANGE:ID=\"splice-0\",START-DATE=\"2026-11-25T16:00:09.000Z\"\n";
    // The OUT after the date of the segment that holds 3 s; the IN (4.5 s), the live-edge
    // cue and the future one in the segment in progress (from 4 s), before its parts. That
    // segment's date follows from the one before, and is not written: hls.js throws on a
    // date range inside a parts-only segment with its own PROGRAM-DATE-TIME.
    let expect = [
        format!("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:02.000Z\n{out}"),
        format!(".m4s\n{back}{lone}{null}#EXT-X-PART"),
    ];
    for e in &expect {
        assert!(text.contains(e.as_str()), "{e}\nnot in\n{text}");
    }
    assert!(
        !text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:04.000Z"),
        "{text}"
    );

    // Ten more seconds: the segments up to 6 s leave, and their cues with them.
    feed_session_more(&mut p, 30 * 5 + 1, 30 * 15 + 1, 30, 0, T0);
    let pl = p.media_playlist();
    assert!(pl.segments[0].program_date_time_ms > T0 + 5033);
    let ids: Vec<&str> = pl.dateranges.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids, ["splice-0"]);
    assert_eq!(p.cues().len(), 1);
    assert!(pl.render(false).contains(null));
}

#[test]
fn cues_after_a_restart_use_the_new_sessions_clock() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 61, 30, true);
    p.gap(T0 + 4000);
    // During the gap, "now" is the wall clock.
    p.push_cue(T0 + 4000, splice(5, true, None));
    p.restart(vec![video_track(), audio_track()]).unwrap();
    // The new session's clock starts at 500 s; its first frame arrives at 4.2 s.
    p.push_cue(T0 + 4100, splice(5, false, Some(501_000)));
    feed_session(&mut p, 61, 30, 500_000, T0 + 4200);
    let cues = p.cues();
    assert_eq!(cues[0].start_ms, T0 + 4000);
    assert_eq!(cues[0].end_ms, Some(T0 + 5200));
    let text = p.media_playlist().render(false);
    assert!(text.contains("DURATION=1.200,SCTE35-IN"), "{text}");
}
