//! Objects in, not yet in, and gone from the window; segments built once through the cache.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use weir_cache::{BoxFuture, Cache, CacheSettings, CachedObject, MokaStorage, Storage};
use weir_media::StreamRegistry;
use weir_origin::{Origin, OriginSettings};

use crate::support::{get, origin, snapshot, Live};

/// Three segments of two parts each: msn 0..3, parts 10..16, then part 16 open.
fn three_segments(live: &Live) {
    let mut seq = 10;
    for msn in 0..3 {
        let first = seq;
        for _ in 0..2 {
            live.part(seq, &format!("[{msn}.{seq}]"));
            seq += 1;
        }
        live.rendition.complete_segment(msn, first..seq);
    }
}

#[tokio::test]
async fn not_yet_is_404_and_evicted_is_410() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    three_segments(&live);
    live.rendition.publish(snapshot(1, 0, 3, 0));
    let origin = origin(registry);

    let part = get(&origin, "/live/a/720p/part10.m4s").await;
    assert_eq!(part.status, 200);
    assert_eq!(part.body, "[0.10]");
    assert_eq!(part.header("content-type"), "video/mp4");
    assert_eq!(part.header("content-length"), "6");
    assert_eq!(
        part.header("cache-control"),
        "public, max-age=300, immutable"
    );

    let future = get(&origin, "/live/a/720p/part17.m4s").await;
    assert_eq!(future.status, 404);
    assert_eq!(future.header("cache-control"), "no-cache");
    assert_eq!(get(&origin, "/live/a/720p/seg3.m4s").await.status, 404);

    // The window slides past segment 0, and on past its grace period (RFC 8216bis 6.2.2;
    // see `a_segment_that_left_the_playlist_stays_downloadable_for_a_while`).
    live.rendition.publish(snapshot(2, 6, 9, 0));
    for gone in [
        "/live/a/720p/part10.m4s",
        "/live/a/720p/part11.m4s",
        "/live/a/720p/seg0.m4s",
    ] {
        let got = get(&origin, gone).await;
        assert_eq!(got.status, 410, "{gone}");
        assert_eq!(
            got.text(),
            format!(
                "{} has left the live window\n",
                if gone.contains("seg") {
                    "segment"
                } else {
                    "part"
                }
            )
        );
    }
    assert_eq!(get(&origin, "/live/a/720p/part12.m4s").await.status, 200);
    assert_eq!(
        get(&origin, "/live/a/720p/seg1.m4s").await.body,
        "[1.12][1.13]"
    );
}

#[tokio::test]
async fn an_evicted_segment_is_410_even_when_cached() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    three_segments(&live);
    live.rendition.publish(snapshot(1, 0, 3, 0));
    let origin = origin(registry);
    assert_eq!(get(&origin, "/live/a/720p/seg0.m4s").await.status, 200);
    assert!(origin.cache().get("a/720p/seg0.m4s").await.is_some());
    live.rendition.publish(snapshot(2, 6, 9, 0));
    assert_eq!(get(&origin, "/live/a/720p/seg0.m4s").await.status, 410);
}

#[tokio::test]
async fn unknown_stream_rendition_and_objects_are_404() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    let origin = origin(registry);
    for path in [
        "/live/nope/master.m3u8",
        "/live/a/master.m3u8",
        "/live/nope/720p/index.m3u8",
        "/live/a/1080p/index.m3u8",
        "/live/a/720p/init.mp4",
        "/live/a/1080p/part1.m4s",
        "/elsewhere",
    ] {
        assert_eq!(get(&origin, path).await.status, 404, "{path}");
    }
    live.rendition.set_init(Bytes::from_static(b"ftypmoov"));
    live.stream
        .set_multivariant(Bytes::from_static(b"#EXTM3U\n#EXT-X-STREAM-INF\n"));
    let init = get(&origin, "/live/a/720p/init.mp4").await;
    assert_eq!(init.body, "ftypmoov");
    assert_eq!(init.header("content-type"), "video/mp4");
    let master = get(&origin, "/live/a/master.m3u8").await;
    assert_eq!(master.status, 200);
    assert_eq!(
        master.header("content-type"),
        "application/vnd.apple.mpegurl"
    );
}

/// Counts fills that reach the storage.
#[derive(Debug)]
struct CountingStorage {
    inner: MokaStorage,
    inserts: AtomicUsize,
}

impl Storage for CountingStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedObject>>> {
        self.inner.get(key)
    }
    fn insert(&self, key: String, object: Arc<CachedObject>) -> BoxFuture<'_, ()> {
        self.inserts.fetch_add(1, Ordering::SeqCst);
        self.inner.insert(key, object)
    }
    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        self.inner.invalidate(key)
    }
}

#[tokio::test]
async fn concurrent_segment_requests_concatenate_once() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.part(0, "[a]");
    // The segment's last part is still being written, so every request piles up on the
    // fill lock while the first one concatenates.
    let last = live.rendition.begin_part(1).unwrap();
    last.push(Bytes::from_static(b"[b"));
    live.rendition.complete_segment(0, 0..2);
    live.rendition.publish(snapshot(1, 0, 1, 0));

    let storage = Arc::new(CountingStorage {
        inner: MokaStorage::new(&CacheSettings::default()),
        inserts: AtomicUsize::new(0),
    });
    let origin = Arc::new(
        Origin::new(OriginSettings::default(), registry)
            .unwrap()
            .with_cache(Cache::with_storage(storage.clone())),
    );
    let mut requests = Vec::new();
    for _ in 0..50 {
        let origin = origin.clone();
        requests.push(tokio::spawn(async move {
            get(&origin, "/live/a/720p/seg0.m4s").await
        }));
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        origin.cache().fills_in_flight(),
        1,
        "one fill, the rest waiting on it"
    );
    assert!(requests.iter().all(|r| !r.is_finished()));
    last.push(Bytes::from_static(b"c]"));
    last.finish();
    for request in requests {
        let got = request.await.unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body, "[a][bc]");
        assert_eq!(got.header("content-length"), "7");
    }
    assert_eq!(
        storage.inserts.load(Ordering::SeqCst),
        1,
        "one concatenation"
    );
    assert_eq!(get(&origin, "/live/a/720p/seg0.m4s").await.body, "[a][bc]");
    assert_eq!(
        storage.inserts.load(Ordering::SeqCst),
        1,
        "later requests hit the cache"
    );
}

#[tokio::test]
async fn an_aborted_part_fails_the_segment_and_is_not_cached() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.part(0, "[a]");
    let broken = live.rendition.begin_part(1).unwrap();
    broken.push(Bytes::from_static(b"[b"));
    drop(broken);
    live.rendition.complete_segment(0, 0..2);
    live.rendition.publish(snapshot(1, 0, 1, 0));
    let origin = origin(registry);
    let got = get(&origin, "/live/a/720p/seg0.m4s").await;
    assert_eq!(got.status, 503);
    assert_eq!(got.text(), "part aborted before completion\n");
    assert!(origin.cache().get("a/720p/seg0.m4s").await.is_none());
}

/// RFC 8216bis 6.2.2: a segment removed from the playlist stays downloadable for its
/// duration plus the longest playlist that listed it (counted here in segments: as many more
/// as the longest playlist listed, plus two), parts included; only then 410.
#[tokio::test]
async fn a_segment_that_left_the_playlist_stays_downloadable_for_a_while() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    let mut seq = 10;
    for msn in 0..10 {
        let first = seq;
        for _ in 0..2 {
            live.part(seq, &format!("[{msn}.{seq}]"));
            seq += 1;
        }
        live.rendition.complete_segment(msn, first..seq);
    }
    let origin = origin(registry);
    // Playlists of three segments each; segment 0 left with the second one.
    for (version, first) in (1..).zip(0..=5) {
        live.rendition
            .publish(snapshot(version, first, first + 3, 0));
        let seg = get(&origin, "/live/a/720p/seg0.m4s").await;
        assert_eq!(seg.status, 200, "first_msn {first}");
        assert_eq!(seg.body, "[0.10][0.11]");
        assert_eq!(
            seg.header("cache-control"),
            "public, max-age=300, immutable"
        );
        let part = get(&origin, "/live/a/720p/part11.m4s").await;
        assert_eq!(part.status, 200, "first_msn {first}");
        assert_eq!(part.body, "[0.11]");
    }
    // Five segments (the longest playlist's three plus two) after it left, it is gone.
    live.rendition.publish(snapshot(10, 6, 9, 0));
    for gone in [
        "/live/a/720p/seg0.m4s",
        "/live/a/720p/part10.m4s",
        "/live/a/720p/part11.m4s",
    ] {
        assert_eq!(get(&origin, gone).await.status, 410, "{gone}");
    }
    assert_eq!(
        get(&origin, "/live/a/720p/seg1.m4s").await.body,
        "[1.12][1.13]"
    );
}
