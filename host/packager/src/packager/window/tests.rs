use std::time::Duration;

use crate::cmaf::tests::{audio_track, video_track};
use crate::packager::tests::*;
use crate::{Output, Packager, Settings};

#[test]
fn window_evicts_old_segments() {
    let s = Settings {
        segment_target: Duration::from_secs(2),
        part_target: Duration::from_millis(500),
        window: Duration::from_secs(6),
    };
    let mut p = Packager::new(s, vec![video_track(), audio_track()], 0, 0).unwrap();
    feed(&mut p, 20 * 30 + 1, 60, true);
    let out = drain(&mut p);
    let advanced: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Output::WindowAdvanced { first_msn } => Some(*first_msn),
            _ => None,
        })
        .collect();
    assert_eq!(advanced, (1..=6).collect::<Vec<_>>());
    assert_eq!(p.first_msn(), 6);
    let playlist = p.media_playlist();
    assert_eq!(playlist.media_sequence, 6);
    let msns: Vec<u64> = playlist.segments.iter().map(|s| s.msn).collect();
    assert_eq!(msns, vec![6, 7, 8, 9]);
    // Window shorter than 6 target durations: no delta updates offered.
    assert_eq!(playlist.can_skip_until, None);
}

#[test]
fn discontinuity_sequence_counts_only_when_it_leaves() {
    let s = Settings {
        segment_target: Duration::from_secs(2),
        part_target: Duration::from_millis(500),
        window: Duration::from_secs(6),
    };
    let mut p = Packager::new(s, vec![video_track(), audio_track()], 0, 0).unwrap();
    feed(&mut p, 120, 30, true);
    // The publisher is swapped at once, no gap.
    p.restart(vec![video_track(), audio_track()]).unwrap();
    let g = p.init_generation();
    assert!(g > 0);
    let map = format!("init{g}.mp4");
    feed_session(&mut p, 30 * 4 + 1, 30, 0, T0 + 4000);
    let pl = p.media_playlist();
    let text = pl.render(false);
    let segment = pl.segments.iter().find(|s| s.discontinuity).unwrap();
    assert_eq!(segment.map_uri.as_deref(), Some(map.as_str()));
    assert_eq!(pl.map_uri, "init0.mp4");
    assert_eq!(pl.discontinuity_sequence, 0);
    assert!(!text.contains("DISCONTINUITY-SEQUENCE"));
    assert!(
        text.contains(&format!(
            "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"{map}\"\n#EXT-X-PROGRAM-DATE-TIME"
        )),
        "{text}"
    );
    // Dates never go backwards across it.
    let dates: Vec<u64> = pl.segments.iter().map(|s| s.program_date_time_ms).collect();
    assert!(dates.windows(2).all(|w| w[0] < w[1]), "{dates:?}");

    feed_session_more(&mut p, 30 * 4 + 1, 30 * 12 + 1, 30, 0, T0 + 4000);
    let pl = p.media_playlist();
    assert_eq!(pl.discontinuity_sequence, 1);
    assert_eq!(pl.map_uri, map);
}
