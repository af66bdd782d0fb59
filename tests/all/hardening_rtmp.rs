//! Issue 12, item 1, against the real binary: RTMP messages that would have aborted the
//! whole process (rml_amf0 recursing once per nested AMF container on a tokio worker's
//! stack) end only their own session, with a log line that says why, while a real ffmpeg
//! publisher keeps streaming to a playing hls.js.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::messages::{MessagePayload, RtmpMessage};
use rml_rtmp::rml_amf0::{self, Amf0Value};
use rml_rtmp::time::RtmpTimestamp;
use weir_e2e::*;

const AMF0_DATA: u8 = 18;
const AMF0_COMMAND: u8 = 20;

/// Fails the test, with weir's last words, if weir has exited (before the fix, the bombs
/// aborted it with "stack overflow").
fn assert_alive(weir: &mut Weir, after: &str) {
    if let Some(status) = weir.proc.wait_timeout(Duration::from_millis(300)) {
        let log = weir.log();
        let tail = log[log.len().saturating_sub(5)..].join("\n");
        panic!("weir exited ({status}) after the {after}:\n{tail}");
    }
}

/// The media sequence number of the playlist's last segment.
fn last_msn(weir: &Weir, path: &str) -> u64 {
    let (code, text) = curl(&weir.url(path), &[]).unwrap();
    assert_eq!(code, 200, "{path}");
    let (msn, segments) = live_edge(&text).unwrap();
    msn + segments as u64
}

/// A TCP connection that has completed an RTMP handshake (the original specification's:
/// C1 all zeros, C2 echoes S1).
fn handshaken(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.resize(1 + 1536, 0);
    s.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
    s.read_exact(&mut s0s1s2).unwrap();
    s.write_all(&s0s1s2[1..1 + 1536]).unwrap();
    s
}

fn payload(type_id: u8, stream: u32, data: Vec<u8>) -> MessagePayload {
    MessagePayload {
        timestamp: RtmpTimestamp::new(0),
        message_stream_id: stream,
        type_id,
        data: Bytes::from(data),
    }
}

fn command(
    ser: &mut ChunkSerializer,
    stream: u32,
    name: &str,
    tx: f64,
    args: &[Amf0Value],
) -> Vec<u8> {
    let mut args = args.iter().cloned();
    let p = RtmpMessage::Amf0Command {
        command_name: name.to_owned(),
        transaction_id: tx,
        command_object: args.next().unwrap_or(Amf0Value::Null),
        additional_arguments: args.collect(),
    }
    .into_message_payload(RtmpTimestamp::new(0), stream)
    .unwrap();
    ser.serialize(&p, false, false).unwrap().bytes
}

/// A `connect` command whose command object is `depth` nested AMF0 strict arrays: five
/// bytes a level.
fn amf_bomb(depth: usize) -> Vec<u8> {
    let mut amf = rml_amf0::serialize(&vec![
        Amf0Value::Utf8String("connect".into()),
        Amf0Value::Number(1.0),
    ])
    .unwrap();
    for _ in 0..depth {
        amf.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
    }
    amf.push(0x05);
    ChunkSerializer::new()
        .serialize(&payload(AMF0_COMMAND, 0, amf), false, false)
        .unwrap()
        .bytes
}

/// Sends `bytes` (ignoring a reset: weir may hang up before it has read them all) and
/// waits, bounded, for weir to close the connection.
fn send_and_expect_close(mut s: TcpStream, bytes: &[u8], what: &str) {
    let _ = s.write_all(bytes);
    let end = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => assert!(Instant::now() < end, "weir kept the {what} session open"),
        }
    }
}

/// Connects, publishes under `key` as ffmpeg does, waits for `NetStream.Publish.Start`,
/// then sends a data message of `size` bytes (an `onCuePoint` with a long string).
fn publish_then_big_data_message(addr: SocketAddr, key: &str, size: usize) {
    let mut s = handshaken(addr);
    let mut ser = ChunkSerializer::new();
    let mut hello = command(
        &mut ser,
        0,
        "connect",
        1.0,
        &[Amf0Value::Object(
            [
                ("app".to_owned(), Amf0Value::Utf8String("live".into())),
                (
                    "type".to_owned(),
                    Amf0Value::Utf8String("nonprivate".into()),
                ),
                (
                    "tcUrl".to_owned(),
                    Amf0Value::Utf8String(format!("rtmp://{addr}/live")),
                ),
            ]
            .into_iter()
            .collect(),
        )],
    );
    hello.extend(command(
        &mut ser,
        0,
        "createStream",
        2.0,
        &[Amf0Value::Null],
    ));
    hello.extend(command(
        &mut ser,
        1,
        "publish",
        3.0,
        &[
            Amf0Value::Null,
            Amf0Value::Utf8String(key.into()),
            Amf0Value::Utf8String("live".into()),
        ],
    ));
    s.write_all(&hello).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let started: &[u8] = b"NetStream.Publish.Start";
    while !seen.windows(started.len()).any(|w| w == started) {
        let n = s
            .read(&mut buf)
            .expect("no NetStream.Publish.Start from weir");
        assert!(n > 0, "weir refused the publish");
        seen.extend_from_slice(&buf[..n]);
    }
    let text = "x".repeat(size - 20);
    let mut data = rml_amf0::serialize(&vec![Amf0Value::Utf8String("onCuePoint".into())]).unwrap();
    // A long string (0x0c, u32 length): more than a short string's 64 KiB.
    data.push(0x0c);
    data.extend((text.len() as u32).to_be_bytes());
    data.extend(text.as_bytes());
    assert!(data.len() > 64 * 1024);
    let big = ser
        .serialize(&payload(AMF0_DATA, 1, data), false, false)
        .unwrap()
        .bytes;
    send_and_expect_close(s, &big, "oversize data message");
}

#[test]
fn amf_bombs_and_oversize_data_messages_end_only_their_session() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let mut weir = Weir::start(&["--no-test-source"]).unwrap();
    let rtmp = weir.rtmp.unwrap();
    let _healthy =
        ffmpeg_publish_preset(&weir.rtmp_url("healthy"), 45, "640x360", 30, "ultrafast").unwrap();
    let playlist = "/live/healthy/src/index.m3u8";
    let master = weir.url("/live/healthy/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    let player = Player::start("hls", &master, 20).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let before = last_msn(&weir, playlist);

    // (a) The reproducer: ~1 MB of nested strict arrays as a command right after
    //     the handshake, no connect, no key. Twice: a repeated attack changes nothing.
    let big_bomb = amf_bomb(200_000);
    assert!(big_bomb.len() > 1_000_000);
    for _ in 0..2 {
        send_and_expect_close(handshaken(rtmp), &big_bomb, "1 MB AMF bomb");
        assert_alive(&mut weir, "1 MB AMF bomb");
    }
    // (b) Under the size limit but 12,000 levels deep: only the depth check stops it.
    let small_bomb = amf_bomb(12_000);
    assert!(small_bomb.len() < 64 * 1024, "{}", small_bomb.len());
    send_and_expect_close(handshaken(rtmp), &small_bomb, "deep AMF bomb");
    assert_alive(&mut weir, "deep AMF bomb");
    // (c) A proper publisher (connect, createStream, publish) that then sends a data
    //     message over 64 KiB.
    publish_then_big_data_message(rtmp, "big-data", 70 * 1024);
    assert_alive(&mut weir, "oversize data message");

    let report = player.join().unwrap();
    assert!(weir.proc.is_running(), "weir died");
    let (code, _) = curl(&weir.url("/healthz"), &[]).unwrap();
    assert_eq!(code, 200, "/healthz");
    assert!(
        report.fatal.is_empty(),
        "hls.js fatal errors: {:?}",
        report.fatal
    );
    assert!(
        report.played > 12.0,
        "hls.js played only {:.1}s",
        report.played
    );
    let after = last_msn(&weir, playlist);
    assert!(
        after > before + 3,
        "the healthy stream's playlist stalled: last segment {before} → {after}"
    );

    let log = weir.log().join("\n");
    assert!(!log.contains("panicked"), "weir panicked:\n{log}");
    let refused = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        refused("RTMP message of type 20 (not audio or video) of"),
        2,
        "one refusal per 1 MB bomb:\n{log}"
    );
    assert_eq!(
        refused("RTMP AMF message of type 20 nests objects or arrays deeper than 32 levels"),
        1,
        "the deep bomb's refusal:\n{log}"
    );
    assert_eq!(
        refused("RTMP message of type 18 (not audio or video) of"),
        1,
        "the oversize data message's refusal:\n{log}"
    );
}
