//! Multivariant ("master") playlists: variant streams and renditions over the original text.

use crate::attr::AttributeList;
use crate::error::{Error, Result};
use crate::lines::{self, Eol, Line};

/// A multivariant playlist. Like [`crate::MediaPlaylist`], it renders its input byte for
/// byte and edits touch only their own lines.
///
/// ```
/// use weir_guest::MultivariantPlaylist;
///
/// let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS=\"avc1.42c01e,mp4a.40.2\"\n720p/index.m3u8\n";
/// let mut playlist = MultivariantPlaylist::parse(text)?;
/// assert_eq!(playlist.render(), text);
/// assert_eq!(playlist.variants()[0].attributes.get_u64("BANDWIDTH"), Some(3_000_000));
/// playlist.set_variant_uri(0, "slate/index.m3u8")?;
/// assert!(playlist.render().ends_with("\nslate/index.m3u8\n"));
/// # Ok::<(), weir_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct MultivariantPlaylist {
    lines: Vec<Line>,
    eol: Eol,
}

/// One `EXT-X-STREAM-INF` and the URI line after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    /// Its position among the variants, as [`MultivariantPlaylist::set_variant_uri`] takes it.
    pub index: usize,
    pub attributes: AttributeList,
    pub uri: String,
}

/// One `EXT-X-MEDIA` (an alternative rendition).
#[derive(Clone, Debug, PartialEq)]
pub struct Rendition {
    /// Its position among the renditions.
    pub index: usize,
    pub attributes: AttributeList,
}

impl MultivariantPlaylist {
    /// Parses a multivariant playlist: `#EXTM3U` first, no media segments.
    pub fn parse(text: &str) -> Result<Self> {
        let lines = lines::split(text);
        if lines.first().map(|l| l.text().trim_end()) != Some("#EXTM3U") {
            return Err(Error::at_line(
                1,
                "not a playlist: the first line must be #EXTM3U",
            ));
        }
        if let Some(n) = lines
            .iter()
            .position(|l| l.is("EXTINF") || l.is("EXT-X-TARGETDURATION"))
        {
            return Err(Error::at_line(
                n + 1,
                "a media playlist, not a multivariant playlist",
            ));
        }
        // A variant's URI is the next line that is not blank or a comment.
        let significant = |l: &&Line| {
            !l.text().trim().is_empty() && (l.tag().is_some() || !l.text().starts_with('#'))
        };
        for (n, line) in lines.iter().enumerate() {
            let uri_follows = || {
                lines[n + 1..]
                    .iter()
                    .find(significant)
                    .is_some_and(Line::is_uri)
            };
            if line.is("EXT-X-STREAM-INF") && !uri_follows() {
                return Err(Error::at_line(
                    n + 1,
                    "EXT-X-STREAM-INF without a URI line after it",
                ));
            }
        }
        let eol = lines::dominant_eol(&lines);
        Ok(MultivariantPlaylist { lines, eol })
    }

    /// The playlist as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        lines::render(self.lines.iter(), self.eol, &mut out);
        out
    }

    /// The variant streams, in order.
    pub fn variants(&self) -> Vec<Variant> {
        self.variant_lines()
            .into_iter()
            .enumerate()
            .map(|(index, (inf, uri))| Variant {
                index,
                attributes: AttributeList::parse(self.lines[inf].value()),
                uri: self.lines[uri].text().to_string(),
            })
            .collect()
    }

    /// Replaces the URI of variant `index`.
    pub fn set_variant_uri(&mut self, index: usize, uri: &str) -> Result<()> {
        lines::check_uri(uri)?;
        let (_, at) = *self
            .variant_lines()
            .get(index)
            .ok_or_else(|| Error::new(format!("no variant {index}")))?;
        self.lines[at].set_text(uri.to_string());
        Ok(())
    }

    /// The `EXT-X-MEDIA` renditions, in order.
    pub fn renditions(&self) -> Vec<Rendition> {
        self.lines
            .iter()
            .filter(|l| l.is("EXT-X-MEDIA"))
            .enumerate()
            .map(|(index, l)| Rendition {
                index,
                attributes: AttributeList::parse(l.value()),
            })
            .collect()
    }

    /// Replaces the `URI` of rendition `index`.
    pub fn set_rendition_uri(&mut self, index: usize, uri: &str) -> Result<()> {
        lines::check_uri(uri)?;
        let line = self
            .lines
            .iter_mut()
            .filter(|l| l.is("EXT-X-MEDIA"))
            .nth(index)
            .ok_or_else(|| Error::new(format!("no rendition {index}")))?;
        let mut attributes = AttributeList::parse(line.value());
        attributes.set_quoted("URI", uri)?;
        line.set_text(format!("#EXT-X-MEDIA:{}", attributes.render()));
        Ok(())
    }

    /// Adds a tag (e.g. `EXT-X-SESSION-DATA`) before the first rendition or variant.
    pub fn push_tag(&mut self, tag: &str) -> Result<()> {
        lines::check_tag(tag)?;
        let at = self
            .lines
            .iter()
            .position(|l| {
                l.is("EXT-X-MEDIA") || l.is("EXT-X-STREAM-INF") || l.is("EXT-X-I-FRAME-STREAM-INF")
            })
            .unwrap_or(self.lines.len());
        self.lines.insert(at, Line::new(tag, self.eol));
        Ok(())
    }

    /// The lines as text.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.lines.iter().map(Line::text)
    }

    fn variant_lines(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            if line.is("EXT-X-STREAM-INF") {
                if let Some(j) = (i + 1..self.lines.len()).find(|&j| self.lines[j].is_uri()) {
                    out.push((i, j));
                }
            }
        }
        out
    }
}

impl std::fmt::Display for MultivariantPlaylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlists_are_refused() {
        assert!(MultivariantPlaylist::parse("#EXTM3U\n#EXTINF:1,\na.ts\n").is_err());
        assert!(MultivariantPlaylist::parse("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n").is_err());
    }

    #[test]
    fn renditions_and_session_tags() {
        let text = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio/index.m3u8\"\n#EXT-X-STREAM-INF:BANDWIDTH=1,AUDIO=\"a\"\n# comment\nv/index.m3u8\n";
        let mut p = MultivariantPlaylist::parse(text).unwrap();
        assert_eq!(p.render(), text);
        assert_eq!(p.variants()[0].uri, "v/index.m3u8");
        p.set_rendition_uri(0, "audio2/index.m3u8").unwrap();
        p.push_tag("#EXT-X-SESSION-DATA:DATA-ID=\"com.example\",VALUE=\"1\"")
            .unwrap();
        let out = p.render();
        assert!(out.contains("#EXT-X-VERSION:6\n#EXT-X-SESSION-DATA:DATA-ID=\"com.example\",VALUE=\"1\"\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\",URI=\"audio2/index.m3u8\"\n"));
    }
}
