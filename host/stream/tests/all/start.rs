//! A stream's first playlist waits until a player can start there: a complete segment, and
//! PART-HOLD-BACK after the stream's second keyframe, so a player starting that far from the
//! end never starts at the stream's first part (Shaka 4.16 then never starts its playhead:
//! see `startable` in rendition.rs).

use std::time::Duration;

use weir_stream::Input;

use crate::harness::*;

/// Seconds of media a playlist lists: its segments and the parts after the last one.
fn listed(playlist: &str) -> f64 {
    let mut segments = 0.0;
    let mut parts_after = 0.0;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            segments += d.trim_end_matches(',').parse::<f64>().unwrap();
            parts_after = 0.0;
        } else if let Some(a) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            parts_after += a.split(',').next().unwrap().parse::<f64>().unwrap();
        }
    }
    segments + parts_after
}

/// The first playlist of a stream started at 0 with a keyframe every `gop` frames: when it
/// was published, and what it lists.
fn first_playlist(segment_ms: u64, part_ms: u64, gop: i64) -> (Duration, String) {
    let mut h = Harness::passthrough(settings(segment_ms, part_ms));
    h.input(Input::Attach);
    let mut publisher = Source::new(vec![video_track(1280, 720), audio_track()], Duration::ZERO);
    publisher.gop = gop;
    h.progress(secs(8.0), &mut [(&mut publisher, Feed::Publisher)]);
    let (at, snapshot) = h.rendition("src").published.first().cloned().unwrap();
    (at, String::from_utf8(snapshot.playlist.to_vec()).unwrap())
}

#[test]
fn the_first_playlist_waits_for_part_hold_back_after_the_second_keyframe() {
    // 2 s GOP: the second keyframe starts the second segment, at 2 s; PART-HOLD-BACK 1.5 s.
    let (at, playlist) = first_playlist(2000, 500, 60);
    assert!((listed(&playlist) - 3.5).abs() < 1e-6, "{playlist}");
    assert!(at >= secs(3.5) && at < secs(3.6), "published at {at:?}");
    assert!(playlist.contains("#EXTINF:2.00000,"), "{playlist}");
}

#[test]
fn a_keyframe_inside_the_second_segment_is_not_needed() {
    // 1 s GOP in 2 s segments: the second keyframe is the part at 1 s. The playlist waits
    // for the first segment to complete (Shaka 4.16 cannot load one that is all parts) and
    // for 1.5 s after that keyframe: 2.5 s.
    let (_, playlist) = first_playlist(2000, 500, 30);
    assert!((listed(&playlist) - 2.5).abs() < 1e-6, "{playlist}");
    // 1 s segments, 200 ms parts, 1 s GOP: PART-HOLD-BACK 0.6 s after the keyframe at 1 s.
    let (at, playlist) = first_playlist(1000, 200, 30);
    assert!((listed(&playlist) - 1.6).abs() < 1e-6, "{playlist}");
    assert!(at >= secs(1.6) && at < secs(1.7), "published at {at:?}");
}
