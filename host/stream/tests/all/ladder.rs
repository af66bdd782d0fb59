//! A transcoded stream: the encoder's ladder becomes one rendition per rung, its output is
//! routed to them, and an encoder that dies is restarted on the same rungs after a
//! back-off, its timestamps continuing.

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use weir_encoder::EncoderEvent;
use weir_media::MediaEvent;
use weir_stream::{Input, StreamKind, StreamOptions, StreamPolicy};

use crate::harness::*;

fn transcoded(slate: bool) -> Harness {
    transcoded_at(transcoded_settings(slate), T0_UNIX_MS)
}

fn transcoded_settings(slate: bool) -> weir_stream::StreamSettings {
    weir_stream::StreamSettings {
        policy: StreamPolicy {
            default: StreamOptions {
                slate,
                ..StreamOptions::default()
            },
            ..StreamPolicy::default()
        },
        ..settings(2000, 500)
    }
}

/// A transcoded stream whose wall clock starts at `unix_ms`.
fn transcoded_at(settings: weir_stream::StreamSettings, unix_ms: u64) -> Harness {
    Harness::starting_at(
        settings,
        StreamKind::Transcoded {
            audio_bitrate: 128_000,
            pattern: false,
        },
        unix_ms,
    )
}

fn rung_sources(at: Duration) -> (Source, Source) {
    (
        Source::new(vec![video_track(1280, 720), audio_track()], at),
        Source::new(vec![video_track(640, 360), audio_track()], at),
    )
}

/// A transcoded stream with a publisher, whose encoder has announced the ladder and fed
/// both rungs until `until`; the rungs' sources go on from there.
fn ladder_running_for(until: Duration) -> (Harness, Source, Source) {
    let mut h = transcoded(false);
    h.input(Input::Attach);
    h.input(Input::Media(Source::video(Duration::ZERO).next_event()));
    h.input(Input::Encoder(EncoderEvent::Ladder(rungs())));
    let (mut a, mut b) = rung_sources(Duration::ZERO);
    h.progress(
        until,
        &mut [(&mut a, Feed::Rung(0)), (&mut b, Feed::Rung(1))],
    );
    (h, a, b)
}

#[test]
fn the_ladder_becomes_one_listed_rendition_per_rung() {
    let mut h = transcoded(true);
    assert_eq!(
        h.events(),
        vec![Event::StartEncoder {
            pts: 0,
            rungs: None,
            restart: false
        }]
    );
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    let tracks = publisher.next_event();
    h.input(Input::Media(tracks));
    h.input(Input::Encoder(EncoderEvent::Ladder(rungs())));
    let names: Vec<&str> = h.renditions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["720p", "360p", "slate-720p", "slate-360p"]);
    assert!(h.events().contains(&Event::StartSlateLadder(vec![
        "slate-720p".to_owned(),
        "slate-360p".to_owned()
    ])));

    let (mut a, mut b) = rung_sources(Duration::ZERO);
    let mut s = Source::new(vec![video_track(1280, 720)], Duration::ZERO);
    h.progress(
        secs(6.0),
        &mut [
            (&mut a, Feed::Rung(0)),
            (&mut b, Feed::Rung(1)),
            (&mut s, Feed::Slate),
        ],
    );
    let mv = h.multivariant.clone().unwrap();
    let hi = mv.find("720p/index.m3u8").unwrap();
    let lo = mv.find("360p/index.m3u8").unwrap();
    assert!(hi < lo, "highest first:\n{mv}");
    assert!(
        !mv.contains("slate"),
        "the slate renditions are hidden:\n{mv}"
    );
    // Each rung reports the other.
    assert!(h
        .rendition("720p")
        .last_text()
        .contains("#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\""));
    assert!(h
        .rendition("360p")
        .last_text()
        .contains("#EXT-X-RENDITION-REPORT:URI=\"../720p/index.m3u8\""));
    // Slate media into the stream's own inputs goes nowhere in a transcoded stream.
    assert!(h.rendition("slate-720p").published.is_empty());
}

#[test]
fn a_dead_encoder_is_restarted_on_the_same_rungs_with_a_growing_pause() {
    let (mut h, mut a, mut b) = ladder_running_for(secs(3.0));
    let msn_before = h.rendition("720p").last().next_msn;

    // It dies 3 s after it started: a quick death, so the restart waits 500 ms.
    h.events.clear();
    h.input(Input::EncoderStopped);
    assert!(h.events().is_empty(), "{:?}", h.events());
    h.idle(secs(3.5) - Duration::from_millis(1));
    assert!(h.events().is_empty());
    h.idle(secs(3.5) + h.tick);
    // Last video frame sent: frame 89 at 3 s (dts 267000); the new encoder starts one
    // 30 fps frame... 3000 ticks after it.
    let last_pts = (a.frame - 1) * 3000;
    assert_eq!(
        h.events(),
        vec![
            Event::StartEncoder {
                pts: last_pts + 3000,
                rungs: Some(2),
                restart: true
            },
            Event::ToEncoder("tracks"),
        ]
    );
    let restarted = h.events[0].0;
    assert!(restarted >= secs(3.5) && restarted <= secs(3.5) + h.tick);

    // Dies again at once: 1 s this time.
    h.events.clear();
    h.input(Input::EncoderStopped);
    h.idle(restarted + secs(1.0) + h.tick);
    let second = h.events[0].0;
    assert!(second >= restarted + secs(1.0) && second <= restarted + secs(1.0) + h.tick);

    // Runs 10 s, then dies: restarted at once.
    a.start = h.elapsed - Duration::from_millis((a.frame * 1000 / 30) as u64);
    b.start = a.start;
    a.aac_frame = a.frame * 48_000 / 30 / 1024;
    b.aac_frame = a.aac_frame;
    h.progress(
        second + secs(10.0),
        &mut [(&mut a, Feed::Rung(0)), (&mut b, Feed::Rung(1))],
    );
    h.events.clear();
    h.input(Input::EncoderStopped);
    assert!(matches!(
        h.events()[0],
        Event::StartEncoder { restart: true, .. }
    ));

    // The rungs' renditions lived through it: same renditions, numbering continued.
    assert_eq!(h.renditions.len(), 2);
    assert!(h.rendition("720p").last().next_msn > msn_before);
    h.rendition("720p").assert_inits(1);
}

#[test]
fn a_transcoded_stream_ends_after_its_encoder_drains() {
    let (mut h, mut a, mut b) = ladder_running_for(secs(4.0));
    h.input(Input::Detach);
    // The encoder keeps the rungs on cadence (slate) while nobody publishes.
    h.progress(
        secs(30.0),
        &mut [(&mut a, Feed::Rung(0)), (&mut b, Feed::Rung(1))],
    );
    let stop = h
        .event_time(&Event::StopEncoder)
        .expect("the encoder is stopped");
    assert!(
        stop >= secs(24.0) && stop <= secs(24.0) + h.tick,
        "{stop:?}"
    );
    assert!(!h.core.is_ended(), "it waits for the encoder's last frames");
    // Its last output still reaches the rungs, then the stream ends.
    let before = h.rendition("720p").published.len();
    h.progress(
        secs(30.5),
        &mut [(&mut a, Feed::Rung(0)), (&mut b, Feed::Rung(1))],
    );
    assert!(h.rendition("720p").published.len() > before);
    h.input(Input::EncoderStopped);
    assert!(h.core.is_ended());
    assert!(h.rendition("720p").last().ended && h.rendition("360p").last().ended);
}

#[test]
fn the_publishers_media_goes_to_the_encoder_and_its_tracks_are_kept_for_a_restart() {
    let mut h = transcoded(false);
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(1.0), &mut [(&mut publisher, Feed::Publisher)]);
    let sent = h
        .events()
        .iter()
        .filter(|e| **e == Event::ToEncoder("sample"))
        .count();
    assert_eq!(sent, 31, "frames 0 to 30, due from 0 s to 1 s");
    assert_eq!(h.events()[1], Event::ToEncoder("tracks"));
    // Cues from the publisher go through the encoder too (it maps their PTS), counted once.
    h.input(Input::Media(MediaEvent::Cue(crate::cues::splice_out(
        1, None,
    ))));
    assert_eq!(h.events().last(), Some(&Event::ToEncoder("cue")));
    assert_eq!(h.metrics.cues.load(Ordering::Relaxed), 1);
}

/// The rungs' packagers start as each rung's first encoded output arrives, a few hundred
/// milliseconds apart (the bigger picture takes longer); across a one-second boundary of the
/// wall clock their numbering still agrees: the same media sequence number is the same media
/// on every rung, as rendition reports and players' switching assume (a full e2e run once
/// found 1080p's segment n starting at 4.18 s and 480p's at 6.18 s).
#[test]
fn rungs_that_start_either_side_of_a_second_boundary_are_numbered_alike() {
    // The wall clock is 200 ms before a whole second (half a 2 s target: the clock's
    // numbering step) when the ladder is announced; the second rung's output starts 400 ms
    // later, past it.
    let h = rungs_started_apart(transcoded_at(transcoded_settings(false), T0_UNIX_MS + 800));
    let (hi, lo) = first_segments(&h);
    assert_eq!(hi, lo);
}

/// Announces the ladder, then feeds the 720p rung from 0 s and the 360p rung from 400 ms
/// (the same media), for 9 s.
fn rungs_started_apart(mut h: Harness) -> Harness {
    h.input(Input::Attach);
    h.input(Input::Media(Source::video(Duration::ZERO).next_event()));
    h.input(Input::Encoder(EncoderEvent::Ladder(rungs())));
    let mut a = Source::new(vec![video_track(1280, 720), audio_track()], Duration::ZERO);
    let mut b = Source::new(
        vec![video_track(640, 360), audio_track()],
        Duration::from_millis(400),
    );
    h.progress(
        secs(9.0),
        &mut [(&mut a, Feed::Rung(0)), (&mut b, Feed::Rung(1))],
    );
    h
}

/// Each rung's first segment: (msn, parts).
fn first_segments(h: &Harness) -> ((u64, Range<u64>), (u64, Range<u64>)) {
    let hi = &h.rendition("720p").segments;
    let lo = &h.rendition("360p").segments;
    assert!(hi.len() >= 3 && lo.len() >= 3, "720p {hi:?}, 360p {lo:?}");
    (hi[0].clone(), lo[0].clone())
}

/// Reservations as `server.state_dir` keeps them: the 360p rung's earlier run reached
/// further than the clock says now (a clock that stepped back).
#[derive(Debug)]
struct Reserved(u64, u64);

struct Reservation {
    floor: Option<(u64, u64)>,
}

impl weir_stream::Reservations for Reserved {
    fn rendition(
        &self,
        _stream: &str,
        rendition: &str,
        _settings: &weir_packager::Settings,
    ) -> Option<Box<dyn weir_stream::Reservation>> {
        let floor = (rendition == "360p").then_some((self.0, self.1));
        Some(Box::new(Reservation { floor }))
    }
}

impl weir_stream::Reservation for Reservation {
    fn start(&mut self, clock: (u64, u64)) -> (u64, u64) {
        match self.floor {
            Some(f) => (clock.0.max(f.0), clock.1.max(f.1)),
            None => clock,
        }
    }

    fn cover(&mut self, _used: (u64, u64)) {}
}

/// After a restart with `server.state_dir`, one rung's reservation may be above the clock;
/// every rung then starts above it, not that rung alone.
#[test]
fn a_ladder_starts_above_every_rungs_reservation() {
    // The clock's numbers now: msn 1_800_000_000, part 7_200_000_000.
    let settings = weir_stream::StreamSettings {
        numbering: Some(Arc::new(Reserved(1_800_000_007, 7_200_000_031))),
        ..transcoded_settings(false)
    };
    let h = rungs_started_apart(transcoded_at(settings, T0_UNIX_MS));
    let (hi, lo) = first_segments(&h);
    assert_eq!(hi, lo);
    assert_eq!(hi, (1_800_000_007, 7_200_000_031..7_200_000_035));
}
