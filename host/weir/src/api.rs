//! The operator API, under `/api/v1/`, behind a bearer token (`api.token` in the config).
//!
//! - `GET /api/v1/streams`: the live streams and their state: tenant, publisher (protocol,
//!   address, since when), uptime, bytes and bitrate in, requests per second, each
//!   rendition's live edge (media sequence number and parts), and the last error.
//! - `POST /api/v1/streams/{key}/cues`: inject a splice into a live stream, for operators whose
//!   contribution carries no SCTE-35. The body is either a splice,
//!   `{"type": "out", "duration": 30.0, "id": 42}` / `{"type": "in", "id": 42}`, which
//!   becomes a SCTE-35 splice_insert section, or a complete section,
//!   `{"scte35": "<base64 splice_info_section>"}`. Either way the splice happens at the live
//!   edge (the section's own splice_time refers to the contribution's clock, which an API
//!   caller does not see).
//! - `POST /api/v1/streams/{key}/kick`: end the stream's publisher session (the connection
//!   is closed); the stream goes on as after a loss, on the stand-by slate, until a
//!   publisher returns.
//! - `GET /api/v1/webrtc` (admin token): each WHIP publisher and WHEP viewer: stream,
//!   peer address, RTT, bytes and kbit/s in and out over the last second, loss, frames.
//! - `GET /api/v1/tenants/{tenant}/plugins`: the tenant's plugin chain, in order.
//! - `PUT /api/v1/tenants/{tenant}/plugins/{name}`: push a plugin. The body is the component
//!   (`application/wasm`, up to 64 MiB); its config text travels base64-encoded in the
//!   `Weir-Plugin-Config` header. The component is compiled, checked and `init`ed before the
//!   chain is swapped; on any error the answer is 422 with the reason and the chain is left
//!   as it was. `weir plugin push` is the client.
//! - `DELETE /api/v1/tenants/{tenant}/plugins/{name}`: take a plugin out of the chain.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Response, StatusCode};
use weir_media::{CueEvent, CueKind, StreamKey, StreamRegistry};
use weir_origin::{json_response, text_response, Admission, ApiHandler, Body, CueSpec};

use weir_plugin_host::{PluginSpec, Plugins, PushError};

use weir_stream::Streams;

/// Maps a stream key to its stream name, as ingest does.
pub type KeyResolver = Arc<dyn Fn(&StreamKey) -> Option<String> + Send + Sync>;

pub struct Api {
    /// The admin token: every route.
    pub token: Option<String>,
    /// (tenant, token): that tenant's streams and plugins only.
    pub tenant_tokens: Vec<(String, String)>,
    pub streams: Streams,
    pub registry: StreamRegistry,
    pub resolve: KeyResolver,
    pub plugins: Plugins,
    /// WHIP publishers and WHEP viewers, for `GET /api/v1/webrtc`.
    pub webrtc: Option<(weir_ingest::Whip, weir_ingest::Whep)>,
}

/// Plugin components are megabytes (JavaScript and Python ones 12–20 MB).
const MAX_PLUGIN_BODY: usize = 64 << 20;
/// The header that carries a pushed plugin's config, base64.
pub const CONFIG_HEADER: &str = "weir-plugin-config";

impl ApiHandler for Api {
    fn handle(
        &self,
        head: http::request::Parts,
        body: Bytes,
    ) -> weir_cache::BoxFuture<'_, Response<Body>> {
        Box::pin(async move { self.route(&head, &body).await })
    }

    fn admit(&self, head: &http::request::Parts) -> Admission {
        if self.principal(head).is_none() {
            let mut r = text_response(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
            return Admission::Refuse(r);
        }
        let limit = if head.method == Method::PUT && head.uri.path().starts_with("/api/v1/tenants/")
        {
            MAX_PLUGIN_BODY
        } else {
            weir_origin::MAX_API_BODY
        };
        Admission::Read { limit }
    }

    fn loggable_path(&self, path: &str) -> String {
        loggable_path(path)
    }
}

/// An API path for the logs: the stream key in `/api/v1/streams/{key}/…` becomes its
/// redacted form; paths of no known route show nothing past `/api/`.
fn loggable_path(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "api", "v1", "streams"] | ["", "api", "v1", "tenants", ..] => path.to_owned(),
        ["", "api", "v1", "streams", key, rest @ ..] => {
            let key = StreamKey::new(*key);
            match rest {
                [] => format!("/api/v1/streams/{}", key.redacted()),
                [tail @ ("cues" | "kick")] => {
                    format!("/api/v1/streams/{}/{tail}", key.redacted())
                }
                _ => format!("/api/v1/streams/{}/…", key.redacted()),
            }
        }
        _ => "/api/…".to_owned(),
    }
}

/// Who a request's bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Principal {
    Admin,
    Tenant(String),
}

impl Api {
    fn principal(&self, head: &http::request::Parts) -> Option<Principal> {
        let value = head.headers.get(http::header::AUTHORIZATION)?;
        let token = value
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?
            .trim()
            .as_bytes();
        // Every token is compared, in constant time, whichever matches.
        let admin = self
            .token
            .as_deref()
            .is_some_and(|t| crate::auth::secret_eq(token, t.as_bytes()));
        let mut tenant = None;
        for (name, t) in &self.tenant_tokens {
            if crate::auth::secret_eq(token, t.as_bytes()) {
                tenant = Some(name.clone());
            }
        }
        if admin {
            Some(Principal::Admin)
        } else {
            tenant.map(Principal::Tenant)
        }
    }

    /// 403 unless `who` may act for `tenant`.
    fn forbid(who: &Principal, tenant: &str) -> Option<Response<Body>> {
        match who {
            Principal::Tenant(t) if t != tenant => Some(text_response(
                StatusCode::FORBIDDEN,
                format!("this token is tenant {t}'s; this belongs to tenant {tenant}\n"),
            )),
            _ => None,
        }
    }

    /// Runs an admitted request (the origin called [`ApiHandler::admit`] first).
    async fn route(&self, head: &http::request::Parts, body: &Bytes) -> Response<Body> {
        let Some(who) = self.principal(head) else {
            // Not reached through the origin, which calls `admit` first; kept so that no
            // other caller can skip the token.
            return text_response(StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n");
        };
        let path = head.uri.path();
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        if let ["", "api", "v1", "tenants", tenant, ..] = parts.as_slice() {
            if let Some(refused) = Self::forbid(&who, tenant) {
                return refused;
            }
        }
        match (&head.method, parts.as_slice()) {
            (&Method::GET, ["", "api", "v1", "streams"]) => {
                let now = unix_ms();
                let streams: Vec<serde_json::Value> = self
                    .registry
                    .names()
                    .into_iter()
                    .filter(|n| match &who {
                        Principal::Admin => true,
                        Principal::Tenant(t) => self.plugins.tenant_of(n) == *t,
                    })
                    .map(|n| self.describe(&n, now))
                    .collect();
                json_response(
                    StatusCode::OK,
                    serde_json::json!({ "streams": streams }).to_string(),
                )
            }
            (&Method::GET, ["", "api", "v1", "webrtc"]) => {
                if who != Principal::Admin {
                    return text_response(
                        StatusCode::FORBIDDEN,
                        "WebRTC sessions are listed for the admin token only\n",
                    );
                }
                let (whip, whep) = match &self.webrtc {
                    Some((whip, whep)) => (whip.session_stats(), whep.session_stats()),
                    None => (Vec::new(), Vec::new()),
                };
                json_response(
                    StatusCode::OK,
                    serde_json::json!({ "whip": whip, "whep": whep }).to_string(),
                )
            }
            (&Method::POST, ["", "api", "v1", "streams", key, "cues"]) => {
                self.post_cue(&who, key, body)
            }
            (&Method::POST, ["", "api", "v1", "streams", key, "kick"]) => self.kick(&who, key),
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
            (_, ["", "api", "v1", "streams", _, "cues" | "kick"])
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

    /// The stream `key` names, if `who` may act on it; else the answer (404, 403).
    fn stream_for(&self, who: &Principal, key: &str) -> Result<String, Box<Response<Body>>> {
        let key = StreamKey::new(key);
        let Some(name) = (self.resolve)(&key) else {
            return Err(Box::new(text_response(
                StatusCode::NOT_FOUND,
                "unknown stream key\n",
            )));
        };
        match Self::forbid(who, &self.plugins.tenant_of(&name)) {
            Some(refused) => Err(Box::new(refused)),
            None => Ok(name),
        }
    }

    /// One stream's entry in `GET /api/v1/streams`.
    fn describe(&self, name: &str, now_ms: u64) -> serde_json::Value {
        let secs = |since: u64| now_ms.saturating_sub(since) as f64 / 1000.0;
        let renditions: Vec<serde_json::Value> = self
            .registry
            .get(name)
            .map(|s| s.renditions())
            .unwrap_or_default()
            .into_iter()
            .map(|(rendition, r)| {
                let snap = r.snapshot();
                serde_json::json!({
                    "name": rendition,
                    "latest_msn": snap.as_ref().map(|s| s.next_msn),
                    "parts_in_latest": snap.as_ref().map(|s| s.parts_done),
                    "ended": snap.as_ref().is_some_and(|s| s.ended),
                })
            })
            .collect();
        let requests_total = self.registry.get(name).map_or(0, |s| s.requests());
        // An edge's streams have no stream task (they are followed upstream).
        let Some(st) = self.streams.status(name) else {
            return serde_json::json!({
                "name": name,
                "tenant": self.plugins.tenant_of(name),
                "state": "followed",
                "requests_total": requests_total,
                "renditions": renditions,
            });
        };
        serde_json::json!({
            "name": name,
            "tenant": self.plugins.tenant_of(name),
            "state": if st.publisher.is_some() { "live" } else { "no-publisher" },
            "publisher": st.publisher.as_ref().map(|p| serde_json::json!({
                "protocol": p.protocol,
                "addr": p.addr,
                "connected_s": st.publisher_since_unix_ms.map(secs),
            })),
            "uptime_s": secs(st.started_unix_ms),
            "bytes_in": st.bytes_in,
            "bitrate_in_bps": st.bitrate_in_bps,
            "requests_total": requests_total,
            "requests_per_s": (st.requests_per_s * 10.0).round() / 10.0,
            "renditions": renditions,
            "last_error": st.last_error.as_ref().map(|e| serde_json::json!({
                "message": e.message,
                "at_unix_ms": e.at_unix_ms,
                "age_s": secs(e.at_unix_ms),
            })),
        })
    }

    fn kick(&self, who: &Principal, key: &str) -> Response<Body> {
        let name = match self.stream_for(who, key) {
            Ok(n) => n,
            Err(r) => return *r,
        };
        match self.streams.kick(&name) {
            Ok(()) => json_response(
                StatusCode::ACCEPTED,
                serde_json::json!({ "stream": name, "kicked": true }).to_string(),
            ),
            Err(_) => text_response(StatusCode::NOT_FOUND, "stream is not live\n"),
        }
    }

    fn post_cue(&self, who: &Principal, key: &str, body: &[u8]) -> Response<Body> {
        let name = match self.stream_for(who, key) {
            Ok(n) => n,
            Err(r) => return *r,
        };
        let cue = match weir_origin::parse_cue_request(body)
            .map_err(|e| match e {
                weir_origin::Error::BadRequest(m) => m,
                other => other.to_string(),
            })
            .and_then(cue_from_spec)
        {
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

/// Turns a checked cue request into the cue to inject: a built splice_insert, or the given
/// section once it parses.
fn cue_from_spec(spec: CueSpec) -> Result<CueEvent, String> {
    static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    match spec {
        CueSpec::Section(bytes) => {
            let mut cue = weir_ingest::parse_splice_info_section(&bytes)
                .map_err(|e| format!("scte35 section rejected: {e}"))?;
            cue.pts = None;
            Ok(cue)
        }
        CueSpec::Splice { out, duration, id } => {
            let id =
                id.unwrap_or_else(|| NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
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

/// The API's own clock read (uptimes and ages): the handler is a driver.
fn unix_ms() -> u64 {
    #[allow(clippy::disallowed_methods)]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let cue = |j: &str| weir_origin::parse_cue_request(j.as_bytes()).map(cue_from_spec);
        assert!(cue(r#"{"scte35":"/DAAAA=="}"#)
            .unwrap()
            .unwrap_err()
            .contains("rejected"));
        assert!(cue(r#"{"type":"out","duration":-1}"#).is_err());
        let ok = cue(r#"{"type":"in","id":7}"#).unwrap().unwrap();
        assert_eq!((ok.id, ok.out_of_network), (7, false));
        let out = cue(r#"{"type":"out","duration":30}"#).unwrap().unwrap();
        assert!(out.out_of_network);
        assert_eq!(out.duration, Some(Duration::from_secs(30)));
        assert_ne!(out.id, 0, "a fresh id");
    }

    #[test]
    fn logged_api_paths_never_show_a_key() {
        let shown = loggable_path("/api/v1/streams/sekrit-key-123/cues");
        assert!(!shown.contains("sekrit"), "{shown}");
        assert_eq!(
            shown,
            format!(
                "/api/v1/streams/{}/cues",
                StreamKey::new("sekrit-key-123").redacted()
            )
        );
        for path in [
            "/api/v1/streams/sekrit-key-123",
            "/api/v1/streams/sekrit-key-123/cues/x",
            "/api/v2/streams/sekrit-key-123/cues",
            "/api/sekrit-key-123",
        ] {
            assert!(!loggable_path(path).contains("sekrit"), "{path}");
        }
        assert_eq!(loggable_path("/api/v1/streams"), "/api/v1/streams");
        assert_eq!(
            loggable_path("/api/v1/tenants/acme/plugins/ads"),
            "/api/v1/tenants/acme/plugins/ads"
        );
    }
}
