//! Checks a plugin's output before anyone sees it. A plugin may add and change tags, and
//! point media at other objects of the same stream (a slate rendition), but it may not drop
//! media, reorder it, send players to another host or break the playlist's syntax.
//!
//! **Containment.** Every URI in the output, wherever it is (segment lines, `EXT-X-MAP`,
//! `EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT`, `EXT-X-MEDIA`, `EXT-X-KEY`,
//! `EXT-X-SESSION-DATA`, `EXT-X-I-FRAME-STREAM-INF`, `EXT-X-CONTENT-STEERING`, any tag's
//! `*URI` attribute, a date range's `X-ASSET-LIST`), is resolved with the WHATWG URL parser
//! (the `url` crate, what hls.js and Shaka get from the browser) against the playlist's own
//! URL, and must land under `/live/<stream>/` on the same origin. Interstitials are the one
//! exception: `X-ASSET-LIST`, `X-ASSET-URI` and the `URI`s of an asset list may also name a
//! host listed in the tenant's `ad_hosts` (`http(s)://host/…`), and ad assets may also be
//! served from this origin's `/assets/`.
//!
//! Players do not all parse URIs the same way: an RFC 3986 player reads `https:evil/x` as an
//! absolute URI where WHATWG sees a relative path, some decode `%2e%2e` and some do not, some
//! take `\` for `/`. So on top of the resolution, a URI must be one that every parser reads
//! the same: printable ASCII only, no backslash, no percent-encoded dot, slash, backslash or
//! control character, and nothing before a first `:` unless it is `http://` or `https://`
//! to a listed host. A tag line whose attribute list could hide a URI from this check (a
//! `URI=` inside another attribute's value, say) is refused as a whole, and so is a lone
//! carriage return or another line separator that a player might split lines on.
//!
//! Every check here is one pass over the text: the work is linear in the output's size,
//! which the host caps before it gets here.

use url::Url;

/// The origin that relative URIs are resolved against. A plugin's result is cached and
/// served to every request for the same playlist version whatever `Host` it came with, so
/// containment cannot depend on the host a viewer asked for: this reserved name (RFC 2606
/// `.invalid`) stands for "this origin", and only a relative reference can reach it.
pub const ORIGIN: &str = "https://origin.weir.invalid";

/// A URI longer than this is refused (weir's own are a few dozen bytes).
pub const MAX_URI_BYTES: usize = 4096;

/// Why an output was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not a playlist of the right kind, or a character a player could misread.
    #[error("{0}")]
    Syntax(String),
    /// Media dropped or added, or the window's header changed.
    #[error("{0}")]
    Media(String),
    /// A URI that leaves the stream (or whose meaning depends on the player).
    #[error("{0}")]
    UriEscape(String),
}

/// Where a plugin's output is served, and where its interstitials may point.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    /// The stream (`/live/<stream>/`).
    pub stream: &'a str,
    /// Hosts (`host` or `host:port`, lower case, IDNA in its ASCII form) where asset lists
    /// and ad assets may live: the tenant's `ad_hosts`.
    pub asset_hosts: &'a [String],
}

/// What a URI names, which decides where it may point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Media, playlists, keys, session data: under `/live/<stream>/` on this origin.
    Stream,
    /// An interstitial's asset list (`X-ASSET-LIST`): the stream, or a listed host.
    AssetList,
    /// An ad asset (`X-ASSET-URI`, an asset list's `URI`s): the stream, this origin's
    /// `/assets/`, or a listed host.
    AdAsset,
}

/// The URL of a media playlist: what its relative URIs resolve against.
pub fn media_base(stream: &str, rendition: &str) -> Option<Url> {
    Url::parse(&format!("{ORIGIN}/live/{stream}/{rendition}/index.m3u8")).ok()
}

/// The URL of a multivariant playlist.
pub fn multivariant_base(stream: &str) -> Option<Url> {
    Url::parse(&format!("{ORIGIN}/live/{stream}/master.m3u8")).ok()
}

/// The URL of an asset list (`/live/<stream>/asset-list/<cue>.json`).
pub fn asset_list_base(stream: &str, cue_id: u32) -> Option<Url> {
    Url::parse(&format!("{ORIGIN}/live/{stream}/asset-list/{cue_id}.json")).ok()
}

/// Checks one entry of a tenant's `ad_hosts` and returns its canonical form (lower case,
/// IDNA in ASCII, the scheme's default port dropped): `ads.example.com` or `ads.example:8443`.
pub fn asset_host(entry: &str) -> Result<String, String> {
    if entry.is_empty() || !entry.bytes().all(|b| b.is_ascii_graphic() || b >= 0x80) {
        return Err(format!("{entry:?} is not a host name"));
    }
    if entry.contains(['/', '\\', '@', '?', '#', '%', '*']) {
        return Err(format!(
            "{entry:?} must be a bare host or host:port, without scheme, path or wildcard"
        ));
    }
    let url = Url::parse(&format!("https://{entry}/"))
        .map_err(|e| format!("{entry:?} is not a host name: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("{entry:?} is not a host name"))?;
    let canonical = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    if entry != canonical {
        return Err(format!(
            "{entry:?} is not in canonical form (write {canonical:?})"
        ));
    }
    Ok(canonical)
}

/// Checks one URI of a plugin's output, relative to `base` (the URL it is served at).
pub fn check_uri(uri: &str, base: &Url, scope: &Scope<'_>, role: Role) -> Result<(), String> {
    let bad = |why: &str| Err(format!("URI {:?} {why}", shorten(uri)));
    if uri.is_empty() {
        return bad("is empty");
    }
    if uri.len() > MAX_URI_BYTES {
        return bad("is too long");
    }
    if !uri.bytes().all(|b| b.is_ascii_graphic()) {
        return bad("has a space, a control or a non-ASCII character");
    }
    if uri.contains('\\') {
        return bad("has a backslash (read as `/` by some players, not by others)");
    }
    if has_encoded_separator(uri) {
        return bad("percent-encodes a dot, slash, backslash or control character");
    }
    // RFC 3986: a first segment with a `:` is a scheme. WHATWG agrees unless the scheme
    // is the base's (`https:evil/x` is then relative to it): refuse the disagreement.
    let scheme_end = uri
        .find([':', '/', '?', '#'])
        .filter(|&i| uri.as_bytes()[i] == b':');
    if scheme_end.is_some() || uri.starts_with("//") {
        if role == Role::Stream {
            return bad("is not a relative reference: it must stay under /live/<stream>/");
        }
        let rest = match scheme_end {
            Some(i) => {
                let scheme = &uri[..i];
                if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
                    return bad("has a scheme other than http or https");
                }
                &uri[i + 1..]
            }
            None => uri,
        };
        if !rest.starts_with("//") {
            return bad("has a scheme but no `//host` (players disagree on what it means)");
        }
        let Ok(url) = base.join(uri) else {
            return bad("does not parse as a URL");
        };
        if !url.username().is_empty() || url.password().is_some() {
            return bad("carries user info");
        }
        let Some(host) = url.host_str() else {
            return bad("has no host");
        };
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        if scope.asset_hosts.contains(&host) {
            return Ok(());
        }
        return bad(&format!(
            "names host {host:?}, which is not in the tenant's ad_hosts"
        ));
    }
    let Ok(url) = base.join(uri) else {
        return bad("does not parse as a URL");
    };
    if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
        return bad("leaves this origin");
    }
    let path = url.path();
    let under = |prefix: &str| path.len() > prefix.len() && path.starts_with(prefix);
    if under(&format!("/live/{}/", scope.stream)) {
        return Ok(());
    }
    if role == Role::AdAsset && under("/assets/") {
        return Ok(());
    }
    bad(&format!(
        "resolves to {:?}, outside /live/{}/",
        shorten(path),
        scope.stream
    ))
}

/// `%2e`, `%2f`, `%5c`, `%00`-`%1f`, `%7f` anywhere (any case).
fn has_encoded_separator(uri: &str) -> bool {
    let b = uri.as_bytes();
    b.windows(3).any(|w| {
        w[0] == b'%'
            && match (hex(w[1]), hex(w[2])) {
                (Some(h), Some(l)) => {
                    let v = h << 4 | l;
                    v == b'.' || v == b'/' || v == b'\\' || v < 0x20 || v == 0x7f
                }
                _ => false,
            }
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// At most 120 bytes of `s`, for messages (which are logged).
fn shorten(s: &str) -> &str {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A playlist's first line is `#EXTM3U` and nothing else: m3u8-rs, for one, reads what
/// follows the tag as a URI.
fn check_first_line(text: &str) -> Result<(), Rejection> {
    let first = text.split('\n').next().unwrap_or_default();
    if first.strip_suffix('\r').unwrap_or(first) == "#EXTM3U" {
        Ok(())
    } else {
        Err(Rejection::Syntax(
            "the first line is not exactly #EXTM3U".to_owned(),
        ))
    }
}

/// Refuses characters that split lines for some parsers and not for others: a carriage
/// return not followed by a line feed, other C0 controls but tab, DEL, NEL, U+2028/9.
fn check_characters(text: &str) -> Result<(), Rejection> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let bad = match b {
            b'\r' => bytes.get(i + 1) != Some(&b'\n'),
            b'\n' | b'\t' => false,
            0..=0x1f | 0x7f => true,
            _ => false,
        };
        if bad {
            return Err(Rejection::Syntax(format!(
                "control character {b:#04x} at byte {i}"
            )));
        }
    }
    if let Some(i) = text.find(['\u{85}', '\u{2028}', '\u{2029}']) {
        return Err(Rejection::Syntax(format!(
            "a Unicode line separator at byte {i}"
        )));
    }
    Ok(())
}

/// Calls `f` for every URI of a playlist with the role it plays: every line that is not a
/// tag or a comment, and every attribute of a tag whose name ends in `URI` or is
/// `X-ASSET-LIST`. Fails when a tag line has more `URI=` (or `X-ASSET-LIST=`) sites than
/// attributes its list parses into: a lenient player could find a URI there that the
/// attribute parser did not.
pub fn for_each_uri<'a>(
    text: &'a str,
    mut f: impl FnMut(Role, &'a str) -> Result<(), String>,
) -> Result<(), String> {
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if !trimmed.starts_with('#') {
            // The whole line: spaces around a URI are refused with it (parsers differ on
            // whether they belong to it).
            f(Role::Stream, line)?;
            continue;
        }
        let sites = uri_sites(trimmed);
        if sites == 0 {
            continue;
        }
        let mut checked = 0;
        if let Some((_, attrs)) = trimmed.split_once(':') {
            for (name, value) in Attributes(attrs) {
                let role = if name.eq_ignore_ascii_case("X-ASSET-LIST") {
                    Role::AssetList
                } else if name.eq_ignore_ascii_case("X-ASSET-URI") {
                    Role::AdAsset
                } else if ends_with_ignore_case(name, "URI") {
                    Role::Stream
                } else {
                    continue;
                };
                checked += 1;
                f(role, value)?;
            }
        }
        if checked < sites {
            return Err(format!(
                "tag {:?} has a URI attribute its attribute list does not parse into \
                 (players could disagree on it)",
                shorten(trimmed)
            ));
        }
    }
    Ok(())
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// How many `=` of the line follow `URI` or `X-ASSET-LIST` (any case, spaces between
/// allowed): every place where some parser could see a URI attribute.
fn uri_sites(line: &str) -> usize {
    let b = line.as_bytes();
    let mut sites = 0;
    for (i, &c) in b.iter().enumerate() {
        if c != b'=' {
            continue;
        }
        let mut end = i;
        while end > 0 && matches!(b[end - 1], b' ' | b'\t') {
            end -= 1;
        }
        let before = &b[..end];
        let named = |n: &[u8]| {
            before.len() >= n.len() && before[before.len() - n.len()..].eq_ignore_ascii_case(n)
        };
        if named(b"URI") || named(b"X-ASSET-LIST") {
            sites += 1;
        }
    }
    sites
}

/// A lenient attribute-list parser: `NAME=VALUE` pairs separated by commas, names and
/// unquoted values trimmed, quoted values without their quotes. It stops at the first thing
/// that is not an attribute (which [`uri_sites`] then notices if a URI could be there).
struct Attributes<'a>(&'a str);

impl<'a> Iterator for Attributes<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.0;
        let eq = rest.find('=')?;
        let name = rest[..eq].trim_matches([' ', '\t']);
        if name.is_empty() || name.contains([',', '"']) {
            self.0 = "";
            return None;
        }
        let after = rest[eq + 1..].trim_start_matches([' ', '\t']);
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let Some(close) = q.find('"') else {
                self.0 = "";
                return None;
            };
            (&q[..close], q[close + 1..].trim_start_matches([' ', '\t']))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim_end_matches([' ', '\t']), &after[end..])
        };
        self.0 = match tail.strip_prefix(',') {
            Some(t) => t,
            None if tail.is_empty() => "",
            // Junk after a value: no more attributes.
            None => "",
        };
        Some((name, value))
    }
}

/// Every URI of `text` checked against `base` and `scope`.
fn contain(text: &str, base: Option<Url>, scope: &Scope<'_>) -> Result<(), Rejection> {
    let base = base.ok_or_else(|| {
        Rejection::UriEscape(format!(
            "stream name {:?} does not form a URL",
            scope.stream
        ))
    })?;
    for_each_uri(text, |role, uri| check_uri(uri, &base, scope, role)).map_err(Rejection::UriEscape)
}

/// The media references of a playlist, in order.
#[derive(Debug, Default, PartialEq, Eq)]
struct MediaRefs<'a> {
    segments: Vec<&'a str>,
    parts: Vec<&'a str>,
    hints: Vec<&'a str>,
    media_sequence: Option<&'a str>,
    endlist: bool,
}

fn media_refs(text: &str) -> MediaRefs<'_> {
    let mut refs = MediaRefs::default();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            refs.segments.push(line);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            refs.parts.extend(uri_attribute(attrs));
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PRELOAD-HINT:") {
            refs.hints.extend(uri_attribute(attrs));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            refs.media_sequence = Some(v);
        } else if line == "#EXT-X-ENDLIST" {
            refs.endlist = true;
        }
    }
    refs
}

/// The `URI` attribute of an attribute list.
pub(crate) fn uri_attribute(attrs: &str) -> Option<&str> {
    Attributes(attrs)
        .find(|(name, _)| *name == "URI")
        .map(|(_, v)| v)
}

fn same_count(kind: &str, input: &[&str], output: &[&str]) -> Result<(), Rejection> {
    if input.len() == output.len() {
        Ok(())
    } else {
        Err(Rejection::Media(format!(
            "{} {kind} URIs in, {} out: a plugin may not add or drop media",
            input.len(),
            output.len()
        )))
    }
}

/// Validates a media playlist transform. `scope.stream` and `rendition` locate the playlist
/// (`/live/<stream>/<rendition>/index.m3u8`), which is what relative URIs resolve against.
pub fn media_playlist(
    input: &str,
    output: &str,
    scope: &Scope<'_>,
    rendition: &str,
) -> Result<(), Rejection> {
    check_first_line(output)?;
    check_characters(output)?;
    match m3u8_rs::parse_playlist_res(output.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {}
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => {
            return Err(Rejection::Syntax(
                "output is a multivariant playlist, not a media playlist".to_owned(),
            ))
        }
        // Not the parser's message: it holds the rest of the input.
        Err(_) => {
            return Err(Rejection::Syntax(
                "output does not parse as a playlist".to_owned(),
            ))
        }
    }
    let (a, b) = (media_refs(input), media_refs(output));
    same_count("segment", &a.segments, &b.segments)?;
    same_count("part", &a.parts, &b.parts)?;
    same_count("preload hint", &a.hints, &b.hints)?;
    if a.media_sequence != b.media_sequence {
        return Err(Rejection::Media(
            "output changes EXT-X-MEDIA-SEQUENCE".to_owned(),
        ));
    }
    if a.endlist != b.endlist {
        return Err(Rejection::Media(
            "output adds or removes EXT-X-ENDLIST".to_owned(),
        ));
    }
    contain(output, media_base(scope.stream, rendition), scope)
}

/// Validates a multivariant playlist transform (`/live/<stream>/master.m3u8`).
pub fn multivariant_playlist(
    input: &str,
    output: &str,
    scope: &Scope<'_>,
) -> Result<(), Rejection> {
    check_first_line(output)?;
    check_characters(output)?;
    match m3u8_rs::parse_playlist_res(output.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => {}
        Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {
            return Err(Rejection::Syntax(
                "output is a media playlist, not a multivariant playlist".to_owned(),
            ))
        }
        Err(_) => {
            return Err(Rejection::Syntax(
                "output does not parse as a playlist".to_owned(),
            ))
        }
    }
    let variants = |text: &'_ str| -> usize {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count()
    };
    let (a, b) = (variants(input), variants(output));
    if a != b {
        return Err(Rejection::Media(format!(
            "{a} variant URIs in, {b} out: a plugin may not add or drop variants"
        )));
    }
    contain(output, multivariant_base(scope.stream), scope)
}

/// Validates an asset list (`{"ASSETS":[{"URI":…,"DURATION":…}]}`) a plugin answered for
/// cue `cue_id`: JSON, and every asset's `URI` an ad asset the tenant allows.
pub fn asset_list(json: &str, scope: &Scope<'_>, cue_id: u32) -> Result<(), Rejection> {
    check_characters(json)?;
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| Rejection::Syntax(format!("asset list is not JSON: {e}")))?;
    let Some(assets) = value.get("ASSETS").and_then(|a| a.as_array()) else {
        return Err(Rejection::Syntax(
            "asset list has no ASSETS array".to_owned(),
        ));
    };
    let base = asset_list_base(scope.stream, cue_id).ok_or_else(|| {
        Rejection::UriEscape(format!(
            "stream name {:?} does not form a URL",
            scope.stream
        ))
    })?;
    for asset in assets {
        let Some(uri) = asset.get("URI").and_then(|u| u.as_str()) else {
            return Err(Rejection::Syntax("an asset has no URI string".to_owned()));
        };
        check_uri(uri, &base, scope, Role::AdAsset).map_err(Rejection::UriEscape)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
