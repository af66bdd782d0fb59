//! Every cross-cutting HTTP concern, in one place, outermost first.
//!
//! Per connection (caps in `limits.rs`, applied in `server.rs`; hyper's limits built by
//! [`connection_builder`]):
//! connection caps (total, per client) → TLS handshake timeout → idle timeout →
//! HTTP/1.1 head size and header-read timeout / HTTP/2 header-list size, stream limit,
//! reset-flood guards and keep-alive.
//!
//! Per request ([`Origin::handle`]): access log → CORS → HEAD → deadline → phases.
//! `/api/…` requests take their own path (`api.rs`): head check (token) → body size cap and
//! read deadline → the handler.
//! Plain functions rather than tower layers: the stack is fixed and small, and a reader sees
//! the whole order here.

use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tracing::{field, Instrument};

use crate::body::{self, Body};
use crate::error::{error_response, Fault};
use crate::settings::OriginSettings;
use crate::{Error, Origin};

/// Headers a player script may read from a cross-origin response beyond the safelisted ones.
const EXPOSE_HEADERS: &str = "Content-Length, Content-Range, Date, Age";

/// The hyper connection builder, with the per-connection limits.
pub(crate) fn connection_builder(settings: &OriginSettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Slowloris: a client that trickles request headers is cut off. This timer also runs
        // while a keep-alive connection waits for its next request, so it bounds idle HTTP/1.1
        // connections too.
        .header_read_timeout(settings.header_read_timeout)
        // The read buffer, which bounds the request head (a larger one gets 431): memory per
        // connection stays small however many connections a flood opens.
        .max_buf_size(settings.max_header_bytes)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        // One player connection carries playlist and part requests in parallel; this caps
        // what one client can hold open.
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
        // Rapid reset (streams opened and cancelled at once) and peers that provoke resets
        // get GOAWAY instead of free work.
        .max_pending_accept_reset_streams(settings.http2_max_pending_accept_reset_streams)
        .max_local_error_reset_streams(settings.http2_max_local_error_reset_streams)
        // Finds peers that vanished without a FIN, which would otherwise hold blocked streams.
        // A live peer that answers PINGs but sends nothing is closed by the idle timeout
        // (server.rs), which hyper does not have for HTTP/2.
        .keep_alive_interval(settings.http2_keep_alive_interval)
        .keep_alive_timeout(settings.http2_keep_alive_timeout);
    builder
}

/// The request path as the logs show it. Under `/api/` a path may carry a stream key, and
/// without an API handler to redact it nothing of it is shown. A signed playback URL's
/// signature is left out (its expiry stays). Anything else from the network is logged with
/// `{:?}`, so a client cannot forge log lines.
pub(crate) fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path.starts_with("/api/") {
        return "/api/…".into();
    }
    crate::signed::redacted(path).map_or(path.into(), Into::into)
}

impl Origin {
    /// Serves one request through every layer and phase. Each connection calls this; it
    /// needs no socket, so tests and embedders can call it directly. The request body is
    /// never read.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Body> {
        let (head, _body) = request.into_parts();
        self.access_log(head).await
    }

    /// Layer 1, outermost: a span per request and the access log. Outermost so the status it
    /// records is the one sent (after CORS, HEAD and the deadline have had their say) and the
    /// latency covers every layer. Latency ends at the response head (for a part in
    /// progress, once it is complete). The query is not logged (it may carry CDN tokens), nor is any
    /// `/api/…` path (it may carry a stream key); the path is escaped (`{:?}`).
    ///
    /// The span is at debug, like the per-request line: at info, creating, entering and
    /// recording an info span for every request was about a quarter of weir's own CPU time
    /// serving a cached part (perf on bench/serve.sh: the fmt layer formats the span's fields
    /// into a new string per request). A 5xx line names the method and path itself, and
    /// carries the connection's span (its id) as before.
    #[allow(clippy::disallowed_methods)] // the access log's request duration
    async fn access_log(&self, head: http::request::Parts) -> Response<Body> {
        let span = tracing::debug_span!(
            "request",
            method = ?head.method,
            path = ?loggable_path(head.uri.path()),
            version = ?head.version,
            status = field::Empty,
            latency_ms = field::Empty,
        );
        // Cheap: a standard method is inline, a URI shares the request's buffer.
        let method = head.method.clone();
        let uri = head.uri.clone();
        let started = tokio::time::Instant::now();
        let response = self.cors(head).instrument(span.clone()).await;
        let status = response.status().as_u16();
        self.stats.count(status);
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        span.record("status", status);
        span.record("latency_ms", latency_ms);
        span.in_scope(|| {
            if response.status().is_server_error() {
                tracing::warn!(
                    status,
                    latency_ms,
                    method = ?method,
                    path = ?loggable_path(uri.path()),
                    "served"
                );
            } else {
                // One line per request at info would dominate the log at thousands of
                // viewers (each polls every part); enable with WEIR_LOG=weir_origin=debug.
                tracing::debug!(status, latency_ms, "served");
            }
        });
        response
    }

    /// Layer 2: CORS. Outside the deadline and the phases so that errors, timeouts and
    /// preflights all carry the headers a browser needs before it lets a player read them.
    async fn cors(&self, head: http::request::Parts) -> Response<Body> {
        let mut response = if head.method == Method::OPTIONS {
            preflight(&head)
        } else {
            self.head_method(head).await
        };
        let headers = response.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.cors_allow_origin.clone(),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
        response
    }

    /// Layer 3: HEAD runs the GET path and drops the body, keeping `Content-Length`, so both
    /// methods share one code path and always agree on headers.
    async fn head_method(&self, head: http::request::Parts) -> Response<Body> {
        let is_head = head.method == Method::HEAD;
        let mut response = self.deadline(head).await;
        if is_head {
            *response.body_mut() = body::empty();
        }
        response
    }

    /// Layer 4, innermost: a deadline on producing the response head. Inside CORS so a
    /// timeout still reaches a browser; outside the phases so it bounds all of them. Blocking
    /// reloads carry their own tighter limit (3× target duration → 503); a part in progress
    /// completes within a part target, or is aborted (→ 503). Bodies are whole objects.
    async fn deadline(&self, head: http::request::Parts) -> Response<Body> {
        match tokio::time::timeout(self.settings.request_timeout, self.run_phases(head)).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                log_error(&err);
                error_response(&err)
            }
            Err(_) => {
                let err = Error::RequestTimeout;
                log_error(&err);
                error_response(&err)
            }
        }
    }
}

fn log_error(err: &Error) {
    let class = err.classify();
    match class.fault {
        Fault::Internal => tracing::error!(error = %err, "request failed"),
        Fault::Upstream => tracing::debug!(error = %err, "request failed upstream"),
        Fault::Downstream => tracing::debug!(error = %err, "bad request"),
    }
}

/// Answers a CORS preflight (or any OPTIONS): 204 with what the browser may send.
fn preflight(head: &http::request::Parts) -> Response<Body> {
    let mut response = Response::new(body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    let methods = HeaderValue::from_static("GET, HEAD, OPTIONS");
    headers.insert(header::ALLOW, methods.clone());
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
    if let Some(requested) = head.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}
