//! Checks a plugin's output before anyone sees it. A plugin may add and change tags, and
//! point media at other objects of the same stream (a slate rendition), but it may not drop
//! media, reorder it, send players to another host or break the playlist's syntax.

/// The media references of a playlist, in order.
#[derive(Debug, Default, PartialEq, Eq)]
struct MediaRefs<'a> {
    segments: Vec<&'a str>,
    parts: Vec<&'a str>,
    hints: Vec<&'a str>,
    maps: Vec<&'a str>,
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
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-MAP:") {
            refs.maps.extend(uri_attribute(attrs));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            refs.media_sequence = Some(v);
        } else if line == "#EXT-X-ENDLIST" {
            refs.endlist = true;
        }
    }
    refs
}

/// The `URI="…"` attribute of an attribute list.
pub(crate) fn uri_attribute(attrs: &str) -> Option<&str> {
    let mut rest = attrs;
    loop {
        let at = rest.find("URI=\"")?;
        // A match inside another attribute's name (`X-URI="`) does not count.
        let standalone = at == 0 || rest.as_bytes()[at - 1] == b',';
        let value = &rest[at + 5..];
        let end = value.find('"')?;
        if standalone {
            return Some(&value[..end]);
        }
        rest = &value[end..];
    }
}

/// Whether `uri`, relative to `base` (the directory segments of the playlist's own URL, e.g.
/// `["live", "demo", "720p"]`), names an object under `/live/<stream>/`.
fn stays_in_stream(uri: &str, base: &[&str]) -> bool {
    if uri.is_empty() || uri.contains("://") || uri.starts_with('/') || uri.contains('\\') {
        return false;
    }
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let mut dirs: Vec<&str> = base.to_vec();
    let mut segments = path.split('/').peekable();
    while let Some(seg) = segments.next() {
        match seg {
            "" | "." => {}
            ".." => {
                dirs.pop();
            }
            name if segments.peek().is_none() => {
                // The file name itself.
                return dirs.len() >= 2 && dirs[..2] == base[..2] && !name.is_empty();
            }
            name => dirs.push(name),
        }
    }
    false
}

fn same_or_in_stream(
    kind: &str,
    input: &[&str],
    output: &[&str],
    base: &[&str],
) -> Result<(), String> {
    if input.len() != output.len() {
        return Err(format!(
            "{} {kind} URIs in, {} out: a plugin may not add or drop media",
            input.len(),
            output.len()
        ));
    }
    for (a, b) in input.iter().zip(output) {
        if a != b && !stays_in_stream(b, base) {
            return Err(format!(
                "{kind} URI {a:?} became {b:?}, which leaves the stream"
            ));
        }
    }
    Ok(())
}

/// Validates a media playlist transform. `stream` and `rendition` locate the playlist
/// (`/live/<stream>/<rendition>/index.m3u8`), which is what relative URIs resolve against.
pub fn media_playlist(
    input: &str,
    output: &str,
    stream: &str,
    rendition: &str,
) -> Result<(), String> {
    if !output.starts_with("#EXTM3U") {
        return Err("output does not start with #EXTM3U".to_owned());
    }
    match m3u8_rs::parse_playlist_res(output.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {}
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => {
            return Err("output is a multivariant playlist, not a media playlist".to_owned())
        }
        Err(e) => return Err(format!("output does not parse as a playlist: {e}")),
    }
    let base = ["live", stream, rendition];
    let (a, b) = (media_refs(input), media_refs(output));
    same_or_in_stream("segment", &a.segments, &b.segments, &base)?;
    same_or_in_stream("part", &a.parts, &b.parts, &base)?;
    same_or_in_stream("preload hint", &a.hints, &b.hints, &base)?;
    if let Some(bad) = b
        .maps
        .iter()
        .find(|m| !a.maps.contains(m) && !stays_in_stream(m, &base))
    {
        return Err(format!("map URI {bad:?} leaves the stream"));
    }
    if a.media_sequence != b.media_sequence {
        return Err("output changes EXT-X-MEDIA-SEQUENCE".to_owned());
    }
    if a.endlist != b.endlist {
        return Err("output adds or removes EXT-X-ENDLIST".to_owned());
    }
    Ok(())
}

/// Validates a multivariant playlist transform (`/live/<stream>/master.m3u8`).
pub fn multivariant_playlist(input: &str, output: &str, stream: &str) -> Result<(), String> {
    match m3u8_rs::parse_playlist_res(output.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => {}
        Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {
            return Err("output is a media playlist, not a multivariant playlist".to_owned())
        }
        Err(e) => return Err(format!("output does not parse as a playlist: {e}")),
    }
    let variants = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (variants(input), variants(output));
    let (a, b): (Vec<&str>, Vec<&str>) = (
        a.iter().map(String::as_str).collect(),
        b.iter().map(String::as_str).collect(),
    );
    same_or_in_stream("variant", &a, &b, &["live", stream])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
        #EXT-X-MEDIA-SEQUENCE:100\n#EXT-X-MAP:URI=\"init.mp4\"\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-11-25T19:00:00.000Z\n#EXTINF:2.000,\nseg100.m4s\n\
        #EXT-X-PART:DURATION=0.500,URI=\"part400.m4s\",INDEPENDENT=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part401.m4s\"\n";

    #[test]
    fn added_tags_pass() {
        let out = MEDIA.replace(
            "#EXTINF",
            "#EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2026-11-25T19:00:00.000Z\"\n#EXTINF",
        );
        media_playlist(MEDIA, &out, "demo", "720p").unwrap();
    }

    #[test]
    fn slate_uris_inside_the_stream_pass() {
        let out = MEDIA
            .replace("seg100.m4s", "../slate/seg100.m4s")
            .replace("URI=\"init.mp4\"", "URI=\"../slate/init.mp4\"");
        media_playlist(MEDIA, &out, "demo", "720p").unwrap();
    }

    #[test]
    fn dropped_media_and_foreign_uris_fail() {
        let dropped = MEDIA.replace("seg100.m4s\n", "");
        assert!(media_playlist(MEDIA, &dropped, "demo", "720p")
            .unwrap_err()
            .contains("segment"));
        for bad in [
            "https://evil.example/seg100.m4s",
            "/live/other/720p/seg100.m4s",
            "../../other/720p/seg100.m4s",
            "../../../etc/passwd",
        ] {
            let out = MEDIA.replace("seg100.m4s", bad);
            assert!(
                media_playlist(MEDIA, &out, "demo", "720p").is_err(),
                "{bad} accepted"
            );
        }
        let hint = MEDIA.replace("part401.m4s", "//cdn/part401.m4s");
        assert!(media_playlist(MEDIA, &hint, "demo", "720p").is_err());
    }

    #[test]
    fn garbage_and_header_changes_fail() {
        assert!(media_playlist(MEDIA, "this is not a playlist", "d", "r").is_err());
        let seq = MEDIA.replace("SEQUENCE:100", "SEQUENCE:99");
        assert!(media_playlist(MEDIA, &seq, "d", "r").is_err());
        let ended = format!("{MEDIA}#EXT-X-ENDLIST\n");
        assert!(media_playlist(MEDIA, &ended, "d", "r").is_err());
    }

    #[test]
    fn uri_attribute_skips_client_attributes() {
        assert_eq!(
            uri_attribute("X-URI=\"x\",URI=\"part1.m4s\""),
            Some("part1.m4s")
        );
        assert_eq!(uri_attribute("DURATION=1"), None);
    }

    #[test]
    fn multivariant_variants_stay_in_stream() {
        let mv = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\n720p/index.m3u8\n";
        multivariant_playlist(mv, &mv.replace("720p/", "slate/"), "demo").unwrap();
        assert!(multivariant_playlist(mv, &mv.replace("720p/", "../x/"), "demo").is_err());
        assert!(multivariant_playlist(mv, "#EXTM3U\n", "demo").is_err());
    }
}
