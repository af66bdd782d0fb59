use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinSet;
use weir_cache::{Cache, CacheSettings, CachedObject};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream said no")]
struct Refused;

fn object(body: &'static [u8]) -> CachedObject {
    CachedObject::new(Bytes::from_static(body), "video/mp4")
}

#[tokio::test(start_paused = true)]
async fn hundred_concurrent_misses_fill_once() {
    let cache = Cache::new(&CacheSettings::default());
    let fills = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..100 {
        let cache = cache.clone();
        let fills = Arc::clone(&fills);
        tasks.spawn(async move {
            cache
                .get_or_fill("seg/a/720p/7", || async {
                    fills.fetch_add(1, Ordering::SeqCst);
                    // Virtual time only moves once every task is parked, so all 100 callers
                    // are queued on the lock before this fill finishes.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, Refused>(object(b"segment"))
                })
                .await
        });
    }
    while let Some(got) = tasks.join_next().await {
        assert_eq!(got.unwrap().unwrap().body, Bytes::from_static(b"segment"));
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    assert_eq!(cache.fills_in_flight(), 0);
    assert!(cache.get("seg/a/720p/7").await.is_some());
}

#[tokio::test(start_paused = true)]
async fn failed_fill_releases_waiters_and_is_not_cached() {
    let cache = Cache::new(&CacheSettings::default());
    let fills = Arc::new(AtomicUsize::new(0));
    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let cache = cache.clone();
        let fills = Arc::clone(&fills);
        tasks.spawn(async move {
            cache
                .get_or_fill("k", || async {
                    fills.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err::<CachedObject, _>(Refused)
                })
                .await
        });
    }
    while let Some(got) = tasks.join_next().await {
        let err = got.unwrap().unwrap_err();
        assert_eq!(err.fill_source::<Refused>(), Some(&Refused));
        assert!(err.to_string().contains("upstream said no"), "{err}");
    }
    assert_eq!(fills.load(Ordering::SeqCst), 1);
    assert!(cache.get("k").await.is_none(), "an error is never cached");
    assert_eq!(cache.fills_in_flight(), 0);

    let ok = cache
        .get_or_fill("k", || async {
            fills.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Refused>(object(b"second try"))
        })
        .await
        .unwrap();
    assert_eq!(ok.body, Bytes::from_static(b"second try"));
    assert_eq!(fills.load(Ordering::SeqCst), 2, "the next miss fills again");
}

#[tokio::test(start_paused = true)]
async fn cancelled_filler_hands_over_to_a_waiter() {
    let cache = Cache::new(&CacheSettings::default());
    let stuck = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_fill("k", || async {
                    std::future::pending::<()>().await;
                    Ok::<_, Refused>(object(b"never"))
                })
                .await
        })
    };
    tokio::task::yield_now().await;
    assert_eq!(cache.fills_in_flight(), 1);
    let waiter = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_fill("k", || async { Ok::<_, Refused>(object(b"waiter filled")) })
                .await
        })
    };
    tokio::task::yield_now().await;
    stuck.abort();
    let got = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("the waiter must not hang on a cancelled filler")
        .unwrap()
        .unwrap();
    assert_eq!(got.body, Bytes::from_static(b"waiter filled"));
}

#[tokio::test]
async fn distinct_keys_fill_independently() {
    let cache = Cache::new(&CacheSettings::default());
    let a = cache.get_or_fill("a", || async { Ok::<_, Refused>(object(b"A")) });
    let b = cache.get_or_fill("b", || async { Ok::<_, Refused>(object(b"B")) });
    let (a, b) = tokio::join!(a, b);
    assert_eq!(a.unwrap().body, Bytes::from_static(b"A"));
    assert_eq!(b.unwrap().body, Bytes::from_static(b"B"));
}
