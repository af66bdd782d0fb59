//! Connection limits: the per-address and global caps, and the idle timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use weir_media::StreamRegistry;
use weir_origin::{Origin, OriginSettings};

use crate::support::{get, get_request, h1, Live, Server};

/// Sends one HTTP/1.1 request on a fresh connection and reads until the server closes it:
/// `None` if it closed without answering (refused at accept).
async fn one_request(addr: SocketAddr) -> Option<String> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may already have closed a refused connection: a failed write is a refusal.
    if tcp
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return None;
    }
    let mut buf = Vec::new();
    match tcp.read_to_end(&mut buf).await {
        Ok(_) if !buf.is_empty() => Some(String::from_utf8_lossy(&buf).into_owned()),
        // EOF with nothing, or a reset: closed unanswered.
        _ => None,
    }
}

/// Opens an HTTP/1.1 connection and checks it is served; it stays open until dropped.
async fn held(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let mut client = h1(addr).await;
    let response = client
        .send_request(get_request(&format!("http://{addr}/healthz")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    client
}

async fn metrics(origin: &Origin) -> String {
    get(origin, "/metrics").await.text().to_owned()
}

#[tokio::test]
async fn per_ip_cap_refuses_the_extra_connection_until_one_closes() {
    let settings = OriginSettings {
        max_connections_per_ip: 3,
        ..OriginSettings::default()
    };
    let origin = Arc::new(Origin::new(settings, StreamRegistry::new()).unwrap());
    let server = Server::start(Arc::clone(&origin), None).await;

    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(held(server.addr).await);
    }
    assert!(metrics(&origin)
        .await
        .contains("weir_http_connections_open 3\n"));
    assert_eq!(
        one_request(server.addr).await,
        None,
        "the 4th connection from 127.0.0.1 is closed unanswered"
    );
    let text = metrics(&origin).await;
    assert!(
        text.contains("weir_http_connections_refused_total{reason=\"per_ip\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("weir_http_connections_refused_total{reason=\"global\"} 0\n"));
    // The held ones are still served.
    let mut first = open.remove(0);
    let response = first
        .send_request(get_request(&server.url("/healthz")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // One closes: the next connection is accepted. The server learns of the close
    // asynchronously, so try until it is (a generous bound, no timing assertion).
    drop(first);
    let served = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Some(answer) = one_request(server.addr).await {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a slot frees once a connection closes");
    assert!(served.starts_with("HTTP/1.1 200 OK"), "{served}");
}

#[tokio::test]
async fn global_cap_counts_every_client_and_listener() {
    let settings = OriginSettings {
        max_connections: 2,
        max_connections_per_ip: 0,
        ..OriginSettings::default()
    };
    let origin = Arc::new(Origin::new(settings, StreamRegistry::new()).unwrap());
    // Two listeners of one origin share the cap.
    let a = Server::start(Arc::clone(&origin), None).await;
    let b = Server::start(Arc::clone(&origin), None).await;
    let _one = held(a.addr).await;
    let _two = held(b.addr).await;
    assert_eq!(one_request(a.addr).await, None);
    assert_eq!(one_request(b.addr).await, None);
    let text = metrics(&origin).await;
    assert!(
        text.contains("weir_http_connections_refused_total{reason=\"global\"} 2\n"),
        "{text}"
    );
    assert!(text.contains("weir_http_connections_open 2\n"), "{text}");
}

/// An h2c connection whose driver task ends when the server closes the connection.
async fn h2c_with_task(
    addr: SocketAddr,
) -> (
    http2::SendRequest<Empty<Bytes>>,
    JoinHandle<hyper::Result<()>>,
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    (sender, tokio::spawn(connection))
}

#[tokio::test(start_paused = true)]
async fn idle_h2_connections_are_closed_but_not_while_a_part_is_awaited() {
    let idle = Duration::from_secs(30);
    let settings = OriginSettings {
        idle_timeout: idle,
        // No keep-alive PINGs: on the paused clock, time jumps to the PING's deadline before
        // the loopback ACK is read, which would close the connection for a reason that is
        // not the one under test.
        http2_keep_alive_interval: None,
        ..OriginSettings::default()
    };
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    let origin = Arc::new(Origin::new(settings, registry).unwrap());
    let server = Server::start(Arc::clone(&origin), None).await;

    // A request held open for longer than the idle timeout, waiting for the part in
    // progress to be complete, keeps its connection open.
    let (mut client, mut connection) = h2c_with_task(server.addr).await;
    let part = live.rendition.begin_part(1).unwrap();
    part.push(Bytes::from_static(b"first"));
    let response =
        tokio::spawn(client.send_request(get_request(&server.url("/live/a/720p/part1.m4s"))));
    // Past the idle timeout, within the request timeout (60 s).
    tokio::time::sleep(idle + idle / 2).await;
    assert!(
        !connection.is_finished(),
        "closed while a request was in flight"
    );
    assert!(
        !response.is_finished(),
        "answered before the part was complete"
    );
    part.push(Bytes::from_static(b"-last"));
    part.finish();
    let response = response.await.unwrap().unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "first-last"
    );

    // Now idle: GOAWAY after the idle timeout, and the connection ends.
    let idle_from = tokio::time::Instant::now();
    tokio::time::timeout(idle * 4, &mut connection)
        .await
        .expect("an idle h2 connection is closed")
        .unwrap()
        .unwrap();
    assert!(idle_from.elapsed() >= idle, "{:?}", idle_from.elapsed());
    let text = metrics(&origin).await;
    assert!(
        text.contains("weir_http_connections_idle_closed_total 1\n"),
        "{text}"
    );
    // The server's side ends right after the client's: its slot is given back.
    tokio::time::timeout(Duration::from_secs(10), async {
        while !metrics(&origin)
            .await
            .contains("weir_http_connections_open 0\n")
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the slot is freed");
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let idle = Duration::from_secs(30);
    let settings = OriginSettings {
        idle_timeout: idle,
        // Out of the way: this is about the idle timeout, which also covers the bytes
        // before hyper knows the protocol (the HTTP/2 preface check).
        header_read_timeout: Duration::from_secs(3600),
        ..OriginSettings::default()
    };
    let origin = Arc::new(Origin::new(settings, StreamRegistry::new()).unwrap());
    let server = Server::start(origin, None).await;
    for opening in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(opening).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut buf = Vec::new();
        tokio::time::timeout(idle * 4, tcp.read_to_end(&mut buf))
            .await
            .expect("closed")
            .unwrap();
        assert!(start.elapsed() >= idle, "{:?}", start.elapsed());
    }
}

#[tokio::test(start_paused = true)]
async fn an_idle_http1_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let header_read = Duration::from_secs(10);
    let settings = OriginSettings {
        header_read_timeout: header_read,
        idle_timeout: Duration::from_secs(3600),
        ..OriginSettings::default()
    };
    let origin = Arc::new(Origin::new(settings, StreamRegistry::new()).unwrap());
    let server = Server::start(origin, None).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(b"ok\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert_ne!(n, 0, "closed before the response");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
    // Kept alive, then idle: closed once the next request's head is overdue.
    let idle_from = tokio::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(header_read * 4, tcp.read_to_end(&mut rest))
        .await
        .expect("an idle keep-alive connection is closed")
        .unwrap();
    assert!(
        idle_from.elapsed() >= header_read,
        "{:?}",
        idle_from.elapsed()
    );
}
