use std::time::Duration;

use crate::cmaf::tests::{audio_track, video_track};
use crate::packager::tests::*;
use crate::Packager;

#[test]
fn playlist_lists_recent_parts_dates_and_the_hint() {
    let mut p = Packager::new(
        settings(2000, 500),
        vec![video_track(), audio_track()],
        0,
        0,
    )
    .unwrap();
    // 9 s + 2 parts of the next segment + one frame into the third.
    feed(&mut p, 10 * 30 + 31, 60, true);
    let pl = p.media_playlist();
    assert_eq!(pl.segments.len(), 5);
    assert_eq!(pl.media_sequence, 0);
    assert_eq!(pl.can_skip_until, Some(Duration::from_secs(12)));
    assert_eq!(pl.part_hold_back, Duration::from_millis(1500));
    let with_parts: Vec<u64> = pl
        .segments
        .iter()
        .filter(|s| !s.parts.is_empty())
        .map(|s| s.msn)
        .collect();
    // 6 s of parts history behind the live edge (10.5 s): segments ending at >= 4.5 s.
    assert_eq!(with_parts, vec![2, 3, 4]);
    for (i, s) in pl.segments.iter().enumerate() {
        assert_eq!(s.program_date_time_ms, T0 + 2000 * i as u64);
        assert_eq!(s.uri, format!("seg{i}.m4s"));
    }
    let partial = pl.partial.unwrap();
    assert_eq!(partial.msn, 5);
    assert_eq!(partial.program_date_time_ms, T0 + 10_000);
    assert_eq!(partial.parts.len(), 2);
    assert_eq!(partial.parts[0].uri, "part20.m4s");
    assert_eq!(pl.preload_hint.as_deref(), Some("part22.m4s"));
    assert_eq!(p.next_part_seq(), 22);
    assert_eq!(p.parts_done(), 2);
    assert!(p.bandwidth_estimate().unwrap() > 30 * 100 * 8);
    assert_eq!(p.codecs(), "avc1.42c01e,mp4a.40.2");
    assert_eq!(p.resolution(), Some((320, 240)));
}
