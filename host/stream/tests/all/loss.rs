//! A stalled contribution: declared lost after `loss_timeout`, then gap parts on the
//! stream's cadence; a returning publisher continues behind a discontinuity.

use std::sync::atomic::Ordering;
use std::time::Duration;

use weir_stream::Input;

use crate::harness::*;

#[test]
fn loss_is_declared_after_the_timeout_and_gap_parts_keep_the_cadence() {
    let s = settings(2000, 500);
    let (loss_timeout, part) = (s.loss_timeout, s.packager.part_target);
    let mut h = Harness::passthrough(s);
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(6.0), &mut [(&mut publisher, Feed::Publisher)]);
    // The last frame went out at 5.967 s; the publisher stalls (its session stays open).
    let last_media = Duration::from_millis(5967);
    let src = h.rendition("src");
    assert!(!src.last_text().contains("GAP"));
    h.idle(secs(14.0));

    let src = h.rendition("src");
    let first_gap = src
        .first_with("GAP=YES")
        .expect("gap parts during the loss");
    assert!(
        first_gap >= last_media + loss_timeout && first_gap <= last_media + loss_timeout + h.tick,
        "loss declared at {first_gap:?}, last media at {last_media:?}"
    );
    assert_eq!(h.metrics.contribution_losses.load(Ordering::Relaxed), 1);
    assert!(h.metrics.gap_parts_published.load(Ordering::Relaxed) >= 12);

    // From then on, the live edge keeps up with the wall clock, one part at a time.
    let during: Vec<_> = src
        .published
        .iter()
        .filter(|(t, _)| *t >= first_gap)
        .collect();
    assert!(
        during.len() >= 12,
        "{} playlists during the loss",
        during.len()
    );
    for (t, snapshot) in &during {
        let text = String::from_utf8_lossy(&snapshot.playlist);
        let edge = edge_pdt_ms(&text);
        let now = T0_UNIX_MS + t.as_millis() as u64;
        assert!(
            edge <= now,
            "the edge ({edge}) is ahead of the clock ({now}) at {t:?}"
        );
        assert!(
            now - edge <= (part + h.tick).as_millis() as u64,
            "the edge lags the clock by {} ms at {t:?}",
            now - edge
        );
    }
    for pair in during[1..].windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= part - h.tick && gap <= part + h.tick,
            "gap parts {gap:?} apart"
        );
    }
    // No part body was left open.
    assert!(src
        .parts
        .values()
        .rev()
        .skip(1)
        .all(|(_, finished)| *finished));
}

#[test]
fn a_returning_publisher_continues_behind_a_discontinuity_with_its_own_parameters() {
    let mut h = Harness::passthrough(settings(2000, 500));
    h.input(Input::Attach);
    let mut first = Source::video(Duration::ZERO);
    h.progress(secs(6.0), &mut [(&mut first, Feed::Publisher)]);
    h.input(Input::Detach);
    h.idle(secs(9.0));
    assert!(h.rendition("src").last_text().contains("GAP=YES"));
    assert!(h
        .multivariant
        .as_deref()
        .unwrap()
        .contains("RESOLUTION=1280x720"));

    // Another publisher, with another picture size and timestamps from 0.
    h.input(Input::Attach);
    let mut second = Source::new(vec![video_track(640, 360)], secs(9.0));
    h.progress(secs(16.0), &mut [(&mut second, Feed::Publisher)]);

    let src = h.rendition("src");
    let text = src.last_text();
    assert!(text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    // a new init segment for the new parameters
    src.assert_inits(2);
    assert!(h
        .multivariant
        .as_deref()
        .unwrap()
        .contains("RESOLUTION=640x360"));
    // Numbering and program date time continue: the edge is the clock again, and no new
    // gap part was published after the return.
    let edge = edge_pdt_ms(&text);
    let now = T0_UNIX_MS + 16_000;
    assert!(now - edge <= 600, "edge {edge}, now {now}");
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take_while(|l| *l != "#EXT-X-DISCONTINUITY")
        .collect();
    assert!(tail.iter().all(|l| !l.contains("GAP")), "{text}");
    assert_eq!(
        h.metrics
            .contribution_losses
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}
