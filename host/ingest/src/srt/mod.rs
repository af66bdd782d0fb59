//! The SRT ingest listener: a thin tokio driver over srt-tokio and the MPEG-TS demuxer.
//!
//! ```text
//! UDP port ─► srt-tokio listener task ─► ConnectionRequest ─► admit ──────► accept ─► claim key ─► publish ─► (Instant, Bytes) ─► TsDemuxer ─► mpsc::Sender<MediaEvent>
//!  (one socket,   (demuxes every          (stream id,           │  stream id,  (AES,         (ActiveKeys,   (PublishHandler)   (idle_timeout)                 (sink_timeout)
//!   rebound if     connection's packets)   key size)             │  app, auth,   handshake_    shared with
//!   the task dies)                                               │  busy key,    timeout)      RTMP)
//!                                                                ▼  passphrase
//!                                                        reject at the handshake
//! ```
//!
//! A caller publishes MPEG-TS with a stream id naming the key, in any of the usual spellings:
//! `KEY`, `live/KEY` (or `host/live/KEY`), SRT access control `#!::r=live/KEY,m=publish`
//! (entries in any order; no `m` counts as publish), or `publish:live/KEY`. Everything that can be decided before the connection exists is decided
//! there and refused with an SRT reject code, so a misconfigured encoder fails at connect time
//! with a reason: no or unparsable stream id, a read (`m=request`) instead of a publish, the
//! wrong application, a key the [`PublishHandler`] does not authorize, a key that is already
//! being published, or encryption that does not match what the key requires. A wrong
//! passphrase is found by the SRT handshake itself and refused there too.
//!
//! **One key, one stream, whatever the protocol.** The listener takes the same
//! [`PublishHandler`] and [`ActiveKeys`] as [`serve_rtmp_with_keys`](crate::serve_rtmp_with_keys),
//! so an SRT publisher and an RTMP publisher can never feed one key at once, and either can
//! take over an idle one. The key is claimed only after the caller has passed the handshake
//! (its passphrase included), so a caller that cannot complete it never evicts anyone.
//!
//! **Encryption.** The listener is bound with no encryption of its own, and each request
//! is answered on its own (unpatched srt-protocol 0.4.4 panicked when an encrypted caller
//! met a listener without a key, or when key sizes differed; ours refuses): a caller that
//! does not encrypt is refused when the key needs a passphrase, a caller that encrypts is
//! refused when it needs none, and otherwise the caller's own key size is accepted with the
//! key's passphrase.
//!
//! **Supervision.** srt-tokio runs one listener task that demultiplexes the UDP port for
//! every connection. The srt-protocol we build is patched so that no datagram we know of
//! panics in it (vendor/srt-protocol/WEIR-PATCHES.md, docs/design/008); as a second line of
//! defence, if that task dies, the listener logs it and binds again on the same socket
//! after a short backoff. The sessions it carried lose their packet feed with it and end
//! (each one its own task, with its own log line); their encoders reconnect to the new
//! listener. Each session runs in a [`JoinSet`] that catches its panics.
//!
//! **A slow pipeline.** As for RTMP, media goes into the handler's bounded channel with
//! `try_send`; when it is full the session waits up to [`SrtSettings::sink_timeout`], then
//! ends with [`Error::SinkStalled`]. SRT live mode has no
//! back-pressure towards the encoder: while the session waits, packets queue in the SRT
//! receive buffer and are dropped once they are later than the latency window.

#[doc(hidden)]
pub mod fuzzing;
mod session;
mod streamid;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use srt_protocol::options::ByteCount;
use srt_tokio::SrtListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{error, info, warn};
use weir_media::StreamKey;

use crate::keys::ActiveKeys;
use crate::publish::{PublishHandler, SessionInfo};
use crate::ts::TsSettings;
use crate::{Error, Result};

/// The application expected in stream ids that name one (`live/KEY`).
pub const DEFAULT_APP: &str = "live";
/// SRT's receive latency: how long lost packets may take to be retransmitted. The
/// negotiated latency is the larger of this and the caller's.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(200);
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Sessions one address may hold at once (0: no limit).
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 16;
/// From the caller's connection request until its SRT handshake is complete.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SINK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait before binding again when the listener task has died.
pub const REBIND_BACKOFF: Duration = Duration::from_millis(250);
/// The kernel clamps this to `net.core.rmem_max`; SRT at contribution bitrates wants more
/// than the 64 KiB srt-tokio asks for by default.
const UDP_BUFFER_BYTES: u64 = 8 << 20;

/// Picks the passphrase for one key (`None`: the key publishes unencrypted). Called during
/// the handshake, after the stream id is parsed and the key authorized; keep it quick.
pub type PassphraseFn = Arc<dyn Fn(&SessionInfo, &StreamKey) -> Option<String> + Send + Sync>;

/// How the SRT listener behaves. `Default` gives the `DEFAULT_*` values, no encryption.
#[derive(Clone)]
pub struct SrtSettings {
    /// The application a stream id must name when it names one (`live/KEY`); a stream id
    /// that is just the key is accepted too. `None` accepts any application.
    pub app: Option<String>,
    /// SRT receive latency (see [`DEFAULT_LATENCY`]).
    pub latency: Duration,
    /// The passphrase every caller must encrypt with (AES-128/192/256, the caller's
    /// choice), 10 to 79 bytes. `None`: callers must not encrypt.
    pub passphrase: Option<String>,
    /// When set, decides the passphrase per key instead of [`passphrase`](Self::passphrase).
    pub passphrase_for: Option<PassphraseFn>,
    /// Connection requests beyond this many sessions are refused (`Overload`).
    pub max_connections: usize,
    /// Connection requests from an address that holds this many sessions are refused
    /// (`Overload`; 0: no limit).
    pub max_connections_per_ip: usize,
    /// From the connection request until the SRT handshake completes.
    pub handshake_timeout: Duration,
    /// No media from the caller for this long closes the session (the connection itself is
    /// kept alive by SRT keepalives, so this catches an encoder that connected and stalled).
    pub idle_timeout: Duration,
    /// How long a full pipeline channel may hold up the session before it is closed.
    pub sink_timeout: Duration,
    /// MPEG-TS demuxer settings for every session.
    pub ts: TsSettings,
}

impl Default for SrtSettings {
    fn default() -> Self {
        Self {
            app: Some(DEFAULT_APP.to_owned()),
            latency: DEFAULT_LATENCY,
            passphrase: None,
            passphrase_for: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            sink_timeout: DEFAULT_SINK_TIMEOUT,
            ts: TsSettings::default(),
        }
    }
}

impl fmt::Debug for SrtSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtSettings")
            .field("app", &self.app)
            .field("latency", &self.latency)
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .field(
                "passphrase_for",
                &self.passphrase_for.as_ref().map(|_| "<fn>"),
            )
            .field("max_connections", &self.max_connections)
            .field("max_connections_per_ip", &self.max_connections_per_ip)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("sink_timeout", &self.sink_timeout)
            .field("ts", &self.ts)
            .finish()
    }
}

impl SrtSettings {
    /// Checks what SRT itself would refuse later; the message names the setting.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if let Some(p) = &self.passphrase {
            check_passphrase(p).map_err(|e| format!("srt.passphrase: {e}"))?;
        }
        if self.max_connections == 0 {
            return Err("srt.max_connections: must be at least 1".into());
        }
        Ok(())
    }
}

/// SRT (and libsrt callers) accept 10 to 79 bytes.
fn check_passphrase(p: &str) -> std::result::Result<(), String> {
    if (10..=79).contains(&p.len()) {
        Ok(())
    } else {
        Err(format!("must be 10 to 79 bytes, not {}", p.len()))
    }
}

/// Binds the UDP socket for [`serve_srt`], with socket buffers sized for SRT. Port 0 picks
/// a free port: read it back with `local_addr()`.
pub async fn bind_srt(addr: SocketAddr) -> Result<std::net::UdpSocket> {
    let mut options = srt_protocol::options::SocketOptions::default();
    options.connect.local = addr;
    options.connect.udp_recv_buffer_size = ByteCount(UDP_BUFFER_BYTES);
    options.connect.udp_send_buffer_size = ByteCount(UDP_BUFFER_BYTES);
    let socket = srt_tokio::bind_socket(&options).await?;
    Ok(socket.into_std()?)
}

/// Serves SRT publishers on `socket` (see [`bind_srt`]) until `shutdown` completes, then
/// closes every session and waits for them. Shares `keys` (one publisher per key, takeover
/// of idle keys) and `handler` with the other listeners.
///
/// Returns an error only if `settings` are invalid or the socket cannot be used at all; a
/// listener that dies later is bound again.
pub async fn serve_srt(
    socket: std::net::UdpSocket,
    settings: SrtSettings,
    handler: Arc<dyn PublishHandler>,
    keys: ActiveKeys,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    settings
        .validate()
        .map_err(|e| Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let ctx = Arc::new(session::Ctx {
        settings,
        handler,
        keys,
    });
    let mut server = Server {
        per_ip: crate::PerIpLimit::new(ctx.settings.max_connections_per_ip),
        ctx,
        sessions: JoinSet::new(),
        peers: HashMap::new(),
        next_id: 0,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);

    let mut bound = Some(server.bind(&socket, local).await?);
    info!(addr = %local, app = ?server.ctx.settings.app, "SRT ingest listening");
    let mut backoff = REBIND_BACKOFF;
    loop {
        let Some((listener, mut incoming)) = bound.take() else {
            // The listener died: wait, then bind again (reaping sessions meanwhile).
            let wake = tokio::time::sleep(backoff);
            tokio::pin!(wake);
            loop {
                tokio::select! {
                    () = &mut shutdown => return server.stop(None, stop_tx).await,
                    Some(done) = server.sessions.join_next_with_id() => server.reap(done),
                    () = &mut wake => break,
                }
            }
            match server.bind(&socket, local).await {
                Ok(b) => {
                    info!(addr = %local, "SRT ingest listening again");
                    bound = Some(b);
                    backoff = REBIND_BACKOFF;
                }
                Err(e) => {
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    error!(addr = %local, error = %e, retry_in = ?backoff, "SRT rebind failed");
                }
            }
            continue;
        };
        let requests = incoming.incoming();
        loop {
            tokio::select! {
                () = &mut shutdown => return server.stop(Some(listener), stop_tx).await,
                Some(done) = server.sessions.join_next_with_id() => server.reap(done),
                request = requests.next() => match request {
                    Some(request) => server.spawn(request, &stop_rx),
                    None => {
                        error!(
                            addr = %local,
                            "SRT listener task stopped (srt-protocol panicked?); its sessions \
                             end, binding again"
                        );
                        break;
                    }
                },
            }
        }
        drop(listener);
    }
}

struct Server {
    ctx: Arc<session::Ctx>,
    per_ip: crate::PerIpLimit,
    sessions: JoinSet<()>,
    peers: HashMap<tokio::task::Id, (u64, SocketAddr)>,
    next_id: u64,
}

impl Server {
    async fn bind(
        &self,
        socket: &std::net::UdpSocket,
        local: SocketAddr,
    ) -> Result<(SrtListener, srt_tokio::SrtIncoming)> {
        // Each (re)bind gets its own handle on the one socket: the port never changes hands,
        // and a dead listener's handle goes away with its last connection.
        let udp = tokio::net::UdpSocket::from_std(socket.try_clone()?)?;
        let idle = self.ctx.settings.idle_timeout;
        Ok(SrtListener::builder()
            .latency(self.ctx.settings.latency)
            .set(|o| o.session.peer_idle_timeout = idle)
            .socket(udp)
            .bind(local)
            .await?)
    }

    fn spawn(&mut self, request: srt_tokio::ConnectionRequest, stop: &watch::Receiver<bool>) {
        self.next_id += 1;
        let id = self.next_id;
        let peer = request.remote();
        let slot = self.per_ip.try_acquire(peer.ip());
        let over_limit = if self.sessions.len() >= self.ctx.settings.max_connections {
            Some("too many sessions (srt.max_connections)")
        } else if slot.is_none() {
            Some("too many sessions from this address (srt.max_connections_per_ip)")
        } else {
            None
        };
        let run = session::run(request, id, Arc::clone(&self.ctx), over_limit, stop.clone());
        let task = async move {
            run.await;
            drop(slot);
        };
        let handle = self.sessions.spawn(task);
        self.peers.insert(handle.id(), (id, peer));
    }

    fn reap(&mut self, done: std::result::Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        match done {
            Ok((id, ())) => {
                self.peers.remove(&id);
            }
            Err(e) => {
                let (session, peer) = self
                    .peers
                    .remove(&e.id())
                    .map_or((0, "unknown".to_owned()), |(s, p)| (s, p.to_string()));
                if e.is_panic() {
                    let msg = crate::panic_message(e.into_panic());
                    error!(session, %peer, panic = %msg, "SRT session panicked; closed it");
                } else {
                    warn!(session, %peer, error = %e, "SRT session task cancelled");
                }
            }
        }
    }

    async fn stop(
        mut self,
        listener: Option<SrtListener>,
        stop_tx: watch::Sender<bool>,
    ) -> Result<()> {
        info!(sessions = self.sessions.len(), "SRT ingest shutting down");
        stop_tx.send_replace(true);
        while let Some(done) = self.sessions.join_next_with_id().await {
            self.reap(done);
        }
        if let Some(mut listener) = listener {
            // `SrtListener::close` unwraps the listener task's result, which panics if that
            // task panicked meanwhile: keep that panic in a task of its own.
            let close = tokio::spawn(async move { listener.close().await });
            if !matches!(
                tokio::time::timeout(Duration::from_secs(2), close).await,
                Ok(Ok(()))
            ) {
                warn!("SRT listener did not close cleanly");
            }
        }
        Ok(())
    }
}
