use std::time::Duration;

use bytes::Bytes;
use weir_media::{Codec, CueEvent, CueKind, H264Config, Sample, Track};
use weir_packager::{Packager, Settings};

use super::*;

const T0: u64 = 1_800_000_000_000;

fn track() -> Track {
    Track {
        timescale: 90_000,
        codec: Codec::H264(H264Config {
            avcc: Bytes::from_static(&[
                0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1e, 0x01, 0x00,
                0x02, 0x68, 0xce,
            ]),
            width: 640,
            height: 360,
        }),
    }
}

fn packager(window_s: u64) -> Packager {
    let settings = Settings {
        segment_target: Duration::from_secs(2),
        part_target: Duration::from_millis(500),
        window: Duration::from_secs(window_s),
    };
    Packager::new(settings, vec![track()], 100, 400).unwrap()
}

/// 30 fps, a keyframe a second, `from..to` frames, pushed as they would arrive.
fn feed(p: &mut Packager, from: i64, to: i64) {
    for i in from..to {
        let sample = Sample {
            track: 0,
            dts: i * 3000,
            cts_offset: 0,
            keyframe: i % 30 == 0,
            duration: None,
            data: Bytes::from(vec![0x65; 100]),
        };
        p.push(T0 + (i as u64) * 1000 / 30, sample).unwrap();
        while p.poll_output().is_some() {}
    }
}

fn cue(id: u32, pts: i64) -> CueEvent {
    CueEvent {
        id,
        kind: CueKind::SpliceInsert,
        out_of_network: true,
        pts: Some(pts),
        duration: Some(Duration::from_secs(6)),
        segmentation_type: None,
        section: Bytes::new(),
    }
}

/// The delta update made from the full text is the packager's own delta update, byte for
/// byte, at every point of a stream: with date ranges in skipped and listed segments, a
/// discontinuity and a new init segment, and a playlist in parts.
#[test]
fn the_delta_of_the_full_text_is_the_packagers_delta() {
    let mut p = packager(20);
    let mut checked = 0;
    let mut kept_ranges = 0;
    let mut frame = 0;
    for step in 0..100 {
        feed(&mut p, frame, frame + 15);
        frame += 15;
        match step {
            5 => p.push_cue(T0, cue(7, frame * 3000 + 9_000)),
            // A returning publisher: a discontinuity and a second init segment.
            20 => p.restart(vec![track()]).unwrap(),
            30 => p.push_cue(T0, cue(8, frame * 3000 + 3_000)),
            70 => p.push_cue(T0, cue(9, frame * 3000 + 45_000)),
            _ => {}
        }
        let playlist = p.media_playlist();
        let skipped = playlist.skippable();
        let full = playlist.render(false);
        let delta = playlist.render(true);
        if skipped == 0 {
            assert_eq!(delta_update(&full, 0), None);
            continue;
        }
        assert_eq!(skipped_segments(&delta), Some(skipped));
        assert_eq!(
            delta_update(&full, skipped).as_deref(),
            Some(delta.as_str()),
            "step {step}:\n{full}"
        );
        checked += 1;
        if delta.contains(&format!("SKIPPED-SEGMENTS={skipped}\n#EXT-X-DATERANGE")) {
            kept_ranges += 1;
        }
        if step == 99 {
            // No delta update while a discontinuity is listed (the packager's rule); this
            // one has left, its init segment stays, and the last cue is dated in the
            // listed segments.
            assert!(
                full.contains(&format!("init{}.mp4", p.init_generation()))
                    && !full.contains("DISCONTINUITY\n"),
                "{full}"
            );
            assert!(
                full.contains("splice-9") && delta.contains("splice-9"),
                "{full}"
            );
        }
    }
    assert!(
        kept_ranges >= 3,
        "no delta update kept a skipped segment's date range"
    );
    assert!(
        checked >= 25,
        "only {checked} playlists could skip:\n{}",
        p.media_playlist().render(false)
    );
}

#[test]
fn a_date_range_a_plugin_added_in_a_skipped_segment_is_kept() {
    let mut p = packager(40);
    feed(&mut p, 0, 900);
    let playlist = p.media_playlist();
    let skipped = playlist.skippable();
    assert!(skipped >= 2);
    // A plugin inserts an interstitial inside the first segment, and a custom tag.
    let full = playlist.render(false);
    let tag = "#EXT-X-DATERANGE:ID=\"ad-7\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2027-01-15T08:00:00.500Z\",DURATION=6.000,X-ASSET-LIST=\"../asset-list/7.json\"";
    let first_extinf = full.find("#EXTINF").unwrap();
    let edited = format!(
        "{}{tag}\n#EXT-X-CUE-OUT:6\n{}",
        &full[..first_extinf],
        &full[first_extinf..]
    );
    let delta = delta_update(&edited, skipped).unwrap();
    assert!(delta.contains(tag), "{delta}");
    assert!(
        !delta.contains("#EXT-X-CUE-OUT"),
        "a skipped segment's own tags go"
    );
    let lines: Vec<&str> = delta.lines().collect();
    let skip = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-SKIP:"))
        .unwrap();
    assert_eq!(lines[skip + 1], tag);
    assert!(lines[skip + 2].starts_with("#EXT-X-MAP:"));
    // Everything after the skipped segments is the plugin's output, untouched.
    let tail = &edited[edited.find(lines[skip + 3]).unwrap()..];
    assert!(delta.ends_with(tail));
}

#[test]
fn nothing_to_skip_or_too_few_segments_is_answered_whole() {
    let text =
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init0.mp4\"\n#EXTINF:2.0,\nseg1.m4s\n";
    assert_eq!(delta_update(text, 0), None);
    assert_eq!(delta_update(text, 1), None);
    assert_eq!(delta_update(text, 5), None);
    let skipped = "#EXTM3U\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXTINF:2.0,\nseg2.m4s\n";
    assert_eq!(delta_update(skipped, 1), None);
    assert_eq!(skipped_segments(skipped), Some(1));
    assert_eq!(skipped_segments(text), None);
}
