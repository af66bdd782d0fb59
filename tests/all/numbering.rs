//! Media sequence and part numbers never go back across a restart, even when the host's
//! clock stepped back (docs/design/003): with `server.state_dir`, weir starts above the
//! reservation the last run left, so no segment or part name is ever served twice (they are
//! `immutable`: a CDN would serve the old media under a repeated name).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use weir_e2e::*;

const PLAYLIST: &str = "/live/test/src/index.m3u8";

/// An hour back, in `WEIR_CLOCK_OFFSET_MS`'s terms.
const HOUR_BACK: &str = "-3600000";

/// What one run served, as its newest playlist shows it.
struct Served {
    media_sequence: u64,
    /// The msn of the last segment listed (complete or in parts).
    max_msn: u64,
    /// Every part number listed, the preload hint's included.
    parts: BTreeSet<u64>,
    /// Every segment and part URI listed.
    names: BTreeSet<String>,
}

fn served(text: &[u8]) -> Served {
    let (media_sequence, segments) = live_edge(text).unwrap();
    let text = String::from_utf8_lossy(text);
    let mut names = BTreeSet::new();
    let mut parts = BTreeSet::new();
    for line in text.lines() {
        if let Some(uri) = line
            .split("URI=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        {
            if let Some(n) = uri
                .strip_prefix("part")
                .and_then(|s| s.strip_suffix(".m4s"))
            {
                parts.insert(n.parse().unwrap());
                names.insert(uri.to_owned());
            }
        } else if line.starts_with("seg") {
            names.insert(line.to_owned());
        }
    }
    assert!(!parts.is_empty(), "no parts listed:\n{text}");
    Served {
        media_sequence,
        max_msn: media_sequence + segments as u64,
        parts,
        names,
    }
}

/// Starts weir (the clip test source), waits for its first playlist and a little more, and
/// returns what it served just before it is killed (SIGKILL: no chance to write anything).
fn run(extra: &[&str], env: &[(&str, &str)], play_for: Duration) -> Served {
    let weir = Weir::start_with_env(extra, env).unwrap();
    wait_for_200(&weir.url(PLAYLIST), Duration::from_secs(20)).unwrap();
    std::thread::sleep(play_for);
    let (code, text) = curl(&weir.url(PLAYLIST), &[]).unwrap();
    assert_eq!(code, 200);
    let s = served(&text);
    drop(weir);
    s
}

#[test]
fn a_restart_with_the_clock_an_hour_back_never_reuses_a_name() {
    let _serial = serial();
    if !require(&["curl"]) {
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let state_dir = state.path().to_str().unwrap();
    let args = ["--state-dir", state_dir];

    // The clock alone: an hour back, the numbers are far below the first run's. This is
    // what the state directory is for (and shows the override steps the clock).
    let first = run(&args, &[], Duration::from_secs(5));
    let clock_only = run(&[], &[("WEIR_CLOCK_OFFSET_MS", HOUR_BACK)], Duration::ZERO);
    assert!(
        clock_only.media_sequence < first.media_sequence,
        "the clock override did not step the numbering back: {} then {}",
        first.media_sequence,
        clock_only.media_sequence
    );
    assert!(
        state
            .path()
            .join("numbering")
            .join("test.src.json")
            .is_file(),
        "no state file for the test stream"
    );

    // With the state directory: above everything the first run served.
    let second = run(
        &args,
        &[("WEIR_CLOCK_OFFSET_MS", HOUR_BACK)],
        Duration::from_secs(3),
    );
    eprintln!(
        "first run: msn {}..={}, parts {:?}..={:?}; clock only an hour back: msn {}; \
         restarted with the state dir an hour back: msn {}..={}, parts {:?}..={:?}",
        first.media_sequence,
        first.max_msn,
        first.parts.first(),
        first.parts.last(),
        clock_only.media_sequence,
        second.media_sequence,
        second.max_msn,
        second.parts.first(),
        second.parts.last()
    );
    assert!(
        second.media_sequence > first.max_msn,
        "msn {} after a restart, the last run reached {}",
        second.media_sequence,
        first.max_msn
    );
    assert!(
        second.parts.first() > first.parts.last(),
        "part {:?} after a restart, the last run reached {:?}",
        second.parts.first(),
        first.parts.last()
    );
    let repeated: Vec<&String> = first.names.intersection(&second.names).collect();
    assert!(repeated.is_empty(), "names served twice: {repeated:?}");

    // And again, the clock still an hour back: the second run's reservation holds too.
    let third = run(
        &args,
        &[("WEIR_CLOCK_OFFSET_MS", HOUR_BACK)],
        Duration::ZERO,
    );
    assert!(third.media_sequence > second.max_msn);
    assert!(third.parts.first() > second.parts.last());
}

#[test]
fn an_unwritable_state_dir_stops_startup_with_the_key_named() {
    let _serial = serial();
    if !require(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the directory should be: unwritable even for root.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let out = Command::new(weir_bin())
        .args(["serve", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
        .args([
            "--srt",
            "127.0.0.1:0",
            "--whip-udp",
            "127.0.0.1:0",
            "--state-dir",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "weir started: {stderr}");
    assert!(
        stderr.contains("server.state_dir") && stderr.contains("not-a-dir"),
        "the error does not name the key and the path: {stderr}"
    );
}

/// Every media URI a playlist lists: the init segments, segments, parts and the preload
/// hint, relative to the playlist.
fn media_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines() {
        if line.starts_with("#EXT-X-MAP:")
            || line.starts_with("#EXT-X-PART:")
            || line.starts_with("#EXT-X-PRELOAD-HINT:")
        {
            if let Some(uri) = line
                .split("URI=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
            {
                uris.push(uri.to_owned());
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            uris.push(line.to_owned());
        }
    }
    uris
}

/// For `seconds`, reads the playlist and every media object it lists (the hinted part
/// too: the request waits for it), and records each object's bytes by path. An object
/// served twice with different bytes fails the test, as does one that was served before
/// (`earlier`) and answers 200 with other bytes now.
fn serve_and_record(
    weir: &Weir,
    playlist: &str,
    seconds: u64,
    earlier: &BTreeMap<String, Vec<u8>>,
    record: &mut BTreeMap<String, Vec<u8>>,
) {
    let dir = playlist.rsplit_once('/').unwrap().0;
    let end = std::time::Instant::now() + Duration::from_secs(seconds);
    while std::time::Instant::now() < end {
        let (code, text) = curl(&weir.url(playlist), &[]).unwrap();
        if code != 200 {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        }
        for uri in media_uris(&String::from_utf8_lossy(&text)) {
            let path = format!("{dir}/{uri}");
            if record.contains_key(&path) && !uri.starts_with("init") {
                continue;
            }
            let (code, body) = curl(&weir.url(&path), &[]).unwrap();
            if code != 200 {
                continue;
            }
            if let Some(before) = earlier.get(&path) {
                assert!(
                    *before == body,
                    "{path} answered other bytes after the restart ({} bytes, was {})",
                    body.len(),
                    before.len()
                );
            }
            if let Some(seen) = record.get(&path) {
                assert!(*seen == body, "{path} changed within one run");
            }
            record.insert(path, body);
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// Every URL a weir served before it was killed either answers the same bytes after the
/// restart, or none (404/410): a CDN in front that cached it can never mix two runs' media
/// under one name. The part in progress at the kill is asked for as the kill happens.
/// Twice: the built-in clip restarted at once with the clock's numbering alone, and an RTMP
/// publisher that comes back at another picture size after a restart an hour back on the
/// clock, with `server.state_dir`.
#[test]
fn no_url_is_served_with_other_bytes_after_a_restart() {
    let _serial = serial();
    if !require(&["curl", "ffmpeg"]) {
        return;
    }
    // 1. The clip, the clock's numbering.
    let playlist = "/live/test/src/index.m3u8";
    let mut first = BTreeMap::new();
    let weir = Weir::start(&[]).unwrap();
    wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
    serve_and_record(&weir, playlist, 6, &BTreeMap::new(), &mut first);
    let in_flight = hinted_part_request(&weir, playlist);
    std::thread::sleep(Duration::from_millis(100));
    drop(weir);
    if let Some((path, body)) = in_flight.join().unwrap() {
        first.insert(path, body);
    }
    let weir = Weir::start(&[]).unwrap();
    wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
    let mut second = BTreeMap::new();
    serve_and_record(&weir, playlist, 6, &first, &mut second);
    recheck(&weir, &first);
    drop(weir);
    eprintln!(
        "clip: {} objects before the restart, {} after, none changed",
        first.len(),
        second.len()
    );
    assert!(first.len() >= 12 && second.len() >= 12);

    // 2. A publisher back at another size, after a restart with the clock an hour back.
    let state = tempfile::tempdir().unwrap();
    let args = [
        "--state-dir",
        state.path().to_str().unwrap(),
        "--no-test-source",
    ];
    let playlist = "/live/cam/src/index.m3u8";
    let mut first = BTreeMap::new();
    let weir = Weir::start(&args).unwrap();
    let publisher =
        ffmpeg_publish_preset(&weir.rtmp_url("cam"), 30, "640x360", 30, "ultrafast").unwrap();
    wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
    serve_and_record(&weir, playlist, 6, &BTreeMap::new(), &mut first);
    let in_flight = hinted_part_request(&weir, playlist);
    std::thread::sleep(Duration::from_millis(100));
    drop(weir);
    drop(publisher);
    if let Some((path, body)) = in_flight.join().unwrap() {
        first.insert(path, body);
    }
    let weir = Weir::start_with_env(&args, &[("WEIR_CLOCK_OFFSET_MS", HOUR_BACK)]).unwrap();
    let publisher =
        ffmpeg_publish_preset(&weir.rtmp_url("cam"), 30, "1280x720", 30, "ultrafast").unwrap();
    wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
    let mut second = BTreeMap::new();
    serve_and_record(&weir, playlist, 6, &first, &mut second);
    recheck(&weir, &first);
    drop(publisher);
    eprintln!(
        "rtmp: {} objects before the restart, {} after, none changed",
        first.len(),
        second.len()
    );
}

/// Asks for the playlist's hinted part on another thread; its bytes, if it got the whole
/// part before weir went away.
fn hinted_part_request(
    weir: &Weir,
    playlist: &str,
) -> std::thread::JoinHandle<Option<(String, Vec<u8>)>> {
    let (_, text) = curl(&weir.url(playlist), &[]).unwrap();
    let text = String::from_utf8_lossy(&text).into_owned();
    let hint = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
        .and_then(|l| l.split("URI=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("a preload hint")
        .to_owned();
    let path = format!("{}/{hint}", playlist.rsplit_once('/').unwrap().0);
    let url = weir.url(&path);
    std::thread::spawn(move || match curl(&url, &[]) {
        Ok((200, body)) => Some((path, body)),
        _ => None,
    })
}

/// Every object of the earlier run: the same bytes, or no answer.
fn recheck(weir: &Weir, earlier: &BTreeMap<String, Vec<u8>>) {
    for (path, before) in earlier {
        let (code, body) = curl(&weir.url(path), &[]).unwrap();
        assert!(
            code != 200 || body == *before,
            "{path} answered other bytes after the restart ({} bytes, was {})",
            body.len(),
            before.len()
        );
    }
}
