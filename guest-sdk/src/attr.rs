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
        AttributeList {
            attrs: pieces(text)
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        }
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
        self.get(name).and_then(parse_f64)
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
        let len = self
            .attrs
            .iter()
            .map(|(name, value)| name.len() + value.len() + 2)
            .sum();
        let mut out = String::with_capacity(len);
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
    // '"' and ',' are ASCII: a byte equal to either is that character, never part of one.
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b',' if !in_quotes => return (&text[..i], &text[i + 1..]),
            _ => {}
        }
    }
    (text, "")
}

/// The `(name, raw value)` pairs of an attribute list, as [`AttributeList::parse`] reads
/// them, without copying.
fn pieces(text: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (piece, tail) = split_unquoted_comma(rest);
        rest = tail;
        Some(piece.split_once('=').unwrap_or((piece, "")))
    })
}

/// `AttributeList::parse(text).get(name)`, without building the list.
pub(crate) fn find<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    pieces(text)
        .find(|(n, _)| *n == name)
        .map(|(_, value)| unquote(value))
}

/// A decimal attribute value, as [`AttributeList::get_f64`] reads it.
pub(crate) fn parse_f64(value: &str) -> Option<f64> {
    decimal(crate::lines::trim(value)).filter(|v| v.is_finite())
}

/// `text.parse::<f64>().ok()`, with a fast path for the plain decimals playlists carry
/// (`2.00000`, `0.5`, `4`): up to 15 digits, at most 22 of them after the point. Such a
/// number is `m / 10^k` with `m < 2^53` and `10^k` both exact doubles, so one division
/// gives the correctly rounded value, the same one `str::parse` returns.
pub(crate) fn decimal(text: &str) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let bytes = text.as_bytes();
    let mut mantissa: u64 = 0;
    let mut digits = 0;
    let mut point = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
                if digits > 15 {
                    return text.parse().ok();
                }
            }
            b'.' if point.is_none() && i > 0 && i + 1 < bytes.len() => point = Some(i),
            _ => return text.parse().ok(),
        }
    }
    if digits == 0 {
        return text.parse().ok();
    }
    let fraction = point.map_or(0, |p| bytes.len() - p - 1);
    match POW10.get(fraction) {
        // Up to 15 digits: below 10^15 < 2^53, exact.
        Some(scale) => Some(mantissa as f64 / scale),
        None => text.parse().ok(),
    }
}

fn unquote(raw: &str) -> &str {
    raw.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(raw)
}

/// A quoted-string attribute value. RFC 8216bis has no escapes: a value holding `"`, CR or
/// LF cannot be written, so it is an error rather than a corrupted playlist.
pub fn quoted(value: &str) -> Result<String> {
    if value.bytes().any(|b| matches!(b, b'"' | b'\r' | b'\n')) {
        return Err(Error::new(format!(
            "{value:?} cannot be a quoted-string attribute value (no '\"', CR or LF allowed)"
        )));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    out.push_str(value);
    out.push('"');
    Ok(out)
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
    fn decimals_parse_like_str_parse() {
        for text in [
            "2.00000",
            "0.5",
            "4",
            "1.96667",
            "0.03333",
            "30.000",
            "2.",
            ".5",
            "1e3",
            "-1.5",
            "+2",
            "0",
            "00.10",
            "123456789012345",
            "1234567890123456",
            "0.1234567890123456789012",
            "9007199254740993",
            "0.1",
            "0.2",
            "0.3",
            "6.006",
            "1.001",
            "",
            ".",
            "1.2.3",
            "a",
            "inf",
            "NaN",
            "1_0",
            " 1",
            "999999999999999.9",
            "0.0000000000000000000001",
            "0.00000000000000000000001",
        ] {
            let fast = decimal(text);
            let slow: Option<f64> = text.parse().ok();
            assert_eq!(fast.map(f64::to_bits), slow.map(f64::to_bits), "{text:?}");
        }
        // Every 3-place decimal up to 100, as EXTINF and DURATION carry them.
        for n in 0..100_000u32 {
            let text = format!("{}.{:03}", n / 1000, n % 1000);
            assert_eq!(decimal(&text), text.parse().ok(), "{text}");
            let text = format!("{}.{:05}", n / 1000, n % 1000 * 100);
            assert_eq!(decimal(&text), text.parse().ok(), "{text}");
        }
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
