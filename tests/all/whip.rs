//! WHIP (RFC 9725) end to end: headless Chromium publishes its fake camera and microphone
//! over WebRTC inside a private network namespace (Chromium will not use loopback ICE
//! candidates; ../shared/TESTING.md), and hls.js and Shaka play the LL-HLS stream weir
//! makes of it, across a reload of the publishing page. Bad requests get their 4xx.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use weir_e2e::*;

const KEY: &str = "whip-secret-key-1";

/// The namespace's config: WHIP on the namespace's address (with `whip`, more `[whip]`
/// keys), no test stream, one key for the stream "cam".
fn config_with(dir: &Path, whip: &str) -> String {
    let path = dir.join("weir.toml");
    std::fs::write(
        &path,
        format!(
            "[whip]\nudp = \"{}:0\"\n{whip}\n[test_source]\nenabled = false\n[[ingest.keys]]\nkey = \"{KEY}\"\nstream = \"cam\"\n",
            NetNs::SERVER
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// A private network namespace and weir serving in it (the config of [`config_with`]).
fn serve_in_namespace(dir: &Path, whip: &str) -> (NetNs, Weir) {
    let ns = NetNs::new().unwrap();
    let cfg = config_with(dir, whip);
    let weir = Weir::start_in(&ns, &format!("{}:0", NetNs::SERVER), &["-c", &cfg]).unwrap();
    (ns, weir)
}

/// `node whip.mjs` inside the namespace; its JSON report.
fn publish(ns: &NetNs, base: &str, extra: &[&str]) -> std::process::Child {
    ns.command("node")
        .current_dir(repo_root().join("tests/e2e"))
        .args([
            "whip.mjs",
            "--page",
            &format!("{base}/"),
            "--whip",
            &format!("{base}/whip"),
        ])
        .args(["--token", KEY])
        .args(extra)
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// weir serving in a new namespace (with `whip`, more `[whip]` keys): its tempdir, the
/// namespace, weir and its base URL.
fn served(whip: &str) -> (tempfile::TempDir, NetNs, Weir, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ns, weir) = serve_in_namespace(dir.path(), whip);
    let base = format!("http://{}", weir.http);
    (dir, ns, weir, base)
}

/// The tools a WebRTC test needs (the namespace's and `extra`); without them it is skipped
/// (or fails, where the e2e suite is required).
fn webrtc_tools(extra: &[&str]) -> bool {
    require_tools() && require(&[&["unshare", "nsenter", "ip"][..], extra].concat())
}

/// [`publish`] with `--started-file`, returned once media flows (the test fails if it does
/// not within 30 s).
fn publish_started(ns: &NetNs, base: &str, dir: &Path, extra: &[&str]) -> std::process::Child {
    let started = dir.join("started");
    let path = started.to_string_lossy().into_owned();
    let mut args = extra.to_vec();
    args.extend(["--started-file", &path]);
    let child = publish(ns, base, &args);
    assert!(
        wait_for_file(&started, Duration::from_secs(30)),
        "the WHIP publisher never got media flowing"
    );
    child
}

/// Waits (up to 20 s) for `url` to answer 200 inside the namespace.
fn wait_in(ns: &NetNs, url: &str) {
    let end = Instant::now() + Duration::from_secs(20);
    while ns.curl(url, &[]).map(|r| r.0).unwrap_or(0) != 200 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A report's per-second counts (frames sent or shown).
fn frames(counts: &serde_json::Value) -> Vec<u64> {
    counts
        .as_array()
        .map(|a| a.iter().map(|f| f.as_u64().unwrap_or(0)).collect())
        .unwrap_or_default()
}

/// The first publish of a `--ice-restart-after` report, checked: the restart was answered
/// (200), and media kept flowing after it, on a connected, succeeded pair.
fn restarted(r: &serde_json::Value) -> &serde_json::Value {
    let p = &r["publishes"][0];
    let restart = &p["restart"];
    eprintln!("restart: {restart}\nafter: {}", p["last"]["pair"]);
    assert_eq!(restart["status"], 200, "{r}");
    assert_eq!(p["last"]["connectionState"], "connected", "{p}");
    assert_eq!(p["last"]["pair"]["state"], "succeeded", "{p}");
    let frames = frames(&p["frames"]);
    let at = restart["second"].as_u64().unwrap_or(0) as usize;
    assert!(
        at >= 4 && frames.len() > at + 8 && frames[frames.len() - 1] > frames[at] + 150,
        "media stopped at the restart (second {at}): {frames:?}"
    );
    p
}

/// A player's playhead every 500 ms (`--trace`), for a run whose playback falls short.
fn print_trace(p: &PlayReport) {
    eprintln!(
        "[{}] played {:.1} s, stalls {:?}, latency p50 {:?}, nonfatal {:?}, events {:?}, trace (wall ms, currentTime, latency ms): {:?}",
        p.player,
        p.played,
        p.stalls,
        p.latency.p50,
        p.nonfatal,
        p.events,
        p.trace.iter().map(|x| (x.wall, x.t, x.latency)).collect::<Vec<_>>()
    );
}

fn report(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    eprintln!("[whip.mjs] {line}");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("whip.mjs report {line:?}: {e}"))
}

/// The codec names ffprobe sees in the newest segment of `rendition` (init + segment).
fn probe_codecs(ns: &NetNs, base: &str, dir: &Path) -> Vec<String> {
    let playlist_url = format!("{base}/live/cam/src/index.m3u8");
    let (_, body) = ns.curl(&playlist_url, &[]).unwrap();
    let text = String::from_utf8_lossy(&body).into_owned();
    let map = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .filter_map(|l| l.split('"').next())
        .next_back()
        .unwrap()
        .to_owned();
    let seg = text
        .lines()
        .rfind(|l| l.starts_with("seg"))
        .unwrap()
        .to_owned();
    let mut bytes = ns
        .curl(&format!("{base}/live/cam/src/{map}"), &[])
        .unwrap()
        .1;
    bytes.extend(
        ns.curl(&format!("{base}/live/cam/src/{seg}"), &[])
            .unwrap()
            .1,
    );
    let file = dir.join("probe.mp4");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn chromium_publishes_h264_over_whip_and_hlsjs_and_shaka_play_it_across_a_reload() {
    let _serial = serial();
    if !webrtc_tools(&["ffprobe"]) {
        return;
    }
    let (dir, ns, weir, base) = served("");
    // Publish for 42 s, reloading the page 14 s in (a new session on the same key).
    let publisher = publish_started(
        &ns,
        &base,
        dir.path(),
        &["--codec", "h264", "--seconds", "42", "--reload-after", "14"],
    );
    let master = format!("{base}/live/cam/master.m3u8");
    wait_in(&ns, &master);
    // hls.js (current) and a WHEP viewer from before the reload to after it.
    let whep_started = dir.path().join("whep-started");
    let viewer = watch(&ns, &base, "cam", 22, &whep_started);
    let hls = Player::start_in(&ns, "hls", &master, 14, &["--current", "--trace"])
        .unwrap()
        .join()
        .unwrap();
    print_trace(&hls);
    // Shaka (current) on the second session.
    let shaka = Player::start_in(&ns, "shaka", &master, 12, &["--current"])
        .unwrap()
        .join()
        .unwrap();
    let codecs = probe_codecs(&ns, &base, dir.path());
    let (_, playlist) = ns
        .curl(&format!("{base}/live/cam/src/index.m3u8"), &[])
        .unwrap();
    let playlist = String::from_utf8_lossy(&playlist).into_owned();
    let w = report(viewer);
    let r = report(publisher);
    drop(weir);

    for p in [&hls, &shaka] {
        assert!(p.fatal.is_empty(), "{}: {:?}", p.player, p.fatal);
        assert!(p.played >= 10.0, "{} played {:.1} s", p.player, p.played);
    }
    assert_eq!(codecs, ["h264", "aac"], "ffprobe sees {codecs:?}");
    // Two publishes, both answered and connected, on the namespace's addresses only.
    let publishes = r["publishes"].as_array().unwrap();
    assert_eq!(publishes.len(), 2, "{r}");
    for p in publishes {
        assert_eq!(p["answer"]["status"], 201, "{p}");
        let last = &p["last"];
        assert_eq!(last["connectionState"], "connected", "{p}");
        assert_eq!(last["video"]["codec"], "video/H264", "{p}");
        assert_eq!(last["audio"]["codec"], "audio/opus", "{p}");
        let pair = &last["pair"];
        assert_eq!(pair["state"], "succeeded", "{p}");
        let remote = pair["remote"].as_str().unwrap();
        let local = pair["local"].as_str().unwrap();
        assert!(
            remote.starts_with(&format!("{}:", NetNs::SERVER)),
            "remote {remote}"
        );
        assert!(local.starts_with("10.77.0."), "local {local}");
    }
    assert_eq!(r["deleteStatus"], 200, "{r}");
    // The WHEP viewer saw pictures before the reload and after it (its last seconds are
    // after the new session started), on one connection.
    assert_eq!(w["answer"]["status"], 201, "{w}");
    assert_eq!(w["last"]["connectionState"], "connected", "{w}");
    let frames: Vec<u64> = frames(&w["frames"]);
    let n = frames.len();
    assert!(n >= 20, "{w}");
    assert!(frames[5] > 0, "no pictures before the reload: {frames:?}");
    assert!(
        frames[n - 1] > frames[n - 4] + 30,
        "the WHEP viewer did not recover after the reload: {frames:?}"
    );
    // The reload is a discontinuity in the stream, not a new stream.
    assert!(
        playlist.lines().any(|l| l == "#EXT-X-DISCONTINUITY"),
        "{playlist}"
    );
}

/// A publisher whose network changed restarts ICE (RFC 9725 4.4.2): Chromium's new offer's
/// credentials and candidates go in a PATCH, weir answers 200 with its own (and a new
/// ETag), and the same session goes on: media keeps flowing, hls.js plays through it, and
/// the playlist has no discontinuity and no gap (weir answered 422 to this before).
#[test]
fn chromium_restarts_ice_over_patch_and_the_same_session_goes_on() {
    let _serial = serial();
    if !webrtc_tools(&[]) {
        return;
    }
    let (dir, ns, weir, base) = served("");
    let args = [
        "--codec",
        "h264",
        "--seconds",
        "22",
        "--ice-restart-after",
        "8",
    ];
    let publisher = publish_started(&ns, &base, dir.path(), &args);
    let master = format!("{base}/live/cam/master.m3u8");
    wait_in(&ns, &master);
    let hls = Player::start_in(&ns, "hls", &master, 14, &["--current", "--trace"])
        .unwrap()
        .join()
        .unwrap();
    let (_, playlist) = ns
        .curl(&format!("{base}/live/cam/src/index.m3u8"), &[])
        .unwrap();
    let playlist = String::from_utf8_lossy(&playlist).into_owned();
    let r = report(publisher);
    drop(weir);
    print_trace(&hls);

    let p = restarted(&r);
    let restart = &p["restart"];
    // Media now flows on the new ICE session's candidate pair.
    assert_ne!(restart["pairBefore"]["id"], p["last"]["pair"]["id"], "{r}");
    assert!(
        restart["etag"].as_str().is_some_and(|e| e.starts_with('"')),
        "{r}"
    );
    assert_ne!(restart["ufrag"], restart["before"], "{r}");
    assert!(
        restart["ufrag"].as_str().is_some_and(|u| !u.is_empty()),
        "{r}"
    );
    assert_eq!(r["deleteStatus"], 200, "{r}");
    assert!(hls.fatal.is_empty(), "hls.js: {:?}", hls.fatal);
    assert!(hls.played >= 10.0, "hls.js played {:.1} s", hls.played);
    // One session: no discontinuity, no gap.
    assert!(
        !playlist.contains("#EXT-X-DISCONTINUITY\n") && !playlist.contains("#EXT-X-GAP"),
        "{playlist}"
    );
}

/// STUN/TURN servers (RFC 9725 4.6): weir names a TURN server (coturn, in the namespace, with
/// a shared secret) in its 201's `Link: rel="ice-server"`, with TURN REST API credentials
/// made for that answer; the publisher takes them, may only relay
/// (iceTransportPolicy "relay", as behind a NAT that lets nothing else through) and restarts
/// ICE: its media then reaches weir through the TURN server, on the same session.
#[test]
fn a_publisher_that_may_only_relay_publishes_through_the_turn_server_weir_names() {
    let _serial = serial();
    if !webrtc_tools(&["turnserver"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ns = NetNs::new().unwrap();
    let turn_url = format!("turn:{}:3478?transport=udp", NetNs::SERVER);
    let cfg = config_with(
        dir.path(),
        &format!(
            "[[whip.ice_servers]]\nurl = \"{turn_url}\"\nsecret = \"turn-test-secret\"\nttl_s = 600\n"
        ),
    );
    let weir = Weir::start_in(&ns, &format!("{}:0", NetNs::SERVER), &["-c", &cfg]).unwrap();
    let turn_log = dir.path().join("turn.log");
    let _turn = Proc {
        child: ns
            .command("turnserver")
            .args([
                "-n",
                "--verbose",
                &format!("--listening-ip={}", NetNs::SERVER),
                &format!("--relay-ip={}", NetNs::SERVER),
                "--listening-port=3478",
                "--use-auth-secret",
                "--static-auth-secret=turn-test-secret",
                "--realm=weir.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--simple-log",
                &format!("--log-file={}", turn_log.to_string_lossy()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        name: "turnserver".into(),
    };
    let base = format!("http://{}", weir.http);
    let args = [
        "--codec",
        "h264",
        "--seconds",
        "18",
        "--ice-restart-after",
        "6",
        "--relay",
    ];
    let publisher = publish_started(&ns, &base, dir.path(), &args);
    let r = report(publisher);
    drop(weir);
    let log = std::fs::read_to_string(&turn_log).unwrap_or_default();

    let p = &r["publishes"][0];
    assert_eq!(p["answer"]["status"], 201, "{r}");
    assert!(
        p["answer"]["links"]
            .as_str()
            .is_some_and(|l| l.contains(&format!("<{turn_url}>; rel=\"ice-server\""))),
        "{r}"
    );
    let p = restarted(&r);
    let restart = &p["restart"];
    assert_eq!(restart["iceServers"][0]["urls"], turn_url.as_str(), "{r}");
    // TURN REST API credentials, made for this answer: `{expiry}:weir`, ten minutes on.
    let user = restart["iceServers"][0]["username"]
        .as_str()
        .unwrap_or_default();
    let expiry: u64 = user
        .strip_suffix(":weir")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let now = unix_ms() / 1000;
    assert!(expiry > now + 500 && expiry <= now + 600, "{user}");
    // The media now goes through the relay.
    let local = p["last"]["pair"]["local"].as_str().unwrap_or_default();
    assert!(local.ends_with(" relay"), "not relayed: {local} ({p})");
    assert!(
        log.contains("ALLOCATE") || log.contains("allocation"),
        "coturn saw no allocation:\n{log}"
    );
}

/// A WHIP offer with Chromium's shape: BUNDLEd Opus audio and H.264 (packetization mode 1).
const OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n\
a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n\
a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
a=setup:actpass\r\na=mid:1\r\na=sendonly\r\na=rtcp-mux\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

/// (status, headers, body) of one request with curl.
fn request(method: &str, url: &str, headers: &[&str], body: Option<&str>) -> (u16, String, String) {
    let mut args = vec!["-sS", "-i", "-X", method, "--max-time", "10"];
    for h in headers {
        args.extend(["-H", h]);
    }
    if let Some(b) = body {
        args.extend(["--data-binary", b]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn whip_refuses_bad_offers_tokens_and_resources_with_their_4xx_and_nothing_else_notices() {
    let _serial = serial();
    if !require(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weir.toml");
    std::fs::write(
        &path,
        format!(
            "[whip]\nudp = \"127.0.0.1:0\"\n[[whip.ice_servers]]\nurl = \"stun:stun.example.net:3478\"\n\
             [[whip.ice_servers]]\nurl = \"turn:turn.example.net:3478?transport=udp\"\nusername = \"u1\"\n\
             credential = \"p1\"\n[[ingest.keys]]\nkey = \"{KEY}\"\nstream = \"cam\"\n"
        ),
    )
    .unwrap();
    let weir = Weir::start(&["-c", &path.to_string_lossy()]).unwrap();
    let test = weir.url("/live/test/src/index.m3u8");
    wait_for_200(&test, Duration::from_secs(20)).unwrap();
    let whip = weir.url(&format!("/whip/{KEY}"));
    let sdp = "Content-Type: application/sdp";

    // CORS preflight.
    let (st, head, _) = request("OPTIONS", &whip, &["Origin: https://example.com"], None);
    assert_eq!(st, 204);
    assert!(
        head.contains("access-control-allow-methods: post, options"),
        "{head}"
    );
    assert!(
        head.contains("access-control-expose-headers: location"),
        "{head}"
    );
    assert!(head.contains("accept-post: application/sdp"), "{head}");

    // (what, url, headers, body, status, a phrase of the answer)
    type Case<'a> = (&'a str, String, Vec<&'a str>, String, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed SDP",
            whip.clone(),
            vec![sdp],
            "hello".into(),
            400,
            "malformed SDP offer",
        ),
        (
            "no usable codec",
            whip.clone(),
            vec![sdp],
            OFFER.replace("H264/90000", "AV1/90000"),
            422,
            "no usable codec",
        ),
        (
            "wrong token",
            whip.clone(),
            vec![sdp, "Authorization: Bearer not-the-key"],
            OFFER.into(),
            401,
            "publish refused",
        ),
        (
            "unknown key",
            weir.url("/whip/nobody"),
            vec![sdp],
            OFFER.into(),
            401,
            "publish refused",
        ),
        (
            "no key at all",
            weir.url("/whip"),
            vec![sdp],
            OFFER.into(),
            401,
            "publish refused",
        ),
        (
            "wrong content type",
            whip.clone(),
            vec!["Content-Type: text/plain"],
            OFFER.into(),
            415,
            "application/sdp",
        ),
        (
            "offer too large",
            whip.clone(),
            vec![sdp],
            format!("{OFFER}{}", "a=x-padding:0123456789abcdef\r\n".repeat(4000)),
            413,
            "larger than",
        ),
    ];
    for (what, url, headers, body, want, text) in &cases {
        let (st, _, got) = request("POST", url, headers, Some(body));
        assert_eq!(st, *want, "{what}: {got}");
        assert!(got.contains(text), "{what}: {got:?} lacks {text:?}");
    }
    for (method, ct) in [
        ("DELETE", None),
        (
            "PATCH",
            Some("Content-Type: application/trickle-ice-sdpfrag"),
        ),
    ] {
        let headers: Vec<&str> = ct.into_iter().collect();
        let (st, _, got) = request(
            method,
            &weir.url("/whip/session/0123456789abcdef0123456789abcdef"),
            &headers,
            ct.map(|_| "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n"),
        );
        assert_eq!(st, 404, "{method} on an unknown session: {got}");
        assert!(got.contains("no such WHIP session"), "{got}");
    }

    // A good offer is answered (no media follows: the session times out by itself).
    let (st, head, answer) = request("POST", &whip, &[sdp], Some(OFFER));
    assert_eq!(st, 201, "{answer}");
    assert!(answer.contains("H264/90000") && answer.to_ascii_lowercase().contains("opus/48000"));
    assert!(answer.contains("a=candidate:"), "{answer}");
    // The configured STUN and TURN servers, as RFC 9725 4.6 Link headers.
    assert!(
        head.contains("link: <stun:stun.example.net:3478>; rel=\"ice-server\"\n"),
        "{head}"
    );
    assert!(
        head.contains("link: <turn:turn.example.net:3478?transport=udp>; rel=\"ice-server\"; username=\"u1\"; credential=\"p1\"; credential-type=\"password\"\n"),
        "{head}"
    );
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_owned();
    assert!(head.contains("etag: \""), "{head}");
    let resource = weir.url(&location);
    let frag = "Content-Type: application/trickle-ice-sdpfrag";
    let (st, _, got) = request(
        "PATCH",
        &resource,
        &[frag],
        Some("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host\r\n"),
    );
    assert_eq!(st, 204, "trickle: {got}");
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .trim()
        .to_owned();
    let (st, _, got) = request(
        "PATCH",
        &resource,
        &[frag, "If-Match: *"],
        Some("a=ice-ufrag:other\r\n"),
    );
    assert_eq!(st, 400, "an ICE restart without its password: {got}");
    // An ICE restart: weir's new credentials and candidates, and a new ETag.
    let (st, restart_head, got) = request(
        "PATCH",
        &resource,
        &[frag, "If-Match: *"],
        Some("a=ice-ufrag:other\r\na=ice-pwd:0123456789abcdefghijklmz\r\n"),
    );
    assert_eq!(st, 200, "an ICE restart: {got}");
    assert!(
        restart_head.contains("content-type: application/trickle-ice-sdpfrag"),
        "{restart_head}"
    );
    let ufrag = |text: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
            .map(str::to_owned)
    };
    assert!(
        got.contains("a=ice-pwd:") && got.contains(" typ host"),
        "{got}"
    );
    assert_ne!(ufrag(&got), None, "{got}");
    assert_ne!(ufrag(&got), ufrag(&answer), "{got}");
    let new_etag = restart_head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(new_etag, etag);
    let (st, _, got) = request(
        "PATCH",
        &resource,
        &[frag, &format!("If-Match: {etag}")],
        Some("a=end-of-candidates\r\n"),
    );
    assert_eq!(st, 412, "the ETag from before the restart: {got}");
    let (st, _, got) = request(
        "PATCH",
        &resource,
        &[frag, &format!("If-Match: {new_etag}")],
        Some("a=end-of-candidates\r\n"),
    );
    assert_eq!(st, 204, "the restart's ETag: {got}");
    let (st, _, _) = request("DELETE", &resource, &[], None);
    assert_eq!(st, 200);
    // The session is gone (its task ends and forgets it).
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, _, _) = request("DELETE", &resource, &[], None);
        if st == 404 {
            break;
        }
        assert!(Instant::now() < end, "DELETE kept answering {st}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (_, metrics) = curl(&weir.url("/metrics"), &[]).unwrap();
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    assert!(
        metrics.lines().any(|l| l == "weir_whip_sessions_total 1"),
        "one session was answered: {metrics}"
    );
    // Nothing else noticed: the test stream kept going, and weir is up.
    let before = media_sequence(&test);
    std::thread::sleep(Duration::from_secs(3));
    let after = media_sequence(&test);
    assert!(
        after > before,
        "the test stream stopped: {before} → {after}"
    );
    drop(weir);
}

fn media_sequence(url: &str) -> u64 {
    let (st, body) = curl(url, &[]).unwrap();
    assert_eq!(st, 200);
    let text = String::from_utf8_lossy(&body).into_owned();
    // The live edge: the media sequence plus the segments listed.
    let msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    let parts = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .count() as u64;
    msn * 1000 + parts
}

#[test]
fn chromium_publishes_vp8_over_whip_and_weir_makes_it_h264_for_hlsjs_and_shaka() {
    let _serial = serial();
    if !webrtc_tools(&["ffprobe"]) {
        return;
    }
    // A video ceiling well under what Chromium sends at 640x360, to see it honoured.
    let (dir, ns, weir, base) = served("max_video_kbps = 150");
    let started = dir.path().join("started");
    // The key in the path this time (`POST /whip/{key}`), and VP8 only in the offer.
    let publisher = ns
        .command("node")
        .current_dir(repo_root().join("tests/e2e"))
        .args(["whip.mjs", "--page", &format!("{base}/")])
        .args(["--whip", &format!("{base}/whip/{KEY}")])
        .args(["--codec", "vp8", "--seconds", "32"])
        .args(["--started-file", &started.to_string_lossy()])
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    assert!(
        wait_for_file(&started, Duration::from_secs(30)),
        "the WHIP publisher never got media flowing"
    );
    let master = format!("{base}/live/cam/master.m3u8");
    wait_in(&ns, &master);
    // The pinned player versions here (the H.264 test plays the current ones).
    let hls = Player::start_in(&ns, "hls", &master, 12, &[])
        .unwrap()
        .join()
        .unwrap();
    let shaka = Player::start_in(&ns, "shaka", &master, 12, &[])
        .unwrap()
        .join()
        .unwrap();
    let codecs = probe_codecs(&ns, &base, dir.path());
    let (_, mv) = ns.curl(&master, &[]).unwrap();
    let mv = String::from_utf8_lossy(&mv).into_owned();
    let r = report(publisher);
    drop(weir);

    for p in [&hls, &shaka] {
        assert!(p.fatal.is_empty(), "{}: {:?}", p.player, p.fatal);
        assert!(p.played >= 10.0, "{} played {:.1} s", p.player, p.played);
    }
    let p = &r["publishes"][0];
    assert_eq!(p["answer"]["status"], 201, "{r}");
    assert_eq!(p["last"]["video"]["codec"], "video/VP8", "{r}");
    // b=AS:150 in the answer: the publisher's video stayed under it (32 s published).
    let kbps = p["last"]["video"]["bytesSent"].as_f64().unwrap() * 8.0 / 32.0 / 1000.0;
    eprintln!("VP8 publisher sent {kbps:.0} kbit/s of video under a 150 kbit/s ceiling");
    assert!(
        kbps < 150.0 * 1.15,
        "{kbps:.0} kbit/s: the ceiling was not honoured: {r}"
    );
    assert_eq!(p["last"]["pair"]["state"], "succeeded", "{r}");
    assert_eq!(codecs, ["h264", "aac"], "ffprobe sees {codecs:?}");
    assert!(mv.contains("CODECS=\"avc1."), "{mv}");
}

/// `node whep.mjs` inside the namespace, watching `stream` for `seconds`.
fn watch(
    ns: &NetNs,
    base: &str,
    stream: &str,
    seconds: u32,
    started: &Path,
) -> std::process::Child {
    ns.command("node")
        .current_dir(repo_root().join("tests/e2e"))
        .args(["whep.mjs", "--page", &format!("{base}/")])
        .args(["--whep", &format!("{base}/whep/{stream}")])
        .args(["--seconds", &seconds.to_string()])
        .args(["--started-file", &started.to_string_lossy()])
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn whep_plays_an_rtmp_stream_in_chromium_within_half_a_second_of_ingest() {
    let _serial = serial();
    if !webrtc_tools(&["ffmpeg"]) {
        return;
    }
    let (dir, ns, weir, base) = served("[api]\ntoken = \"webrtc-api-token-0123456789\"");
    // A stream from the ffmpeg CLI over RTMP (inside the namespace), 1 s GOP, on the key
    // that publishes "cam".
    let _ff = ffmpeg_publish_in(&ns, &weir.rtmp_url(KEY), 30, "640x360", 30).unwrap();
    let master = format!("{base}/live/cam/master.m3u8");
    wait_in(&ns, &master);
    let viewer = watch(&ns, &base, "cam", 12, &dir.path().join("started"));
    // While it plays, the operator API lists the viewer with its figures.
    std::thread::sleep(Duration::from_secs(8));
    let (code, api) = ns
        .curl(
            &format!("{base}/api/v1/webrtc"),
            &["-H", "Authorization: Bearer webrtc-api-token-0123456789"],
        )
        .unwrap();
    assert_eq!(code, 200);
    let api: serde_json::Value = serde_json::from_slice(&api).unwrap();
    eprintln!("[api/v1/webrtc] {api}");
    let r = report(viewer);
    let (_, metrics) = ns.curl(&format!("{base}/metrics"), &[]).unwrap();
    let metrics = String::from_utf8_lossy(&metrics).into_owned();
    drop(weir);
    assert!(
        metrics.lines().any(|l| l == "weir_whep_viewers_total 1"),
        "{metrics}"
    );

    assert_eq!(r["answer"]["status"], 201, "{r}");
    let last = &r["last"];
    assert_eq!(last["connectionState"], "connected", "{r}");
    assert_eq!(last["pair"]["state"], "succeeded", "{r}");
    assert!(
        last["pair"]["remote"]
            .as_str()
            .unwrap()
            .starts_with(NetNs::SERVER),
        "{r}"
    );
    assert_eq!(last["video"]["codec"], "video/H264", "{r}");
    assert_eq!(last["audio"]["codec"], "audio/opus", "{r}");
    assert!(
        last["audio"]["packetsReceived"].as_u64().unwrap() > 200,
        "{r}"
    );
    assert!(
        last["video"]["framesDecoded"].as_u64().unwrap() > 200,
        "{r}"
    );
    assert_eq!(last["size"], serde_json::json!([640, 360]), "{r}");
    let lat = &r["latencyMs"];
    eprintln!(
        "WHEP glass-to-glass latency: p50 {} ms, p95 {} ms over {} frames",
        lat["p50"], lat["p95"], lat["n"]
    );
    assert!(lat["n"].as_u64().unwrap() > 200, "{r}");
    assert!(
        lat["p50"].as_u64().unwrap() < 500,
        "latency over the target: {r}"
    );
    assert_eq!(r["deleteStatus"], 200, "{r}");
    let v = &api["whep"][0];
    assert_eq!(v["stream"], "cam", "{api}");
    assert_eq!(v["connected"], true, "{api}");
    assert!(
        v["peer"]
            .as_str()
            .unwrap_or_default()
            .starts_with("10.77.0."),
        "{api}"
    );
    assert!(v["rtt_ms"].as_f64().is_some(), "{api}");
    assert!(v["kbps_out"].as_f64().unwrap() > 50.0, "{api}");
    assert!(v["frames"].as_u64().unwrap() > 60, "{api}");
}

#[test]
fn the_dashboard_publishes_the_camera_over_whip_and_previews_it_over_whep() {
    let _serial = serial();
    if !webrtc_tools(&[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (ns, weir) = serve_in_namespace(dir.path(), "");
    let out = ns
        .command("node")
        .current_dir(repo_root().join("tests/e2e"))
        .args([
            "dashboard-webrtc.mjs",
            "--page",
            &format!("http://{}/", weir.http),
        ])
        .args(["--key", KEY, "--stream", "cam"])
        .env("CHROMIUM", chromium())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    drop(weir);
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    eprintln!("[dashboard-webrtc] {r}");
    assert_eq!(r["whipVisible"], true, "{r}");
    assert!(
        r["whipStatus"].as_str().unwrap().starts_with("publishing"),
        "{r}"
    );
    assert_eq!(r["status"], "playing (WebRTC)", "{r}");
    let latency: f64 = r["latency"]
        .as_str()
        .and_then(|l| l.split(' ').next())
        .and_then(|l| l.parse().ok())
        .unwrap();
    assert!(latency < 1.0, "{r}");
    assert!(
        r["framesIn2s"].as_u64().unwrap() > 20,
        "the preview does not move: {r}"
    );
    assert_eq!(r["whipStopped"], "stopped", "{r}");
}
