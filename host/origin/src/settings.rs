//! What an operator can tune. Defaults are the `DEFAULT_*` constants.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use weir_cache::CacheSettings;

use crate::{Error, Result};

/// Blocking reloads wait this many target durations before answering 503 (RFC 8216bis 6.2.5.2).
pub const BLOCKING_RELOAD_TARGETS: u32 = 3;
/// A stream's first playlist lists its first complete segment: a segment target plus up to a
/// GOP after the first keyframe.
pub const DEFAULT_FIRST_PLAYLIST_WAIT: Duration = Duration::from_secs(8);
pub const DEFAULT_MEDIA_MAX_AGE: Duration = Duration::from_secs(300);
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// hyper's own default, made explicit.
pub const DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 256;
/// Streams a client opens and resets before the server has accepted them ("rapid reset",
/// CVE-2023-44487); beyond this the connection gets GOAWAY. The h2 crate's default.
pub const DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;
/// Streams the server resets because the client misbehaved (RUSTSEC-2024-0003); beyond this
/// the connection gets GOAWAY. hyper's default.
pub const DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;
/// Request line plus headers: HLS requests send well under 4 KiB, cookies included.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 32 * 1024;
/// hyper asserts on smaller HTTP/1.1 read buffers.
pub const MIN_HEADER_BYTES: usize = 8192;
/// A head this large is an attack or a mistake; HTTP/2's `SETTINGS_MAX_HEADER_LIST_SIZE`
/// (a u32) is far above it.
pub const MAX_HEADER_BYTES: usize = 1 << 20;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;
/// A browser holds at most 6 HTTP/1.1 connections to one host (1 over HTTP/2); this leaves
/// room for many viewers behind one NAT, and stops one machine from holding all the slots.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 256;
/// An authorised API request must send its whole body within this (a plugin upload of
/// tens of megabytes included).
pub const DEFAULT_API_BODY_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The player page and script served at `/` and `/hls.min.js`. Empty means 404.
#[derive(Clone, Default)]
pub struct StaticAssets {
    pub index_html: Bytes,
    pub hls_js: Bytes,
}

impl std::fmt::Debug for StaticAssets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticAssets")
            .field("index_html_len", &self.index_html.len())
            .field("hls_js_len", &self.hls_js.len())
            .finish()
    }
}

/// Origin settings, kept apart from its state ([`crate::Origin`]).
#[derive(Clone, Debug)]
pub struct OriginSettings {
    /// `Access-Control-Allow-Origin` on every response: `*` or one origin.
    pub cors_allow_origin: String,
    /// How long a playlist request waits for a stream that exists but has not published its
    /// first playlist yet, before answering 404.
    pub first_playlist_wait: Duration,
    /// `max-age` for complete parts, segments and init segments, which are immutable while
    /// they are in the window.
    pub media_max_age: Duration,
    /// HTTP/1.1: a client must send a request's headers within this (slowloris guard). It
    /// also bounds how long an idle keep-alive connection waits for its next request.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed: HTTP/2 gets GOAWAY,
    /// and so does a connection that never sends a whole request. (HTTP/1.1 keep-alive is
    /// bounded sooner, by `header_read_timeout`.)
    pub idle_timeout: Duration,
    /// The largest request head accepted: request line and headers on HTTP/1.1, the header
    /// list on HTTP/2 ([`MIN_HEADER_BYTES`] to [`MAX_HEADER_BYTES`]). Larger heads get 431
    /// or a reset.
    pub max_header_bytes: usize,
    /// Bound on producing a response head, blocking reloads included: keep it above
    /// 3× the longest target duration.
    pub request_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    /// HTTP/2 PING interval that finds dead peers; `None` disables.
    pub http2_keep_alive_interval: Option<Duration>,
    /// A PING not answered within this closes the connection.
    pub http2_keep_alive_timeout: Duration,
    /// Requests one HTTP/2 connection may have in flight at once.
    pub http2_max_concurrent_streams: u32,
    /// Rapid-reset guard: see [`DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS`].
    pub http2_max_pending_accept_reset_streams: usize,
    /// See [`DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS`].
    pub http2_max_local_error_reset_streams: usize,
    /// Open connections, all listeners together. One more is accepted and closed at once
    /// (counted in `weir_http_connections_refused_total{reason="global"}`).
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 client is its /64), all listeners
    /// together; 0 means no limit. Behind a CDN or a reverse proxy every connection comes
    /// from a few addresses: raise it or set 0 there.
    pub max_connections_per_ip: usize,
    /// `/api/…`: the whole request body must arrive within this, or the answer is 408.
    pub api_body_timeout: Duration,
    /// After shutdown is signalled, in-flight requests get this long before connections
    /// are closed.
    pub shutdown_grace: Duration,
    /// The segment cache.
    pub cache: CacheSettings,
    pub assets: StaticAssets,
    /// Files served at `/assets/…` (ad creatives for interstitials, slates); `None`: off.
    pub assets_dir: Option<std::path::PathBuf>,
}

impl Default for OriginSettings {
    fn default() -> Self {
        Self {
            cors_allow_origin: "*".to_owned(),
            first_playlist_wait: DEFAULT_FIRST_PLAYLIST_WAIT,
            media_max_age: DEFAULT_MEDIA_MAX_AGE,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            tls_handshake_timeout: DEFAULT_TLS_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
            http2_keep_alive_interval: Some(DEFAULT_HTTP2_KEEP_ALIVE_INTERVAL),
            http2_keep_alive_timeout: DEFAULT_HTTP2_KEEP_ALIVE_TIMEOUT,
            http2_max_concurrent_streams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
            http2_max_pending_accept_reset_streams: DEFAULT_HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS,
            http2_max_local_error_reset_streams: DEFAULT_HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            api_body_timeout: DEFAULT_API_BODY_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            assets_dir: None,
            cache: CacheSettings::default(),
            assets: StaticAssets::default(),
        }
    }
}

impl OriginSettings {
    /// Checks the settings, naming the offending key: the one check of each value (the
    /// binary's `[server]` limits are checked here, with the key mapped to its config name).
    pub fn validate(&self) -> Result<()> {
        self.cors_header()?;
        let positive = [
            ("header_read_timeout", self.header_read_timeout),
            ("request_timeout", self.request_timeout),
            ("tls_handshake_timeout", self.tls_handshake_timeout),
            ("idle_timeout", self.idle_timeout),
            ("http2_keep_alive_timeout", self.http2_keep_alive_timeout),
            ("api_body_timeout", self.api_body_timeout),
        ];
        for (key, value) in positive {
            if value.is_zero() {
                return Err(Error::Settings {
                    key,
                    message: "must be greater than zero".to_owned(),
                });
            }
        }
        if self.max_connections == 0 {
            return Err(Error::Settings {
                key: "max_connections",
                message: "must be at least 1".to_owned(),
            });
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return Err(Error::Settings {
                key: "max_header_bytes",
                message: format!(
                    "{} must be {MIN_HEADER_BYTES} to {MAX_HEADER_BYTES}",
                    self.max_header_bytes
                ),
            });
        }
        if self.http2_max_concurrent_streams == 0 {
            return Err(Error::Settings {
                key: "http2_max_concurrent_streams",
                message: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }

    pub(crate) fn cors_header(&self) -> Result<HeaderValue> {
        let bad = |message: &str| Error::Settings {
            key: "cors_allow_origin",
            message: message.to_owned(),
        };
        if self.cors_allow_origin.is_empty() {
            return Err(bad(
                "must be `*` or an origin such as https://player.example",
            ));
        }
        HeaderValue::from_str(&self.cors_allow_origin).map_err(|_| bad("not a valid header value"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        OriginSettings::default().validate().unwrap();
    }

    #[test]
    fn invalid_settings_name_the_key() {
        let s = OriginSettings {
            cors_allow_origin: "bad\nvalue".into(),
            ..OriginSettings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("cors_allow_origin"));
        let s = OriginSettings {
            request_timeout: Duration::ZERO,
            ..OriginSettings::default()
        };
        assert!(s
            .validate()
            .unwrap_err()
            .to_string()
            .contains("request_timeout"));
        for (bytes, ok) in [
            (MIN_HEADER_BYTES - 1, false),
            (MIN_HEADER_BYTES, true),
            (MAX_HEADER_BYTES, true),
            (MAX_HEADER_BYTES + 1, false),
        ] {
            let s = OriginSettings {
                max_header_bytes: bytes,
                ..OriginSettings::default()
            };
            match s.validate() {
                Ok(()) => assert!(ok, "{bytes} accepted"),
                Err(e) => {
                    assert!(!ok, "{bytes} refused: {e}");
                    assert_eq!(
                        e.to_string(),
                        format!(
                            "invalid setting max_header_bytes: {bytes} must be 8192 to 1048576"
                        )
                    );
                }
            }
        }
    }
}
