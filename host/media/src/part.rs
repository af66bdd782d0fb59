//! An append-only body: one writer, any number of readers, each reading from the start
//! while the writer is still appending.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use tokio::sync::watch;

/// The writer went away before finishing the body (the publisher dropped mid-part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartAborted;

impl std::fmt::Display for PartAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("part aborted before completion")
    }
}

impl std::error::Error for PartAborted {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Open,
    Complete,
    Aborted,
}

#[derive(Debug)]
struct Shared {
    chunks: Mutex<Vec<Bytes>>,
    /// (number of chunks, state); bumped after every push so readers wake.
    notify: watch::Sender<(usize, State)>,
}

/// Creates a growing body.
pub fn part_channel() -> (PartProducer, PartConsumer) {
    let (tx, rx) = watch::channel((0, State::Open));
    let shared = Arc::new(Shared {
        chunks: Mutex::new(Vec::new()),
        notify: tx,
    });
    (
        PartProducer {
            shared: Arc::clone(&shared),
            finished: false,
        },
        PartConsumer {
            shared,
            rx,
            next: 0,
        },
    )
}

/// Writes a part. Dropping it without [`PartProducer::finish`] aborts the part.
#[derive(Debug)]
pub struct PartProducer {
    shared: Arc<Shared>,
    finished: bool,
}

impl PartProducer {
    /// Appends a chunk and wakes every reader.
    pub fn push(&self, chunk: Bytes) {
        if chunk.is_empty() {
            return;
        }
        let len = {
            let mut chunks = self
                .shared
                .chunks
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            chunks.push(chunk);
            chunks.len()
        };
        self.shared.notify.send_replace((len, State::Open));
    }

    /// Marks the body complete.
    pub fn finish(mut self) {
        self.close(State::Complete);
    }

    /// A reader for this part, starting at its first byte.
    pub fn consumer(&self) -> PartConsumer {
        PartConsumer {
            shared: Arc::clone(&self.shared),
            rx: self.shared.notify.subscribe(),
            next: 0,
        }
    }

    fn close(&mut self, state: State) {
        self.finished = true;
        let len = self
            .shared
            .chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        self.shared.notify.send_replace((len, state));
    }
}

impl Drop for PartProducer {
    fn drop(&mut self) {
        if !self.finished {
            self.close(State::Aborted);
        }
    }
}

/// Reads a part from its first byte, waiting for chunks the writer has not written yet.
/// Clones start again from the first byte.
#[derive(Debug)]
pub struct PartConsumer {
    shared: Arc<Shared>,
    rx: watch::Receiver<(usize, State)>,
    next: usize,
}

impl Clone for PartConsumer {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            rx: self.rx.clone(),
            next: 0,
        }
    }
}

impl PartConsumer {
    /// Whether the writer has finished the part.
    pub fn is_complete(&self) -> bool {
        self.rx.borrow().1 == State::Complete
    }

    /// The whole body, if it is complete.
    pub fn bytes(&self) -> Option<Bytes> {
        if !self.is_complete() {
            return None;
        }
        Some(self.concat())
    }

    fn concat(&self) -> Bytes {
        let chunks = self
            .shared
            .chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut out = BytesMut::with_capacity(many.iter().map(Bytes::len).sum());
                for c in many {
                    out.extend_from_slice(c);
                }
                out.freeze()
            }
        }
    }

    /// The next chunk; `Ok(None)` at the end of a complete part.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, PartAborted> {
        loop {
            let (len, state) = *self.rx.borrow_and_update();
            if self.next < len {
                let chunk = self
                    .shared
                    .chunks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)[self.next]
                    .clone();
                self.next += 1;
                return Ok(Some(chunk));
            }
            match state {
                State::Complete => return Ok(None),
                State::Aborted => return Err(PartAborted),
                State::Open => {
                    if self.rx.changed().await.is_err() {
                        // The sender lives in `Shared`, which we hold: unreachable in
                        // practice, but treat it as an abort rather than spin.
                        return Err(PartAborted);
                    }
                }
            }
        }
    }

    /// Waits for the whole body.
    pub async fn collect(&mut self) -> Result<Bytes, PartAborted> {
        while self.next_chunk().await?.is_some() {}
        Ok(self.concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_see_chunks_as_they_arrive() {
        let (p, mut c) = part_channel();
        p.push(Bytes::from_static(b"ab"));
        assert_eq!(c.next_chunk().await, Ok(Some(Bytes::from_static(b"ab"))));
        let mut late = p.consumer();
        let reader = tokio::spawn(async move { c.collect().await });
        tokio::task::yield_now().await;
        p.push(Bytes::from_static(b"cd"));
        p.finish();
        assert_eq!(reader.await.unwrap(), Ok(Bytes::from_static(b"abcd")));
        assert_eq!(late.collect().await, Ok(Bytes::from_static(b"abcd")));
        assert!(late.is_complete());
    }

    #[tokio::test]
    async fn dropped_writer_aborts_readers() {
        let (p, mut c) = part_channel();
        p.push(Bytes::from_static(b"ab"));
        drop(p);
        assert!(c.bytes().is_none());
        assert_eq!(c.next_chunk().await, Ok(Some(Bytes::from_static(b"ab"))));
        assert_eq!(c.next_chunk().await, Err(PartAborted));
    }
}
