//! The LL-HLS playlist model: plain values, rendered with `write_to`.
//!
//! Rendering follows RFC 8216bis and Apple's LL-HLS additions. Every tag is written where
//! `m3u8-rs` (and therefore most tooling) can still parse the playlist: LL-HLS tags it does
//! not know come out as unknown tags attached to the next segment, never as errors.

use std::fmt;
use std::io::{self, Write};
use std::time::Duration;

use bytes::Bytes;

/// `EXT-X-VERSION` of media playlists: 9 for `EXT-X-SKIP` (6 would do for parts and hints).
const MEDIA_VERSION: u32 = 9;
/// `EXT-X-VERSION` of multivariant playlists.
const MULTIVARIANT_VERSION: u32 = 6;

/// One rendition's media playlist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// `EXT-X-TARGETDURATION`, whole seconds.
    pub target_duration: u64,
    /// `EXT-X-PART-INF:PART-TARGET`.
    pub part_target: Duration,
    /// `PART-HOLD-BACK`: at least three part targets.
    pub part_hold_back: Duration,
    /// `CAN-SKIP-UNTIL` (six target durations), when the window is long enough to skip.
    pub can_skip_until: Option<Duration>,
    /// `EXT-X-MEDIA-SEQUENCE`: the msn of the first segment (complete or in progress).
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`, written when nonzero.
    pub discontinuity_sequence: u64,
    /// `EXT-X-MAP` URI of the first segment listed (a segment that changes it says so).
    pub map_uri: String,
    /// Complete segments, oldest first.
    pub segments: Vec<SegmentEntry>,
    /// The segment being written: its completed parts so far.
    pub partial: Option<PartialSegment>,
    /// URI of the part being written (`EXT-X-PRELOAD-HINT:TYPE=PART`).
    pub preload_hint: Option<String>,
    /// `BYTERANGE-START` of the hint, when parts are byte ranges of their segment: where
    /// the part being written starts in the segment in progress (0 for a new segment). No
    /// `BYTERANGE-LENGTH`: the hint is open-ended, and the origin answers its range part
    /// by part until the segment ends.
    pub preload_hint_start: Option<u64>,
    pub rendition_reports: Vec<RenditionReport>,
    /// `EXT-X-DATERANGE` tags (cues), each written before the first segment that ends after
    /// its `position_ms` (after `EXT-X-SKIP` for skipped segments, before the parts in
    /// progress at the live edge).
    pub dateranges: Vec<DateRange>,
    /// `EXT-X-ENDLIST`: the stream is over. No preload hint is written then.
    pub ended: bool,
}

/// One complete segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    pub msn: u64,
    pub duration: Duration,
    /// `EXT-X-PROGRAM-DATE-TIME` in Unix milliseconds.
    pub program_date_time_ms: u64,
    pub uri: String,
    /// Its parts; empty for segments old enough that their parts are no longer listed.
    pub parts: Vec<PartEntry>,
    pub discontinuity: bool,
    /// `EXT-X-GAP`: the segment has no media (the contribution was lost).
    pub gap: bool,
    /// A new `EXT-X-MAP` URI from this segment on (written after `EXT-X-DISCONTINUITY`).
    pub map_uri: Option<String>,
}

/// One part (`EXT-X-PART`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    pub uri: String,
    pub duration: Duration,
    pub independent: bool,
    pub gap: bool,
    /// `BYTERANGE`, when the part is addressed as a range of its segment (`uri` is then
    /// the segment's).
    pub byterange: Option<ByteRange>,
}

/// A byte range of a segment: `BYTERANGE=<len>@<offset>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub len: u64,
    pub offset: u64,
}

/// The segment in progress: its date and the parts completed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialSegment {
    pub msn: u64,
    pub program_date_time_ms: u64,
    pub parts: Vec<PartEntry>,
    pub discontinuity: bool,
    /// A new `EXT-X-MAP` URI from this segment on.
    pub map_uri: Option<String>,
}

/// One `EXT-X-DATERANGE` (RFC 8216bis 4.4.5.1), as the packager renders cues (SCTE-35 per
/// 4.4.5.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRange {
    /// `ID`; two tags with the same ID describe the same range (an OUT and its IN).
    pub id: String,
    /// `START-DATE`, Unix milliseconds.
    pub start_ms: u64,
    /// `DURATION`: the actual length, once known.
    pub duration: Option<Duration>,
    /// `PLANNED-DURATION`.
    pub planned_duration: Option<Duration>,
    /// `SCTE35-CMD`: a splice_info_section that is neither an OUT nor an IN.
    pub scte35_cmd: Option<Bytes>,
    /// `SCTE35-OUT`.
    pub scte35_out: Option<Bytes>,
    /// `SCTE35-IN`.
    pub scte35_in: Option<Bytes>,
    /// Where in the playlist the tag goes, on the program-date-time timeline: `start_ms`,
    /// except for the tag that closes an OUT/IN pair, which goes where the IN happens.
    pub position_ms: u64,
}

/// `EXT-X-RENDITION-REPORT` for a sibling rendition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenditionReport {
    /// Relative to this playlist, e.g. `../720p/index.m3u8`.
    pub uri: String,
    pub last_msn: u64,
    pub last_part: u32,
}

impl MediaPlaylist {
    /// Renders the playlist. With `skip` (a `_HLS_skip=YES` request), complete segments
    /// further than `CAN-SKIP-UNTIL` from the end are replaced by `EXT-X-SKIP`; when nothing
    /// can be skipped, the full playlist is written.
    pub fn write_to(&self, w: &mut impl Write, skip: bool) -> io::Result<()> {
        writeln!(w, "#EXTM3U")?;
        writeln!(w, "#EXT-X-VERSION:{MEDIA_VERSION}")?;
        writeln!(w, "#EXT-X-TARGETDURATION:{}", self.target_duration)?;
        write!(
            w,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={}",
            secs(self.part_hold_back, 3)
        )?;
        if let Some(until) = self.can_skip_until {
            write!(w, ",CAN-SKIP-UNTIL={}", secs(until, 3))?;
        }
        writeln!(w)?;
        writeln!(
            w,
            "#EXT-X-PART-INF:PART-TARGET={}",
            secs(self.part_target, 5)
        )?;
        writeln!(w, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence)?;
        if self.discontinuity_sequence != 0 {
            writeln!(
                w,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            )?;
        }

        let skipped = if skip { self.skippable() } else { 0 };
        let mut ranges: Vec<&DateRange> = self.dateranges.iter().collect();
        ranges.sort_by_key(|r| r.position_ms);
        let mut ranges = ranges.into_iter().peekable();
        // Writes the date ranges placed before `end` (all that are left with `None`).
        let mut write_ranges = |w: &mut _, end: Option<u64>| -> io::Result<()> {
            while let Some(range) = ranges.next_if(|r| end.is_none_or(|e| r.position_ms < e)) {
                write_daterange(w, range)?;
            }
            Ok(())
        };
        let mut map_uri = &self.map_uri;
        if skipped > 0 {
            writeln!(w, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")?;
            // Without CAN-SKIP-DATERANGES, a delta update keeps the skipped segments' ranges.
            let last = &self.segments[skipped - 1];
            write_ranges(w, Some(segment_end_ms(last)))?;
            if let Some(uri) = self.segments[..skipped]
                .iter()
                .rev()
                .find_map(|s| s.map_uri.as_ref())
            {
                map_uri = uri;
            }
        }
        // After the skip, so that it applies to the first segment actually listed.
        writeln!(w, "#EXT-X-MAP:URI=\"{map_uri}\"")?;

        for segment in self.segments.iter().skip(skipped) {
            if segment.discontinuity {
                writeln!(w, "#EXT-X-DISCONTINUITY")?;
            }
            if let Some(uri) = &segment.map_uri {
                writeln!(w, "#EXT-X-MAP:URI=\"{uri}\"")?;
            }
            write_pdt(w, segment.program_date_time_ms)?;
            write_ranges(w, Some(segment_end_ms(segment)))?;
            write_parts(w, &segment.parts)?;
            if segment.gap {
                writeln!(w, "#EXT-X-GAP")?;
            }
            writeln!(w, "#EXTINF:{},", secs(segment.duration, 5))?;
            writeln!(w, "{}", segment.uri)?;
        }
        if let Some(partial) = self.partial.as_ref().filter(|p| !p.parts.is_empty()) {
            if partial.discontinuity {
                writeln!(w, "#EXT-X-DISCONTINUITY")?;
            }
            if let Some(uri) = &partial.map_uri {
                writeln!(w, "#EXT-X-MAP:URI=\"{uri}\"")?;
            }
            // hls.js (1.6.19) throws while mapping a DATERANGE dated inside or after a
            // parts-only segment that carries its own PROGRAM-DATE-TIME, and stops loading
            // the playlist. That date follows from the last complete segment's date and
            // EXTINF, so leave it out when such a range is in the playlist, unless nothing
            // precedes the segment to derive it from.
            let dated_after = self
                .dateranges
                .iter()
                .any(|r| r.start_ms >= partial.program_date_time_ms);
            if !dated_after || partial.discontinuity || self.segments.len() <= skipped {
                write_pdt(w, partial.program_date_time_ms)?;
            }
            write_ranges(w, None)?;
            write_parts(w, &partial.parts)?;
        }
        write_ranges(w, None)?;
        if self.ended {
            writeln!(w, "#EXT-X-ENDLIST")?;
        } else if let Some(hint) = &self.preload_hint {
            write!(w, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{hint}\"")?;
            if let Some(start) = self.preload_hint_start {
                write!(w, ",BYTERANGE-START={start}")?;
            }
            writeln!(w)?;
        }
        for report in &self.rendition_reports {
            writeln!(
                w,
                "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={},LAST-PART={}",
                report.uri, report.last_msn, report.last_part
            )?;
        }
        Ok(())
    }

    /// How many leading complete segments a delta update may skip: those that end at least
    /// `CAN-SKIP-UNTIL` before the end of the playlist (RFC 8216bis 6.2.5.1).
    pub fn skippable(&self) -> usize {
        let Some(until) = self.can_skip_until else {
            return 0;
        };
        let partial: Duration = self
            .partial
            .iter()
            .flat_map(|p| &p.parts)
            .map(|p| p.duration)
            .sum();
        // Walk back from the end, summing what follows each segment.
        let mut after = partial;
        let mut skippable = 0;
        for (i, segment) in self.segments.iter().enumerate().rev() {
            if after >= until {
                skippable = i + 1;
                break;
            }
            after += segment.duration;
        }
        skippable
    }

    /// The rendered playlist as a string.
    pub fn render(&self, skip: bool) -> String {
        let mut out = Vec::new();
        // Writing into a Vec cannot fail, and every piece written is UTF-8.
        let _ = self.write_to(&mut out, skip);
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn segment_end_ms(segment: &SegmentEntry) -> u64 {
    let ms = u64::try_from(segment.duration.as_millis()).unwrap_or(u64::MAX);
    segment.program_date_time_ms.saturating_add(ms)
}

fn write_daterange(w: &mut impl Write, range: &DateRange) -> io::Result<()> {
    write!(
        w,
        "#EXT-X-DATERANGE:ID=\"{}\",START-DATE=\"{}\"",
        range.id,
        ProgramDateTime(range.start_ms)
    )?;
    if let Some(d) = range.duration {
        write!(w, ",DURATION={}", secs(d, 3))?;
    }
    if let Some(d) = range.planned_duration {
        write!(w, ",PLANNED-DURATION={}", secs(d, 3))?;
    }
    for (name, section) in [
        ("SCTE35-CMD", &range.scte35_cmd),
        ("SCTE35-OUT", &range.scte35_out),
        ("SCTE35-IN", &range.scte35_in),
    ] {
        if let Some(section) = section {
            write!(w, ",{name}=0x")?;
            for byte in section.iter() {
                write!(w, "{byte:02X}")?;
            }
        }
    }
    writeln!(w)
}

fn write_pdt(w: &mut impl Write, unix_ms: u64) -> io::Result<()> {
    writeln!(w, "#EXT-X-PROGRAM-DATE-TIME:{}", ProgramDateTime(unix_ms))
}

fn write_parts(w: &mut impl Write, parts: &[PartEntry]) -> io::Result<()> {
    for part in parts {
        write!(
            w,
            "#EXT-X-PART:DURATION={},URI=\"{}\"",
            secs(part.duration, 5),
            part.uri
        )?;
        if let Some(range) = part.byterange {
            write!(w, ",BYTERANGE={}@{}", range.len, range.offset)?;
        }
        if part.independent {
            write!(w, ",INDEPENDENT=YES")?;
        }
        if part.gap {
            write!(w, ",GAP=YES")?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// The multivariant ("master") playlist: one variant per rendition.
#[derive(Clone, Debug, PartialEq)]
pub struct MultivariantPlaylist {
    pub variants: Vec<Variant>,
}

/// One `EXT-X-STREAM-INF` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    pub average_bandwidth: Option<u64>,
    /// RFC 6381 codecs, e.g. `avc1.64001f,mp4a.40.2`.
    pub codecs: String,
    pub resolution: Option<(u16, u16)>,
    pub frame_rate: Option<f64>,
}

impl MultivariantPlaylist {
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "#EXTM3U")?;
        writeln!(w, "#EXT-X-VERSION:{MULTIVARIANT_VERSION}")?;
        // Every part and segment we cut starts decodable at a keyframe.
        writeln!(w, "#EXT-X-INDEPENDENT-SEGMENTS")?;
        for v in &self.variants {
            write!(w, "#EXT-X-STREAM-INF:BANDWIDTH={}", v.bandwidth)?;
            if let Some(avg) = v.average_bandwidth {
                write!(w, ",AVERAGE-BANDWIDTH={avg}")?;
            }
            write!(w, ",CODECS=\"{}\"", v.codecs)?;
            if let Some((width, height)) = v.resolution {
                write!(w, ",RESOLUTION={width}x{height}")?;
            }
            if let Some(fps) = v.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
                write!(w, ",FRAME-RATE={fps:.3}")?;
            }
            // Weir offers no closed-caption renditions. Saying so spares Shaka 5.2's
            // caption detection (Shaka 5.2.12, `needsClosedCaptionsDetection_`), which
            // otherwise probes two more segments of the first media playlist it loads and,
            // while fewer than three are complete, picks the segment still in parts: it has
            // no URI, and the load fails ("Cannot read properties of undefined (reading
            // 'match')") for every viewer who joins in a new stream's first seconds.
            write!(w, ",CLOSED-CAPTIONS=NONE")?;
            writeln!(w)?;
            writeln!(w, "{}", v.uri)?;
        }
        Ok(())
    }

    /// The rendered playlist as a string.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// `d` in seconds with exactly `decimals` digits after the point, rounded half up.
/// `d` in seconds with `decimals` decimals (rounded half up), written straight into the
/// formatter: playlists are rendered after every part, and a `String` per number was most of
/// their allocations.
fn secs(d: Duration, decimals: u32) -> Secs {
    Secs(d, decimals.min(9))
}

struct Secs(Duration, u32);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self(d, decimals) = *self;
        let unit = 10u128.pow(9 - decimals);
        let scaled = (d.as_nanos() + unit / 2) / unit;
        let one = 10u128.pow(decimals);
        // u64 formatting is much cheaper than u128's; any playlist duration fits. The
        // zero-padded fraction is written by hand: `{:0width$}` takes the formatter's slow
        // padding path, and playlists are rendered twice per part.
        match (u64::try_from(scaled / one), u64::try_from(scaled % one)) {
            (Ok(whole), Ok(_)) if decimals == 0 => write!(f, "{whole}.0"),
            (Ok(whole), Ok(mut frac)) => {
                let mut digits = [b'.'; 10];
                for d in digits[1..=decimals as usize].iter_mut().rev() {
                    *d = b'0' + (frac % 10) as u8;
                    frac /= 10;
                }
                write!(f, "{whole}")?;
                f.write_str(std::str::from_utf8(&digits[..=decimals as usize]).unwrap_or("."))
            }
            _ => write!(
                f,
                "{}.{:0width$}",
                scaled / one,
                scaled % one,
                width = decimals as usize
            ),
        }
    }
}

/// Formats Unix milliseconds as the ISO 8601 date `EXT-X-PROGRAM-DATE-TIME` carries,
/// in UTC with milliseconds: `2026-11-25T16:00:00.000Z`.
pub fn format_program_date_time(unix_ms: u64) -> String {
    ProgramDateTime(unix_ms).to_string()
}

/// [`format_program_date_time`] without the `String`.
struct ProgramDateTime(u64);

impl fmt::Display for ProgramDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unix_ms = self.0;
        let days = unix_ms / 86_400_000;
        let ms_of_day = unix_ms % 86_400_000;
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second, ms) = (
            ms_of_day / 3_600_000,
            ms_of_day / 60_000 % 60,
            ms_of_day / 1000 % 60,
            ms_of_day % 1000,
        );
        if year > 9999 {
            return write!(
                f,
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z"
            );
        }
        // Digits by hand, one write: the padded `{:02}`s took the formatter's slow path.
        let mut text = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, len: usize, mut value: u64| {
            for d in text[at..at + len].iter_mut().rev() {
                *d = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, month);
        put(8, 2, day);
        put(11, 2, hour);
        put(14, 2, minute);
        put(17, 2, second);
        put(20, 3, ms);
        f.write_str(std::str::from_utf8(&text).unwrap_or_default())
    }
}

/// Howard Hinnant's `civil_from_days` for days since 1970-01-01 (non-negative only).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_dates() {
        assert_eq!(format_program_date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_program_date_time(1_795_622_400_000),
            "2026-11-25T16:00:00.000Z"
        );
        // Leap day, and the last millisecond of a leap year.
        assert_eq!(
            format_program_date_time(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(
            format_program_date_time(1_735_689_599_999),
            "2024-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn hand_formatting_matches_the_formatter() {
        // What secs and format_program_date_time wrote with format! before they wrote
        // digits by hand.
        let secs_before = |d: Duration, decimals: u32| {
            let unit = 10u128.pow(9 - decimals.min(9));
            let scaled = (d.as_nanos() + unit / 2) / unit;
            let one = 10u128.pow(decimals.min(9));
            format!(
                "{}.{:0width$}",
                scaled / one,
                scaled % one,
                width = decimals as usize
            )
        };
        let pdt_before = |unix_ms: u64| {
            let (year, month, day) = civil_from_days(unix_ms / 86_400_000);
            let ms_of_day = unix_ms % 86_400_000;
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                ms_of_day / 3_600_000,
                ms_of_day / 60_000 % 60,
                ms_of_day / 1000 % 60,
                ms_of_day % 1000
            )
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nanos = match i % 4 {
                0 => x % 10_000_000_000,
                1 => x % 1_000_000,
                2 => x,
                _ => (x % 100) * 1_000_000,
            };
            let d = Duration::from_nanos(nanos);
            for decimals in 0..=9 {
                assert_eq!(secs(d, decimals).to_string(), secs_before(d, decimals));
            }
            for ms in [
                x % 4_102_444_800_000,
                x % 400_000_000_000_000,
                x % 86_400_000,
            ] {
                assert_eq!(format_program_date_time(ms), pdt_before(ms));
            }
        }
        assert_eq!(
            secs(Duration::MAX, 5).to_string(),
            secs_before(Duration::MAX, 5)
        );
    }

    #[test]
    fn formats_seconds() {
        assert_eq!(secs(Duration::from_millis(500), 5).to_string(), "0.50000");
        assert_eq!(secs(Duration::from_millis(1500), 3).to_string(), "1.500");
        assert_eq!(
            secs(Duration::from_nanos(2_033_333_333), 5).to_string(),
            "2.03333"
        );
        assert_eq!(
            secs(Duration::from_nanos(466_666_667), 5).to_string(),
            "0.46667"
        );
        assert_eq!(secs(Duration::from_secs(12), 3).to_string(), "12.000");
    }

    fn segment(msn: u64, parts: usize) -> SegmentEntry {
        SegmentEntry {
            msn,
            duration: Duration::from_secs(2),
            program_date_time_ms: msn * 2000,
            uri: format!("seg{msn}.m4s"),
            parts: (0..parts)
                .map(|i| PartEntry {
                    uri: format!("part{}.m4s", msn * 4 + i as u64),
                    duration: Duration::from_millis(500),
                    independent: i == 0,
                    gap: false,
                    byterange: None,
                })
                .collect(),
            discontinuity: false,
            gap: false,
            map_uri: None,
        }
    }

    fn playlist(segments: u64) -> MediaPlaylist {
        MediaPlaylist {
            target_duration: 2,
            part_target: Duration::from_millis(500),
            part_hold_back: Duration::from_millis(1500),
            can_skip_until: Some(Duration::from_secs(12)),
            media_sequence: 0,
            discontinuity_sequence: 0,
            map_uri: "init.mp4".into(),
            segments: (0..segments).map(|m| segment(m, 0)).collect(),
            partial: None,
            preload_hint: None,
            preload_hint_start: None,
            rendition_reports: Vec::new(),
            dateranges: Vec::new(),
            ended: false,
        }
    }

    #[test]
    fn skips_only_beyond_the_boundary() {
        // 6 × 2 s: the first segment ends 10 s before the end, under 12 s.
        assert_eq!(playlist(6).skippable(), 0);
        // 7 × 2 s: segment 0 ends exactly 12 s before the end.
        assert_eq!(playlist(7).skippable(), 1);
        assert_eq!(playlist(15).skippable(), 9);
        let mut p = playlist(15);
        p.can_skip_until = None;
        assert_eq!(p.skippable(), 0);
        assert!(!p.render(true).contains("EXT-X-SKIP"));
    }

    #[test]
    fn partial_without_parts_writes_no_dangling_date() {
        let mut p = playlist(1);
        p.partial = Some(PartialSegment {
            msn: 1,
            program_date_time_ms: 2000,
            parts: Vec::new(),
            discontinuity: false,
            map_uri: None,
        });
        p.preload_hint = Some("part4.m4s".into());
        let text = p.render(false);
        assert_eq!(text.matches("PROGRAM-DATE-TIME").count(), 1, "{text}");
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part4.m4s\"\n"));
    }
}
