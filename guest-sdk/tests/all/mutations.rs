//! Mangled versions of the golden playlists: the parsers never panic, whatever they accept
//! renders back byte for byte, and edits keep it parseable. A cheap, deterministic stand-in
//! for a fuzzer that runs with the unit tests.

use weir_guest::testing::mangled;
use weir_guest::{MediaPlaylist, Playlist};

use crate::media_files;

#[test]
fn mangled_playlists_never_panic_and_round_trip_when_accepted() {
    let (mut accepted, mut rejected) = (0, 0);
    for (seed, (name, text)) in media_files().into_iter().enumerate() {
        for mangled in mangled(&text, 0x5EED_0000 + seed as u64, 400) {
            match Playlist::parse(&mangled) {
                Ok(p) => {
                    accepted += 1;
                    assert_eq!(p.render(), mangled, "{name}:\n{mangled}");
                }
                Err(_) => rejected += 1,
            }
            if let Ok(mut p) = MediaPlaylist::parse(&mangled) {
                let end = p.end_ms().unwrap_or(0);
                for s in p.segments_mut() {
                    s.mark_gap().unwrap();
                }
                p.insert_tag_at(end / 2, "#EXT-X-TEST").unwrap();
                if !p.segments().is_empty() {
                    p.add_discontinuity(0).unwrap();
                    p.set_map(0, "x.mp4").unwrap();
                }
                let out = p.render();
                let again =
                    MediaPlaylist::parse(&out).unwrap_or_else(|e| panic!("{name}: {e}\n{out}"));
                assert_eq!(again.segments().len(), p.segments().len(), "{name}");
            }
        }
    }
    // Both paths were exercised.
    assert!(
        accepted > 1000 && rejected > 100,
        "accepted {accepted}, rejected {rejected}"
    );
}
