//! A small, lenient parser for the parts of HLS playlists the checker reads: media playlists
//! with LL-HLS tags (parts, hints, skips, rendition reports) and multivariant playlists.
//! It never fails on an unknown tag; it fails only where a value it needs cannot be read.

use std::collections::BTreeMap;

/// One complete Media Segment (it has its `EXTINF` and URI).
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub msn: u64,
    pub uri: String,
    /// `EXTINF`, seconds.
    pub duration: f64,
    /// `EXT-X-PROGRAM-DATE-TIME`, Unix milliseconds.
    pub pdt_ms: Option<f64>,
    pub discontinuity: bool,
    pub gap: bool,
    /// The `EXT-X-PART`s listed before it (possibly none, once they age out).
    pub parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub uri: String,
    pub duration: f64,
    pub independent: bool,
    pub gap: bool,
    pub byterange: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    /// `PART` or `MAP`.
    pub kind: String,
    pub uri: String,
    pub byterange_start: Option<u64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RenditionReport {
    pub uri: String,
    pub last_msn: Option<u64>,
    pub last_part: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerControl {
    pub can_block_reload: bool,
    pub part_hold_back: Option<f64>,
    pub hold_back: Option<f64>,
    pub can_skip_until: Option<f64>,
}

/// A media playlist as served (a delta update keeps its `EXT-X-SKIP` count; see
/// [`MediaPlaylist::skipped`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPlaylist {
    pub target_duration: Option<u64>,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub part_target: Option<f64>,
    pub server_control: ServerControl,
    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`, in a delta update.
    pub skipped: Option<u64>,
    /// The last `EXT-X-MAP` URI.
    pub map_uri: Option<String>,
    pub segments: Vec<Segment>,
    /// Parts listed after the last complete segment: the segment in progress.
    pub open_parts: Vec<Part>,
    pub hints: Vec<Hint>,
    pub reports: Vec<RenditionReport>,
    pub endlist: bool,
}

impl MediaPlaylist {
    /// The Media Sequence Number of the segment in progress (after the last complete one).
    pub fn open_msn(&self) -> u64 {
        self.media_sequence
            .saturating_add(self.skipped.unwrap_or(0))
            .saturating_add(self.segments.len() as u64)
    }

    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.first()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(i)
    }

    /// The last part in the playlist as (msn, part index), the position a rendition report
    /// names; `None` when there are no parts at the edge.
    pub fn last_part(&self) -> Option<(u64, u64)> {
        if !self.open_parts.is_empty() {
            return Some((self.open_msn(), self.open_parts.len() as u64 - 1));
        }
        let last = self.segments.last()?;
        if last.parts.is_empty() {
            return None;
        }
        Some((last.msn, last.parts.len() as u64 - 1))
    }

    /// Whether this playlist satisfies a blocking request for part `part` of segment `msn`
    /// (RFC 8216bis 6.2.5.2: a part index past the segment's last part means part 0 of the
    /// next segment).
    pub fn has_part(&self, msn: u64, part: u64) -> bool {
        let first = self
            .media_sequence
            .saturating_add(self.skipped.unwrap_or(0));
        if msn < first {
            return true;
        }
        if let Some(seg) = self.segment(msn) {
            if seg.parts.is_empty() || part < seg.parts.len() as u64 {
                return true;
            }
            return msn != u64::MAX && self.has_part(msn + 1, 0);
        }
        msn == self.open_msn() && part < self.open_parts.len() as u64
    }

    /// Whether this playlist has segment `msn` complete (a blocking request without
    /// `_HLS_part`).
    pub fn has_segment(&self, msn: u64) -> bool {
        msn < self.open_msn()
    }
}

/// One `EXT-X-STREAM-INF` (its attributes as written) or `EXT-X-MEDIA` with a URI.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub uri: String,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Multivariant {
    pub variants: Vec<Variant>,
    /// `EXT-X-MEDIA` renditions that have their own playlist (a URI).
    pub media: Vec<Variant>,
}

/// Whether the text is a multivariant playlist rather than a media playlist.
pub fn is_multivariant(text: &str) -> bool {
    text.lines()
        .any(|l| l.starts_with("#EXT-X-STREAM-INF") || l.starts_with("#EXT-X-MEDIA:"))
}

/// Splits an attribute list (`A=1,B="x,y",C=NO`) into name → value, quotes removed.
pub fn attributes(list: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().to_string();
        rest = &rest[eq + 1..];
        let value;
        if let Some(stripped) = rest.strip_prefix('"') {
            let end = stripped.find('"').unwrap_or(stripped.len());
            value = stripped[..end].to_string();
            rest = stripped.get(end + 1..).unwrap_or("");
            rest = rest.trim_start_matches(|c: char| c != ',');
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        rest = rest.strip_prefix(',').unwrap_or(rest);
        out.insert(name, value);
    }
    out
}

fn num<T: std::str::FromStr>(tag: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{tag}: cannot read the number {v:?}"))
}

/// Parses a media playlist. Errors say which tag could not be read.
pub fn parse_media(text: &str) -> Result<MediaPlaylist, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("the first line is not #EXTM3U".into());
    }
    let mut p = MediaPlaylist::default();
    let mut parts: Vec<Part> = Vec::new();
    let mut duration: Option<f64> = None;
    let mut pdt: Option<f64> = None;
    let mut discontinuity = false;
    let mut gap = false;
    let mut msn: Option<u64> = None;
    for line in lines {
        if !line.starts_with('#') {
            let Some(d) = duration.take() else {
                return Err(format!("segment URI {line:?} without #EXTINF"));
            };
            let m = *msn.get_or_insert(p.media_sequence.saturating_add(p.skipped.unwrap_or(0)));
            p.segments.push(Segment {
                msn: m,
                uri: line.to_string(),
                duration: d,
                pdt_ms: pdt.take(),
                discontinuity: std::mem::take(&mut discontinuity),
                gap: std::mem::take(&mut gap),
                parts: std::mem::take(&mut parts),
            });
            msn = Some(m.saturating_add(1));
            continue;
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        match tag {
            "#EXT-X-TARGETDURATION" => p.target_duration = Some(num(tag, value)?),
            "#EXT-X-MEDIA-SEQUENCE" => p.media_sequence = num(tag, value)?,
            "#EXT-X-DISCONTINUITY-SEQUENCE" => p.discontinuity_sequence = num(tag, value)?,
            "#EXT-X-PART-INF" => {
                let a = attributes(value);
                let t = a
                    .get("PART-TARGET")
                    .ok_or("EXT-X-PART-INF without PART-TARGET")?;
                p.part_target = Some(num(tag, t)?);
            }
            "#EXT-X-SERVER-CONTROL" => {
                let a = attributes(value);
                let f = |k: &str| a.get(k).map(|v| num::<f64>(k, v)).transpose();
                p.server_control = ServerControl {
                    can_block_reload: a.get("CAN-BLOCK-RELOAD").is_some_and(|v| v == "YES"),
                    part_hold_back: f("PART-HOLD-BACK")?,
                    hold_back: f("HOLD-BACK")?,
                    can_skip_until: f("CAN-SKIP-UNTIL")?,
                };
            }
            "#EXT-X-SKIP" => {
                let a = attributes(value);
                let n = a
                    .get("SKIPPED-SEGMENTS")
                    .ok_or("EXT-X-SKIP without SKIPPED-SEGMENTS")?;
                p.skipped = Some(num(tag, n)?);
            }
            "#EXT-X-MAP" => p.map_uri = attributes(value).get("URI").cloned(),
            "#EXTINF" => {
                let d = value.split(',').next().unwrap_or("");
                duration = Some(num(tag, d)?);
            }
            "#EXT-X-PROGRAM-DATE-TIME" => {
                pdt = Some(parse_date_ms(value).ok_or_else(|| format!("{tag}: {value:?}"))?);
            }
            "#EXT-X-DISCONTINUITY" => discontinuity = true,
            "#EXT-X-GAP" => gap = true,
            "#EXT-X-ENDLIST" => p.endlist = true,
            "#EXT-X-PART" => {
                let a = attributes(value);
                let uri = a.get("URI").ok_or("EXT-X-PART without URI")?.clone();
                let d = a.get("DURATION").ok_or("EXT-X-PART without DURATION")?;
                parts.push(Part {
                    uri,
                    duration: num(tag, d)?,
                    independent: a.get("INDEPENDENT").is_some_and(|v| v == "YES"),
                    gap: a.get("GAP").is_some_and(|v| v == "YES"),
                    byterange: a.get("BYTERANGE").cloned(),
                });
            }
            "#EXT-X-PRELOAD-HINT" => {
                let a = attributes(value);
                p.hints.push(Hint {
                    kind: a.get("TYPE").cloned().unwrap_or_default(),
                    uri: a
                        .get("URI")
                        .ok_or("EXT-X-PRELOAD-HINT without URI")?
                        .clone(),
                    byterange_start: a.get("BYTERANGE-START").map(|v| num(tag, v)).transpose()?,
                });
            }
            "#EXT-X-RENDITION-REPORT" => {
                let a = attributes(value);
                p.reports.push(RenditionReport {
                    uri: a.get("URI").cloned().unwrap_or_default(),
                    last_msn: a.get("LAST-MSN").map(|v| num(tag, v)).transpose()?,
                    last_part: a.get("LAST-PART").map(|v| num(tag, v)).transpose()?,
                });
            }
            _ => {}
        }
    }
    p.open_parts = parts;
    Ok(p)
}

/// Parses a multivariant playlist.
pub fn parse_multivariant(text: &str) -> Result<Multivariant, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some("#EXTM3U") {
        return Err("the first line is not #EXTM3U".into());
    }
    let mut m = Multivariant::default();
    let mut pending: Option<BTreeMap<String, String>> = None;
    for line in lines {
        if let Some(v) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            pending = Some(attributes(v));
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA:") {
            let a = attributes(v);
            if let Some(uri) = a.get("URI") {
                m.media.push(Variant {
                    uri: uri.clone(),
                    attributes: a.clone(),
                });
            }
        } else if !line.starts_with('#') {
            if let Some(attributes) = pending.take() {
                m.variants.push(Variant {
                    uri: line.to_string(),
                    attributes,
                });
            }
        }
    }
    Ok(m)
}

/// The PROGRAM-DATE-TIME parser lives in weir-media, shared with WHEP's feed.
pub use weir_media::date::parse_date_ms;

#[cfg(test)]
mod tests {
    use super::*;

    const WEIR: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:100
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T04:04:36.280Z
#EXT-X-PART:DURATION=0.50000,URI=\"p1.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"p2.m4s\"
#EXTINF:1.00000,
seg100.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T04:04:37.280Z
#EXT-X-PART:DURATION=0.50000,URI=\"p3.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p4.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=101,LAST-PART=0
";

    #[test]
    fn reads_an_ll_hls_media_playlist() {
        let p = parse_media(WEIR).unwrap();
        assert_eq!(p.target_duration, Some(2));
        assert_eq!(p.part_target, Some(0.5));
        assert_eq!(p.server_control.part_hold_back, Some(1.5));
        assert_eq!(p.server_control.can_skip_until, Some(12.0));
        assert!(p.server_control.can_block_reload);
        assert_eq!(p.segments.len(), 1);
        assert_eq!(p.segments[0].msn, 100);
        assert_eq!(p.segments[0].parts.len(), 2);
        assert!(p.segments[0].parts[0].independent);
        assert_eq!(p.open_msn(), 101);
        assert_eq!(p.open_parts.len(), 1);
        assert_eq!(p.last_part(), Some((101, 0)));
        assert_eq!(p.hints[0].uri, "p4.m4s");
        assert_eq!(p.reports[0].last_msn, Some(101));
        assert_eq!(
            p.segments[0].pdt_ms,
            Some(1_796_616_276_280.0),
            "2026-12-07T04:04:36.280Z"
        );
    }

    #[test]
    fn a_part_past_the_segment_end_means_the_next_segments_first_part() {
        let p = parse_media(WEIR).unwrap();
        assert!(p.has_part(100, 1));
        assert!(p.has_part(100, 2), "past the end: (101, 0) is listed");
        assert!(p.has_part(101, 0));
        assert!(!p.has_part(101, 1));
        assert!(!p.has_part(102, 0));
        assert!(p.has_part(5, 0), "older than the window");
        let mut q = p.clone();
        q.open_parts.clear();
        assert!(!q.has_part(100, 2), "(101, 0) not there yet");
    }

    #[test]
    fn a_delta_update_numbers_segments_after_the_skip() {
        let p = parse_media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXTINF:2.0,\na.m4s\n",
        )
        .unwrap();
        assert_eq!(p.segments[0].msn, 13);
        assert_eq!(p.open_msn(), 14);
    }

    #[test]
    fn attribute_lists_keep_commas_inside_quotes() {
        let a = attributes("BANDWIDTH=1,CODECS=\"avc1.4d401e,mp4a.40.2\",RESOLUTION=640x360");
        assert_eq!(a["CODECS"], "avc1.4d401e,mp4a.40.2");
        assert_eq!(a["RESOLUTION"], "640x360");
        assert_eq!(a["BANDWIDTH"], "1");
    }

    #[test]
    fn dates_with_offsets() {
        let z = parse_date_ms("2010-02-19T06:54:23.031Z").unwrap();
        let plus = parse_date_ms("2010-02-19T14:54:23.031+08:00").unwrap();
        assert!((z - plus).abs() < 1e-6);
        assert_eq!(parse_date_ms("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_date_ms("garbage"), None);
    }

    #[test]
    fn multivariant_variants_and_media() {
        let m = parse_multivariant(
            "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=5,CODECS=\"avc1\"\nv.m3u8\n",
        )
        .unwrap();
        assert_eq!(m.variants[0].uri, "v.m3u8");
        assert_eq!(m.media[0].uri, "audio.m3u8");
        assert!(is_multivariant(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx\n"
        ));
    }
}
