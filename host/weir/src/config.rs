//! The configuration tree: one TOML file, then CLI overrides, then [`Config::validate`].
//!
//! Every table denies unknown keys, so a typo is an error that names the key rather than a
//! setting that silently does nothing.
//!
//! A section that belongs to one crate is that crate's type, with its own check:
//! `[rtmp]` and `[srt]` are [`weir_ingest::RtmpConfig`] and [`weir_ingest::SrtConfig`],
//! `[plugins]` is [`weir_plugin_host::PluginsConfig`]. The sections whose keys several
//! parts share (`[server]`, `[packager]`, `[ingest]`) are declared here, and their values
//! that a crate owns are checked by that crate's settings (`[server]`'s limits by
//! [`weir_origin::OriginSettings::validate`], `[packager]`'s targets and window by
//! [`weir_packager::Settings::validate`]), with the key named. (serde's `flatten` would let
//! a crate declare its share of a table, but it buffers the values, and a value of the
//! wrong type would then be reported at the table's header instead of at its key.) What is
//! left here is the binary's own: listeners and files, the stream stage's timing, publish
//! keys, tenants, the encoder's ladder, and checks across sections.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
pub use weir_encoder::config::{validate_ladder, EncoderConfig, RungConfig};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub rtmp: weir_ingest::RtmpConfig,
    pub packager: PackagerConfig,
    pub ingest: IngestConfig,
    pub srt: weir_ingest::SrtConfig,
    pub whip: weir_ingest::WhipConfig,
    pub api: ApiConfig,
    pub edge: EdgeConfig,
    pub test_source: TestSourceConfig,
    pub encoder: EncoderConfig,
    pub plugins: weir_plugin_host::PluginsConfig,
    pub tenants: Vec<TenantConfig>,
}

/// A tenant: the streams it owns and its manifest plugin chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// `[a-z0-9_-]`; `default` holds every stream no other tenant lists.
    pub name: String,
    #[serde(default)]
    pub streams: Vec<String>,
    /// The request header with the viewer's country (set by the CDN).
    #[serde(default = "default_country_header")]
    pub country_header: String,
    /// Hosts (`host` or `host:port`) where this tenant's plugins may point interstitial
    /// asset lists and ad assets. Every other URI a plugin writes stays in its stream.
    #[serde(default)]
    pub ad_hosts: Vec<String>,
    /// The packager writes SCTE-35 `EXT-X-DATERANGE` tags itself. Set to `false` when the
    /// chain has the scte35 plugin, which renders them instead.
    #[serde(default = "yes")]
    pub packager_cue_tags: bool,
    /// Give each of the tenant's streams a hidden `slate` rendition (the built-in slate,
    /// looped), for the blackout plugin. Costs one more packager per stream.
    #[serde(default)]
    pub slate: bool,
    /// List parts as byte ranges of their segment (`EXT-X-PART:URI="seg<msn>.m4s",
    /// BYTERANGE=…`), so a CDN caches one object per segment (default:
    /// `packager.byterange_parts`).
    pub byterange_parts: Option<bool>,
    /// Transcode this tenant's streams into the ladder (default: `encoder.enabled`).
    pub transcode: Option<bool>,
    /// This tenant's ladder (default: `encoder.ladder`).
    pub ladder: Option<Vec<RungConfig>>,
    /// A bearer token for the operator API that reaches only this tenant: its streams'
    /// listing, cues and kicks, and its plugins (403 elsewhere). At least 16 characters.
    pub api_token: Option<String>,
    /// Signed playback URLs (docs/design/010-signed-urls.md): with keys set, this tenant's
    /// streams play only through `/live/{stream}/~{expires}.{signature}/…` URLs signed with
    /// one of them (`weir sign-url` makes one). The first key signs; every key is accepted,
    /// so a key is rotated by putting the new one first and dropping the old one once its
    /// URLs have expired. Each at least 32 characters.
    #[serde(default)]
    pub playback_keys: Vec<String>,
    /// The chain, in order. Also changed at runtime with `weir plugin push`; SIGHUP
    /// re-reads this list (and replaces what was pushed).
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
}

fn default_country_header() -> String {
    "CF-IPCountry".to_owned()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    pub name: String,
    /// The component (`.wasm`).
    pub path: PathBuf,
    /// The plugin's config text (usually JSON), given to its `init`.
    pub config: Option<String>,
    /// Or read it from a file.
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Plain-text listener: HTTP/1.1 and HTTP/2 prior knowledge (h2c), for use behind a CDN.
    pub http: SocketAddr,
    /// TLS listener (HTTP/2 via ALPN, and HTTP/1.1). Needs `tls_cert` and `tls_key`.
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `Access-Control-Allow-Origin` sent on every response.
    pub cors_allow_origin: String,
    /// Files served at `/assets/…` (ad creatives for interstitials, slates).
    pub assets_dir: Option<PathBuf>,
    /// Where each rendition's numbering reservation is kept, so that media sequence and
    /// part numbers never go back across a restart, even with the clock stepped back
    /// (docs/design/003). Default: `$STATE_DIRECTORY` (systemd's `StateDirectory=`) when
    /// set, else none (numbers follow the wall clock alone). See [`Config::state_dir`].
    pub state_dir: Option<PathBuf>,
    /// On SIGTERM or SIGINT: how long in-flight requests and sessions get to finish after
    /// the listeners stop accepting (match Kubernetes' terminationGracePeriodSeconds).
    pub shutdown_grace_s: u64,
    /// On SIGTERM or SIGINT, end every stream with `EXT-X-ENDLIST` before draining: for a
    /// server stopped for good. Off (the default) for restarts and rolling updates, where
    /// playlists stay open and the next process continues their numbering.
    pub end_streams_on_shutdown: bool,
    /// Open HTTP connections, both listeners together; one more is closed at accept.
    pub max_connections: usize,
    /// Open HTTP connections from one client address (IPv6: one /64); 0 is no limit.
    /// Behind a CDN or reverse proxy, raise it or set 0: every viewer comes from its
    /// addresses.
    pub max_connections_per_ip: usize,
    /// A connection with no request in flight this long is closed (HTTP/2 included).
    pub idle_timeout_s: u64,
    /// HTTP/1.1: the request head must arrive within this; it also bounds keep-alive idling.
    pub header_read_timeout_s: u64,
    /// The largest request head (request line and headers), in bytes; at least 8192.
    pub max_header_bytes: usize,
    /// Requests in flight on one HTTP/2 connection.
    pub http2_max_concurrent_streams: u32,
    /// `/api/…`: an authorised request's body must arrive within this (or 408).
    pub api_body_timeout_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            https: None,
            tls_cert: None,
            tls_key: None,
            cors_allow_origin: "*".to_owned(),
            assets_dir: None,
            state_dir: None,
            shutdown_grace_s: 10,
            end_streams_on_shutdown: false,
            max_connections: weir_origin::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: weir_origin::DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout_s: weir_origin::DEFAULT_IDLE_TIMEOUT.as_secs(),
            header_read_timeout_s: weir_origin::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            max_header_bytes: weir_origin::DEFAULT_MAX_HEADER_BYTES,
            http2_max_concurrent_streams: weir_origin::DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            api_body_timeout_s: weir_origin::DEFAULT_API_BODY_TIMEOUT.as_secs(),
        }
    }
}

impl ServerConfig {
    /// The origin's connection and request limits from this section (the rest of
    /// `OriginSettings` at its defaults).
    pub fn origin_limits(&self) -> weir_origin::OriginSettings {
        weir_origin::OriginSettings {
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_connections_per_ip,
            idle_timeout: Duration::from_secs(self.idle_timeout_s),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_s),
            max_header_bytes: self.max_header_bytes,
            http2_max_concurrent_streams: self.http2_max_concurrent_streams,
            api_body_timeout: Duration::from_secs(self.api_body_timeout_s),
            ..weir_origin::OriginSettings::default()
        }
    }

    /// Checks the limits by the origin's own rules, naming the `server.*` key.
    fn validate_limits(&self) -> anyhow::Result<()> {
        match self.origin_limits().validate() {
            Err(weir_origin::Error::Settings { key, message }) => {
                let key = match key {
                    "idle_timeout" => "idle_timeout_s",
                    "header_read_timeout" => "header_read_timeout_s",
                    "api_body_timeout" => "api_body_timeout_s",
                    same => same,
                };
                bail!("server.{key}: {message}")
            }
            other => Ok(other?),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PackagerConfig {
    /// Target segment duration in milliseconds (segments are cut on keyframes).
    pub segment_ms: u64,
    /// Target part duration in milliseconds.
    pub part_ms: u64,
    /// How much of the stream the playlist keeps, in seconds.
    pub window_s: u64,
    /// How long an ended stream stays servable (with `EXT-X-ENDLIST`), in seconds.
    pub linger_s: u64,
    /// Byte-range parts for every tenant that does not say otherwise (see
    /// `[[tenants]] byterange_parts`). Off: each part has its own URI.
    pub byterange_parts: bool,
}

impl Default for PackagerConfig {
    fn default() -> Self {
        let d = weir_packager::Settings::default();
        Self {
            segment_ms: millis(d.segment_target),
            part_ms: millis(d.part_target),
            window_s: d.window.as_secs(),
            linger_s: 30,
            byterange_parts: false,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl PackagerConfig {
    /// Every rendition's packager settings; their check ([`weir_packager::Settings::validate`])
    /// names these keys.
    pub fn settings(&self) -> weir_packager::Settings {
        weir_packager::Settings {
            segment_target: Duration::from_millis(self.segment_ms),
            part_target: Duration::from_millis(self.part_ms),
            window: Duration::from_secs(self.window_s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Accept any stream key and serve it under its own name (`/live/<key>/…`), as
    /// nginx-rtmp does. Default: on only while no `keys` and no `on_publish` are configured
    /// (zero-config on a laptop); off as soon as either is. A name that a configured key
    /// owns, or the test source's, is never available to another key.
    pub allow_any_key: Option<bool>,
    /// Publish keys and the public stream each one owns (one key per stream).
    pub keys: Vec<KeyConfig>,
    /// Ask an HTTP service whether a publisher may publish (like nginx-rtmp's
    /// `on_publish`): a 2xx answer allows it, anything else (or no answer in time) refuses.
    pub on_publish: Option<OnPublishConfig>,
    /// Streams that may run at once; a publisher of a new stream beyond it is refused
    /// (a returning publisher of a running stream never is).
    pub max_streams: usize,
    /// RTMP connections, and SRT sessions, one address may hold at once (0: no limit).
    pub max_connections_per_ip: usize,
    /// No media for this long (ms) and the contribution counts as lost: the playlist keeps
    /// its cadence with `EXT-X-GAP` parts until the publisher returns.
    pub loss_timeout_ms: u64,
    /// Passed-through streams: once the contribution is lost, the gap so far is published
    /// with the built-in "Please stand by" slate right behind it (after
    /// `EXT-X-DISCONTINUITY`), until a publisher returns. `false`: `EXT-X-GAP` parts for
    /// the whole loss (Shaka stops at a live edge that is all gaps).
    pub standby_slate: bool,
    /// No publisher for this long (s) and the stream ends with `EXT-X-ENDLIST`.
    pub idle_end_s: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            allow_any_key: None,
            keys: Vec::new(),
            on_publish: None,
            max_streams: 1000,
            max_connections_per_ip: weir_ingest::rtmp::DEFAULT_MAX_CONNECTIONS_PER_IP,
            loss_timeout_ms: 1500,
            standby_slate: true,
            idle_end_s: 60,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Bearer token for the operator API (`/api/v1/…`). The API is off when unset.
    pub token: Option<String>,
}

/// `[edge]`: run as an edge (`weir edge --upstream URL`): follow an upstream weir's streams
/// instead of ingesting any (docs/design/009-edge.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// The upstream weir (a primary or another edge), `http://` or `https://`. Unset: not
    /// an edge.
    pub upstream: Option<String>,
    /// More upstreams (primaries) that may hold a stream, beside `upstream`: a stream is
    /// followed from the one whose copy has a live publisher (the newest, if several do),
    /// and followed to another when its publisher moves there (docs/design/009-edge.md).
    pub upstreams: Vec<String>,
    /// A PEM file of roots to trust for an `https://` upstream (default: the system's).
    pub ca: Option<PathBuf>,
    /// Accept any upstream certificate (tests, self-signed primaries).
    pub insecure: bool,
    /// The shared edge token (at least 16 characters). An edge sends it upstream as
    /// `Authorization: Bearer …`; a weir with it set (a primary, or an edge that edges pull
    /// from) lets a request that carries it read any stream without a signed playback URL.
    pub token: Option<String>,
}

/// `ingest.on_publish`: the publish-authorization callback.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnPublishConfig {
    /// `http://host[:port]/path`; weir POSTs a JSON description of the publisher
    /// (`action`, `protocol`, `key`, `stream`, `app`, `addr`, `session`).
    pub url: String,
    /// How long to wait for the answer before refusing (ms).
    #[serde(default = "default_on_publish_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_on_publish_timeout_ms() -> u64 {
    2000
}

/// A publish key and the public stream name it publishes to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub key: String,
    pub stream: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestSourceConfig {
    /// Serve the built-in live test stream.
    pub enabled: bool,
    /// Its stream name: `/live/<name>/master.m3u8`.
    pub name: String,
    /// `pattern`: colour bars with the wall-clock time burnt in and a 1 kHz tone, drawn live
    /// and encoded through the ladder (`encoder.*`). `clip`: a short shipped clip, looped
    /// and passed through (no encoding; for machines that should not spend CPU on it).
    pub kind: TestSourceKind,
    /// The pattern's size; the ladder's rungs at or below it are encoded.
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TestSourceKind {
    Pattern,
    Clip,
}

impl Default for TestSourceConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            name: "test".to_owned(),
            kind: TestSourceKind::Pattern,
            width: 1280,
            height: 720,
        }
    }
}

/// The live encoder (weir-encoder): the ladder contributions are transcoded into.
impl Config {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.encoder.validate().map_err(anyhow::Error::msg)?;
        for t in &self.tenants {
            if let Some(l) = &t.ladder {
                validate_ladder(&format!("tenants.{}.ladder", t.name), l)
                    .map_err(anyhow::Error::msg)?;
            }
        }
        let ts = &self.test_source;
        if !(64..=3840).contains(&ts.width) || !(64..=2160).contains(&ts.height) {
            bail!(
                "test_source.width/height = {}x{} must be within 64x64 to 3840x2160",
                ts.width,
                ts.height
            );
        }
        self.packager.settings().validate()?;
        if !self.edge.upstreams.is_empty() && self.edge.upstream.is_none() {
            bail!("edge.upstreams is set but edge.upstream is not (the first upstream goes there)");
        }
        for u in self.edge.upstream.iter().chain(&self.edge.upstreams) {
            let ok = u.parse::<http::Uri>().ok().is_some_and(|u| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            });
            if !ok {
                bail!("edge.upstream = {u:?} is not an http:// or https:// URL");
            }
        }
        let s = &self.server;
        s.validate_limits()?;
        match (&s.https, &s.tls_cert, &s.tls_key) {
            (Some(_), Some(_), Some(_)) | (None, None, None) => {}
            (Some(_), _, _) => bail!("server.https needs both server.tls_cert and server.tls_key"),
            (None, _, _) => bail!("server.tls_cert/server.tls_key are set but server.https is not"),
        }
        if s.shutdown_grace_s > 3600 {
            bail!(
                "server.shutdown_grace_s = {} is above the one-hour maximum",
                s.shutdown_grace_s
            );
        }
        if s.state_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            bail!("server.state_dir is empty (leave it out for none)");
        }
        self.rtmp.validate()?;
        self.validate_ingest()?;
        self.srt.validate()?;
        self.whip.validate()?;
        weir_stream::validate_timings(
            Duration::from_millis(self.ingest.loss_timeout_ms),
            Duration::from_secs(self.ingest.idle_end_s),
        )
        .map_err(anyhow::Error::msg)?;
        for t in &self.tenants {
            if let Some(token) = &t.api_token {
                if token.trim().len() < 16 {
                    bail!(
                        "tenants.{}.api_token must be at least 16 characters",
                        t.name
                    );
                }
                if self.api.token.as_deref() == Some(token.as_str())
                    || self
                        .tenants
                        .iter()
                        .any(|o| o.name != t.name && o.api_token.as_deref() == Some(token.as_str()))
                {
                    bail!(
                        "tenants.{}.api_token is also another principal's token",
                        t.name
                    );
                }
            }
        }
        for t in &self.tenants {
            for (i, key) in t.playback_keys.iter().enumerate() {
                if key.len() < 32 {
                    bail!(
                        "tenants.{}.playback_keys[{i}] must be at least 32 characters",
                        t.name
                    );
                }
            }
        }
        if let Some(t) = &self.edge.token {
            if t.len() < 16 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                bail!("edge.token must be at least 16 visible ASCII characters");
            }
        }
        if let Some(t) = &self.api.token {
            if t.len() < 16 {
                bail!("api.token must be at least 16 characters");
            }
        }
        self.validate_tenants()?;
        if self.test_source.enabled && !valid_stream_name(&self.test_source.name) {
            bail!(
                "test_source.name = {:?} must be [A-Za-z0-9_-]{{1,64}}",
                self.test_source.name
            );
        }
        Ok(())
    }

    fn validate_ingest(&self) -> anyhow::Result<()> {
        let ingest = &self.ingest;
        for (i, k) in ingest.keys.iter().enumerate() {
            if k.key.is_empty() {
                bail!("ingest.keys[{i}].key is empty");
            }
            if !valid_stream_name(&k.stream) {
                bail!(
                    "ingest.keys[{i}].stream = {:?} must be [A-Za-z0-9_-]{{1,64}}",
                    k.stream
                );
            }
            for (j, earlier) in ingest.keys[..i].iter().enumerate() {
                if earlier.key == k.key {
                    bail!("ingest.keys[{i}].key repeats ingest.keys[{j}].key");
                }
                if earlier.stream == k.stream {
                    bail!(
                        "ingest.keys[{i}].stream = {:?} is already owned by ingest.keys[{j}]: \
                         a stream is published by one key",
                        k.stream
                    );
                }
            }
            if self.test_source.enabled && k.stream == self.test_source.name {
                bail!(
                    "ingest.keys[{i}].stream = {:?} is the test source's name \
                     (test_source.name); pick another or set test_source.enabled = false",
                    k.stream
                );
            }
        }
        let ingests = self.rtmp.enabled || self.srt.enabled;
        if ingests && !self.allow_any_key() && ingest.keys.is_empty() && ingest.on_publish.is_none()
        {
            bail!(
                "ingest.allow_any_key = false but neither ingest.keys nor ingest.on_publish \
                 is set: nobody could publish"
            );
        }
        if let Some(cb) = &ingest.on_publish {
            let uri: http::Uri = cb
                .url
                .parse()
                .with_context(|| format!("ingest.on_publish.url = {:?}", cb.url))?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() {
                bail!(
                    "ingest.on_publish.url = {:?} must be http://host[:port]/path \
                     (run a TLS-terminating sidecar for https)",
                    cb.url
                );
            }
            if !(100..=30_000).contains(&cb.timeout_ms) {
                bail!(
                    "ingest.on_publish.timeout_ms = {} must be 100 to 30000",
                    cb.timeout_ms
                );
            }
        }
        if ingest.max_streams == 0 {
            bail!("ingest.max_streams must be at least 1");
        }
        Ok(())
    }

    /// `ingest.allow_any_key`, resolved: its default is on only while nothing else says who
    /// may publish.
    pub fn allow_any_key(&self) -> bool {
        self.ingest
            .allow_any_key
            .unwrap_or(self.ingest.keys.is_empty() && self.ingest.on_publish.is_none())
    }

    fn validate_tenants(&self) -> anyhow::Result<()> {
        self.plugins.validate()?;
        let mut owners = std::collections::HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if !valid_plugin_name(&t.name) {
                bail!(
                    "tenants[{i}].name = {:?} must be [a-z0-9_-]{{1,64}}",
                    t.name
                );
            }
            if !names.insert(t.name.as_str()) {
                bail!("tenants[{i}].name = {:?} is used twice", t.name);
            }
            for s in &t.streams {
                if let Some(other) = owners.insert(s.as_str(), t.name.as_str()) {
                    bail!(
                        "stream {s:?} is listed by tenants {other:?} and {:?}",
                        t.name
                    );
                }
            }
            let mut plugin_names = std::collections::HashSet::new();
            for (j, pl) in t.plugins.iter().enumerate() {
                if !valid_plugin_name(&pl.name) || !plugin_names.insert(pl.name.as_str()) {
                    bail!(
                        "tenants[{i}].plugins[{j}].name = {:?} must be unique [a-z0-9_-]{{1,64}}",
                        pl.name
                    );
                }
                if pl.config.is_some() && pl.config_file.is_some() {
                    bail!("tenants[{i}].plugins[{j}]: give config or config_file, not both");
                }
            }
            for (j, h) in t.ad_hosts.iter().enumerate() {
                if let Err(e) = weir_plugin_host::validate::asset_host(h) {
                    bail!("tenants[{i}].ad_hosts[{j}]: {e}");
                }
            }
        }
        Ok(())
    }

    pub fn segment_target(&self) -> Duration {
        Duration::from_millis(self.packager.segment_ms)
    }

    pub fn part_target(&self) -> Duration {
        Duration::from_millis(self.packager.part_ms)
    }

    /// The origin's object cache: whole segments built from their parts. A segment is worth
    /// keeping while it is in the window and during its grace after it (RFC 8216bis 6.2.2),
    /// at most about two windows; past that nobody asks for it, so entries expire then
    /// (a later miss refills from the parts, or is 410 once they are gone). Without a
    /// time-to-live the cache kept every segment of every stream until its 256 MB cap: the
    /// soak grew by the stream's bitrate, 6.8 MB a minute for 864 kbit/s.
    pub fn cache_settings(&self) -> weir_cache::CacheSettings {
        weir_cache::CacheSettings {
            time_to_live: Some(
                Duration::from_secs(self.packager.window_s.saturating_mul(2))
                    + self.segment_target() * 2,
            ),
            ..weir_cache::CacheSettings::default()
        }
    }

    /// `server.state_dir`, else the first of systemd's `$STATE_DIRECTORY` (a `:`-separated
    /// list), else none.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.server.state_dir.clone().or_else(|| {
            let dirs = std::env::var_os("STATE_DIRECTORY")?;
            let first = dirs.to_str()?.split(':').next()?;
            (!first.is_empty()).then(|| PathBuf::from(first))
        })
    }
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Tenant and plugin names appear in API paths and metric labels.
pub fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Stream names appear in URLs: keep them to a conservative alphabet.
pub fn valid_stream_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(valid_name_char)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cached_segments_expire_after_two_windows() {
        let c = Config::default();
        let ttl = c.cache_settings().time_to_live.unwrap();
        assert_eq!(
            ttl,
            Duration::from_secs(2 * c.packager.window_s) + 2 * c.segment_target()
        );
        assert_eq!(
            c.cache_settings().max_bytes,
            weir_cache::CacheSettings::default().max_bytes
        );
    }

    use super::*;

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn the_example_config_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/weir.toml");
        let c = Config::load(&path).unwrap();
        c.validate().unwrap();
        assert_eq!(c.ingest.loss_timeout_ms, 1500);
        assert_eq!(c.srt.latency_ms, 200);
        // The example spells out the defaults.
        assert_eq!(c.encoder.ladder, EncoderConfig::default().ladder);
        assert_eq!(c.encoder.preset, EncoderConfig::default().preset);
    }

    #[test]
    fn server_limits_are_checked_and_reach_the_origin() {
        let c: Config = toml::from_str(
            "[server]\nmax_connections_per_ip = 7\nidle_timeout_s = 5\napi_body_timeout_s = 3\n",
        )
        .unwrap();
        c.validate().unwrap();
        let o = c.server.origin_limits();
        assert_eq!(o.max_connections_per_ip, 7);
        assert_eq!(o.idle_timeout, Duration::from_secs(5));
        assert_eq!(o.api_body_timeout, Duration::from_secs(3));
        o.validate().unwrap();
        for (toml, key) in [
            ("[server]\nidle_timeout_s = 0\n", "server.idle_timeout_s"),
            (
                "[server]\nmax_header_bytes = 100\n",
                "server.max_header_bytes",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
        ] {
            let c: Config = toml::from_str(toml).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn encoder_settings_are_checked() {
        let bad = |toml: &str, key: &str| {
            let c: Config = toml::from_str(toml).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{key} not in {e}");
        };
        bad("[encoder]\npreset = \"warp\"\n", "encoder.preset");
        bad("[encoder]\nladder = []\n", "encoder.ladder is empty");
        bad(
            "[[encoder.ladder]]\nname = \"src\"\nheight = 720\nbitrate = 3000000\n",
            "reserved",
        );
        bad(
            "[[encoder.ladder]]\nname = \"a\"\nheight = 720\nbitrate = 10\n",
            "encoder.ladder[0].bitrate",
        );
        bad(
            "[encoder]\nhold_ms = 3000\nslate_after_ms = 1000\n",
            "encoder.hold_ms",
        );
        bad(
            "[[tenants]]\nname = \"t\"\nladder = [{ name = \"x\", height = 5, bitrate = 100000 }]\n",
            "tenants.t.ladder[0].height",
        );
        bad(
            "[encoder]\nslate_image = \"/nonexistent.png\"\n",
            "encoder.slate_image",
        );
        bad("[test_source]\nwidth = 10\n", "test_source.width");
    }

    #[test]
    fn tenants_choose_transcoding_and_their_ladder() {
        let c: Config = toml::from_str(
            "[encoder]\nenabled = false\n[[tenants]]\nname = \"tv\"\nstreams = [\"news\"]\n\
             transcode = true\nladder = [{ name = \"540p\", height = 540, bitrate = 2000000 }]\n",
        )
        .unwrap();
        c.validate().unwrap();
        let policy = crate::plugins::stream_policy(&c);
        let news = policy.for_stream("news").encoder.unwrap();
        assert_eq!(news.ladder[0].name, "540p");
        assert_eq!(news.gop, c.segment_target());
        assert!(policy.for_stream("other").encoder.is_none());
    }

    #[test]
    fn the_plugins_example_is_valid_and_tenants_are_checked() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plugins.toml");
        let c = Config::load(&path).unwrap();
        c.validate().unwrap();
        assert_eq!(c.tenants[0].plugins.len(), 2);
        assert!(!c.tenants[0].packager_cue_tags && c.tenants[0].slate);
        let twice: Config = toml::from_str(
            "[[tenants]]\nname = \"a\"\nstreams = [\"s\"]\n[[tenants]]\nname = \"b\"\nstreams = [\"s\"]\n",
        )
        .unwrap();
        assert!(twice.validate().unwrap_err().to_string().contains("\"s\""));
        let bad: Config = toml::from_str("[[tenants]]\nname = \"Bad Name\"\n").unwrap();
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tenants[0].name"));
        assert_eq!(c.tenants[0].ad_hosts, ["ads.example.com"]);
        let ad: Config =
            toml::from_str("[[tenants]]\nname = \"a\"\nad_hosts = [\"https://ads.example\"]\n")
                .unwrap();
        assert!(ad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tenants[0].ad_hosts[0]"));
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let err = toml::from_str::<Config>("[packager]\nsegment_msec = 1000\n").unwrap_err();
        assert!(err.to_string().contains("segment_msec"), "{err}");
    }

    /// Each section a crate checks reaches `Config::validate` with its key named, once:
    /// where a crate and this file both had a limit, the stricter one (the one users met
    /// first) is the crate's now.
    #[test]
    fn crate_checks_name_the_key() {
        for (toml, message) in [
            // The packager allowed 50 ms, the config 100 ms.
            (
                "[packager]\npart_ms = 50\n",
                "packager.part_ms = 50 is below the 100 ms minimum",
            ),
            (
                "[packager]\nsegment_ms = 12000\nwindow_s = 60\n",
                "packager.segment_ms = 12000 is above the 10 s maximum",
            ),
            (
                "[packager]\nwindow_s = 5\n",
                "packager.window_s = 5 must hold at least 3 segments (6000 ms)",
            ),
            // The origin allowed up to 4 GiB, the config 1 MiB.
            (
                "[server]\nmax_header_bytes = 1048577\n",
                "server.max_header_bytes: 1048577 must be 8192 to 1048576",
            ),
            (
                "[server]\nheader_read_timeout_s = 0\n",
                "server.header_read_timeout_s: must be greater than zero",
            ),
            (
                "[server]\nhttp2_max_concurrent_streams = 0\n",
                "server.http2_max_concurrent_streams: must be at least 1",
            ),
            (
                "[rtmp]\napp = \"a/b\"\n",
                "rtmp.app = \"a/b\" must be non-empty [A-Za-z0-9_-]",
            ),
            (
                "[srt]\nlatency_ms = 10001\n",
                "srt.latency_ms = 10001 is above the 10 s maximum",
            ),
            (
                "[srt]\npassphrase = \"short\"\n",
                "srt.passphrase: must be 10 to 79 bytes, not 5",
            ),
            (
                "[plugins]\nthreads = 0\n",
                "plugins.threads = 0 must be 1 to 64",
            ),
        ] {
            let c: Config = toml::from_str(toml).unwrap();
            assert_eq!(c.validate().unwrap_err().to_string(), message, "{toml}");
        }
        // The limits themselves pass.
        let c: Config = toml::from_str(
            "[packager]\nsegment_ms = 10000\npart_ms = 100\nwindow_s = 30\n\
             [server]\nmax_header_bytes = 1048576\n[srt]\nlatency_ms = 10000\n",
        )
        .unwrap();
        c.validate().unwrap();
    }

    /// A value of the wrong type is reported at its line, in a crate's section as in this
    /// file's (which is why the shared sections are not assembled with serde's `flatten`).
    #[test]
    fn type_errors_point_at_the_key() {
        for (toml, key) in [
            ("[packager]\npart_ms = \"x\"\n", "part_ms = \"x\""),
            ("[server]\nidle_timeout_s = -1\n", "idle_timeout_s = -1"),
            ("[srt]\nlatency_ms = \"x\"\n", "latency_ms = \"x\""),
            ("[rtmp]\nlisten = \"nowhere\"\n", "listen = \"nowhere\""),
            ("[plugins]\nthreads = true\n", "threads = true"),
        ] {
            let e = toml::from_str::<Config>(toml).unwrap_err().to_string();
            assert!(e.contains("line 2") && e.contains(key), "{key} not in {e}");
        }
        for (toml, key) in [
            ("[srt]\nlatency = 1\n", "latency"),
            ("[rtmp]\napplication = \"x\"\n", "application"),
            ("[plugins]\nthread = 1\n", "thread"),
        ] {
            let e = toml::from_str::<Config>(toml).unwrap_err().to_string();
            assert!(e.contains(&format!("unknown field `{key}`")), "{e}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let mut c: Config =
            toml::from_str("[packager]\nsegment_ms = 1000\npart_ms = 1000\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("packager.part_ms"), "{e}");
        c.packager.part_ms = 200;
        c.validate().unwrap();
        c.server.https = Some("127.0.0.1:0".parse().unwrap());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.tls_cert"));
    }
}
