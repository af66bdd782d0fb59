//! Phase 1: the URL → a [`Route`], with LL-HLS query parameters checked strictly.

use crate::{Error, Result};

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /healthz`: the process is alive (liveness).
    Health,
    /// `GET /readyz`: ready for traffic (readiness): the embedding binary's [`Readiness`]
    /// says so (listeners bound, plugins loaded, an edge's upstream reachable).
    ///
    /// [`Readiness`]: crate::Readiness
    Ready,
    /// `GET /metrics` (Prometheus text format)
    Metrics,
    /// `GET /`
    PlayerPage,
    /// `GET /hls.min.js`
    PlayerScript,
    /// `GET /live/{stream}/master.m3u8`
    Multivariant { stream: String },
    /// `GET /live/{stream}/{rendition}/index.m3u8[?_HLS_msn=M[&_HLS_part=P]][&_HLS_skip=YES|v2]`
    MediaPlaylist {
        stream: String,
        rendition: String,
        query: HlsQuery,
    },
    /// `GET /live/{stream}/{rendition}/init.mp4` (the newest) or `init{generation}.mp4`.
    Init {
        stream: String,
        rendition: String,
        generation: Option<u64>,
    },
    /// `GET /live/{stream}/{rendition}/part{seq}.m4s`, `seq` a global part sequence number.
    Part {
        stream: String,
        rendition: String,
        seq: u64,
    },
    /// `GET /live/{stream}/{rendition}/seg{msn}.m4s`
    Segment {
        stream: String,
        rendition: String,
        msn: u64,
    },
    /// `GET /live/{stream}/asset-list/{cue_id}.json`: an HLS Interstitial asset list,
    /// answered by the stream's manifest plugins.
    AssetList { stream: String, cue_id: u32 },
    /// `GET /assets/{path}`: a file under the configured assets directory (ad creatives,
    /// slates). `path` is checked: `[A-Za-z0-9._-]` segments, none starting with a dot.
    Asset { path: String },
}

impl Route {
    /// The stream this route reads, if any.
    pub fn stream(&self) -> Option<&str> {
        match self {
            Route::Multivariant { stream }
            | Route::MediaPlaylist { stream, .. }
            | Route::Init { stream, .. }
            | Route::Part { stream, .. }
            | Route::Segment { stream, .. }
            | Route::AssetList { stream, .. } => Some(stream),
            Route::Health
            | Route::Ready
            | Route::Metrics
            | Route::PlayerPage
            | Route::PlayerScript
            | Route::Asset { .. } => None,
        }
    }
}

/// The delta-update form asked for with `_HLS_skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// `_HLS_skip=YES`: skip old segments.
    Yes,
    /// `_HLS_skip=v2`: skip old segments and old date ranges.
    V2,
}

/// LL-HLS delivery directives (RFC 8216bis 6.2.5). Other query parameters (cache busters,
/// CDN tokens) are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HlsQuery {
    pub msn: Option<u64>,
    pub part: Option<u32>,
    pub skip: Option<Skip>,
}

impl HlsQuery {
    /// Whether this is a blocking playlist reload.
    pub fn is_blocking(&self) -> bool {
        self.msn.is_some()
    }
}

/// Parses a request path and query. Unknown paths and names outside `[A-Za-z0-9_-]` are
/// [`Error::NotFound`]; malformed LL-HLS directives are [`Error::BadRequest`].
pub fn parse(path: &str, query: Option<&str>) -> Result<Route> {
    match path {
        "/" | "/index.html" => return Ok(Route::PlayerPage),
        "/hls.min.js" => return Ok(Route::PlayerScript),
        "/healthz" => return Ok(Route::Health),
        "/readyz" => return Ok(Route::Ready),
        "/metrics" => return Ok(Route::Metrics),
        _ => {}
    }
    if let Some(asset) = path.strip_prefix("/assets/") {
        return asset_path(asset).map(|path| Route::Asset { path });
    }
    let rest = path.strip_prefix("/live/").ok_or(Error::NotFound)?;
    let mut segments = rest.split('/');
    let stream = name(segments.next())?;
    let (second, third, extra) = (segments.next(), segments.next(), segments.next());
    if extra.is_some() {
        return Err(Error::NotFound);
    }
    match (second, third) {
        (Some("master.m3u8"), None) => Ok(Route::Multivariant { stream }),
        (Some("asset-list"), Some(file)) => numbered(file, "", ".json")
            .and_then(|id| u32::try_from(id).ok())
            .map(|cue_id| Route::AssetList { stream, cue_id })
            .ok_or(Error::NotFound),
        (Some(_), Some(file)) => {
            let rendition = name(second)?;
            if file == "index.m3u8" {
                let query = parse_hls_query(query.unwrap_or(""))?;
                return Ok(Route::MediaPlaylist {
                    stream,
                    rendition,
                    query,
                });
            }
            if file == "init.mp4" {
                return Ok(Route::Init {
                    stream,
                    rendition,
                    generation: None,
                });
            }
            if let Some(generation) = numbered(file, "init", ".mp4") {
                return Ok(Route::Init {
                    stream,
                    rendition,
                    generation: Some(generation),
                });
            }
            if let Some(seq) = numbered(file, "part", ".m4s") {
                return Ok(Route::Part {
                    stream,
                    rendition,
                    seq,
                });
            }
            if let Some(msn) = numbered(file, "seg", ".m4s") {
                return Ok(Route::Segment {
                    stream,
                    rendition,
                    msn,
                });
            }
            Err(Error::NotFound)
        }
        _ => Err(Error::NotFound),
    }
}

/// A stream or rendition name: `[A-Za-z0-9_-]{1,128}`.
fn name(segment: Option<&str>) -> Result<String> {
    match segment {
        Some(s)
            if !s.is_empty()
                && s.len() <= 128
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(s.to_owned())
        }
        _ => Err(Error::NotFound),
    }
}

/// A relative path under the assets directory that cannot leave it.
fn asset_path(path: &str) -> Result<String> {
    let ok = !path.is_empty()
        && path.len() <= 512
        && path.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        });
    if ok {
        Ok(path.to_owned())
    } else {
        Err(Error::NotFound)
    }
}

/// `{prefix}{digits}{suffix}`; anything else (signs, overflow) names nothing.
fn numbered(file: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let digits = file.strip_prefix(prefix)?.strip_suffix(suffix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Parses the LL-HLS directives in a query string. The spec asks for 400 on anything
/// malformed, so every case names what was wrong.
pub fn parse_hls_query(query: &str) -> Result<HlsQuery> {
    let mut q = HlsQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "_HLS_msn" => {
                if q.msn.is_some() {
                    return Err(bad("_HLS_msn is given more than once"));
                }
                q.msn = Some(decimal(key, value)?);
            }
            "_HLS_part" => {
                if q.part.is_some() {
                    return Err(bad("_HLS_part is given more than once"));
                }
                let part = decimal(key, value)?;
                q.part = Some(u32::try_from(part).map_err(|_| bad("_HLS_part is out of range"))?);
            }
            "_HLS_skip" => {
                if q.skip.is_some() {
                    return Err(bad("_HLS_skip is given more than once"));
                }
                q.skip = Some(match value {
                    "YES" => Skip::Yes,
                    "v2" => Skip::V2,
                    _ => return Err(bad("_HLS_skip must be YES or v2")),
                });
            }
            _ => {}
        }
    }
    if q.part.is_some() && q.msn.is_none() {
        return Err(bad("_HLS_part requires _HLS_msn"));
    }
    Ok(q)
}

fn decimal(key: &str, value: &str) -> Result<u64> {
    if value.is_empty() {
        return Err(Error::BadRequest(format!("{key} is empty")));
    }
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::BadRequest(format!(
            "{key} must be a non-negative decimal integer"
        )));
    }
    value
        .parse()
        .map_err(|_| Error::BadRequest(format!("{key} is out of range")))
}

fn bad(message: &str) -> Error {
    Error::BadRequest(message.to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bad_request(query: &str) -> String {
        match parse_hls_query(query) {
            Err(Error::BadRequest(m)) => m,
            other => panic!("{query:?} gave {other:?}, want 400"),
        }
    }

    #[test]
    fn malformed_directives_are_400_with_a_reason() {
        assert!(bad_request("_HLS_msn=abc").contains("decimal"));
        assert!(bad_request("_HLS_msn=-1").contains("decimal"));
        assert!(bad_request("_HLS_msn=+1").contains("decimal"));
        assert!(bad_request("_HLS_msn=1.5").contains("decimal"));
        assert!(bad_request("_HLS_msn=99999999999999999999999").contains("out of range"));
        assert!(bad_request("_HLS_msn=").contains("empty"));
        assert!(bad_request("_HLS_msn").contains("empty"));
        assert!(bad_request("_HLS_part=1").contains("requires _HLS_msn"));
        assert!(bad_request("_HLS_msn=1&_HLS_msn=2").contains("more than once"));
        assert!(bad_request("_HLS_msn=1&_HLS_part=1&_HLS_part=2").contains("more than once"));
        assert!(bad_request("_HLS_msn=1&_HLS_part=4294967296").contains("out of range"));
        assert!(bad_request("_HLS_skip=yes").contains("YES or v2"));
        assert!(bad_request("_HLS_skip=YES&_HLS_skip=v2").contains("more than once"));
    }

    #[test]
    fn asset_lists_and_assets() {
        assert_eq!(
            parse("/live/demo/asset-list/42.json", Some("_HLS_primary_id=x")).unwrap(),
            Route::AssetList {
                stream: "demo".to_owned(),
                cue_id: 42
            }
        );
        assert!(parse("/live/demo/asset-list/x.json", None).is_err());
        assert!(parse("/live/demo/asset-list/99999999999.json", None).is_err());
        assert_eq!(
            parse("/assets/ad1/index.m3u8", None).unwrap(),
            Route::Asset {
                path: "ad1/index.m3u8".to_owned()
            }
        );
        for bad in [
            "/assets/../etc/passwd",
            "/assets/a//b",
            "/assets/.env",
            "/assets/",
            "/assets/a/%2e%2e/b",
        ] {
            assert!(parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn well_formed_directives() {
        assert_eq!(parse_hls_query("").unwrap(), HlsQuery::default());
        assert_eq!(
            parse_hls_query("_HLS_msn=12&_HLS_part=3&_HLS_skip=v2&cb=99").unwrap(),
            HlsQuery {
                msn: Some(12),
                part: Some(3),
                skip: Some(Skip::V2)
            }
        );
        assert_eq!(
            parse_hls_query("_HLS_skip=YES").unwrap().skip,
            Some(Skip::Yes)
        );
        assert_eq!(
            parse_hls_query(&format!("_HLS_msn={}", u64::MAX))
                .unwrap()
                .msn,
            Some(u64::MAX)
        );
    }

    #[test]
    fn routes() {
        assert_eq!(parse("/healthz", None).unwrap(), Route::Health);
        assert_eq!(parse("/readyz", None).unwrap(), Route::Ready);
        assert_eq!(parse("/", None).unwrap(), Route::PlayerPage);
        assert_eq!(
            parse("/live/a-b_1/master.m3u8", None).unwrap(),
            Route::Multivariant {
                stream: "a-b_1".into()
            }
        );
        assert_eq!(
            parse("/live/a/720p/part42.m4s", None).unwrap(),
            Route::Part {
                stream: "a".into(),
                rendition: "720p".into(),
                seq: 42
            }
        );
        assert_eq!(
            parse("/live/a/720p/seg7.m4s", Some("x=1")).unwrap(),
            Route::Segment {
                stream: "a".into(),
                rendition: "720p".into(),
                msn: 7
            }
        );
        assert!(matches!(
            parse("/live/a/720p/index.m3u8", Some("_HLS_msn=3")).unwrap(),
            Route::MediaPlaylist {
                query: HlsQuery { msn: Some(3), .. },
                ..
            }
        ));
    }

    #[test]
    fn unknown_paths_and_bad_names_are_404() {
        for path in [
            "/nope",
            "/live/",
            "/live/a",
            "/live/a/",
            "/live/a.b/master.m3u8",
            "/live/a%2Fb/master.m3u8",
            "/live/../x/master.m3u8",
            "/live/a/720p/index.m3u8/x",
            "/live/a/720p/part-1.m4s",
            "/live/a/720p/part+1.m4s",
            "/live/a/720p/part.m4s",
            "/live/a/720p/part99999999999999999999999.m4s",
            "/live/a/720p/seg1.mp4",
            "/live/a/720p/other.m3u8",
            "/live/a/7 20p/init.mp4",
        ] {
            assert!(
                matches!(parse(path, None), Err(Error::NotFound)),
                "{path} should be 404"
            );
        }
    }

    #[test]
    fn queries_only_matter_for_media_playlists() {
        assert!(parse("/live/a/720p/init.mp4", Some("_HLS_msn=abc")).is_ok());
        assert!(matches!(
            parse("/live/a/720p/index.m3u8", Some("_HLS_msn=abc")),
            Err(Error::BadRequest(_))
        ));
    }
}
