//! Load and faults together (issue 12), against the real binary while hls.js plays:
//! thousands of idle HTTP/2 connections, slow `/api/` bodies (with and without the token),
//! and 200 RTMP publishers with random keys. `/healthz` keeps answering within a second,
//! the player sees no fatal error, RSS stays bounded, idle connections are closed on
//! time; then SIGTERM drains with no 5xx and a clean exit.
//!
//! The attackers connect from other loopback addresses (127.0.0.2 and up: all of
//! 127.0.0.0/8 is loopback on Linux), so that the per-address caps meet them and not the
//! player, which comes from 127.0.0.1 like a viewer on another network would.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use weir_e2e::*;

const TOKEN: &str = "load-test-token-0123456789";
const IDLE_H2: usize = 3000;
const IDLE_SOURCES: u8 = 20; // 150 connections per address, under the 256 default cap
const SLOW_BODIES: usize = 40;
const PUBLISHERS: usize = 200;

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddrV4::new(from, 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Seconds curl took for one GET, and its status.
fn timed_get(url: &str) -> (u16, f64) {
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code} %{time_total}"])
        .args(["--max-time", "5", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, secs) = text.split_once(' ').unwrap_or(("0", "99"));
    (code.parse().unwrap_or(0), secs.parse().unwrap_or(99.0))
}

/// An HTTP/2 client that sends the connection preface and an empty SETTINGS frame, then
/// says nothing more.
fn idle_h2(from: Ipv4Addr, to: SocketAddr) -> Option<TcpStream> {
    let mut s = connect_from(from, to).ok()?;
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    s.write_all(&hello).ok()?;
    Some(s)
}

/// Whether the server has closed `s` (EOF or reset), without blocking.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // the server's SETTINGS, GOAWAY…
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// POSTs a cue with a body that trickles a byte a second; returns the status weir answered
/// with (0: none within `within`).
fn slow_body(from: Ipv4Addr, to: SocketAddr, token: &str, within: Duration) -> u16 {
    let Ok(mut s) = connect_from(from, to) else {
        return 0;
    };
    let head = format!(
        "POST /api/v1/streams/test/cues HTTP/1.1\r\nHost: weir\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Content-Length: 2000\r\n\r\n"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return 0;
    }
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let end = Instant::now() + within;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            Err(_) => {
                // No answer yet: one more byte of body.
                let _ = s.write_all(b" ");
            }
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// An RTMP publisher with a random key: handshake, connect, publish. Returns true when
/// weir accepted the publish.
fn random_key_publisher(from: Ipv4Addr, to: SocketAddr, n: usize) -> bool {
    use rml_rtmp::sessions::{
        ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult,
        PublishRequestType,
    };
    let Ok(mut s) = connect_from(from, to) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.resize(1 + 1536, 0);
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    if s.write_all(&c0c1).is_err() || s.read_exact(&mut s0s1s2).is_err() {
        return false;
    }
    if s.write_all(&s0s1s2[1..1 + 1536]).is_err() {
        return false;
    }
    let Ok((mut client, results)) = ClientSession::new(ClientSessionConfig::new()) else {
        return false;
    };
    let send = |s: &mut TcpStream, results: Vec<ClientSessionResult>| -> Vec<ClientSessionEvent> {
        let mut events = Vec::new();
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => {
                    let _ = s.write_all(&p.bytes);
                }
                ClientSessionResult::RaisedEvent(e) => events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        events
    };
    send(&mut s, results);
    let Ok(r) = client.request_connection("live".into()) else {
        return false;
    };
    send(&mut s, vec![r]);
    let key = format!("random-{n}-{:x}", unix_ms().wrapping_mul(2_654_435_761));
    let mut buf = [0u8; 4096];
    let mut asked = false;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let Ok(results) = client.handle_input(&buf[..n]) else {
            return false;
        };
        for event in send(&mut s, results) {
            match event {
                ClientSessionEvent::ConnectionRequestAccepted if !asked => {
                    asked = true;
                    if let Ok(r) = client.request_publishing(key.clone(), PublishRequestType::Live)
                    {
                        send(&mut s, vec![r]);
                    }
                }
                ClientSessionEvent::PublishRequestAccepted => return true,
                ClientSessionEvent::ConnectionRequestRejected { .. } => return false,
                _ => {}
            }
        }
    }
}

#[test]
fn floods_of_connections_bodies_and_publishers_leave_the_player_alone_then_sigterm_drains() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    // A mapped key (so random keys are refused), short timeouts so the test sees them.
    std::fs::write(
        &config,
        format!(
            "[server]\nidle_timeout_s = 6\napi_body_timeout_s = 2\nshutdown_grace_s = 8\n\
             [api]\ntoken = \"{TOKEN}\"\n\
             [[ingest.keys]]\nkey = \"k-owner-77c1d0\"\nstream = \"owned\"\n"
        ),
    )
    .unwrap();
    let mut weir = Weir::start(&["--config", config.to_str().unwrap()]).unwrap();
    let pid = weir.proc.child.id();
    let (http, rtmp) = (weir.http, weir.rtmp.unwrap());
    let master = weir.url("/live/test/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    let rss_before = rss_kib(pid);
    let player = Player::start("hls", &master, 24).unwrap();

    // 3,000 idle HTTP/2 connections from 20 addresses.
    let mut idle = Vec::new();
    for i in 0..IDLE_H2 {
        let from = Ipv4Addr::new(127, 0, 0, 2 + (i % usize::from(IDLE_SOURCES)) as u8);
        if let Some(s) = idle_h2(from, http) {
            idle.push(s);
        }
    }
    let opened = idle.len();
    let opened_at = Instant::now();
    assert!(
        opened >= IDLE_H2 * 9 / 10,
        "only {opened} idle connections opened"
    );

    // Slow API bodies, half with the right token (408 after 2 s), half with a wrong one
    // (401 before the body).
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let mut slow = Vec::new();
    for i in 0..SLOW_BODIES {
        let statuses = Arc::clone(&statuses);
        let token = if i % 2 == 0 {
            TOKEN
        } else {
            "wrong-token-wrong-token"
        };
        slow.push(std::thread::spawn(move || {
            let code = slow_body(
                Ipv4Addr::new(127, 0, 0, 30),
                http,
                token,
                Duration::from_secs(8),
            );
            statuses.lock().unwrap().push((i % 2 == 0, code));
        }));
    }

    // 200 publishers with random keys, 16 at a time from each of 13 addresses.
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut publishers = Vec::new();
    for i in 0..PUBLISHERS {
        let accepted = Arc::clone(&accepted);
        publishers.push(std::thread::spawn(move || {
            let from = Ipv4Addr::new(127, 0, 0, 40 + (i % 13) as u8);
            if random_key_publisher(from, rtmp, i) {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Meanwhile /healthz answers within a second, every time.
    let mut slowest = 0f64;
    for _ in 0..10 {
        let (code, secs) = timed_get(&weir.url("/healthz"));
        assert_eq!(code, 200);
        slowest = slowest.max(secs);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(slowest < 1.0, "/healthz took {slowest:.3} s under load");
    for t in publishers {
        t.join().unwrap();
    }
    for t in slow {
        t.join().unwrap();
    }
    let rss_loaded = rss_kib(pid);
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        0,
        "a random key was allowed to publish"
    );
    let statuses = statuses.lock().unwrap().clone();
    for (with_token, code) in &statuses {
        let want = if *with_token { 408 } else { 401 };
        assert_eq!(*code, want, "slow body (token: {with_token}): {statuses:?}");
    }

    // The idle connections are closed once idle_timeout_s (6 s) has passed: all of them
    // within twice that of the last one opening.
    let deadline = opened_at + Duration::from_secs(12);
    let mut open: Vec<TcpStream> = idle;
    while !open.is_empty() && Instant::now() < deadline {
        open.retain_mut(|s| !closed_by_server(s));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        open.is_empty(),
        "{} of {opened} idle connections still open",
        open.len()
    );

    let report = player.join().unwrap();
    assert!(report.fatal.is_empty(), "{report:?}");
    assert!(report.played >= 20.0, "{report:?}");
    eprintln!(
        "RSS {} MiB before, {} MiB under load ({opened} idle HTTP/2, {SLOW_BODIES} slow bodies, \
         {PUBLISHERS} publishers); /healthz slowest {slowest:.3} s",
        rss_before / 1024,
        rss_loaded / 1024
    );
    assert!(
        rss_loaded < rss_before + 256 * 1024,
        "RSS grew from {rss_before} to {rss_loaded} KiB"
    );

    // SIGTERM while viewers poll: no 5xx until the listener is gone, a clean exit, and no
    // EXT-X-ENDLIST (a restart is not the end of the stream).
    let drain = sigterm_while_polling(&mut weir);
    assert!(drain.ok > 10, "{drain:?}");
    assert!(
        drain.server_errors.is_empty(),
        "5xx during the drain: {drain:?}"
    );
    assert!(!drain.saw_endlist, "a restart ended the stream");
    let log = weir.log().join("\n");
    assert!(log.contains("SIGTERM"), "the drain is logged");
}

/// What viewers saw while weir drained.
#[derive(Debug, Default)]
struct Drain {
    ok: usize,
    server_errors: Vec<u16>,
    saw_endlist: bool,
}

/// Polls the test stream's playlists and /healthz, sends SIGTERM, and waits (bounded) for a
/// clean exit.
fn sigterm_while_polling(weir: &mut Weir) -> Drain {
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Drain::default()));
    let mut pollers = Vec::new();
    for path in [
        "/live/test/src/index.m3u8",
        "/live/test/master.m3u8",
        "/healthz",
    ] {
        let (stop, seen, url) = (Arc::clone(&stop), Arc::clone(&seen), weir.url(path));
        pollers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (code, body) = curl(&url, &["--max-time", "5"]).unwrap_or((0, Vec::new()));
                let mut seen = seen.lock().unwrap();
                match code {
                    200 => seen.ok += 1,
                    c if c >= 500 => seen.server_errors.push(c),
                    _ => {}
                }
                seen.saw_endlist |= String::from_utf8_lossy(&body).contains("#EXT-X-ENDLIST");
                drop(seen);
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }
    std::thread::sleep(Duration::from_secs(1));
    let pid = weir.proc.child.id();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = weir.proc.wait_timeout(Duration::from_secs(12));
    stop.store(true, Ordering::Relaxed);
    for p in pollers {
        p.join().unwrap();
    }
    let exit = exit.expect("weir did not exit within its grace period");
    assert!(exit.success(), "weir exited with {exit} after SIGTERM");
    Arc::try_unwrap(seen).unwrap().into_inner().unwrap()
}

/// `server.end_streams_on_shutdown`: a server stopped for good ends its streams first.
#[test]
fn a_server_stopped_for_good_ends_its_streams_with_endlist() {
    let _serial = serial();
    if !require(&["curl"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        "[server]\nend_streams_on_shutdown = true\nshutdown_grace_s = 5\n",
    )
    .unwrap();
    let mut weir = Weir::start(&["--config", config.to_str().unwrap()]).unwrap();
    wait_for_200(&weir.url("/live/test/master.m3u8"), Duration::from_secs(20)).unwrap();
    let drain = sigterm_while_polling(&mut weir);
    assert!(
        drain.saw_endlist,
        "no EXT-X-ENDLIST during the drain: {drain:?}"
    );
    assert!(drain.server_errors.is_empty(), "{drain:?}");
}
