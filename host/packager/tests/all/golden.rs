//! Golden files for playlist rendering: tests/data/golden/*.m3u8. `BLESS=1` rewrites them.
//! Every rendering must also parse with m3u8-rs.

use std::path::PathBuf;
use std::time::Duration;

use weir_packager::{
    DateRange, MediaPlaylist, MultivariantPlaylist, Packager, PartEntry, PartialSegment,
    RenditionReport, SegmentEntry, Variant,
};

use bytes::Bytes;
use weir_media::{CueEvent, CueKind};

use crate::{drain, feed, feed_at, settings, synthetic_tracks, T0};

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
        byterange: None,
    };
    let playlist = MediaPlaylist {
        target_duration: 2,
        part_target: Duration::from_millis(500),
        part_hold_back: Duration::from_millis(1500),
        can_skip_until: None,
        media_sequence: 100,
        discontinuity_sequence: 3,
        map_uri: "init0.mp4".into(),
        segments: vec![
            SegmentEntry {
                msn: 100,
                duration: Duration::from_millis(2000),
                program_date_time_ms: T0,
                uri: "seg100.m4s".into(),
                parts: vec![],
                discontinuity: false,
                gap: true,
                map_uri: None,
            },
            SegmentEntry {
                msn: 101,
                duration: Duration::from_nanos(1_966_666_667),
                program_date_time_ms: T0 + 2000,
                uri: "seg101.m4s".into(),
                parts: (0..4).map(|i| part(404 + i, i == 0, false)).collect(),
                discontinuity: true,
                gap: false,
                map_uri: Some("init1.mp4".into()),
            },
        ],
        partial: Some(PartialSegment {
            msn: 102,
            program_date_time_ms: T0 + 3967,
            parts: vec![part(408, true, true)],
            discontinuity: false,
            map_uri: None,
        }),
        preload_hint: Some("part409.m4s".into()),
        preload_hint_start: None,
        rendition_reports: vec![],
        dateranges: vec![],
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
            // NONE on every variant (RFC 8216bis 4.4.6.2: one NONE makes it all).
            assert!(m
                .variants
                .iter()
                .all(|v| v.closed_captions == Some(m3u8_rs::ClosedCaptionGroupId::None)));
        }
        other => panic!("{other:?}"),
    }
}

/// The `EXT-X-DATERANGE` lines, which m3u8-rs keeps only one of per segment.
fn dateranges(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("#EXT-X-DATERANGE:"))
        .collect()
}

/// 7.5 s of media (2 s / 500 ms, window 12 s), then the publisher stalls and the wall clock
/// reaches 11.2 s.
fn mid_gap() -> Packager {
    let mut p = Packager::new(settings(2000, 500, 12), synthetic_tracks(), 40, 1000).unwrap();
    feed(&mut p, 0, 225, 60);
    p.gap(T0 + 7467 + 1500);
    p.gap(T0 + 11_200);
    drain(&mut p);
    p
}

#[test]
fn media_mid_gap() {
    let p = mid_gap();
    let text = p.media_playlist().render(false);
    golden("media_gap.m3u8", &text);
    assert!(!text.contains("PRELOAD-HINT"), "no hint to a gap part");
    let parsed = parse_media(&text);
    // 0-2, 2-4, 4-6, 6-7.5 (short), 7.5-9.5 (gap); 9.5-11 in progress (3 gap parts).
    assert_eq!(parsed.segments.len(), 5);
    assert_eq!(parsed.segments[3].duration, 1.5);
    let gap = &parsed.segments[4];
    assert!(gap.unknown_tags.iter().any(|t| t.tag == "X-GAP"), "{gap:?}");
    // PDT keeps advancing through the gap.
    let dates: Vec<i64> = parsed
        .segments
        .iter()
        .map(|s| s.program_date_time.unwrap().timestamp_millis())
        .collect();
    assert_eq!(dates[4] - dates[3], 1500);
    // The complete gap segment is listed whole; only the in-progress one shows its parts.
    assert_eq!(text.matches(",GAP=YES").count(), 3);
}

fn splice(id: u32, out: bool, pts_ms: i64, section: &'static [u8]) -> CueEvent {
    CueEvent {
        id,
        kind: CueKind::SpliceInsert,
        out_of_network: out,
        pts: Some(pts_ms * 90),
        duration: out.then_some(Duration::from_secs(30)),
        segmentation_type: None,
        section: Bytes::from_static(section),
    }
}

/// Stand-ins for splice_info_sections: the packager copies a section byte for byte and never
/// parses it, so these only need to be recognisable in the output.
const OUT_SECTION: &[u8] = &[
    0xfc, 0x30, 0x25, 0x00, 0x05, 0x00, 0x00, 0x03, 0xe7, 0x7f, 0xef,
];
const IN_SECTION: &[u8] = &[
    0xfc, 0x30, 0x20, 0x00, 0x05, 0x00, 0x00, 0x03, 0xe7, 0x7f, 0x4f,
];

/// The publisher comes back 11.2 s in at 640x360 with its own clock; 2.7 s of it so far.
fn returned() -> Packager {
    let mut p = mid_gap();
    let mut tracks = synthetic_tracks();
    if let weir_media::Codec::H264(c) = &mut tracks[0].codec {
        c.width = 640;
        c.height = 360;
    }
    p.restart(tracks).unwrap();
    feed_at(&mut p, 0, 81, 60, 3_600_000, T0 + 11_300);
    drain(&mut p);
    p
}

#[test]
fn media_after_return() {
    let p = returned();
    let g = p.init_generation();
    let text = p.media_playlist().render(false);
    golden("media_return.m3u8", &text);
    assert!(text.contains(&format!(
        "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init{g}.mp4\"\n"
    )));
    assert!(text.contains("#EXT-X-PRELOAD-HINT"));
    let parsed = parse_media(&text);
    let (i, first) = parsed
        .segments
        .iter()
        .enumerate()
        .find(|(_, s)| s.discontinuity)
        .unwrap();
    assert_eq!(first.map.as_ref().unwrap().uri, format!("init{g}.mp4"));
    assert_eq!(parsed.segments[0].map.as_ref().unwrap().uri, "init1000.mp4");
    let before = &parsed.segments[i - 1];
    let gap_end = before.program_date_time.unwrap().timestamp_millis()
        + (f64::from(before.duration) * 1000.0).round() as i64;
    assert!(first.program_date_time.unwrap().timestamp_millis() >= gap_end);
    assert_eq!(parsed.discontinuity_sequence, 0);
}

#[test]
fn media_with_scte35_dateranges() {
    let mut p = Packager::new(settings(2000, 500, 30), synthetic_tracks(), 40, 1000).unwrap();
    feed(&mut p, 0, 60, 60);
    // Sent ahead of the splice, as encoders do, and repeated.
    p.push_cue(T0 + 2000, splice(999, true, 3000, OUT_SECTION));
    feed(&mut p, 60, 120, 60);
    p.push_cue(T0 + 4000, splice(999, true, 3000, OUT_SECTION));
    p.push_cue(T0 + 4000, splice(999, false, 7533, IN_SECTION));
    // An RTMP cue point (no section) and a splice_null heartbeat, both "now".
    let mut cue_point = splice(7, true, 0, &[]);
    cue_point.pts = None;
    feed(&mut p, 120, 14 * 30 + 16, 60);
    p.push_cue(T0 + 14_520, cue_point);
    let mut null = splice(0, false, 0, &[0xfc, 0x30, 0x11, 0x00]);
    null.kind = CueKind::SpliceNull;
    null.pts = None;
    p.push_cue(T0 + 14_520, null);
    drain(&mut p);
    let playlist = p.media_playlist();
    assert_eq!(playlist.dateranges.len(), 4);
    let text = playlist.render(false);
    golden("media_dateranges.m3u8", &text);
    let lines = dateranges(&text);
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].contains("ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",PLANNED-DURATION=30.000,SCTE35-OUT=0xFC3025000500"));
    assert!(lines[1].contains("ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",DURATION=4.533,SCTE35-IN=0xFC3020000500"));
    assert!(
        lines[2].starts_with("#EXT-X-DATERANGE:ID=\"splice-7\",START-DATE=\"2026-11-25T16:00:14.5")
    );
    assert!(!lines[2].contains("SCTE35"));
    assert!(lines[3].contains("SCTE35-CMD=0xFC301100"));
    let parsed = parse_media(&text);
    let with_range: Vec<(&str, &str)> = parsed
        .segments
        .iter()
        .filter_map(|s| {
            s.daterange
                .as_ref()
                .map(|d| (s.uri.as_str(), d.id.as_str()))
        })
        .collect();
    assert_eq!(
        with_range,
        vec![("seg41.m4s", "splice-999"), ("seg43.m4s", "splice-999")]
    );
    // A delta update keeps the ranges of the segments it skips.
    let delta = playlist.render(true);
    assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n"));
    assert_eq!(dateranges(&delta), lines);
    parse_media(&delta);
}

#[test]
fn dateranges_by_hand_render_every_attribute() {
    let (_, mut playlist) = live();
    playlist.dateranges = vec![DateRange {
        id: "x".into(),
        start_ms: T0 + 500,
        duration: Some(Duration::from_millis(1500)),
        planned_duration: Some(Duration::from_secs(2)),
        scte35_cmd: Some(Bytes::from_static(&[0xab])),
        scte35_out: None,
        scte35_in: None,
        position_ms: T0 + 500,
    }];
    let text = playlist.render(false);
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2026-11-25T16:00:00.500Z\",DURATION=1.500,PLANNED-DURATION=2.000,SCTE35-CMD=0xAB\n"), "{text}");
    parse_media(&text);
}

/// `(uri, len, offset)` of every `EXT-X-PART` with a `BYTERANGE`, in order.
fn ranged_parts(text: &str) -> Vec<(String, u64, u64)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|attrs| {
            let uri = attrs.split("URI=\"").nth(1)?.split('"').next()?;
            let range = attrs.split("BYTERANGE=").nth(1)?.split(',').next()?;
            let (len, offset) = range.split_once('@')?;
            Some((uri.to_owned(), len.parse().ok()?, offset.parse().ok()?))
        })
        .collect()
}

/// Byte-range parts (a tenant's `byterange_parts`): every part is a range of its segment,
/// each range is exactly that part's bytes, the ranges of a segment tile it from 0, and the
/// hint is an open-ended range from the end of the last listed part of the segment in
/// progress.
#[test]
fn media_byterange_parts() {
    let mut p = Packager::new(settings(2000, 500, 30), synthetic_tracks(), 40, 1000).unwrap();
    p.set_byterange_parts(true);
    feed(&mut p, 0, 14 * 30 + 16, 60);
    let outputs = drain(&mut p);
    let mut part_bytes: std::collections::BTreeMap<u64, Vec<u8>> = Default::default();
    let mut segment_parts: std::collections::BTreeMap<u64, Vec<u64>> = Default::default();
    for o in &outputs {
        match o {
            weir_packager::Output::Chunk { seq, bytes } => {
                part_bytes.entry(*seq).or_default().extend_from_slice(bytes)
            }
            weir_packager::Output::PartCompleted { seq, msn, .. } => {
                segment_parts.entry(*msn).or_default().push(*seq)
            }
            _ => {}
        }
    }
    let text = p.media_playlist().render(false);
    golden("media_byterange.m3u8", &text);
    assert!(!text.contains("part1"), "no part URI is listed:\n{text}");
    parse_media(&text);

    let ranged = ranged_parts(&text);
    assert!(ranged.len() >= 8, "{text}");
    let mut by_segment: std::collections::BTreeMap<u64, Vec<(u64, u64)>> = Default::default();
    for (uri, len, offset) in &ranged {
        let msn: u64 = uri
            .strip_prefix("seg")
            .and_then(|s| s.strip_suffix(".m4s"))
            .unwrap()
            .parse()
            .unwrap();
        by_segment.entry(msn).or_default().push((*len, *offset));
    }
    for (msn, ranges) in &by_segment {
        let seqs = &segment_parts[msn];
        let segment: Vec<u8> = seqs.iter().flat_map(|s| part_bytes[s].clone()).collect();
        // Parts are listed for the newest segments only, always from the segment's first.
        assert_eq!(ranges[0].1, 0, "seg{msn}: the first range starts at 0");
        let mut end = 0;
        for ((len, offset), seq) in ranges.iter().zip(seqs) {
            assert_eq!(*offset, end, "seg{msn}: ranges are back to back");
            assert_eq!(
                *len as usize,
                part_bytes[seq].len(),
                "seg{msn}: part {seq}'s range is its bytes"
            );
            assert_eq!(
                &segment[*offset as usize..(*offset + *len) as usize],
                &part_bytes[seq][..]
            );
            end += len;
        }
        if ranges.len() == seqs.len() {
            assert_eq!(end as usize, segment.len(), "seg{msn}: the ranges add up");
        }
    }
    // The segment in progress: the hint starts where its last listed part ends.
    let (last_msn, last) = by_segment.iter().next_back().unwrap();
    let hint_start = last.iter().map(|(len, _)| len).sum::<u64>();
    assert!(
        text.contains(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg{last_msn}.m4s\",BYTERANGE-START={hint_start}\n"
        )),
        "{text}"
    );
    assert!(hint_start > 0);
}

/// A new segment's hint starts at 0: right after the keyframe that opened it, before its
/// first part is complete.
#[test]
fn byterange_hint_of_a_new_segment_starts_at_zero() {
    let mut p = Packager::new(settings(2000, 500, 30), synthetic_tracks(), 40, 1000).unwrap();
    p.set_byterange_parts(true);
    let mut seen = 0;
    for frame in 0..8 * 30 {
        feed(&mut p, frame, frame + 1, 60);
        drain(&mut p);
        let playlist = p.media_playlist();
        let Some(partial) = &playlist.partial else {
            continue;
        };
        if partial.parts.is_empty() && frame > 60 {
            assert_eq!(playlist.preload_hint_start, Some(0));
            assert_eq!(
                playlist.preload_hint.as_deref(),
                Some(format!("seg{}.m4s", partial.msn).as_str())
            );
            seen += 1;
        } else if let Some(last) = partial.parts.last() {
            let range = last.byterange.unwrap();
            assert_eq!(playlist.preload_hint_start, Some(range.offset + range.len));
        }
    }
    assert!(seen >= 2, "segment starts seen: {seen}");
}
