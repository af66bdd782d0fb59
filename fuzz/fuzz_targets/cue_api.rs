//! The cue API's JSON body (`weir_origin::parse_cue_request`, what
//! `POST /api/v1/streams/{key}/cues` accepts), then what the binary does with an accepted
//! one: a splice built from it must parse back with the same id, direction and duration (to
//! the 90 kHz tick), and a given section goes to the SCTE-35 parser.
//!
//! The first byte picks the input: raw bytes as the body (mode 0), or a well-formed body
//! built from the rest, so the checks past the JSON parser are reached at once: a section
//! (`{"scte35": base64}`, mode 1) or a splice with any duration and id (mode 2).
#![no_main]

use std::time::Duration;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use weir_ingest::parse_splice_info_section;
use weir_ingest::scte35::encode_splice_insert;
use weir_origin::{parse_cue_request, CueSpec, Error};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let body = match mode % 3 {
        0 => rest.to_vec(),
        1 => format!(
            r#"{{"scte35":"{}"}}"#,
            base64::engine::general_purpose::STANDARD.encode(rest)
        )
        .into_bytes(),
        _ => {
            let mut bytes = [0u8; 12];
            let n = rest.len().min(12);
            bytes[..n].copy_from_slice(&rest[..n]);
            let (f, i) = bytes.split_at(8);
            let (f, i): ([u8; 8], [u8; 4]) = (f.try_into().unwrap(), i.try_into().unwrap());
            let kind = if mode & 4 == 0 { "out" } else { "in" };
            // Display prints a plain decimal: every finite f64 is a JSON number.
            format!(
                r#"{{"type":"{kind}","duration":{},"id":{}}}"#,
                f64::from_le_bytes(f),
                u32::from_le_bytes(i)
            )
            .into_bytes()
        }
    };
    match parse_cue_request(&body) {
        Err(Error::BadRequest(_)) => {}
        Err(e) => panic!("not a 400: {e:?}"),
        Ok(CueSpec::Section(section)) => {
            let _ = parse_splice_info_section(&section);
        }
        Ok(CueSpec::Splice { out, duration, id }) => {
            if let Some(d) = duration {
                assert!(
                    d > Duration::ZERO && d <= Duration::from_secs(86_400),
                    "{d:?}"
                );
            }
            let id = id.unwrap_or(1);
            let section = encode_splice_insert(id, out, duration);
            let cue = parse_splice_info_section(&section)
                .unwrap_or_else(|e| panic!("built splice does not parse: {e} ({duration:?})"));
            assert_eq!((cue.id, cue.out_of_network), (id, out));
            match (duration, cue.duration) {
                (None, None) => {}
                (Some(want), Some(got)) => {
                    let tick = Duration::from_nanos(11_112);
                    let diff = if want > got { want - got } else { got - want };
                    assert!(diff <= tick, "{want:?} came back as {got:?}");
                }
                (want, got) => panic!("duration {want:?} came back as {got:?}"),
            }
        }
    }
});
