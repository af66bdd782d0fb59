//! What every protocol's publishing session shares, so that a new protocol's session is a
//! peer of the RTMP and SRT ones: the context it runs in ([`Ctx`]), how it starts publishing
//! ([`start`]: claim the key, ask the handler), what it holds while it publishes
//! ([`Publishing`]), how it hands media to the pipeline ([`Publishing::forward`]) and the ways
//! it can end without an error ([`End`]).
//!
//! Authorization stays with each protocol (it answers a refusal in its own words, at its own
//! point of the handshake), and so do the session's log lines.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::timeout;
use weir_media::{MediaEvent, StreamKey};

use crate::keys::{ActiveKeys, KeyClaim};
use crate::publish::{PublishHandler, SessionInfo, REFUSED};
use crate::{Error, Result};

/// What a protocol's sessions share: its settings, the handler and the key registry.
pub(crate) struct Ctx<S> {
    pub(crate) settings: S,
    pub(crate) handler: Arc<dyn PublishHandler>,
    pub(crate) keys: ActiveKeys,
}

/// How a session ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The publisher said it is done (RTMP's unpublish; MPEG-TS over SRT has no such message).
    Finished,
    /// The peer closed the connection (before publishing, or without saying it was done).
    PeerClosed,
    /// Another publisher took the key over.
    TakenOver,
    /// The pipeline dropped its receiver.
    PipelineClosed,
    Shutdown,
}

/// A publish that could not start: what the publisher is told (the same [`REFUSED`] for a
/// busy key as for an unknown one) and the error that ends the session (the log says why).
#[derive(Debug)]
pub(crate) struct NotStarted {
    pub(crate) public_text: &'static str,
    pub(crate) error: Error,
}

/// An authorized publish starts: claims `key` for session `info.id` (evicting an idle
/// holder), then asks the handler where its media goes. `state` is what the protocol keeps
/// while it publishes (its demuxer, its counters).
pub(crate) fn start<S, T>(
    ctx: &Ctx<S>,
    info: &SessionInfo,
    key: &StreamKey,
    state: T,
) -> std::result::Result<Publishing<T>, NotStarted> {
    let claim = ctx.keys.claim(key, info.id).map_err(|busy| NotStarted {
        public_text: REFUSED,
        error: Error::Refused(format!(
            "stream key already publishing (its publisher sent media {:?} ago)",
            busy.idle_for
        )),
    })?;
    // On a refusal the claim is dropped here, before the publisher is told.
    let tx = ctx
        .handler
        .publish(info, key)
        .map_err(|refusal| NotStarted {
            public_text: refusal.public_text(),
            error: Error::Refused(format!("publish refused: {refusal}")),
        })?;
    Ok(Publishing {
        claim,
        tx,
        info: info.clone(),
        key: key.clone(),
        state,
    })
}

/// A session that publishes: its hold on the key, where its media goes, and the protocol's
/// own state.
pub(crate) struct Publishing<T> {
    claim: KeyClaim,
    tx: mpsc::Sender<MediaEvent>,
    info: SessionInfo,
    key: StreamKey,
    pub(crate) state: T,
}

impl<T> Publishing<T> {
    /// Tells the handler how the session ended (see [`PublishHandler::ended`]).
    pub(crate) fn ended<S>(&self, ctx: &Ctx<S>, result: &Result<End>) {
        let error = match result {
            Ok(End::TakenOver) => {
                Some("another publisher took over this idle stream key".to_owned())
            }
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        ctx.handler.ended(&self.info, &self.key, error.as_deref());
    }

    /// Media arrived now: the key is not idle (see [`ActiveKeys`]).
    pub(crate) fn touch(&self) {
        self.claim.touch();
    }

    /// Hands one event to the pipeline. When its channel is full this waits up to
    /// `sink_timeout` for room, then fails with [`Error::SinkStalled`]: events are never
    /// dropped (a lost reference frame corrupts the picture until the next keyframe).
    /// `Ok(false)`: the pipeline has closed the stream.
    pub(crate) async fn forward(&self, event: MediaEvent, sink_timeout: Duration) -> Result<bool> {
        match self.tx.try_send(event) {
            Ok(()) => Ok(true),
            Err(TrySendError::Closed(_)) => Ok(false),
            Err(TrySendError::Full(event)) => {
                match timeout(sink_timeout, self.tx.send(event)).await {
                    Ok(sent) => Ok(sent.is_ok()),
                    Err(_) => Err(Error::SinkStalled(sink_timeout)),
                }
            }
        }
    }
}

/// Completes when another publisher has taken the key over; never while not publishing.
pub(crate) async fn evicted<T>(publishing: Option<&Publishing<T>>) {
    match publishing {
        Some(p) => p.claim.evicted().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::publish::{Protocol, Refusal};

    /// Hands out one channel per publish, or refuses keys named "no".
    struct Handler(mpsc::Sender<MediaEvent>);

    impl PublishHandler for Handler {
        fn publish(
            &self,
            _: &SessionInfo,
            key: &StreamKey,
        ) -> std::result::Result<mpsc::Sender<MediaEvent>, Refusal> {
            if key.expose() == "no" {
                return Err(Refusal::Overloaded("max_streams".into()));
            }
            Ok(self.0.clone())
        }
    }

    fn ctx(tx: mpsc::Sender<MediaEvent>) -> Ctx<()> {
        Ctx {
            settings: (),
            handler: Arc::new(Handler(tx)),
            keys: ActiveKeys::new(Duration::from_secs(2)),
        }
    }

    fn info(id: u64) -> SessionInfo {
        SessionInfo {
            id,
            peer: "192.0.2.1:1935".parse().unwrap(),
            app: "live".into(),
            protocol: Protocol::Srt,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn busy_key_and_handler_refusal_free_the_key_and_say_why() {
        let (tx, _rx) = mpsc::channel(1);
        let ctx = ctx(tx);
        let key = StreamKey::new("k");
        let first = start(&ctx, &info(1), &key, ()).unwrap();
        let busy = start(&ctx, &info(2), &key, ()).err().unwrap();
        assert_eq!(busy.public_text, REFUSED);
        assert!(busy.error.to_string().contains("already publishing"));
        drop(first);
        assert!(ctx.keys.is_empty());

        let no = StreamKey::new("no");
        let refused = start(&ctx, &info(3), &no, ()).err().unwrap();
        assert_eq!(refused.public_text, crate::OVERLOADED);
        assert!(refused.error.to_string().contains("max_streams"));
        assert!(
            !ctx.keys.is_active(&no),
            "a refused publish must not hold the key"
        );
    }

    #[tokio::test(start_paused = true)]
    #[allow(clippy::disallowed_methods)] // tokio's paused clock, read to show the stall waits sink_timeout
    async fn forward_waits_for_room_then_stalls_and_reports_a_closed_pipeline() {
        let (tx, mut rx) = mpsc::channel(1);
        let ctx = ctx(tx);
        let p = start(&ctx, &info(1), &StreamKey::new("k"), ()).unwrap();
        let wait = Duration::from_secs(2);
        let event = || MediaEvent::Tracks(Vec::new());
        assert!(p.forward(event(), wait).await.unwrap());
        // Full: room made within the wait, so the event goes through.
        let (sent, received) = tokio::join!(p.forward(event(), wait), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rx.recv().await
        });
        assert!(sent.unwrap());
        assert!(received.is_some());
        // Full and nobody reads: the session fails after `sink_timeout`, not before.
        let started = tokio::time::Instant::now();
        let stalled = p.forward(event(), wait).await.unwrap_err();
        assert!(matches!(stalled, Error::SinkStalled(d) if d == wait));
        assert_eq!(started.elapsed(), wait);
        drop(rx);
        assert!(!p.forward(event(), wait).await.unwrap());
    }
}
