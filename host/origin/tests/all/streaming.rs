//! A part still being written streams to HTTP clients as its chunks arrive.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::Version;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use weir_media::StreamRegistry;

use crate::support::{get_request, h1, h2c, origin, snapshot, Live, Server};

/// A safety net so a server that buffers a growing part fails the test instead of hanging it.
async fn soon<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out: the server did not stream the part")
}

async fn next_data(body: &mut Incoming) -> Option<Bytes> {
    loop {
        let frame = soon(body.frame()).await?.expect("body error");
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

async fn setup() -> (Live, Server) {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 0, 0));
    let server = Server::start(origin(registry), None).await;
    (live, server)
}

#[tokio::test]
async fn http1_reads_the_first_chunk_before_the_part_completes() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));

    let mut client = h1(server.addr).await;
    let response = soon(client.send_request(get_request(&server.url("/live/a/720p/part7.m4s"))))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await.unwrap(), "moof-1");

    part.push(Bytes::from_static(b"mdat-2"));
    assert_eq!(next_data(&mut body).await.unwrap(), "mdat-2");
    part.finish();
    assert_eq!(next_data(&mut body).await, None);
}

#[tokio::test]
async fn h2c_reads_the_first_chunk_before_the_part_completes() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));

    let mut client = h2c(server.addr).await;
    let response = soon(client.send_request(get_request(&server.url("/live/a/720p/part7.m4s"))))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await.unwrap(), "moof-1");

    part.push(Bytes::from_static(b"mdat-2"));
    part.finish();
    let rest = soon(body.collect()).await.unwrap().to_bytes();
    assert_eq!(rest, "mdat-2");
}

#[tokio::test]
async fn an_aborted_part_ends_the_http1_response_with_an_error() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));
    let mut client = h1(server.addr).await;
    let response = soon(client.send_request(get_request(&server.url("/live/a/720p/part7.m4s"))))
        .await
        .unwrap();
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await.unwrap(), "moof-1");
    drop(part);
    let end = soon(body.collect()).await;
    assert!(end.is_err(), "a truncated part must not look complete");
}

#[tokio::test]
async fn an_aborted_part_resets_the_h2_stream_but_not_the_connection() {
    let (live, server) = setup().await;
    let part = live.rendition.begin_part(7).unwrap();
    part.push(Bytes::from_static(b"moof-1"));
    let mut client = h2c(server.addr).await;
    let response = soon(client.send_request(get_request(&server.url("/live/a/720p/part7.m4s"))))
        .await
        .unwrap();
    let mut body = response.into_body();
    assert_eq!(next_data(&mut body).await.unwrap(), "moof-1");
    drop(part);
    let end = soon(body.collect()).await;
    assert!(end.is_err(), "a truncated part must not look complete");

    // The connection is still good for the next request.
    let health = soon(client.send_request(get_request(&server.url("/healthz"))))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
