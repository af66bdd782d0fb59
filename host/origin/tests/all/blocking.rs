//! Blocking playlist reload on a virtual clock.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use weir_media::StreamRegistry;

use crate::support::{get, origin, snapshot, Live, TARGET};

#[tokio::test(start_paused = true)]
async fn returns_as_soon_as_the_part_is_published() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);

    let start = Instant::now();
    let request = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=4&_HLS_part=1").await }
    });
    tokio::time::sleep(Duration::from_millis(480)).await;
    assert!(
        !request.is_finished(),
        "must block until part 1 of msn 4 exists"
    );

    live.rendition.publish(snapshot(2, 0, 4, 2));
    let got = request.await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(480),
        "no extra delay"
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "#EXTM3U\n#version 2\n");
    assert_eq!(got.header("content-type"), "application/vnd.apple.mpegurl");
    assert_eq!(got.header("cache-control"), "public, max-age=12");
}

#[tokio::test(start_paused = true)]
async fn a_version_that_does_not_satisfy_keeps_it_blocked() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);
    let request = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=5").await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    live.rendition.publish(snapshot(2, 0, 4, 2));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !request.is_finished(),
        "a new part of msn 4 does not complete msn 5"
    );
    live.rendition.publish(snapshot(3, 0, 6, 0));
    assert_eq!(request.await.unwrap().text(), "#EXTM3U\n#version 3\n");
}

#[tokio::test(start_paused = true)]
async fn never_published_is_503_after_exactly_three_target_durations() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);

    let start = Instant::now();
    let request = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=5&_HLS_part=0").await }
    });
    tokio::time::sleep(TARGET * 3 - Duration::from_millis(1)).await;
    assert!(
        !request.is_finished(),
        "still waiting 1 ms before the limit"
    );
    let got = request.await.unwrap();
    assert_eq!(start.elapsed(), TARGET * 3);
    assert_eq!(got.status, 503);
    assert_eq!(got.header("cache-control"), "no-store");
    drop(live);
}

#[tokio::test(start_paused = true)]
async fn too_far_ahead_is_400_at_once() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);
    let start = Instant::now();
    let got = get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=6").await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(got.status, 400);
    assert!(
        got.text().contains("more than two segments"),
        "{}",
        got.text()
    );
    // Two past the last complete segment (3) is still allowed to block.
    let edge = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=5").await }
    });
    tokio::task::yield_now().await;
    assert!(!edge.is_finished());
    drop(live);
}

#[tokio::test(start_paused = true)]
async fn already_satisfied_returns_at_once() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 2));
    let origin = origin(registry);
    let start = Instant::now();
    for query in ["_HLS_msn=3", "_HLS_msn=4&_HLS_part=1", "_HLS_msn=0"] {
        let got = get(&origin, &format!("/live/a/720p/index.m3u8?{query}")).await;
        assert_eq!(got.status, 200, "{query}");
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn one_blocked_stream_does_not_delay_another() {
    let registry = StreamRegistry::new();
    let a = Live::publish(&registry, "a");
    let b = Live::publish(&registry, "b");
    a.rendition.publish(snapshot(1, 0, 4, 1));
    b.rendition.publish(snapshot(1, 0, 9, 1));
    b.part(40, "b-part");
    let origin = origin(registry);

    let mut blocked = Vec::new();
    for _ in 0..50 {
        let origin = origin.clone();
        blocked.push(tokio::spawn(async move {
            get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=5").await
        }));
    }
    tokio::task::yield_now().await;
    let start = Instant::now();
    assert_eq!(get(&origin, "/live/b/720p/index.m3u8").await.status, 200);
    assert_eq!(get(&origin, "/live/b/720p/part40.m4s").await.body, "b-part");
    assert_eq!(
        get(&origin, "/live/b/720p/index.m3u8?_HLS_msn=9&_HLS_part=0")
            .await
            .status,
        200
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert!(blocked.iter().all(|t| !t.is_finished()));
    a.rendition.publish(snapshot(2, 0, 6, 0));
    for task in blocked {
        assert_eq!(task.await.unwrap().status, 200);
    }
}

#[tokio::test(start_paused = true)]
async fn waits_for_the_first_playlist_of_a_new_stream() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    let origin = origin(registry);
    let start = Instant::now();
    let request = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    live.rendition.publish(snapshot(1, 0, 0, 1));
    let got = request.await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(got.header("cache-control"), "public, max-age=1");
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_never_starts_is_404_after_the_first_playlist_wait() {
    let registry = StreamRegistry::new();
    let _live = Live::publish(&registry, "a");
    let origin = origin(registry);
    let start = Instant::now();
    let got = get(&origin, "/live/a/720p/index.m3u8").await;
    assert_eq!(got.status, 404);
    assert_eq!(got.header("cache-control"), "no-cache");
    assert_eq!(start.elapsed(), origin.settings().first_playlist_wait);
}

#[tokio::test(start_paused = true)]
async fn publisher_leaving_releases_blocked_requests() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);
    let start = Instant::now();
    let request = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=5").await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(live);
    let got = request.await.unwrap();
    assert_eq!(got.status, 404);
    assert_eq!(start.elapsed(), Duration::from_millis(100));
}

#[tokio::test]
async fn skip_serves_the_delta_update_when_there_is_one() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);
    let full = get(&origin, "/live/a/720p/index.m3u8?_HLS_skip=YES").await;
    assert_eq!(
        full.text(),
        "#EXTM3U\n#version 1\n",
        "no delta yet: the full playlist"
    );
    let mut with_skip = snapshot(2, 0, 4, 2);
    with_skip.playlist_skip = Some(Bytes::from_static(b"#EXTM3U\n#EXT-X-SKIP\n"));
    live.rendition.publish(with_skip);
    for q in [
        "_HLS_skip=YES",
        "_HLS_skip=v2",
        "_HLS_msn=4&_HLS_part=1&_HLS_skip=YES",
    ] {
        let got = get(&origin, &format!("/live/a/720p/index.m3u8?{q}")).await;
        assert_eq!(got.text(), "#EXTM3U\n#EXT-X-SKIP\n", "{q}");
    }
    assert_eq!(
        get(&origin, "/live/a/720p/index.m3u8").await.text(),
        "#EXTM3U\n#version 2\n"
    );
}

/// RFC 8216bis 6.2.5.2: a part index past the last part of segment M is part 0 of segment
/// M+1, and the request waits for it.
#[tokio::test(start_paused = true)]
async fn a_part_past_the_end_of_its_segment_waits_for_part_0_of_the_next() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    // Segment 3 is complete with two parts (10, 11); segment 4 has none yet.
    live.part(10, "a");
    live.part(11, "b");
    live.rendition.complete_segment(3, 10..12);
    live.rendition.publish(snapshot(1, 0, 4, 0));
    let origin = origin(registry);

    let past_complete = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=3&_HLS_part=2").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !past_complete.is_finished(),
        "part 2 of msn 3 (which has two parts) means part 0 of msn 4"
    );
    // Still within segment 3: answered at once.
    assert_eq!(
        get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=3&_HLS_part=1")
            .await
            .text(),
        "#EXTM3U\n#version 1\n"
    );
    live.part(12, "c");
    live.rendition.publish(snapshot(2, 0, 4, 1));
    let got = past_complete.await.unwrap();
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "#EXTM3U\n#version 2\n");

    // Part 4 of the segment in progress; the segment ends after two parts.
    let past_open = tokio::spawn({
        let origin = origin.clone();
        async move { get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=4&_HLS_part=4").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    live.part(13, "d");
    live.rendition.complete_segment(4, 12..14);
    live.rendition.publish(snapshot(3, 0, 5, 0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !past_open.is_finished(),
        "msn 4 ended with two parts: part 4 of it is part 0 of msn 5"
    );
    live.rendition.publish(snapshot(4, 0, 5, 1));
    assert_eq!(past_open.await.unwrap().text(), "#EXTM3U\n#version 4\n");
}

/// RFC 8216bis 6.2.5.2 (SHOULD): an `_HLS_msn` more than two past the last complete segment,
/// or an `_HLS_part` more than the Advance Part Limit past the last part, is 400 at once; a
/// playlist that has ended ignores both directives.
#[tokio::test(start_paused = true)]
async fn past_the_advance_limits_is_400_at_once() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    // The last complete segment is 3; segment 4 has one part (index 0).
    live.rendition.publish(snapshot(1, 0, 4, 1));
    let origin = origin(registry);
    let start = Instant::now();
    // PART-TARGET 0.5 s: the Advance Part Limit is 3 / 0.5 = 6 parts.
    for query in [
        "_HLS_msn=6",
        "_HLS_msn=6&_HLS_part=0",
        "_HLS_msn=4&_HLS_part=7",
        "_HLS_msn=5&_HLS_part=6",
    ] {
        let got = get(&origin, &format!("/live/a/720p/index.m3u8?{query}")).await;
        assert_eq!(got.status, 400, "{query}: {}", got.text());
        assert_eq!(got.header("cache-control"), "no-store");
        let reason = if query.contains("part") && !query.starts_with("_HLS_msn=6") {
            "more than 6 parts (the Advance Part Limit) past the last part"
        } else {
            "more than two segments past the last complete one (3)"
        };
        assert!(got.text().contains(reason), "{query}: {}", got.text());
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    // At the limits, requests block.
    let mut blocked = Vec::new();
    for query in [
        "_HLS_msn=5",
        "_HLS_msn=5&_HLS_part=5",
        "_HLS_msn=4&_HLS_part=6",
    ] {
        let origin = origin.clone();
        blocked.push((
            query,
            tokio::spawn(
                async move { get(&origin, &format!("/live/a/720p/index.m3u8?{query}")).await },
            ),
        ));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for (query, task) in &blocked {
        assert!(!task.is_finished(), "{query} must block");
    }
    // Once the playlist has ended, directives are ignored.
    let mut ended = snapshot(2, 0, 5, 0);
    ended.ended = true;
    live.rendition.publish(ended);
    for (query, task) in blocked {
        assert_eq!(task.await.unwrap().status, 200, "{query}");
    }
    let got = get(&origin, "/live/a/720p/index.m3u8?_HLS_msn=99&_HLS_part=99").await;
    assert_eq!(got.status, 200);
}
