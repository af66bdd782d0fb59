//! weir-check's parsers on arbitrary bytes: the LL-HLS media and multivariant playlist
//! parser, the date parser, and the fMP4 sync-sample reader (init and part). None may
//! panic; a parsed playlist's helpers must not panic either.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_check::{mp4, playlist};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(p) = playlist::parse_media(&text) {
        let _ = p.last_part();
        let open = p.open_msn();
        for (m, part) in [(0, 0), (open, 0), (open.wrapping_sub(1), 7), (u64::MAX, u64::MAX)] {
            let _ = p.has_part(m, part);
            let _ = p.has_segment(m);
        }
    }
    let _ = playlist::parse_multivariant(&text);
    let _ = playlist::attributes(&text);
    let _ = playlist::parse_date_ms(&text);
    // The same bytes as an init segment, and split in two as (init, part).
    if let Some(track) = mp4::video_track(data) {
        let _ = mp4::independence(data, track);
    }
    let cut = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let (init, part) = data.split_at(cut);
    let track = mp4::video_track(init).unwrap_or(mp4::VideoTrack {
        track_id: 1,
        default_flags: 0,
    });
    let _ = mp4::independence(part, track);
});
