//! Round trip and structure of every golden playlist.

use weir_guest::{MediaPlaylist, MultivariantPlaylist, Playlist};

use crate::{data, media_files, T0};

#[test]
fn every_golden_file_round_trips_byte_for_byte() {
    let mut all = media_files();
    all.push(("multivariant.m3u8".into(), data("multivariant.m3u8")));
    for (name, text) in all {
        let variants = [
            text.clone(),
            text.replace('\n', "\r\n"),
            text.trim_end().to_string(),
            format!("{text}\n# a trailing comment\n\n"),
        ];
        for v in variants {
            let parsed = Playlist::parse(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed.render(), v, "{name}");
        }
    }
}

#[test]
fn media_full() {
    let p = MediaPlaylist::parse(&data("media_full.m3u8")).unwrap();
    assert_eq!(
        (p.media_sequence(), p.target_duration(), p.part_target_ms()),
        (40, 2, Some(500))
    );
    let msns: Vec<u64> = p.segments().iter().map(|s| s.msn()).collect();
    assert_eq!(msns, (40..=47).collect::<Vec<_>>());
    let partial = p.partial().unwrap();
    assert_eq!(
        (partial.msn(), partial.start_ms(), partial.parts().len()),
        (47, Some(T0 + 14_000), 1)
    );
    for (i, s) in p.segments().iter().enumerate() {
        assert_eq!(s.start_ms(), Some(T0 + 2000 * i as u64));
        assert_eq!(s.map_uri(), Some("init0.mp4"));
        assert!(s.has_program_date_time());
    }
    let seg44 = &p.segments()[4];
    assert_eq!(seg44.uri(), Some("seg44.m4s"));
    let parts = seg44.parts();
    assert_eq!(
        parts.iter().map(|p| p.uri.as_str()).collect::<Vec<_>>(),
        [
            "part1016.m4s",
            "part1017.m4s",
            "part1018.m4s",
            "part1019.m4s"
        ]
    );
    assert_eq!(parts[3].start_ms, Some(T0 + 9500));
    assert!(parts[0].independent && !parts[1].independent);
    assert_eq!(p.preload_hints()[0].uri, "part1029.m4s");
    assert_eq!(p.preload_hints()[0].kind, "PART");
    assert_eq!(
        p.rendition_reports()[1].get("URI"),
        Some("../1080p/index.m3u8")
    );
    assert_eq!(p.end_ms(), Some(T0 + 14_500));
    assert!(!p.has_endlist() && !p.is_delta_update());
}

#[test]
fn media_1s_200ms() {
    let p = MediaPlaylist::parse(&data("media_1s_200ms.m3u8")).unwrap();
    assert_eq!(p.part_target_ms(), Some(200));
    assert_eq!(p.segments()[5].parts().len(), 5);
    assert_eq!(p.segments()[5].duration_ms(), 1000);
    assert_eq!(p.partial().unwrap().msn(), 8);
}

#[test]
fn media_delta() {
    let p = MediaPlaylist::parse(&data("media_delta.m3u8")).unwrap();
    assert!(p.is_delta_update());
    assert_eq!(p.skipped_segments(), 1);
    assert_eq!(p.segments()[0].msn(), 41);
    assert_eq!(p.segments()[0].start_ms(), Some(T0 + 2000));
    // The map after EXT-X-SKIP belongs to the first listed segment.
    assert_eq!(p.segments()[0].own_map_uri(), Some("init0.mp4"));
    assert_eq!(p.partial().unwrap().msn(), 47);
}

#[test]
fn media_discontinuity_gap() {
    let p = MediaPlaylist::parse(&data("media_discontinuity_gap.m3u8")).unwrap();
    let s = p.segments();
    assert_eq!(p.discontinuity_sequence(), 3);
    assert!(s[0].is_gap() && !s[0].is_discontinuity());
    assert_eq!(
        (s[0].discontinuity_sequence(), s[0].map_uri()),
        (3, Some("init0.mp4"))
    );
    assert!(s[1].is_discontinuity());
    assert_eq!(
        (s[1].discontinuity_sequence(), s[1].map_uri()),
        (4, Some("init1.mp4"))
    );
    assert_eq!(s[1].duration_ms(), 1967);
    let partial = p.partial().unwrap();
    assert_eq!(partial.start_ms(), Some(T0 + 3967));
    assert!(partial.parts()[0].gap);
    assert_eq!(partial.map_uri(), Some("init1.mp4"));
}

#[test]
fn media_dateranges() {
    let p = MediaPlaylist::parse(&data("media_dateranges.m3u8")).unwrap();
    let ranges = p.dateranges();
    assert_eq!(ranges.len(), 4);
    assert_eq!(ranges[0].id(), Some("splice-999"));
    assert_eq!(ranges[0].start_ms(), Some(T0 + 3000));
    assert_eq!(ranges[0].planned_duration_ms(), Some(30_000));
    assert_eq!(ranges[1].duration_ms(), Some(4533));
    assert_eq!(p.segments()[1].dateranges().len(), 1);
    // The segment in progress has no date of its own here (the packager's hls.js
    // workaround): it follows from seg46.
    let partial = p.partial().unwrap();
    assert!(!partial.has_program_date_time());
    assert_eq!(partial.start_ms(), Some(T0 + 14_000));
    assert_eq!(partial.dateranges().len(), 2);
}

#[test]
fn media_ended_gap_and_return() {
    let ended = MediaPlaylist::parse(&data("media_ended.m3u8")).unwrap();
    assert!(ended.has_endlist() && ended.partial().is_none() && ended.preload_hints().is_empty());
    assert_eq!(ended.segments().last().unwrap().duration_ms(), 533);

    let gap = MediaPlaylist::parse(&data("media_gap.m3u8")).unwrap();
    let s = gap.segments();
    assert!(s[4].is_gap() && s[4].parts().is_empty());
    assert_eq!(s[4].start_ms(), Some(T0 + 7500));
    let partial = gap.partial().unwrap();
    assert!(partial.parts().iter().all(|p| p.gap));

    let back = MediaPlaylist::parse(&data("media_return.m3u8")).unwrap();
    let s = back.segments();
    assert_eq!(s[6].msn(), 46);
    assert!(s[6].is_discontinuity());
    assert_eq!(
        (s[6].discontinuity_sequence(), s[6].map_uri()),
        (1, Some("init1.mp4"))
    );
    assert_eq!(s[6].start_ms(), Some(T0 + 11_300));
}

#[test]
fn multivariant() {
    let p = MultivariantPlaylist::parse(&data("multivariant.m3u8")).unwrap();
    let v = p.variants();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].uri, "720p/index.m3u8");
    assert_eq!(v[0].attributes.get("CODECS"), Some("avc1.42c01e,mp4a.40.2"));
    assert_eq!(v[1].attributes.get_u64("BANDWIDTH"), Some(128_000));
    assert!(matches!(
        Playlist::parse(&data("multivariant.m3u8")).unwrap(),
        Playlist::Multivariant(_)
    ));
    assert!(MediaPlaylist::parse(&data("multivariant.m3u8")).is_err());
}
