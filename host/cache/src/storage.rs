//! Where cached objects live: the [`Storage`] trait and its moka backend.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// A boxed, sendable future: what [`Storage`] methods return, so the trait stays
/// object-safe and another backend (disk, a shared memory tier) can sit behind `dyn Storage`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One cached HTTP object: opaque bytes plus the little metadata needed to serve them.
/// The cache never looks inside `body`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedObject {
    pub body: Bytes,
    pub content_type: Cow<'static, str>,
}

impl CachedObject {
    pub fn new(body: Bytes, content_type: impl Into<Cow<'static, str>>) -> Self {
        Self {
            body,
            content_type: content_type.into(),
        }
    }

    /// What this object costs the cache, in bytes: body, metadata and a fixed overhead for
    /// the entry itself, so a flood of tiny objects still counts against capacity.
    pub fn weight(&self, key: &str) -> u32 {
        const ENTRY_OVERHEAD: usize = 64;
        let total = self
            .body
            .len()
            .saturating_add(self.content_type.len())
            .saturating_add(key.len())
            .saturating_add(ENTRY_OVERHEAD);
        u32::try_from(total).unwrap_or(u32::MAX)
    }
}

/// A key → object store. Implementations must be safe to share between tasks; they decide
/// eviction on their own. Single flight is not their job: [`crate::Cache`] adds it on top.
pub trait Storage: Send + Sync + 'static {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedObject>>>;
    fn insert(&self, key: String, object: Arc<CachedObject>) -> BoxFuture<'_, ()>;
    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()>;
    /// Bytes held now, as far as the backend knows cheaply (for `/metrics`); 0 if unknown.
    fn bytes(&self) -> u64 {
        0
    }
}

/// 256 MiB: a few minutes of a 6 Mb/s ladder's segments.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// How big the cache may grow and how long an entry may live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheSettings {
    /// Capacity in bytes, as counted by [`CachedObject::weight`].
    pub max_bytes: u64,
    /// Entries older than this are dropped even if there is room. `None`: only size evicts.
    pub time_to_live: Option<Duration>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            time_to_live: None,
        }
    }
}

/// [`Storage`] in memory, on a moka future cache weighed by byte size.
#[derive(Clone, Debug)]
pub struct MokaStorage {
    inner: moka::future::Cache<String, Arc<CachedObject>>,
}

impl MokaStorage {
    pub fn new(settings: &CacheSettings) -> Self {
        let mut builder = moka::future::Cache::builder()
            .max_capacity(settings.max_bytes)
            .weigher(|key: &String, object: &Arc<CachedObject>| object.weight(key));
        if let Some(ttl) = settings.time_to_live {
            builder = builder.time_to_live(ttl);
        }
        Self {
            inner: builder.build(),
        }
    }

    /// Total weight of the entries, after moka has applied its pending evictions.
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }
}

impl Storage for MokaStorage {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Option<Arc<CachedObject>>> {
        Box::pin(self.inner.get(key))
    }

    fn insert(&self, key: String, object: Arc<CachedObject>) -> BoxFuture<'_, ()> {
        Box::pin(self.inner.insert(key, object))
    }

    fn invalidate<'a>(&'a self, key: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.inner.invalidate(key))
    }

    fn bytes(&self) -> u64 {
        // Without moka's pending maintenance: a metric may lag a few operations.
        self.inner.weighted_size()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn weight_counts_body_and_key() {
        let o = CachedObject::new(Bytes::from(vec![0; 1000]), "video/mp4");
        assert_eq!(o.weight("k"), 1000 + 9 + 1 + 64);
    }

    #[tokio::test]
    async fn get_insert_invalidate() {
        let s = MokaStorage::new(&CacheSettings::default());
        assert!(s.get("a").await.is_none());
        let o = Arc::new(CachedObject::new(Bytes::from_static(b"x"), "text/plain"));
        s.insert("a".into(), Arc::clone(&o)).await;
        assert_eq!(s.get("a").await, Some(o));
        s.invalidate("a").await;
        assert!(s.get("a").await.is_none());
    }
}
