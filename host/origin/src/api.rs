//! The operator API (`/api/…`): routed to a handler the embedding binary supplies.
//!
//! The origin itself stays free of operator concerns: it reads the (size-limited) request
//! body, and hands head and body to the [`ApiHandler`]. Everything else (auth, JSON, what
//! the routes do) belongs to the handler.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use weir_cache::BoxFuture;

use crate::body::{self, Body};
use crate::Origin;

/// Request bodies larger than this are refused with 413 before the handler runs.
pub const MAX_API_BODY: usize = 64 * 1024;

/// Answers `/api/…` requests.
pub trait ApiHandler: Send + Sync + 'static {
    fn handle(&self, head: http::request::Parts, body: Bytes) -> BoxFuture<'_, Response<Body>>;

    /// The largest body this request may send. Raise it only for requests that are already
    /// authorised (plugin uploads), so strangers cannot make the origin buffer megabytes.
    fn body_limit(&self, head: &http::request::Parts) -> usize {
        let _ = head;
        MAX_API_BODY
    }
}

/// A plain-text response for API handlers.
pub fn text_response(status: StatusCode, text: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(body::full(Bytes::from(text.into())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    r
}

/// A JSON response for API handlers.
pub fn json_response(status: StatusCode, json: String) -> Response<Body> {
    let mut r = text_response(status, json);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

impl Origin {
    /// Whether `path` belongs to the operator API (and one is configured).
    pub(crate) fn is_api(&self, path: &str) -> bool {
        self.api.is_some() && path.starts_with("/api/")
    }

    /// Reads the body (at most [`MAX_API_BODY`]) and runs the API handler.
    pub(crate) async fn handle_api<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(api) = self.api.as_ref() else {
            return text_response(StatusCode::NOT_FOUND, "not found\n");
        };
        let (head, body) = request.into_parts();
        let span = tracing::info_span!("api", method = %head.method, path = %head.uri.path());
        let _enter = span.enter();
        let limit = api.body_limit(&head);
        let bytes = match Limited::new(body, limit).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                tracing::info!(error = %e, "api request body refused");
                return text_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body refused: {e} (limit {limit} bytes)\n"),
                );
            }
        };
        drop(_enter);
        let response = api.handle(head, bytes).await;
        tracing::info!(parent: &span, status = response.status().as_u16(), "api request");
        response
    }
}
