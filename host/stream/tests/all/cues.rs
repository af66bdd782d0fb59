//! Cues are placed on the program-date-time timeline: a SCTE-35 cue at its PTS, an API
//! cue at once; they are published without waiting for the next part.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use weir_media::{CueEvent, CueKind, MediaEvent};
use weir_stream::{Input, StreamKind};

use crate::harness::*;

pub fn splice_out(id: u32, pts: Option<i64>) -> CueEvent {
    CueEvent {
        id,
        kind: CueKind::SpliceInsert,
        out_of_network: true,
        pts,
        duration: Some(Duration::from_secs(30)),
        segmentation_type: None,
        section: Bytes::new(),
    }
}

fn start_date_ms(playlist: &str, id: u32) -> u64 {
    let tag = format!("#EXT-X-DATERANGE:ID=\"splice-{id}\",START-DATE=\"");
    let line = playlist
        .lines()
        .find(|l| l.starts_with(&tag))
        .unwrap_or_else(|| panic!("no DATERANGE for cue {id}:\n{playlist}"));
    let date = line[tag.len()..].split('"').next().unwrap_or_default();
    parse_date_ms(date)
}

#[test]
fn a_publishers_cue_is_placed_at_its_pts_and_an_api_cue_at_once() {
    let mut h = Harness::passthrough(settings(2000, 500));
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(4.0), &mut [(&mut publisher, Feed::Publisher)]);

    // A splice 1.5 s ahead, in the contribution's 90 kHz timeline (DTS 0 is T0).
    let before = h.rendition("src").published.len();
    h.input(Input::Media(MediaEvent::Cue(splice_out(
        7,
        Some(5 * 90_000 + 45_000),
    ))));
    let src = h.rendition("src");
    assert_eq!(
        src.published.len(),
        before + 1,
        "published at once, not at the next part"
    );
    assert_eq!(start_date_ms(&src.last_text(), 7), T0_UNIX_MS + 5_500);

    // The operator's cue: now.
    h.progress(secs(4.2), &mut [(&mut publisher, Feed::Publisher)]);
    h.input(Input::Cue(splice_out(8, None)));
    let at = start_date_ms(&h.rendition("src").last_text(), 8);
    let now = T0_UNIX_MS + 4_200;
    assert!(at.abs_diff(now) <= 50, "placed at {at}, now {now}");
    assert_eq!(h.metrics.cues.load(Ordering::Relaxed), 2);
}

#[test]
fn a_cue_before_the_first_tracks_waits_for_them() {
    let mut h = Harness::passthrough(settings(2000, 500));
    h.input(Input::Attach);
    h.input(Input::Cue(splice_out(9, Some(90_000))));
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(4.0), &mut [(&mut publisher, Feed::Publisher)]);
    assert_eq!(
        start_date_ms(&h.rendition("src").last_text(), 9),
        T0_UNIX_MS + 1_000
    );
}

#[test]
fn an_api_cue_reaches_every_rung_of_a_transcoded_stream() {
    let mut h = Harness::new(
        settings(2000, 500),
        StreamKind::Transcoded {
            audio_bitrate: 128_000,
            pattern: false,
        },
    );
    h.input(Input::Encoder(weir_encoder::EncoderEvent::Ladder(rungs())));
    let mut a = Source::new(vec![video_track(1280, 720)], Duration::ZERO);
    let mut b = Source::new(vec![video_track(640, 360)], Duration::ZERO);
    h.progress(
        secs(4.0),
        &mut [(&mut a, Feed::Rung(0)), (&mut b, Feed::Rung(1))],
    );
    h.input(Input::Cue(splice_out(3, None)));
    let hi = start_date_ms(&h.rendition("720p").last_text(), 3);
    let lo = start_date_ms(&h.rendition("360p").last_text(), 3);
    assert_eq!(hi, lo, "the same place on every rung");
    assert_eq!(h.metrics.cues.load(Ordering::Relaxed), 1, "counted once");
}
