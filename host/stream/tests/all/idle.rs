//! A stream with no publisher ends after `idle_end` with `EXT-X-ENDLIST`, and not before.

use std::time::Duration;

use weir_stream::Input;

use crate::harness::*;

#[test]
fn a_stream_without_a_publisher_ends_after_idle_end_and_not_before() {
    let s = settings(2000, 500);
    let idle_end = s.idle_end;
    let mut h = Harness::passthrough(s);
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(4.0), &mut [(&mut publisher, Feed::Publisher)]);
    h.input(Input::Detach);
    h.idle(secs(4.0) + idle_end - h.tick);
    assert!(!h.core.is_ended());
    h.idle(secs(40.0));
    let ended = h.event_time(&Event::Ended).expect("the stream ended");
    // Counted from the last frame (3.967 s), on the tick.
    let last = Duration::from_millis(3967);
    assert!(
        ended >= last + idle_end && ended <= last + idle_end + h.tick,
        "{ended:?}"
    );
    let text = h.rendition("src").last_text();
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(!text.contains("PRELOAD-HINT"), "{text}");
    assert!(h.rendition("src").last().ended);
    // An ended core takes nothing more.
    let published = h.rendition("src").published.len();
    h.input(Input::Attach);
    h.progress(
        secs(42.0),
        &mut [(&mut Source::video(secs(40.0)), Feed::Publisher)],
    );
    assert_eq!(h.rendition("src").published.len(), published);
}

#[test]
fn a_stalled_publisher_on_the_standby_slate_counts_as_idle() {
    let s = weir_stream::StreamSettings {
        standby: true,
        ..settings(2000, 500)
    };
    let idle_end = s.idle_end;
    let mut h = Harness::passthrough(s);
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(4.0), &mut [(&mut publisher, Feed::Publisher)]);
    // The session stays open, but sends nothing: the slate plays, and the stream still ends.
    h.idle(secs(6.0));
    let mut slate = Source::new(vec![video_track(640, 360)], h.elapsed);
    h.progress(secs(40.0), &mut [(&mut slate, Feed::Standby)]);
    let ended = h.event_time(&Event::Ended).expect("the stream ended");
    assert!(
        ended <= Duration::from_millis(3967) + idle_end + h.tick,
        "{ended:?}"
    );
    assert!(h.events().contains(&Event::StopStandby));
}

#[test]
fn a_publisher_that_stays_keeps_the_stream_alive() {
    let mut h = Harness::passthrough(settings(1000, 200));
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(45.0), &mut [(&mut publisher, Feed::Publisher)]);
    assert!(!h.core.is_ended());
    assert!(h.rendition("src").first_with("GAP").is_none());
    // 1 s segments, 200 ms parts: 5 parts a segment, each one listed on time.
    let text = h.rendition("src").last_text();
    assert!(
        text.contains("#EXT-X-PART-INF:PART-TARGET=0.20000"),
        "{text}"
    );
    let edge = edge_pdt_ms(&text);
    assert!(T0_UNIX_MS + 45_000 - edge <= 250);
}

#[test]
fn end_finishes_every_listed_rendition_at_once() {
    let mut h = Harness::passthrough(settings(2000, 500));
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(5.0), &mut [(&mut publisher, Feed::Publisher)]);
    h.input(Input::End);
    assert_eq!(h.events(), vec![Event::Ended]);
    assert!(h.rendition("src").last().ended);
}

/// The discontinuity number of a playlist's last segment: its
/// `EXT-X-DISCONTINUITY-SEQUENCE` plus the `EXT-X-DISCONTINUITY` tags it lists.
fn last_discontinuity_number(text: &str) -> u64 {
    let base = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:"))
        .map_or(0, |v| v.parse().unwrap());
    base + text
        .lines()
        .filter(|l| *l == "#EXT-X-DISCONTINUITY")
        .count() as u64
}

#[test]
fn a_restarted_stream_goes_on_with_higher_discontinuity_numbers() {
    // The first run: a publisher, a loss and a return (a discontinuity), 20 s in all.
    let mut h = Harness::passthrough(settings(2000, 500));
    h.input(Input::Attach);
    let mut first = Source::video(Duration::ZERO);
    h.progress(secs(8.0), &mut [(&mut first, Feed::Publisher)]);
    h.input(Input::Detach);
    h.idle(secs(10.0));
    h.input(Input::Attach);
    let mut back = Source::video(secs(10.0));
    h.progress(secs(20.0), &mut [(&mut back, Feed::Publisher)]);
    let before = h.rendition("src").last_text();
    assert!(before.contains("#EXT-X-DISCONTINUITY\n"), "{before}");
    let served = last_discontinuity_number(&before);

    // The process restarts 3 s later: a new core, a new publisher.
    let mut h = Harness::starting_at(
        settings(2000, 500),
        weir_stream::StreamKind::Passthrough,
        T0_UNIX_MS + 23_000,
    );
    h.input(Input::Attach);
    let mut again = Source::video(Duration::ZERO);
    h.progress(secs(6.0), &mut [(&mut again, Feed::Publisher)]);
    let after = h.rendition("src").last_text();
    let base = after
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-DISCONTINUITY-SEQUENCE:"))
        .map(|v| v.parse::<u64>().unwrap())
        .expect("a discontinuity sequence");
    // Every segment of the new run numbers above every segment the first run served, so
    // a player that follows the playlist across the restart sees a new discontinuity.
    assert!(base > served, "{served} then {base}:\n{before}\n{after}");
    assert_eq!(base, weir_stream::discontinuity_base(T0_UNIX_MS + 23_000));
}
