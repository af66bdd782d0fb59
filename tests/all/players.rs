//! Real players on real streams: hls.js (lowLatencyMode) and Shaka, over HTTP/1.1 and over
//! HTTP/2 with TLS; and the segments they play decode cleanly with ffmpeg.

use std::process::Command;
use std::time::Duration;

use weir_e2e::*;

fn assert_played(r: &PlayReport, proto: &str) {
    assert!(
        r.started,
        "{} never started playing: {:?}",
        r.player, r.errors
    );
    assert!(
        r.fatal.is_empty(),
        "{} fatal errors: {:?}",
        r.player,
        r.fatal
    );
    assert!(
        r.played >= 10.0,
        "{} played only {:.1}s",
        r.player,
        r.played
    );
    assert!(
        r.requests.blocking > 0,
        "{} made no blocking _HLS_msn requests: {:?}",
        r.player,
        r.requests
    );
    assert!(
        r.requests.parts > 0,
        "{} requested no parts: {:?}",
        r.player,
        r.requests
    );
    assert!(
        r.protocols.keys().all(|p| p == proto) && r.protocols.contains_key(proto),
        "{} expected every response over {proto}, saw {:?}",
        r.player,
        r.protocols
    );
}

#[test]
fn rtmp_publish_plays_in_hlsjs_and_shaka_over_http1_and_h2_tls() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut weir = Weir::start_tls(dir.path(), &["--no-test-source"]).unwrap();
    let mut ffmpeg = ffmpeg_publish(&weir.rtmp_url("e2e"), 60, "1280x720", 60).unwrap();
    let master = "/live/e2e/master.m3u8";
    wait_for_200(&weir.url(master), Duration::from_secs(20)).unwrap();
    // A new stream's first media playlist already lists a complete segment (Shaka 4.16
    // fails to load one whose only segment is still in parts); the request waits for it.
    let (code, first) = curl(&weir.url("/live/e2e/src/index.m3u8"), &[]).unwrap();
    let first = String::from_utf8(first).unwrap();
    assert_eq!(code, 200, "{first}");
    assert!(first.contains("#EXTINF:"), "no complete segment:\n{first}");

    // Two players at a time (2 cores): each protocol with each player.
    let mut reports = Vec::new();
    for (a, b) in [
        (("hls", weir.url(master)), ("shaka", weir.https_url(master))),
        (("hls", weir.https_url(master)), ("shaka", weir.url(master))),
    ] {
        let pa = Player::start(a.0, &a.1, 12).unwrap();
        let pb = Player::start(b.0, &b.1, 12).unwrap();
        let ra = pa.join().unwrap();
        let rb = pb.join().unwrap();
        reports.push((ra, a.1.starts_with("https")));
        reports.push((rb, b.1.starts_with("https")));
    }
    for (r, tls) in &reports {
        assert_played(r, if *tls { "h2" } else { "http/1.1" });
        assert!(
            r.video_width == Some(1280),
            "{} decoded width {:?}",
            r.player,
            r.video_width
        );
    }

    // h2c prior knowledge, as a CDN would speak it.
    let (code, ver) = curl_version(
        &weir.url("/live/e2e/src/index.m3u8"),
        &["--http2-prior-knowledge"],
    )
    .unwrap();
    assert_eq!((code, ver.as_str()), (200, "2"));

    check_segments_decode(&weir, "/live/e2e/src");
    assert!(ffmpeg.is_running(), "the publisher died during the test");
    drop(ffmpeg);
    assert!(weir.proc.is_running());
    assert!(
        !weir.log().iter().any(|l| l.contains("panicked")),
        "weir logged a panic"
    );
}

#[test]
fn low_latency_1s_segments_200ms_parts_plays_in_hlsjs() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let weir = Weir::start(&[
        "--no-test-source",
        "--segment-ms",
        "1000",
        "--part-ms",
        "200",
    ])
    .unwrap();
    let _ffmpeg = ffmpeg_publish(&weir.rtmp_url("ll"), 30, "1280x720", 30).unwrap();
    let master = weir.url("/live/ll/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    let r = Player::start("hls", &master, 14).unwrap().join().unwrap();
    assert_played(&r, "http/1.1");
    let (_, text) = curl(&weir.url("/live/ll/src/index.m3u8"), &[]).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.2"), "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:1\n"), "{text}");
    check_segments_decode(&weir, "/live/ll/src");
}

#[test]
fn zero_config_test_stream_plays() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let weir = Weir::start(&[]).unwrap();
    let master = weir.url("/live/test/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    let (code, page) = curl(&weir.url("/"), &[]).unwrap();
    assert_eq!(code, 200);
    assert!(String::from_utf8_lossy(&page).contains("hls.min.js"));
    let r = Player::start("hls", &master, 11).unwrap().join().unwrap();
    assert_played(&r, "http/1.1");
}

/// The current releases (hls.js 1.7.x, Shaka 5.2.x; the other tests pin older ones), joining
/// a passed-through RTMP stream mid-stream, each with its defaults plus low-latency mode.
/// (`WEIR_PLAYERS=current` runs every e2e test with them.)
#[test]
fn current_hlsjs_and_shaka_releases_play_a_live_rtmp_stream() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let weir = Weir::start(&["--no-test-source"]).unwrap();
    let _ff = ffmpeg_publish(&weir.rtmp_url("current"), 45, "640x360", 60).unwrap();
    let master = weir.url("/live/current/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    for player in ["hls", "shaka"] {
        let r = Player::start_with(player, &master, 12, &["--current"])
            .unwrap()
            .join()
            .unwrap();
        assert_played(&r, "http/1.1");
    }
}

/// The current releases on what `current_hlsjs_and_shaka_releases_play_a_live_rtmp_stream`
/// does not cover: a transcoded stream (a two-rung x264 ladder), 1 s segments with 200 ms
/// parts, over HTTP/2 with TLS. Each joins mid-stream and plays with no fatal error, every
/// response over h2.
#[test]
fn current_releases_play_a_transcoded_1s_200ms_stream_over_h2() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "[encoder]\nenabled = true\npreset = \"ultrafast\"\n\
         [[encoder.ladder]]\nname = \"360p\"\nheight = 360\nbitrate = 600000\n\
         [[encoder.ladder]]\nname = \"240p\"\nheight = 240\nbitrate = 300000\n",
    )
    .unwrap();
    let mut weir = Weir::start_tls(
        dir.path(),
        &[
            "--no-test-source",
            "--config",
            config.to_str().unwrap(),
            "--segment-ms",
            "1000",
            "--part-ms",
            "200",
        ],
    )
    .unwrap();
    let _ff =
        ffmpeg_publish_preset(&weir.rtmp_url("ladder"), 60, "640x360", 30, "ultrafast").unwrap();
    let master = weir.https_url("/live/ladder/master.m3u8");
    wait_for_200(
        &weir.url("/live/ladder/master.m3u8"),
        Duration::from_secs(30),
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let (_, text) = curl(&weir.url("/live/ladder/360p/index.m3u8"), &[]).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.2"), "{text}");
    for player in ["hls", "shaka"] {
        let r = Player::start_with(player, &master, 12, &["--current"])
            .unwrap()
            .join()
            .unwrap();
        eprintln!(
            "[{player} current] played {:.1}s, latency p50 {:?}, stalls {:?}",
            r.played, r.latency.p50, r.stalls
        );
        assert_played(&r, "h2");
    }
    check_segments_decode(&weir, "/live/ladder/360p");
    assert!(
        weir.log()
            .iter()
            .any(|l| l.contains("encoding ladder") && l.contains("libx264")),
        "not transcoded"
    );
}

/// Downloads init + the newest complete segments in the window (at most 8: the oldest ones
/// may leave the window while a slow machine fetches the rest), checks each segment equals
/// its listed parts, and decodes them with ffmpeg: no errors, continuous timestamps.
fn check_segments_decode(weir: &Weir, base: &str) {
    let (code, text) = curl(&weir.url(&format!("{base}/index.m3u8")), &[]).unwrap();
    assert_eq!(code, 200);
    let pl = parse_media_playlist(&text).unwrap();
    let text = String::from_utf8_lossy(&text).to_string();
    let (_, init) = curl(&weir.url(&format!("{base}/init.mp4")), &[]).unwrap();
    let mut all = init.clone();
    let mut checked_parts = 0;
    let mut segs = 0;
    let first_checked = pl.segments.len().saturating_sub(8);
    let mut listed = 0;
    // Parts are listed before the segment line they belong to.
    let mut pending_parts: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#EXT-X-PART:") {
            let uri = rest
                .split("URI=\"")
                .nth(1)
                .and_then(|s| s.split('"').next())
                .unwrap();
            pending_parts.push(uri.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            listed += 1;
            if listed <= first_checked {
                pending_parts.clear();
                continue;
            }
            let (code, seg) = curl(&weir.url(&format!("{base}/{line}")), &[]).unwrap();
            assert_eq!(code, 200, "{line}");
            if !pending_parts.is_empty() {
                let mut joined = Vec::new();
                for p in pending_parts.drain(..) {
                    let (code, part) = curl(&weir.url(&format!("{base}/{p}")), &[]).unwrap();
                    assert_eq!(code, 200, "{p}");
                    joined.extend(part);
                    checked_parts += 1;
                }
                assert!(
                    joined == seg,
                    "{line} differs from the concatenation of its parts"
                );
            }
            all.extend(seg);
            segs += 1;
        }
    }
    assert!(segs >= 3, "only {segs} segments in the window: {text}");
    assert!(checked_parts > 0, "no parts listed: {text}");
    assert_eq!(segs, pl.segments.len() - first_checked);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.mp4");
    std::fs::write(&file, &all).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg decode errors: {errors}"
    );

    // Continuous timestamps: every video packet one frame after the last, audio likewise.
    for (stream, step_tolerance) in [("v:0", 0.002), ("a:0", 0.002)] {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                stream,
                "-show_entries",
                "packet=dts_time,duration_time",
            ])
            .args(["-of", "csv=p=0"])
            .arg(&file)
            .output()
            .unwrap();
        let rows: Vec<(f64, f64)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut it = l.split(',');
                Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
            })
            .collect();
        assert!(rows.len() > 30, "{stream}: only {} packets", rows.len());
        for w in rows.windows(2) {
            assert!(
                w[1].0 - w[0].0 < 0.1,
                "{stream}: hole between dts {} and {}",
                w[0].0,
                w[1].0
            );
            let gap = w[1].0 - (w[0].0 + w[0].1);
            assert!(
                gap.abs() <= step_tolerance + 0.002,
                "{stream}: discontinuity of {gap:.4}s at dts {}",
                w[0].0
            );
        }
    }
}
