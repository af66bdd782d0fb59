//! A tiny live LL-HLS server on 127.0.0.1:0: an in-memory generator whose numbers advance
//! with the clock (1 s segments of four 250 ms parts, a 3-segment window), blocking
//! reloads, preload hints answered whole once the part is complete, and one optional
//! [`Fault`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub const PART: Duration = Duration::from_millis(250);
pub const PARTS_PER_SEGMENT: u64 = 4;
const WINDOW: u64 = 3;
const BASE_MSN: u64 = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// PART-HOLD-BACK 1.5 x PART-TARGET.
    HoldBack,
    /// Part 2 of every segment is never listed.
    MissingPart,
    /// After 2.5 s the media sequence numbers restart 10 lower.
    MsnBackwards,
    /// The hint names a resource that is never answered.
    HintNeverArrives,
    /// A segment that left the playlist is 410 at once.
    SegmentGone,
    /// The part in progress is sent chunk by chunk as it is produced.
    Trickle,
    /// A part index past the segment's last part is answered at once.
    PastEndAtOnce,
    /// Part 1 of each segment (no sync sample) is marked INDEPENDENT=YES.
    WrongIndependent,
    /// Every blocking reload is answered 600 ms after it could be.
    SlowBlocking,
    /// Every fifth hint is withdrawn (404) and another URI listed: allowed (6.2.6).
    WithdrawnHint,
}

#[derive(Clone, Copy)]
struct Live {
    start: Instant,
    fault: Fault,
}

fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = u32::try_from(body.len() + 8)
        .unwrap()
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// An init segment with one video track (id 1), non-sync samples by default.
fn init() -> Bytes {
    let mut tkhd = vec![0; 12];
    tkhd.extend_from_slice(&1u32.to_be_bytes());
    tkhd.extend_from_slice(&[0; 64]);
    let mut hdlr = vec![0; 8];
    hdlr.extend_from_slice(b"vide");
    hdlr.extend_from_slice(&[0; 13]);
    let trak = [bx(b"tkhd", &tkhd), bx(b"mdia", &bx(b"hdlr", &hdlr))].concat();
    let mut trex = vec![0; 4];
    trex.extend_from_slice(&1u32.to_be_bytes());
    trex.extend_from_slice(&[0; 12]);
    trex.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    let moov = [bx(b"trak", &trak), bx(b"mvex", &bx(b"trex", &trex))].concat();
    Bytes::from([bx(b"ftyp", b"iso6\0\0\0\0"), bx(b"moov", &moov)].concat())
}

/// Part `n` (global number): a moof for track 1 whose first sample is a sync sample in a
/// segment's first part, then an mdat of 4000 bytes.
fn part(n: u64) -> Bytes {
    let mut tfhd = vec![0, 0x02, 0, 0];
    tfhd.extend_from_slice(&1u32.to_be_bytes());
    let sync = n.is_multiple_of(PARTS_PER_SEGMENT);
    let mut trun = 0x0000_0205u32.to_be_bytes().to_vec(); // data offset, first flags, sizes
    trun.extend_from_slice(&8u32.to_be_bytes());
    trun.extend_from_slice(&0u32.to_be_bytes());
    trun.extend_from_slice(&(if sync { 0 } else { 0x0001_0000u32 }).to_be_bytes());
    for _ in 0..8 {
        trun.extend_from_slice(&500u32.to_be_bytes());
    }
    let moof = bx(
        b"moof",
        &bx(b"traf", &[bx(b"tfhd", &tfhd), bx(b"trun", &trun)].concat()),
    );
    Bytes::from([moof, bx(b"mdat", &[n as u8; 4000])].concat())
}

impl Live {
    fn elapsed(&self) -> Duration {
        Instant::now().duration_since(self.start)
    }

    /// Parts completed so far.
    fn done(&self) -> u64 {
        (self.elapsed().as_millis() / PART.as_millis()) as u64
    }

    /// The media sequence number of global segment `s`.
    fn msn(&self, s: u64) -> u64 {
        if self.fault == Fault::MsnBackwards && self.elapsed() > Duration::from_millis(2500) {
            BASE_MSN + s - 10
        } else {
            BASE_MSN + s
        }
    }

    fn listed(&self, idx: u64) -> bool {
        !(self.fault == Fault::MissingPart && idx == 2)
    }

    fn hint_uri(&self, n: u64) -> String {
        if self.fault == Fault::HintNeverArrives {
            format!("h{n}.m4s")
        } else if self.fault == Fault::WithdrawnHint && n % 5 == 3 {
            format!("w{n}.m4s")
        } else {
            format!("p{n}.m4s")
        }
    }

    fn playlist(&self) -> String {
        let done = self.done();
        let segs = done / PARTS_PER_SEGMENT;
        let first = segs.saturating_sub(WINDOW);
        let pt = PART.as_secs_f64();
        let phb = if self.fault == Fault::HoldBack {
            1.5
        } else {
            3.0
        } * pt;
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={phb:.3}\n#EXT-X-PART-INF:PART-TARGET={pt:.3}\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-MAP:URI=\"init.mp4\"\n",
            self.msn(first)
        );
        let ms0 = 1_800_000_000_000u64;
        let parts = |s: &mut String, seg: u64, upto: u64| {
            for i in 0..upto {
                if self.listed(i) {
                    let n = seg * PARTS_PER_SEGMENT + i;
                    let wrong = self.fault == Fault::WrongIndependent && i == 1;
                    let ind = if i == 0 || wrong {
                        ",INDEPENDENT=YES"
                    } else {
                        ""
                    };
                    s.push_str(&format!(
                        "#EXT-X-PART:DURATION={pt:.3},URI=\"p{n}.m4s\"{ind}\n"
                    ));
                }
            }
        };
        for seg in first..=segs {
            let secs = ms0 / 1000 + seg;
            s.push_str(&format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", date(secs)));
            if seg < segs {
                parts(&mut s, seg, PARTS_PER_SEGMENT);
                s.push_str(&format!("#EXTINF:1.000,\ns{seg}.m4s\n"));
            } else {
                parts(&mut s, seg, done % PARTS_PER_SEGMENT);
            }
        }
        s.push_str(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"\n",
            self.hint_uri(done)
        ));
        s
    }

    /// Global segment number and part position of a blocking request, once it exists.
    fn satisfied(&self, msn: u64, part: Option<u64>) -> bool {
        let done = self.done();
        let segs = done / PARTS_PER_SEGMENT;
        let Some(seg) = (0..=segs + 3).find(|&g| self.msn(g) == msn) else {
            return true;
        };
        match part {
            None => seg < segs,
            Some(p) if p >= PARTS_PER_SEGMENT => {
                self.fault == Fault::PastEndAtOnce || done > (seg + 1) * PARTS_PER_SEGMENT
            }
            Some(p) => done > seg * PARTS_PER_SEGMENT + p,
        }
    }

    async fn serve(self, req: Request<Incoming>) -> Response<BoxBody<Bytes, Infallible>> {
        let path = req.uri().path().trim_start_matches("/live/").to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let q = |k: &str| {
            query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(a, _)| *a == k)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        if path == "index.m3u8" {
            let (msn, part) = (q("_HLS_msn"), q("_HLS_part"));
            if part.is_some() && msn.is_none() {
                return status(StatusCode::BAD_REQUEST);
            }
            if let Some(m) = msn {
                let last = self.msn(self.done() / PARTS_PER_SEGMENT);
                // The Advance Part Limit is 3 / 0.25 = 12 parts.
                let open_parts = self.done() % PARTS_PER_SEGMENT;
                if m > last + 2 || (m == last && part.is_some_and(|p| p > open_parts + 12)) {
                    return status(StatusCode::BAD_REQUEST);
                }
                let until = Instant::now() + Duration::from_secs(3);
                while !self.satisfied(m, part) {
                    if Instant::now() > until {
                        return status(StatusCode::SERVICE_UNAVAILABLE);
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            if msn.is_some() && self.fault == Fault::SlowBlocking {
                tokio::time::sleep(Duration::from_millis(600)).await;
            }
            let max_age = if msn.is_some() { 6 } else { 1 };
            return ok(self.playlist(), "application/vnd.apple.mpegurl", max_age);
        }
        if path == "init.mp4" {
            return ok(init(), "video/mp4", 300);
        }
        if let Some(n) = path.strip_prefix('h').and_then(|p| p.strip_suffix(".m4s")) {
            // A hinted resource that never comes.
            let _ = n;
            std::future::pending::<()>().await;
        }
        if let Some(n) = path
            .strip_prefix('p')
            .and_then(|p| p.strip_suffix(".m4s"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            let done = self.done();
            if n > done {
                return status(StatusCode::NOT_FOUND);
            }
            if n == done {
                if self.fault == Fault::Trickle {
                    return trickle(self, n);
                }
                while self.done() <= n {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            return ok(part(n), "video/mp4", 300);
        }
        if let Some(seg) = path
            .strip_prefix('s')
            .and_then(|p| p.strip_suffix(".m4s"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            let segs = self.done() / PARTS_PER_SEGMENT;
            if seg >= segs {
                return status(StatusCode::NOT_FOUND);
            }
            if self.fault == Fault::SegmentGone && seg + WINDOW < segs {
                return status(StatusCode::GONE);
            }
            let body: Vec<u8> = (0..PARTS_PER_SEGMENT)
                .flat_map(|i| part(seg * PARTS_PER_SEGMENT + i).to_vec())
                .collect();
            return ok(body, "video/mp4", 300);
        }
        status(StatusCode::NOT_FOUND)
    }
}

fn date(unix_s: u64) -> String {
    let days = unix_s / 86_400;
    let rem = unix_s % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn status(s: StatusCode) -> Response<BoxBody<Bytes, Infallible>> {
    let mut r = Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = s;
    r
}

fn ok(
    body: impl Into<Bytes>,
    content_type: &str,
    max_age: u64,
) -> Response<BoxBody<Bytes, Infallible>> {
    Response::builder()
        .header("content-type", content_type)
        .header("cache-control", format!("public, max-age={max_age}"))
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// A body fed from a channel, chunk by chunk.
struct Chan(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for Chan {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|b| Ok(Frame::data(b))))
    }
}

/// The part in progress, sent in eight pieces as the part's time passes.
fn trickle(live: Live, n: u64) -> Response<BoxBody<Bytes, Infallible>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let bytes = part(n);
        let step = bytes.len().div_ceil(8);
        for (i, chunk) in bytes.chunks(step).enumerate() {
            let at = live.start + PART * u32::try_from(n).unwrap() + PART / 8 * (i as u32 + 1);
            tokio::time::sleep_until(at.into()).await;
            if tx.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                return;
            }
        }
    });
    Response::builder()
        .header("content-type", "video/mp4")
        .header("cache-control", "public, max-age=300")
        .body(Chan(rx).boxed())
        .unwrap()
}

/// Starts a server with `fault`; its media playlist is `http://ADDR/live/index.m3u8`.
pub async fn start(fault: Fault) -> SocketAddr {
    start_with(fault, None).await
}

/// [`start`] over TLS (a self-signed certificate for 127.0.0.1) offering the ALPN
/// protocols `alpn`: `https://ADDR/live/index.m3u8`.
pub async fn start_tls(fault: Fault, alpn: &[&[u8]]) -> SocketAddr {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    start_with(
        fault,
        Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))),
    )
    .await
}

async fn start_with(fault: Fault, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let live = Live {
        start: Instant::now(),
        fault,
    };
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            let tls = tls.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| async move {
                    Ok::<_, Infallible>(live.serve(req).await)
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                match tls {
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            });
        }
    });
    addr
}
