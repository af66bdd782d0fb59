//! Playlist Delta Updates of a plugin's output.
//!
//! A chain runs on the full media playlist only; a `_HLS_skip=YES` request gets the delta
//! update of the chain's output, made here. Plugins then never see `EXT-X-SKIP`, and the
//! delta update carries exactly what the full playlist of the same version carries.
//! Weir does not advertise `CAN-SKIP-DATERANGES`, so a delta update must keep every
//! `EXT-X-DATERANGE` of the skipped segments (RFC 8216bis 4.4.5.2, 6.2.5.1): a plugin that
//! saw the delta text would drop a date range dated in the skipped segments (its start is
//! before the first listed segment), and hls.js, which does not merge date ranges without
//! `CAN-SKIP-DATERANGES`, takes that as the range being removed; an interstitial playing
//! then stops, and starts again from the middle when the range comes back.
//!
//! Written by hand over the text: m3u8-rs has no delta updates, and the transform must
//! keep every line of the plugin's output it does not skip byte for byte.

/// Playlist tags (RFC 8216bis 4.4.2, 4.4.3) that stay in a delta update's header.
const HEADER_TAGS: &[&str] = &[
    "#EXTM3U",
    "#EXT-X-VERSION",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-START",
    "#EXT-X-DEFINE",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-I-FRAMES-ONLY",
    "#EXT-X-PART-INF",
    "#EXT-X-SERVER-CONTROL",
];

fn tag_name(line: &str) -> &str {
    line.split_once(':').map_or(line, |(name, _)| name)
}

/// How many segments the packager's delta update `delta` skips (`EXT-X-SKIP`), if it is one.
pub fn skipped_segments(delta: &str) -> Option<usize> {
    delta
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-SKIP:"))
        .and_then(|attrs| {
            attrs
                .split(',')
                .find_map(|a| a.strip_prefix("SKIPPED-SEGMENTS="))
        })
        .and_then(|n| n.trim().parse().ok())
}

/// The delta update of `full` that skips its first `skipped` segments: their lines are
/// replaced by `EXT-X-SKIP`, the date ranges among them are kept, and the `EXT-X-MAP` that
/// applies to the first listed segment is written before it. `None` when `full` has no
/// more than `skipped` segments (or already has `EXT-X-SKIP`): answer with it whole.
pub fn delta_update(full: &str, skipped: usize) -> Option<String> {
    if skipped == 0 || full.lines().any(|l| l.starts_with("#EXT-X-SKIP")) {
        return None;
    }
    let lines: Vec<&str> = full.lines().collect();
    let header_end = lines
        .iter()
        .position(|l| {
            let l = l.trim_end();
            !(l.is_empty() || HEADER_TAGS.contains(&tag_name(l)))
        })
        .unwrap_or(lines.len());
    let mut out = String::with_capacity(full.len());
    for l in &lines[..header_end] {
        out.push_str(l);
        out.push('\n');
    }
    let mut ranges = Vec::new();
    let mut map: Option<&str> = None;
    let mut uris = 0;
    let mut i = header_end;
    while uris < skipped {
        let l = *lines.get(i)?;
        i += 1;
        if l.starts_with("#EXT-X-DATERANGE:") {
            ranges.push(l);
        } else if l.starts_with("#EXT-X-MAP:") {
            map = Some(l);
        } else if !l.starts_with('#') && !l.trim().is_empty() {
            uris += 1;
        }
    }
    // A segment must follow what is skipped.
    if !lines[i..]
        .iter()
        .any(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        return None;
    }
    out.push_str(&format!("#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}\n"));
    for r in ranges {
        out.push_str(r);
        out.push('\n');
    }
    // The first listed segment's own map, if it has one, comes after its discontinuity.
    let own_map = lines[i..]
        .iter()
        .take_while(|l| l.starts_with('#'))
        .any(|l| l.starts_with("#EXT-X-MAP:"));
    if let (Some(map), false) = (map, own_map) {
        out.push_str(map);
        out.push('\n');
    }
    for l in &lines[i..] {
        out.push_str(l);
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests;
