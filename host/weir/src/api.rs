//! The operator API, under `/api/v1/`, behind a bearer token (`api.token` in the config).
//!
//! - `GET /api/v1/streams`: the live streams.
//! - `POST /api/v1/streams/{key}/cues`: inject a splice into a live stream, for operators whose
//!   contribution carries no SCTE-35. The body is either a splice,
//!   `{"type": "out", "duration": 30.0, "id": 42}` / `{"type": "in", "id": 42}`, which
//!   becomes a SCTE-35 splice_insert section, or a complete section,
//!   `{"scte35": "<base64 splice_info_section>"}`. Either way the splice happens at the live
//!   edge (the section's own splice_time refers to the contribution's clock, which an API
//!   caller does not see).
//! - `GET /api/v1/tenants/{tenant}/plugins`: the tenant's plugin chain, in order.
//! - `PUT /api/v1/tenants/{tenant}/plugins/{name}`: push a plugin. The body is the component
//!   (`application/wasm`, up to 64 MiB); its config text travels base64-encoded in the
//!   `Weir-Plugin-Config` header. The component is compiled, checked and `init`ed before the
//!   chain is swapped; on any error the answer is 422 with the reason and the chain is left
//!   as it was. `weir plugin push` is the client.
//! - `DELETE /api/v1/tenants/{tenant}/plugins/{name}`: take a plugin out of the chain.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde::Deserialize;
use weir_media::{CueEvent, CueKind, StreamKey, StreamRegistry};
use weir_origin::{json_response, text_response, ApiHandler, Body};

use weir_plugin_host::{PluginSpec, Plugins, PushError};

use crate::pipeline::Streams;

/// Maps a stream key to its stream name, as ingest does.
pub type KeyResolver = Arc<dyn Fn(&StreamKey) -> Option<String> + Send + Sync>;

pub struct Api {
    pub token: String,
    pub streams: Streams,
    pub registry: StreamRegistry,
    pub resolve: KeyResolver,
    pub plugins: Plugins,
}

/// Plugin components are megabytes (JavaScript and Python ones 12–20 MB).
const MAX_PLUGIN_BODY: usize = 64 << 20;
/// The header that carries a pushed plugin's config, base64.
pub const CONFIG_HEADER: &str = "weir-plugin-config";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CueRequest {
    #[serde(rename = "type")]
    kind: Option<SpliceType>,
    /// Break length in seconds (for `out`).
    duration: Option<f64>,
    /// splice_event_id; defaults to a counter.
    id: Option<u32>,
    /// A base64 splice_info_section, instead of `type`.
    scte35: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum SpliceType {
    Out,
    In,
}

impl ApiHandler for Api {
    fn handle(
        &self,
        head: http::request::Parts,
        body: Bytes,
    ) -> weir_cache::BoxFuture<'_, Response<Body>> {
        Box::pin(async move { self.route(&head, &body).await })
    }

    fn body_limit(&self, head: &http::request::Parts) -> usize {
        if head.method == Method::PUT
            && head.uri.path().starts_with("/api/v1/tenants/")
            && self.authorized(head)
        {
            MAX_PLUGIN_BODY
        } else {
            weir_origin::MAX_API_BODY
        }
    }
}

impl Api {
    fn authorized(&self, head: &http::request::Parts) -> bool {
        let Some(value) = head.headers.get(http::header::AUTHORIZATION) else {
            return false;
        };
        let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        constant_time_eq(token.trim().as_bytes(), self.token.as_bytes())
    }

    async fn route(&self, head: &http::request::Parts, body: &Bytes) -> Response<Body> {
        if !self.authorized(head) {
            let mut r = text_response(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
        let path = head.uri.path();
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match (&head.method, parts.as_slice()) {
            (&Method::GET, ["", "api", "v1", "streams"]) => {
                let names = self.registry.names();
                json_response(
                    StatusCode::OK,
                    serde_json::json!({ "streams": names }).to_string(),
                )
            }
            (&Method::POST, ["", "api", "v1", "streams", key, "cues"]) => self.post_cue(key, body),
            (&Method::GET, ["", "api", "v1", "tenants", tenant, "plugins"]) => {
                match self.plugins.list(tenant) {
                    Ok(list) => json_response(
                        StatusCode::OK,
                        serde_json::json!({ "tenant": tenant, "plugins": list }).to_string(),
                    ),
                    Err(e) => push_error(&e),
                }
            }
            (&Method::PUT, ["", "api", "v1", "tenants", tenant, "plugins", name]) => {
                self.put_plugin(head, tenant, name, body.clone()).await
            }
            (&Method::DELETE, ["", "api", "v1", "tenants", tenant, "plugins", name]) => {
                match self.plugins.remove(tenant, name).await {
                    Ok(()) => text_response(StatusCode::OK, format!("removed {name}\n")),
                    Err(e) => push_error(&e),
                }
            }
            (_, ["", "api", "v1", "streams", _, "cues"])
            | (_, ["", "api", "v1", "streams"])
            | (_, ["", "api", "v1", "tenants", _, "plugins", ..]) => {
                text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
            }
            _ => text_response(StatusCode::NOT_FOUND, "no such API route\n"),
        }
    }

    async fn put_plugin(
        &self,
        head: &http::request::Parts,
        tenant: &str,
        name: &str,
        component: Bytes,
    ) -> Response<Body> {
        let config = match head.headers.get(CONFIG_HEADER) {
            None => String::new(),
            Some(v) => match base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
            {
                Some(c) => c,
                None => {
                    return text_response(
                        StatusCode::BAD_REQUEST,
                        format!("{CONFIG_HEADER} must be base64 of UTF-8 text\n"),
                    )
                }
            },
        };
        if component.is_empty() {
            return text_response(StatusCode::BAD_REQUEST, "empty body: send the component\n");
        }
        let spec = PluginSpec {
            name: name.to_owned(),
            component,
            config,
        };
        match self.plugins.push(tenant, spec).await {
            Ok(summary) => json_response(
                StatusCode::OK,
                serde_json::to_string(&summary).unwrap_or_default(),
            ),
            Err(e) => push_error(&e),
        }
    }

    fn post_cue(&self, key: &str, body: &[u8]) -> Response<Body> {
        let key = StreamKey::new(key);
        let Some(name) = (self.resolve)(&key) else {
            return text_response(StatusCode::NOT_FOUND, "unknown stream key\n");
        };
        let req: CueRequest = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => {
                return text_response(StatusCode::BAD_REQUEST, format!("bad cue JSON: {e}\n"))
            }
        };
        let cue = match cue_from_request(req) {
            Ok(c) => c,
            Err(msg) => return text_response(StatusCode::BAD_REQUEST, format!("{msg}\n")),
        };
        let reply = serde_json::json!({
            "stream": name,
            "id": cue.id,
            "kind": format!("{:?}", cue.kind),
            "out_of_network": cue.out_of_network,
            "duration": cue.duration.map(|d| d.as_secs_f64()),
            "scte35": base64::engine::general_purpose::STANDARD.encode(&cue.section),
        });
        match self.streams.inject_cue(&name, cue) {
            Ok(()) => json_response(StatusCode::ACCEPTED, reply.to_string()),
            Err(_) => text_response(StatusCode::NOT_FOUND, "stream is not live\n"),
        }
    }
}

fn push_error(e: &PushError) -> Response<Body> {
    let status = match e {
        PushError::UnknownTenant(_) | PushError::UnknownPlugin { .. } => StatusCode::NOT_FOUND,
        PushError::BadName(_) => StatusCode::BAD_REQUEST,
        PushError::Rejected { .. } | PushError::InitFailed { .. } => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    text_response(status, format!("{e}\n"))
}

fn cue_from_request(req: CueRequest) -> Result<CueEvent, String> {
    static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    match (req.kind, req.scte35) {
        (Some(_), Some(_)) => Err("give either \"type\" or \"scte35\", not both".into()),
        (None, None) => Err("give \"type\": \"out\"|\"in\", or \"scte35\": base64 section".into()),
        (None, Some(b64)) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("scte35 is not base64: {e}"))?;
            let mut cue = weir_ingest::parse_splice_info_section(&bytes)
                .map_err(|e| format!("scte35 section rejected: {e}"))?;
            cue.pts = None;
            Ok(cue)
        }
        (Some(kind), None) => {
            let duration = match req.duration {
                None => None,
                Some(d) if d.is_finite() && d > 0.0 && d <= 86_400.0 => {
                    Some(Duration::from_secs_f64(d))
                }
                Some(d) => return Err(format!("duration {d} must be in (0, 86400] seconds")),
            };
            let id = req
                .id
                .unwrap_or_else(|| NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let out = matches!(kind, SpliceType::Out);
            Ok(CueEvent {
                id,
                kind: CueKind::SpliceInsert,
                out_of_network: out,
                pts: None,
                duration,
                segmentation_type: None,
                section: weir_ingest::scte35::encode_splice_insert(id, out, duration),
            })
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_sections_parse_back() {
        let s = weir_ingest::scte35::encode_splice_insert(42, true, Some(Duration::from_secs(30)));
        let cue = weir_ingest::parse_splice_info_section(&s).unwrap();
        assert_eq!(cue.id, 42);
        assert!(cue.out_of_network);
        assert_eq!(cue.kind, CueKind::SpliceInsert);
        assert_eq!(cue.duration, Some(Duration::from_secs(30)));
        assert_eq!(cue.pts, None);
        let back_in = weir_ingest::parse_splice_info_section(
            &weir_ingest::scte35::encode_splice_insert(42, false, None),
        )
        .unwrap();
        assert!(!back_in.out_of_network);
        assert_eq!(back_in.duration, None);
    }

    #[test]
    fn requests_are_checked() {
        let bad = |j: &str| cue_from_request(serde_json::from_str(j).unwrap()).unwrap_err();
        assert!(bad(r#"{}"#).contains("type"));
        assert!(bad(r#"{"type":"out","scte35":"AA=="}"#).contains("not both"));
        assert!(bad(r#"{"type":"out","duration":-1}"#).contains("duration"));
        assert!(bad(r#"{"scte35":"%%%"}"#).contains("base64"));
        assert!(bad(r#"{"scte35":"/DAAAA=="}"#).contains("rejected"));
        assert!(serde_json::from_str::<CueRequest>(r#"{"type":"sideways"}"#).is_err());
        let ok =
            cue_from_request(serde_json::from_str(r#"{"type":"in","id":7}"#).unwrap()).unwrap();
        assert_eq!((ok.id, ok.out_of_network), (7, false));
    }

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
