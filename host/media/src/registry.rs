//! The streams that are live right now, by name.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use tokio::sync::watch;

use crate::rendition::RenditionConsumer;

#[derive(Debug)]
struct StreamShared {
    name: String,
    /// The multivariant playlist, re-rendered when renditions change.
    multivariant: watch::Sender<Option<Bytes>>,
    renditions: RwLock<HashMap<String, RenditionConsumer>>,
    /// Requests served for this stream (the origin counts them), for its request rate.
    requests: AtomicU64,
    /// Whether a publisher (or the test pattern) feeds it now; false between publishers.
    /// An edge that can follow the stream from several primaries prefers one where it is.
    publisher_live: AtomicBool,
    /// When the stream's task started (Unix ms); the newer of two live copies wins.
    started_unix_ms: AtomicU64,
}

/// Called with the name of a stream a request asked for and nobody publishes: an edge
/// starts following it upstream (weir-edge).
pub type MissHook = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Default)]
struct Miss {
    hook: RwLock<Option<MissHook>>,
    /// Bumped on every publish, for lookups that wait for a stream to appear.
    published: watch::Sender<u64>,
}

impl std::fmt::Debug for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Miss").finish_non_exhaustive()
    }
}

/// Every live stream, shared by ingest (which publishes) and the origin (which serves).
#[derive(Debug, Clone, Default)]
pub struct StreamRegistry {
    streams: Arc<RwLock<HashMap<String, Arc<StreamShared>>>>,
    miss: Arc<Miss>,
}

impl StreamRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers stream `name`, replacing any previous stream of that name (a takeover).
    pub fn publish(&self, name: &str) -> StreamProducer {
        self.publish_with(name, None, Vec::new())
    }

    /// Registers stream `name` with its multivariant playlist and renditions in place, so no
    /// reader sees it without them.
    pub fn publish_with(
        &self,
        name: &str,
        multivariant: Option<Bytes>,
        renditions: Vec<(String, RenditionConsumer)>,
    ) -> StreamProducer {
        let (tx, _) = watch::channel(multivariant);
        let shared = Arc::new(StreamShared {
            name: name.to_owned(),
            multivariant: tx,
            renditions: RwLock::new(renditions.into_iter().collect()),
            requests: AtomicU64::new(0),
            publisher_live: AtomicBool::new(false),
            started_unix_ms: AtomicU64::new(0),
        });
        self.streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&shared));
        self.miss.published.send_modify(|n| *n = n.wrapping_add(1));
        StreamProducer {
            registry: self.clone(),
            shared,
        }
    }

    /// Sets the hook [`StreamRegistry::get_or_wait`] calls on a miss.
    pub fn on_miss(&self, hook: MissHook) {
        *self
            .miss
            .hook
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(hook);
    }

    /// [`StreamRegistry::get`], or, with a miss hook set, the stream once the hook has
    /// brought it (the caller bounds the wait). Without a hook a miss is `None` at once.
    pub async fn get_or_wait(&self, name: &str) -> Option<StreamConsumer> {
        if let Some(s) = self.get(name) {
            return Some(s);
        }
        let hook = self
            .miss
            .hook
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        let mut published = self.miss.published.subscribe();
        hook(name);
        loop {
            if let Some(s) = self.get(name) {
                return Some(s);
            }
            published.changed().await.ok()?;
        }
    }

    pub fn get(&self, name: &str) -> Option<StreamConsumer> {
        self.streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|shared| StreamConsumer {
                shared: Arc::clone(shared),
            })
    }

    /// Names of the live streams, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .streams
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

/// The publishing side of one stream. Dropping it removes the stream from the registry
/// (unless a newer publisher has taken the name over).
#[derive(Debug)]
pub struct StreamProducer {
    registry: StreamRegistry,
    shared: Arc<StreamShared>,
}

impl StreamProducer {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn set_multivariant(&self, playlist: Bytes) {
        self.shared.multivariant.send_replace(Some(playlist));
    }

    pub fn add_rendition(&self, name: &str, rendition: RenditionConsumer) {
        self.shared
            .renditions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), rendition);
    }

    /// Requests served for this stream so far ([`StreamConsumer::count_request`]).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Whether a publisher feeds the stream now ([`StreamConsumer::publisher_live`]).
    pub fn set_publisher_live(&self, live: bool) {
        self.shared.publisher_live.store(live, Ordering::Relaxed);
    }

    /// When the stream started (Unix ms), for [`StreamConsumer::started_unix_ms`].
    pub fn set_started_unix_ms(&self, unix_ms: u64) {
        self.shared
            .started_unix_ms
            .store(unix_ms, Ordering::Relaxed);
    }
}

impl Drop for StreamProducer {
    fn drop(&mut self) {
        let mut streams = self
            .registry
            .streams
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if streams
            .get(&self.shared.name)
            .is_some_and(|s| Arc::ptr_eq(s, &self.shared))
        {
            streams.remove(&self.shared.name);
        }
    }
}

/// The reading side of one stream.
#[derive(Debug, Clone)]
pub struct StreamConsumer {
    shared: Arc<StreamShared>,
}

impl StreamConsumer {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn multivariant(&self) -> Option<Bytes> {
        self.shared.multivariant.borrow().clone()
    }

    pub fn rendition(&self, name: &str) -> Option<RenditionConsumer> {
        self.shared
            .renditions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every rendition, sorted by name.
    pub fn renditions(&self) -> Vec<(String, RenditionConsumer)> {
        let mut v: Vec<_> = self
            .shared
            .renditions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Counts one request served for this stream (one relaxed atomic add).
    pub fn count_request(&self) {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests served for this stream so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Whether a publisher feeds the stream now.
    pub fn publisher_live(&self) -> bool {
        self.shared.publisher_live.load(Ordering::Relaxed)
    }

    /// When the stream started (Unix ms; 0 when nobody said).
    pub fn started_unix_ms(&self) -> u64 {
        self.shared.started_unix_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rendition::rendition_channel;

    #[test]
    fn takeover_keeps_the_new_stream() {
        let reg = StreamRegistry::new();
        let old = reg.publish("a");
        let new = reg.publish("a");
        let (_p, c) = rendition_channel();
        new.add_rendition("src", c);
        drop(old);
        assert!(reg.get("a").unwrap().rendition("src").is_some());
        drop(new);
        assert!(reg.get("a").is_none());
        assert!(reg.names().is_empty());
    }
}

#[cfg(test)]
mod miss_tests {
    use super::*;

    #[tokio::test]
    async fn a_miss_without_a_hook_is_none_and_with_one_waits_for_the_stream() {
        let registry = StreamRegistry::new();
        assert!(registry.get_or_wait("a").await.is_none());
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (r, a) = (registry.clone(), Arc::clone(&asked));
        let held = Arc::new(std::sync::Mutex::new(Vec::new()));
        let h = Arc::clone(&held);
        registry.on_miss(Arc::new(move |name: &str| {
            a.lock().unwrap().push(name.to_owned());
            let (r, h, name) = (r.clone(), Arc::clone(&h), name.to_owned());
            tokio::spawn(async move {
                tokio::task::yield_now().await;
                let p = r.publish_with(&name, Some(Bytes::from_static(b"#EXTM3U")), Vec::new());
                h.lock().unwrap().push(p);
            });
        }));
        let s = registry.get_or_wait("b").await.unwrap();
        assert_eq!(s.name(), "b");
        assert_eq!(s.multivariant().as_deref(), Some(&b"#EXTM3U"[..]));
        assert_eq!(*asked.lock().unwrap(), vec!["b".to_owned()]);
        // Present now: no second call.
        registry.get_or_wait("b").await.unwrap();
        assert_eq!(asked.lock().unwrap().len(), 1);
    }
}
