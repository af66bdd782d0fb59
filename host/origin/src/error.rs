//! One error type for the origin, its classification, and the one function that turns an
//! error into an HTTP response.

use std::path::PathBuf;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::body::{self, Body};

/// Everything that can go wrong in the origin. Variants that reach HTTP are classified by
/// [`Error::classify`]; [`error_response`] is the only place that turns one into a response.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is malformed (a bad `_HLS_msn`, a `_HLS_part` without `_HLS_msn`,
    /// a blocking request too far past the live edge).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such route, stream or rendition.
    #[error("not found")]
    NotFound,
    /// A stream that needs a signed playback URL, asked for without a valid one (403).
    #[error("{0}")]
    Forbidden(#[from] crate::signed::Denied),
    /// Only GET, HEAD and OPTIONS are served.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The object was in the window and has been evicted.
    #[error("{0} has left the live window")]
    Gone(&'static str),
    /// The stream exists but this object does not, or not yet (a future part, a stream that
    /// has not published its first playlist).
    #[error("{0} not available yet")]
    NotYet(&'static str),
    /// A blocking playlist reload was not satisfied within 3× the target duration.
    #[error("blocking reload timed out")]
    ReloadTimeout,
    /// The stream's publisher went away while the request waited on it.
    #[error("stream ended")]
    StreamGone,
    /// `/readyz`: not ready for traffic, and why (the embedding binary's words).
    #[error("not ready: {0}")]
    NotReady(String),
    /// A part's writer dropped it before completing it.
    #[error("part aborted before completion")]
    PartAborted(#[from] weir_media::PartAborted),
    /// A `Range` that asks for no byte of the segment (416); its length, when known.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(Option<u64>),
    /// The request took longer than `OriginSettings::request_timeout` to produce a response.
    #[error("request timed out")]
    RequestTimeout,
    /// A cache fill failed; when the filler was this crate, its error is inside.
    #[error(transparent)]
    Cache(#[from] weir_cache::Error),
    /// The settings are inconsistent; the message names the key.
    #[error("invalid setting {key}: {message}")]
    Settings { key: &'static str, message: String },
    /// Reading a TLS certificate or key file failed.
    #[error("reading TLS {what} from {}: {source}", path.display())]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A TLS file was read but holds no usable item.
    #[error("TLS {what} file {} holds {problem}", path.display())]
    TlsPem {
        what: &'static str,
        path: PathBuf,
        problem: &'static str,
    },
    /// rustls rejected the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Accepting or serving a connection failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Who is at fault, which decides log level and whether a retry can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The request (player, CDN) is wrong.
    Downstream,
    /// The stream or its publisher is not (yet) there.
    Upstream,
    /// A bug or misconfiguration in the origin.
    Internal,
}

/// How an error reaches HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    pub status: StatusCode,
    pub fault: Fault,
    /// Whether the same request may succeed later.
    pub retryable: bool,
    /// What a CDN may do with the error response.
    pub cache_control: &'static str,
}

impl Error {
    pub fn classify(&self) -> Classification {
        use Fault::*;
        let c = |status, fault, retryable, cache_control| Classification {
            status,
            fault,
            retryable,
            cache_control,
        };
        match self {
            // A blocking request too far ahead becomes valid later: never let a CDN keep it.
            Error::BadRequest(_) => c(StatusCode::BAD_REQUEST, Downstream, false, "no-store"),
            Error::NotFound => c(StatusCode::NOT_FOUND, Downstream, false, "no-cache"),
            // The URL carries the token: a CDN that keys on it must not keep the answer, and
            // one that drops it from the key must not serve it to the next viewer.
            Error::Forbidden(_) => c(StatusCode::FORBIDDEN, Downstream, false, "no-store"),
            Error::MethodNotAllowed => c(
                StatusCode::METHOD_NOT_ALLOWED,
                Downstream,
                false,
                "no-store",
            ),
            // Gone stays gone: a CDN may remember that for a while.
            Error::Gone(_) => c(StatusCode::GONE, Downstream, false, "public, max-age=60"),
            // A future part or a stream about to start: exists any moment, so never cached.
            Error::NotYet(_) => c(StatusCode::NOT_FOUND, Upstream, true, "no-cache"),
            Error::ReloadTimeout => c(StatusCode::SERVICE_UNAVAILABLE, Upstream, true, "no-store"),
            Error::StreamGone => c(StatusCode::NOT_FOUND, Upstream, true, "no-cache"),
            // The reason is the operator's to read (a probe's log, `curl /readyz`).
            Error::NotReady(_) => c(StatusCode::SERVICE_UNAVAILABLE, Upstream, true, "no-store"),
            Error::PartAborted(_) => c(StatusCode::SERVICE_UNAVAILABLE, Upstream, true, "no-store"),
            Error::RequestTimeout => c(StatusCode::SERVICE_UNAVAILABLE, Internal, true, "no-store"),
            // Only said of a complete segment, whose length never changes.
            Error::RangeNotSatisfiable(_) => c(
                StatusCode::RANGE_NOT_SATISFIABLE,
                Downstream,
                false,
                "no-cache",
            ),
            Error::Cache(e) => match e.fill_source::<Error>() {
                Some(inner) => inner.classify(),
                None => c(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Internal,
                    true,
                    "no-store",
                ),
            },
            Error::Settings { .. }
            | Error::TlsFile { .. }
            | Error::TlsPem { .. }
            | Error::Tls(_)
            | Error::Io(_) => c(
                StatusCode::INTERNAL_SERVER_ERROR,
                Internal,
                false,
                "no-store",
            ),
        }
    }

    /// The short text sent to the client: the filler's message for a failed cache fill,
    /// nothing internal otherwise.
    fn public_message(&self) -> String {
        match self {
            Error::Cache(e) => match e.fill_source::<Error>() {
                Some(inner) => inner.public_message(),
                None => "internal error".to_owned(),
            },
            e if e.classify().fault == Fault::Internal && !matches!(e, Error::RequestTimeout) => {
                "internal error".to_owned()
            }
            e => e.to_string(),
        }
    }
}

/// The one place an error becomes a response: its status, its `Cache-Control`, and a short
/// text body.
pub fn error_response(err: &Error) -> Response<Body> {
    let class = err.classify();
    let text = Bytes::from(format!("{}\n", err.public_message()));
    let len = text.len();
    let mut response = Response::new(body::full(text));
    *response.status_mut() = class.status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(class.cache_control),
    );
    if let Error::RangeNotSatisfiable(total) = err {
        let total = total.map_or_else(|| "*".to_owned(), |t| t.to_string());
        if let Ok(v) = HeaderValue::try_from(format!("bytes */{total}")) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
    if matches!(err, Error::MethodNotAllowed) {
        headers.insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_fill_keeps_the_fillers_classification() {
        let inner = Error::PartAborted(weir_media::PartAborted);
        let cache = weir_cache::Error::Fill(std::sync::Arc::new(inner));
        let err = Error::from(cache);
        assert_eq!(err.classify().status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.public_message(), "part aborted before completion");
    }

    #[test]
    fn internal_errors_say_little() {
        let err = Error::Io(std::io::Error::other("/etc/secret path"));
        let response = error_response(&err);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.public_message(), "internal error");
    }
}
