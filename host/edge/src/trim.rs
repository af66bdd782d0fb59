//! Trimming an upstream media playlist to the segments an edge holds
//! (docs/design/009-edge.md: the edge publishes only what it can serve).

/// Tags that belong to the segment that follows them (or, for `EXT-X-MAP` once segments
/// have begun, to the segments from there on).
const SEGMENT_TAGS: &[&str] = &[
    "#EXT-X-PROGRAM-DATE-TIME",
    "#EXT-X-DISCONTINUITY",
    "#EXT-X-PART",
    "#EXTINF",
    "#EXT-X-GAP",
    "#EXT-X-BITRATE",
    "#EXT-X-BYTERANGE",
    "#EXT-X-KEY",
];

fn tag(line: &str) -> &str {
    line.split_once(':').map_or(line, |(t, _)| t)
}

/// `text` without the segments before `keep_from` (a media sequence number): their lines go,
/// `EXT-X-MEDIA-SEQUENCE` becomes `keep_from`, `EXT-X-DISCONTINUITY-SEQUENCE` counts the
/// discontinuities that went, and the `EXT-X-MAP` in force at `keep_from` heads the
/// playlist. Every other line stays where it was (date ranges are placed by their dates,
/// the preload hint and rendition reports follow the last segment). A `keep_from` at or
/// before the first segment returns the text unchanged.
pub fn trim(text: &str, media_sequence: u64, keep_from: u64) -> String {
    if keep_from <= media_sequence {
        return text.to_owned();
    }
    let mut header: Vec<String> = Vec::new();
    let mut body: Vec<&str> = Vec::new();
    let mut msn = media_sequence;
    let mut in_segments = false;
    let mut dropped_discontinuities = 0u64;
    let mut map_in_force: Option<&str> = None;
    let mut header_map_at: Option<usize> = None;
    let mut dseq_at: Option<usize> = None;
    for line in text.lines() {
        let t = tag(line);
        let segment_line = !line.starts_with('#') && !line.trim().is_empty();
        if !in_segments && (SEGMENT_TAGS.contains(&t) || segment_line) {
            in_segments = true;
        }
        if !in_segments {
            match t {
                "#EXT-X-MEDIA-SEQUENCE" => {
                    header.push(format!("#EXT-X-MEDIA-SEQUENCE:{keep_from}"))
                }
                "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                    dseq_at = Some(header.len());
                    header.push(line.to_owned());
                }
                "#EXT-X-MAP" => {
                    header_map_at = Some(header.len());
                    map_in_force = Some(line);
                    header.push(line.to_owned());
                }
                _ => header.push(line.to_owned()),
            }
            continue;
        }
        let dropping = msn < keep_from;
        if segment_line {
            if !dropping {
                body.push(line);
            }
            msn = msn.saturating_add(1);
            continue;
        }
        match t {
            "#EXT-X-DISCONTINUITY" if dropping => dropped_discontinuities += 1,
            "#EXT-X-MAP" if dropping => map_in_force = Some(line),
            _ if dropping && (SEGMENT_TAGS.contains(&t) || t == "#EXT-X-MAP") => {}
            _ => body.push(line),
        }
    }
    if dropped_discontinuities > 0 {
        let base = dseq_at
            .and_then(|i| header[i].split_once(':'))
            .and_then(|(_, v)| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let line = format!(
            "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
            base.saturating_add(dropped_discontinuities)
        );
        match dseq_at {
            Some(i) => header[i] = line,
            None => {
                let at = header
                    .iter()
                    .position(|l| l.starts_with("#EXT-X-MEDIA-SEQUENCE"))
                    .map_or(header.len(), |i| i + 1);
                header.insert(at, line);
                header_map_at = header_map_at.map(|m| if m >= at { m + 1 } else { m });
            }
        }
    }
    if let Some(map) = map_in_force {
        match header_map_at {
            Some(i) => header[i] = map.to_owned(),
            None => header.push(map.to_owned()),
        }
    }
    let mut out = header.join("\n");
    for line in body {
        out.push('\n');
        out.push_str(line);
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI=\"init100.mp4\"
#EXT-X-DATERANGE:ID=\"ad\",START-DATE=\"2026-12-07T07:20:15.000Z\",PLANNED-DURATION=6
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:14.000Z
#EXTINF:2.00000,
seg10.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI=\"init105.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:20.000Z
#EXTINF:2.00000,
seg11.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:22.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"part109.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"part110.m4s\"
#EXTINF:1.00000,
seg12.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:23.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"part111.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part112.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../240p/index.m3u8\",LAST-MSN=13,LAST-PART=0
";

    #[test]
    fn nothing_to_trim_is_the_text_itself() {
        assert_eq!(trim(PLAYLIST, 10, 10), PLAYLIST);
        assert_eq!(trim(PLAYLIST, 10, 3), PLAYLIST);
    }

    #[test]
    fn trimmed_segments_move_the_sequences_and_the_map() {
        let t = trim(PLAYLIST, 10, 12);
        assert_eq!(
            t,
            "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:12
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-MAP:URI=\"init105.mp4\"
#EXT-X-DATERANGE:ID=\"ad\",START-DATE=\"2026-12-07T07:20:15.000Z\",PLANNED-DURATION=6
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:22.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"part109.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"part110.m4s\"
#EXTINF:1.00000,
seg12.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:23.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"part111.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part112.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../240p/index.m3u8\",LAST-MSN=13,LAST-PART=0
"
        );
        // The result parses as the same playlist from segment 12 on.
        let p = weir_check::playlist::parse_media(&t).unwrap();
        assert_eq!(p.media_sequence, 12);
        assert_eq!(p.discontinuity_sequence, 1);
        assert_eq!(p.segments.len(), 1);
        assert_eq!(p.open_parts.len(), 1);
    }

    #[test]
    fn an_existing_discontinuity_sequence_is_added_to() {
        let text = PLAYLIST.replace(
            "#EXT-X-MEDIA-SEQUENCE:10\n",
            "#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:4\n",
        );
        let t = trim(&text, 10, 12);
        assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:5\n"), "{t}");
        assert!(t.contains("#EXT-X-MAP:URI=\"init105.mp4\"\n"), "{t}");
        // Segment 11 is kept with its own discontinuity and map: nothing is counted or moved.
        let t = trim(&text, 10, 11);
        assert!(t.contains("#EXT-X-DISCONTINUITY-SEQUENCE:4\n"), "{t}");
        assert_eq!(t.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{t}");
        assert!(t.contains("#EXT-X-MAP:URI=\"init100.mp4\"\n"), "{t}");
        let p = weir_check::playlist::parse_media(&t).unwrap();
        assert_eq!((p.media_sequence, p.segments.len()), (11, 2));
    }

    #[test]
    fn numbers_at_the_top_of_the_range_do_not_overflow() {
        // An upstream is the network: a media sequence near u64::MAX (found by fuzzing).
        let text = PLAYLIST.replace(
            "#EXT-X-MEDIA-SEQUENCE:10",
            "#EXT-X-MEDIA-SEQUENCE:18446744073709551614",
        );
        let t = trim(&text, u64::MAX - 1, u64::MAX);
        assert!(
            t.contains("#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n"),
            "{t}"
        );
    }
}
