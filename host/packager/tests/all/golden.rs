//! Golden files for playlist rendering: tests/data/golden/*.m3u8. `BLESS=1` rewrites them.
//! Every rendering must also parse with m3u8-rs.

use std::path::PathBuf;
use std::time::Duration;

use weir_packager::{
    MediaPlaylist, MultivariantPlaylist, Packager, PartEntry, PartialSegment, RenditionReport,
    SegmentEntry, Variant,
};

use crate::{drain, feed, settings, synthetic_tracks, T0};

fn golden(name: &str, text: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/golden")
        .join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create it)", path.display()));
    assert!(
        expected == text,
        "{name} differs from the golden file (BLESS=1 rewrites it)\n--- expected\n{expected}\n--- got\n{text}"
    );
}

/// Parses a media playlist with m3u8-rs; returns it for further checks.
fn parse_media(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        Ok(other) => panic!("parsed as the wrong kind: {other:?}"),
        Err(e) => panic!("m3u8-rs cannot parse:\n{text}\n{e:?}"),
    }
}

/// A live rendition 14.5 s in (2 s / 500 ms), as the packager models it.
fn live() -> (Packager, MediaPlaylist) {
    let mut p = Packager::new(settings(2000, 500, 30), synthetic_tracks(), 40, 1000).unwrap();
    feed(&mut p, 0, 14 * 30 + 16, 60);
    drain(&mut p);
    let mut playlist = p.media_playlist();
    playlist.rendition_reports = vec![
        RenditionReport {
            uri: "../360p/index.m3u8".into(),
            last_msn: 47,
            last_part: 0,
        },
        RenditionReport {
            uri: "../1080p/index.m3u8".into(),
            last_msn: 47,
            last_part: 1,
        },
    ];
    (p, playlist)
}

#[test]
fn media_full() {
    let (_, playlist) = live();
    let text = playlist.render(false);
    golden("media_full.m3u8", &text);
    let parsed = parse_media(&text);
    assert_eq!(parsed.media_sequence, 40);
    assert_eq!(parsed.target_duration, 2);
    assert_eq!(parsed.segments.len(), 7);
    assert!(parsed
        .segments
        .iter()
        .all(|s| s.program_date_time.is_some()));
    assert_eq!(parsed.segments[0].uri, "seg40.m4s");
    assert!((parsed.segments[0].duration - 2.0).abs() < 1e-6);
}

#[test]
fn media_delta_skip() {
    let (_, playlist) = live();
    let text = playlist.render(true);
    golden("media_delta.m3u8", &text);
    assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n"), "{text}");
    let parsed = parse_media(&text);
    assert_eq!(
        parsed.media_sequence, 40,
        "MEDIA-SEQUENCE is not moved by a skip"
    );
    assert_eq!(parsed.segments.len(), 6);
    assert_eq!(parsed.segments[0].uri, "seg41.m4s");
}

#[test]
fn media_ended() {
    let (mut p, _) = live();
    p.finish();
    let text = p.media_playlist().render(false);
    golden("media_ended.m3u8", &text);
    assert!(!text.contains("PRELOAD-HINT"));
    let parsed = parse_media(&text);
    assert!(parsed.end_list);
    assert_eq!(parsed.segments.len(), 8);
}

#[test]
fn media_low_latency_1s_200ms() {
    let mut p = Packager::new(settings(1000, 200, 10), synthetic_tracks(), 0, 0).unwrap();
    feed(&mut p, 0, 8 * 30 + 7, 30);
    drain(&mut p);
    let text = p.media_playlist().render(false);
    golden("media_1s_200ms.m3u8", &text);
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.20000\n"));
    assert!(text.contains("PART-HOLD-BACK=0.600,CAN-SKIP-UNTIL=6.000"));
    parse_media(&text);
}

#[test]
fn media_discontinuity_and_gap_by_hand() {
    let part = |seq: u64, independent: bool, gap: bool| PartEntry {
        uri: format!("part{seq}.m4s"),
        duration: Duration::from_millis(500),
        independent,
        gap,
    };
    let playlist = MediaPlaylist {
        target_duration: 2,
        part_target: Duration::from_millis(500),
        part_hold_back: Duration::from_millis(1500),
        can_skip_until: None,
        media_sequence: 100,
        discontinuity_sequence: 3,
        map_uri: "init.mp4".into(),
        segments: vec![
            SegmentEntry {
                msn: 100,
                duration: Duration::from_millis(2000),
                program_date_time_ms: T0,
                uri: "seg100.m4s".into(),
                parts: vec![],
                discontinuity: false,
                gap: true,
            },
            SegmentEntry {
                msn: 101,
                duration: Duration::from_nanos(1_966_666_667),
                program_date_time_ms: T0 + 2000,
                uri: "seg101.m4s".into(),
                parts: (0..4).map(|i| part(404 + i, i == 0, false)).collect(),
                discontinuity: true,
                gap: false,
            },
        ],
        partial: Some(PartialSegment {
            msn: 102,
            program_date_time_ms: T0 + 3967,
            parts: vec![part(408, true, true)],
            discontinuity: false,
        }),
        preload_hint: Some("part409.m4s".into()),
        rendition_reports: vec![],
        ended: false,
    };
    let text = playlist.render(false);
    golden("media_discontinuity_gap.m3u8", &text);
    let parsed = parse_media(&text);
    assert_eq!(parsed.discontinuity_sequence, 3);
    assert!(parsed.segments[1].discontinuity);
    // Nothing to skip without CAN-SKIP-UNTIL: the delta request gets the full playlist.
    assert_eq!(playlist.render(true), text);
}

#[test]
fn multivariant() {
    let (p, _) = live();
    let playlist = MultivariantPlaylist {
        variants: vec![
            Variant {
                uri: "720p/index.m3u8".into(),
                bandwidth: 3_000_000,
                average_bandwidth: Some(2_500_000),
                codecs: p.codecs(),
                resolution: p.resolution(),
                frame_rate: Some(30.0),
            },
            Variant {
                uri: "audio/index.m3u8".into(),
                bandwidth: 128_000,
                average_bandwidth: None,
                codecs: "mp4a.40.2".into(),
                resolution: None,
                frame_rate: None,
            },
        ],
    };
    let text = playlist.render();
    golden("multivariant.m3u8", &text);
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(m)) => {
            assert!(m.independent_segments);
            assert_eq!(m.variants.len(), 2);
            assert_eq!(m.variants[0].bandwidth, 3_000_000);
            assert_eq!(
                m.variants[0].codecs.as_deref(),
                Some("avc1.42c01e,mp4a.40.2")
            );
            assert_eq!(m.variants[0].resolution.unwrap().width, 1280);
        }
        other => panic!("{other:?}"),
    }
}
