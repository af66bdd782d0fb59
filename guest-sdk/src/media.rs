//! Media playlists: segments, parts and tags over the original text.
//!
//! [`MediaPlaylist`] keeps every line of the input with its terminator. It reads the
//! structure (media sequence, segments and their dates, parts, maps, discontinuities, the
//! preload hint) from those lines, and an edit rewrites or inserts only the lines it is
//! about. So `MediaPlaylist::parse(text)?.render() == text` for any playlist it accepts,
//! unknown tags and comments included, and an edited playlist differs from its input only
//! where it was edited.
//!
//! Why not m3u8-rs: it parses into its own structs and writes them back in its own format
//! (attribute order, number formatting, where unknown tags go), so a plugin that changes
//! nothing would still change bytes. Blackout must hand viewers outside the blackout the
//! exact input, and the host's last-good policy re-applies a plugin's edits line by line.
//! It also does not model every LL-HLS tag weir writes (`EXT-X-PRELOAD-HINT`,
//! `EXT-X-RENDITION-REPORT`, `EXT-X-SKIP` have no typed place there).

use crate::attr::{self, AttributeList};
use crate::daterange::DateRangeTag;
use crate::error::{Error, Result};
use crate::lines::{self, Eol, Line, Tag};
use crate::time;

use std::sync::Arc;

/// Tags that belong to the segment that follows them. The first one ends the header.
fn is_segment_tag(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::ExtInf
            | Tag::ByteRange
            | Tag::Discontinuity
            | Tag::Key
            | Tag::Map
            | Tag::ProgramDateTime
            | Tag::Gap
            | Tag::Bitrate
            | Tag::Part
            | Tag::DateRange
            | Tag::CueOut
            | Tag::CueOutCont
            | Tag::CueIn
    )
}

/// Tags written after the last segment: the playlist's closing lines.
fn is_trailer_tag(tag: Tag) -> bool {
    matches!(tag, Tag::PreloadHint | Tag::RenditionReport | Tag::EndList)
}

/// Tags that show a segment has begun (after the last URI: the segment in progress).
fn starts_segment(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::Part
            | Tag::ProgramDateTime
            | Tag::Discontinuity
            | Tag::Map
            | Tag::Gap
            | Tag::ExtInf
            | Tag::ByteRange
            | Tag::Key
            | Tag::Bitrate
    )
}

/// Lines that are a segment's media: tags an author adds go before the first of these.
fn is_media_tag(tag: Tag) -> bool {
    matches!(tag, Tag::Part | Tag::Gap | Tag::ExtInf | Tag::ByteRange)
}

/// Tags whose meaning the model tracks: authors change them through the model's methods,
/// not by inserting raw tags.
fn is_structural_tag(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::ExtInf
            | Tag::ByteRange
            | Tag::Discontinuity
            | Tag::Map
            | Tag::ProgramDateTime
            | Tag::Gap
            | Tag::Part
            | Tag::MediaSequence
            | Tag::DiscontinuitySequence
            | Tag::Skip
            | Tag::PreloadHint
            | Tag::ExtM3u
    )
}

/// Multivariant-only tags: their presence means the text is not a media playlist.
pub(crate) fn is_multivariant_tag(tag: Tag) -> bool {
    matches!(
        tag,
        Tag::StreamInf | Tag::IFrameStreamInf | Tag::Media | Tag::SessionData | Tag::SessionKey
    )
}

/// A media playlist (full or delta update), editable without disturbing what it does not
/// touch.
///
/// ```
/// use weir_guest::MediaPlaylist;
///
/// let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
///             #EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n#EXTINF:2.00000,\nseg7.m4s\n";
/// let mut playlist = MediaPlaylist::parse(text)?;
/// assert_eq!(playlist.render(), text); // byte for byte
///
/// let segment = &playlist.segments()[0];
/// assert_eq!((segment.msn(), segment.start_ms(), segment.duration_ms()), (7, Some(1_795_622_400_000), 2000));
///
/// playlist.segments_mut()[0].set_uri("../slate/seg7.m4s")?;
/// assert!(playlist.render().ends_with("#EXTINF:2.00000,\n../slate/seg7.m4s\n"));
/// # Ok::<(), weir_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    header: Vec<Line>,
    segments: Vec<Segment>,
    trailer: Vec<Line>,
    eol: Eol,
    media_sequence: u64,
    discontinuity_sequence: u64,
    target_duration: u64,
    part_target_ms: Option<u64>,
    skipped: u64,
}

/// One segment: a complete one (it has a URI), or the segment in progress at the live
/// edge (its parts so far, no URI yet), which is always the last.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    lines: Vec<Line>,
    complete: bool,
    duration: f64,
    msn: u64,
    start_ms: Option<u64>,
    /// Its own `EXT-X-PROGRAM-DATE-TIME`, kept from parsing (lines with that tag are not
    /// added by edits, only removed by [`MediaPlaylist::omit_partial_date_for_hlsjs`]).
    date: Option<u64>,
    discontinuity_sequence: u64,
    map_uri: Option<Arc<str>>,
}

/// One `EXT-X-PART`, as read when [`Segment::parts`] was called.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    /// Its position in the segment (0-based), as [`Segment::set_part_uri`] takes it.
    pub index: usize,
    pub uri: String,
    /// `DURATION`, seconds.
    pub duration: f64,
    pub independent: bool,
    pub gap: bool,
    /// When it starts: its segment's date plus the parts before it.
    pub start_ms: Option<u64>,
    pub attributes: AttributeList,
}

impl Part {
    pub fn duration_ms(&self) -> u64 {
        time::secs_to_ms(self.duration)
    }

    pub fn end_ms(&self) -> Option<u64> {
        self.start_ms.map(|s| s.saturating_add(self.duration_ms()))
    }
}

/// One `EXT-X-PRELOAD-HINT`.
#[derive(Clone, Debug, PartialEq)]
pub struct PreloadHint {
    /// Its position among the playlist's hints, as [`MediaPlaylist::set_preload_hint_uri`]
    /// takes it.
    pub index: usize,
    /// `PART` or `MAP`.
    pub kind: String,
    pub uri: String,
    pub attributes: AttributeList,
}

impl MediaPlaylist {
    /// Parses a media playlist. Errors name the line: a text that does not start with
    /// `#EXTM3U`, a multivariant playlist, or an `EXTINF`, `EXT-X-PART` or
    /// `EXT-X-PROGRAM-DATE-TIME` whose value cannot be read (the model computes with those,
    /// so it refuses to guess).
    pub fn parse(text: &str) -> Result<Self> {
        Self::parse_lines(lines::SplitLines::new(text))
    }

    /// [`Self::parse`] for a text the caller has no further use for: the playlist keeps it
    /// instead of a copy. [`Self::render`] gives it back, byte for byte, while nothing is
    /// edited.
    ///
    /// ```
    /// use weir_guest::MediaPlaylist;
    ///
    /// let text = String::from("#EXTM3U\n#EXTINF:2.0,\nseg1.m4s\n");
    /// let playlist = MediaPlaylist::parse_owned(text.clone())?;
    /// assert_eq!(playlist.render(), text);
    /// # Ok::<(), weir_guest::Error>(())
    /// ```
    pub fn parse_owned(text: String) -> Result<Self> {
        Self::parse_lines(lines::SplitLines::owned(text))
    }

    fn parse_lines(mut all: lines::SplitLines) -> Result<Self> {
        // One pass over the lines, each moved straight into the header, a segment or the
        // trailer. Errors keep their precedence: the first line, then a multivariant tag
        // anywhere, then the segments in order, then the header's values.
        let first = all.next();
        let Some(first) = first.filter(|l| lines::trim_end(l.text()) == "#EXTM3U") else {
            return Err(Error::at_line(
                1,
                "not a playlist: the first line must be #EXTM3U",
            ));
        };
        let eol = lines::dominant_eol(std::slice::from_ref(&first));
        let mut playlist = MediaPlaylist {
            header: Vec::with_capacity(16),
            // One per URI line, and the segment in progress: never grown.
            segments: Vec::with_capacity(all.max_uris() + 1),
            trailer: Vec::new(),
            eol,
            media_sequence: 0,
            discontinuity_sequence: 0,
            target_duration: 0,
            part_target_ms: None,
            skipped: 0,
        };
        playlist.header.push(first);
        let mut in_header = true;
        // The lines since the last URI, and the number of the first of them.
        let mut pending: Vec<Line> = Vec::new();
        let mut pending_from = 0;
        let mut failed: Option<Error> = None;
        for (i, line) in all.enumerate() {
            let n = i + 2;
            let tag = line.tag_id();
            if tag.is_some_and(is_multivariant_tag) {
                return Err(Error::at_line(
                    n,
                    "a multivariant playlist, not a media playlist",
                ));
            }
            if in_header {
                if !(line.is_uri() || tag.is_some_and(|t| is_segment_tag(t) || is_trailer_tag(t))) {
                    playlist.header.push(line);
                    continue;
                }
                in_header = false;
            }
            if failed.is_some() {
                // Only looking for a multivariant tag, which takes precedence.
                continue;
            }
            if pending.is_empty() {
                pending_from = n;
            }
            let uri = line.is_uri();
            pending.push(line);
            if uri {
                match Segment::from_lines(std::mem::take(&mut pending), pending_from, true) {
                    Ok(segment) => playlist.segments.push(segment),
                    Err(e) => failed = Some(e),
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        // After the last URI: the segment in progress (if its lines start one), then the
        // closing tags.
        let trailer_at = pending
            .iter()
            .position(|l| l.tag_id().is_some_and(is_trailer_tag))
            .unwrap_or(pending.len());
        let tail = pending.split_off(trailer_at);
        if pending
            .iter()
            .any(|l| l.tag_id().is_some_and(starts_segment))
        {
            playlist
                .segments
                .push(Segment::from_lines(pending, pending_from, false)?);
        } else {
            playlist.trailer = pending;
        }
        playlist.trailer.extend(tail);

        for (n, line) in playlist.header.iter().enumerate() {
            let bad = |what: &str| Error::at_line(n + 1, format!("cannot read {what}"));
            match line.tag_id() {
                Some(Tag::MediaSequence) => {
                    playlist.media_sequence = line
                        .value()
                        .trim()
                        .parse()
                        .map_err(|_| bad("EXT-X-MEDIA-SEQUENCE"))?;
                }
                Some(Tag::DiscontinuitySequence) => {
                    playlist.discontinuity_sequence = line
                        .value()
                        .trim()
                        .parse()
                        .map_err(|_| bad("EXT-X-DISCONTINUITY-SEQUENCE"))?;
                }
                Some(Tag::TargetDuration) => {
                    playlist.target_duration = line
                        .value()
                        .trim()
                        .parse()
                        .map_err(|_| bad("EXT-X-TARGETDURATION"))?;
                }
                Some(Tag::PartInf) => {
                    playlist.part_target_ms = attr::find(line.value(), "PART-TARGET")
                        .and_then(attr::parse_f64)
                        .map(time::secs_to_ms);
                }
                Some(Tag::Skip) => {
                    playlist.skipped = attr::find(line.value(), "SKIPPED-SEGMENTS")
                        .and_then(|v| v.trim().parse().ok())
                        .ok_or_else(|| bad("EXT-X-SKIP:SKIPPED-SEGMENTS"))?;
                }
                _ => {}
            }
        }
        playlist.refresh();
        Ok(playlist)
    }

    /// The playlist as text: the input, byte for byte, plus the edits made.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let all = self
            .header
            .iter()
            .chain(self.segments.iter().flat_map(|s| s.lines.iter()))
            .chain(self.trailer.iter());
        lines::render(all, self.eol, &mut out);
        out
    }

    /// `EXT-X-MEDIA-SEQUENCE` (0 when absent).
    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE` (0 when absent).
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// `EXT-X-TARGETDURATION`, whole seconds.
    pub fn target_duration(&self) -> u64 {
        self.target_duration
    }

    /// `EXT-X-TARGETDURATION` in milliseconds.
    pub fn target_duration_ms(&self) -> u64 {
        self.target_duration.saturating_mul(1000)
    }

    /// `EXT-X-PART-INF:PART-TARGET` in milliseconds, for LL-HLS playlists.
    pub fn part_target_ms(&self) -> Option<u64> {
        self.part_target_ms
    }

    /// `EXT-X-SKIP:SKIPPED-SEGMENTS`: in a delta update, how many segments before the first
    /// listed one are left out. The first listed segment's MSN is
    /// `media_sequence() + skipped_segments()`.
    pub fn skipped_segments(&self) -> u64 {
        self.skipped
    }

    /// Whether this is a delta update (`EXT-X-SKIP`).
    pub fn is_delta_update(&self) -> bool {
        self.header.iter().any(|l| l.is_tag(Tag::Skip))
    }

    /// Whether the playlist has `EXT-X-ENDLIST`.
    pub fn has_endlist(&self) -> bool {
        self.trailer.iter().any(|l| l.is_tag(Tag::EndList))
    }

    /// The listed segments, oldest first; the segment in progress (if any) is last.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segments, for edits that stay inside one segment (URIs, GAP, added tags).
    /// Discontinuities and maps change through [`Self::add_discontinuity`] and
    /// [`Self::set_map`], because they affect the segments after them.
    pub fn segments_mut(&mut self) -> &mut [Segment] {
        &mut self.segments
    }

    /// The segment in progress at the live edge (parts, no URI yet).
    pub fn partial(&self) -> Option<&Segment> {
        self.segments.last().filter(|s| !s.complete)
    }

    /// The date of the first listed segment.
    pub fn start_ms(&self) -> Option<u64> {
        self.segments.first().and_then(Segment::start_ms)
    }

    /// The date where the listed media ends (the last segment's or part's end).
    pub fn end_ms(&self) -> Option<u64> {
        self.segments.last().and_then(Segment::end_ms)
    }

    /// When the next part (the one the preload hint names) starts.
    pub fn next_part_start_ms(&self) -> Option<u64> {
        self.end_ms()
    }

    /// The index of the segment whose time range holds `ms`: `[start, end)` for complete
    /// segments, `[start, ∞)` for the segment in progress. `None` before the first segment,
    /// after the last complete one when nothing is in progress, or without dates.
    pub fn segment_index_at(&self, ms: u64) -> Option<usize> {
        self.segments
            .iter()
            .position(|s| match (s.start_ms, s.end_ms()) {
                (Some(start), _) if !s.complete => ms >= start,
                (Some(start), Some(end)) => ms >= start && ms < end,
                _ => false,
            })
    }

    /// Inserts a tag where the date `ms` falls (see [`Self::segment_index_at`]), with
    /// [`Segment::push_tag`]: dates before the first segment go to the first segment, dates
    /// after the listed media go after the last segment, before the closing tags. This is
    /// where weir's packager writes `EXT-X-DATERANGE` tags.
    pub fn insert_tag_at(&mut self, ms: u64, tag: &str) -> Result<()> {
        check_added_tag(tag)?;
        let index = match self.segment_index_at(ms) {
            Some(i) => Some(i),
            None if self.start_ms().is_some_and(|s| ms < s) => Some(0),
            None if self.segments.iter().all(|s| s.start_ms.is_none()) => {
                (!self.segments.is_empty()).then_some(0)
            }
            None => None,
        };
        match index {
            Some(i) => self.segments[i].push_tag(tag),
            None => {
                let at = self
                    .trailer
                    .iter()
                    .position(|l| l.tag_id().is_some_and(is_trailer_tag))
                    .unwrap_or(self.trailer.len());
                self.trailer.insert(at, Line::new(tag, self.eol));
                Ok(())
            }
        }
    }

    /// Appends a tag to the header (after `EXT-X-SKIP` in a delta update, before the first
    /// segment's tags).
    pub fn push_header_tag(&mut self, tag: &str) -> Result<()> {
        check_added_tag(tag)?;
        self.header.push(Line::new(tag, self.eol));
        Ok(())
    }

    /// Sets `EXT-X-DISCONTINUITY-SEQUENCE`, rewriting the tag or adding it after
    /// `EXT-X-MEDIA-SEQUENCE`.
    pub fn set_discontinuity_sequence(&mut self, n: u64) {
        let text = format!("#EXT-X-DISCONTINUITY-SEQUENCE:{n}");
        if let Some(line) = self
            .header
            .iter_mut()
            .find(|l| l.is_tag(Tag::DiscontinuitySequence))
        {
            line.set_text(text);
        } else {
            let at = self
                .header
                .iter()
                .position(|l| l.is_tag(Tag::MediaSequence))
                .map_or(self.header.len(), |i| i + 1);
            self.header.insert(at, Line::new(text, self.eol));
        }
        self.discontinuity_sequence = n;
        self.refresh();
    }

    /// Adds one `EXT-X-DISCONTINUITY` to segment `index` (another one when it has one
    /// already: each tag counts one in the discontinuity sequence).
    pub fn add_discontinuity(&mut self, index: usize) -> Result<()> {
        let eol = self.eol;
        let segment = self.segment_index_mut(index)?;
        segment
            .lines
            .insert(0, Line::new("#EXT-X-DISCONTINUITY", eol));
        self.refresh();
        Ok(())
    }

    /// Makes `uri` the `EXT-X-MAP` from segment `index` on: rewrites the segment's own map
    /// tag, or adds one (after its `EXT-X-DISCONTINUITY`).
    pub fn set_map(&mut self, index: usize, uri: &str) -> Result<()> {
        lines::check_uri(uri)?;
        let eol = self.eol;
        let text = format!("#EXT-X-MAP:URI={}", attr::quoted(uri)?);
        let segment = self.segment_index_mut(index)?;
        if let Some(line) = segment.lines.iter_mut().find(|l| l.is_tag(Tag::Map)) {
            line.set_text(text);
        } else {
            let at = segment
                .lines
                .iter()
                .position(|l| !l.is_tag(Tag::Discontinuity))
                .unwrap_or(segment.lines.len());
            segment.lines.insert(at, Line::new(text, eol));
        }
        self.refresh();
        Ok(())
    }

    /// The `EXT-X-PRELOAD-HINT` tags.
    pub fn preload_hints(&self) -> Vec<PreloadHint> {
        self.trailer
            .iter()
            .filter(|l| l.is_tag(Tag::PreloadHint))
            .enumerate()
            .map(|(index, l)| {
                let attributes = AttributeList::parse(l.value());
                PreloadHint {
                    index,
                    kind: attributes.get("TYPE").unwrap_or_default().to_string(),
                    uri: attributes.get("URI").unwrap_or_default().to_string(),
                    attributes,
                }
            })
            .collect()
    }

    /// Replaces the URI of preload hint `index`.
    pub fn set_preload_hint_uri(&mut self, index: usize, uri: &str) -> Result<()> {
        lines::check_uri(uri)?;
        let line = self
            .trailer
            .iter_mut()
            .filter(|l| l.is_tag(Tag::PreloadHint))
            .nth(index)
            .ok_or_else(|| Error::new(format!("no preload hint {index}")))?;
        let mut attributes = AttributeList::parse(line.value());
        attributes.set_quoted("URI", uri)?;
        line.set_text(format!("#EXT-X-PRELOAD-HINT:{}", attributes.render()));
        Ok(())
    }

    /// The `EXT-X-RENDITION-REPORT` attribute lists.
    pub fn rendition_reports(&self) -> Vec<AttributeList> {
        self.trailer
            .iter()
            .filter(|l| l.is_tag(Tag::RenditionReport))
            .map(|l| AttributeList::parse(l.value()))
            .collect()
    }

    /// Every `EXT-X-DATERANGE` in the playlist, in order.
    pub fn dateranges(&self) -> Vec<DateRangeTag> {
        self.header
            .iter()
            .chain(self.segments.iter().flat_map(|s| s.lines.iter()))
            .chain(self.trailer.iter())
            .filter(|l| l.is_tag(Tag::DateRange))
            .map(|l| DateRangeTag::parse(l.value()))
            .collect()
    }

    /// The header's lines (before the first segment), as text.
    pub fn header_lines(&self) -> impl Iterator<Item = &str> {
        self.header.iter().map(Line::text)
    }

    /// The closing lines (after the last segment), as text.
    pub fn trailer_lines(&self) -> impl Iterator<Item = &str> {
        self.trailer.iter().map(Line::text)
    }

    /// hls.js (1.6.x) stops loading a playlist when it maps an `EXT-X-DATERANGE` dated at or
    /// after the start of a parts-only segment that carries its own
    /// `EXT-X-PROGRAM-DATE-TIME`. weir's packager leaves that date out in that case (it
    /// follows from the previous segment's date and duration); call this after adding date
    /// ranges to do the same. It keeps the date when the segment in progress starts a
    /// discontinuity or is the only one listed. Returns whether it removed the date.
    pub fn omit_partial_date_for_hlsjs(&mut self) -> bool {
        let Some(partial) = self.partial() else {
            return false;
        };
        let Some(start) = partial.start_ms else {
            return false;
        };
        if !partial.has_program_date_time() || partial.is_discontinuity() || self.segments.len() < 2
        {
            return false;
        }
        let dated_after = self
            .dateranges()
            .iter()
            .any(|d| d.start_ms().is_some_and(|s| s >= start));
        if !dated_after {
            return false;
        }
        if let Some(partial) = self.segments.last_mut() {
            partial.lines.retain(|l| !l.is_tag(Tag::ProgramDateTime));
            partial.date = None;
        }
        true
    }

    fn segment_index_mut(&mut self, index: usize) -> Result<&mut Segment> {
        let count = self.segments.len();
        self.segments
            .get_mut(index)
            .ok_or_else(|| Error::new(format!("no segment {index} (the playlist lists {count})")))
    }

    /// Recomputes what follows from the lines: MSNs, dates, discontinuity sequence numbers
    /// and the map in effect.
    fn refresh(&mut self) {
        let first_msn = self.media_sequence.saturating_add(self.skipped);
        let mut dseq = self.discontinuity_sequence;
        let mut map: Option<Arc<str>> = None;
        let mut prev_end: Option<u64> = None;
        for (i, segment) in self.segments.iter_mut().enumerate() {
            segment.msn = first_msn.saturating_add(i as u64);
            let tags = segment
                .lines
                .iter()
                .filter(|l| l.is_tag(Tag::Discontinuity))
                .count();
            dseq = dseq.saturating_add(tags as u64);
            segment.discontinuity_sequence = dseq;
            if let Some(own) = segment.own_map_uri() {
                if map.as_deref() != Some(own) {
                    map = Some(Arc::from(own));
                }
            }
            segment.map_uri = map.clone();
            segment.start_ms = segment.explicit_date().or(prev_end);
            prev_end = segment.end_ms();
        }
        // RFC 8216bis 6.3.3: extrapolate backwards to segments before the first date.
        if let Some(first) = self.segments.iter().position(|s| s.start_ms.is_some()) {
            for i in (0..first).rev() {
                let next = self.segments[i + 1].start_ms;
                let own = self.segments[i].duration_ms();
                self.segments[i].start_ms = next.and_then(|n| n.checked_sub(own));
            }
        }
    }
}

impl std::fmt::Display for MediaPlaylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::str::FromStr for MediaPlaylist {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        MediaPlaylist::parse(text)
    }
}

impl Segment {
    /// A segment from its lines; `first_line` is the 1-based number of the first one, for
    /// errors.
    fn from_lines(lines: Vec<Line>, first_line: usize, complete: bool) -> Result<Self> {
        let mut duration = None;
        let mut parts_total = 0.0;
        let mut date = None;
        for (i, line) in lines.iter().enumerate() {
            let n = first_line + i;
            match line.tag_id() {
                Some(Tag::ExtInf) => {
                    let value = line.value();
                    let secs = match value.bytes().position(|b| b == b',') {
                        Some(comma) => &value[..comma],
                        None => value,
                    };
                    let secs = lines::trim(secs);
                    duration = Some(
                        attr::decimal(secs)
                            .filter(|d| d.is_finite() && *d >= 0.0)
                            .ok_or_else(|| {
                                Error::at_line(n, format!("cannot read EXTINF duration {secs:?}"))
                            })?,
                    );
                }
                Some(Tag::Part) => {
                    let d = attr::find(line.value(), "DURATION")
                        .and_then(attr::parse_f64)
                        .filter(|d| *d >= 0.0)
                        .ok_or_else(|| Error::at_line(n, "EXT-X-PART without a DURATION"))?;
                    parts_total += d;
                }
                Some(Tag::ProgramDateTime) => {
                    let ms = time::parse_iso8601(lines::trim(line.value()))
                        .map_err(|e| Error::at_line(n, e.message().to_string()))?;
                    date = date.or(Some(ms));
                }
                _ => {}
            }
        }
        let duration = if complete {
            let uri_line = (first_line + lines.len()).saturating_sub(1);
            duration.ok_or_else(|| Error::at_line(uri_line, "segment URI without EXTINF"))?
        } else {
            duration.unwrap_or(parts_total)
        };
        Ok(Segment {
            lines,
            complete,
            duration,
            msn: 0,
            start_ms: None,
            date,
            discontinuity_sequence: 0,
            map_uri: None,
        })
    }

    /// Media sequence number.
    pub fn msn(&self) -> u64 {
        self.msn
    }

    /// Whether this is the segment in progress (parts only, no URI yet).
    pub fn is_partial(&self) -> bool {
        !self.complete
    }

    /// The segment's URI; `None` for the segment in progress.
    pub fn uri(&self) -> Option<&str> {
        if self.complete {
            self.lines.last().map(Line::text)
        } else {
            None
        }
    }

    /// Duration in seconds: `EXTINF`, or the parts so far for the segment in progress.
    pub fn duration(&self) -> f64 {
        self.duration
    }

    pub fn duration_ms(&self) -> u64 {
        time::secs_to_ms(self.duration)
    }

    /// When it starts (Unix ms): its `EXT-X-PROGRAM-DATE-TIME`, or computed from the
    /// segments around it. `None` when the playlist has no dates.
    pub fn start_ms(&self) -> Option<u64> {
        self.start_ms
    }

    /// When it ends: start plus duration.
    pub fn end_ms(&self) -> Option<u64> {
        self.start_ms.map(|s| s.saturating_add(self.duration_ms()))
    }

    /// Whether the segment carries its own `EXT-X-PROGRAM-DATE-TIME`.
    pub fn has_program_date_time(&self) -> bool {
        self.lines.iter().any(|l| l.is_tag(Tag::ProgramDateTime))
    }

    /// Whether it has `EXT-X-DISCONTINUITY`.
    pub fn is_discontinuity(&self) -> bool {
        self.lines.iter().any(|l| l.is_tag(Tag::Discontinuity))
    }

    /// Its discontinuity sequence number: `EXT-X-DISCONTINUITY-SEQUENCE` plus the
    /// discontinuities up to and including this segment.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// The `EXT-X-MAP` URI in effect for this segment (its own or an earlier segment's).
    pub fn map_uri(&self) -> Option<&str> {
        self.map_uri.as_deref()
    }

    /// The URI of this segment's own `EXT-X-MAP` tag, if it has one.
    pub fn own_map_uri(&self) -> Option<&str> {
        self.lines
            .iter()
            .find(|l| l.is_tag(Tag::Map))
            .and_then(|l| attr_value(l.value(), "URI"))
    }

    /// Whether the segment has `EXT-X-GAP`.
    pub fn is_gap(&self) -> bool {
        self.lines.iter().any(|l| l.is_tag(Tag::Gap))
    }

    /// Its `EXT-X-PART` tags, with their dates.
    pub fn parts(&self) -> Vec<Part> {
        let mut at = self.start_ms;
        self.lines
            .iter()
            .filter(|l| l.is_tag(Tag::Part))
            .enumerate()
            .map(|(index, l)| {
                let attributes = AttributeList::parse(l.value());
                let part = Part {
                    index,
                    uri: attributes.get("URI").unwrap_or_default().to_string(),
                    duration: attributes.get_f64("DURATION").unwrap_or_default(),
                    independent: attributes.is_yes("INDEPENDENT"),
                    gap: attributes.is_yes("GAP"),
                    start_ms: at,
                    attributes,
                };
                at = part.end_ms();
                part
            })
            .collect()
    }

    /// The segment's lines (tags, then its URI), as text.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(Line::text)
    }

    /// The values of this segment's `#<name>:<value>` tags (e.g. `EXT-X-CUE-OUT`).
    pub fn tag_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.lines
            .iter()
            .filter(move |l| l.is(name))
            .map(Line::value)
    }

    /// The segment's `EXT-X-DATERANGE` tags.
    pub fn dateranges(&self) -> Vec<DateRangeTag> {
        self.tag_values("EXT-X-DATERANGE")
            .map(DateRangeTag::parse)
            .collect()
    }

    /// Replaces the segment's URI. An error for the segment in progress, which has none.
    pub fn set_uri(&mut self, uri: &str) -> Result<()> {
        lines::check_uri(uri)?;
        if !self.complete {
            return Err(Error::new(format!(
                "segment {} is in progress and has no URI yet",
                self.msn
            )));
        }
        if let Some(line) = self.lines.last_mut() {
            line.set_text(uri.to_string());
        }
        Ok(())
    }

    /// Replaces the URI of part `index`.
    pub fn set_part_uri(&mut self, index: usize, uri: &str) -> Result<()> {
        lines::check_uri(uri)?;
        self.edit_part(index, |a| a.set_quoted("URI", uri))
    }

    /// Marks part `index` `GAP=YES`.
    pub fn set_part_gap(&mut self, index: usize) -> Result<()> {
        self.edit_part(index, |a| {
            if !a.is_yes("GAP") {
                a.set_raw("GAP", "YES");
            }
            Ok(())
        })
    }

    /// Marks the segment as having no media: `EXT-X-GAP` before its `EXTINF` (a complete
    /// segment) and `GAP=YES` on each part. For the segment in progress only the parts are
    /// marked: `EXT-X-GAP` belongs to a complete segment.
    pub fn mark_gap(&mut self) -> Result<()> {
        let parts = self.lines.iter().filter(|l| l.is_tag(Tag::Part)).count();
        for i in 0..parts {
            self.set_part_gap(i)?;
        }
        if self.complete && !self.is_gap() {
            let at = self
                .lines
                .iter()
                .position(|l| l.is_tag(Tag::ExtInf))
                .unwrap_or(self.lines.len().saturating_sub(1));
            let eol = self.lines.first().map_or(Eol::Lf, Line::eol);
            let eol = if eol == Eol::None { Eol::Lf } else { eol };
            self.lines.insert(at, Line::new("#EXT-X-GAP", eol));
        }
        Ok(())
    }

    /// Adds a tag to this segment, after its leading tags (`EXT-X-DISCONTINUITY`,
    /// `EXT-X-MAP`, `EXT-X-PROGRAM-DATE-TIME`, date ranges and tags added before) and before
    /// its media (`EXT-X-PART`, `EXT-X-GAP`, `EXTINF`, the URI). Tags the model tracks
    /// (`EXTINF`, `EXT-X-PART`, `EXT-X-MAP`, `EXT-X-DISCONTINUITY`, ...) are refused: use
    /// the methods that change them.
    pub fn push_tag(&mut self, tag: &str) -> Result<()> {
        check_added_tag(tag)?;
        let at = self
            .lines
            .iter()
            .position(|l| l.is_uri() || l.tag_id().is_some_and(is_media_tag))
            .unwrap_or(self.lines.len());
        let eol = self
            .lines
            .iter()
            .map(Line::eol)
            .find(|e| *e != Eol::None)
            .unwrap_or(Eol::Lf);
        self.lines.insert(at, Line::new(tag, eol));
        Ok(())
    }

    /// Its own `EXT-X-PROGRAM-DATE-TIME` (the first one), read when it was parsed.
    fn explicit_date(&self) -> Option<u64> {
        self.date
    }

    fn edit_part(
        &mut self,
        index: usize,
        edit: impl FnOnce(&mut AttributeList) -> Result<()>,
    ) -> Result<()> {
        let msn = self.msn;
        let line = self
            .lines
            .iter_mut()
            .filter(|l| l.is_tag(Tag::Part))
            .nth(index)
            .ok_or_else(|| Error::new(format!("segment {msn} has no part {index}")))?;
        let mut attributes = AttributeList::parse(line.value());
        edit(&mut attributes)?;
        line.set_text(format!("#EXT-X-PART:{}", attributes.render()));
        Ok(())
    }
}

fn attr_value<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    // Borrowing variant of AttributeList::get for the hot path of refresh().
    let mut rest = list;
    while !rest.is_empty() {
        let mut in_quotes = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let piece = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or("");
        if let Some((n, v)) = piece.split_once('=') {
            if n == name {
                return Some(
                    v.strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v),
                );
            }
        }
    }
    None
}

fn check_added_tag(tag: &str) -> Result<()> {
    lines::check_tag(tag)?;
    if let Some(name) = lines::tag_name(tag).filter(|n| is_structural_tag(Tag::from_name(n))) {
        return Err(Error::new(format!(
            "add {name} through the playlist model's methods, not as a raw tag"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.50000
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-MAP:URI=\"init0.mp4\"
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z
#EXTINF:2.00000,
seg10.m4s
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:02.000Z
#EXT-X-PART:DURATION=0.50000,URI=\"part44.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.50000,URI=\"part45.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part46.m4s\"
";

    #[test]
    fn structure() {
        let p = MediaPlaylist::parse(LIVE).unwrap();
        assert_eq!(p.render(), LIVE);
        assert_eq!(p.segments().len(), 2);
        let (a, b) = (&p.segments()[0], &p.segments()[1]);
        assert_eq!(
            (a.msn(), a.uri(), a.is_partial()),
            (10, Some("seg10.m4s"), false)
        );
        assert_eq!((b.msn(), b.uri(), b.is_partial()), (11, None, true));
        assert_eq!(b.duration_ms(), 1000);
        assert_eq!(b.map_uri(), Some("init0.mp4"));
        assert_eq!(b.start_ms(), Some(a.start_ms().unwrap() + 2000));
        let parts = b.parts();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].independent && !parts[1].independent);
        assert_eq!(parts[1].start_ms, Some(b.start_ms().unwrap() + 500));
        assert_eq!(p.preload_hints()[0].uri, "part46.m4s");
        assert_eq!(p.next_part_start_ms(), Some(a.start_ms().unwrap() + 3000));
        assert_eq!(p.part_target_ms(), Some(500));
    }

    #[test]
    fn parse_owned_is_parse() {
        let crlf = LIVE.replace('\n', "\r\n");
        for text in [
            LIVE,
            &crlf,
            LIVE.trim_end(),
            "",
            "not a playlist",
            "#EXTM3U\n#EXTINF:abc,\nseg.ts\n",
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n",
        ] {
            let owned = MediaPlaylist::parse_owned(text.to_string());
            assert_eq!(owned, MediaPlaylist::parse(text));
            if let Ok(p) = owned {
                assert_eq!(p.render(), text);
            }
        }
    }

    #[test]
    fn places_tags_by_date() {
        let mut p = MediaPlaylist::parse(LIVE).unwrap();
        let t0 = p.start_ms().unwrap();
        p.insert_tag_at(t0 + 1000, "#EXT-X-A").unwrap();
        p.insert_tag_at(t0 - 5000, "#EXT-X-B").unwrap();
        p.insert_tag_at(t0 + 2600, "#EXT-X-C").unwrap();
        let text = p.render();
        assert!(
            text.contains("2026-11-25T16:00:00.000Z\n#EXT-X-A\n#EXT-X-B\n#EXTINF"),
            "{text}"
        );
        assert!(
            text.contains("16:00:02.000Z\n#EXT-X-C\n#EXT-X-PART"),
            "{text}"
        );
        assert!(p.insert_tag_at(t0, "#EXTINF:1,").is_err());
        assert!(p.insert_tag_at(t0, "not a tag").is_err());
    }

    #[test]
    fn discontinuity_and_map_edits_update_what_follows() {
        let mut p = MediaPlaylist::parse(LIVE).unwrap();
        p.add_discontinuity(1).unwrap();
        p.set_map(1, "../slate/init.mp4").unwrap();
        p.set_discontinuity_sequence(4);
        let b = &p.segments()[1];
        assert_eq!(b.discontinuity_sequence(), 5);
        assert_eq!(b.map_uri(), Some("../slate/init.mp4"));
        assert_eq!(p.segments()[0].map_uri(), Some("init0.mp4"));
        let text = p.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:4\n"));
        assert!(text.contains(
            "seg10.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"../slate/init.mp4\"\n#EXT-X-PROGRAM-DATE-TIME"
        ));
        // Rewrites the first segment's own map in place.
        p.set_map(0, "../slate/init.mp4").unwrap();
        assert!(p.render().contains("#EXT-X-MEDIA-SEQUENCE:10\n#EXT-X-DISCONTINUITY-SEQUENCE:4\n#EXT-X-MAP:URI=\"../slate/init.mp4\"\n#EXT-X-PROGRAM"));
    }

    #[test]
    fn gap_marks() {
        let mut p = MediaPlaylist::parse(LIVE).unwrap();
        for s in p.segments_mut() {
            s.mark_gap().unwrap();
        }
        let text = p.render();
        assert!(text.contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg10.m4s"));
        assert!(text.contains("URI=\"part44.m4s\",INDEPENDENT=YES,GAP=YES\n"));
        assert_eq!(text.matches("#EXT-X-GAP").count(), 1);
        assert!(p.segments()[0].is_gap());
    }

    #[test]
    fn crlf_and_missing_final_newline_round_trip() {
        let crlf = LIVE.replace('\n', "\r\n");
        let p = MediaPlaylist::parse(&crlf).unwrap();
        assert_eq!(p.render(), crlf);
        let trimmed = LIVE.trim_end();
        let mut p = MediaPlaylist::parse(trimmed).unwrap();
        assert_eq!(p.render(), trimmed);
        p.insert_tag_at(u64::MAX, "#EXT-X-Z").unwrap();
        assert!(p.render().contains("#EXT-X-Z\n#EXT-X-PART"));
        // Added after a last line that had no newline: the line gets one.
        let text = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n#EXTINF:2,\na.ts";
        let mut p = MediaPlaylist::parse(text).unwrap();
        p.insert_tag_at(u64::MAX, "#EXT-X-Z").unwrap();
        assert_eq!(p.render(), format!("{text}\n#EXT-X-Z\n"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = MediaPlaylist::parse("not a playlist").unwrap_err();
        assert_eq!(e.line(), Some(1));
        let e = MediaPlaylist::parse("#EXTM3U\n#EXTINF:abc,\nseg.ts\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e =
            MediaPlaylist::parse("#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n#EXTINF:1,\na.ts\n")
                .unwrap_err();
        assert_eq!(e.line(), Some(2));
        let e = MediaPlaylist::parse("#EXTM3U\nseg.ts\n").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(MediaPlaylist::parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n").is_err());
    }

    #[test]
    fn dates_extrapolate_backwards_and_forwards() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:02.000Z\n#EXTINF:2,\nb.ts\n#EXTINF:1.5,\nc.ts\n";
        let p = MediaPlaylist::parse(text).unwrap();
        let starts: Vec<_> = p
            .segments()
            .iter()
            .map(|s| s.start_ms().unwrap() % 100_000)
            .collect();
        assert_eq!(starts, [0, 2000, 4000]);
        assert_eq!(p.end_ms().unwrap() % 100_000, 5500);
    }
}
