//! One SRT caller, from its connection request to the last frame.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use srt_protocol::options::{KeySize, Passphrase};
use srt_protocol::packet::{CoreRejectReason, RejectReason, ServerRejectReason};
use srt_protocol::settings::KeySettings;
use srt_tokio::{ConnectionRequest, SrtSocket};
use tokio::sync::watch;
use tokio::time::timeout;
use tracing::{debug, field, info, info_span, warn, Instrument, Span};
use weir_media::StreamKey;

use super::streamid::{self, StreamIdError};
use super::SrtSettings;
use crate::publish::{Refusal, SessionInfo};
use crate::session::{evicted, End};
use crate::ts::TsDemuxer;
use crate::{Error, Result};

pub(crate) type Ctx = crate::session::Ctx<SrtSettings>;

/// A connection request refused before the connection exists.
struct Refused {
    code: RejectReason,
    reason: String,
}

impl Refused {
    fn server(code: ServerRejectReason, reason: impl Into<String>) -> Self {
        Self {
            code: RejectReason::Server(code),
            reason: reason.into(),
        }
    }

    fn unsecure(reason: impl Into<String>) -> Self {
        Self {
            code: RejectReason::Core(CoreRejectReason::Unsecure),
            reason: reason.into(),
        }
    }
}

/// What the handshake may go on with.
struct Admitted {
    info: SessionInfo,
    key: StreamKey,
    key_settings: Option<KeySettings>,
}

type Publishing = crate::session::Publishing<Ts>;

/// What an SRT session keeps while it publishes.
struct Ts {
    demux: TsDemuxer,
    messages: u64,
    bytes: u64,
}

/// Runs one connection request to completion and logs how it ended. Never returns an error:
/// the log line is the outcome.
pub(crate) async fn run(
    request: ConnectionRequest,
    id: u64,
    ctx: Arc<Ctx>,
    over_limit: Option<&'static str>,
    shutdown: watch::Receiver<bool>,
) {
    let peer = request.remote();
    let span = info_span!("srt", session = id, %peer, app = field::Empty, key = field::Empty);
    async move {
        let admitted = if let Some(why) = over_limit {
            Err(Refused::server(ServerRejectReason::Overload, why))
        } else {
            admit(&request, id, peer, &ctx).await
        };
        let admitted = match admitted {
            Ok(a) => a,
            Err(refused) => {
                warn!(code = ?refused.code, "refused at handshake: {}", refused.reason);
                // The listener task answers; if it is gone there is no one to tell.
                let _ = timeout(Duration::from_secs(1), request.reject(refused.code)).await;
                return;
            }
        };
        let encrypted = admitted.key_settings.is_some();
        let accepted = timeout(
            ctx.settings.handshake_timeout,
            request.accept(admitted.key_settings),
        )
        .await;
        let socket = match accepted {
            Ok(Ok(socket)) => socket,
            // srt-protocol answers a wrong passphrase with `BadSecret` and drops the pending
            // connection, which is what ends `accept` with an error.
            Ok(Err(e)) if encrypted => {
                return warn!("refused at handshake: wrong passphrase (or handshake failed: {e})")
            }
            Ok(Err(e)) => return warn!("handshake failed: {e}"),
            Err(_) => return warn!("handshake not completed within handshake_timeout"),
        };
        let mut session = Session {
            ctx: Arc::clone(&ctx),
            publishing: None,
        };
        let result = session
            .drive(socket, admitted.info, admitted.key, shutdown)
            .await;
        if let Some(p) = &session.publishing {
            p.ended(&session.ctx, &result);
        }
        let counts = session.publishing.as_ref().map(|p| {
            let ts = &p.state;
            let s = ts.demux.stats();
            (s.video_samples, s.audio_samples, ts.messages, ts.bytes)
        });
        let (video, audio, messages, bytes) = counts.unwrap_or_default();
        match result {
            // MPEG-TS has no "done" message: a caller that is done closes.
            Ok(End::PeerClosed | End::Finished) => {
                info!(video, audio, messages, bytes, "caller closed")
            }
            Ok(End::Shutdown) => info!(video, audio, messages, bytes, "closed for shutdown"),
            Ok(End::PipelineClosed) => {
                info!(video, audio, messages, bytes, "pipeline closed the stream")
            }
            Ok(End::TakenOver) => warn!(
                video,
                audio, messages, bytes, "closed: another publisher took over this idle stream key"
            ),
            Err(e) => warn!(video, audio, messages, bytes, "closed: {e}"),
        }
    }
    .instrument(span)
    .await;
}

/// Everything that can be decided from the connection request alone. Every refusal of the
/// key (unknown, not authorized, busy) gets the same reject code, so a caller cannot tell
/// them apart; the log line says which.
async fn admit(
    request: &ConnectionRequest,
    id: u64,
    peer: SocketAddr,
    ctx: &Ctx,
) -> std::result::Result<Admitted, Refused> {
    let settings = &ctx.settings;
    let stream_id = request.stream_id().map(|s| s.as_str());
    let wanted = streamid::parse(stream_id).map_err(|e| {
        let code = match e {
            StreamIdError::NotPublish(_) => ServerRejectReason::BadMode,
            StreamIdError::Missing | StreamIdError::Malformed(_) => ServerRejectReason::BadRequest,
        };
        Refused::server(code, e.to_string())
    })?;
    let key = StreamKey::new(wanted.key);
    let span = Span::current();
    span.record("key", field::display(&key));
    let app = match (&settings.app, wanted.app) {
        (Some(served), Some(asked)) if *served != asked => {
            span.record("app", field::debug(&asked));
            return Err(Refused::server(
                ServerRejectReason::Notfound,
                format!("application {asked:?} is not served (expected {served:?})"),
            ));
        }
        (Some(served), _) => served.clone(),
        (None, asked) => asked.unwrap_or_default(),
    };
    span.record("app", field::debug(&app));
    let info = SessionInfo {
        id,
        peer,
        app,
        protocol: crate::Protocol::Srt,
    };

    ctx.handler
        .authorize(&info, &key)
        .await
        .map_err(|refusal| {
            let code = match refusal {
                Refusal::Overloaded(_) => ServerRejectReason::Overload,
                Refusal::UnknownKey | Refusal::Other(_) => ServerRejectReason::Forbidden,
            };
            Refused::server(code, format!("publish not authorized: {refusal}"))
        })?;
    // Only a check: the key is claimed once the caller has passed the handshake.
    ctx.keys.check(&key).map_err(|busy| {
        Refused::server(
            ServerRejectReason::Forbidden,
            format!(
                "stream key already publishing (its publisher sent media {:?} ago)",
                busy.idle_for
            ),
        )
    })?;

    let passphrase = match &settings.passphrase_for {
        Some(lookup) => lookup(&info, &key),
        None => settings.passphrase.clone(),
    };
    let caller_key_size = request.key_size();
    let key_settings = match (passphrase, caller_key_size) {
        (None, KeySize::Unspecified) => None,
        (None, _) => {
            return Err(Refused::unsecure(
                "the caller encrypts but this stream has no passphrase",
            ))
        }
        (Some(_), KeySize::Unspecified) => {
            return Err(Refused::unsecure(
                "this stream needs a passphrase and the caller does not encrypt",
            ))
        }
        (Some(passphrase), key_size) => {
            let passphrase = Passphrase::try_from(passphrase).map_err(|e| {
                tracing::error!("the configured passphrase for this key is unusable: {e}");
                Refused::server(
                    ServerRejectReason::InternalServerError,
                    "misconfigured passphrase",
                )
            })?;
            debug!(key_bytes = key_size.as_raw(), "encrypted caller");
            // The caller's own key size: srt-protocol panics on a mismatch.
            Some(KeySettings {
                key_size,
                passphrase,
            })
        }
    };
    Ok(Admitted {
        info,
        key,
        key_settings,
    })
}

struct Session {
    ctx: Arc<Ctx>,
    publishing: Option<Publishing>,
}

impl Session {
    async fn drive(
        &mut self,
        mut socket: SrtSocket,
        info: SessionInfo,
        key: StreamKey,
        shutdown: watch::Receiver<bool>,
    ) -> Result<End> {
        let result = self
            .publish_and_read(&mut socket, &info, &key, shutdown)
            .await;
        // Tell the caller we are done (it may already be gone).
        let _ = timeout(Duration::from_millis(500), socket.close()).await;
        result
    }

    async fn publish_and_read(
        &mut self,
        socket: &mut SrtSocket,
        info: &SessionInfo,
        key: &StreamKey,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<End> {
        // Claimed only now, past the handshake: a racing publisher may have claimed the key
        // since the check. The caller is already connected, so a refusal is only a close.
        let ts = Ts {
            demux: TsDemuxer::new(self.ctx.settings.ts.clone()),
            messages: 0,
            bytes: 0,
        };
        let publishing =
            crate::session::start(&self.ctx, info, key, ts).map_err(|refused| refused.error)?;
        self.publishing = Some(publishing);
        info!(
            latency = ?socket.settings().recv_tsbpd_latency,
            encrypted = socket.settings().cipher.is_some(),
            "publishing"
        );
        let idle = self.ctx.settings.idle_timeout;
        loop {
            let next = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return Ok(End::Shutdown),
                () = evicted(self.publishing.as_ref()) => return Ok(End::TakenOver),
                next = timeout(idle, socket.next()) => next,
            };
            let (_, bytes) = match next {
                Err(_) => return Err(Error::Timeout("no data for idle_timeout")),
                Ok(None) => {
                    self.finish_media().await;
                    return Ok(End::PeerClosed);
                }
                Ok(Some(Err(e))) => return Err(Error::Io(e)),
                Ok(Some(Ok(message))) => message,
            };
            let Some(p) = self.publishing.as_mut() else {
                return Ok(End::PipelineClosed);
            };
            p.touch();
            p.state.messages += 1;
            p.state.bytes += bytes.len() as u64;
            p.state.demux.push(&bytes);
            if let Some(end) = self.drain().await? {
                return Ok(end);
            }
        }
    }

    /// Hands the demuxer's events to the pipeline.
    async fn drain(&mut self) -> Result<Option<End>> {
        let sink_timeout = self.ctx.settings.sink_timeout;
        let Some(p) = self.publishing.as_mut() else {
            return Ok(None);
        };
        while let Some(event) = p.state.demux.poll_event() {
            if !p.forward(event, sink_timeout).await? {
                return Ok(Some(End::PipelineClosed));
            }
        }
        Ok(None)
    }

    /// The stream ended normally: release anything the demuxer was holding.
    async fn finish_media(&mut self) {
        if let Some(p) = self.publishing.as_mut() {
            p.state.demux.finish();
            let _ = self.drain().await;
        }
    }
}
