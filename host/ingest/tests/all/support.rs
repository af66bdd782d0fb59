//! Shared helpers: test captures, a collecting publish handler, a scriptable RTMP
//! publisher built on rml_rtmp's client session, and ffmpeg detection.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use weir_ingest::flv::{FlvTag, TagKind};
use weir_ingest::{ActiveKeys, FlvTagReader, PublishHandler, Refusal, RtmpSettings, SessionInfo};
use weir_media::{MediaEvent, Sample, StreamKey, Track};

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn read_data(name: &str) -> Vec<u8> {
    std::fs::read(data(name)).unwrap()
}

/// Every tag of a test capture.
pub fn tags(name: &str) -> Vec<FlvTag> {
    let mut r = FlvTagReader::new();
    r.push(&read_data(name));
    let mut v = Vec::new();
    while let Some(t) = r.next_tag().unwrap() {
        v.push(t);
    }
    r.finish().unwrap();
    v
}

pub fn ffmpeg() -> Option<&'static str> {
    let ok = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        Some("ffmpeg")
    } else {
        eprintln!("SKIPPED: ffmpeg not found on PATH");
        None
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "weir_ingest=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Splits events into the track list(s) and samples.
pub fn split(events: &[MediaEvent]) -> (Vec<Vec<Track>>, Vec<Sample>) {
    let mut tracks = Vec::new();
    let mut samples = Vec::new();
    for e in events {
        match e {
            MediaEvent::Tracks(t) => tracks.push(t.clone()),
            MediaEvent::Sample(s) => samples.push(s.clone()),
            MediaEvent::Cue(_) => {}
        }
    }
    (tracks, samples)
}

/// Hands every accepted publish to the test as (key, receiver).
pub struct Handler {
    publishes: mpsc::UnboundedSender<(StreamKey, mpsc::Receiver<MediaEvent>)>,
    deny: Option<&'static str>,
    capacity: usize,
    ended: Ended,
}

/// Every `PublishHandler::ended` call: (key, error).
pub type Ended = Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

impl PublishHandler for Handler {
    fn authorize<'a>(
        &'a self,
        _: &'a SessionInfo,
        key: &'a StreamKey,
    ) -> weir_ingest::publish::AuthorizeFuture<'a> {
        let verdict = match self.deny {
            Some(bad) if key.expose() == bad => Err(Refusal::new("bad key")),
            _ => Ok(()),
        };
        Box::pin(std::future::ready(verdict))
    }

    fn publish(
        &self,
        _: &SessionInfo,
        key: &StreamKey,
    ) -> Result<mpsc::Sender<MediaEvent>, Refusal> {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.publishes
            .send((key.clone(), rx))
            .map_err(|_| Refusal::new("test over"))?;
        Ok(tx)
    }

    fn ended(&self, _: &SessionInfo, key: &StreamKey, error: Option<&str>) {
        self.ended
            .lock()
            .unwrap()
            .push((key.expose().to_owned(), error.map(str::to_owned)));
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub publishes: mpsc::UnboundedReceiver<(StreamKey, mpsc::Receiver<MediaEvent>)>,
    pub keys: ActiveKeys,
    /// What the handler was told of each ended session.
    pub ended: Ended,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(settings: RtmpSettings) -> Self {
        Self::start_with(settings, None, 4096).await
    }

    pub async fn start_with(
        settings: RtmpSettings,
        deny: Option<&'static str>,
        capacity: usize,
    ) -> Self {
        init_tracing();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ptx, publishes) = mpsc::unbounded_channel();
        let handler = Arc::new(Handler {
            publishes: ptx,
            deny,
            capacity,
            ended: Ended::default(),
        });
        let ended = Arc::clone(&handler.ended);
        let keys = ActiveKeys::new(settings.takeover_after);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(weir_ingest::serve_rtmp_with_keys(
            listener,
            settings,
            handler,
            keys.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            publishes,
            keys,
            ended,
            stop: Some(stop),
            task,
        }
    }

    /// Waits (up to 5 s) until the handler has heard that `key`'s session ended: its error.
    pub async fn ended(&self, key: &str) -> Option<String> {
        for _ in 0..100 {
            let found = self
                .ended
                .lock()
                .unwrap()
                .iter()
                .find(|(k, _)| k == key)
                .cloned();
            if let Some((_, error)) = found {
                return error;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the handler never heard that {key}'s session ended");
    }

    /// The next accepted publish.
    pub async fn next_publish(&mut self) -> (StreamKey, mpsc::Receiver<MediaEvent>) {
        tokio::time::timeout(Duration::from_secs(10), self.publishes.recv())
            .await
            .expect("no publish within 10 s")
            .expect("server gone")
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("server did not shut down")
            .unwrap();
    }
}

/// Everything a session delivers, until it ends (the session drops its sender).
pub async fn collect(mut rx: mpsc::Receiver<MediaEvent>) -> Vec<MediaEvent> {
    let mut v = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(e)) => v.push(e),
            Ok(None) => return v,
            Err(_) => panic!(
                "session did not end within 20 s ({} events so far)",
                v.len()
            ),
        }
    }
}

/// Waits until the server closes `sock` (EOF or reset), discarding what it sends.
pub async fn closed_by_server(sock: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let wait = async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}

/// Completes a client-side RTMP handshake on a fresh connection.
pub async fn handshaken(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs.generate_outbound_p0_and_p1().unwrap();
    sock.write_all(&p0p1).await.unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "server closed during handshake");
        match hs.process_bytes(&buf[..n]).unwrap() {
            HandshakeProcessResult::InProgress { response_bytes } => {
                sock.write_all(&response_bytes).await.unwrap();
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                sock.write_all(&response_bytes).await.unwrap();
                return (sock, remaining_bytes);
            }
        }
    }
}

/// A scriptable RTMP publisher.
pub struct Publisher {
    pub sock: TcpStream,
    session: ClientSession,
}

impl Publisher {
    /// Connects and publishes; `Err` carries why the server said no (or that it hung up).
    pub async fn publish(addr: SocketAddr, app: &str, key: &str) -> Result<Self, String> {
        let (mut sock, remaining) = handshaken(addr).await;
        let (mut session, _) = ClientSession::new(ClientSessionConfig::new()).unwrap();
        let mut out = Vec::new();
        push(
            &mut out,
            session.request_connection(app.to_owned()).unwrap(),
        );
        let mut events = absorb(&mut out, session.handle_input(&remaining).unwrap());
        sock.write_all(&out).await.unwrap();
        let mut published = false;
        let mut buf = vec![0u8; 65536];
        loop {
            out.clear();
            for event in events.drain(..) {
                match event {
                    ClientSessionEvent::ConnectionRequestAccepted => {
                        let r = session
                            .request_publishing(key.to_owned(), PublishRequestType::Live)
                            .unwrap();
                        push(&mut out, r);
                    }
                    ClientSessionEvent::ConnectionRequestRejected { description } => {
                        return Err(format!("connect rejected: {description}"))
                    }
                    ClientSessionEvent::PublishRequestAccepted => published = true,
                    ClientSessionEvent::UnhandleableAmf0Command {
                        command_name,
                        additional_values,
                        ..
                    } if command_name == "_error" => {
                        return Err(format!("error: {additional_values:?}"))
                    }
                    _ => {}
                }
            }
            sock.write_all(&out).await.unwrap();
            if published {
                return Ok(Self { sock, session });
            }
            let n = match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(format!("connection error: {e}")),
                Err(_) => return Err("no answer within 5 s".into()),
            };
            if n == 0 {
                return Err("server closed the connection".into());
            }
            let r = session.handle_input(&buf[..n]).map_err(|e| e.to_string())?;
            events = absorb(&mut out, r);
            sock.write_all(&out).await.unwrap();
        }
    }

    pub async fn send(
        &mut self,
        kind: TagKind,
        timestamp_ms: u32,
        body: Bytes,
    ) -> std::io::Result<()> {
        let ts = RtmpTimestamp::new(timestamp_ms);
        let r = match kind {
            TagKind::Video => self.session.publish_video_data(body, ts, false),
            TagKind::Audio => self.session.publish_audio_data(body, ts, false),
            TagKind::Script => return Ok(()),
        }
        .unwrap();
        let mut out = Vec::new();
        push(&mut out, r);
        self.sock.write_all(&out).await
    }

    /// Sends the tags of a capture, pausing `pace` between tags (none if zero).
    pub async fn replay(&mut self, tags: &[FlvTag], pace: Duration) -> std::io::Result<()> {
        for t in tags {
            self.send(t.kind, t.timestamp_ms, t.body.clone()).await?;
            if !pace.is_zero() {
                tokio::time::sleep(pace).await;
            }
        }
        Ok(())
    }

    pub async fn unpublish(mut self) {
        if let Ok(results) = self.session.stop_publishing() {
            let mut out = Vec::new();
            absorb(&mut out, results);
            let _ = self.sock.write_all(&out).await;
        }
        let _ = self.sock.shutdown().await;
        // Let the server read to EOF.
        closed_by_server(&mut self.sock, Duration::from_secs(5)).await;
    }
}

fn push(out: &mut Vec<u8>, r: ClientSessionResult) {
    if let ClientSessionResult::OutboundResponse(p) = r {
        out.extend_from_slice(&p.bytes);
    }
}

fn absorb(out: &mut Vec<u8>, results: Vec<ClientSessionResult>) -> Vec<ClientSessionEvent> {
    let mut events = Vec::new();
    for r in results {
        match r {
            ClientSessionResult::OutboundResponse(p) => out.extend_from_slice(&p.bytes),
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    events
}

/// A healthy publisher running beside a hostile one: replays `testsrc.flv` on `key` over
/// about `over` and returns what the server delivered for it.
pub async fn healthy(
    server: &mut Server,
    key: &str,
    over: Duration,
) -> tokio::task::JoinHandle<Vec<MediaEvent>> {
    let tags = tags("testsrc.flv");
    let pace = over / u32::try_from(tags.len()).unwrap();
    let mut p = Publisher::publish(server.addr, "live", key).await.unwrap();
    let (got, rx) = server.next_publish().await;
    assert_eq!(got.expose(), key);
    let collector = tokio::spawn(collect(rx));
    tokio::spawn(async move {
        p.replay(&tags, pace).await.unwrap();
        p.unpublish().await;
        collector.await.unwrap()
    })
}

/// What demuxing `testsrc.flv` as a file gives: the reference for a healthy session.
pub fn reference() -> Vec<MediaEvent> {
    weir_ingest::FlvFile::read_all(&read_data("testsrc.flv")).unwrap()
}
