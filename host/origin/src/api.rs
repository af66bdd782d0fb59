//! The operator API (`/api/…`): routed to a handler the embedding binary supplies.
//!
//! The origin keeps strangers from costing anything: the handler judges the request head
//! first ([`ApiHandler::admit`]: the token), so a refused request gets its answer (401)
//! before a byte of its body is read; an admitted one must send a body no larger than the
//! handler allows (413) within `api_body_timeout` (408). Only then does the handler see head
//! and body. What the routes do belongs to the handler; the origin only knows the shape of
//! a cue request ([`parse_cue_request`]), so that parser can be fuzzed without the binary.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Deserialize;
use tracing::Instrument;
use weir_cache::BoxFuture;

use crate::body::{self, Body};
use crate::stats::ApiRefused;
use crate::{Error, Origin, Result};

/// Request bodies larger than this are refused with 413 before the handler runs.
pub const MAX_API_BODY: usize = 64 * 1024;

/// What [`ApiHandler::admit`] decides from a request's head.
#[derive(Debug)]
pub enum Admission {
    /// Read the body, at most `limit` bytes, then call [`ApiHandler::handle`].
    Read { limit: usize },
    /// Send this response without reading the body (a 401, usually).
    Refuse(Response<Body>),
}

/// Answers `/api/…` requests.
pub trait ApiHandler: Send + Sync + 'static {
    /// Judges the head alone, before any of the body is read: refuse strangers here, so they
    /// cannot make the origin read or buffer anything. Raise the limit above
    /// [`MAX_API_BODY`] only for requests that are authorised (plugin uploads).
    fn admit(&self, head: &http::request::Parts) -> Admission;

    fn handle(&self, head: http::request::Parts, body: Bytes) -> BoxFuture<'_, Response<Body>>;

    /// The path as logs may show it, with any secret in it (a stream key) redacted. The
    /// origin escapes it. The default shows none of it.
    fn loggable_path(&self, path: &str) -> String {
        crate::layers::loggable_path(path).into_owned()
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
        self.handler_for(path).is_some()
    }

    fn handler_for(&self, path: &str) -> Option<&Arc<dyn ApiHandler>> {
        self.handlers
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix))
            .map(|(_, h)| h)
    }

    /// Admits the request on its head, reads the body (within the handler's limit and
    /// `api_body_timeout`) and runs the API handler.
    pub(crate) async fn handle_api<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(api) = self.handler_for(request.uri().path()) else {
            return text_response(StatusCode::NOT_FOUND, "not found\n");
        };
        let (head, body) = request.into_parts();
        let span = tracing::info_span!(
            "api",
            method = ?head.method,
            path = ?api.loggable_path(head.uri.path()),
        );
        let bytes = match self.read_api_body(&**api, &head, body).await {
            Ok(bytes) => bytes,
            Err((why, response)) => {
                self.stats.api_refused(why);
                self.stats.count(response.status().as_u16());
                // Strangers can send these as fast as they like: debug, with a counter.
                tracing::debug!(
                    parent: &span,
                    status = response.status().as_u16(),
                    reason = why.as_str(),
                    "api request refused"
                );
                return response;
            }
        };
        let response = api.handle(head, bytes).instrument(span.clone()).await;
        self.stats.count(response.status().as_u16());
        tracing::info!(parent: &span, status = response.status().as_u16(), "api request");
        response
    }

    async fn read_api_body<B>(
        &self,
        api: &dyn ApiHandler,
        head: &http::request::Parts,
        body: B,
    ) -> std::result::Result<Bytes, (ApiRefused, Response<Body>)>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let limit = match api.admit(head) {
            Admission::Read { limit } => limit,
            Admission::Refuse(response) => return Err((ApiRefused::Unauthorized, response)),
        };
        let too_large = || {
            let mut r = text_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body refused: larger than {limit} bytes\n"),
            );
            close_after(&mut r);
            (ApiRefused::TooLarge, r)
        };
        // A Content-Length over the limit is answered before reading.
        if body.size_hint().lower() > limit as u64 {
            return Err(too_large());
        }
        let timeout = self.settings.api_body_timeout;
        match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<LengthLimitError>() => Err(too_large()),
            Ok(Err(e)) => {
                // The client reset or broke its body; it will hardly read this.
                let mut r = text_response(
                    StatusCode::BAD_REQUEST,
                    format!("request body failed: {e}\n"),
                );
                close_after(&mut r);
                Err((ApiRefused::BadBody, r))
            }
            Err(_) => {
                let mut r = text_response(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "request body not received within {} s\n",
                        timeout.as_secs_f64()
                    ),
                );
                close_after(&mut r);
                Err((ApiRefused::SlowBody, r))
            }
        }
    }
}

/// The rest of the body is never read: HTTP/1.1 cannot go on with the next request.
fn close_after(response: &mut Response<Body>) {
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
}

/// The body of `POST /api/v1/streams/{key}/cues`, checked; see [`parse_cue_request`].
#[derive(Clone, Debug, PartialEq)]
pub enum CueSpec {
    /// `{"type": "out"|"in", "duration": seconds, "id": n}`: a splice_insert to build.
    Splice {
        out: bool,
        /// From one 90 kHz tick to 86400 seconds.
        duration: Option<Duration>,
        /// splice_event_id; the caller picks one when absent.
        id: Option<u32>,
    },
    /// `{"scte35": "<base64>"}`: a whole splice_info_section, decoded but not yet parsed.
    Section(Vec<u8>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CueRequest {
    #[serde(rename = "type")]
    kind: Option<SpliceType>,
    /// Break length in seconds (for `out`).
    duration: Option<f64>,
    id: Option<u32>,
    scte35: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SpliceType {
    Out,
    In,
}

/// Parses and checks a cue request body. Every refusal is [`Error::BadRequest`] with a
/// message for the operator.
pub fn parse_cue_request(body: &[u8]) -> Result<CueSpec> {
    use base64::Engine as _;
    let req: CueRequest = serde_json::from_slice(body)
        .map_err(|e| Error::BadRequest(format!("bad cue JSON: {e}")))?;
    let bad = |m: String| Error::BadRequest(m);
    match (req.kind, req.scte35) {
        (Some(_), Some(_)) => Err(bad("give either \"type\" or \"scte35\", not both".into())),
        (None, None) => Err(bad(
            "give \"type\": \"out\"|\"in\", or \"scte35\": base64 section".into(),
        )),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(CueSpec::Section)
            .map_err(|e| bad(format!("scte35 is not base64: {e}"))),
        (Some(kind), None) => {
            let duration = match req.duration {
                None => None,
                // At least one 90 kHz tick: anything shorter would be sent as a break of
                // length zero (found by the cue_api fuzz target).
                Some(d) if d.is_finite() && d * 90_000.0 >= 1.0 && d <= 86_400.0 => {
                    Some(Duration::from_secs_f64(d))
                }
                Some(d) => {
                    return Err(bad(format!(
                        "duration {d} must be in [1/90000, 86400] seconds"
                    )))
                }
            };
            Ok(CueSpec::Splice {
                out: matches!(kind, SpliceType::Out),
                duration,
                id: req.id,
            })
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn refused(json: &str) -> String {
        match parse_cue_request(json.as_bytes()) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("{json} gave {other:?}"),
        }
    }

    #[test]
    fn cue_requests_are_checked() {
        assert!(refused("{}").contains("type"));
        assert!(refused(r#"{"type":"out","scte35":"AA=="}"#).contains("not both"));
        assert!(refused(r#"{"type":"out","duration":-1}"#).contains("duration"));
        assert!(refused(r#"{"type":"out","duration":86400.5}"#).contains("duration"));
        assert!(refused(r#"{"type":"out","duration":1e-300}"#).contains("duration"));
        assert!(refused(r#"{"type":"out","duration":0.00001}"#).contains("duration"));
        assert!(refused(r#"{"scte35":"%%%"}"#).contains("base64"));
        assert!(refused(r#"{"type":"sideways"}"#).contains("bad cue JSON"));
        assert!(refused(r#"{"type":"in","extra":1}"#).contains("bad cue JSON"));
        assert!(refused(r#"{"type":"in","id":4294967296}"#).contains("bad cue JSON"));
        assert!(refused("[1,").contains("bad cue JSON"));
        assert_eq!(
            parse_cue_request(br#"{"type":"in","id":7}"#).unwrap(),
            CueSpec::Splice {
                out: false,
                duration: None,
                id: Some(7)
            }
        );
        assert_eq!(
            parse_cue_request(br#"{"type":"out","duration":30}"#).unwrap(),
            CueSpec::Splice {
                out: true,
                duration: Some(Duration::from_secs(30)),
                id: None
            }
        );
        assert_eq!(
            parse_cue_request(br#"{"scte35":" /DA= "}"#).unwrap(),
            CueSpec::Section(vec![0xfc, 0x30])
        );
    }
}
