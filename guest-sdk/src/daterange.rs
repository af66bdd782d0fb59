//! `EXT-X-DATERANGE` (RFC 8216bis 4.4.5.1): a builder for new tags, HLS Interstitials on
//! top of it, and a parsed view of existing ones.
//!
//! Attribute order follows weir's packager (`ID`, `CLASS`, `START-DATE`, `CUE`,
//! `END-DATE`, `DURATION`, `PLANNED-DURATION`, client `X-` attributes, `SCTE35-CMD`,
//! `SCTE35-OUT`, `SCTE35-IN`, `END-ON-NEXT`), so a plugin's tag for a cue is the same
//! line the packager would write.

use crate::attr::{self, AttributeList};
use crate::error::{Error, Result};
use crate::time;

/// The `CLASS` of an HLS Interstitial.
pub const INTERSTITIAL_CLASS: &str = "com.apple.hls.interstitial";

/// A client attribute value (`X-<NAME>`): RFC 8216bis allows quoted strings, hexadecimal
/// sequences and decimal numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientValue {
    String(String),
    Hex(Vec<u8>),
    Number(f64),
}

/// A new `EXT-X-DATERANGE`, written with [`DateRange::to_tag`].
///
/// ```
/// use weir_guest::DateRange;
///
/// let tag = DateRange::new("splice-999", 1_795_622_403_000)
///     .planned_duration_ms(30_000)
///     .scte35_out(&[0xFC, 0x30, 0x25])
///     .to_tag()?;
/// assert_eq!(
///     tag,
///     "#EXT-X-DATERANGE:ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",PLANNED-DURATION=30.000,SCTE35-OUT=0xFC3025"
/// );
/// # Ok::<(), weir_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DateRange {
    id: String,
    class: Option<String>,
    start_ms: u64,
    cue: Option<String>,
    end_ms: Option<u64>,
    duration_ms: Option<u64>,
    planned_duration_ms: Option<u64>,
    client: Vec<(String, ClientValue)>,
    scte35_cmd: Option<Vec<u8>>,
    scte35_out: Option<Vec<u8>>,
    scte35_in: Option<Vec<u8>>,
    end_on_next: bool,
}

impl DateRange {
    /// A range with its `ID` and `START-DATE` (Unix ms).
    pub fn new(id: impl Into<String>, start_ms: u64) -> Self {
        DateRange {
            id: id.into(),
            class: None,
            start_ms,
            cue: None,
            end_ms: None,
            duration_ms: None,
            planned_duration_ms: None,
            client: Vec::new(),
            scte35_cmd: None,
            scte35_out: None,
            scte35_in: None,
            end_on_next: false,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// `CLASS`.
    pub fn class(mut self, class: impl Into<String>) -> Self {
        self.class = Some(class.into());
        self
    }

    /// `CUE` (an enumerated-string-list: `PRE`, `POST`, `ONCE`).
    pub fn cue(mut self, cue: impl Into<String>) -> Self {
        self.cue = Some(cue.into());
        self
    }

    /// `END-DATE` (Unix ms).
    pub fn end_ms(mut self, end_ms: u64) -> Self {
        self.end_ms = Some(end_ms);
        self
    }

    /// `DURATION`: the actual length.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    /// `PLANNED-DURATION`: the expected length, while the actual one is unknown.
    pub fn planned_duration_ms(mut self, ms: u64) -> Self {
        self.planned_duration_ms = Some(ms);
        self
    }

    /// `SCTE35-CMD`: a splice_info_section that is neither an OUT nor an IN.
    pub fn scte35_cmd(mut self, section: &[u8]) -> Self {
        self.scte35_cmd = Some(section.to_vec());
        self
    }

    /// `SCTE35-OUT`.
    pub fn scte35_out(mut self, section: &[u8]) -> Self {
        self.scte35_out = Some(section.to_vec());
        self
    }

    /// `SCTE35-IN`.
    pub fn scte35_in(mut self, section: &[u8]) -> Self {
        self.scte35_in = Some(section.to_vec());
        self
    }

    /// `END-ON-NEXT=YES` (needs a `CLASS`, and excludes `DURATION` and `END-DATE`).
    pub fn end_on_next(mut self) -> Self {
        self.end_on_next = true;
        self
    }

    /// A client attribute. `name` may be given with or without its `X-` prefix.
    pub fn client(mut self, name: &str, value: ClientValue) -> Self {
        let name = if name.starts_with("X-") {
            name.to_string()
        } else {
            format!("X-{name}")
        };
        match self.client.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => *v = value,
            None => self.client.push((name, value)),
        }
        self
    }

    /// A quoted-string client attribute.
    pub fn client_string(self, name: &str, value: impl Into<String>) -> Self {
        self.client(name, ClientValue::String(value.into()))
    }

    /// A decimal client attribute.
    pub fn client_number(self, name: &str, value: f64) -> Self {
        self.client(name, ClientValue::Number(value))
    }

    /// A hexadecimal client attribute.
    pub fn client_hex(self, name: &str, value: &[u8]) -> Self {
        self.client(name, ClientValue::Hex(value.to_vec()))
    }

    /// The attribute list, checked against RFC 8216bis 4.4.5.1.
    pub fn attributes(&self) -> Result<AttributeList> {
        let fail = |why: &str| Error::new(format!("EXT-X-DATERANGE {:?}: {why}", self.id));
        if self.id.is_empty() {
            return Err(fail("ID is empty"));
        }
        if self.end_on_next && self.class.is_none() {
            return Err(fail("END-ON-NEXT needs a CLASS"));
        }
        if self.end_on_next && (self.duration_ms.is_some() || self.end_ms.is_some()) {
            return Err(fail("END-ON-NEXT excludes DURATION and END-DATE"));
        }
        if self.end_ms.is_some_and(|e| e < self.start_ms) {
            return Err(fail("END-DATE is before START-DATE"));
        }
        if let (Some(end), Some(d)) = (self.end_ms, self.duration_ms) {
            if end - self.start_ms != d {
                return Err(fail("END-DATE and DURATION disagree"));
            }
        }
        let mut a: Vec<(String, String)> = Vec::new();
        let mut push = |name: &str, value: String| a.push((name.to_string(), value));
        push("ID", attr::quoted(&self.id)?);
        if let Some(class) = &self.class {
            push("CLASS", attr::quoted(class)?);
        }
        push(
            "START-DATE",
            attr::quoted(&time::format_iso8601(self.start_ms))?,
        );
        if let Some(cue) = &self.cue {
            push("CUE", attr::quoted(cue)?);
        }
        if let Some(end) = self.end_ms {
            push("END-DATE", attr::quoted(&time::format_iso8601(end))?);
        }
        if let Some(d) = self.duration_ms {
            push("DURATION", time::format_secs(d));
        }
        if let Some(d) = self.planned_duration_ms {
            push("PLANNED-DURATION", time::format_secs(d));
        }
        for (name, value) in &self.client {
            if !name.starts_with("X-") || !attr::is_attribute_name(name) {
                return Err(fail(&format!(
                    "{name:?} is not a client attribute name (X- then A-Z, 0-9, -)"
                )));
            }
            let value = match value {
                ClientValue::String(s) => attr::quoted(s)?,
                ClientValue::Hex(bytes) => attr::hex(bytes),
                ClientValue::Number(n) if n.is_finite() => format_number(*n),
                ClientValue::Number(_) => return Err(fail(&format!("{name} is not finite"))),
            };
            push(name, value);
        }
        for (name, section) in [
            ("SCTE35-CMD", &self.scte35_cmd),
            ("SCTE35-OUT", &self.scte35_out),
            ("SCTE35-IN", &self.scte35_in),
        ] {
            if let Some(section) = section {
                if section.is_empty() {
                    return Err(fail(&format!("{name} is empty")));
                }
                push(name, attr::hex(section));
            }
        }
        if self.end_on_next {
            push("END-ON-NEXT", "YES".to_string());
        }
        Ok(AttributeList::from_raw(a))
    }

    /// The tag line, `#EXT-X-DATERANGE:...` (no newline).
    pub fn to_tag(&self) -> Result<String> {
        Ok(format!("#EXT-X-DATERANGE:{}", self.attributes()?.render()))
    }
}

/// A decimal-floating-point value: integers without a fraction, others with up to three
/// places and no trailing zeros (`10`, `12.5`, `0.033`).
pub fn format_number(n: f64) -> String {
    let ms = (n * 1000.0).round();
    if ms == (n.round() * 1000.0) {
        format!("{}", n.round() as i64)
    } else {
        let s = format!("{:.3}", ms / 1000.0);
        s.trim_end_matches('0').to_string()
    }
}

/// Where an interstitial's media comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asset {
    /// `X-ASSET-URI`: one asset's playlist.
    Uri(String),
    /// `X-ASSET-LIST`: a JSON asset list, fetched when the player reaches the break; weir
    /// answers it with the plugin's `resolve-asset-list`.
    List(String),
}

/// An HLS Interstitial (`CLASS="com.apple.hls.interstitial"`), as hls.js 1.6 and AVPlayer
/// schedule them. Keep `START-DATE` inside the playlist's dates: hls.js anchors the event
/// to the segment holding that date.
///
/// ```
/// use weir_guest::{Asset, Interstitial};
///
/// let tag = Interstitial::new("ad-7", 1_795_622_403_000, Asset::List("../asset-list/7.json".into()))
///     .duration_ms(30_000)
///     .resume_offset_ms(30_000)
///     .restrict(true, true)
///     .to_tag()?;
/// assert_eq!(
///     tag,
///     "#EXT-X-DATERANGE:ID=\"ad-7\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T16:00:03.000Z\",\
///      DURATION=30.000,X-ASSET-LIST=\"../asset-list/7.json\",X-RESUME-OFFSET=30,X-RESTRICT=\"SKIP,JUMP\""
/// );
/// # Ok::<(), weir_guest::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Interstitial {
    range: DateRange,
    asset: Asset,
    resume_offset_ms: Option<u64>,
    playout_limit_ms: Option<u64>,
    restrict: (bool, bool),
    snap: (bool, bool),
    extra: Vec<(String, ClientValue)>,
}

impl Interstitial {
    pub fn new(id: impl Into<String>, start_ms: u64, asset: Asset) -> Self {
        Interstitial {
            range: DateRange::new(id, start_ms).class(INTERSTITIAL_CLASS),
            asset,
            resume_offset_ms: None,
            playout_limit_ms: None,
            restrict: (false, false),
            snap: (false, false),
            extra: Vec::new(),
        }
    }

    /// `DURATION` of the primary content the interstitial replaces.
    pub fn duration_ms(mut self, ms: u64) -> Self {
        self.range = self.range.duration_ms(ms);
        self
    }

    /// `PLANNED-DURATION`.
    pub fn planned_duration_ms(mut self, ms: u64) -> Self {
        self.range = self.range.planned_duration_ms(ms);
        self
    }

    /// `X-RESUME-OFFSET`: where primary playback resumes, relative to `START-DATE` (0 for
    /// an insertion that pauses live content; the break length to skip over it).
    pub fn resume_offset_ms(mut self, ms: u64) -> Self {
        self.resume_offset_ms = Some(ms);
        self
    }

    /// `X-PLAYOUT-LIMIT`: the most of the asset list to play.
    pub fn playout_limit_ms(mut self, ms: u64) -> Self {
        self.playout_limit_ms = Some(ms);
        self
    }

    /// `X-RESTRICT`: forbid skipping (`SKIP`) and/or seeking past (`JUMP`) the break.
    pub fn restrict(mut self, skip: bool, jump: bool) -> Self {
        self.restrict = (skip, jump);
        self
    }

    /// `X-SNAP`: snap the break's start (`OUT`) and/or end (`IN`) to segment boundaries.
    pub fn snap(mut self, out: bool, r#in: bool) -> Self {
        self.snap = (out, r#in);
        self
    }

    /// `CUE` (`PRE`, `POST`, `ONCE`, comma-separated).
    pub fn cue(mut self, cue: impl Into<String>) -> Self {
        self.range = self.range.cue(cue);
        self
    }

    /// Any other client attribute (e.g. `X-TIMELINE-OCCUPIES`, `X-CONTENT-MAY-VARY`).
    pub fn client(mut self, name: &str, value: ClientValue) -> Self {
        self.extra.push((name.to_string(), value));
        self
    }

    /// The underlying date range, all attributes set.
    pub fn to_daterange(&self) -> DateRange {
        let mut r = self.range.clone();
        r = match &self.asset {
            Asset::Uri(uri) => r.client_string("X-ASSET-URI", uri.clone()),
            Asset::List(uri) => r.client_string("X-ASSET-LIST", uri.clone()),
        };
        if let Some(ms) = self.resume_offset_ms {
            r = r.client_number("X-RESUME-OFFSET", ms as f64 / 1000.0);
        }
        if let Some(ms) = self.playout_limit_ms {
            r = r.client_number("X-PLAYOUT-LIMIT", ms as f64 / 1000.0);
        }
        let list = |pairs: [(bool, &str); 2]| {
            pairs
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, s)| *s)
                .collect::<Vec<_>>()
                .join(",")
        };
        if self.restrict != (false, false) {
            r = r.client_string(
                "X-RESTRICT",
                list([(self.restrict.0, "SKIP"), (self.restrict.1, "JUMP")]),
            );
        }
        if self.snap != (false, false) {
            r = r.client_string("X-SNAP", list([(self.snap.0, "OUT"), (self.snap.1, "IN")]));
        }
        for (name, value) in &self.extra {
            r = r.client(name, value.clone());
        }
        r
    }

    /// The tag line.
    pub fn to_tag(&self) -> Result<String> {
        self.to_daterange().to_tag()
    }
}

/// An `EXT-X-DATERANGE` read from a playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct DateRangeTag {
    pub attributes: AttributeList,
}

impl DateRangeTag {
    /// Parses the attribute list (what follows `#EXT-X-DATERANGE:`).
    pub fn parse(list: &str) -> Self {
        DateRangeTag {
            attributes: AttributeList::parse(list),
        }
    }

    pub fn id(&self) -> Option<&str> {
        self.attributes.get("ID")
    }

    pub fn class(&self) -> Option<&str> {
        self.attributes.get("CLASS")
    }

    /// `START-DATE` as Unix ms.
    pub fn start_ms(&self) -> Option<u64> {
        self.attributes
            .get("START-DATE")
            .and_then(|d| time::parse_iso8601(d).ok())
    }

    /// `DURATION` in ms.
    pub fn duration_ms(&self) -> Option<u64> {
        self.attributes.get_f64("DURATION").map(time::secs_to_ms)
    }

    /// `PLANNED-DURATION` in ms.
    pub fn planned_duration_ms(&self) -> Option<u64> {
        self.attributes
            .get_f64("PLANNED-DURATION")
            .map(time::secs_to_ms)
    }

    pub fn is_interstitial(&self) -> bool {
        self.class() == Some(INTERSTITIAL_CLASS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_795_622_403_000;

    #[test]
    fn matches_the_packagers_scte35_lines() {
        // The exact lines of host/packager/tests/data/golden/media_dateranges.m3u8.
        let out = DateRange::new("splice-999", T)
            .planned_duration_ms(30_000)
            .scte35_out(&attr::parse_hex("0xFC30250005000003E77FEF").unwrap());
        assert_eq!(out.to_tag().unwrap(), "#EXT-X-DATERANGE:ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",PLANNED-DURATION=30.000,SCTE35-OUT=0xFC30250005000003E77FEF");
        let back = DateRange::new("splice-999", T)
            .duration_ms(4533)
            .scte35_in(&attr::parse_hex("0xFC30200005000003E77F4F").unwrap());
        assert_eq!(back.to_tag().unwrap(), "#EXT-X-DATERANGE:ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",DURATION=4.533,SCTE35-IN=0xFC30200005000003E77F4F");
    }

    #[test]
    fn client_attributes_are_quoted_by_type() {
        let tag = DateRange::new("x", T)
            .class("com.example")
            .client_string("COM-EXAMPLE-AD-ID", "XYZ123")
            .client_number("X-COM-EXAMPLE-N", 2.5)
            .client_hex("X-COM-EXAMPLE-H", &[1, 2])
            .end_on_next()
            .to_tag()
            .unwrap();
        assert_eq!(tag, "#EXT-X-DATERANGE:ID=\"x\",CLASS=\"com.example\",START-DATE=\"2026-11-25T16:00:03.000Z\",X-COM-EXAMPLE-AD-ID=\"XYZ123\",X-COM-EXAMPLE-N=2.5,X-COM-EXAMPLE-H=0x0102,END-ON-NEXT=YES");
    }

    #[test]
    fn refuses_what_the_rfc_forbids() {
        assert!(DateRange::new("", T).to_tag().is_err());
        assert!(DateRange::new("a", T).end_on_next().to_tag().is_err());
        assert!(DateRange::new("a", T)
            .class("c")
            .end_on_next()
            .duration_ms(1)
            .to_tag()
            .is_err());
        assert!(DateRange::new("a\"b", T).to_tag().is_err());
        assert!(DateRange::new("a", T)
            .client_string("x-lower", "v")
            .to_tag()
            .is_err());
        assert!(DateRange::new("a", T)
            .client_string("X-A", "quote\"")
            .to_tag()
            .is_err());
        assert!(DateRange::new("a", T).end_ms(T - 1).to_tag().is_err());
        assert!(DateRange::new("a", T)
            .end_ms(T + 5)
            .duration_ms(4)
            .to_tag()
            .is_err());
        assert!(DateRange::new("a", T)
            .end_ms(T + 5)
            .duration_ms(5)
            .to_tag()
            .is_ok());
    }

    #[test]
    fn interstitial_variants() {
        let tag = Interstitial::new("ad-1", T, Asset::Uri("/ads/a.m3u8".into()))
            .resume_offset_ms(0)
            .snap(true, true)
            .playout_limit_ms(15_500)
            .cue("ONCE")
            .to_tag()
            .unwrap();
        assert_eq!(tag, "#EXT-X-DATERANGE:ID=\"ad-1\",CLASS=\"com.apple.hls.interstitial\",START-DATE=\"2026-11-25T16:00:03.000Z\",CUE=\"ONCE\",X-ASSET-URI=\"/ads/a.m3u8\",X-RESUME-OFFSET=0,X-PLAYOUT-LIMIT=15.5,X-SNAP=\"OUT,IN\"");
        let parsed = DateRangeTag::parse(tag.strip_prefix("#EXT-X-DATERANGE:").unwrap());
        assert!(parsed.is_interstitial());
        assert_eq!(parsed.start_ms(), Some(T));
        assert_eq!(parsed.id(), Some("ad-1"));
    }

    #[test]
    fn numbers() {
        assert_eq!(format_number(10.0), "10");
        assert_eq!(format_number(12.5), "12.5");
        assert_eq!(format_number(0.0333), "0.033");
        assert_eq!(format_number(0.0), "0");
    }
}
