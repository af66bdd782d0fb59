//! The streams that are live right now, by name.

use std::collections::HashMap;
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
}

/// Every live stream, shared by ingest (which publishes) and the origin (which serves).
#[derive(Debug, Clone, Default)]
pub struct StreamRegistry {
    streams: Arc<RwLock<HashMap<String, Arc<StreamShared>>>>,
}

impl StreamRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers stream `name`, replacing any previous stream of that name (a takeover).
    pub fn publish(&self, name: &str) -> StreamProducer {
        let (tx, _) = watch::channel(None);
        let shared = Arc::new(StreamShared {
            name: name.to_owned(),
            multivariant: tx,
            renditions: RwLock::new(HashMap::new()),
        });
        self.streams
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), Arc::clone(&shared));
        StreamProducer {
            registry: self.clone(),
            shared,
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
