//! Listeners: plain TCP (HTTP/1.1 and h2c prior knowledge on one port) and TLS (ALPN), with
//! a connection limit and graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{field, Instrument};

use crate::layers::connection_builder;
use crate::{Origin, Result};

/// After a failed `accept` (out of file descriptors, usually), wait before the next try
/// rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Origin {
    /// Serves connections from `listener` until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish for `shutdown_grace`, and closes what is left.
    ///
    /// Without `tls`, the port speaks HTTP/1.1 and HTTP/2 with prior knowledge (h2c), told
    /// apart by the HTTP/2 preface. With `tls`, ALPN picks the protocol (see [`crate::load_tls`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<ServerConfig>>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()> {
        let builder = connection_builder(&self.settings);
        let acceptor = tls.map(TlsAcceptor::from);
        // Connection limit: at the cap we stop accepting, and the kernel queue holds the rest.
        let slots = Arc::new(Semaphore::new(self.settings.max_connections));
        let graceful = GracefulShutdown::new();
        let mut connections = JoinSet::new();
        let mut next_id: u64 = 0;
        tokio::pin!(shutdown);

        loop {
            while connections.try_join_next().is_some() {}
            let permit = tokio::select! {
                biased;
                () = &mut shutdown => break,
                permit = Arc::clone(&slots).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let stream = tokio::select! {
                biased;
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
            };
            next_id += 1;
            // Viewer IPs are never logged; the connection id ties its requests together.
            let span = tracing::info_span!(
                "conn",
                id = next_id,
                tls = acceptor.is_some(),
                alpn = field::Empty
            );
            let watcher = graceful.watcher();
            let origin = Arc::clone(&self);
            let builder = builder.clone();
            let acceptor = acceptor.clone();
            let handshake_timeout = self.settings.tls_handshake_timeout;
            connections.spawn(
                async move {
                    let _permit = permit;
                    // Parts are written in small chunks as they are produced; Nagle would
                    // hold them back.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(error = %e, "set_nodelay failed");
                    }
                    let Some(acceptor) = acceptor else {
                        serve_connection(&builder, origin, stream, watcher).await;
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
                    tracing::Span::current().record(
                        "alpn",
                        alpn.as_deref()
                            .map(String::from_utf8_lossy)
                            .as_deref()
                            .unwrap_or("none"),
                    );
                    serve_connection(&builder, origin, tls, watcher).await;
                }
                .instrument(span),
            );
        }

        drop(listener);
        tracing::info!(connections = graceful.count(), "shutting down");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(self.settings.shutdown_grace) => {
                tracing::warn!("shutdown grace elapsed; closing the remaining connections");
            }
        }
        connections.shutdown().await;
        Ok(())
    }
}

async fn serve_connection<I>(
    builder: &auto::Builder<TokioExecutor>,
    origin: Arc<Origin>,
    io: I,
    watcher: Watcher,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let origin = Arc::clone(&origin);
        async move {
            if origin.is_api(request.uri().path()) {
                return Ok::<_, Infallible>(origin.handle_api(request).await);
            }
            Ok::<_, Infallible>(origin.handle(request).await)
        }
    });
    let connection = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(connection).await {
        // Resets and early closes are routine for players that switch renditions.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
