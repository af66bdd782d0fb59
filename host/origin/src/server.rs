//! Listeners: plain TCP (HTTP/1.1 and h2c prior knowledge on one port) and TLS (ALPN), with
//! connection caps (in total and per client address), an idle timeout, and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{field, Instrument};

use crate::body::Tracked;
use crate::layers::connection_builder;
use crate::limits::InFlight;
use crate::{Origin, Result};

/// After a failed `accept` (out of file descriptors, usually), wait before the next try
/// rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A connection asked to close (GOAWAY, or `Connection: close` on its next response) that
/// is still open and idle after this is dropped: a peer that never acknowledges cannot keep
/// its slot.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

impl Origin {
    /// Serves connections from `listener` until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish for `shutdown_grace`, and closes what is left.
    ///
    /// Without `tls`, the port speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c), told
    /// apart by the HTTP/2 preface. With `tls`, ALPN picks the protocol (see [`crate::load_tls`]).
    ///
    /// A connection beyond `max_connections` (all listeners of this origin together), or
    /// beyond `max_connections_per_ip` from one client, is closed as soon as it is accepted,
    /// before a byte is read: counted in `/metrics`, logged at debug only (one line per
    /// refusal at a higher level would turn a flood into a log flood).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let builder = connection_builder(&self.settings);
        let acceptor = tls.map(TlsAcceptor::from);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut next_id: u64 = 0;
        tokio::pin!(shutdown);

        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            let slot = match self.connections.admit(
                peer.ip(),
                self.settings.max_connections,
                self.settings.max_connections_per_ip,
            ) {
                Ok(slot) => slot,
                Err(why) => {
                    self.stats.refused(why);
                    // Viewer IPs are never logged.
                    tracing::debug!(reason = why.as_str(), "connection refused");
                    drop(stream);
                    continue;
                }
            };
            next_id += 1;
            // Viewer IPs are never logged; the connection id ties its requests together.
            let span = tracing::info_span!(
                "conn",
                id = next_id,
                tls = acceptor.is_some(),
                alpn = field::Empty
            );
            let stop = stop_rx.clone();
            let origin = Arc::clone(&self);
            let builder = builder.clone();
            let acceptor = acceptor.clone();
            let handshake_timeout = self.settings.tls_handshake_timeout;
            connections.spawn(
                async move {
                    let _slot = slot;
                    // Parts are written in small chunks as they are produced; Nagle would
                    // hold them back.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "set_nodelay failed");
                    }
                    let conn = Connection {
                        peer,
                        local: stream.local_addr().unwrap_or(peer),
                    };
                    let Some(acceptor) = acceptor else {
                        serve_connection(&builder, origin, stream, stop, conn).await;
                        return;
                    };
                    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    };
                    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                    let builder = match alpn.as_deref() {
                        Some(b"h2") => builder.http2_only(),
                        Some(b"http/1.1") => builder.http1_only(),
                        // No ALPN: tell the protocols apart by the HTTP/2 preface.
                        _ => builder,
                    };
                    // Only a protocol the server offered can be selected; escaped anyway.
                    tracing::Span::current().record(
                        "alpn",
                        field::debug(
                            alpn.as_deref()
                                .map(String::from_utf8_lossy)
                                .as_deref()
                                .unwrap_or("none"),
                        ),
                    );
                    serve_connection(&builder, origin, tls, stop, conn).await;
                }
                .instrument(span),
            );
        }

        drop(listener);
        tracing::info!(connections = connections.len(), "shutting down");
        // Every connection finishes its in-flight requests and closes (GOAWAY on HTTP/2,
        // `Connection: close` on HTTP/1.1).
        let _ = stop_tx.send(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        match tokio::time::timeout(self.settings.shutdown_grace, drained).await {
            Ok(()) => tracing::info!("all connections closed"),
            Err(_) => {
                tracing::warn!("shutdown grace elapsed; closing the remaining connections");
            }
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// The connection a request came on, in its extensions: for handlers that answer with an
/// address (WHIP's ICE candidates are the address the publisher reached). Never logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connection {
    pub peer: std::net::SocketAddr,
    pub local: std::net::SocketAddr,
}

/// Drives one connection until it ends, the server stops, or it sits idle (no request in
/// flight) for `idle_timeout`. Idle or stopping, it is asked to close gracefully, and dropped
/// if it is still idle [`CLOSE_GRACE`] later. One timer, re-armed only when it fires: then
/// the in-flight count says whether the connection is busy and since when it is idle.
#[allow(clippy::disallowed_methods)] // a connection's task is its driver: idle timeout
async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    origin: Arc<Origin>,
    io: I,
    mut stop: watch::Receiver<bool>,
    conn: Connection,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let idle_timeout = origin.settings.idle_timeout;
    let in_flight = InFlight::new();
    let counter = in_flight.clone();
    let service_origin = Arc::clone(&origin);
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let origin = Arc::clone(&service_origin);
        request.extensions_mut().insert(conn);
        let guard = counter.begin();
        async move {
            let response = if origin.is_api(request.uri().path()) {
                origin.handle_api(request).await
            } else {
                origin.handle(request).await
            };
            Ok::<_, Infallible>(response.map(|body| Tracked {
                body,
                _guard: guard,
            }))
        }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    // Idle since: the later of the last request's end and the moment it was asked to close.
    let mut closing_since: Option<Instant> = None;
    let timer = tokio::time::sleep(idle_timeout);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    // Resets and early closes are routine for players that switch renditions.
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            Ok(_) = stop.wait_for(|stop| *stop), if closing_since.is_none() => {
                connection.as_mut().graceful_shutdown();
                let now = Instant::now();
                closing_since = Some(now);
                timer.as_mut().reset(now + CLOSE_GRACE);
            }
            () = timer.as_mut() => {
                let now = Instant::now();
                let wait = if closing_since.is_some() { CLOSE_GRACE } else { idle_timeout };
                if in_flight.count() > 0 {
                    // Busy: idle at the earliest a whole wait after its last request ends.
                    timer.as_mut().reset(now + wait);
                    continue;
                }
                let since = in_flight.idle_since().max(closing_since.unwrap_or(now - wait));
                if since + wait > now {
                    timer.as_mut().reset(since + wait);
                    continue;
                }
                if closing_since.is_some() {
                    tracing::debug!("connection dropped: still open after being asked to close");
                    return;
                }
                origin.stats.idle_closed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::debug!(idle_timeout = ?idle_timeout, "idle connection closed");
                connection.as_mut().graceful_shutdown();
                closing_since = Some(now);
                timer.as_mut().reset(now + CLOSE_GRACE);
            }
        }
    }
}
