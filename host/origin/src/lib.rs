//! Weir's HTTP origin: HTTP/1.1, HTTP/2 (TLS+ALPN, h2c), LL-HLS blocking reload and part
//! streaming.
//!
//! - [`Origin`]: built from [`OriginSettings`] and a [`weir_media::StreamRegistry`]; run it
//!   with [`Origin::serve`] on a `TcpListener`, optionally with a TLS config from
//!   [`load_tls`]. [`Origin::handle`] serves one request without a socket.
//! - [`Route`] and [`HlsQuery`]: what a URL asks for, LL-HLS directives parsed strictly
//!   (`_HLS_msn`, `_HLS_part`, `_HLS_skip=YES|v2`; anything malformed is a 400).
//! - [`ManifestFilter`]: the extension point where plugins rewrite playlists; [`PassThrough`]
//!   by default. Parts and segments never pass through it.
//! - [`ApiHandler`]: the embedding binary's `/api/…`, admitted on its head (the token is
//!   checked before the body is read), with a body cap and read deadline;
//!   [`parse_cue_request`] is the cue API's body parser.
//! - Limits ([`OriginSettings`]): open connections in total and per client address (closed
//!   at accept), an idle timeout (HTTP/2 included), header size and read timeouts, HTTP/2
//!   stream and reset-flood caps; refusals are counted on `/metrics`, never logged above
//!   debug.
//! - [`Error`]: one error type; [`Error::classify`] gives status, fault and retryability,
//!   and [`error_response`] is the only place an error becomes a response.
//!
//! # Phases of a request
//!
//! ```text
//!  layers (layers.rs)      access log → CORS (answers OPTIONS) → HEAD → deadline
//!                                                                            │
//!  ┌─────────────────────────────────────────────────────────────────────────┘
//!  ▼
//!  1 route         path + query → Route (404 unknown, 400 malformed _HLS_*); a signed
//!                  URL's token segment is taken out and checked (403, see [`signed`])
//!  2 cache key     Route → "stream/rendition/seg7.m4s", "…/index.m3u8?_HLS_msn=…"
//!  3 fetch         registry → stream → rendition window:
//!                    playlist  latest snapshot, or block on wait_for(msn, part)
//!                              ≤ 3× target (→ 503), too far ahead → 400; a part past
//!                              its segment's last is part 0 of the next
//!                    part      its bytes, once complete: a part in progress (the preload
//!                              hint) is waited for, then sent whole (aborted → 503)
//!                    segment   its parts concatenated once, through the cache fill lock
//!                    init      bytes          Gone → 410, Missing → 404 (a segment that
//!                              left the playlist is kept a while first: RFC 8216bis 6.2.2)
//!  4 filter        ManifestFilter, playlists only (PassThrough today)
//!  5 response      Content-Type, Content-Length, Cache-Control
//! ```
//!
//! No lock is held across an await: a request blocked on one stream never delays another.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use weir_media::{rendition_channel, RenditionSnapshot, StreamRegistry};
//! use weir_origin::{Origin, OriginSettings};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let registry = StreamRegistry::new();
//! let stream = registry.publish("demo");
//! let (rendition, reader) = rendition_channel();
//! stream.add_rendition("720p", reader);
//! rendition.publish(RenditionSnapshot {
//!     version: 1,
//!     first_msn: 0,
//!     next_msn: 0,
//!     parts_done: 1,
//!     target_duration: Duration::from_secs(2),
//!     part_target: Duration::from_millis(500),
//!     playlist: Bytes::from_static(b"#EXTM3U\n"),
//!     playlist_skip: None,
//!     ended: false,
//!     cues: Default::default(),
//! });
//!
//! let origin = Origin::new(OriginSettings::default(), registry).unwrap();
//! let request = http::Request::get("/live/demo/720p/index.m3u8?_HLS_msn=0&_HLS_part=0")
//!     .body(())
//!     .unwrap();
//! let response = origin.handle(request).await;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["content-type"], "application/vnd.apple.mpegurl");
//!
//! // Serving over TCP (and TLS, with `weir_origin::load_tls`):
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let server = std::sync::Arc::new(origin).serve(listener, None, async {});
//! server.await.unwrap(); // the shutdown future is already ready: returns at once
//! # });
//! ```

use std::sync::Arc;

use http::HeaderValue;
use weir_cache::Cache;
use weir_media::StreamRegistry;

mod api;
mod body;
mod error;
mod layers;
mod limits;
mod phase;
mod range;
mod route;
mod server;
mod settings;
pub mod signed;
mod stats;
mod tls;

pub use api::{
    json_response, parse_cue_request, text_response, Admission, ApiHandler, CueSpec, MAX_API_BODY,
};
pub use body::Body;
pub use error::{error_response, Classification, Error, Fault, Result};
pub use phase::{
    Filtered, ManifestFilter, PassThrough, RequestCtx, HIDDEN_RENDITIONS_HEADER, PUBLISHER_HEADER,
    STARTED_HEADER,
};
pub use range::{parse as parse_range, Spec as RangeSpec};
pub use route::{parse as parse_route, parse_hls_query, HlsQuery, Route, Skip};
pub use server::Connection;
pub use settings::*;
pub use tls::{load_tls, tls_config, PreparedCert, ReloadableTls};

/// The origin's state: settings, the live streams, the segment cache and the manifest filter.
/// Share it as `Arc<Origin>`; every request borrows it.
pub struct Origin {
    settings: OriginSettings,
    registry: StreamRegistry,
    cache: Cache,
    /// Complete parts joined into one buffer, briefly (see `body::part_memo`).
    parts: Cache,
    filter: Arc<dyn ManifestFilter>,
    /// Handlers the embedding binary routes by path prefix (`/api/`, `/whip`), first match.
    handlers: Vec<(&'static str, Arc<dyn ApiHandler>)>,
    metrics: Option<Arc<dyn MetricsSource>>,
    readiness: Option<Arc<dyn Readiness>>,
    playback_auth: Option<Arc<dyn signed::PlaybackAuth>>,
    stats: stats::OriginStats,
    /// Open connections, shared by every listener `serve` runs.
    connections: Arc<limits::ConnectionTable>,
    cors_allow_origin: HeaderValue,
}

/// Renders the embedding binary's metrics in the Prometheus text format for `GET /metrics`;
/// the origin appends its own.
pub trait MetricsSource: Send + Sync + 'static {
    fn render(&self) -> String;
}

/// What `/readyz` asks: ready for traffic, or why not (answered 503 with the reason).
pub trait Readiness: Send + Sync + 'static {
    fn ready(&self) -> std::result::Result<(), String>;
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("settings", &self.settings)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Origin {
    /// Validates `settings` and builds an origin with an in-memory cache sized by
    /// `settings.cache` and the [`PassThrough`] filter.
    pub fn new(settings: OriginSettings, registry: StreamRegistry) -> Result<Self> {
        settings.validate()?;
        let cors_allow_origin = settings.cors_header()?;
        Ok(Self {
            cache: Cache::new(&settings.cache),
            parts: body::part_memo(),
            settings,
            registry,
            filter: Arc::new(PassThrough),
            handlers: Vec::new(),
            metrics: None,
            readiness: None,
            playback_auth: None,
            stats: stats::OriginStats::default(),
            connections: Arc::default(),
            cors_allow_origin,
        })
    }

    /// Serves `metrics` (plus the origin's own) on `GET /metrics`.
    pub fn with_metrics(mut self, metrics: Arc<dyn MetricsSource>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Answers `/readyz` from `readiness` (without one, ready whenever it serves).
    pub fn with_readiness(mut self, readiness: Arc<dyn Readiness>) -> Self {
        self.readiness = Some(readiness);
        self
    }

    /// Checks every request that reads a stream with `auth` (signed playback URLs, see
    /// [`signed`]); without one every stream is open.
    pub fn with_playback_auth(mut self, auth: Arc<dyn signed::PlaybackAuth>) -> Self {
        self.playback_auth = Some(auth);
        self
    }

    /// Routes `/api/…` to `api` (the operator API of the embedding binary).
    pub fn with_api(mut self, api: Arc<dyn ApiHandler>) -> Self {
        self.handlers.push(("/api/", api));
        self
    }

    /// Routes every path under `prefix` to `handler`, admitted and read as the API is
    /// (head first, then a body within its limit). The binary's WHIP endpoint uses it.
    pub fn with_handler(mut self, prefix: &'static str, handler: Arc<dyn ApiHandler>) -> Self {
        self.handlers.push((prefix, handler));
        self
    }

    /// Uses `cache` (another backend, or one shared with other components) for segments.
    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// Rewrites playlists through `filter` (phase 4).
    pub fn with_manifest_filter(mut self, filter: Arc<dyn ManifestFilter>) -> Self {
        self.filter = filter;
        self
    }

    pub fn settings(&self) -> &OriginSettings {
        &self.settings
    }

    pub fn registry(&self) -> &StreamRegistry {
        &self.registry
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }
}
