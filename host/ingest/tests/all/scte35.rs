//! SCTE-35 through the TS demuxer, on cues encoded by threefive (tests/data/make_scte35_ts.py).

use std::process::Command;
use std::time::Duration;

use weir_ingest::parse_splice_info_section;
use weir_media::{CueEvent, CueKind, MediaEvent};

use crate::support::{read_data, split};
use crate::ts::{crc32, demux, demux_in_pieces, of_track, pid, TS};

const SCTE_PID: u16 = 0x1f0;

fn expected() -> serde_json::Value {
    serde_json::from_slice(&read_data("testsrc-scte35.json")).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn cues(events: &[MediaEvent]) -> Vec<CueEvent> {
    events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Cue(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn threefive_cues_land_on_the_video_timeline() {
    let meta = expected();
    let (events, stats) = demux(&read_data("testsrc-scte35.ts"));
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 1);
    let video = of_track(&samples, 0);
    assert_eq!(
        video.len(),
        90,
        "the SCTE-35 PID does not disturb the media"
    );
    let got = cues(&events);
    let want = meta["cues"].as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{stats:?}");
    assert_eq!(stats.scte35.cues as usize, want.len());
    for (cue, w) in got.iter().zip(want) {
        let kind = match w["kind"].as_str().unwrap() {
            "SpliceInsert" => CueKind::SpliceInsert,
            "TimeSignal" => CueKind::TimeSignal,
            _ => CueKind::SpliceNull,
        };
        assert_eq!(cue.kind, kind);
        assert_eq!(u64::from(cue.id), w["id"].as_u64().unwrap());
        assert_eq!(cue.out_of_network, w["out"].as_bool().unwrap());
        assert_eq!(
            cue.duration,
            w["duration_ms"].as_u64().map(Duration::from_millis)
        );
        assert_eq!(
            cue.segmentation_type.map(u64::from),
            w["segmentation_type"].as_u64()
        );
        // Byte for byte what threefive encoded.
        assert_eq!(&cue.section[..], &hex(w["section"].as_str().unwrap())[..]);
        // The splice time is the presentation time of the frame it was aimed at (for the
        // time_signal, through a pts_adjustment that wraps past 2^33).
        let at = w["frame"]
            .as_u64()
            .map(|f| video[f as usize].dts + i64::from(video[f as usize].cts_offset));
        assert_eq!(cue.pts, at, "{cue:?}");
    }
    // Each cue arrives before the frame it splices at.
    for (i, cue) in got.iter().enumerate() {
        let Some(pts) = cue.pts else { continue };
        let cue_at = events
            .iter()
            .position(|e| matches!(e, MediaEvent::Cue(c) if c == cue))
            .unwrap();
        let frame_at = events
            .iter()
            .position(|e| matches!(e, MediaEvent::Sample(s) if s.track == 0 && s.dts == pts))
            .unwrap();
        assert!(cue_at < frame_at, "cue {i}");
    }
}

#[test]
fn standalone_parser_returns_raw_pts() {
    for w in expected()["cues"].as_array().unwrap() {
        let section = hex(w["section"].as_str().unwrap());
        let cue = parse_splice_info_section(&section).unwrap();
        assert_eq!(u64::from(cue.id), w["id"].as_u64().unwrap());
        assert!(cue.pts.is_none_or(|p| (0..1 << 33).contains(&p)));
    }
}

/// threefive reads back what the demuxer reports (skipped when python3 + threefive are
/// missing).
#[test]
fn threefive_decodes_the_same_fields() {
    let probe = Command::new("python3")
        .args(["-c", "import threefive"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED: python3 with threefive not found (pip install threefive)");
        return;
    }
    let (events, _) = demux(&read_data("testsrc-scte35.ts"));
    for cue in cues(&events) {
        let hex: String = cue.section.iter().map(|b| format!("{b:02x}")).collect();
        let script = format!(
            "import threefive\n\
             c = threefive.Cue(bytes.fromhex('{hex}'))\n\
             c.decode()\n\
             cmd = c.command\n\
             adj = round(c.info_section.pts_adjustment * 90000)\n\
             pts = getattr(cmd, 'pts_time', None)\n\
             pts = None if pts is None else (round(pts * 90000) + adj) % (1 << 33)\n\
             dur = getattr(cmd, 'break_duration', None)\n\
             ev = getattr(cmd, 'splice_event_id', None)\n\
             out = getattr(cmd, 'out_of_network_indicator', None)\n\
             seg = [d for d in c.descriptors if d.tag == 2]\n\
             if seg:\n    ev = int(seg[0].segmentation_event_id, 16); dur = seg[0].segmentation_duration; st = seg[0].segmentation_type_id\n\
             else:\n    st = None\n\
             print(cmd.command_type, ev, out, pts, dur, st)\n"
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8(out.stdout).unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        let kind = match cue.kind {
            CueKind::SpliceNull => "0",
            CueKind::SpliceInsert => "5",
            CueKind::TimeSignal => "6",
        };
        assert_eq!(f[0], kind, "{line}");
        if cue.kind != CueKind::SpliceNull {
            assert_eq!(f[1], cue.id.to_string(), "{line}");
        }
        if cue.kind == CueKind::SpliceInsert {
            let out = if cue.out_of_network { "True" } else { "False" };
            assert_eq!(f[2], out, "{line}");
        }
        // Raw 33-bit pts_time + pts_adjustment; the demuxer's value is that, unwrapped.
        let raw = cue.pts.map(|p| (p & ((1 << 33) - 1)).to_string());
        assert_eq!(f[3], raw.as_deref().unwrap_or("None"), "{line}");
        let secs = cue.duration.map(|d| d.as_secs_f64());
        match secs {
            Some(s) => assert_eq!(f[4].parse::<f64>().unwrap(), s, "{line}"),
            None => assert_eq!(f[4], "None", "{line}"),
        }
        let st = cue.segmentation_type.map(|t| t.to_string());
        assert_eq!(f[5], st.as_deref().unwrap_or("None"), "{line}");
    }
}

/// Rewrites the SCTE-35 packets: `f` gets each section (pointer field stripped) and returns
/// the bytes to put back.
fn edit_sections(data: &[u8], f: impl Fn(usize, &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut n = 0;
    for p in data.chunks(TS) {
        if pid(p) != SCTE_PID {
            out.extend_from_slice(p);
            continue;
        }
        let len = 3 + (usize::from(p[6] & 0x0f) << 8 | usize::from(p[7]));
        let mut section = p[5..5 + len].to_vec();
        f(n, &mut section);
        n += 1;
        let mut packet = p[..5].to_vec();
        packet.extend_from_slice(&section);
        packet.resize(TS, 0xff);
        out.extend_from_slice(&packet[..TS]);
    }
    out
}

#[test]
fn damaged_sections_are_counted_and_the_rest_still_parse() {
    let data = read_data("testsrc-scte35.ts");
    let (reference, _) = demux(&data);
    let good = cues(&reference);

    // Cue 0: a flipped bit (bad CRC). Cue 1: section_length one byte short, CRC left as is.
    // Cue 2: section_length claims more than the packet holds, so the next section cuts it
    // short.
    let damaged = edit_sections(&data, |n, s| match n {
        0 => s[15] ^= 0x04,
        1 => s[2] -= 1,
        2 => s[2] = s[2].wrapping_add(200),
        _ => {}
    });
    let (events, stats) = demux(&damaged);
    assert_eq!(stats.scte35.crc, 2, "{stats:?}");
    // Cue 2's, and the byte cue 1 left behind (read as the start of a section too long).
    assert_eq!(stats.scte35.length, 2, "{stats:?}");
    assert_eq!(cues(&events), good[3..].to_vec());
    // The media is untouched.
    assert_eq!(split(&events), split(&reference));

    // A lying section_length with a recomputed CRC is a malformed command, not a panic.
    let lying = edit_sections(&data, |n, s| {
        if n == 0 {
            s.truncate(s.len() - 4 - 6);
            let len = s.len() + 4 - 3;
            s[2] = len as u8;
            let crc = crc32(s);
            s.extend_from_slice(&crc.to_be_bytes());
        }
    });
    let (events, stats) = demux(&lying);
    assert_eq!(stats.scte35.malformed, 1, "{stats:?}");
    assert_eq!(cues(&events), good[1..].to_vec());

    // Split anywhere, the cues are the same.
    let (events, _) = demux_in_pieces(&damaged, &[1]);
    assert_eq!(cues(&events), good[3..].to_vec());
}

#[test]
fn standalone_parser_rejects_damage() {
    let meta = expected();
    let section = hex(meta["cues"][0]["section"].as_str().unwrap());
    let mut bad = section.clone();
    bad[12] ^= 1;
    let e = parse_splice_info_section(&bad).unwrap_err();
    assert!(e.to_string().contains("CRC"), "{e}");
    let e = parse_splice_info_section(&section[..section.len() - 1]).unwrap_err();
    assert!(e.to_string().contains("section_length"), "{e}");
    assert!(parse_splice_info_section(&[]).is_err());
}
