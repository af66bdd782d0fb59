//! A passed-through stream's stand-by slate: it follows the gap of a lost contribution,
//! the playlist never shows the gap as its live edge, and a returning publisher takes over
//! at its first keyframe.

use std::sync::atomic::Ordering;
use std::time::Duration;

use weir_media::MediaEvent;
use weir_stream::Input;

use crate::harness::*;

fn standby_settings() -> weir_stream::StreamSettings {
    weir_stream::StreamSettings {
        standby: true,
        ..settings(2000, 500)
    }
}

#[test]
fn the_standby_slate_follows_the_gap_and_playlists_wait_for_its_first_part() {
    let mut h = Harness::passthrough(standby_settings());
    h.input(Input::Attach);
    let mut publisher = Source::new(vec![video_track(1280, 720), audio_track()], Duration::ZERO);
    h.progress(secs(6.0), &mut [(&mut publisher, Feed::Publisher)]);
    h.idle(secs(8.0));
    let start = h
        .event_time(&Event::StartStandby(2))
        .expect("the stand-by slate starts, with both kinds of track");
    assert!(start >= secs(5.967 + 1.5) && start <= secs(5.967 + 1.5) + h.tick);
    assert_eq!(h.metrics.standby_starts.load(Ordering::Relaxed), 1);
    // Until the slate's first part, the playlist shows neither the gap nor the slate.
    let before = h.rendition("src").published.len();
    assert!(h.rendition("src").first_with("GAP").is_none());

    // The driver plays the slate from now on.
    let mut slate = Source::new(vec![video_track(640, 360), audio_track()], h.elapsed);
    h.progress(secs(14.0), &mut [(&mut slate, Feed::Standby)]);
    let src = h.rendition("src");
    assert!(src.published.len() > before);
    for (t, s) in &src.published {
        let text = String::from_utf8_lossy(&s.playlist);
        let lines: Vec<&str> = text.lines().collect();
        let Some(gap) = lines
            .iter()
            .rposition(|l| *l == "#EXT-X-GAP" || l.contains("GAP=YES"))
        else {
            continue;
        };
        assert!(
            lines[gap..]
                .iter()
                .any(|l| l.starts_with("#EXT-X-PART:") && !l.contains("GAP")),
            "the gap is the live edge at {t:?}:\n{text}"
        );
    }
    let text = src.last_text();
    assert!(
        text.contains("#EXT-X-GAP\n") && text.contains("#EXT-X-DISCONTINUITY\n"),
        "{text}"
    );
    assert_eq!(src.inits, vec![0, 1]);
    // The stream keeps the publisher's parameters in its multivariant playlist.
    assert!(h
        .multivariant
        .as_deref()
        .unwrap()
        .contains("RESOLUTION=1280x720"));
}

#[test]
fn a_returning_publisher_takes_over_at_its_first_keyframe_with_other_parameters() {
    let mut h = Harness::passthrough(standby_settings());
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(6.0), &mut [(&mut publisher, Feed::Publisher)]);
    h.input(Input::Detach);
    h.idle(secs(8.0));
    assert_eq!(h.events(), vec![Event::StartStandby(1)]);
    let mut slate = Source::new(vec![video_track(640, 360)], h.elapsed);
    h.progress(secs(12.0), &mut [(&mut slate, Feed::Standby)]);

    // A new session at 12 s whose first 10 frames are not keyframes (it joined mid-GOP):
    // its keyframe, frame 30, is due at 12.334 s.
    h.input(Input::Attach);
    let mut back = Source::new(vec![video_track(1920, 1080)], secs(12.0));
    back.frame = 20;
    back.start = secs(12.0) - Duration::from_millis(20 * 1000 / 30);
    h.progress(
        secs(18.0),
        &mut [(&mut slate, Feed::Standby), (&mut back, Feed::Publisher)],
    );
    let stop = h.event_time(&Event::StopStandby).expect("the slate ends");
    assert_eq!(
        stop,
        secs(12.0) + Duration::from_millis(334),
        "at the keyframe"
    );
    let src = h.rendition("src");
    assert_eq!(
        src.inits,
        vec![0, 1, 2],
        "publisher, slate, publisher again"
    );
    let text = src.last_text();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2, "{text}");
    assert!(h
        .multivariant
        .as_deref()
        .unwrap()
        .contains("RESOLUTION=1920x1080"));
    // Slate media after the return goes nowhere.
    let parts = src.parts.len();
    h.input(Input::Standby(MediaEvent::Tracks(vec![video_track(
        640, 360,
    )])));
    assert_eq!(h.rendition("src").parts.len(), parts);
}
