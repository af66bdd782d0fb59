use std::time::Duration;

use weir_media::Codec;

use crate::cmaf::tests::{audio_track, video_track};
use crate::packager::tests::*;
use crate::{Error, Output, Packager, Settings};

fn gap_parts(out: &[Output]) -> Vec<u64> {
    out.iter()
        .filter_map(|o| match o {
            Output::PartCompleted { seq, gap: true, .. } => Some(*seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_burst_at_start_dates_the_stream_by_its_earliest_arrival() {
    // A demuxer that held 300 ms of video until it knew every track hands it over at
    // once (at T0 + 300); the frames after it arrive in real time.
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    for i in 0..9 {
        p.push(T0 + 300, video(i, 60)).unwrap();
    }
    for i in 9..40 {
        p.push(T0 + (i as u64) * 1000 / 30, video(i, 60)).unwrap();
    }
    let partial = p.media_playlist().partial.unwrap();
    assert_eq!(partial.program_date_time_ms, T0);
    // Once a part is out, the date no longer moves, even for an early sample.
    p.push(T0 + 1000, video(40, 60)).unwrap();
    p.push(T0 + 1000, video(41, 60)).unwrap();
    assert_eq!(p.media_playlist().partial.unwrap().program_date_time_ms, T0);
}

#[test]
fn negative_dts_is_shifted_onto_a_positive_timeline() {
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    let mut s = video(0, 30);
    s.dts = -6000;
    p.push(T0, s).unwrap();
    let mut s = video(1, 30);
    s.dts = -3000;
    p.push(T0, s).unwrap();
    let runs = chunk_runs(&drain(&mut p));
    assert_eq!(runs, vec![(0, 1, 84_000, 1)]);
}

#[test]
fn gap_keeps_the_cadence_with_wall_time() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    // 2.5 s of media (the last frame arrives at 2467 ms), then the publisher stalls.
    feed(&mut p, 75, 30, true);
    drain(&mut p);
    p.gap(T0 + 2467 + 1500);
    let out = drain(&mut p);
    // The segment in progress closes at the end of the last frame: 2.0..2.5 s.
    let segments = completed_segments(&out);
    assert_eq!(segments, vec![(1, Duration::from_millis(500), 4..5)]);
    // Gap parts 2.5..3.0 and 3.0..3.5 have ended by 3.967 s; 3.5..4.0 has not.
    assert_eq!(gap_parts(&out), vec![5, 6]);
    for pair in out[out.len() - 4..].chunks(2) {
        assert!(matches!(
            pair,
            [
                Output::PartStarted { gap: true, seq: a, .. },
                Output::PartCompleted { gap: true, seq: b, duration, .. },
            ] if a == b && *duration == Duration::from_millis(500)
        ));
    }
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Chunk { seq, .. } if *seq >= 5)));
    assert!(p.in_gap());
    assert_eq!(p.media_playlist().preload_hint, None);

    // Never ahead of the wall clock, however often it is called.
    p.gap(T0 + 3999);
    assert_eq!(drain(&mut p), vec![]);
    p.gap(T0 + 6000);
    let out = drain(&mut p);
    assert_eq!(gap_parts(&out), vec![7, 8, 9, 10, 11]);
    // Four gap parts make a 2 s gap segment; the next one is in progress.
    assert_eq!(
        completed_segments(&out),
        vec![(2, Duration::from_secs(2), 5..9)]
    );
    assert!(out.iter().any(|o| matches!(
        o,
        Output::SegmentCompleted {
            msn: 2,
            gap: true,
            ..
        }
    )));
    assert_eq!(p.next_part_seq(), 12);
    assert_eq!((p.next_msn(), p.parts_done()), (3, 3));

    let pl = p.media_playlist();
    let dates: Vec<u64> = pl.segments.iter().map(|s| s.program_date_time_ms).collect();
    assert_eq!(dates, vec![T0, T0 + 2000, T0 + 2500]);
    assert!(pl.segments[2].gap && !pl.segments[1].gap);
    assert!(pl.segments[2].parts.iter().all(|p| p.gap && !p.independent));
    let partial = pl.partial.as_ref().unwrap();
    assert_eq!(partial.program_date_time_ms, T0 + 4500);
    assert!(partial.parts.iter().all(|p| p.gap));
    assert_eq!(pl.preload_hint, None);
    let text = pl.render(false);
    assert!(
        text.contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg2.m4s\n"),
        "{text}"
    );
    assert!(text.contains("URI=\"part11.m4s\",GAP=YES\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"), "{text}");
    // Gap segments count for nothing in the peak bitrate.
    assert!(p.bandwidth_estimate().is_some());

    // The stream ends mid-gap: the gap segment closes, the playlist ends.
    p.finish();
    let out = drain(&mut p);
    assert_eq!(
        completed_segments(&out),
        vec![(3, Duration::from_millis(1500), 9..12)]
    );
    let text = p.media_playlist().render(false);
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"));
}

#[test]
fn gap_before_any_media_does_nothing() {
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    p.gap(T0 + 10_000);
    assert_eq!(p.poll_output(), None);
    assert!(!p.in_gap());
    assert_eq!(
        p.media_playlist().preload_hint.as_deref(),
        Some("part0.m4s")
    );
}

#[test]
fn restart_with_new_tracks_continues_the_timeline() {
    let s = Settings {
        segment_target: Duration::from_secs(2),
        part_target: Duration::from_millis(500),
        window: Duration::from_secs(6),
    };
    let mut p = Packager::new(s, vec![video_track(), audio_track()], 10, 100).unwrap();
    feed(&mut p, 75, 30, true);
    p.gap(T0 + 5000);
    let before = drain(&mut p);
    let old_runs = chunk_runs(&before);
    let audio_end = old_runs
        .iter()
        .filter(|r| r.1 == 2)
        .map(|r| r.2)
        .max()
        .unwrap();
    assert_eq!(gap_parts(&before).len(), 5, "2.5..5.0 s");

    // A new publisher, at a new resolution, with its own clock.
    let mut video = video_track();
    if let Codec::H264(c) = &mut video.codec {
        c.width = 640;
        c.height = 360;
    }
    p.restart(vec![video, audio_track()]).unwrap();
    // The new init is named by the first part that will use it: 110, after the gap's last.
    assert_eq!(p.init_generation(), 110);
    // The gap segment in progress ends at its last gap part (4.5..5.0 s) …
    assert!(matches!(
        p.poll_output(),
        Some(Output::SegmentCompleted { msn: 13, gap: true, parts, .. }) if parts == (109..110)
    ));
    let Some(Output::InitChanged {
        generation: 110,
        bytes,
    }) = p.poll_output()
    else {
        panic!("no InitChanged");
    };
    assert_eq!(bytes, p.init_segment());
    assert_eq!(p.resolution(), Some((640, 360)));
    // … so the hint, no longer in a gap, names the part that opens the new session's
    // segment, and no partial segment claims it.
    let pl = p.media_playlist();
    assert_eq!(pl.preload_hint.as_deref(), Some("part110.m4s"));
    assert!(pl.partial.is_none());
    assert!(pl.segments.last().is_some_and(|s| s.msn == 13 && s.gap));

    // Its first keyframe arrives at 5.2 s wall time, with DTS from 1000 s.
    feed_session(&mut p, 30 * 2 + 1, 30, 1_000_000, T0 + 5200);
    let out = drain(&mut p);
    let runs = chunk_runs(&out);
    // The new session starts where the gap ends (5.0 s = 450 000): tfdt never goes back.
    assert_eq!(runs[0], (110, 1, 450_000, 1));
    let first_audio = runs.iter().find(|r| r.1 == 2).unwrap();
    assert!(first_audio.2 * 90_000 >= 450_000 * 48_000);
    assert!(first_audio.2 > audio_end);

    let pl = p.media_playlist();
    let first_real = pl.segments.iter().find(|s| s.msn == 14).unwrap();
    assert!(first_real.discontinuity);
    // Parts only after the gap: none for the old session's segments.
    assert!(!first_real.parts.is_empty());
    assert!(pl
        .segments
        .iter()
        .filter(|s| s.msn < 14)
        .all(|s| s.parts.is_empty()));
    assert_eq!(first_real.map_uri.as_deref(), Some("init110.mp4"));
    // Anchored at the wall clock of its first frame, after the end of the gap (5.0 s).
    assert_eq!(first_real.program_date_time_ms, T0 + 5200);
    assert_eq!(pl.segments.iter().filter(|s| s.discontinuity).count(), 1);
    assert_eq!(pl.discontinuity_sequence, 0);
    assert_eq!(
        pl.map_uri, "init100.mp4",
        "the first session's init: part 100's"
    );
    let text = pl.render(false);
    assert!(text.contains("#EXT-X-GAP\n#EXTINF:0.50000,\nseg13.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init110.mp4\"\n"), "{text}");

    feed_session_more(&mut p, 30 * 2 + 1, 30 * 12 + 1, 30, 1_000_000, T0 + 5200);
    let pl = p.media_playlist();
    // 12 s later the old session's segments and the discontinuity have left the window.
    assert_eq!(pl.media_sequence, 16);
    assert_eq!(pl.discontinuity_sequence, 1);
    assert_eq!(pl.map_uri, "init110.mp4");
    assert!(pl
        .segments
        .iter()
        .all(|s| s.map_uri.is_none() && !s.discontinuity));
    assert_eq!(p.oldest_init_generation(), 110);
    let text = pl.render(false);
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
}

#[test]
fn restart_date_is_clamped_to_the_gap_end() {
    let tracks = || vec![video_track(), audio_track()];
    let mut p = Packager::new(settings(2000, 500), tracks(), 0, 0).unwrap();
    feed(&mut p, 61, 30, true);
    p.gap(T0 + 4000);
    drain(&mut p);
    p.restart(tracks()).unwrap();
    // Media ended at 2033 ms; gap parts to 3533 ms had ended by 4 s, and the restart
    // ended their segment.
    let pl = p.media_playlist();
    assert!(pl.partial.is_none());
    assert!(pl
        .segments
        .last()
        .is_some_and(|s| s.gap && s.parts.is_empty()));
    assert_eq!(
        pl.segments.last().map(|s| s.duration),
        Some(Duration::from_millis(1500))
    );
    // The new publisher's first frame is stamped (by a slow clock) before the gap's end.
    feed_session(&mut p, 31, 30, 0, T0 + 3000);
    let pl = p.media_playlist();
    let real = pl.partial.as_ref().unwrap();
    assert!(real.discontinuity);
    assert_eq!(real.program_date_time_ms, T0 + 3533);
}

#[test]
fn the_same_publisher_resumes_at_a_keyframe() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 75, 30, true);
    p.gap(T0 + 4000);
    drain(&mut p);
    // It comes back mid-GOP: frames wait for the keyframe at 120 (4 s of its clock).
    for i in 100..120 {
        p.push(T0 + 4100, video(i, 30)).unwrap();
    }
    assert!(drain(&mut p).is_empty());
    assert!(p.in_gap());
    for i in 120..140 {
        p.push(T0 + 4200, video(i, 30)).unwrap();
    }
    let out = drain(&mut p);
    assert!(!out.iter().any(|o| matches!(o, Output::InitChanged { .. })));
    let runs = chunk_runs(&out);
    // Continues at the end of the gap parts (2.5 + 3 × 0.5 s).
    assert_eq!(runs[0].2, 360_000);
    let pl = p.media_playlist();
    let partial = pl.partial.unwrap();
    assert!(partial.discontinuity);
    assert_eq!(partial.map_uri, None);
    assert_eq!(partial.program_date_time_ms, T0 + 4200);
    assert!(!p.in_gap());
}

#[test]
fn restart_before_any_media_has_no_discontinuity() {
    let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
    p.restart(vec![video_track(), audio_track()]).unwrap();
    // No part used the first init: the new one takes its name (part 0's), and no playlist
    // ever listed the old one.
    assert!(matches!(
        p.poll_output(),
        Some(Output::InitChanged { generation: 0, .. })
    ));
    feed(&mut p, 31, 30, true);
    let pl = p.media_playlist();
    assert_eq!(pl.map_uri, "init0.mp4");
    let partial = pl.partial.unwrap();
    assert!(!partial.discontinuity && partial.map_uri.is_none());
    assert!(p.restart(vec![]).is_err());
    p.finish();
    assert!(matches!(
        p.restart(vec![video_track()]),
        Err(Error::Finished)
    ));
}

#[test]
fn restart_to_audio_only_rescales_the_timeline() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    feed(&mut p, 61, 30, true);
    p.restart(vec![audio_track()]).unwrap();
    for a in 0..200 {
        p.push(T0 + 2100 + a as u64 * 21, audio(0, a)).unwrap();
    }
    let out = drain(&mut p);
    let runs = chunk_runs(&out);
    let restart_at = out
        .iter()
        .position(|o| matches!(o, Output::InitChanged { .. }))
        .unwrap();
    let new_runs = chunk_runs(&out[restart_at..]);
    let old_end = runs[..runs.len() - new_runs.len()]
        .iter()
        .filter(|r| r.1 == 2)
        .map(|r| r.2)
        .max()
        .unwrap();
    assert!(new_runs[0].2 > old_end, "{new_runs:?}");
    let pl = p.media_playlist();
    // Segments before the restart keep their durations in the new timescale.
    assert_eq!(pl.segments[0].duration, Duration::from_secs(2));
    assert!(pl.segments.iter().any(|s| s.discontinuity));
}
