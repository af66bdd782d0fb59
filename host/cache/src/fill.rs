//! The per-key fill lock: of N concurrent misses on one key, one fills and N−1 wait.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::storage::{CacheSettings, CachedObject, MokaStorage, Storage};
use crate::{Error, Result};

/// What waiters see: nothing yet, then the filler's result.
type Slot = Option<Result<Arc<CachedObject>>>;

/// Fills in flight, by key. The lock is held only to look up or insert a slot, never
/// across an await.
type Fills = Mutex<HashMap<String, watch::Receiver<Slot>>>;

/// A [`Storage`] with single-flight fills. Cheap to clone; clones share storage and locks.
#[derive(Clone)]
pub struct Cache {
    storage: Arc<dyn Storage>,
    fills: Arc<Fills>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("fills_in_flight", &self.fills_in_flight())
            .finish_non_exhaustive()
    }
}

impl Cache {
    /// An in-memory cache on moka.
    pub fn new(settings: &CacheSettings) -> Self {
        Self::with_storage(Arc::new(MokaStorage::new(settings)))
    }

    /// A cache over any backend.
    pub fn with_storage(storage: Arc<dyn Storage>) -> Self {
        Self {
            storage,
            fills: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub async fn get(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.storage.get(key).await
    }

    pub async fn insert(&self, key: impl Into<String>, object: CachedObject) {
        self.storage.insert(key.into(), Arc::new(object)).await;
    }

    pub async fn invalidate(&self, key: &str) {
        self.storage.invalidate(key).await;
    }

    /// Bytes the storage holds now (approximate; for `/metrics`).
    pub fn stored_bytes(&self) -> u64 {
        self.storage.bytes()
    }

    /// How many keys are being filled right now.
    pub fn fills_in_flight(&self) -> usize {
        self.fills
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The object under `key`, running `fill` on a miss.
    ///
    /// Concurrent misses on one key run `fill` once: the first caller fills, the others wait
    /// and share its result. A successful fill is stored; a failed one is not, and every
    /// waiter gets the error ([`Error::Fill`], whose source is the filler's error). If the
    /// filling caller is cancelled, a waiter takes over as filler with its own `fill`.
    pub async fn get_or_fill<F, Fut, E>(&self, key: &str, fill: F) -> Result<Arc<CachedObject>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<CachedObject, E>>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let guard = loop {
            if let Some(hit) = self.storage.get(key).await {
                return Ok(hit);
            }
            let role = {
                let mut fills = self.fills.lock().unwrap_or_else(PoisonError::into_inner);
                match fills.get(key) {
                    Some(rx) => Role::Wait(rx.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        fills.insert(key.to_owned(), rx);
                        Role::Fill(FillGuard {
                            cache: self,
                            key,
                            tx: Some(tx),
                        })
                    }
                }
            };
            match role {
                Role::Fill(guard) => break guard,
                Role::Wait(mut rx) => {
                    // `Err`: the filler was cancelled mid-fill. Look again; perhaps fill ourselves.
                    if let Ok(slot) = rx.wait_for(Option::is_some).await {
                        if let Some(result) = slot.clone() {
                            return result;
                        }
                    }
                }
            }
        };
        // A fill may have finished between our miss and taking the lock.
        if let Some(hit) = self.storage.get(key).await {
            guard.complete(Ok(Arc::clone(&hit)));
            return Ok(hit);
        }
        let result = match fill().await {
            Ok(object) => Ok(Arc::new(object)),
            Err(e) => Err(Error::Fill(Arc::new(e))),
        };
        if let Ok(object) = &result {
            // Stored before waiters are released and the slot is removed, so a caller that
            // misses the slot finds the object.
            self.storage
                .insert(key.to_owned(), Arc::clone(object))
                .await;
        }
        guard.complete(result.clone());
        result
    }
}

enum Role<'a> {
    Fill(FillGuard<'a>),
    Wait(watch::Receiver<Slot>),
}

/// Held by the one caller filling a key. Completing it publishes the result to waiters;
/// dropping it uncompleted (the caller was cancelled) frees the key for a waiter to retry.
struct FillGuard<'a> {
    cache: &'a Cache,
    key: &'a str,
    tx: Option<watch::Sender<Slot>>,
}

impl FillGuard<'_> {
    fn complete(mut self, result: Result<Arc<CachedObject>>) {
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(result));
            self.release(&tx);
        }
    }

    fn release(&self, tx: &watch::Sender<Slot>) {
        let mut fills = self
            .cache
            .fills
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if fills
            .get(self.key)
            .is_some_and(|rx| rx.same_channel(&tx.subscribe()))
        {
            fills.remove(self.key);
        }
    }
}

impl Drop for FillGuard<'_> {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.take() {
            // Dropping `tx` after the slot is gone wakes waiters with `Err`: they retry.
            self.release(&tx);
        }
    }
}
