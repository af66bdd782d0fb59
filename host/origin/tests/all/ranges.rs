//! Byte-range parts: ranges of segments. A complete segment's range is a slice of it; the
//! segment in progress is sent part by part, each part whole once complete (RFC 8216bis
//! 6.2.6), until the segment ends; a range past the end is 416.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use weir_media::{PartProducer, StreamRegistry};
use weir_origin::Origin;

use crate::support::{h1, h2c, origin, snapshot, Got, Live, Server};

async fn soon<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("timed out: the server did not answer")
}

/// How long a test watches for bytes that must not come (see streaming.rs).
const QUIET: Duration = Duration::from_millis(300);

/// Segment 0 is parts 0 and 1 (`aaaa`, `bbbb`); segment 1 is in progress: part 2 (`cccc`)
/// complete and part 3 open with its first chunk `dd` written.
fn setup() -> (StreamRegistry, Live, PartProducer) {
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.part(0, "aaaa");
    live.part(1, "bbbb");
    live.rendition.complete_segment(0, 0..2);
    live.part(2, "cccc");
    let open = live.rendition.begin_part(3).unwrap();
    open.push(Bytes::from_static(b"dd"));
    live.rendition.publish(snapshot(1, 0, 1, 1));
    (registry, live, open)
}

async fn ranged(origin: &Origin, uri: &str, range: &str) -> Got {
    let request = Request::get(uri).header("range", range).body(()).unwrap();
    let (parts, body) = origin.handle(request).await.into_parts();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

#[tokio::test]
async fn ranges_of_a_complete_segment_and_past_its_end() {
    let (registry, _live, _open) = setup();
    let origin = origin(registry);
    let seg = "/live/a/720p/seg0.m4s";
    let got = ranged(&origin, seg, "bytes=2-5").await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), "bytes 2-5/8");
    assert_eq!(got.header("content-length"), "4");
    assert_eq!(got.body, "aabb");
    let got = ranged(&origin, seg, "bytes=4-").await;
    assert_eq!(
        (got.header("content-range"), got.text()),
        ("bytes 4-7/8", "bbbb")
    );
    let got = ranged(&origin, seg, "bytes=-3").await;
    assert_eq!(
        (got.header("content-range"), got.text()),
        ("bytes 5-7/8", "bbb")
    );
    // A last byte past the end is clipped to it.
    let got = ranged(&origin, seg, "bytes=6-100").await;
    assert_eq!(
        (got.header("content-range"), got.text()),
        ("bytes 6-7/8", "bb")
    );
    for past in ["bytes=8-", "bytes=8-9", "bytes=100-"] {
        let got = ranged(&origin, seg, past).await;
        assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE, "{past}");
        assert_eq!(got.header("content-range"), "bytes */8", "{past}");
    }
    // Several ranges, or none that parses: the whole segment.
    for whole in ["bytes=0-1,4-5", "bytes=5-2", "lines=1-2"] {
        let got = ranged(&origin, seg, whole).await;
        assert_eq!((got.status, got.text()), (StatusCode::OK, "aaaabbbb"));
        assert_eq!(got.header("accept-ranges"), "bytes");
    }
}

#[tokio::test]
async fn a_closed_range_in_complete_parts_of_the_segment_in_progress_is_answered_at_once() {
    let (registry, _live, _open) = setup();
    let origin = origin(registry);
    // `BYTERANGE=4@0` of seg1, while part 3 is still being written.
    let got = soon(ranged(&origin, "/live/a/720p/seg1.m4s", "bytes=0-3")).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), "bytes 0-3/*");
    assert_eq!(got.body, "cccc");
    let got = soon(ranged(&origin, "/live/a/720p/seg1.m4s", "bytes=1-2")).await;
    assert_eq!(got.body, "cc");
}

#[tokio::test]
async fn a_closed_range_into_the_part_in_progress_waits_for_its_last_byte() {
    let (registry, _live, open) = setup();
    let origin = origin(registry);
    let request = ranged(&origin, "/live/a/720p/seg1.m4s", "bytes=2-7");
    let mut request = Box::pin(request);
    assert!(tokio::time::timeout(QUIET, &mut request).await.is_err());
    open.push(Bytes::from_static(b"dd"));
    open.finish();
    let got = soon(request).await;
    assert_eq!(got.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(got.header("content-range"), "bytes 2-7/*");
    assert_eq!(got.body, "ccdddd");
}

#[tokio::test]
async fn a_full_get_of_the_segment_in_progress_waits_for_the_whole_segment() {
    let (registry, live, open) = setup();
    let origin = origin(registry);
    let request = Box::pin(crate::support::get(&origin, "/live/a/720p/seg1.m4s"));
    let mut request = request;
    assert!(tokio::time::timeout(QUIET, &mut request).await.is_err());
    open.finish();
    live.rendition.complete_segment(1, 2..4);
    let _next = live.rendition.begin_part(4).unwrap();
    live.rendition.publish(snapshot(2, 0, 2, 0));
    let got = soon(request).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-length"), "6");
    assert_eq!(got.body, "ccccdd");
}

#[tokio::test]
async fn an_open_range_past_the_end_of_the_segment_is_416_once_it_ends() {
    let (registry, live, open) = setup();
    let origin = origin(registry);
    let mut request = Box::pin(ranged(&origin, "/live/a/720p/seg1.m4s", "bytes=6-"));
    assert!(tokio::time::timeout(QUIET, &mut request).await.is_err());
    open.finish();
    live.rendition.complete_segment(1, 2..4);
    let _next = live.rendition.begin_part(4).unwrap();
    live.rendition.publish(snapshot(2, 0, 2, 0));
    let got = soon(request).await;
    assert_eq!(got.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(got.header("content-range"), "bytes */6");
    // A segment that does not exist yet is 404, as before.
    let got = ranged(&origin, "/live/a/720p/seg5.m4s", "bytes=0-").await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
}

type Pending = Pin<Box<dyn Future<Output = hyper::Result<Response<Incoming>>> + Send>>;

/// Sends `GET seg1.m4s` with `range` over HTTP/1.1 or h2c.
async fn send(server: &Server, version: Version, range: &str) -> Pending {
    let request = Request::get(server.url("/live/a/720p/seg1.m4s"))
        .header("range", range)
        .body(Empty::<Bytes>::new())
        .unwrap();
    if version == Version::HTTP_2 {
        let mut client = h2c(server.addr).await;
        Box::pin(async move { client.send_request(request).await })
    } else {
        let mut client = h1(server.addr).await;
        Box::pin(async move { client.send_request(request).await })
    }
}

/// Reads the body until it holds `want` more bytes; fails on anything else.
async fn read_exactly(body: &mut Incoming, want: &[u8]) {
    let mut got = Vec::new();
    while got.len() < want.len() {
        let frame = soon(body.frame()).await.expect("body ended early").unwrap();
        if let Ok(data) = frame.into_data() {
            got.extend_from_slice(&data);
        }
    }
    assert_eq!(got, want);
}

/// The preload hint's request: `bytes=<end of the last complete part>-` of the segment in
/// progress. Nothing goes out (not even the head) until the part is whole; each later part
/// goes out whole once complete and never before; the body ends with the segment.
async fn open_ended_range_is_sent_part_by_part(version: Version) {
    let (registry, live, open) = setup();
    let mut server = Server::start(origin(registry), None).await;
    let mut response = send(&server, version, "bytes=4-").await;
    assert!(
        tokio::time::timeout(QUIET, &mut response).await.is_err(),
        "the response began before the hinted part was complete"
    );
    open.push(Bytes::from_static(b"dd"));
    open.finish();
    let response = soon(response).await.unwrap();
    assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(response.version(), version);
    assert_eq!(
        response.headers()["content-range"],
        "bytes 4-9007199254740991/*"
    );
    assert!(response.headers().get("content-length").is_none());
    let mut body = response.into_body();
    read_exactly(&mut body, b"dddd").await;

    // The next part opens and is written in two chunks: nothing of it until it is whole.
    let next = live.rendition.begin_part(4).unwrap();
    live.rendition.publish(snapshot(2, 0, 1, 2));
    next.push(Bytes::from_static(b"ee"));
    assert!(
        tokio::time::timeout(QUIET, body.frame()).await.is_err(),
        "bytes of a part in progress went out"
    );
    next.push(Bytes::from_static(b"EE"));
    next.finish();
    read_exactly(&mut body, b"eeEE").await;

    // The segment ends: so does the body.
    live.rendition.complete_segment(1, 2..5);
    let _first_of_next = live.rendition.begin_part(5).unwrap();
    live.rendition.publish(snapshot(3, 0, 2, 0));
    loop {
        match soon(body.frame()).await {
            None => break,
            // h2 may close the stream with an empty DATA frame.
            Some(frame) => assert!(
                frame.unwrap().into_data().is_ok_and(|d| d.is_empty()),
                "bytes after the segment's end"
            ),
        }
    }
    server.shutdown();
}

#[tokio::test]
async fn http1_open_ended_range_is_sent_part_by_part() {
    open_ended_range_is_sent_part_by_part(Version::HTTP_11).await;
}

#[tokio::test]
async fn h2c_open_ended_range_is_sent_part_by_part() {
    open_ended_range_is_sent_part_by_part(Version::HTTP_2).await;
}

/// Shaka asks for a hint as `bytes=<start>-9007199254740991`: that is open-ended too, and
/// once the segment is complete the same request is a plain closed range.
#[tokio::test]
async fn a_very_large_last_byte_reads_as_open_ended() {
    let (registry, live, open) = setup();
    let server = Server::start(origin(registry), None).await;
    let mut response = send(&server, Version::HTTP_11, "bytes=4-9007199254740991").await;
    assert!(tokio::time::timeout(QUIET, &mut response).await.is_err());
    open.finish();
    let response = soon(response).await.unwrap();
    assert_eq!(
        response.headers()["content-range"],
        "bytes 4-9007199254740991/*"
    );
    let mut body = response.into_body();
    read_exactly(&mut body, b"dd").await;
    live.rendition.complete_segment(1, 2..4);
    let _next = live.rendition.begin_part(4).unwrap();
    live.rendition.publish(snapshot(2, 0, 2, 0));
    assert!(soon(body.collect()).await.unwrap().to_bytes().is_empty());

    let response = soon(send(&server, Version::HTTP_11, "bytes=4-9007199254740991").await)
        .await
        .unwrap();
    assert_eq!(response.headers()["content-range"], "bytes 4-5/6");
    let body = soon(response.into_body().collect()).await.unwrap();
    assert_eq!(body.to_bytes(), "dd");
}
