//! `/api/…`: the head is judged before the body is read, the body has a size cap and a read
//! deadline, and no stream key reaches the logs.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_media::{StreamKey, StreamRegistry};
use weir_origin::{text_response, Admission, ApiHandler, Body, Origin, OriginSettings};

use crate::support::{get, Server};

const KEY: &str = "sekrit-Key-4821";

/// Admits `Bearer good` only; counts how often `handle` ran and what it got.
#[derive(Default)]
struct TestApi {
    handled: AtomicUsize,
}

impl ApiHandler for TestApi {
    fn admit(&self, head: &http::request::Parts) -> Admission {
        match head.headers.get("authorization") {
            Some(v) if v == "Bearer good" => Admission::Read { limit: 1000 },
            _ => Admission::Refuse(text_response(StatusCode::UNAUTHORIZED, "no\n")),
        }
    }

    fn handle(
        &self,
        _head: http::request::Parts,
        body: Bytes,
    ) -> weir_cache::BoxFuture<'_, Response<Body>> {
        self.handled.fetch_add(1, Ordering::Relaxed);
        Box::pin(async move { text_response(StatusCode::OK, format!("got {}\n", body.len())) })
    }

    fn loggable_path(&self, path: &str) -> String {
        match path.split('/').collect::<Vec<_>>().as_slice() {
            ["", "api", "v1", "streams", key, "cues"] => {
                format!("/api/v1/streams/{}/cues", StreamKey::new(*key).redacted())
            }
            _ => "/api/…".to_owned(),
        }
    }
}

fn origin_with_api(settings: OriginSettings) -> (Arc<Origin>, Arc<TestApi>) {
    let api = Arc::new(TestApi::default());
    let origin = Origin::new(settings, StreamRegistry::new())
        .unwrap()
        .with_api(Arc::clone(&api) as Arc<dyn ApiHandler>);
    (Arc::new(origin), api)
}

/// Writes `head` (no body, or only part of it), then reads until the server closes or a
/// whole response head is in. Panics if no answer comes within a minute: a server waiting
/// for the rest of the body never answers.
async fn raw(server: &Server, head: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the server answers without the rest of the body");
    (tcp, String::from_utf8_lossy(&got).into_owned())
}

#[tokio::test]
async fn a_wrong_token_is_answered_before_the_body_is_sent() {
    let (origin, api) = origin_with_api(OriginSettings::default());
    let server = Server::start(Arc::clone(&origin), None).await;
    // A gigabyte announced, none of it sent, and a client that waits for 100 Continue: the
    // 401 can only come from the head.
    let (_tcp, answer) = raw(
        &server,
        &format!(
            "POST /api/v1/streams/{KEY}/cues HTTP/1.1\r\nHost: x\r\n\
             Authorization: Bearer wrong\r\nContent-Length: 1073741824\r\n\
             Expect: 100-continue\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    // Same with a chunked body that never ends.
    let (_tcp, answer) = raw(
        &server,
        "POST /api/v1/streams/x/cues HTTP/1.1\r\nHost: x\r\n\
         Transfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // HTTP/2: a request body stream that never yields a byte.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut client, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let never = StreamBody::new(futures_util::stream::pending::<
        Result<http_body::Frame<Bytes>, std::convert::Infallible>,
    >());
    let request = http::Request::post(server.url("/api/v1/streams/x/cues"))
        .header("authorization", "Bearer nope")
        .body(never)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), client.send_request(request))
        .await
        .expect("answered without the body")
        .unwrap();
    assert_eq!(response.status(), 401);

    assert_eq!(api.handled.load(Ordering::Relaxed), 0);
    let metrics = get(&origin, "/metrics").await.text().to_owned();
    assert!(
        metrics.contains("weir_api_requests_refused_total{reason=\"unauthorized\"} 3\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_authorised_body_is_capped() {
    let (origin, api) = origin_with_api(OriginSettings::default());
    let server = Server::start(Arc::clone(&origin), None).await;
    // Announced too large: refused from the head.
    let (_tcp, answer) = raw(
        &server,
        "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\
         Content-Length: 1001\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Chunked, and too large once read.
    let (_tcp, answer) = raw(
        &server,
        &format!(
            "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\
             Transfer-Encoding: chunked\r\n\r\n3e9\r\n{}\r\n",
            "a".repeat(1001)
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Within the limit: the handler gets it.
    let mut client = {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let (client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    };
    let request = http::Request::post(server.url("/api/v1/x"))
        .header("authorization", "Bearer good")
        .body(Full::new(Bytes::from(vec![b'x'; 1000])))
        .unwrap();
    let response = client.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "got 1000\n"
    );
    assert_eq!(api.handled.load(Ordering::Relaxed), 1);
    let metrics = get(&origin, "/metrics").await.text().to_owned();
    assert!(
        metrics.contains("weir_api_requests_refused_total{reason=\"too_large\"} 2\n"),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_body_gets_408_after_the_deadline() {
    let deadline = Duration::from_secs(5);
    let settings = OriginSettings {
        api_body_timeout: deadline,
        ..OriginSettings::default()
    };
    let (origin, api) = origin_with_api(settings);
    let server = Server::start(Arc::clone(&origin), None).await;
    let start = tokio::time::Instant::now();
    // 10 of 100 bytes, then nothing.
    let (mut tcp, answer) = raw(
        &server,
        "POST /api/v1/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n\
         Content-Length: 100\r\n\r\n0123456789",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(start.elapsed() >= deadline, "{:?}", start.elapsed());
    // And the connection is closed.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut rest))
        .await
        .expect("closed after the 408")
        .unwrap();
    assert_eq!(api.handled.load(Ordering::Relaxed), 0);
    let metrics = get(&origin, "/metrics").await.text().to_owned();
    assert!(
        metrics.contains("weir_api_requests_refused_total{reason=\"slow_body\"} 1\n"),
        "{metrics}"
    );
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Log lines written on this thread while a capture is on; dropped elsewhere.
struct ThreadCapture;

impl Write for ThreadCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(v) = c.borrow_mut().as_mut() {
                v.extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures everything every crate logs, at every level, on this thread until the returned
/// closure is called. The subscriber is the process's global default, installed once: a
/// thread-local one (`set_default`) loses events when another test's thread registers a
/// callsite first and tracing caches "never interested" for it.
fn capture_logs() -> impl FnOnce() -> String {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(|| ThreadCapture)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    || {
        let bytes = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
        String::from_utf8(bytes).unwrap()
    }
}

// A current-thread runtime: the server's tasks log on the test's thread.
#[tokio::test]
async fn no_stream_key_reaches_the_logs() {
    let logs = capture_logs();
    let (origin, _api) = origin_with_api(OriginSettings::default());
    let with_api = Server::start(origin, None).await;
    let without_api = Server::start(
        Arc::new(Origin::new(OriginSettings::default(), StreamRegistry::new()).unwrap()),
        None,
    )
    .await;
    let path = format!("/api/v1/streams/{KEY}/cues");
    for (server, token) in [
        (&with_api, "good"),
        (&with_api, "wrong"),
        (&without_api, "good"),
    ] {
        let (_tcp, answer) = raw(
            server,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
            ),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
        // HTTP/2 too (h2 logs frames at trace).
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let (mut client, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(connection);
        let request = http::Request::post(server.url(&path))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from_static(b"{}")))
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        response.into_body().collect().await.unwrap();
    }
    let logs = logs();
    assert!(!logs.is_empty());
    let lower = logs.to_ascii_lowercase();
    assert!(!lower.contains(&KEY.to_ascii_lowercase()), "{logs}");
    assert!(!lower.contains("sekrit"), "{logs}");
    assert!(!logs.contains("Bearer"), "{logs}");
    // The requests were logged, with the redacted key.
    let redacted = StreamKey::new(KEY).redacted().to_string();
    assert!(logs.contains(&redacted), "{logs}");
    assert!(logs.contains("api request refused"), "{logs}");
    assert!(logs.contains("/api/…"), "{logs}");
}
