//! Hostile and broken input against the real binary: each bad session or request gets a
//! clear error, weir never panics, and a healthy stream keeps advancing throughout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_e2e::*;

fn live_msn(weir: &Weir, path: &str) -> u64 {
    let (code, text) = curl(&weir.url(path), &[]).unwrap();
    assert_eq!(code, 200);
    let (msn, n) = live_edge(&text).unwrap();
    msn + n as u64
}

/// Sends `bytes` to the RTMP port and waits (bounded) for weir to close the connection.
fn send_and_expect_close(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = [0u8; 8192];
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) if Instant::now() > end => panic!("weir kept a hostile connection open"),
            Ok(_) => {}
        }
    }
}

#[test]
fn garbage_rtmp_and_malformed_requests_leave_other_streams_playing() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let mut weir = Weir::start(&["--no-test-source"]).unwrap();
    let rtmp = weir.rtmp.unwrap();
    let _healthy = ffmpeg_publish(&weir.rtmp_url("healthy"), 40, "640x360", 60).unwrap();
    let playlist = "/live/healthy/src/index.m3u8";
    wait_for_200(&weir.url(playlist), Duration::from_secs(20)).unwrap();
    let before = live_msn(&weir, playlist);

    // 1. Garbage instead of a handshake.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    send_and_expect_close(rtmp, &garbage);
    // 2. A truncated handshake: C0 and a third of C1, then silence (handshake timeout).
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 500));
    send_and_expect_close(rtmp, &c0c1);
    // 3. A valid handshake followed by garbage chunks, including a message header that
    //    claims a 16 MiB message.
    {
        let mut s = TcpStream::connect(rtmp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut hello = vec![3u8];
        hello.extend(std::iter::repeat_n(7u8, 1536));
        s.write_all(&hello).unwrap();
        let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
        s.read_exact(&mut s0s1s2).unwrap();
        s.write_all(&s0s1s2[1..1537]).unwrap(); // C2 echoes S1
        let mut chunk = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0];
        chunk.extend(&garbage);
        let _ = s.write_all(&chunk);
        let mut buf = [0u8; 4096];
        let end = Instant::now() + Duration::from_secs(15);
        while !matches!(s.read(&mut buf), Ok(0) | Err(_)) {
            assert!(Instant::now() < end, "weir kept the garbage session open");
        }
    }
    // 4. A publish that never sends a keyframe: ffmpeg with every keyframe packet dropped.
    let mut nokey = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
        ])
        .args([
            "-t",
            "14",
            "-c:v",
            "libx264",
            "-tune",
            "zerolatency",
            "-g",
            "30",
        ])
        .args([
            "-bsf:v",
            "noise=drop=key",
            "-f",
            "flv",
            &weir.rtmp_url("nokey"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // 5. Malformed LL-HLS query values: 400 with a reason, never a hang or a 5xx.
    for q in [
        "_HLS_msn=abc",
        "_HLS_msn=-1",
        "_HLS_msn=99999999999999999999999",
        "_HLS_msn=",
        "_HLS_part=1",
        "_HLS_msn=1&_HLS_part=x",
        "_HLS_msn=99999999999",
    ] {
        let (code, body) = curl(&weir.url(&format!("{playlist}?{q}")), &[]).unwrap();
        assert_eq!(code, 400, "{q} → {code} {}", String::from_utf8_lossy(&body));
    }
    // Part numbers derive from the wall clock (~7e9 today): a far-future one is 404, one
    // from before the window 410.
    let (code, _) = curl(&weir.url("/live/healthy/src/part99999999999999.m4s"), &[]).unwrap();
    assert_eq!(code, 404);
    let (code, _) = curl(&weir.url("/live/healthy/src/part1.m4s"), &[]).unwrap();
    assert_eq!(code, 410);
    let (code, _) = curl(&weir.url("/live/../etc/passwd"), &["--path-as-is"]).unwrap();
    assert!(code == 400 || code == 404, "{code}");

    // A second publisher on the busy key is refused; the first keeps going.
    let mut dup = ffmpeg_publish(&weir.rtmp_url("healthy"), 5, "320x240", 30).unwrap();
    let dup_status = dup.wait_timeout(Duration::from_secs(20));
    assert!(
        dup_status.is_some_and(|s| !s.success()),
        "a second publisher on a busy key was accepted"
    );

    let _ = nokey.wait();
    let (code, _) = curl(&weir.url("/live/nokey/src/index.m3u8"), &[]).unwrap();
    assert_eq!(
        code, 404,
        "a stream without keyframes must never be published"
    );

    std::thread::sleep(Duration::from_secs(3));
    let after = live_msn(&weir, playlist);
    assert!(
        after > before + 1,
        "the healthy stream stalled: msn {before} → {after}"
    );
    assert!(weir.proc.is_running(), "weir died");
    let log = weir.log().join("\n");
    assert!(!log.contains("panicked"), "weir panicked:\n{log}");
    assert!(
        log.to_lowercase().contains("keyframe"),
        "no log line names the missing keyframe:\n{log}"
    );
}
