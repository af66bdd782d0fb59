//! The RTMP ingest server: a thin tokio driver over rml_rtmp and [`FlvDemuxer`](crate::FlvDemuxer).
//!
//! ```text
//! accept ─► handshake ─► connect(app) ─► publish(key) ─► audio/video messages ─► FlvDemuxer ─► mpsc::Sender<MediaEvent>
//!  (max_connections)  └──── handshake_timeout ───────┘     (idle_timeout, max_message_bytes)        (sink_timeout)
//! ```
//!
//! Each connection is one tokio task with one tracing span (`rtmp{session, peer, app, key}`,
//! the key redacted). Whatever ends a session (the publisher unpublishing, EOF, a timeout,
//! bad input, a refusal, a takeover, even a panic inside rml_rtmp) ends only that session,
//! with one log line naming the reason, and drops its `Sender`: that is how the pipeline
//! learns the publisher left.
//!
//! **A slow pipeline.** Media goes into the handler's bounded channel with `try_send`; when
//! it is full the session waits up to [`RtmpSettings::sink_timeout`] for room, then ends with
//! [`Error::SinkStalled`](crate::Error::SinkStalled). Frames are never dropped silently: a
//! lost H.264 reference frame corrupts the picture until the next keyframe, which is worse
//! than a visible reconnect. While the session waits it does not read the socket, so TCP
//! pushes back on the encoder, which is how RTMP encoders expect to be slowed.

mod cue;
mod guard;
mod session;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

// Protocol-neutral since SRT joined; re-exported at the paths they had when they lived here.
pub use crate::keys::{ActiveKeys, KeyBusy, DEFAULT_TAKEOVER_AFTER};
pub use crate::publish::{PublishHandler, Refusal, SessionInfo};

pub const DEFAULT_APP: &str = "live";
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Connections one address may hold at once (an encoder farm behind one NAT needs more:
/// raise it, or set 0 for no limit).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 16;
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Large enough for a 4K keyframe at contribution bitrates.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 << 20;
pub const DEFAULT_SINK_TIMEOUT: Duration = Duration::from_secs(2);

/// How the RTMP server behaves. `Default` gives the `DEFAULT_*` values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtmpSettings {
    /// The RTMP application publishers must connect to: `rtmp://host/APP/key`.
    pub app: String,
    /// Connections beyond this are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Connections from one address beyond this are closed as soon as they are accepted
    /// (0: no limit).
    pub max_connections_per_ip: usize,
    /// From TCP accept until the publish is accepted (RTMP handshake, `connect`, `publish`):
    /// a peer that trickles bytes cannot hold a connection open longer than this.
    pub handshake_timeout: Duration,
    /// No bytes from the peer for this long closes the session.
    pub idle_timeout: Duration,
    /// Video media time without a keyframe after which the session is closed.
    pub no_keyframe_timeout: Duration,
    /// The largest RTMP message accepted (checked on the chunk header, before buffering).
    pub max_message_bytes: usize,
    /// A key whose publisher sent no media for this long may be taken over by a new one.
    pub takeover_after: Duration,
    /// How long a full pipeline channel may hold up the session before it is closed.
    pub sink_timeout: Duration,
}

impl Default for RtmpSettings {
    fn default() -> Self {
        Self {
            app: DEFAULT_APP.to_owned(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            no_keyframe_timeout: crate::flv::DEFAULT_NO_KEYFRAME_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            takeover_after: DEFAULT_TAKEOVER_AFTER,
            sink_timeout: DEFAULT_SINK_TIMEOUT,
        }
    }
}

/// At most one "connection refused" line per this interval.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(1);

/// Serves RTMP publishers on `listener` until `shutdown` completes, then closes every
/// session and waits for them. One publisher per key, with takeover after
/// `settings.takeover_after` of silence.
pub async fn serve_rtmp(
    listener: TcpListener,
    settings: RtmpSettings,
    handler: Arc<dyn PublishHandler>,
    shutdown: impl Future<Output = ()>,
) {
    let keys = ActiveKeys::new(settings.takeover_after);
    serve_rtmp_with_keys(listener, settings, handler, keys, shutdown).await;
}

/// [`serve_rtmp`] with a caller-owned key registry, to share one-publisher-per-key between
/// listeners (or to observe it). `settings.takeover_after` is ignored: the registry's own
/// applies.
#[allow(clippy::disallowed_methods)] // the accept loop is a driver: it rate-limits refusal logs
pub async fn serve_rtmp_with_keys(
    listener: TcpListener,
    settings: RtmpSettings,
    handler: Arc<dyn PublishHandler>,
    keys: ActiveKeys,
    shutdown: impl Future<Output = ()>,
) {
    let max_connections = settings.max_connections;
    let per_ip = crate::PerIpLimit::new(settings.max_connections_per_ip);
    let mut refused_logged: Option<Instant> = None;
    let ctx = Arc::new(session::Ctx {
        settings,
        handler,
        keys,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sessions = JoinSet::new();
    let mut peers: HashMap<tokio::task::Id, (u64, SocketAddr)> = HashMap::new();
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    info!(addr = ?listener.local_addr().ok(), app = %ctx.settings.app, "RTMP ingest listening");
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = sessions.join_next_with_id() => reap(done, &mut peers),
            accepted = listener.accept() => match accepted {
                Ok((sock, peer)) => {
                    next_id += 1;
                    // A flood of refused connections must not become a flood of log lines.
                    let mut refuse = |why: &str| {
                        if refused_logged.is_none_or(|t| t.elapsed() >= REFUSAL_LOG_EVERY) {
                            refused_logged = Some(Instant::now());
                            warn!(session = next_id, %peer, "connection refused: {why} (logged once a second at most)");
                        }
                    };
                    if sessions.len() >= max_connections {
                        refuse("too many sessions (rtmp.max_connections)");
                        continue;
                    }
                    let Some(slot) = per_ip.try_acquire(peer.ip()) else {
                        refuse("too many connections from this address (rtmp.max_connections_per_ip)");
                        continue;
                    };
                    let _ = sock.set_nodelay(true);
                    let run = session::run(sock, peer, next_id, Arc::clone(&ctx), stop_rx.clone());
                    let task = async move {
                        run.await;
                        drop(slot);
                    };
                    let handle = sessions.spawn(task);
                    peers.insert(handle.id(), (next_id, peer));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    info!(sessions = sessions.len(), "RTMP ingest shutting down");
    stop_tx.send_replace(true);
    while let Some(done) = sessions.join_next_with_id().await {
        reap(done, &mut peers);
    }
}

fn reap(
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
    peers: &mut HashMap<tokio::task::Id, (u64, SocketAddr)>,
) {
    match done {
        Ok((id, ())) => {
            peers.remove(&id);
        }
        Err(e) => {
            let (session, peer) = peers
                .remove(&e.id())
                .map_or((0, "unknown".to_owned()), |(s, p)| (s, p.to_string()));
            if e.is_panic() {
                let msg = crate::panic_message(e.into_panic());
                error!(session, %peer, panic = %msg, "RTMP session panicked; closed it");
            } else {
                warn!(session, %peer, error = %e, "RTMP session task cancelled");
            }
        }
    }
}

/// Entry points for the fuzz targets in `fuzz/`: the parsers weir owns below rml_rtmp, and
/// a whole server session through rml_rtmp.
#[doc(hidden)]
pub mod fuzzing {
    use bytes::Bytes;
    use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
    use rml_rtmp::sessions::{
        ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
    };

    use crate::flv::{DemuxSettings, FlvDemuxer};

    /// One RTMP server session as `session.rs` drives it, minus the socket and the
    /// pipeline: the handshake, then every read through the chunk guard and (only if the
    /// guard passes it) rml_rtmp's `ServerSession`, accepting `connect`, `releaseStream`
    /// and `publish`, decoding media with the FLV demuxer and data messages as cue points.
    /// `data[0]` picks the read size (8 to 1024 bytes). If it is odd (as C0, 3, is), `data`
    /// is the whole conversation from C0, so a capture of a real publisher is a seed as it
    /// is (`host/ingest/tests/data/ffmpeg-publish.rtmp`); if even, the rest follows a fixed
    /// C0+C1+C2, so the fuzzer spends its time on chunks and AMF.
    pub fn rtmp_session(data: &[u8]) {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let read = (usize::from(mode >> 1) + 1) * 8;
        let mut wire = Vec::new();
        if mode & 1 == 0 {
            wire.push(3);
            wire.resize(1 + 2 * 1536, 0);
            wire.extend_from_slice(rest);
        } else {
            wire.extend_from_slice(data);
        }
        let mut pieces = wire.chunks(read);
        let mut handshake = Handshake::new(PeerType::Server);
        let remaining = loop {
            let Some(piece) = pieces.next() else {
                return;
            };
            match handshake.process_bytes(piece) {
                Ok(HandshakeProcessResult::InProgress { .. }) => {}
                Ok(HandshakeProcessResult::Completed {
                    remaining_bytes, ..
                }) => break remaining_bytes,
                Err(_) => return,
            }
        };
        let Ok((mut rtmp, _)) = ServerSession::new(ServerSessionConfig::new()) else {
            return;
        };
        let mut guard = super::guard::ChunkGuard::new(super::DEFAULT_MAX_MESSAGE_BYTES);
        let mut demux: Option<FlvDemuxer> = None;
        let mut last_media_ms = None;
        for piece in std::iter::once(&remaining[..]).chain(pieces) {
            if guard.check(piece).is_err() {
                return;
            }
            let Ok(results) = rtmp.handle_input(piece) else {
                return;
            };
            let mut pending = std::collections::VecDeque::from(results);
            while let Some(result) = pending.pop_front() {
                let ServerSessionResult::RaisedEvent(event) = result else {
                    continue;
                };
                let accept = match event {
                    ServerSessionEvent::ConnectionRequested { request_id, .. }
                    | ServerSessionEvent::ReleaseStreamRequested { request_id, .. } => {
                        Some(request_id)
                    }
                    ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                        demux = Some(FlvDemuxer::new(DemuxSettings::default()));
                        Some(request_id)
                    }
                    ServerSessionEvent::VideoDataReceived {
                        data, timestamp, ..
                    } => {
                        last_media_ms = Some(i64::from(timestamp.value));
                        if !media(demux.as_mut(), true, timestamp.value, data) {
                            return;
                        }
                        None
                    }
                    ServerSessionEvent::AudioDataReceived {
                        data, timestamp, ..
                    } => {
                        last_media_ms = Some(i64::from(timestamp.value));
                        if !media(demux.as_mut(), false, timestamp.value, data) {
                            return;
                        }
                        None
                    }
                    ServerSessionEvent::PublishStreamFinished { .. }
                    | ServerSessionEvent::PlayStreamRequested { .. } => return,
                    _ => None,
                };
                if let Some(id) = accept {
                    match rtmp.accept_request(id) {
                        Ok(more) => pending.extend(more),
                        Err(_) => return,
                    }
                }
            }
            for (type_id, payload) in guard.take_data_messages() {
                let _ = super::cue::from_data_message(type_id, &payload, last_media_ms);
            }
        }
        if let Some(d) = demux.as_mut() {
            d.finish();
            while d.poll_event().is_some() {}
        }
    }

    /// Media before `publish` is ignored, as the session does; `false` when the demuxer
    /// ends the session.
    fn media(demux: Option<&mut FlvDemuxer>, video: bool, ms: u32, data: Bytes) -> bool {
        let Some(d) = demux else {
            return true;
        };
        let pushed = if video {
            d.push_video(ms, data)
        } else {
            d.push_audio(ms, data)
        };
        while d.poll_event().is_some() {}
        pushed.is_ok()
    }

    /// Feeds `data` (the bytes after the handshake) to the chunk-stream guard in two pieces,
    /// split at `split`, then decodes every data message it completed as a cue point.
    pub fn chunk_stream(data: &[u8], split: usize) {
        let mut guard = super::guard::ChunkGuard::new(1 << 20);
        let (a, b) = data.split_at(split.min(data.len()));
        if guard.check(a).is_ok() {
            let _ = guard.check(b);
        }
        for (type_id, payload) in guard.take_data_messages() {
            let _ = super::cue::from_data_message(type_id, &payload, Some(0));
        }
    }
}
