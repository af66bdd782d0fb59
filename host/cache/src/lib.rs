//! Weir's object cache: moka behind a small trait, with a per-key fill lock.
//!
//! - [`CachedObject`]: opaque bytes plus a content type. The cache never parses media.
//! - [`Storage`]: get / insert / invalidate by string key. [`MokaStorage`] is the in-memory
//!   backend, weighed by byte size with its capacity from [`CacheSettings`]; another backend
//!   fits behind `Arc<dyn Storage>`.
//! - [`Cache`]: a [`Storage`] plus a per-key fill lock. [`Cache::get_or_fill`] turns N
//!   concurrent misses on one key into exactly one fill; the other N−1 callers wait and share
//!   its result. A failed fill releases the waiters with the error and caches nothing.
//!
//! ```
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use bytes::Bytes;
//! use weir_cache::{Cache, CacheSettings, CachedObject};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let cache = Cache::new(&CacheSettings::default());
//! let fills = AtomicUsize::new(0);
//! for _ in 0..3 {
//!     let object = cache
//!         .get_or_fill("live/a/720p/seg7", || async {
//!             fills.fetch_add(1, Ordering::Relaxed);
//!             Ok::<_, std::io::Error>(CachedObject::new(Bytes::from_static(b"moof+mdat"), "video/mp4"))
//!         })
//!         .await
//!         .unwrap();
//!     assert_eq!(object.body, Bytes::from_static(b"moof+mdat"));
//! }
//! assert_eq!(fills.load(Ordering::Relaxed), 1);
//! # });
//! ```

use std::sync::Arc;

mod fill;
mod storage;

pub use fill::Cache;
pub use storage::{
    BoxFuture, CacheSettings, CachedObject, MokaStorage, Storage, DEFAULT_MAX_BYTES,
};

/// What can go wrong getting an object out of the cache.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The fill for this key failed. The source is the filler's own error, shared by every
    /// caller that waited on it; [`Error::fill_source`] recovers its type.
    #[error("cache fill failed: {0}")]
    Fill(#[source] Arc<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// The filler's error, if it was an `E`.
    pub fn fill_source<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            Error::Fill(e) => e.downcast_ref::<E>(),
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
