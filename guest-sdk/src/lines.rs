//! Playlist text as lines that remember their terminators, so rendering is byte-exact.
//!
//! A parsed playlist keeps its text in one shared buffer (a copy, or the caller's `String`
//! with `MediaPlaylist::parse_owned`); each line is a span of it, not an allocation of its
//! own, until an edit gives it new text. A line reads its tag once, when it is made, so the
//! playlist model can ask "which tag is this" as often as it likes. Rendering copies runs
//! of unedited lines that still follow each other in the buffer in one go.

use std::sync::Arc;

/// How a line ended in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eol {
    Lf,
    CrLf,
    /// The last line of a text that does not end in a newline.
    None,
}

impl Eol {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
            Eol::None => "",
        }
    }
}

/// The tags the playlist models look at, read once per line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    ExtM3u,
    ExtInf,
    ByteRange,
    Discontinuity,
    Key,
    Map,
    ProgramDateTime,
    Gap,
    Bitrate,
    Part,
    DateRange,
    CueOut,
    CueOutCont,
    CueIn,
    PreloadHint,
    RenditionReport,
    EndList,
    MediaSequence,
    DiscontinuitySequence,
    TargetDuration,
    PartInf,
    Skip,
    StreamInf,
    IFrameStreamInf,
    Media,
    SessionData,
    SessionKey,
    /// Any other `#EXT` tag.
    Other,
}

impl Tag {
    pub(crate) fn from_name(name: &str) -> Tag {
        Tag::from_bytes(name.as_bytes())
    }

    fn from_bytes(name: &[u8]) -> Tag {
        // Most tags start `EXT-X-`: compare the rest.
        if let Some(rest) = name.strip_prefix(b"EXT-X-") {
            return match rest {
                b"BYTERANGE" => Tag::ByteRange,
                b"DISCONTINUITY" => Tag::Discontinuity,
                b"KEY" => Tag::Key,
                b"MAP" => Tag::Map,
                b"PROGRAM-DATE-TIME" => Tag::ProgramDateTime,
                b"GAP" => Tag::Gap,
                b"BITRATE" => Tag::Bitrate,
                b"PART" => Tag::Part,
                b"DATERANGE" => Tag::DateRange,
                b"CUE-OUT" => Tag::CueOut,
                b"CUE-OUT-CONT" => Tag::CueOutCont,
                b"CUE-IN" => Tag::CueIn,
                b"PRELOAD-HINT" => Tag::PreloadHint,
                b"RENDITION-REPORT" => Tag::RenditionReport,
                b"ENDLIST" => Tag::EndList,
                b"MEDIA-SEQUENCE" => Tag::MediaSequence,
                b"DISCONTINUITY-SEQUENCE" => Tag::DiscontinuitySequence,
                b"TARGETDURATION" => Tag::TargetDuration,
                b"PART-INF" => Tag::PartInf,
                b"SKIP" => Tag::Skip,
                b"STREAM-INF" => Tag::StreamInf,
                b"I-FRAME-STREAM-INF" => Tag::IFrameStreamInf,
                b"MEDIA" => Tag::Media,
                b"SESSION-DATA" => Tag::SessionData,
                b"SESSION-KEY" => Tag::SessionKey,
                _ => Tag::Other,
            };
        }
        match name {
            b"EXTM3U" => Tag::ExtM3u,
            b"EXTINF" => Tag::ExtInf,
            _ => Tag::Other,
        }
    }

    #[cfg(test)]
    fn from_name_slow(name: &str) -> Tag {
        match name {
            "EXTM3U" => Tag::ExtM3u,
            "EXTINF" => Tag::ExtInf,
            "EXT-X-BYTERANGE" => Tag::ByteRange,
            "EXT-X-DISCONTINUITY" => Tag::Discontinuity,
            "EXT-X-KEY" => Tag::Key,
            "EXT-X-MAP" => Tag::Map,
            "EXT-X-PROGRAM-DATE-TIME" => Tag::ProgramDateTime,
            "EXT-X-GAP" => Tag::Gap,
            "EXT-X-BITRATE" => Tag::Bitrate,
            "EXT-X-PART" => Tag::Part,
            "EXT-X-DATERANGE" => Tag::DateRange,
            "EXT-X-CUE-OUT" => Tag::CueOut,
            "EXT-X-CUE-OUT-CONT" => Tag::CueOutCont,
            "EXT-X-CUE-IN" => Tag::CueIn,
            "EXT-X-PRELOAD-HINT" => Tag::PreloadHint,
            "EXT-X-RENDITION-REPORT" => Tag::RenditionReport,
            "EXT-X-ENDLIST" => Tag::EndList,
            "EXT-X-MEDIA-SEQUENCE" => Tag::MediaSequence,
            "EXT-X-DISCONTINUITY-SEQUENCE" => Tag::DiscontinuitySequence,
            "EXT-X-TARGETDURATION" => Tag::TargetDuration,
            "EXT-X-PART-INF" => Tag::PartInf,
            "EXT-X-SKIP" => Tag::Skip,
            "EXT-X-STREAM-INF" => Tag::StreamInf,
            "EXT-X-I-FRAME-STREAM-INF" => Tag::IFrameStreamInf,
            "EXT-X-MEDIA" => Tag::Media,
            "EXT-X-SESSION-DATA" => Tag::SessionData,
            "EXT-X-SESSION-KEY" => Tag::SessionKey,
            _ => Tag::Other,
        }
    }
}

/// A line's text: a span of the parsed input, or text an edit gave it.
#[derive(Clone)]
enum Text {
    Shared {
        src: Source,
        start: usize,
        end: usize,
    },
    Owned(String),
}

impl Text {
    fn as_str(&self) -> &str {
        match self {
            // `start..end` is a char-boundary range of `src`, checked when the line was made.
            Text::Shared { src, start, end } => src.get(*start..*end).unwrap_or_default(),
            Text::Owned(s) => s,
        }
    }
}

/// One line of a playlist, without its terminator.
#[derive(Clone)]
pub(crate) struct Line {
    text: Text,
    eol: Eol,
    /// Its tag, for `#EXT` lines.
    tag: Option<Tag>,
    uri: bool,
    /// Where the first `:` is in a `#EXT` line ([`NO_COLON`] for none; 0 for other lines).
    colon: usize,
}

const NO_COLON: usize = usize::MAX;

impl PartialEq for Line {
    fn eq(&self, other: &Self) -> bool {
        self.eol == other.eol && self.text() == other.text()
    }
}

impl Eq for Line {}

impl std::fmt::Debug for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Line")
            .field("text", &self.text())
            .field("eol", &self.eol)
            .finish()
    }
}

impl Line {
    pub(crate) fn new(text: impl Into<String>, eol: Eol) -> Self {
        let text = text.into();
        let (tag, colon, uri) = classify(text.as_bytes());
        Line {
            text: Text::Owned(text),
            eol,
            tag,
            uri,
            colon,
        }
    }

    /// A line over `src[start..end]` (a char-boundary range).
    fn shared(src: &Source, start: usize, end: usize, eol: Eol) -> Self {
        let (tag, colon, uri) = classify(src.as_bytes().get(start..end).unwrap_or_default());
        Line {
            text: Text::Shared {
                src: Arc::clone(src),
                start,
                end,
            },
            eol,
            tag,
            uri,
            colon,
        }
    }

    pub(crate) fn text(&self) -> &str {
        self.text.as_str()
    }

    /// How the line ends.
    pub(crate) fn eol(&self) -> Eol {
        self.eol
    }

    pub(crate) fn set_text(&mut self, text: String) {
        *self = Line::new(text, self.eol);
    }

    /// The tag name (`EXT-X-PART` for `#EXT-X-PART:...`), for `#EXT` lines only.
    pub(crate) fn tag(&self) -> Option<&str> {
        self.tag?;
        let text = self.text();
        text.get(1..self.colon.min(text.len())).map(trim_end)
    }

    /// The tag, for `#EXT` lines only.
    pub(crate) fn tag_id(&self) -> Option<Tag> {
        self.tag
    }

    pub(crate) fn is(&self, tag: &str) -> bool {
        self.tag() == Some(tag)
    }

    /// Whether this is a `#EXT` line with the tag `tag` (not [`Tag::Other`]).
    pub(crate) fn is_tag(&self, tag: Tag) -> bool {
        self.tag == Some(tag)
    }

    /// What follows `#TAG:`; empty for a tag without a value.
    pub(crate) fn value(&self) -> &str {
        let text = self.text();
        if self.tag.is_some() {
            return text.get(self.colon.saturating_add(1)..).unwrap_or("");
        }
        text.split_once(':').map_or("", |(_, v)| v)
    }

    /// A URI line: not blank, not a tag or comment.
    pub(crate) fn is_uri(&self) -> bool {
        self.uri
    }

    /// Its length with its terminator, as rendered.
    fn rendered_len(&self) -> usize {
        let text = match &self.text {
            Text::Shared { start, end, .. } => end - start,
            Text::Owned(text) => text.len(),
        };
        text + self.eol.as_str().len()
    }
}

/// What [`Line`] caches about its text: the tag, where the first `:` is in a tag line,
/// and whether the line is a URI.
fn classify(bytes: &[u8]) -> (Option<Tag>, usize, bool) {
    let uri = match bytes.first() {
        Some(b'#') => false,
        Some(b) if b.is_ascii_graphic() => true,
        // Blank, or starting with white space or a control or non-ASCII character: what
        // `str::trim` then `starts_with('#')` would say.
        _ => std::str::from_utf8(bytes)
            .unwrap_or_default()
            .trim_start()
            .chars()
            .next()
            .is_some_and(|c| c != '#'),
    };
    if !bytes.starts_with(b"#EXT") {
        return (None, 0, uri);
    }
    let colon = find_byte(bytes, b':');
    let raw_end = colon.unwrap_or(bytes.len());
    // The name (after `#`, before `:`) with trailing white space trimmed, as
    // `str::trim_end` does.
    let name = bytes.get(1..raw_end).unwrap_or_default();
    let tag = match name.last() {
        Some(last) if last.is_ascii_graphic() => Tag::from_bytes(name),
        _ => Tag::from_name(trim_end(std::str::from_utf8(name).unwrap_or_default())),
    };
    (Some(tag), colon.unwrap_or(NO_COLON), uri)
}

/// The index of the first `\n` in `bytes`.
fn find_newline(bytes: &[u8]) -> Option<usize> {
    find_byte(bytes, b'\n')
}

/// The index of the first `needle` in `bytes`, looked for eight bytes at a time (a Wasm
/// guest has no SIMD and no `memchr` of the host's).
#[inline(always)]
fn find_byte(bytes: &[u8], needle: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let x = word ^ pattern;
        // A high bit for each zero byte of `x`; the lowest one is exact (a borrow only
        // flags bytes above a zero byte), and the lowest byte comes first in memory.
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|i| at + i)
}

pub(crate) fn tag_name(text: &str) -> Option<&str> {
    if !text.starts_with("#EXT") {
        return None;
    }
    let body = &text[1..];
    Some(
        body.split_once(':')
            .map_or(body, |(name, _)| name)
            .trim_end(),
    )
}

/// The text a playlist was parsed from, shared by its lines.
type Source = Arc<String>;

/// The lines of a text, each a span of it.
pub(crate) struct SplitLines {
    src: Source,
    at: usize,
}

impl SplitLines {
    /// The lines of a copy of `text`.
    pub(crate) fn new(text: &str) -> Self {
        SplitLines::owned(text.to_owned())
    }

    /// The lines of `text`, which they keep (no copy).
    pub(crate) fn owned(text: String) -> Self {
        SplitLines {
            src: Arc::new(text),
            at: 0,
        }
    }

    /// How many of the lines left could be URIs (they do not start with `#` and are not
    /// empty): at least as many as there are, for sizing a list of segments.
    pub(crate) fn max_uris(&self) -> usize {
        let bytes = self.src.as_bytes();
        let mut at = self.at;
        let mut count = 0;
        while let Some(&first) = bytes.get(at) {
            count += usize::from(first != b'#' && first != b'\n');
            match find_newline(bytes.get(at..).unwrap_or_default()) {
                Some(i) => at += i + 1,
                None => break,
            }
        }
        count
    }
}

impl Iterator for SplitLines {
    type Item = Line;

    fn next(&mut self) -> Option<Line> {
        let bytes = self.src.as_bytes();
        let start = self.at;
        if start >= bytes.len() {
            return None;
        }
        let line = match find_newline(&bytes[start..]) {
            Some(i) => {
                let nl = start + i;
                self.at = nl + 1;
                if nl > start && bytes[nl - 1] == b'\r' {
                    Line::shared(&self.src, start, nl - 1, Eol::CrLf)
                } else {
                    Line::shared(&self.src, start, nl, Eol::Lf)
                }
            }
            None => {
                self.at = bytes.len();
                Line::shared(&self.src, start, bytes.len(), Eol::None)
            }
        };
        Some(line)
    }
}

/// Splits text into lines, keeping each terminator. `render(split(t)) == t` for any `t`.
pub(crate) fn split(text: &str) -> Vec<Line> {
    SplitLines::new(text).collect()
}

/// Concatenates lines. A line that lost its place at the end (something was added after
/// it) gets `eol`.
pub(crate) fn render<'a>(
    lines: impl Iterator<Item = &'a Line> + Clone,
    eol: Eol,
    out: &mut String,
) {
    // Sized once: one allocation for the whole text (plus room for the terminators a line
    // without one may get).
    let (len, unterminated) = lines.clone().fold((0, 0), |(len, n), l| {
        (len + l.rendered_len(), n + usize::from(l.eol == Eol::None))
    });
    out.reserve(len + 2 * unterminated);
    // Lines that still follow each other in the text they were parsed from, terminators
    // included, are copied as one run: a few copies for a playlist with a few edits.
    let mut run: Option<(&Source, usize, usize)> = None;
    let flush = |run: &mut Option<(&Source, usize, usize)>, out: &mut String| {
        if let Some((src, start, end)) = run.take() {
            out.push_str(src.get(start..end).unwrap_or_default());
        }
    };
    let mut pending_none = false;
    for line in lines {
        if pending_none {
            flush(&mut run, out);
            out.push_str(eol.as_str());
        }
        match &line.text {
            Text::Shared { src, start, end } => {
                // A shared line's terminator is the text after it in `src` (`split`).
                let stop = end + line.eol.as_str().len();
                match &mut run {
                    Some((run_src, _, run_end))
                        if *run_end == *start && Arc::ptr_eq(run_src, src) =>
                    {
                        *run_end = stop;
                    }
                    _ => {
                        flush(&mut run, out);
                        run = Some((src, *start, stop));
                    }
                }
            }
            Text::Owned(text) => {
                flush(&mut run, out);
                out.push_str(text);
                out.push_str(line.eol.as_str());
            }
        }
        pending_none = line.eol == Eol::None;
    }
    flush(&mut run, out);
}

/// `str::trim`, with a fast path for text that starts and ends with a visible ASCII
/// character (no white space to trim).
pub(crate) fn trim(s: &str) -> &str {
    match s.as_bytes() {
        [] => s,
        [first, .., last] if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        [only] if only.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `str::trim_end`, with a fast path for text that ends with a visible ASCII character.
pub(crate) fn trim_end(s: &str) -> &str {
    match s.as_bytes().last() {
        None => s,
        Some(last) if last.is_ascii_graphic() => s,
        _ => s.trim_end(),
    }
}

/// The terminator new lines get: the first line's, or LF.
pub(crate) fn dominant_eol(lines: &[Line]) -> Eol {
    match lines.first().map(|l| l.eol) {
        Some(Eol::CrLf) => Eol::CrLf,
        _ => Eol::Lf,
    }
}

/// Checks that a tag an author adds is one line starting with `#EXT`.
pub(crate) fn check_tag(tag: &str) -> crate::Result<()> {
    if !tag.starts_with("#EXT") || tag.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(crate::Error::new(format!(
            "{tag:?} is not a single playlist tag line (it must start with #EXT and hold no newline)"
        )));
    }
    Ok(())
}

/// Checks a URI an author writes into a URI line or a `URI="..."` attribute.
pub(crate) fn check_uri(uri: &str) -> crate::Result<()> {
    if uri.trim().is_empty()
        || uri.starts_with('#')
        || uri.bytes().any(|b| matches!(b, b'\r' | b'\n' | b'"'))
    {
        return Err(crate::Error::new(format!("{uri:?} is not a usable URI")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_render_is_identity() {
        for text in [
            "",
            "a",
            "a\n",
            "a\r\nb",
            "a\n\nb\n",
            "#EXTM3U\r\n#X\n",
            "\n\n",
        ] {
            let lines = split(text);
            let mut out = String::new();
            render(lines.iter(), Eol::Lf, &mut out);
            assert_eq!(out, text);
        }
    }

    #[test]
    fn cached_classification_agrees_with_the_text() {
        let texts = [
            "#EXTM3U",
            "#EXTM3U ",
            "#EXTINF:2.0,",
            "#EXTINF :2",
            "#EXTINF\t:2",
            "#EXT-X-PART:DURATION=1,URI=\"a:b\"",
            "#EXT-X-GAP",
            "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z",
            "#EXT-X-UNKNOWN:a:b",
            "#EXT-X-MAP\u{2003}:URI=\"a\"",
            "#EXT\u{a0}:x",
            "#EXTé:1",
            "#EXT",
            "#EX",
            "# comment: not a tag",
            "",
            " ",
            "\t#EXTINF:1",
            " seg.ts",
            "seg.ts",
            "\u{a0}seg",
            "\u{a0}#seg",
            "\u{b}#x",
            "\u{b}x",
            "\u{1}x",
            "http://a/b:c",
            "é.ts",
            "#EXT-X-MEDIA",
            "#EXT-X-MEDIA-SEQUENCE:1",
            "#EXT-X-I-FRAME-STREAM-INF:X",
            "#EXT-X-STREAM-INF:BANDWIDTH=1",
        ];
        for text in texts {
            let parsed = split(&format!("{text}\n")).remove(0);
            for line in [Line::new(text, Eol::Lf), parsed] {
                assert_eq!(line.text(), text);
                assert_eq!(line.tag(), tag_name(text), "{text:?}");
                assert_eq!(
                    line.tag_id(),
                    tag_name(text).map(Tag::from_name_slow),
                    "{text:?}"
                );
                assert_eq!(
                    line.value(),
                    text.split_once(':').map_or("", |(_, v)| v),
                    "{text:?}"
                );
                let t = text.trim();
                assert_eq!(
                    line.is_uri(),
                    !t.is_empty() && !t.starts_with('#'),
                    "{text:?}"
                );
            }
        }
    }

    #[test]
    fn tag_ids_match_their_names() {
        for name in [
            "EXTM3U",
            "EXTINF",
            "EXT-X-BYTERANGE",
            "EXT-X-DISCONTINUITY",
            "EXT-X-KEY",
            "EXT-X-MAP",
            "EXT-X-PROGRAM-DATE-TIME",
            "EXT-X-GAP",
            "EXT-X-BITRATE",
            "EXT-X-PART",
            "EXT-X-DATERANGE",
            "EXT-X-CUE-OUT",
            "EXT-X-CUE-OUT-CONT",
            "EXT-X-CUE-IN",
            "EXT-X-PRELOAD-HINT",
            "EXT-X-RENDITION-REPORT",
            "EXT-X-ENDLIST",
            "EXT-X-MEDIA-SEQUENCE",
            "EXT-X-DISCONTINUITY-SEQUENCE",
            "EXT-X-TARGETDURATION",
            "EXT-X-PART-INF",
            "EXT-X-SKIP",
            "EXT-X-STREAM-INF",
            "EXT-X-I-FRAME-STREAM-INF",
            "EXT-X-MEDIA",
            "EXT-X-SESSION-DATA",
            "EXT-X-SESSION-KEY",
            "EXT-X-",
            "EXT-X",
            "EXTM3",
            "EXT-X-PARTS",
            "ext-x-part",
            "EXT-X-VERSION",
            "",
        ] {
            assert_eq!(Tag::from_name(name), Tag::from_name_slow(name), "{name}");
        }
        assert_ne!(Tag::from_name("EXT-X-PART"), Tag::Other);
    }

    #[test]
    fn finds_newlines_like_a_byte_search() {
        let text = "0123456789abcdef\n01234567\n\n\r\n0123456789abcdefghijklmnopq\nxyz";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let bytes = &text.as_bytes()[start..end];
                assert_eq!(
                    find_newline(bytes),
                    bytes.iter().position(|&b| b == b'\n'),
                    "{start}..{end}"
                );
            }
        }
    }

    #[test]
    fn renders_runs_and_edits() {
        let text = "#EXTM3U\r\n#A\r\nb\r\n#C\r\nd";
        let mut lines = split(text);
        let mut out = String::new();
        render(lines.iter(), Eol::CrLf, &mut out);
        assert_eq!(out, text);
        lines[2].set_text("B".to_string());
        lines.insert(4, Line::new("#X", Eol::CrLf));
        lines.push(Line::new("#Z", Eol::CrLf));
        let mut out = String::new();
        render(lines.iter(), Eol::CrLf, &mut out);
        assert_eq!(out, "#EXTM3U\r\n#A\r\nB\r\n#C\r\n#X\r\nd\r\n#Z\r\n");
        // Lines of two parses never merge into one run.
        let (a, b) = (split("x\ny\n"), split("x\ny\n"));
        let mut out = String::new();
        render([&a[0], &b[1], &a[1]].into_iter(), Eol::Lf, &mut out);
        assert_eq!(out, "x\ny\ny\n");
    }

    #[test]
    fn tag_names() {
        assert_eq!(tag_name("#EXTM3U"), Some("EXTM3U"));
        assert_eq!(tag_name("#EXTINF:2.0,"), Some("EXTINF"));
        assert_eq!(tag_name("#EXT-X-GAP"), Some("EXT-X-GAP"));
        assert_eq!(tag_name("# a comment"), None);
        assert_eq!(tag_name("seg1.m4s"), None);
    }
}
