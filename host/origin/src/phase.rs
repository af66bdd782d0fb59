//! The per-request phases (drawn in the crate docs) and the manifest-filter extension point.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use std::sync::atomic::Ordering;

use http::{header, HeaderValue, Method, Response, StatusCode};
use weir_cache::{BoxFuture, CachedObject};
use weir_media::{Lookup, PlacedCue, RenditionConsumer, StreamConsumer};

use crate::body::{self, Body};
use crate::range;
use crate::route::{self, HlsQuery, Route, Skip};
use crate::settings::BLOCKING_RELOAD_TARGETS;
use crate::{signed, Error, Origin, Result};

pub(crate) const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// On multivariant playlists: `live` while a publisher feeds the stream, else `none`.
pub const PUBLISHER_HEADER: &str = "weir-publisher";
/// On multivariant playlists: when the stream started, Unix milliseconds.
pub const STARTED_HEADER: &str = "weir-stream-started";
/// On multivariant playlists: the stream's renditions the playlist does not list, comma
/// separated (absent when there are none).
pub const HIDDEN_RENDITIONS_HEADER: &str = "weir-hidden-renditions";
/// `video/mp4` for init, parts and segments alike: hls.js, Shaka and AVPlayer all accept it
/// (`video/iso.segment` trips some players and CDN MIME filters).
pub(crate) const MEDIA_TYPE: &str = "video/mp4";

/// What one request carries through the phases. A [`ManifestFilter`] sees it, which is how
/// a plugin learns the tenant's stream, the rendition and the request attributes it varies on.
#[derive(Debug)]
pub struct RequestCtx {
    /// Method, URI and headers of the request (the body is never read).
    pub request: http::request::Parts,
    /// Phase 1's result.
    pub route: Route,
    /// Phase 2's result: the object's identity, LL-HLS directives included.
    pub cache_key: Option<String>,
    /// Set by phase 3 for playlists: the version served, to key filtered output by.
    pub playlist_version: Option<u64>,
    /// Set by phase 3 for media playlists: the stream's cues near the window.
    pub cues: Arc<[PlacedCue]>,
    /// Set by phase 3 when the body handed to the filter is a delta update
    /// (`_HLS_skip=YES`): the full playlist of the same version. A filter that rewrites
    /// playlists works on this one and makes the delta update of its output, so that the
    /// two never disagree (a delta update must carry every date range the full playlist
    /// has; weir does not advertise `CAN-SKIP-DATERANGES`).
    pub full_playlist: Option<Bytes>,
}

/// A filtered playlist.
#[derive(Debug)]
pub struct Filtered {
    pub body: Bytes,
    /// Request headers the body depends on (sent as `Vary`, so a CDN keys on them).
    pub vary: Vec<String>,
}

impl From<Bytes> for Filtered {
    fn from(body: Bytes) -> Self {
        Self {
            body,
            vary: Vec::new(),
        }
    }
}

/// Phase 4: rewrites playlists before they are sent. Segments and parts never pass through
/// it. The plugin host implements this later; [`PassThrough`] is the default.
///
/// A filter must always answer: on its own failure it applies its failure policy and returns
/// a playlist (the input, for pass-through), because media never waits for a plugin.
pub trait ManifestFilter: Send + Sync + 'static {
    fn media_playlist<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        playlist: Bytes,
    ) -> BoxFuture<'a, Filtered> {
        let _ = ctx;
        Box::pin(std::future::ready(playlist.into()))
    }

    fn multivariant_playlist<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        playlist: Bytes,
    ) -> BoxFuture<'a, Filtered> {
        let _ = ctx;
        Box::pin(std::future::ready(playlist.into()))
    }

    /// Answers `/live/{stream}/asset-list/{cue_id}.json` (HLS Interstitials), or `None`
    /// (404) when nothing inserted that cue.
    fn asset_list<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        stream: &'a str,
        cue_id: u32,
    ) -> BoxFuture<'a, Option<Bytes>> {
        let _ = (ctx, stream, cue_id);
        Box::pin(std::future::ready(None))
    }
}

/// Serves playlists exactly as the packager rendered them.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

impl ManifestFilter for PassThrough {}

/// What a CDN may do with a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CacheControl {
    /// Never changes while it exists: complete parts and segments.
    Immutable(Duration),
    MaxAge(Duration),
    /// Store, but revalidate every time (the player page).
    NoCache,
    NoStore,
}

impl CacheControl {
    fn header(self) -> HeaderValue {
        match self {
            CacheControl::Immutable(d) => {
                header_value(format!("public, max-age={}, immutable", d.as_secs()))
            }
            CacheControl::MaxAge(d) => header_value(format!("public, max-age={}", d.as_secs())),
            CacheControl::NoCache => HeaderValue::from_static("no-cache"),
            CacheControl::NoStore => HeaderValue::from_static("no-store"),
        }
    }
}

fn header_value_or(s: String, fallback: &'static str) -> HeaderValue {
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static(fallback))
}

fn header_value(s: String) -> HeaderValue {
    // Only digits and ASCII text are formatted in, so this never falls back.
    HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("no-cache"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlaylistKind {
    Multivariant,
    Media,
}

/// Phase 3's result.
pub(crate) enum Fetched {
    Playlist {
        kind: PlaylistKind,
        body: Bytes,
        /// The full playlist, when `body` is its delta update.
        full: Option<Bytes>,
        version: Option<u64>,
        cues: Arc<[PlacedCue]>,
        cache: CacheControl,
    },
    Object {
        body: Body,
        len: usize,
        content_type: &'static str,
        cache: CacheControl,
    },
    /// A byte range of a segment (206).
    Partial {
        partial: range::Partial,
        cache: CacheControl,
    },
    /// Answered by the manifest filter in phase 4.
    AssetList { stream: String, cue_id: u32 },
}

impl Fetched {
    fn bytes(body: Bytes, content_type: &'static str, cache: CacheControl) -> Self {
        Fetched::Object {
            len: body.len(),
            body: body::full(body),
            content_type,
            cache,
        }
    }
}

impl Origin {
    /// Runs the phases for one request. The layers around it (see `layers.rs`) add the
    /// deadline, HEAD handling, CORS and the access log.
    pub(crate) async fn run_phases(&self, request: http::request::Parts) -> Result<Response<Body>> {
        // Phase 1: route. Only GET and HEAD get this far (OPTIONS is answered by the CORS layer).
        if request.method != Method::GET && request.method != Method::HEAD {
            return Err(Error::MethodNotAllowed);
        }
        let (path, token) = signed::split(request.uri.path());
        let route = route::parse(&path, request.uri.query())?;
        if let (Some(auth), Some(stream)) = (&self.playback_auth, route.stream()) {
            auth.authorize(stream, token, &request)?;
        }
        // Phase 2: cache key.
        let cache_key = cache_key(&route);
        let mut ctx = RequestCtx {
            request,
            route,
            cache_key,
            playlist_version: None,
            cues: Arc::from(Vec::new()),
            full_playlist: None,
        };
        // Phase 3: fetch from the registry's window (or the cache).
        let fetched = self.fetch(&ctx).await?;
        // Phase 4: manifest filter, playlists only.
        let mut vary = Vec::new();
        let fetched = match fetched {
            Fetched::Playlist {
                kind,
                body,
                full,
                version,
                cues,
                cache,
            } => {
                ctx.playlist_version = version;
                ctx.cues = cues.clone();
                ctx.full_playlist = full;
                let filtered = match kind {
                    PlaylistKind::Media => self.filter.media_playlist(&ctx, body).await,
                    PlaylistKind::Multivariant => {
                        self.filter.multivariant_playlist(&ctx, body).await
                    }
                };
                vary = filtered.vary;
                Fetched::Playlist {
                    kind,
                    body: filtered.body,
                    full: None,
                    version,
                    cues,
                    cache,
                }
            }
            Fetched::AssetList { stream, cue_id } => {
                let json = self
                    .filter
                    .asset_list(&ctx, &stream, cue_id)
                    .await
                    .ok_or(Error::NotFound)?;
                Fetched::bytes(json, "application/json", CacheControl::NoStore)
            }
            object => object,
        };
        // Phase 5: response.
        let mut response = respond(fetched);
        if let Route::Multivariant { stream } = &ctx.route {
            // For an edge that can follow the stream from several primaries: whether a
            // publisher feeds this copy, and how new it is (docs/design/009-edge.md).
            if let Some(s) = self.registry.get(stream) {
                let headers = response.headers_mut();
                headers.insert(
                    PUBLISHER_HEADER,
                    HeaderValue::from_static(if s.publisher_live() { "live" } else { "none" }),
                );
                headers.insert(STARTED_HEADER, HeaderValue::from(s.started_unix_ms()));
                // Renditions the playlist does not list (a blackout plugin's slate): an
                // edge follows them too, so a regional plugin there can point at them.
                let listed = self.filter_free_multivariant(&s);
                let hidden: Vec<String> = s
                    .renditions()
                    .into_iter()
                    .map(|(name, _)| name)
                    .filter(|name| !listed.contains(&format!("{name}/index.m3u8")))
                    .collect();
                if !hidden.is_empty() {
                    if let Ok(v) = HeaderValue::try_from(hidden.join(",")) {
                        headers.insert(HIDDEN_RENDITIONS_HEADER, v);
                    }
                }
            }
        }
        if matches!(ctx.route, Route::Segment { .. }) {
            // Byte-range parts are ranges of segments; a CDN serves them from its copy.
            response
                .headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        }
        for name in vary {
            if let Ok(v) = HeaderValue::try_from(name) {
                response.headers_mut().append(header::VARY, v);
            }
        }
        Ok(response)
    }

    async fn fetch(&self, ctx: &RequestCtx) -> Result<Fetched> {
        let assets = &self.settings.assets;
        match &ctx.route {
            Route::Health => Ok(Fetched::bytes(
                Bytes::from_static(b"ok\n"),
                "text/plain; charset=utf-8",
                CacheControl::NoStore,
            )),
            Route::Ready => match self.readiness.as_ref().map_or(Ok(()), |r| r.ready()) {
                Ok(()) => Ok(Fetched::bytes(
                    Bytes::from_static(b"ready\n"),
                    "text/plain; charset=utf-8",
                    CacheControl::NoStore,
                )),
                Err(reason) => Err(Error::NotReady(reason)),
            },
            Route::Metrics => {
                let mut text = self
                    .metrics
                    .as_ref()
                    .map_or_else(String::new, |m| m.render());
                self.stats.render(
                    &mut text,
                    self.cache().fills_in_flight(),
                    self.connections.total(),
                );
                weir_media::metrics::write_metric(
                    &mut text,
                    "weir_cache_bytes",
                    "gauge",
                    "Bytes held by the object cache (whole segments built from parts).",
                    self.cache().stored_bytes(),
                );
                Ok(Fetched::bytes(
                    Bytes::from(text),
                    "text/plain; version=0.0.4; charset=utf-8",
                    CacheControl::NoStore,
                ))
            }
            Route::PlayerPage => static_asset(
                &assets.index_html,
                "text/html; charset=utf-8",
                // Revalidated so a new deploy's page is picked up at once.
                CacheControl::NoCache,
            ),
            Route::PlayerScript => static_asset(
                &assets.hls_js,
                "text/javascript; charset=utf-8",
                CacheControl::MaxAge(Duration::from_secs(3600)),
            ),
            Route::Multivariant { stream } => {
                let stream = self.stream(stream).await?;
                let body = stream
                    .multivariant()
                    .ok_or(Error::NotYet("multivariant playlist"))?;
                Ok(Fetched::Playlist {
                    kind: PlaylistKind::Multivariant,
                    body,
                    full: None,
                    version: None,
                    cues: Arc::from(Vec::new()),
                    // Changes only when renditions do; short so a new ladder shows up quickly.
                    cache: CacheControl::MaxAge(Duration::from_secs(1)),
                })
            }
            Route::MediaPlaylist {
                stream,
                rendition,
                query,
            } => {
                let rendition = self.rendition(stream, rendition).await?;
                self.media_playlist(rendition, *query).await
            }
            Route::Init {
                stream,
                rendition,
                generation,
            } => {
                let r = self.rendition(stream, rendition).await?;
                let init = match generation {
                    Some(g) => r.init_generation(*g),
                    None => r.init(),
                }
                .ok_or(Error::NotYet("init segment"))?;
                // Replaced on a codec change, so not `immutable`.
                Ok(Fetched::bytes(
                    init,
                    MEDIA_TYPE,
                    CacheControl::MaxAge(self.settings.media_max_age),
                ))
            }
            Route::Part {
                stream,
                rendition,
                seq,
            } => {
                let part = match self.rendition(stream, rendition).await?.part(*seq) {
                    Lookup::Found(part) => part,
                    Lookup::Gone => return Err(Error::Gone("part")),
                    Lookup::Missing => return Err(Error::NotYet("part")),
                };
                // Sent whole once complete (see `body::whole_part`). The body at this URL
                // never changes: a CDN may keep it.
                let key = ctx.cache_key.as_deref().unwrap_or_default();
                let (body, len) = body::whole_part(&self.parts, key, part).await?;
                Ok(Fetched::Object {
                    body,
                    len,
                    content_type: MEDIA_TYPE,
                    cache: CacheControl::Immutable(self.settings.media_max_age),
                })
            }
            Route::AssetList { stream, cue_id } => {
                if self.registry.get(stream).is_none() {
                    return Err(Error::NotFound);
                }
                Ok(Fetched::AssetList {
                    stream: stream.clone(),
                    cue_id: *cue_id,
                })
            }
            Route::Asset { path } => {
                let dir = self.settings.assets_dir.as_ref().ok_or(Error::NotFound)?;
                let bytes = tokio::fs::read(dir.join(path))
                    .await
                    .map_err(|_| Error::NotFound)?;
                Ok(Fetched::bytes(
                    Bytes::from(bytes),
                    asset_type(path),
                    CacheControl::MaxAge(Duration::from_secs(60)),
                ))
            }
            Route::Segment {
                stream,
                rendition,
                msn,
            } => {
                // The window decides 404/410 first, so an evicted segment is 410 even while
                // the cache still holds its bytes.
                let rendition = self.rendition(stream, rendition).await?;
                let spec = ctx
                    .request
                    .headers
                    .get(header::RANGE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(range::parse);
                let cache = CacheControl::Immutable(self.settings.media_max_age);
                let parts = match rendition.segment_so_far(*msn) {
                    Lookup::Found((parts, true)) => parts,
                    Lookup::Found((_, false)) => {
                        // In progress. A range (byte-range parts) is served from its parts;
                        // the whole segment (a CDN fills one object per segment) once the
                        // segment is complete.
                        let wait_limit = rendition
                            .snapshot()
                            .map_or(Duration::from_secs(6), |s| s.target_duration)
                            .saturating_mul(BLOCKING_RELOAD_TARGETS);
                        match spec {
                            Some(spec) => {
                                match range::of_segment(rendition, *msn, spec, wait_limit).await? {
                                    Ok(partial) => return Ok(Fetched::Partial { partial, cache }),
                                    Err(parts) => parts,
                                }
                            }
                            None => whole_segment(rendition, *msn, wait_limit).await?,
                        }
                    }
                    Lookup::Gone => return Err(Error::Gone("segment")),
                    Lookup::Missing => return Err(Error::NotYet("segment")),
                };
                let key = ctx.cache_key.as_deref().unwrap_or_default();
                let object = self.cache.get_or_fill(key, || concatenate(parts)).await?;
                match spec {
                    Some(spec) => Ok(Fetched::Partial {
                        partial: range::of_complete(&object.body, spec)?,
                        cache,
                    }),
                    None => Ok(Fetched::bytes(object.body.clone(), MEDIA_TYPE, cache)),
                }
            }
        }
    }

    /// The stream, or at an edge (a registry with a miss hook) the stream once it is
    /// followed from upstream, within the first-playlist wait.
    /// The stream's multivariant playlist as packaged (before any plugin), as text.
    fn filter_free_multivariant(&self, stream: &StreamConsumer) -> String {
        stream
            .multivariant()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The stream a request reads, counted for its request rate (the operator API).
    async fn stream(&self, stream: &str) -> Result<StreamConsumer> {
        let found = match self.registry.get(stream) {
            Some(s) => s,
            None => tokio::time::timeout(
                self.settings.first_playlist_wait,
                self.registry.get_or_wait(stream),
            )
            .await
            .ok()
            .flatten()
            .ok_or(Error::NotFound)?,
        };
        found.count_request();
        Ok(found)
    }

    async fn rendition(&self, stream: &str, rendition: &str) -> Result<RenditionConsumer> {
        self.stream(stream)
            .await?
            .rendition(rendition)
            .ok_or(Error::NotFound)
    }

    async fn media_playlist(
        &self,
        mut rendition: RenditionConsumer,
        query: HlsQuery,
    ) -> Result<Fetched> {
        let current = match rendition.snapshot() {
            Some(snapshot) => snapshot,
            None => {
                // The stream is up but its packager has not cut a part yet.
                let first =
                    tokio::time::timeout(self.settings.first_playlist_wait, rendition.first());
                first
                    .await
                    .map_err(|_| Error::NotYet("media playlist"))?
                    .ok_or(Error::StreamGone)?
            }
        };
        let snapshot = match query.msn {
            None => current,
            Some(msn) => {
                if current.too_far_ahead(msn, query.part) {
                    let last = current.next_msn.saturating_sub(1);
                    return Err(Error::BadRequest(match query.part {
                        Some(part) if msn <= current.next_msn.saturating_add(1) => format!(
                            "_HLS_msn={msn}&_HLS_part={part} is more than {} parts (the Advance Part Limit) past the last part in the playlist",
                            current.advance_part_limit()
                        ),
                        _ => format!(
                            "_HLS_msn={msn} is more than two segments past the last complete one ({last})"
                        ),
                    }));
                }
                if rendition.is_ready(&current, msn, query.part) {
                    current
                } else {
                    let limit = current
                        .target_duration
                        .saturating_mul(BLOCKING_RELOAD_TARGETS);
                    let _blocked = self.stats.blocked();
                    tokio::time::timeout(limit, rendition.wait_for(msn, query.part))
                        .await
                        .map_err(|_| {
                            self.stats.reload_timeouts.fetch_add(1, Ordering::Relaxed);
                            Error::ReloadTimeout
                        })?
                        .ok_or(Error::StreamGone)?
                }
            }
        };
        let (body, full) = match (query.skip, &snapshot.playlist_skip) {
            (Some(Skip::Yes | Skip::V2), Some(delta)) => {
                (delta.clone(), Some(snapshot.playlist.clone()))
            }
            _ => (snapshot.playlist.clone(), None),
        };
        let cache = if query.is_blocking() {
            // A blocking URL names one future version: its answer never changes.
            CacheControl::MaxAge(snapshot.target_duration.saturating_mul(6))
        } else {
            // About half a part, so CDNs fold reloads together without adding much latency.
            CacheControl::MaxAge((snapshot.part_target / 2).max(Duration::from_secs(1)))
        };
        Ok(Fetched::Playlist {
            kind: PlaylistKind::Media,
            body,
            full,
            version: Some(snapshot.version),
            cues: snapshot.cues.clone(),
            cache,
        })
    }
}

/// Waits for segment `msn`, in progress, to be complete; its parts.
async fn whole_segment(
    mut rendition: RenditionConsumer,
    msn: u64,
    wait_limit: Duration,
) -> Result<Vec<weir_media::PartConsumer>> {
    loop {
        let version = rendition.snapshot().map_or(0, |s| s.version);
        match rendition.segment_so_far(msn) {
            Lookup::Found((parts, true)) => return Ok(parts),
            Lookup::Found((_, false)) => {}
            Lookup::Gone => return Err(Error::Gone("segment")),
            Lookup::Missing => return Err(Error::NotYet("segment")),
        }
        tokio::time::timeout(wait_limit, rendition.newer_than(version))
            .await
            .map_err(|_| Error::NotYet("segment"))?
            .ok_or(Error::StreamGone)?;
    }
}

/// A complete segment's body: its parts back to back.
async fn concatenate(parts: Vec<weir_media::PartConsumer>) -> Result<CachedObject> {
    let mut bodies = Vec::with_capacity(parts.len());
    for mut part in parts {
        bodies.push(part.collect().await?);
    }
    let mut out = Vec::with_capacity(bodies.iter().map(Bytes::len).sum());
    for b in &bodies {
        out.extend_from_slice(b);
    }
    Ok(CachedObject::new(Bytes::from(out), MEDIA_TYPE))
}

/// Content types for what an assets directory holds.
fn asset_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("m3u8") => PLAYLIST_TYPE,
        Some("mp4" | "m4s" | "m4a" | "m4v") => MEDIA_TYPE,
        Some("ts") => "video/mp2t",
        Some("aac") => "audio/aac",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    }
}

fn static_asset(bytes: &Bytes, content_type: &'static str, cache: CacheControl) -> Result<Fetched> {
    if bytes.is_empty() {
        return Err(Error::NotFound);
    }
    Ok(Fetched::bytes(bytes.clone(), content_type, cache))
}

/// Phase 2: the object's identity. Segments are filled through the cache under this key;
/// playlist filter output will be keyed by it plus the playlist version.
fn cache_key(route: &Route) -> Option<String> {
    match route {
        Route::Health
        | Route::Ready
        | Route::Metrics
        | Route::PlayerPage
        | Route::PlayerScript
        | Route::AssetList { .. }
        | Route::Asset { .. } => None,
        Route::Multivariant { stream } => Some(format!("{stream}/master.m3u8")),
        Route::MediaPlaylist {
            stream,
            rendition,
            query,
        } => {
            let mut key = format!("{stream}/{rendition}/index.m3u8?");
            if let Some(msn) = query.msn {
                key.push_str(&format!("_HLS_msn={msn}&"));
            }
            if let Some(part) = query.part {
                key.push_str(&format!("_HLS_part={part}&"));
            }
            match query.skip {
                Some(Skip::Yes) => key.push_str("_HLS_skip=YES"),
                Some(Skip::V2) => key.push_str("_HLS_skip=v2"),
                None => {}
            }
            Some(key)
        }
        Route::Init {
            stream,
            rendition,
            generation,
        } => Some(match generation {
            Some(g) => format!("{stream}/{rendition}/init{g}.mp4"),
            None => format!("{stream}/{rendition}/init.mp4"),
        }),
        Route::Part {
            stream,
            rendition,
            seq,
        } => Some(format!("{stream}/{rendition}/part{seq}.m4s")),
        Route::Segment {
            stream,
            rendition,
            msn,
        } => Some(format!("{stream}/{rendition}/seg{msn}.m4s")),
    }
}

/// Phase 5: status, headers, body.
fn respond(fetched: Fetched) -> Response<Body> {
    let (body, len, content_type, cache) = match fetched {
        Fetched::Playlist { body, cache, .. } => {
            let len = body.len();
            (body::full(body), len, PLAYLIST_TYPE, cache)
        }
        Fetched::Object {
            body,
            len,
            content_type,
            cache,
        } => (body, len, content_type, cache),
        Fetched::Partial { partial, cache } => {
            let mut response = Response::new(partial.body);
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
            headers.insert(header::CACHE_CONTROL, cache.header());
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            headers.insert(
                header::CONTENT_RANGE,
                header_value_or(partial.content_range, "bytes */*"),
            );
            if let Some(len) = partial.len {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            return response;
        }
        // Turned into an object in phase 4; reaching here is a routing slip, not a crash.
        Fetched::AssetList { .. } => (
            body::full(Bytes::new()),
            0,
            "application/json",
            CacheControl::NoStore,
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, cache.header());
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_include_the_directives() {
        let route = route::parse(
            "/live/a/720p/index.m3u8",
            Some("_HLS_msn=4&_HLS_part=1&_HLS_skip=YES&cb=1"),
        )
        .unwrap();
        assert_eq!(
            cache_key(&route).unwrap(),
            "a/720p/index.m3u8?_HLS_msn=4&_HLS_part=1&_HLS_skip=YES"
        );
        let seg = route::parse("/live/a/720p/seg9.m4s", None).unwrap();
        assert_eq!(cache_key(&seg).unwrap(), "a/720p/seg9.m4s");
    }

    #[test]
    fn cache_control_headers() {
        let d = Duration::from_secs(300);
        assert_eq!(
            CacheControl::Immutable(d).header(),
            "public, max-age=300, immutable"
        );
        assert_eq!(
            CacheControl::MaxAge(Duration::from_millis(1500)).header(),
            "public, max-age=1"
        );
        assert_eq!(CacheControl::NoStore.header(), "no-store");
    }
}
