//! Streams that survive their sources and weir itself: a publisher killed for 10 s and
//! brought back (with other encoder settings) while hls.js and Shaka play, and a weir
//! restart that keeps the media sequence monotonic.

use std::time::Duration;

use weir_e2e::*;

/// Every `EXT-X-PROGRAM-DATE-TIME` in a playlist increases (weir writes them all in one
/// ISO 8601 form, which sorts like time), across gaps, slates and discontinuities.
fn assert_dates_increase(text: &str) {
    let dates: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .collect();
    for w in dates.windows(2) {
        assert!(w[0] < w[1], "program date time went backwards:\n{text}");
    }
}

#[test]
fn publisher_loss_gives_gap_then_discontinuity_and_hlsjs_continues() {
    publisher_loss(&["hls"]);
}

/// Shaka with its default failure handling (as every e2e test runs it), which stops at a live edge that is all
/// EXT-X-GAP (SEGMENT_MISSING): weir publishes the gap with the stand-by slate right behind
/// it (docs/design/005-contribution-loss.md).
#[test]
fn publisher_loss_gives_gap_then_discontinuity_and_shaka_continues() {
    publisher_loss(&["shaka"]);
}

fn publisher_loss(players: &[&str]) {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let weir = Weir::start(&["--no-test-source"]).unwrap();
    let playlist = weir.url("/live/loss/src/index.m3u8");
    let master = weir.url("/live/loss/master.m3u8");
    let first = ffmpeg_publish(&weir.rtmp_url("loss"), 120, "640x360", 60).unwrap();
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_secs(4));

    let players: Vec<Player> = players
        .iter()
        .map(|p| {
            // WEIR_DUMP_TRACE=1: the players' traces, and hls.js's debug log.
            let extra: &[&str] = if *p == "hls" && std::env::var_os("WEIR_DUMP_TRACE").is_some() {
                &["--trace", "--debug"]
            } else {
                &["--trace"]
            };
            Player::start_with(p, &master, 40, extra).unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(12));

    // The publisher dies.
    drop(first);
    let killed_at = unix_ms();
    let mut saw_gap = false;
    let mut saw_standby = false;
    // The stand-by slate's init URI, once seen behind the gap's discontinuity.
    let mut slate_map: Option<String> = None;
    let mut msns = Vec::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_secs(1));
        let (code, text) = curl(&playlist, &[]).unwrap();
        assert_eq!(code, 200, "the playlist must stay up during the loss");
        let text = String::from_utf8(text).unwrap();
        saw_gap |= text.contains("#EXT-X-GAP") || text.contains("GAP=YES");
        // The lost time as a gap, the stand-by slate (its own init) right behind it.
        if text.contains("#EXT-X-GAP\n") {
            if let Some(map) = discontinuity_maps(&text).first() {
                saw_standby = true;
                slate_map.get_or_insert_with(|| map.clone());
            }
        }
        if let Some(at) = text.find("#EXT-X-GAP\n") {
            assert!(
                text[at..].contains("#EXT-X-DISCONTINUITY\n"),
                "a gap at the live edge:\n{text}"
            );
        }
        msns.push(live_edge(text.as_bytes()).unwrap());
        assert_dates_increase(&text);
    }
    assert!(saw_gap, "no EXT-X-GAP during the loss");
    assert!(
        saw_standby,
        "no stand-by slate (its own init behind a discontinuity) after the gap"
    );

    // It comes back, over the other protocol (SRT), with another picture size: a new init
    // segment behind EXT-X-DISCONTINUITY. (While the discontinuity is listed, weir offers
    // no delta updates; hls.js 1.6 loses the discontinuity when it merges one, see
    // docs/design/005-contribution-loss.md.)
    let back_at = unix_ms();
    let _second = ffmpeg_publish(
        &weir.srt_url("#!::r=live/loss,m=publish", None),
        60,
        "960x540",
        60,
    )
    .unwrap();
    let mut saw_discontinuity = false;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(500));
        let (_, text) = curl(&playlist, &[]).unwrap();
        let text = String::from_utf8(text).unwrap();
        msns.push(live_edge(text.as_bytes()).unwrap());
        // The returning publisher: its own init (the third) behind a discontinuity.
        if discontinuity_maps(&text)
            .iter()
            .any(|m| Some(m) != slate_map.as_ref())
        {
            saw_discontinuity = true;
            assert_dates_increase(&text);
            break;
        }
    }
    assert!(
        saw_discontinuity,
        "no EXT-X-DISCONTINUITY after the publisher returned"
    );
    for w in msns.windows(2) {
        assert!(w[1].0 >= w[0].0, "media sequence went backwards: {msns:?}");
    }

    let td = 2000.0;
    for r in players.into_iter().map(|p| p.join().unwrap()) {
        assert!(r.started, "{} never started: {:?}", r.player, r.errors);
        assert!(
            r.fatal.is_empty(),
            "{} fatal errors: {:?}",
            r.player,
            r.fatal
        );
        // Latency before the loss, then when the returning publisher's picture (960 wide;
        // the first publisher and the stand-by slate are 640) reached the screen.
        let before: Vec<f64> = r
            .trace
            .iter()
            .filter(|p| p.wall + 2000 < back_at && p.wall > back_at - 20_000)
            .filter_map(|p| p.latency)
            .collect();
        let shown = r.trace.iter().find(|p| p.wall > back_at && p.w == 960);
        let Some(shown) = shown else {
            panic!(
                "{}: the new contribution never reached the screen: {:?}",
                r.player, r.trace
            );
        };
        if std::env::var_os("WEIR_DUMP_TRACE").is_some() {
            for p in &r.trace {
                eprintln!(
                    "TRACE {} {} {:.2} {:?} {} {} {:?}",
                    r.player,
                    p.wall as i64 - back_at as i64,
                    p.t,
                    p.latency,
                    p.w,
                    p.paused,
                    p.rgb
                );
            }
        }
        // The stand-by slate was on screen during the loss.
        assert!(
            r.trace
                .iter()
                .any(|p| p.wall > killed_at && p.wall < back_at + 2000 && p.shows_standby()),
            "{}: the stand-by slate never reached the screen: {:?}",
            r.player,
            r.trace
        );
        let steady = before.iter().cloned().fold(f64::INFINITY, f64::min);
        let delay = (shown.wall - back_at) as f64;
        eprintln!(
            "[{}] new media on screen {:.2}s after the publisher returned (latency before the loss {:.2}s), stalls {:?}, non-fatal errors {:?}",
            r.player,
            delay / 1000.0,
            steady / 1000.0,
            r.stalls,
            r.nonfatal
        );
        // The gap is never the live edge: Shaka never even reports the segment missing.
        assert!(
            !r.nonfatal.iter().any(|e| e.ends_with("shaka 1011")),
            "{}: SEGMENT_MISSING: {:?}",
            r.player,
            r.nonfatal
        );
        assert!(
            delay <= steady.max(0.0) + 2.0 * td + 1000.0,
            "{}: playback resumed {delay:.0} ms after the return (latency {steady:.0} ms)",
            r.player
        );
    }
}

/// A publisher that stalls with its connection open (the process stopped for 4 s) and then
/// resumes mid-GOP: the stand-by slate (here the operator's image, `encoder.slate_image`)
/// covers the stall and plays on until the publisher's next keyframe; then the publisher's
/// own tracks return behind a discontinuity (a third init), and hls.js plays the programme
/// again.
#[test]
fn a_stalled_publisher_resumes_after_the_slate_at_its_next_keyframe() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("slate.png");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "color=c=magenta:size=1280x720",
        ])
        .args(["-frames:v", "1"])
        .arg(&image)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg could not write the slate image");
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!("[encoder]\nslate_image = {:?}\n", image.to_string_lossy()),
    )
    .unwrap();
    let weir = Weir::start(&["--no-test-source", "--config", &config.to_string_lossy()]).unwrap();
    let playlist = weir.url("/live/stall/src/index.m3u8");
    let master = weir.url("/live/stall/master.m3u8");
    // 4 s GOPs: after the stall it resumes mid-GOP.
    let publisher = ffmpeg_publish(&weir.rtmp_url("stall"), 60, "640x360", 120).unwrap();
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let player = Player::start_with("hls", &master, 32, &["--trace"]).unwrap();
    std::thread::sleep(Duration::from_secs(9));

    let pid = publisher.child.id().to_string();
    let signal = |sig: &str| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    let stalled_at = unix_ms();
    signal("-STOP");
    let mut saw_standby = false;
    let mut slate_map: Option<String> = None;
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        let (_, text) = curl(&playlist, &[]).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_dates_increase(&text);
        if text.contains("#EXT-X-GAP\n") {
            if let Some(map) = discontinuity_maps(&text).first() {
                saw_standby = true;
                slate_map.get_or_insert_with(|| map.clone());
            }
        }
    }
    assert!(saw_standby, "no gap and stand-by slate during the stall");
    signal("-CONT");
    let resumed_at = unix_ms();

    let mut back = None;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(500));
        let (_, text) = curl(&playlist, &[]).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert_dates_increase(&text);
        if discontinuity_maps(&text)
            .iter()
            .any(|m| Some(m) != slate_map.as_ref())
        {
            back = Some(text);
            break;
        }
    }
    let back = back.expect("the publisher's tracks never came back behind a discontinuity");
    // The operator's slate, 1280x720 like its image, in the stand-by init.
    let slate_map = slate_map.unwrap();
    let returned_map = discontinuity_maps(&back)
        .into_iter()
        .find(|m| *m != slate_map)
        .unwrap();
    let (code, init) = curl(&weir.url(&format!("/live/stall/src/{slate_map}")), &[]).unwrap();
    assert_eq!(code, 200);
    let probe = dir.path().join("slate-init.mp4");
    std::fs::write(&probe, init).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&probe)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1280,720");
    // The slate played until the publisher's keyframe: slate media right before init2.
    let at = back
        .find(&format!("#EXT-X-MAP:URI=\"{returned_map}\""))
        .unwrap();
    let before = &back[..at];
    let slate_from = before
        .rfind(&format!("#EXT-X-MAP:URI=\"{slate_map}\""))
        .unwrap();
    assert!(
        !before[slate_from..].contains("#EXT-X-GAP"),
        "a gap between the slate and the returning publisher:\n{back}"
    );

    let r = player.join().unwrap();
    assert!(r.started, "hls.js never started: {:?}", r.errors);
    assert!(r.fatal.is_empty(), "hls.js fatal errors: {:?}", r.fatal);
    // The operator's magenta picture, not the built-in grey slate.
    let magenta = |p: &TracePoint| {
        p.rgb
            .is_some_and(|[r, g, b]| r > 150.0 && b > 150.0 && g < 100.0)
    };
    let standby = r
        .trace
        .iter()
        .filter(|p| p.wall > stalled_at && magenta(p))
        .count();
    let programme_after = r
        .trace
        .iter()
        .filter(|p| p.wall > resumed_at && !magenta(p) && p.rgb.is_some())
        .count();
    eprintln!(
        "[hls] stand-by on screen in {standby} samples, the programme in {programme_after} after the resume; stalls {:?}",
        r.stalls
    );
    assert!(
        standby > 0,
        "the slate never reached the screen: {:?}",
        r.trace
    );
    assert!(
        programme_after > 0,
        "the programme never came back: {:?}",
        r.trace
    );
}

#[test]
fn weir_restart_keeps_the_media_sequence_monotonic() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let playlist = "/live/test/src/index.m3u8";
    let (edge_before, last_part_before) = {
        let weir = Weir::start(&[]).unwrap();
        wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
        std::thread::sleep(Duration::from_secs(5));
        let (_, text) = curl(&weir.url(playlist), &[]).unwrap();
        let (msn, n) = live_edge(&text).unwrap();
        (msn + n as u64, last_part(&text))
    };
    let weir = Weir::start(&[]).unwrap();
    wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
    let (_, text) = curl(&weir.url(playlist), &[]).unwrap();
    let (msn_after, _) = live_edge(&text).unwrap();
    assert!(
        msn_after >= edge_before,
        "after a restart the media sequence went from {edge_before} back to {msn_after}"
    );
    assert!(
        last_part(&text) > last_part_before,
        "part numbers went backwards"
    );
}

fn last_part(text: &[u8]) -> u64 {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.split("URI=\"part").nth(1))
        .filter_map(|s| s.split('.').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}
