//! A request for a part still being written (the preload hint) is held open, and the part goes
//! out whole once it is complete (RFC 8216bis 6.2.6: no byte of a part before all of it can
//! go at the link's full speed, so players measure the link, not the encoder).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_media::StreamRegistry;

use crate::support::{get_request, h2c, origin, snapshot, Live, Server};

/// A safety net so a server that never answers fails the test instead of hanging it.
async fn soon<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out: the server did not send the part")
}

/// How long a test watches for bytes that must not come. A server that sent the part's
/// first chunk at once would be seen within it; a correct one is never early, so this
/// cannot fail a correct server however slow the machine.
const QUIET: Duration = Duration::from_millis(300);

async fn setup() -> (Live, Server) {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 0, 0));
    let server = Server::start(origin(registry), None).await;
    (live, server)
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from a raw socket.
async fn read_response(tcp: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(buf[..end].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or_else(|| panic!("no content-length in {head}"));
            if buf.len() >= end + 4 + len {
                return (head, buf[end + 4..end + 4 + len].to_vec());
            }
        }
        let n = soon(tcp.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn http1_sends_nothing_of_a_part_in_progress_then_all_of_it() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));

    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /live/a/720p/part7.m4s HTTP/1.1\r\nHost: weir\r\n\r\n")
        .await
        .unwrap();
    let mut early = [0u8; 64];
    let read = tokio::time::timeout(QUIET, tcp.read(&mut early)).await;
    assert!(
        read.is_err(),
        "bytes went out before the part was complete: {read:?}"
    );

    part.push(Bytes::from_static(b"mdat-2"));
    let read = tokio::time::timeout(QUIET, tcp.read(&mut early)).await;
    assert!(read.is_err(), "bytes went out before the part was complete");
    part.finish();
    let (head, body) = read_response(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("content-length: 12"),
        "{head}"
    );
    assert_eq!(body, b"moof-1mdat-2");

    // The connection is reused: a complete part answers at once, whole.
    tcp.write_all(b"GET /live/a/720p/part7.m4s HTTP/1.1\r\nHost: weir\r\n\r\n")
        .await
        .unwrap();
    let (_, again) = read_response(&mut tcp).await;
    assert_eq!(again, b"moof-1mdat-2");
}

#[tokio::test]
async fn h2c_answers_a_part_in_progress_only_once_it_is_complete() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));

    let mut client = h2c(server.addr).await;
    let mut response =
        Box::pin(client.send_request(get_request(&server.url("/live/a/720p/part7.m4s"))));
    assert!(
        tokio::time::timeout(QUIET, &mut response).await.is_err(),
        "the response began before the part was complete"
    );
    part.push(Bytes::from_static(b"mdat-2"));
    part.finish();
    let response = soon(response).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.headers()["content-length"], "12");
    let body = soon(response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "moof-1mdat-2");
}

#[tokio::test]
async fn an_aborted_part_is_503_over_http1() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /live/a/720p/part7.m4s HTTP/1.1\r\nHost: weir\r\n\r\n")
        .await
        .unwrap();
    tokio::task::yield_now().await;
    drop(part);
    let (head, body) = read_response(&mut tcp).await;
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    assert_eq!(body, b"part aborted before completion\n");
}

#[tokio::test]
async fn an_aborted_part_is_503_over_h2_and_the_connection_lives_on() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));
    let mut client = h2c(server.addr).await;
    let response = client.send_request(get_request(&server.url("/live/a/720p/part7.m4s")));
    let response = tokio::spawn(response);
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(part);
    let response = soon(response).await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    let body = soon(response.into_body().collect())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(body, "part aborted before completion\n");

    // The connection is still good for the next request.
    let health = soon(client.send_request(get_request(&server.url("/healthz"))))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
