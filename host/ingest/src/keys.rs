//! One publisher per stream key, whatever the protocol: RTMP and SRT sessions (and any
//! later protocol's) claim their key in the same [`ActiveKeys`], so a key is one stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use weir_media::StreamKey;

/// The default for [`ActiveKeys::new`]: a key whose publisher sent no media for this long
/// may be taken over.
pub const DEFAULT_TAKEOVER_AFTER: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Slot {
    session: u64,
    last_media: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

#[derive(Debug)]
struct Inner {
    slots: Mutex<HashMap<StreamKey, Slot>>,
    takeover_after: Duration,
    epoch: Instant,
}

/// The stream keys being published right now, shared by every ingest session (clone it to
/// share it between listeners).
///
/// A second publisher on a key is refused while the first one is sending media. When the
/// first has been silent for `takeover_after` (a half-dead encoder whose TCP connection has
/// not timed out yet), the newcomer takes over and the old session is told to close: that
/// is what makes "restart the encoder" work without waiting for the idle timeout.
#[derive(Debug, Clone)]
pub struct ActiveKeys {
    inner: Arc<Inner>,
}

/// Why a key could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyBusy {
    /// How long ago the current publisher last sent media.
    pub idle_for: Duration,
}

impl Default for ActiveKeys {
    fn default() -> Self {
        Self::new(DEFAULT_TAKEOVER_AFTER)
    }
}

impl ActiveKeys {
    #[allow(clippy::disallowed_methods)] // the takeover clock's epoch; sessions (drivers) ask it
    pub fn new(takeover_after: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                slots: Mutex::new(HashMap::new()),
                takeover_after,
                epoch: Instant::now(),
            }),
        }
    }

    /// How many keys are being published.
    pub fn len(&self) -> usize {
        self.slots().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_active(&self, key: &StreamKey) -> bool {
        self.slots().contains_key(key)
    }

    /// Whether [`claim`](Self::claim) would succeed now, without claiming or evicting
    /// anything: lets SRT refuse a busy key at the handshake and claim only once the caller
    /// has proven its passphrase.
    pub(crate) fn check(&self, key: &StreamKey) -> Result<(), KeyBusy> {
        let now = self.now_ms();
        match self.slots().get(key) {
            Some(old) => {
                let idle_ms = now.saturating_sub(old.last_media.load(Ordering::Relaxed));
                let idle_for = Duration::from_millis(idle_ms);
                if idle_for < self.inner.takeover_after {
                    Err(KeyBusy { idle_for })
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// Claims `key` for `session`, evicting an idle holder. The claim lasts until the
    /// returned guard is dropped.
    pub(crate) fn claim(&self, key: &StreamKey, session: u64) -> Result<KeyClaim, KeyBusy> {
        let now = self.now_ms();
        let mut slots = self.slots();
        if let Some(old) = slots.get(key) {
            let idle_ms = now.saturating_sub(old.last_media.load(Ordering::Relaxed));
            let idle_for = Duration::from_millis(idle_ms);
            if idle_for < self.inner.takeover_after {
                return Err(KeyBusy { idle_for });
            }
            // `notify_one` stores a permit, so the old session sees it even if it is not
            // waiting right now.
            old.evict.notify_one();
        }
        let last_media = Arc::new(AtomicU64::new(now));
        let evict = Arc::new(Notify::new());
        slots.insert(
            key.clone(),
            Slot {
                session,
                last_media: Arc::clone(&last_media),
                evict: Arc::clone(&evict),
            },
        );
        Ok(KeyClaim {
            keys: self.clone(),
            key: key.clone(),
            session,
            last_media,
            evict,
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<StreamKey, Slot>> {
        self.inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A session's hold on a key; dropping it frees the key (unless it was taken over).
#[derive(Debug)]
pub(crate) struct KeyClaim {
    keys: ActiveKeys,
    key: StreamKey,
    session: u64,
    last_media: Arc<AtomicU64>,
    evict: Arc<Notify>,
}

impl KeyClaim {
    /// Records that media arrived now.
    pub(crate) fn touch(&self) {
        self.last_media.store(self.keys.now_ms(), Ordering::Relaxed);
    }

    /// Completes when another publisher has taken the key over.
    pub(crate) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        let mut slots = self.keys.slots();
        if slots
            .get(&self.key)
            .is_some_and(|s| s.session == self.session)
        {
            slots.remove(&self.key);
        }
    }
}

/// Whether `a` and `b` are the same key, in time that does not depend on where they differ.
pub(crate) fn same_key(a: &StreamKey, b: &StreamKey) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (a.expose().as_bytes(), b.expose().as_bytes());
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn busy_then_idle_takeover_then_release() {
        let keys = ActiveKeys::new(Duration::from_secs(2));
        let key = StreamKey::new("k");
        let first = keys.claim(&key, 1).unwrap();
        tokio::time::advance(Duration::from_millis(1500)).await;
        first.touch();
        tokio::time::advance(Duration::from_millis(1500)).await;
        let busy = keys.claim(&key, 2).unwrap_err();
        assert_eq!(busy.idle_for, Duration::from_millis(1500));

        tokio::time::advance(Duration::from_millis(600)).await;
        let second = keys.claim(&key, 2).unwrap();
        // The old session learns it was evicted, even though it was not waiting yet.
        tokio::time::timeout(Duration::from_secs(1), first.evicted())
            .await
            .unwrap();
        drop(first);
        assert!(
            keys.is_active(&key),
            "the old claim must not free the new one"
        );
        drop(second);
        assert!(keys.is_empty());
    }
}
