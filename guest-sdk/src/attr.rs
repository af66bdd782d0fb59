//! Attribute lists (RFC 8216bis 4.2): `NAME=value,NAME="quoted, value",...`.
//!
//! Values are kept as the raw text they had, quotes included, so a list that is parsed and
//! written back without edits is byte-identical, and an edit touches only the attribute it
//! names.

use crate::error::{Error, Result};

/// One tag's attribute list, in its original order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeList {
    attrs: Vec<(String, String)>,
}

impl AttributeList {
    /// Parses an attribute list. Lenient: a piece without `=` is kept as a name with an
    /// empty value, and commas inside quoted strings do not split.
    pub fn parse(text: &str) -> Self {
        let mut attrs = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (piece, tail) = split_unquoted_comma(rest);
            rest = tail;
            match piece.split_once('=') {
                Some((name, value)) => attrs.push((name.to_string(), value.to_string())),
                None => attrs.push((piece.to_string(), String::new())),
            }
        }
        AttributeList { attrs }
    }

    /// Builds a list from `(name, raw value)` pairs; values must already be in their
    /// written form (see [`quoted`], [`hex`]).
    pub fn from_raw(attrs: Vec<(String, String)>) -> Self {
        AttributeList { attrs }
    }

    /// The raw value of `name`, quotes included.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` without surrounding quotes.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).map(unquote)
    }

    /// The value of `name` as a decimal number.
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.get(name)?
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
    }

    /// The value of `name` as a decimal integer.
    pub fn get_u64(&self, name: &str) -> Option<u64> {
        self.get(name)?.trim().parse().ok()
    }

    /// Whether the enumerated value of `name` is `YES`.
    pub fn is_yes(&self, name: &str) -> bool {
        self.get(name) == Some("YES")
    }

    pub fn contains(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// Attribute names and raw values, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Sets `name` to a raw value: replaced in place when present, appended otherwise.
    pub fn set_raw(&mut self, name: &str, raw: impl Into<String>) {
        let raw = raw.into();
        match self.attrs.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = raw,
            None => self.attrs.push((name.to_string(), raw)),
        }
    }

    /// Sets `name` to a quoted string.
    pub fn set_quoted(&mut self, name: &str, value: &str) -> Result<()> {
        let q = quoted(value)?;
        self.set_raw(name, q);
        Ok(())
    }

    pub fn remove(&mut self, name: &str) {
        self.attrs.retain(|(n, _)| n != name);
    }

    /// The list as written in a tag.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, (name, value)) in self.attrs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(name);
            if !value.is_empty() {
                out.push('=');
                out.push_str(value);
            }
        }
        out
    }
}

fn split_unquoted_comma(text: &str) -> (&str, &str) {
    let mut in_quotes = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ',' if !in_quotes => return (&text[..i], &text[i + 1..]),
            _ => {}
        }
    }
    (text, "")
}

fn unquote(raw: &str) -> &str {
    raw.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw)
}

/// A quoted-string attribute value. RFC 8216bis has no escapes: a value holding `"`, CR or
/// LF cannot be written, so it is an error rather than a corrupted playlist.
pub fn quoted(value: &str) -> Result<String> {
    if value.contains(['"', '\r', '\n']) {
        return Err(Error::new(format!(
            "{value:?} cannot be a quoted-string attribute value (no '\"', CR or LF allowed)"
        )));
    }
    Ok(format!("\"{value}\""))
}

/// A hexadecimal-sequence attribute value: `0x` and upper-case digits, as `SCTE35-OUT`
/// carries a splice_info_section.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// Parses a hexadecimal-sequence (`0x…` or `0X…`, either case, an even or odd digit count).
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded;
    let digits = if digits.len() % 2 == 1 {
        padded = format!("0{digits}");
        padded.as_str()
    } else {
        digits
    };
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect()
}

/// Whether `name` is a valid attribute name (`[A-Z0-9-]+`).
pub fn is_attribute_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_identically() {
        for text in [
            "DURATION=0.50000,URI=\"part1016.m4s\",INDEPENDENT=YES",
            "BANDWIDTH=3000000,CODECS=\"avc1.42c01e,mp4a.40.2\",RESOLUTION=1280x720",
            "ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",SCTE35-OUT=0xFC30",
            "CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500",
        ] {
            assert_eq!(AttributeList::parse(text).render(), text);
        }
    }

    #[test]
    fn reads_values() {
        let a = AttributeList::parse(
            "BANDWIDTH=3000000,CODECS=\"avc1.42c01e,mp4a.40.2\",FRAME-RATE=30.000,X=YES",
        );
        assert_eq!(a.get("CODECS"), Some("avc1.42c01e,mp4a.40.2"));
        assert_eq!(a.raw("CODECS"), Some("\"avc1.42c01e,mp4a.40.2\""));
        assert_eq!(a.get_u64("BANDWIDTH"), Some(3_000_000));
        assert_eq!(a.get_f64("FRAME-RATE"), Some(30.0));
        assert!(a.is_yes("X"));
        assert_eq!(a.get("MISSING"), None);
    }

    #[test]
    fn edits_in_place() {
        let mut a = AttributeList::parse("DURATION=0.50000,URI=\"part1.m4s\",INDEPENDENT=YES");
        a.set_quoted("URI", "../slate/part1.m4s").unwrap();
        a.set_raw("GAP", "YES");
        assert_eq!(
            a.render(),
            "DURATION=0.50000,URI=\"../slate/part1.m4s\",INDEPENDENT=YES,GAP=YES"
        );
        assert!(a.set_quoted("URI", "a\"b").is_err());
    }

    #[test]
    fn hex_round_trip() {
        assert_eq!(hex(&[0xfc, 0x30, 0x11, 0x00]), "0xFC301100");
        assert_eq!(
            parse_hex("0xFC301100").unwrap(),
            vec![0xfc, 0x30, 0x11, 0x00]
        );
        assert_eq!(parse_hex("0xabc").unwrap(), vec![0x0a, 0xbc]);
        assert!(parse_hex("FC30").is_none());
        assert!(parse_hex("0xZZ").is_none());
    }
}
