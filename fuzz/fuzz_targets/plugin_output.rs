//! Plugin-output validation (weir_plugin_host::validate) on arbitrary text, checked
//! against oracles that share none of its code: whenever the validator accepts a media
//! playlist, a multivariant playlist or an asset list, every URI that m3u8-rs finds, and
//! every URI that a lenient player could find (lines split on any of CR, LF, NEL, U+2028/9;
//! every `URI=`-like attribute, quoted or not), must resolve with the `url` crate under
//! `/live/demo/` on the same origin, or (for interstitial assets) on a listed host.
//!
//! The crate is built without its `runtime` feature: no wasmtime in the fuzz build.
#![no_main]

use libfuzzer_sys::fuzz_target;
use url::Url;
use weir_plugin_host::validate::{self, Scope, ORIGIN};

const HOST: &str = "ads.example.com";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > 64 << 10 {
        return;
    }
    let hosts = vec![HOST.to_owned()];
    let scope = Scope {
        stream: "demo",
        asset_hosts: &hosts,
    };
    // The output against itself as the input: the media checks pass, containment decides.
    if validate::media_playlist(text, text, &scope, "720p").is_ok() {
        let base = validate::media_base("demo", "720p").unwrap();
        oracle(text, &base);
        if let Ok(m3u8_rs::Playlist::MediaPlaylist(p)) = m3u8_rs::parse_playlist_res(data) {
            for s in &p.segments {
                inside(&base, &s.uri, false);
                if let Some(m) = &s.map {
                    inside(&base, &m.uri, false);
                }
                if let Some(uri) = s.key.as_ref().and_then(|k| k.uri.as_ref()) {
                    inside(&base, uri, false);
                }
                if let Some(x) = s.daterange.as_ref().and_then(|d| d.x_prefixed.as_ref()) {
                    for (k, v) in x {
                        let v = v.to_string();
                        let v = v.trim_matches('"');
                        if k.ends_with("URI") || k == "X-ASSET-LIST" {
                            inside(&base, v, true);
                        }
                    }
                }
            }
        }
    }
    if validate::multivariant_playlist(text, text, &scope).is_ok() {
        let base = validate::multivariant_base("demo").unwrap();
        oracle(text, &base);
        if let Ok(m3u8_rs::Playlist::MasterPlaylist(p)) = m3u8_rs::parse_playlist_res(data) {
            for v in &p.variants {
                inside(&base, &v.uri, false);
            }
            for a in &p.alternatives {
                if let Some(uri) = &a.uri {
                    inside(&base, uri, false);
                }
            }
            for d in &p.session_data {
                if let m3u8_rs::SessionDataField::Uri(uri) = &d.field {
                    inside(&base, uri, false);
                }
            }
            for k in &p.session_key {
                if let Some(uri) = &k.0.uri {
                    inside(&base, uri, false);
                }
            }
        }
    }
    if validate::asset_list(text, &scope, 7).is_ok() {
        let base = validate::asset_list_base("demo", 7).unwrap();
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        for a in v["ASSETS"].as_array().unwrap() {
            inside(&base, a["URI"].as_str().unwrap(), true);
        }
    }
});

/// What a lenient player could take for a URI.
fn oracle(text: &str, base: &Url) {
    for line in text.split(['\r', '\n', '\u{85}', '\u{2028}', '\u{2029}']) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            inside(base, line, false);
            continue;
        }
        let upper = line.to_ascii_uppercase();
        for (at, _) in upper.match_indices('=') {
            let name = upper[..at].trim_end();
            let asset = name.ends_with("X-ASSET-LIST") || name.ends_with("X-ASSET-URI");
            if !(name.ends_with("URI") || asset) {
                continue;
            }
            let value = line[at + 1..].trim_start();
            let value = match value.strip_prefix('"') {
                Some(q) => &q[..q.find('"').unwrap_or(q.len())],
                None => value[..value.find(',').unwrap_or(value.len())].trim(),
            };
            inside(base, value, asset);
        }
    }
}

/// `uri` resolves under /live/demo/ on the origin, or for an ad asset under /assets/ or
/// on the listed host. (m3u8-rs 6 sometimes reports a comment line after a segment as that
/// segment's URI; no player fetches a line that starts with `#`.)
fn inside(base: &Url, uri: &str, asset: bool) {
    if uri.starts_with('#') {
        return;
    }
    assert!(
        !uri.contains('\\') && !uri.chars().any(char::is_whitespace),
        "accepted {uri:?}"
    );
    let url = base
        .join(uri)
        .unwrap_or_else(|e| panic!("accepted {uri:?}: {e}"));
    let origin = Url::parse(ORIGIN).unwrap();
    let ok = if url.origin() == origin.origin() {
        url.path().starts_with("/live/demo/") || (asset && url.path().starts_with("/assets/"))
    } else {
        asset
            && matches!(url.scheme(), "http" | "https")
            && url.host_str() == Some(HOST)
            && url.port().is_none()
            && url.username().is_empty()
            && url.password().is_none()
    };
    assert!(ok, "accepted {uri:?}, which resolves to {url}");
    // What an RFC 3986 reader sees as a scheme must be what WHATWG saw.
    if let Some(colon) = uri.find(':') {
        if !uri[..colon].contains(['/', '?', '#']) {
            assert!(asset, "accepted {uri:?}: a scheme on a stream URI");
        }
    }
}
