//! Edge mode (issue 16, docs/design/009-edge.md): a primary and two edges as processes on
//! 127.0.0.1, the second edge following the first (tiered). Real players play through the
//! edges and through nginx as a caching CDN in front of one, the bytes are the primary's,
//! and viewers at an edge cost the primary nothing: one upstream request per part, however
//! many wait.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use weir_e2e::*;

/// GET `path` over HTTP/1.0 (close-delimited, no chunking to undo): (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let head_end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let status = std::str::from_utf8(&buf[..head_end.min(12)])
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, buf[(head_end + 4).min(buf.len())..].to_vec()))
}

/// Every response weir counted (`weir_http_responses_total`, all classes).
fn responses(weir: &Weir) -> u64 {
    let (_, text) = curl(&weir.url("/metrics"), &[]).unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .filter(|l| l.starts_with("weir_http_responses_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A simulated low-latency player: blocking reload for the part after the newest listed,
/// then that part, until `until`. Returns the parts it fetched.
fn simulated_player(addr: SocketAddr, until: Instant) -> u64 {
    let mut fetched = 0;
    let mut next: Option<(u64, usize)> = None;
    while Instant::now() < until {
        let path = match next {
            Some((msn, part)) => {
                format!("/live/edge/src/index.m3u8?_HLS_msn={msn}&_HLS_part={part}")
            }
            None => "/live/edge/src/index.m3u8".to_owned(),
        };
        let Ok((200, body)) = get(addr, &path) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let text = String::from_utf8_lossy(&body);
        let Some(hint) = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""))
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if matches!(get(addr, &format!("/live/edge/src/{hint}")), Ok((200, _))) {
            fetched += 1;
        }
        // The part after the newest listed: segments by their URI lines, then the parts
        // listed after the last one.
        let first: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let uris = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count() as u64;
        let open_parts = text
            .rsplit(".m4s\n")
            .next()
            .map_or(0, |tail| tail.matches("#EXT-X-PART:").count());
        let open_msn = first + uris;
        next = Some((open_msn, open_parts));
    }
    fetched
}

/// hls.js on `hls` and Shaka on `shaka` at once, 12 s each: both play with no fatal error.
fn play_both(how: &str, hls: &str, shaka: &str) {
    let players = [
        Player::start("hls", hls, 12).unwrap(),
        Player::start("shaka", shaka, 12).unwrap(),
    ];
    for p in players {
        let r = p.join().unwrap();
        eprintln!(
            "[{} {how}] played {:.1}s, latency p50 {:?}, fatal {:?}",
            r.player, r.played, r.latency.p50, r.fatal
        );
        assert!(
            r.started && r.fatal.is_empty() && r.played >= 10.0,
            "{} {how}: {:?}",
            r.player,
            r.fatal
        );
    }
}

#[test]
fn players_play_through_two_tiers_of_edges_and_the_primary_serves_one_request_per_part() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let mut primary = Weir::start(&["--no-test-source"]).unwrap();
    let _ffmpeg = ffmpeg_publish(&primary.rtmp_url("edge"), 60, "640x360", 60).unwrap();
    wait_for_200(
        &primary.url("/live/edge/master.m3u8"),
        Duration::from_secs(20),
    )
    .unwrap();
    let edge_a = Weir::start_edge(&primary.url(""), &[]).unwrap();
    // The second tier follows the first edge, not the primary.
    let edge_b = Weir::start_edge(&edge_a.url(""), &[]).unwrap();
    let master_b = edge_b.url("/live/edge/master.m3u8");
    wait_for_200(&master_b, Duration::from_secs(20)).unwrap();

    // The same bytes at every tier: a segment, and the multivariant playlist (which the
    // primary updates as it measures bandwidth, and the edges follow within a refresh).
    let (_, text) = curl(&edge_b.url("/live/edge/src/index.m3u8"), &[]).unwrap();
    let p = parse_media_playlist(&text).unwrap();
    let seg = &p.segments.iter().find(|s| !s.uri.is_empty()).unwrap().uri;
    let path = format!("/live/edge/src/{seg}");
    let (code, at_b) = curl(&edge_b.url(&path), &[]).unwrap();
    assert_eq!(code, 200, "{path}");
    assert!(
        at_b == curl(&primary.url(&path), &[]).unwrap().1,
        "{path}: the edge's bytes differ"
    );
    let deadline = Instant::now() + Duration::from_secs(8);
    while curl(&master_b, &[]).unwrap().1
        != curl(&primary.url("/live/edge/master.m3u8"), &[]).unwrap().1
    {
        assert!(
            Instant::now() < deadline,
            "the edge's multivariant playlist never caught up"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // hls.js through the first edge, Shaka through the second.
    play_both(
        "via an edge",
        &edge_a.url("/live/edge/master.m3u8"),
        &master_b,
    );

    // nginx as a caching CDN in front of the first edge: both players through it.
    let cdn_dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(cdn_dir.path(), edge_a.http).unwrap();
    let cdn = nginx.url("/live/edge/master.m3u8");
    play_both("via nginx and the edge", &cdn, &cdn);
    drop(nginx);

    // 50 simulated players on the first edge for 8 s: the primary sees the first edge's
    // one playlist request and one part request per part, not one per player.
    let (before_primary, before_edge) = (responses(&primary), responses(&edge_a));
    let until = Instant::now() + Duration::from_secs(8);
    let addr = edge_a.http;
    let players: Vec<_> = (0..50)
        .map(|_| std::thread::spawn(move || simulated_player(addr, until)))
        .collect();
    let parts: u64 = players.into_iter().map(|p| p.join().unwrap()).sum();
    let upstream = responses(&primary) - before_primary;
    let served = responses(&edge_a) - before_edge;
    eprintln!(
        "fan-in: 50 players fetched {parts} parts ({served} responses at the edge); the primary answered {upstream} requests (ratio {:.1})",
        served as f64 / upstream.max(1) as f64
    );
    assert!(
        parts >= 50 * 8,
        "the simulated players fetched only {parts} parts"
    );
    // 8 s of 500 ms parts: 16 parts, 2 requests each for edge A, as many for edge B's
    // follow through A (not the primary), plus slack for timing and a segment or two.
    assert!(
        upstream <= 2 * 20 + 10,
        "the primary answered {upstream} requests for 50 players"
    );
    assert!(primary.log().iter().all(|l| !l.contains("panicked")));
}

/// `weir sign-url` for `stream` with the keys in `config`, pointing at `base`.
fn sign_url(config: &std::path::Path, stream: &str, ttl_s: u32, base: &str) -> String {
    let out = std::process::Command::new(weir_bin())
        .args(["sign-url", "--stream", stream, "--base", base, "--ttl-s"])
        .arg(ttl_s.to_string())
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn signed_urls_play_at_the_primary_and_at_an_edge_and_nothing_else_does() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        r#"
[edge]
token = "shared-edge-token-for-the-test"
[[tenants]]
name = "acme"
streams = ["signed"]
playback_keys = ["acme-playback-key-0123456789abcdef"]
"#,
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let primary = Weir::start(&["--no-test-source", "--config", cfg]).unwrap();
    let _ffmpeg = ffmpeg_publish(&primary.rtmp_url("signed"), 60, "640x360", 60).unwrap();
    // The edge has the same tenants (it checks viewers' tokens itself) and the edge token
    // (the primary lets it pull without a viewer's token).
    let edge = Weir::start_edge(&primary.url(""), &["--config", cfg]).unwrap();
    // An edge without the edge token cannot pull the protected stream.
    let stranger = Weir::start_edge(&primary.url(""), &[]).unwrap();

    for (name, weir) in [("primary", &primary), ("edge", &edge)] {
        let base = weir.url("");
        let url = sign_url(&config, "signed", 600, &base);
        wait_for_200(&url, Duration::from_secs(20)).unwrap();
        let token_path = url.strip_prefix(base.trim_end_matches('/')).unwrap();
        let prefix = token_path.strip_suffix("master.m3u8").unwrap();
        // The whole chain under the token: a media playlist and its newest part.
        let (code, text) = curl(&weir.url(&format!("{prefix}src/index.m3u8")), &[]).unwrap();
        assert_eq!(code, 200, "{name}: media playlist");
        let text = String::from_utf8(text).unwrap();
        let part = text
            .lines()
            .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
            .next_back()
            .map(|a| attributes(a)["URI"].clone())
            .unwrap();
        let (code, _) = curl(&weir.url(&format!("{prefix}src/{part}")), &[]).unwrap();
        assert_eq!(code, 200, "{name}: {part}");

        let expired = sign_url(&config, "signed", 0, &base);
        let valid_sig = prefix.rsplit('.').next().unwrap().trim_end_matches('/');
        let mut forged_sig = valid_sig.to_owned();
        let last = forged_sig.pop().unwrap();
        forged_sig.push(if last == 'A' { 'B' } else { 'A' });
        let forged = url.replace(valid_sig, &forged_sig);
        for (case, url) in [
            ("missing", weir.url("/live/signed/master.m3u8")),
            ("missing", weir.url("/live/signed/src/index.m3u8")),
            ("expired", expired),
            ("forged", forged),
        ] {
            let (code, body) = curl(&url, &[]).unwrap();
            assert_eq!(code, 403, "{name}, {case}: {url}");
            eprintln!(
                "[{name} {case}] 403 {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
    }

    // A valid URL plays in both players, at the primary and at the edge.
    let at_primary = sign_url(&config, "signed", 600, &primary.url(""));
    let at_edge = sign_url(&config, "signed", 600, &edge.url(""));
    play_both(
        "signed, hls.js at the primary, Shaka at the edge",
        &at_primary,
        &at_edge,
    );
    play_both(
        "signed, hls.js at the edge, Shaka at the primary",
        &at_edge,
        &at_primary,
    );

    // The stranger edge has no keys, so it would serve the stream openly: the primary
    // refuses it, and the stream never appears there.
    let (code, _) = curl(&stranger.url("/live/signed/master.m3u8"), &[]).unwrap();
    assert_ne!(
        code, 200,
        "an edge without the edge token pulled a protected stream"
    );
    std::thread::sleep(Duration::from_secs(3));
    let (code, _) = curl(&stranger.url("/live/signed/master.m3u8"), &[]).unwrap();
    assert_ne!(
        code, 200,
        "an edge without the edge token pulled a protected stream"
    );
}

/// The edge's media playlist of `stream`: (MEDIA-SEQUENCE, DISCONTINUITY-SEQUENCE, the
/// discontinuity tags listed), or `None` when it does not answer 200.
fn sequence_numbers(edge: SocketAddr, stream: &str) -> Option<(u64, u64, u64)> {
    let (code, body) = get(edge, &format!("/live/{stream}/src/index.m3u8")).ok()?;
    if code != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body);
    let num = |tag: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(tag))
            .and_then(|v| v.trim().parse().ok())
    };
    let tags = text
        .lines()
        .filter(|l| *l == "#EXT-X-DISCONTINUITY")
        .count() as u64;
    Some((
        num("#EXT-X-MEDIA-SEQUENCE:")?,
        num("#EXT-X-DISCONTINUITY-SEQUENCE:").unwrap_or(0),
        tags,
    ))
}

/// A primary killed and restarted (same address and state directory, the publisher
/// reconnecting) while hls.js and Shaka play through an edge: the edge keeps its window
/// through the outage and then follows the new run, its media sequence and discontinuity
/// numbers never go back, and neither player fails.
#[test]
fn a_primary_restart_under_an_edge_keeps_players_playing_and_numbers_monotonic() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    // The restarted primary must answer where the edge expects it: a port the OS picked
    // (127.0.0.1:0), released, and bound again by both runs of the primary.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let state = tempfile::tempdir().unwrap();
    let args = [
        "--no-test-source",
        "--state-dir",
        state.path().to_str().unwrap(),
    ];
    let mut primary = Some(Weir::start_on(&http, &args, &[]).unwrap());
    let rtmp = primary.as_ref().unwrap().rtmp_url("restart");
    let mut ffmpeg = Some(ffmpeg_publish(&rtmp, 90, "640x360", 60).unwrap());
    let edge = Weir::start_edge(&format!("http://{http}"), &[]).unwrap();
    let master = edge.url("/live/restart/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();

    // The edge's playlist, sampled every 100 ms from here to the end.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_sequence_numbers(edge.http, "restart", std::sync::Arc::clone(&stop));
    let players = [
        Player::start("hls", &master, 40).unwrap(),
        Player::start("shaka", &master, 40).unwrap(),
    ];
    std::thread::sleep(Duration::from_secs(12));
    // The primary dies with its publisher; a new process takes its place and the
    // publisher comes back to it.
    drop(ffmpeg.take());
    drop(primary.take());
    std::thread::sleep(Duration::from_secs(1));
    let restarted = Weir::start_on(&http, &args, &[]).unwrap();
    let _ffmpeg = ffmpeg_publish(&restarted.rtmp_url("restart"), 60, "640x360", 60).unwrap();
    join_through(players, "the restart");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_monotonic_with_a_new_timeline(&sampler.join().unwrap());
}

/// Players that watched through an outage (`what`): each started, had no fatal error and
/// played at least 25 s of its run (of 35 to 40 s of wall clock, a few without media).
fn join_through<const N: usize>(players: [Player; N], what: &str) {
    for p in players {
        let r = p.join().unwrap();
        eprintln!(
            "[{} through {what}] played {:.1}s, stalls {:?}, latency p50 {:?}, fatal {:?}",
            r.player, r.played, r.stalls, r.latency.p50, r.fatal
        );
        assert!(
            r.started && r.fatal.is_empty(),
            "{}: {:?}",
            r.player,
            r.fatal
        );
        assert!(r.played >= 25.0, "{} played {:.1} s", r.player, r.played);
    }
}

/// Samples `stream`'s media playlist at `edge` every 100 ms until `stop`: the
/// (MEDIA-SEQUENCE, DISCONTINUITY-SEQUENCE, discontinuity tags) seen.
fn sample_sequence_numbers(
    edge: SocketAddr,
    stream: &'static str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<Vec<(u64, u64, u64)>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if let Some(n) = sequence_numbers(edge, stream) {
                seen.push(n);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        seen
    })
}

/// Media sequence and discontinuity numbers never went back, and the last segment's
/// discontinuity number went up (a new timeline came in).
fn assert_monotonic_with_a_new_timeline(seen: &[(u64, u64, u64)]) {
    for w in seen.windows(2) {
        let ((msn_a, dseq_a, tags_a), (msn_b, dseq_b, tags_b)) = (w[0], w[1]);
        assert!(
            msn_b >= msn_a,
            "MEDIA-SEQUENCE went back: {msn_a} then {msn_b}"
        );
        assert!(
            dseq_b >= dseq_a,
            "DISCONTINUITY-SEQUENCE went back: {dseq_a} then {dseq_b}"
        );
        assert!(
            dseq_b + tags_b >= dseq_a + tags_a,
            "{:?} then {:?}",
            w[0],
            w[1]
        );
    }
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    eprintln!(
        "edge playlist: {first:?} → {last:?} over {} samples",
        seen.len()
    );
    assert!(
        last.1 + last.2 > first.1 + first.2,
        "the new run is no discontinuity: {first:?} → {last:?}"
    );
}

/// Two primaries behind one edge (`--upstream` twice): a stream published to each plays
/// through the edge, and a publisher that moves from one primary to the other keeps
/// playing at the edge, behind a discontinuity.
#[test]
fn two_primaries_one_edge_and_a_publisher_that_moves() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let p1 = Weir::start(&["--no-test-source"]).unwrap();
    let p2 = Weir::start(&["--no-test-source"]).unwrap();
    let mut alpha = Some(ffmpeg_publish(&p1.rtmp_url("alpha"), 90, "640x360", 60).unwrap());
    let _beta = ffmpeg_publish(&p2.rtmp_url("beta"), 90, "640x360", 60).unwrap();
    let mut edge = Weir::start_edge(&p1.url(""), &["--upstream", &p2.url("")]).unwrap();
    let (at_alpha, at_beta) = (
        edge.url("/live/alpha/master.m3u8"),
        edge.url("/live/beta/master.m3u8"),
    );
    wait_for_200(&at_alpha, Duration::from_secs(20)).unwrap();
    wait_for_200(&at_beta, Duration::from_secs(20)).unwrap();
    play_both("two primaries, one edge", &at_alpha, &at_beta);

    // alpha's publisher moves to the other primary while both players watch it.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = sample_sequence_numbers(edge.http, "alpha", std::sync::Arc::clone(&stop));
    let players = [
        Player::start("hls", &at_alpha, 35).unwrap(),
        Player::start("shaka", &at_alpha, 35).unwrap(),
    ];
    std::thread::sleep(Duration::from_secs(8));
    drop(alpha.take());
    std::thread::sleep(Duration::from_secs(1));
    let _moved = ffmpeg_publish(&p2.rtmp_url("alpha"), 60, "640x360", 60).unwrap();
    join_through(players, "the move");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_monotonic_with_a_new_timeline(&sampler.join().unwrap());
    assert!(
        edge.log()
            .iter()
            .any(|l| l.contains("the publisher moved; following it")),
        "the edge never moved to the second primary"
    );
}

/// A regional blackout: the blackout plugin runs at one edge only (its own tenant config),
/// so a US viewer at that edge gets the slate while a US viewer at the other edge gets the
/// programme. The slate is a hidden rendition at the primary; each edge follows it too
/// (the primary names it in `Weir-Hidden-Renditions`).
#[test]
fn a_regional_blackout_at_one_edge_only() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let blackout_wasm = repo_root().join("plugins/dist/blackout.wasm");
    assert!(
        blackout_wasm.exists(),
        "{} missing: scripts/build-plugins.sh",
        blackout_wasm.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let primary_cfg = dir.path().join("primary.toml");
    std::fs::write(
        &primary_cfg,
        "[[tenants]]\nname = \"default\"\nslate = true\n",
    )
    .unwrap();
    let primary = Weir::start(&[
        "--no-test-source",
        "--config",
        primary_cfg.to_str().unwrap(),
    ])
    .unwrap();
    // The programme is 1280x720; the slate is 640x360.
    let _ffmpeg = ffmpeg_publish(&primary.rtmp_url("region"), 90, "1280x720", 60).unwrap();
    let slate = String::from_utf8(
        wait_for_200(
            &primary.url("/live/region/slate/index.m3u8"),
            Duration::from_secs(20),
        )
        .unwrap(),
    )
    .unwrap();
    let slate_init = first_map(&slate).expect("the slate rendition has an EXT-X-MAP");
    let (code, head) = curl(&primary.url("/live/region/master.m3u8"), &["-I"]).unwrap();
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(
        code == 200 && head.contains("weir-hidden-renditions: slate"),
        "{head}"
    );

    // Edge A applies the blackout to US viewers; edge B has no plugins.
    let now = unix_ms();
    let blackout = format!(
        r#"{{"countries":["US"],"windows":[{{"start":{},"end":{}}}],"slate_rendition":"slate","slate_init":"{slate_init}"}}"#,
        now - 60_000,
        now + 600_000
    );
    let edge_cfg = dir.path().join("edge-a.toml");
    std::fs::write(
        &edge_cfg,
        format!(
            "[[tenants]]\nname = \"default\"\n[[tenants.plugins]]\nname = \"blackout\"\npath = \"{}\"\nconfig = '{blackout}'\n",
            blackout_wasm.display()
        ),
    )
    .unwrap();
    let edge_a =
        Weir::start_edge(&primary.url(""), &["--config", edge_cfg.to_str().unwrap()]).unwrap();
    let edge_b = Weir::start_edge(&primary.url(""), &[]).unwrap();
    for edge in [&edge_a, &edge_b] {
        wait_for_200(
            &edge.url("/live/region/master.m3u8"),
            Duration::from_secs(20),
        )
        .unwrap();
    }
    // The slate is followed at the edges before anyone asks for it.
    wait_for_200(
        &edge_a.url("/live/region/slate/index.m3u8"),
        Duration::from_secs(10),
    )
    .unwrap();

    let us = ["--header", "CF-IPCountry: US"];
    let at_a = Player::start_with("hls", &edge_a.url("/live/region/master.m3u8"), 12, &us).unwrap();
    let at_b = Player::start_with("hls", &edge_b.url("/live/region/master.m3u8"), 12, &us).unwrap();
    let (a, b) = (at_a.join().unwrap(), at_b.join().unwrap());
    for (r, at) in [(&a, "edge A"), (&b, "edge B")] {
        eprintln!(
            "[US viewer at {at}] played {:.1}s, width {:?}, slate requests {}, fatal {:?}",
            r.played, r.video_width, r.requests.slate, r.fatal
        );
        assert!(r.started && r.fatal.is_empty(), "{at}: {:?}", r.fatal);
        assert!(r.played >= 8.0, "{at}: played {:.1} s", r.played);
    }
    assert!(a.requests.slate > 0, "edge A: {:?}", a.requests);
    assert_eq!(
        a.video_width,
        Some(640),
        "the blacked-out viewer is not on the slate"
    );
    assert_eq!(b.requests.slate, 0, "edge B: {:?}", b.requests);
    assert_eq!(
        b.video_width,
        Some(1280),
        "the other region lost the programme"
    );
}
