//! Playlist text as lines that remember their terminators, so rendering is byte-exact.

/// How a line ended in the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Eol {
    Lf,
    CrLf,
    /// The last line of a text that does not end in a newline.
    None,
}

impl Eol {
    fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
            Eol::None => "",
        }
    }
}

/// One line of a playlist, without its terminator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) text: String,
    pub(crate) eol: Eol,
}

impl Line {
    pub(crate) fn new(text: impl Into<String>, eol: Eol) -> Self {
        Line {
            text: text.into(),
            eol,
        }
    }

    /// The tag name (`EXT-X-PART` for `#EXT-X-PART:...`), for `#EXT` lines only.
    pub(crate) fn tag(&self) -> Option<&str> {
        tag_name(&self.text)
    }

    pub(crate) fn is(&self, tag: &str) -> bool {
        self.tag() == Some(tag)
    }

    /// What follows `#TAG:`; empty for a tag without a value.
    pub(crate) fn value(&self) -> &str {
        self.text.split_once(':').map_or("", |(_, v)| v)
    }

    /// A URI line: not blank, not a tag or comment.
    pub(crate) fn is_uri(&self) -> bool {
        let t = self.text.trim();
        !t.is_empty() && !t.starts_with('#')
    }
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

/// Splits text into lines, keeping each terminator. `render(split(t)) == t` for any `t`.
pub(crate) fn split(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find('\n') {
            Some(i) => {
                let (line, eol) = match rest[..i].strip_suffix('\r') {
                    Some(l) => (l, Eol::CrLf),
                    None => (&rest[..i], Eol::Lf),
                };
                lines.push(Line::new(line, eol));
                rest = &rest[i + 1..];
            }
            None => {
                lines.push(Line::new(rest, Eol::None));
                rest = "";
            }
        }
    }
    lines
}

/// Concatenates lines. A line that lost its place at the end (something was added after
/// it) gets `eol`.
pub(crate) fn render<'a>(lines: impl Iterator<Item = &'a Line>, eol: Eol, out: &mut String) {
    let mut pending_none = false;
    for line in lines {
        if pending_none {
            out.push_str(eol.as_str());
        }
        out.push_str(&line.text);
        out.push_str(line.eol.as_str());
        pending_none = line.eol == Eol::None;
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
    if !tag.starts_with("#EXT") || tag.contains(['\r', '\n']) {
        return Err(crate::Error::new(format!(
            "{tag:?} is not a single playlist tag line (it must start with #EXT and hold no newline)"
        )));
    }
    Ok(())
}

/// Checks a URI an author writes into a URI line or a `URI="..."` attribute.
pub(crate) fn check_uri(uri: &str) -> crate::Result<()> {
    if uri.trim().is_empty() || uri.starts_with('#') || uri.contains(['\r', '\n', '"']) {
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
    fn tag_names() {
        assert_eq!(tag_name("#EXTM3U"), Some("EXTM3U"));
        assert_eq!(tag_name("#EXTINF:2.0,"), Some("EXTINF"));
        assert_eq!(tag_name("#EXT-X-GAP"), Some("EXT-X-GAP"));
        assert_eq!(tag_name("# a comment"), None);
        assert_eq!(tag_name("seg1.m4s"), None);
    }
}
