//! Shared fixtures: a stream with one rendition, and HTTP/1.1 and h2c clients.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weir_media::{
    rendition_channel, RenditionProducer, RenditionSnapshot, StreamProducer, StreamRegistry,
};
use weir_origin::{Origin, OriginSettings};

pub const TARGET: Duration = Duration::from_secs(2);
pub const PART_TARGET: Duration = Duration::from_millis(500);

pub fn snapshot(version: u64, first_msn: u64, next_msn: u64, parts_done: u32) -> RenditionSnapshot {
    RenditionSnapshot {
        version,
        first_msn,
        next_msn,
        parts_done,
        target_duration: TARGET,
        part_target: PART_TARGET,
        playlist: Bytes::from(format!("#EXTM3U\n#version {version}\n")),
        playlist_skip: None,
        ended: false,
        cues: Default::default(),
    }
}

/// One live stream with one rendition (`720p`), published under `name`.
pub struct Live {
    pub stream: StreamProducer,
    pub rendition: RenditionProducer,
}

impl Live {
    pub fn publish(registry: &StreamRegistry, name: &str) -> Self {
        let stream = registry.publish(name);
        let (rendition, reader) = rendition_channel();
        stream.add_rendition("720p", reader);
        Self { stream, rendition }
    }

    /// Writes complete part `seq` with `body`.
    pub fn part(&self, seq: u64, body: &str) {
        let part = self.rendition.begin_part(seq).expect("part opens once");
        part.push(Bytes::from(body.to_owned()));
        part.finish();
    }
}

pub fn origin(registry: StreamRegistry) -> Arc<Origin> {
    Arc::new(Origin::new(OriginSettings::default(), registry).unwrap())
}

pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Serves `uri` in-process, without a socket.
pub async fn get(origin: &Origin, uri: &str) -> Got {
    request(origin, "GET", uri).await
}

pub async fn request(origin: &Origin, method: &str, uri: &str) -> Got {
    let request = Request::builder().method(method).uri(uri).body(()).unwrap();
    let response = origin.handle(request).await;
    let (parts, body) = response.into_parts();
    Got {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

pub struct Server {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<weir_origin::Result<()>>,
}

impl Server {
    pub async fn start(origin: Arc<Origin>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(origin.serve(listener, tls, async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            shutdown: Some(tx),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn h1(addr: SocketAddr) -> http1::SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(connection);
    sender
}

pub async fn h2c(addr: SocketAddr) -> http2::SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

pub fn get_request(url: &str) -> Request<Empty<Bytes>> {
    Request::get(url).body(Empty::new()).unwrap()
}
