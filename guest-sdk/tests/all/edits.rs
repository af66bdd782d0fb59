//! Edits on real playlists: only the lines edited change, and the result reads back.

use weir_guest::{Asset, DateRange, Interstitial, MediaPlaylist};

use crate::{data, media_files, T0};

/// Lines of `after` that are not in `before`, and lines of `before` no longer in `after`
/// (a line-level diff good enough for these edits, which never reorder).
fn diff(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let added = a
        .iter()
        .filter(|l| !b.contains(l))
        .map(|l| l.to_string())
        .collect();
    let removed = b
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| l.to_string())
        .collect();
    (added, removed)
}

#[test]
fn slate_a_range_of_segments() {
    let text = data("media_full.m3u8");
    let mut p = MediaPlaylist::parse(&text).unwrap();
    // Segments 42..=43 to a slate rendition, with discontinuities around them.
    for i in 2..=3 {
        let s = &mut p.segments_mut()[i];
        let uri = format!("../slate/{}", s.uri().unwrap());
        s.set_uri(&uri).unwrap();
    }
    p.add_discontinuity(2).unwrap();
    p.set_map(2, "../slate/init.mp4").unwrap();
    p.add_discontinuity(4).unwrap();
    p.set_map(4, "init0.mp4").unwrap();
    let out = p.render();
    let (added, removed) = diff(&text, &out);
    assert_eq!(removed, ["seg42.m4s", "seg43.m4s"]);
    assert_eq!(
        added,
        [
            "#EXT-X-DISCONTINUITY",
            "#EXT-X-MAP:URI=\"../slate/init.mp4\"",
            "../slate/seg42.m4s",
            "../slate/seg43.m4s",
            "#EXT-X-DISCONTINUITY"
        ]
    );
    let back = MediaPlaylist::parse(&out).unwrap();
    assert_eq!(back, p);
    let s = back.segments();
    assert_eq!(s[3].map_uri(), Some("../slate/init.mp4"));
    assert_eq!(s[4].map_uri(), Some("init0.mp4"));
    assert_eq!(s[4].discontinuity_sequence(), 2);
    assert_eq!(s[4].start_ms(), Some(T0 + 8000));
}

#[test]
fn parts_and_hints() {
    let text = data("media_full.m3u8");
    let mut p = MediaPlaylist::parse(&text).unwrap();
    let last = p.segments().len() - 1;
    p.segments_mut()[last]
        .set_part_uri(0, "../slate/part1028.m4s")
        .unwrap();
    p.set_preload_hint_uri(0, "../slate/part1029.m4s").unwrap();
    assert!(p.segments_mut()[last].set_uri("x.m4s").is_err());
    let (added, removed) = diff(&text, &p.render());
    assert_eq!(
        removed,
        [
            "#EXT-X-PART:DURATION=0.50000,URI=\"part1028.m4s\",INDEPENDENT=YES",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part1029.m4s\""
        ]
    );
    assert_eq!(
        added,
        [
            "#EXT-X-PART:DURATION=0.50000,URI=\"../slate/part1028.m4s\",INDEPENDENT=YES",
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"../slate/part1029.m4s\""
        ]
    );
}

#[test]
fn interstitial_at_a_date_inside_the_playlist() {
    let text = data("media_full.m3u8");
    let mut p = MediaPlaylist::parse(&text).unwrap();
    let start = T0 + 9000;
    let tag = Interstitial::new("ad-5", start, Asset::List("../asset-list/5.json".into()))
        .duration_ms(10_000)
        .to_tag()
        .unwrap();
    p.insert_tag_at(start, &tag).unwrap();
    let out = p.render();
    assert!(
        out.contains(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:08.000Z\n{tag}\n#EXT-X-PART"
        )),
        "{out}"
    );
    // A range dated in the segment in progress: hls.js needs that segment's own date gone.
    let late = DateRange::new("late", T0 + 14_200).to_tag().unwrap();
    p.insert_tag_at(T0 + 14_200, &late).unwrap();
    assert!(p.omit_partial_date_for_hlsjs());
    let out = p.render();
    assert!(
        out.contains(&format!("seg46.m4s\n{late}\n#EXT-X-PART")),
        "{out}"
    );
    assert_eq!(
        MediaPlaylist::parse(&out)
            .unwrap()
            .partial()
            .unwrap()
            .start_ms(),
        Some(T0 + 14_000)
    );
}

#[test]
fn every_golden_file_takes_gap_marks_and_still_parses() {
    for (name, text) in media_files() {
        let mut p = MediaPlaylist::parse(&text).unwrap();
        for s in p.segments_mut() {
            s.mark_gap().unwrap();
        }
        let out = p.render();
        let back = MediaPlaylist::parse(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            back.segments()
                .iter()
                .filter(|s| !s.is_partial())
                .all(|s| s.is_gap()),
            "{name}"
        );
        assert!(
            back.segments()
                .iter()
                .flat_map(|s| s.parts())
                .all(|p| p.gap),
            "{name}"
        );
        // Nothing but GAP marks was added.
        let (added, _) = diff(&text, &out);
        assert!(
            added
                .iter()
                .all(|l| l == "#EXT-X-GAP" || l.ends_with(",GAP=YES")),
            "{name}: {added:?}"
        );
    }
}
