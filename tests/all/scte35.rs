//! SCTE-35 end to end: splices carried in an SRT contribution, and splices injected by an
//! operator through the cue API, come out as `EXT-X-DATERANGE` tags whose `SCTE35-*` bytes
//! threefive (PyPI, the reference SCTE-35 library) decodes to what was sent, dated on the
//! program-date-time of the frame they splice at.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use weir_e2e::*;

/// The capture with SCTE-35 on PID 0x1F0 (host/ingest/tests/data/README.md).
fn data(name: &str) -> PathBuf {
    repo_root().join("host/ingest/tests/data").join(name)
}

/// One video frame at 30 fps, in ms.
const FRAME_MS: f64 = 1000.0 / 30.0;

// ---------------------------------------------------------------------------------------
// Helpers

/// `2026-11-25T17:07:22.339Z` (or `+00:00`) → Unix ms.
fn iso_ms(s: &str) -> u64 {
    let s = s
        .strip_suffix('Z')
        .or_else(|| s.strip_suffix("+00:00"))
        .unwrap_or_else(|| panic!("date {s:?} is not UTC"));
    let (date, time) = s.split_once('T').expect("date T time");
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let ms: i64 = format!("{frac:0<3}")[..3].parse().unwrap();
    // Days from civil (H. Hinnant).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms).unwrap()
}

/// (PDT in ms, EXTINF in ms) of every segment in a media playlist, in order.
fn segments(text: &str) -> Vec<(u64, f64)> {
    let mut out = Vec::new();
    let mut pdt = None;
    for l in text.lines() {
        if let Some(d) = l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(iso_ms(d));
        } else if let Some(d) = l.strip_prefix("#EXTINF:") {
            let secs: f64 = d
                .trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let start = pdt.take().or_else(|| {
                out.last()
                    .map(|&(p, len): &(u64, f64)| p + len.round() as u64)
            });
            out.push((start.expect("segment without a date"), secs * 1000.0));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim_start_matches("0x").trim_start_matches("0X");
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// threefive's decoding of each section (its `Cue.get()`, as JSON).
fn threefive(sections: &[Vec<u8>]) -> Vec<Value> {
    const SCRIPT: &str = r#"
import json, sys, threefive
out = []
for h in sys.argv[1:]:
    cue = threefive.Cue(bytes.fromhex(h))
    if not cue.decode():
        raise SystemExit("threefive cannot decode " + h)
    out.append(cue.get())
print("THREEFIVE " + json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT])
        .args(sections.iter().map(|s| hex(s)))
        .stdin(Stdio::null())
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "threefive failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("THREEFIVE "))
        .expect("threefive printed nothing");
    serde_json::from_str(line).unwrap()
}

/// The splice_info_sections on `pid` of a transport stream, in order (one section per
/// packet, as a SCTE-35 PID carries them).
fn ts_sections(ts: &[u8], pid: u16) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in ts.chunks_exact(188) {
        assert_eq!(p[0], 0x47, "lost TS sync");
        let this = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if this != pid || p[1] & 0x40 == 0 {
            continue;
        }
        let afc = (p[3] >> 4) & 3;
        let mut off = 4;
        if afc & 2 != 0 {
            off += 1 + usize::from(p[4]);
        }
        off += 1 + usize::from(p[off]); // pointer_field
        let len = ((usize::from(p[off + 1]) & 0x0f) << 8) | usize::from(p[off + 2]);
        out.push(p[off..off + 3 + len].to_vec());
    }
    out
}

/// (PTS, keyframe) of each video packet, as ffprobe reads the file.
fn video_pts(file: &std::path::Path) -> Vec<(u64, bool)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "packet=pts,flags", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("running ffprobe");
    assert!(out.status.success(), "ffprobe failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (pts, flags) = l.split_once(',').unwrap_or((l, ""));
            (pts.trim().parse().unwrap(), flags.contains('K'))
        })
        .collect()
}

fn ffprobe_duration(file: &std::path::Path) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .expect("running ffprobe");
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// The splice time of a decoded cue in 90 kHz ticks: `pts_time + pts_adjustment`, mod 2^33.
fn splice_pts(decoded: &Value) -> Option<u64> {
    let pts_time = decoded["command"]["pts_time"].as_f64()?;
    let adjustment = decoded["info_section"]["pts_adjustment"]
        .as_f64()
        .unwrap_or(0.0);
    let ticks = (pts_time * 90_000.0).round() as u64 + (adjustment * 90_000.0).round() as u64;
    Some(ticks % (1 << 33))
}

/// Sends `ts` to an SRT listener with srt-live-transmit, 1316 bytes (7 TS packets) per SRT
/// message, paced at the file's own bitrate so that it arrives in real time.
fn srt_send_realtime(ts: &[u8], seconds: f64, url: &str) -> Proc {
    let child = Command::new("srt-live-transmit")
        .args(["-chunk:1316", "-loglevel:error", "file://con", url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning srt-live-transmit");
    let mut proc = Proc {
        child,
        name: "srt-live-transmit".into(),
    };
    let mut stdin = proc.child.stdin.take().unwrap();
    let bytes_per_s = ts.len() as f64 / seconds;
    let t0 = Instant::now();
    for (i, chunk) in ts.chunks(1316).enumerate() {
        let due = Duration::from_secs_f64((i * 1316) as f64 / bytes_per_s);
        if let Some(wait) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        stdin
            .write_all(chunk)
            .expect("writing to srt-live-transmit");
        stdin.flush().unwrap();
    }
    // Let the last messages through the 200 ms SRT latency before closing.
    std::thread::sleep(Duration::from_secs(1));
    drop(stdin);
    proc
}

/// Polls a playlist until `done` says yes, up to `timeout`; returns its last text.
fn poll_playlist(url: &str, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
    let end = Instant::now() + timeout;
    loop {
        let (code, body) = curl(url, &[]).unwrap();
        let text = String::from_utf8(body).unwrap();
        if code == 200 && done(&text) {
            return text;
        }
        if Instant::now() > end {
            panic!("{url}: not there within {timeout:?} (status {code}):\n{text}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn role_attribute(range: &BTreeMap<String, String>) -> (&'static str, Vec<u8>) {
    let found: Vec<_> = ["SCTE35-OUT", "SCTE35-IN", "SCTE35-CMD"]
        .into_iter()
        .filter_map(|k| range.get(k).map(|v| (k, unhex(v))))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one SCTE35-* attribute per range: {range:?}"
    );
    found.into_iter().next().unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn scte35_in_srt_contribution_becomes_dateranges() {
    let _serial = serial();
    if !require(&["ffprobe", "curl", "srt-live-transmit", "python3:threefive"]) {
        return;
    }
    let file = data("testsrc-scte35.ts");
    let ts = std::fs::read(&file).unwrap();
    let meta: Value =
        serde_json::from_slice(&std::fs::read(data("testsrc-scte35.json")).unwrap()).unwrap();
    let pid = meta["scte35_pid"].as_u64().unwrap() as u16;
    let cues = meta["cues"].as_array().unwrap();

    // What is sent: the sections on the SCTE-35 PID are those the JSON lists.
    let sent = ts_sections(&ts, pid);
    let listed: Vec<Vec<u8>> = cues
        .iter()
        .map(|c| unhex(c["section"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sent, listed,
        "the capture's PID {pid:#x} and the JSON disagree"
    );
    let reference = threefive(&sent);
    let frames = video_pts(&file);
    assert!(frames.len() >= 90 && frames[0].1, "ffprobe: {frames:?}");
    let first_pts = frames[0].0;

    let weir = Weir::start(&["--no-test-source"]).unwrap();
    let url = format!(
        "srt://{}?streamid=live/scte&latency=200",
        weir.srt.expect("srt listener")
    );
    let seconds = ffprobe_duration(&file);
    let mut sender = srt_send_realtime(&ts, seconds, &url);
    // srt-live-transmit may linger after its input ends; it is killed on drop.
    assert!(
        sender
            .wait_timeout(Duration::from_secs(2))
            .is_none_or(|s| s.success()),
        "srt-live-transmit failed"
    );
    drop(sender);

    let playlist = weir.url("/live/scte/src/index.m3u8");
    // Every cue listed, and the segment of the last one complete (the contribution has
    // ended: its last segment closes when weir declares the loss).
    let text = poll_playlist(&playlist, Duration::from_secs(15), |t| {
        dateranges(t).len() >= cues.len()
            && t.rsplit_once("#EXT-X-DATERANGE:")
                .is_some_and(|(_, after)| after.contains("#EXTINF:"))
    });
    eprintln!("{text}");
    parse_media_playlist(text.as_bytes()).unwrap();
    let ranges = dateranges(&text);
    assert_eq!(ranges.len(), cues.len(), "one DATERANGE per cue:\n{text}");
    let segs = segments(&text);
    let pdt0 = segs[0].0;
    // The frame the cue splices at, on the playlist's clock: PDT advances with media time
    // from the first keyframe, which opens the first segment.
    let date_of = |pts: u64| pdt0 as f64 + (pts - first_pts) as f64 / 90.0;

    let mut decoded_ranges = Vec::new();
    for (cue, reference) in cues.iter().zip(&reference) {
        let id = cue["id"].as_u64().unwrap();
        let section = unhex(cue["section"].as_str().unwrap());
        let range = ranges
            .iter()
            .find(|r| r.get("ID") == Some(&format!("splice-{id}")))
            .unwrap_or_else(|| panic!("no DATERANGE for cue {id}:\n{text}"));
        let (attr, bytes) = role_attribute(range);
        // The packager's roles (host/packager/src/cue.rs).
        let expected_attr = match (cue["kind"].as_str().unwrap(), cue["out"].as_bool().unwrap()) {
            ("SpliceNull", _) => "SCTE35-CMD",
            (_, true) => "SCTE35-OUT",
            (_, false) => "SCTE35-IN",
        };
        assert_eq!(attr, expected_attr, "cue {id}: {range:?}");
        assert_eq!(bytes, section, "cue {id}: the section's bytes changed");
        assert!(
            !range.contains_key("DURATION"),
            "cue {id}: no IN closes it, yet {range:?}"
        );
        match cue["duration_ms"].as_u64() {
            Some(ms) => {
                let planned: f64 = range["PLANNED-DURATION"].parse().unwrap();
                assert!(
                    (planned * 1000.0 - ms as f64).abs() < 1.0,
                    "cue {id}: PLANNED-DURATION {planned}, expected {ms} ms"
                );
            }
            None => assert!(!range.contains_key("PLANNED-DURATION"), "{range:?}"),
        }

        // Dated on the PDT of the frame it splices at (the JSON's frame; threefive's
        // pts_time + pts_adjustment gives that frame's PTS).
        let start = iso_ms(&range["START-DATE"]) as f64;
        match cue["frame"].as_u64() {
            Some(frame) => {
                let pts = splice_pts(reference).expect("a timed splice");
                assert_eq!(
                    pts, frames[frame as usize].0,
                    "cue {id}: threefive's splice time is not frame {frame}"
                );
                let expected = date_of(pts);
                eprintln!(
                    "cue {id}: START-DATE {} vs PDT of frame {frame} {:.0}: {:+.0} ms",
                    range["START-DATE"],
                    expected,
                    start - expected
                );
                assert!(
                    (start - expected).abs() <= FRAME_MS,
                    "cue {id}: START-DATE {} is {:.0} ms from the PDT of frame {frame}",
                    range["START-DATE"],
                    start - expected
                );
            }
            None => {
                // splice_null has no time: it lands at the live edge when it arrives, and
                // it was muxed just before frame 70 (make_scte35_ts.py: frame 80 − AHEAD).
                let expected = date_of(frames[70].0);
                assert!(
                    (start - expected).abs() <= 4.0 * FRAME_MS,
                    "cue {id} (no splice time): START-DATE {} is {:.0} ms from frame 70",
                    range["START-DATE"],
                    start - expected
                );
            }
        }
        // Written before the segment its date falls in.
        let tag = format!("ID=\"splice-{id}\"");
        let at = text.find(&tag).unwrap();
        let before = text[..at].matches("#EXTINF:").count();
        let (seg_start, seg_len) = segs[before];
        assert!(
            start >= seg_start as f64 && start < seg_start as f64 + seg_len,
            "cue {id} at {start} is written before segment {before} ({seg_start} + {seg_len} ms)"
        );
        decoded_ranges.push(bytes);
    }

    // threefive reads the playlist's bytes exactly as it reads the sections it wrote.
    let decoded = threefive(&decoded_ranges);
    assert_eq!(
        decoded, reference,
        "threefive decodes the DATERANGE bytes differently"
    );
    let out = &decoded[0];
    assert_eq!(out["command"]["name"], "Splice Insert");
    assert_eq!(out["command"]["splice_event_id"], 100);
    assert_eq!(out["command"]["out_of_network_indicator"], true);
    assert_eq!(out["command"]["break_duration"], 30.0);
    assert_eq!(decoded[1]["command"]["splice_event_id"], 101);
    assert_eq!(decoded[1]["command"]["out_of_network_indicator"], false);
    assert_eq!(decoded[2]["command"]["name"], "Time Signal");
    assert_eq!(decoded[2]["descriptors"][0]["segmentation_type_id"], 0x34);
    assert_eq!(decoded[2]["descriptors"][0]["segmentation_duration"], 20.0);
    assert_eq!(decoded[3]["command"]["name"], "Splice Null");

    // The splice_insert OUT opens the break before the IN.
    assert!(
        iso_ms(&ranges_by_id(&ranges, "splice-100")["START-DATE"])
            < iso_ms(&ranges_by_id(&ranges, "splice-101")["START-DATE"])
    );
    let mut weir = weir;
    assert!(weir.proc.is_running());
    assert!(
        !weir.log().iter().any(|l| l.contains("panicked")),
        "weir logged a panic"
    );
}

fn ranges_by_id<'a>(
    ranges: &'a [BTreeMap<String, String>],
    id: &str,
) -> &'a BTreeMap<String, String> {
    ranges
        .iter()
        .find(|r| r["ID"] == id)
        .unwrap_or_else(|| panic!("no DATERANGE {id}"))
}

const TOKEN: &str = "weir-e2e-operator-token-0123";

#[test]
fn cue_api_splice_shows_up_as_daterange_while_hlsjs_plays() {
    let _serial = serial();
    if !require_tools() || !require(&["python3:threefive"]) {
        return;
    }
    let mut weir = Weir::start(&["--api-token", TOKEN]).unwrap();
    let master = weir.url("/live/test/master.m3u8");
    let playlist = weir.url("/live/test/src/index.m3u8");
    let cues = weir.url("/api/v1/streams/test/cues");
    wait_for_200(&playlist, Duration::from_secs(20)).unwrap();
    let auth = format!("Authorization: Bearer {TOKEN}");

    // Refusals first.
    let out77 = r#"{"type":"out","duration":10,"id":77}"#;
    let (code, _) = curl_post(&cues, &[], out77).unwrap();
    assert_eq!(code, 401, "no token");
    let (code, _) = curl_post(
        &cues,
        &["Authorization: Bearer wrong-token-0123456789"],
        out77,
    )
    .unwrap();
    assert_eq!(code, 401, "wrong token");
    let (code, _) = curl_post(&cues, &[&format!("Authorization: Basic {TOKEN}")], out77).unwrap();
    assert_eq!(code, 401, "not a bearer token");
    let (code, _) =
        curl_post(&weir.url("/api/v1/streams/nosuchkey/cues"), &[&auth], out77).unwrap();
    assert_eq!(code, 404, "unknown stream key");
    for bad in [
        r#"{"type":"out","#,
        r#"{"type":"sideways"}"#,
        "{}",
        r#"{"scte35":"%%"}"#,
    ] {
        let (code, body) = curl_post(&cues, &[&auth], bad).unwrap();
        assert_eq!(code, 400, "{bad}: {}", String::from_utf8_lossy(&body));
    }
    let text = String::from_utf8(curl(&playlist, &[]).unwrap().1).unwrap();
    assert!(
        !text.contains("#EXT-X-DATERANGE"),
        "refused requests left a cue:\n{text}"
    );

    let player = Player::start("hls", &master, 14).unwrap();
    std::thread::sleep(Duration::from_secs(4));

    // OUT, 10 s break, id 77.
    let t_out = unix_ms();
    let (code, body) = curl_post(&cues, &[&auth], out77).unwrap();
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let reply: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(reply["id"], 77);
    let text = poll_playlist(&playlist, Duration::from_secs(5), |t| {
        dateranges(t)
            .iter()
            .any(|r| r["ID"] == "splice-77" && r.contains_key("SCTE35-OUT"))
    });
    let ranges = dateranges(&text);
    let out = ranges_by_id(&ranges, "splice-77");
    let (_, out_bytes) = role_attribute(out);
    assert_eq!(
        reply["scte35"].as_str(),
        Some(base64(&out_bytes).as_str()),
        "the playlist carries other bytes than the API reported"
    );
    assert_eq!(out["PLANNED-DURATION"].parse::<f64>().unwrap(), 10.0);
    let out_start = iso_ms(&out["START-DATE"]);
    assert!(
        out_start.abs_diff(t_out) < 2500,
        "the OUT is dated {} ms from when it was posted",
        out_start as i64 - t_out as i64
    );

    // IN, about 5 s later.
    std::thread::sleep(Duration::from_secs(5));
    let t_in = unix_ms();
    let (code, body) = curl_post(&cues, &[&auth], r#"{"type":"in","id":77}"#).unwrap();
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let in_reply: Value = serde_json::from_slice(&body).unwrap();
    let text = poll_playlist(&playlist, Duration::from_secs(5), |t| {
        dateranges(t)
            .iter()
            .any(|r| r["ID"] == "splice-77" && r.contains_key("SCTE35-IN"))
    });
    eprintln!("{text}");
    parse_media_playlist(text.as_bytes()).unwrap();
    let ranges = dateranges(&text);
    let tags: Vec<_> = ranges.iter().filter(|r| r["ID"] == "splice-77").collect();
    assert_eq!(tags.len(), 2, "an OUT and its IN: {tags:?}");
    let (out, closing) = (tags[0], tags[1]);
    assert_eq!(role_attribute(out).0, "SCTE35-OUT");
    let (attr, in_bytes) = role_attribute(closing);
    assert_eq!(attr, "SCTE35-IN");
    assert_eq!(
        in_reply["scte35"].as_str(),
        Some(base64(&in_bytes).as_str())
    );
    assert_eq!(
        closing["START-DATE"], out["START-DATE"],
        "the IN closes the OUT's range"
    );
    let duration: f64 = closing["DURATION"].parse().unwrap();
    let posted = (t_in - t_out) as f64 / 1000.0;
    assert!(
        (duration - posted).abs() < 1.0,
        "DURATION {duration} s, the IN was posted {posted:.2} s after the OUT"
    );

    let decoded = threefive(&[out_bytes, in_bytes]);
    let c = &decoded[0]["command"];
    assert_eq!(c["name"], "Splice Insert", "{c}");
    assert_eq!(c["splice_event_id"], 77);
    assert_eq!(c["out_of_network_indicator"], true);
    assert_eq!(c["splice_immediate_flag"], true);
    assert_eq!(c["duration_flag"], true);
    assert_eq!(c["break_duration"], 10.0);
    let c = &decoded[1]["command"];
    assert_eq!(c["name"], "Splice Insert", "{c}");
    assert_eq!(c["splice_event_id"], 77);
    assert_eq!(c["out_of_network_indicator"], false);

    // A complete section that threefive wrote (the capture's time_signal, a placement
    // opportunity start) goes through as is.
    let meta: Value =
        serde_json::from_slice(&std::fs::read(data("testsrc-scte35.json")).unwrap()).unwrap();
    let section = unhex(meta["cues"][2]["section"].as_str().unwrap());
    let (code, body) = curl_post(
        &cues,
        &[&auth],
        &format!(r#"{{"scte35":"{}"}}"#, base64(&section)),
    )
    .unwrap();
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    let text = poll_playlist(&playlist, Duration::from_secs(5), |t| {
        dateranges(t).iter().any(|r| r["ID"] == "splice-1207959560")
    });
    let ranges = dateranges(&text);
    let ts = ranges_by_id(&ranges, "splice-1207959560");
    assert_eq!(role_attribute(ts), ("SCTE35-OUT", section));
    assert_eq!(ts["PLANNED-DURATION"].parse::<f64>().unwrap(), 20.0);

    let r = player.join().unwrap();
    eprintln!("hls.js errors {:?}, nonfatal {:?}", r.errors, r.nonfatal);
    assert!(r.started, "hls.js never started: {:?}", r.errors);
    assert!(r.fatal.is_empty(), "hls.js fatal errors: {:?}", r.fatal);
    // An exception in hls.js (e.g. while it maps the date ranges) stops its playlist
    // loading without a fatal error event.
    assert!(
        !r.errors.iter().any(|e| e.starts_with("pageerror")),
        "hls.js threw: {:?}",
        r.errors
    );
    assert!(r.played >= 10.0, "hls.js played only {:.1}s", r.played);
    assert!(weir.proc.is_running());
    assert!(
        !weir.log().iter().any(|l| l.contains("panicked")),
        "weir logged a panic"
    );
}
