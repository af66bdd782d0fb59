//! RTMP cue points: AMF data messages `onCuePoint` / `onAdCue` → [`CueEvent`].
//!
//! Encoders disagree on the shape, so this is best effort. Supported:
//!
//! - the handler name `onCuePoint` or `onAdCue` (any case), alone or after `@setDataFrame`,
//!   followed by an object (or ECMA array);
//! - the direction from the first of `name`, `cue`, `type`, `cueType`, `state` (at the top
//!   level, then inside `parameters`) that says so: `cue-out`, `out`, `start`, `splice-out`,
//!   `ad-start`, `break-start` leave the network; `cue-in`, `in`, `end`, `stop`, `splice-in`,
//!   `ad-end`, `break-end`, `return` come back. Values such as `event`/`navigation` are
//!   skipped. With no direction the message is ignored;
//! - `time` in seconds on the RTMP timestamp clock (else the time of the last media message),
//!   × 90 000 as [`CueEvent::pts`];
//! - `duration` in seconds (a number or a numeric string);
//! - `id`, `eventId`, `spliceEventId` or `cueId` as [`CueEvent::id`] (else 0).
//!
//! The result is a [`CueKind::SpliceInsert`] with an empty `section`. Anything else is
//! ignored with a debug log by the session.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::rml_amf0::{self, Amf0Value};
use weir_media::{CueEvent, CueKind};

/// AMF3 data messages start with a format byte, then AMF0 values.
const AMF3_DATA: u8 = 15;

/// Decodes one AMF data message payload into a cue, if it is a cue point this module knows.
/// `now_ms` is the RTMP timestamp of the latest media message, for cues without `time`.
pub(crate) fn from_data_message(
    type_id: u8,
    payload: &[u8],
    now_ms: Option<i64>,
) -> Option<CueEvent> {
    let mut bytes = payload;
    if type_id == AMF3_DATA {
        bytes = bytes.get(1..)?;
    }
    let values = rml_amf0::deserialize(&mut std::io::Cursor::new(bytes)).ok()?;
    from_values(&values, now_ms)
}

pub(crate) fn from_values(values: &[Amf0Value], now_ms: Option<i64>) -> Option<CueEvent> {
    let mut rest = values;
    if let [Amf0Value::Utf8String(s), tail @ ..] = rest {
        if s == "@setDataFrame" {
            rest = tail;
        }
    }
    let [Amf0Value::Utf8String(handler), tail @ ..] = rest else {
        return None;
    };
    let handler = handler.to_ascii_lowercase();
    if handler != "oncuepoint" && handler != "onadcue" {
        return None;
    }
    let top = tail.iter().find_map(|v| match v {
        Amf0Value::Object(o) => Some(o),
        _ => None,
    })?;
    let params = field(top, "parameters").and_then(|v| match v {
        Amf0Value::Object(o) => Some(o),
        _ => None,
    });
    let lookup = |key: &str| field(top, key).or_else(|| params.and_then(|p| field(p, key)));
    let out_of_network = ["name", "cue", "type", "cuetype", "state"]
        .iter()
        .flat_map(|k| [field(top, k), params.and_then(|p| field(p, k))])
        .flatten()
        .find_map(direction)?;
    let pts = match lookup("time").and_then(number) {
        Some(secs) if secs.is_finite() && secs >= 0.0 => Some((secs * 90_000.0).round() as i64),
        _ => now_ms.map(|ms| ms * 90),
    };
    let duration = lookup("duration")
        .and_then(number)
        .filter(|d| d.is_finite() && *d >= 0.0 && *d < 1e9)
        .map(Duration::from_secs_f64);
    let id = ["id", "eventid", "spliceeventid", "cueid"]
        .iter()
        .find_map(|k| lookup(k).and_then(number))
        .filter(|n| (0.0..=f64::from(u32::MAX)).contains(n))
        .map_or(0, |n| n as u32);
    Some(CueEvent {
        id,
        kind: CueKind::SpliceInsert,
        out_of_network,
        pts,
        duration,
        segmentation_type: None,
        section: Bytes::new(),
    })
}

/// A field by case-insensitive name.
fn field<'a>(o: &'a HashMap<String, Amf0Value>, key: &str) -> Option<&'a Amf0Value> {
    o.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn number(v: &Amf0Value) -> Option<f64> {
    match v {
        Amf0Value::Number(n) => Some(*n),
        Amf0Value::Utf8String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Some(true)` for a value that means "cue out", `Some(false)` for "cue in".
fn direction(v: &Amf0Value) -> Option<bool> {
    let Amf0Value::Utf8String(s) = v else {
        return None;
    };
    let word: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match word.as_str() {
        "cueout" | "out" | "start" | "spliceout" | "adstart" | "breakstart" => Some(true),
        "cuein" | "in" | "end" | "stop" | "splicein" | "adend" | "breakend" | "return" => {
            Some(false)
        }
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Amf0Value)]) -> Amf0Value {
        Amf0Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        )
    }

    fn s(v: &str) -> Amf0Value {
        Amf0Value::Utf8String(v.to_owned())
    }

    #[test]
    fn on_cue_point_with_parameters() {
        // The shape Wowza documents and OBS cue plugins send.
        let values = vec![
            s("onCuePoint"),
            obj(&[
                ("name", s("cue-out")),
                ("type", s("event")),
                ("time", Amf0Value::Number(12.5)),
                (
                    "parameters",
                    obj(&[("duration", s("30")), ("id", Amf0Value::Number(7.0))]),
                ),
            ]),
        ];
        let cue = from_values(&values, Some(99)).unwrap();
        assert_eq!(cue.kind, CueKind::SpliceInsert);
        assert!(cue.out_of_network);
        assert_eq!(cue.pts, Some(1_125_000));
        assert_eq!(cue.duration, Some(Duration::from_secs(30)));
        assert_eq!(cue.id, 7);
        assert!(cue.section.is_empty());
    }

    #[test]
    fn set_data_frame_on_ad_cue_in_without_time() {
        let values = vec![
            s("@setDataFrame"),
            s("onAdCue"),
            obj(&[
                ("type", s("navigation")),
                ("parameters", obj(&[("cue", s("CUE-IN"))])),
            ]),
        ];
        let cue = from_values(&values, Some(2000)).unwrap();
        assert!(!cue.out_of_network);
        assert_eq!(cue.pts, Some(180_000));
        assert_eq!((cue.duration, cue.id), (None, 0));
    }

    #[test]
    fn unknown_shapes_are_ignored() {
        assert!(from_values(&[s("onMetaData"), obj(&[])], None).is_none());
        assert!(from_values(&[s("onCuePoint"), obj(&[("name", s("chapter 3"))])], None).is_none());
        assert!(from_values(&[s("onCuePoint")], None).is_none());
        assert!(from_values(&[], None).is_none());
        assert!(from_data_message(18, &[0xff, 0x00], None).is_none());
        assert!(from_data_message(15, &[], None).is_none());
    }

    #[test]
    fn decodes_a_serialized_amf0_message() {
        let values = vec![
            s("onCuePoint"),
            obj(&[("name", s("out")), ("time", Amf0Value::Number(1.0))]),
        ];
        let bytes = rml_amf0::serialize(&values).unwrap();
        let cue = from_data_message(18, &bytes, None).unwrap();
        assert_eq!((cue.out_of_network, cue.pts), (true, Some(90_000)));
        let mut amf3 = vec![0];
        amf3.extend_from_slice(&bytes);
        assert_eq!(from_data_message(15, &amf3, None), Some(cue));
    }
}
