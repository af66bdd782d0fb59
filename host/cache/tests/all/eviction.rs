use std::sync::Arc;

use bytes::Bytes;
use weir_cache::{CacheSettings, CachedObject, MokaStorage, Storage};

fn kib(n: usize) -> Arc<CachedObject> {
    Arc::new(CachedObject::new(
        Bytes::from(vec![0u8; n * 1024]),
        "video/mp4",
    ))
}

#[tokio::test]
async fn evicts_by_weight_not_by_count() {
    let settings = CacheSettings {
        max_bytes: 64 * 1024,
        time_to_live: None,
    };
    let storage = MokaStorage::new(&settings);
    for i in 0..32 {
        storage.insert(format!("seg{i}"), kib(8)).await;
    }
    let size = storage.weighted_size().await;
    assert!(
        size <= settings.max_bytes,
        "weighted size {size} over capacity"
    );
    let mut present = 0;
    for i in 0..32 {
        if storage.get(&format!("seg{i}")).await.is_some() {
            present += 1;
        }
    }
    // 8 KiB objects plus overhead: at most 7 fit in 64 KiB.
    assert!((1..=7).contains(&present), "{present} entries kept");
}

#[tokio::test]
async fn an_object_over_capacity_is_not_kept() {
    let storage = MokaStorage::new(&CacheSettings {
        max_bytes: 4 * 1024,
        time_to_live: None,
    });
    storage.insert("big".into(), kib(8)).await;
    assert_eq!(storage.weighted_size().await, 0);
    assert!(storage.get("big").await.is_none());
}

/// `/metrics` reports what the storage holds (`weir_cache_bytes`), by the same weight that
/// evicts.
#[tokio::test]
async fn bytes_held_are_reported_for_metrics() {
    let storage = MokaStorage::new(&CacheSettings::default());
    assert_eq!(storage.bytes(), 0);
    storage.insert("seg1".into(), kib(8)).await;
    storage.insert("seg2".into(), kib(8)).await;
    let size = storage.weighted_size().await;
    assert!(size >= 16 * 1024, "{size}");
    assert_eq!(storage.bytes(), size);
    let cache = weir_cache::Cache::with_storage(Arc::new(storage));
    assert_eq!(cache.stored_bytes(), size);
}

/// With a time-to-live, an entry is gone once it has passed, whatever the room left: what
/// keeps segments that left every playlist from filling the cache.
#[tokio::test]
async fn entries_expire_after_their_time_to_live() {
    let storage = MokaStorage::new(&CacheSettings {
        max_bytes: 64 * 1024 * 1024,
        time_to_live: Some(std::time::Duration::from_millis(100)),
    });
    storage.insert("seg1".into(), kib(8)).await;
    assert!(storage.get("seg1").await.is_some());
    // Only a lower bound on time: expiry is checked when the entry is read.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(storage.get("seg1").await.is_none());
    assert_eq!(storage.weighted_size().await, 0);
}
