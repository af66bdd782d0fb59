use std::time::Duration;

use bytes::Bytes;

use crate::cmaf::tests::{audio_track, video_track};
use crate::packager::session::to_duration;
use crate::packager::tests::*;
use crate::{Error, Output, Packager};

fn completed_parts(out: &[Output]) -> Vec<(u64, u32, Duration, bool)> {
    out.iter()
        .filter_map(|o| match o {
            Output::PartCompleted {
                msn,
                index,
                duration,
                independent,
                ..
            } => Some((*msn, *index, *duration, *independent)),
            _ => None,
        })
        .collect()
}

#[test]
fn cuts_2s_segments_and_500ms_parts_on_keyframes() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 181, 30, true);
    let out = drain(&mut p);
    let segments = completed_segments(&out);
    assert_eq!(
        segments,
        vec![
            (0, Duration::from_secs(2), 0..4),
            (1, Duration::from_secs(2), 4..8),
            (2, Duration::from_secs(2), 8..12),
        ]
    );
    let parts = completed_parts(&out);
    assert_eq!(parts.len(), 12);
    for (n, (msn, index, duration, independent)) in parts.iter().enumerate() {
        assert_eq!(*msn, n as u64 / 4);
        assert_eq!(*index, n as u32 % 4);
        assert_eq!(*duration, Duration::from_millis(500));
        // Keyframes every second: parts 0 and 2 of each segment start on one.
        assert_eq!(*independent, index % 2 == 0, "part {n}");
    }
    assert_eq!(p.next_part_seq(), 12);
    assert_eq!(p.next_msn(), 3);
    assert_eq!(p.target_duration(), Duration::from_secs(2));
}

#[test]
fn cuts_1s_segments_and_200ms_parts() {
    let mut p = Packager::new(
        settings(1000, 200),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 91, 30, true);
    let out = drain(&mut p);
    let segments = completed_segments(&out);
    assert_eq!(segments.len(), 3);
    for (msn, duration, parts) in &segments {
        assert_eq!(*duration, Duration::from_secs(1));
        assert_eq!(parts.end - parts.start, 5, "segment {msn}");
    }
    for (_, index, duration, independent) in completed_parts(&out) {
        assert_eq!(duration, Duration::from_millis(200));
        assert_eq!(independent, index == 0);
    }
    assert_eq!(p.target_duration(), Duration::from_secs(1));
}

#[test]
fn millisecond_timestamps_still_cut_on_target() {
    // RTMP-style: DTS rounded to whole milliseconds, then scaled to 90 kHz.
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    for i in 0..121 {
        let ms = (i * 1000 + 15) / 30;
        let mut s = video(i, 60);
        s.dts = ms * 90;
        p.push(T0 + ms as u64, s).unwrap();
    }
    let out = drain(&mut p);
    let parts = completed_parts(&out);
    assert_eq!(parts.len(), 8);
    for (_, _, d, _) in &parts {
        let ms = d.as_millis();
        assert!((499..=501).contains(&ms), "{parts:?}");
    }
    assert_eq!(completed_segments(&out).len(), 2);
}

#[test]
fn parts_never_exceed_the_target_at_25fps() {
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    for i in 0..101 {
        let mut s = video(i, 50);
        s.dts = i * 3600;
        p.push(T0, s).unwrap();
    }
    let out = drain(&mut p);
    for (_, _, d, _) in completed_parts(&out) {
        assert!(d <= Duration::from_millis(500), "{d:?}");
    }
    assert_eq!(
        completed_segments(&out)
            .iter()
            .map(|s| s.1)
            .collect::<Vec<_>>(),
        vec![Duration::from_secs(2), Duration::from_secs(2)]
    );
}

#[test]
fn long_gops_make_long_segments_and_raise_the_target_duration() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 271, 90, true);
    let out = drain(&mut p);
    let segments = completed_segments(&out);
    assert_eq!(segments.len(), 3);
    assert!(segments.iter().all(|s| s.1 == Duration::from_secs(3)));
    assert_eq!(p.target_duration(), Duration::from_secs(3));
    assert_eq!(p.media_playlist().target_duration, 3);
    // Parts keep their cadence; only a segment's first part is independent.
    let parts = completed_parts(&out);
    assert_eq!(parts.len(), 18);
    assert!(parts.iter().all(|p| p.3 == (p.1 == 0)));
}

#[test]
fn audio_only_parts_are_all_independent() {
    let mut p = Packager::new(settings(2000, 500), vec![audio_track()], 0, 0).unwrap();
    for a in 0..300 {
        p.push(T0, audio(0, a)).unwrap();
    }
    p.finish();
    let out = drain(&mut p);
    let parts = completed_parts(&out);
    assert!(parts.iter().all(|p| p.3));
    for (_, _, d, _) in &parts {
        assert!(*d <= Duration::from_millis(505), "{d:?}");
    }
    let segments = completed_segments(&out);
    assert_eq!(segments.len(), 4, "{segments:?}");
    for (_, d, _) in &segments[..3] {
        let ms = d.as_millis();
        assert!((1995..=2030).contains(&ms), "{d:?}");
    }
    // 300 frames of 1024: every one written exactly once, end to end.
    let runs = chunk_runs(&out);
    assert_eq!(runs.iter().map(|r| r.3).sum::<usize>(), 300);
    assert_eq!(runs.first().unwrap().2, 0);
}

#[test]
fn drops_everything_before_the_first_keyframe() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    // Audio, then three non-key frames, then audio that plays before (6) and after (7)
    // the keyframe at 133 ms: nothing comes out yet.
    p.push(T0, audio(1, 0)).unwrap();
    for i in 1..4 {
        p.push(T0, video(i, 1000)).unwrap();
    }
    p.push(T0, audio(1, 6)).unwrap();
    p.push(T0, audio(1, 7)).unwrap();
    assert_eq!(p.poll_output(), None);
    assert!(p.media_playlist().segments.is_empty());
    let mut key = video(4, 1000);
    key.keyframe = true;
    p.push(T0 + 133, key).unwrap();
    assert_eq!(
        p.poll_output(),
        Some(Output::PartStarted {
            seq: 0,
            msn: 0,
            index: 0,
            independent: true,
            gap: false,
        })
    );
    p.push(T0 + 166, video(5, 1000)).unwrap();
    let out = drain(&mut p);
    let runs = chunk_runs(&out);
    // The first chunk: the keyframe (tfdt 12000) and only the audio that plays after it.
    assert_eq!(runs, vec![(0, 1, 12_000, 1), (0, 2, 7 * 1024, 1)]);
    // PDT is anchored at the keyframe.
    assert_eq!(
        p.media_playlist().partial.unwrap().program_date_time_ms,
        T0 + 133
    );
}

#[test]
fn non_monotonic_dts_is_an_error_and_changes_nothing() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 10, 30, true);
    drain(&mut p);
    let err = p.push(T0, video(9, 30)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonMonotonicDts {
                track: 0,
                dts: 27_000,
                previous: 27_000
            }
        ),
        "{err}"
    );
    let err = p.push(T0, video(3, 30)).unwrap_err();
    assert!(err.to_string().contains("does not follow"), "{err}");
    assert_eq!(p.poll_output(), None);
    // The stream goes on.
    p.push(T0, video(10, 30)).unwrap();
    assert!(matches!(
        p.poll_output(),
        Some(Output::Chunk { seq: 0, .. })
    ));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    let mut s = video(0, 1);
    s.track = 3;
    assert!(matches!(
        p.push(T0, s),
        Err(Error::UnknownTrack {
            track: 3,
            tracks: 1
        })
    ));
    p.push(T0, video(0, 1)).unwrap();
    let mut huge = video(1, 1);
    huge.dts = i64::MAX;
    assert!(matches!(
        p.push(T0, huge),
        Err(Error::TimestampOutOfRange { .. })
    ));
    let mut empty = video(1, 1);
    empty.data = Bytes::new();
    p.push(T0, empty).unwrap();
    p.finish();
    assert!(matches!(p.push(T0, video(2, 1)), Err(Error::Finished)));
    assert!(Packager::new(settings(2000, 500), vec![], 0, 0).is_err());
    assert!(Packager::new(settings(500, 500), vec![video_track()], 0, 0).is_err());
}

#[test]
fn outputs_keep_their_order() {
    let mut p = Packager::new(
        settings(1000, 200),
        vec![video_track(), audio_track()],
        7,
        100,
    )
    .unwrap();
    feed(&mut p, 95, 30, true);
    p.finish();
    let out = drain(&mut p);
    let mut open: Option<u64> = None;
    let mut expect_styp = true;
    let mut last_msn = None;
    for o in &out {
        match o {
            Output::PartStarted {
                seq, msn, index, ..
            } => {
                assert_eq!(open, None, "{o:?} while a part is open");
                open = Some(*seq);
                expect_styp = *index == 0;
                assert!(*msn >= 7);
                last_msn = Some(*msn);
            }
            Output::Chunk { seq, bytes } => {
                assert_eq!(open, Some(*seq));
                assert_eq!(&bytes[4..8] == b"styp", expect_styp, "part {seq}");
                expect_styp = false;
            }
            Output::PartCompleted { seq, .. } => {
                assert_eq!(open.take(), Some(*seq));
            }
            Output::SegmentCompleted { msn, .. } => {
                assert_eq!(open, None);
                assert_eq!(Some(*msn), last_msn);
            }
            Output::WindowAdvanced { .. } | Output::InitChanged { .. } => {}
        }
    }
    assert_eq!(open, None);
    let parts = completed_parts(&out);
    assert_eq!(
        out.iter().find_map(|o| match o {
            Output::PartStarted { seq, .. } => Some(*seq),
            _ => None,
        }),
        Some(100)
    );
    assert_eq!(completed_segments(&out).last().unwrap().0, 10);
    // The final part ends with the last frame (its duration copied from the one before).
    assert_eq!(parts.last().unwrap().2, to_duration(5 * 3000, 90_000));
    assert!(p.media_playlist().ended);
    assert_eq!(p.media_playlist().preload_hint, None);
}

#[test]
fn every_sample_lands_in_exactly_one_part_without_crossing_its_end() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 150, 30, true);
    p.finish();
    let out = drain(&mut p);
    let runs = chunk_runs(&out);
    let video: usize = runs.iter().filter(|r| r.1 == 1).map(|r| r.3).sum();
    let audio: usize = runs.iter().filter(|r| r.1 == 2).map(|r| r.3).sum();
    assert_eq!(video, 150);
    let pushed = (0..).take_while(|a| a * 1024 * 1000 / 48_000 < 149 * 1000 / 30);
    assert_eq!(audio, pushed.count());
    // Audio in part n starts before part n+1's video does.
    for seq in 0..9u64 {
        let next_video = runs.iter().find(|r| r.0 == seq + 1 && r.1 == 1).unwrap().2;
        for r in runs.iter().filter(|r| r.0 == seq && r.1 == 2) {
            assert!(r.2 * 90_000 < next_video * 48_000, "part {seq}: {r:?}");
        }
    }
}

/// Frames lost upstream (a WebRTC publisher's packets that never came) leave no hole in the
/// video's timeline: the frame before them lasts until the next one, so players hold the
/// picture rather than stall on a hole in the buffer (hls.js waits seconds before it jumps
/// one).
#[test]
fn lost_frames_leave_no_hole_in_the_timeline() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    let mut a = 0;
    for i in (0..150).filter(|i| !(40..46).contains(i)) {
        let t_ms = i * 1000 / 30;
        while a * 1024 * 1000 / 48_000 < t_ms {
            p.push(T0 + (a * 1024 * 1000 / 48_000) as u64, audio(1, a))
                .unwrap();
            a += 1;
        }
        p.push(T0 + t_ms as u64, video(i, 30)).unwrap();
    }
    let out = drain(&mut p);
    let mut end = None;
    for o in &out {
        let Output::Chunk { bytes, .. } = o else {
            continue;
        };
        let mut buf = bytes.as_ref();
        while !buf.is_empty() {
            let mp4_atom::Any::Moof(moof) =
                <mp4_atom::Any as mp4_atom::Decode>::decode(&mut buf).unwrap()
            else {
                continue;
            };
            for traf in moof.traf.iter().filter(|t| t.tfhd.track_id == 1) {
                let mut t = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                if let Some(e) = end {
                    assert_eq!(t, e, "a hole in the video timeline");
                }
                for s in traf.trun[0].samples.iter() {
                    t += u64::from(s.duration.unwrap_or(0));
                }
                end = Some(t);
            }
        }
    }
    assert!(end.is_some_and(|e| e >= 140 * 3000), "{end:?}");
}

/// 20 fps video whose keyframes come every `gop` frames: the segments' durations.
fn segments_with_gop(gop: i64) -> Vec<Duration> {
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    for i in 0..200 {
        let mut s = video(i, gop);
        s.dts = i * 4500;
        p.push(T0 + i as u64 * 50, s).unwrap();
    }
    completed_segments(&drain(&mut p))
        .into_iter()
        .map(|s| s.1)
        .collect()
}

/// A keyframe a little before the segment target (a WHIP publisher's, asked for early so it
/// lands there) ends the segment, so its last part is not a frame or two long; one more than
/// half a part early does not, and keyframes at the target cut where they always did.
#[test]
fn a_keyframe_up_to_half_a_part_before_the_target_ends_the_segment() {
    let ms = |d: &[Duration]| d.iter().map(|d| d.as_millis()).collect::<Vec<_>>();
    // Every 1.85 s: cut there.
    assert_eq!(ms(&segments_with_gop(37)[..3]), [1850, 1850, 1850]);
    // Every 1.7 s: too early, the segment waits for the next one (3.4 s).
    assert_eq!(ms(&segments_with_gop(34)[..2]), [3400, 3400]);
    // Every 2 s and every 0.5 s: at the target.
    assert_eq!(ms(&segments_with_gop(40)[..3]), [2000, 2000, 2000]);
    assert_eq!(ms(&segments_with_gop(10)[..3]), [2000, 2000, 2000]);
    // Every 0.45 s (dense): 2.25 s, never the early 1.8 s.
    assert_eq!(ms(&segments_with_gop(9)[..2]), [2250, 2250]);
}
