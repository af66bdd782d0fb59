//! The HTTP surface: methods, CORS, static assets, multiplexing, limits and shutdown.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Version};
use http_body_util::{BodyExt, Empty};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_media::StreamRegistry;
use weir_origin::{Origin, OriginSettings, StaticAssets};

use crate::support::{get, get_request, h1, h2c, origin, request, snapshot, Live, Server};

#[tokio::test]
async fn health_and_static_assets() {
    let settings = OriginSettings {
        assets: StaticAssets {
            index_html: Bytes::from_static(b"<!doctype html><video>"),
            hls_js: Bytes::from_static(b"var Hls;"),
        },
        ..OriginSettings::default()
    };
    let origin = Origin::new(settings, StreamRegistry::new()).unwrap();
    let health = get(&origin, "/healthz").await;
    assert_eq!((health.status.as_u16(), health.text()), (200, "ok\n"));
    assert_eq!(health.header("cache-control"), "no-store");
    let page = get(&origin, "/").await;
    assert_eq!(page.body, "<!doctype html><video>");
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-cache");
    let js = get(&origin, "/hls.min.js").await;
    assert_eq!(js.body, "var Hls;");
    assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");

    let bare = Origin::new(OriginSettings::default(), StreamRegistry::new()).unwrap();
    assert_eq!(get(&bare, "/").await.status, 404, "no assets configured");
}

/// `/readyz` answers what the embedding binary's readiness says: 200 when ready, 503 with
/// the reason when not; with no readiness set, ready whenever the origin serves.
#[tokio::test]
async fn readiness_is_the_binarys_to_say() {
    struct Flag(std::sync::Mutex<Result<(), String>>);
    impl weir_origin::Readiness for Flag {
        fn ready(&self) -> Result<(), String> {
            self.0.lock().unwrap().clone()
        }
    }
    let bare = Origin::new(OriginSettings::default(), StreamRegistry::new()).unwrap();
    let r = get(&bare, "/readyz").await;
    assert_eq!((r.status.as_u16(), r.text()), (200, "ready\n"));
    let flag = Arc::new(Flag(std::sync::Mutex::new(Err(
        "upstream unreachable".into()
    ))));
    let origin = Origin::new(OriginSettings::default(), StreamRegistry::new())
        .unwrap()
        .with_readiness(flag.clone());
    let r = get(&origin, "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), "not ready: upstream unreachable\n");
    assert_eq!(r.header("cache-control"), "no-store");
    *flag.0.lock().unwrap() = Ok(());
    assert_eq!(get(&origin, "/readyz").await.status, 200);
    // Liveness does not depend on it.
    *flag.0.lock().unwrap() = Err("draining".into());
    assert_eq!(get(&origin, "/healthz").await.status, 200);
}

#[tokio::test]
async fn head_options_and_other_methods() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.part(3, "0123456789");
    live.rendition.publish(snapshot(1, 0, 0, 1));
    let origin = origin(registry);

    let head = request(&origin, "HEAD", "/live/a/720p/part3.m4s").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), "10");
    assert!(head.body.is_empty());

    let preflight = origin
        .handle(
            Request::builder()
                .method(Method::OPTIONS)
                .uri("/live/a/720p/index.m3u8")
                .header("origin", "https://player.example")
                .header("access-control-request-method", "GET")
                .header("access-control-request-headers", "range")
                .body(())
                .unwrap(),
        )
        .await;
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert_eq!(h["access-control-allow-methods"], "GET, HEAD, OPTIONS");
    assert_eq!(h["access-control-allow-headers"], "range");

    let post = request(&origin, "POST", "/live/a/720p/index.m3u8").await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), "GET, HEAD, OPTIONS");
    assert_eq!(post.header("access-control-allow-origin"), "*");
}

#[tokio::test]
async fn cors_origin_is_configurable_and_on_errors_too() {
    let settings = OriginSettings {
        cors_allow_origin: "https://player.example".into(),
        ..OriginSettings::default()
    };
    let origin = Origin::new(settings, StreamRegistry::new()).unwrap();
    let got = get(&origin, "/live/none/master.m3u8").await;
    assert_eq!(got.status, 404);
    assert_eq!(
        got.header("access-control-allow-origin"),
        "https://player.example"
    );
    assert!(got
        .header("access-control-expose-headers")
        .contains("Content-Length"));
}

#[tokio::test]
async fn http1_over_tcp_with_head() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.part(3, "0123456789");
    let server = Server::start(origin(registry), None).await;
    let mut client = h1(server.addr).await;
    let head = Request::head(server.url("/live/a/720p/part3.m4s"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = client.send_request(head).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "10");
    let response = client
        .send_request(get_request(&server.url("/live/a/720p/part3.m4s")))
        .await
        .unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "0123456789"
    );
}

#[tokio::test]
async fn one_h2_connection_serves_other_streams_while_a_request_blocks() {
    let registry = StreamRegistry::new();
    let a = Live::publish(&registry, "a");
    let b = Live::publish(&registry, "b");
    a.rendition.publish(snapshot(1, 0, 4, 1));
    b.rendition.publish(snapshot(1, 0, 9, 1));
    let server = Server::start(origin(registry), None).await;
    let mut client = h2c(server.addr).await;

    let blocked = tokio::spawn(client.send_request(get_request(
        &server.url("/live/a/720p/index.m3u8?_HLS_msn=4&_HLS_part=1"),
    )));
    // Same connection, another stream: answered while the first request is still held.
    for _ in 0..5 {
        let other = client
            .send_request(get_request(&server.url("/live/b/720p/index.m3u8")))
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
    }
    assert!(!blocked.is_finished());
    a.rendition.publish(snapshot(2, 0, 4, 2));
    let released = blocked.await.unwrap().unwrap();
    assert_eq!(released.status(), 200);
    assert_eq!(
        released.into_body().collect().await.unwrap().to_bytes(),
        "#EXTM3U\n#version 2\n"
    );
}

#[tokio::test]
async fn graceful_shutdown_finishes_a_part_in_progress() {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    let part = live.rendition.begin_part(1).unwrap();
    part.push(Bytes::from_static(b"first"));
    let mut server = Server::start(origin(registry), None).await;
    let mut client = h2c(server.addr).await;
    let response =
        tokio::spawn(client.send_request(get_request(&server.url("/live/a/720p/part1.m4s"))));
    // A later stream on the same connection answered: the server has the part request.
    let health = client
        .send_request(get_request(&server.url("/healthz")))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    server.shutdown();
    tokio::task::yield_now().await;
    assert!(!server.task.is_finished(), "waits for the in-flight part");
    part.push(Bytes::from_static(b"-last"));
    part.finish();
    let response = response.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "first-last"
    );
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("serve returns once connections are done")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_http1_headers_are_cut_off() {
    let settings = OriginSettings {
        header_read_timeout: Duration::from_secs(5),
        ..OriginSettings::default()
    };
    let origin = Arc::new(Origin::new(settings, StreamRegistry::new()).unwrap());
    let server = Server::start(origin, None).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection (possibly with a 408) once the virtual clock passes
    // the header read timeout.
    let closed = tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server must close a connection whose headers never finish"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(!text.contains("200 OK"), "{text}");

    // A client that sends its headers in time is served on the same paused clock.
    let mut quick = TcpStream::connect(server.addr).await.unwrap();
    quick
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    quick.read_to_end(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200 OK"));
}
