//! One RTMP connection, from handshake to the last frame.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult, StreamMetadata,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};
use tracing::{debug, field, info, info_span, warn, Instrument, Span};
use weir_media::{CueEvent, MediaEvent, StreamKey};

use super::cue;
use super::guard::ChunkGuard;
use super::{RtmpSettings, SessionInfo};
use crate::flv::{DemuxSettings, FlvDemuxer, StreamHints};
use crate::session::{evicted, End};
use crate::{Error, Result};

const READ_BUFFER: usize = 64 * 1024;
/// Cue points held until the demuxer has sent its first `Tracks`.
const MAX_HELD_CUES: usize = 64;

pub(crate) type Ctx = crate::session::Ctx<RtmpSettings>;

type Publishing = crate::session::Publishing<Flv>;

/// What an RTMP session keeps while it publishes.
struct Flv {
    demux: FlvDemuxer,
    /// A `Tracks` has gone out, so cue points may follow.
    started: bool,
    /// Cue points (AMF `onCuePoint`/`onAdCue`) waiting for `started`.
    cues: Vec<CueEvent>,
    /// The RTMP timestamp of the latest media message, for cue points without a `time`.
    last_media_ms: Option<i64>,
}

struct Session {
    id: u64,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    app: Option<String>,
    publishing: Option<Publishing>,
    /// Outbound bytes in the order rml_rtmp produced them.
    out: Vec<u8>,
    end: Option<End>,
}

/// Runs one connection to completion and logs how it ended. Never returns an error: the
/// log line is the outcome.
pub(crate) async fn run(
    mut sock: TcpStream,
    peer: SocketAddr,
    id: u64,
    ctx: Arc<Ctx>,
    shutdown: watch::Receiver<bool>,
) {
    let span = info_span!(
        "rtmp",
        session = id,
        %peer,
        app = field::Empty,
        key = field::Empty
    );
    async move {
        let mut session = Session {
            id,
            peer,
            ctx,
            app: None,
            publishing: None,
            out: Vec::new(),
            end: None,
        };
        let result = session.drive(&mut sock, shutdown).await;
        if result.is_err() {
            // Best effort: a refusal's status message, so the encoder can say why.
            let _ = timeout(
                std::time::Duration::from_millis(200),
                sock.write_all(&session.out),
            )
            .await;
        }
        if let Some(p) = &session.publishing {
            p.ended(&session.ctx, &result);
        }
        let stats = session.publishing.as_ref().map(|p| p.state.demux.stats());
        let (video, audio, dropped) =
            stats.map_or((0, 0, 0), |s| (s.video_samples, s.audio_samples, s.dropped));
        match result {
            Ok(End::Finished) => info!(video, audio, dropped, "publisher finished"),
            Ok(End::Shutdown) => info!(video, audio, dropped, "closed for shutdown"),
            Ok(End::PipelineClosed) => {
                info!(video, audio, dropped, "pipeline closed the stream")
            }
            Ok(End::TakenOver) => warn!(
                video,
                audio, dropped, "closed: another publisher took over this idle stream key"
            ),
            Ok(End::PeerClosed) if session.publishing.is_some() => warn!(
                video,
                audio, dropped, "closed: publisher disconnected without unpublishing"
            ),
            Ok(End::PeerClosed) => info!("peer disconnected before publishing"),
            Err(e) => warn!(video, audio, dropped, "closed: {e}"),
        }
    }
    .instrument(span)
    .await;
}

impl Session {
    #[allow(clippy::disallowed_methods)] // a session's task is its driver: handshake and idle deadlines
    async fn drive(
        &mut self,
        sock: &mut TcpStream,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<End> {
        let ctx = Arc::clone(&self.ctx);
        let settings = &ctx.settings;
        let setup_deadline = Instant::now() + settings.handshake_timeout;
        let idle = settings.idle_timeout;

        let remaining = handshake(sock, setup_deadline).await?;
        let (mut rtmp, results) = ServerSession::new(ServerSessionConfig::new())
            .map_err(|e| Error::Protocol(e.to_string()))?;
        self.absorb(results);
        let mut guard = ChunkGuard::new(settings.max_message_bytes);
        self.feed(&mut guard, &mut rtmp, &remaining).await?;

        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let deadline = if self.publishing.is_some() {
                Instant::now() + idle
            } else {
                setup_deadline.min(Instant::now() + idle)
            };
            if !self.out.is_empty() {
                timeout_at(deadline, sock.write_all(&self.out))
                    .await
                    .map_err(|_| Error::Timeout("the peer does not read what we send"))??;
                self.out.clear();
            }
            if let Some(end) = self.end {
                self.finish_media().await;
                return Ok(end);
            }
            let publishing = self.publishing.is_some();
            let read = tokio::select! {
                biased;
                _ = shutdown.wait_for(|stop| *stop) => return Ok(End::Shutdown),
                () = evicted(self.publishing.as_ref()) => return Ok(End::TakenOver),
                read = timeout_at(deadline, sock.read(&mut buf)) => read,
            };
            let n = match read {
                Ok(n) => n?,
                Err(_) if publishing => return Err(Error::Timeout("no data for idle_timeout")),
                Err(_) => {
                    return Err(Error::Timeout(
                        "no accepted publish within handshake_timeout",
                    ))
                }
            };
            if n == 0 {
                self.finish_media().await;
                return Ok(End::PeerClosed);
            }
            self.feed(&mut guard, &mut rtmp, &buf[..n]).await?;
        }
    }

    async fn feed(
        &mut self,
        guard: &mut ChunkGuard,
        rtmp: &mut ServerSession,
        bytes: &[u8],
    ) -> Result<()> {
        // The guard sees every byte before rml_rtmp does: a message it refuses (too large,
        // AMF nested too deep…) ends the session before rml_rtmp could complete and decode
        // it, since its last chunk is in `bytes` (guard.rs says why that matters).
        guard.check(bytes)?;
        let results = rtmp
            .handle_input(bytes)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        // Every packet produced by `handle_input` was serialized before anything that
        // accepting a request produces, so it goes out first (RTMP header compression
        // depends on the order).
        let events = self.absorb(results);
        for event in events {
            if self.end.is_some() {
                break;
            }
            self.on_event(rtmp, event).await?;
        }
        let data = guard.take_data_messages();
        if !data.is_empty() {
            for (type_id, payload) in data {
                self.on_data_message(type_id, &payload);
            }
            self.drain().await?;
        }
        Ok(())
    }

    /// An AMF data message other than metadata (rml_rtmp drops those): RTMP cue points.
    fn on_data_message(&mut self, type_id: u8, payload: &[u8]) {
        let Some(p) = self.publishing.as_mut() else {
            return;
        };
        let p = &mut p.state;
        match cue::from_data_message(type_id, payload, p.last_media_ms) {
            Some(cue) if p.cues.len() < MAX_HELD_CUES => {
                info!(id = cue.id, out = cue.out_of_network, pts = ?cue.pts, "RTMP cue point");
                p.cues.push(cue);
            }
            Some(_) => warn!("RTMP cue point dropped: too many before the first keyframe"),
            None => debug!(type_id, len = payload.len(), "ignoring AMF data message"),
        }
    }

    /// Queues outbound packets; returns the raised events.
    fn absorb(&mut self, results: Vec<ServerSessionResult>) -> Vec<ServerSessionEvent> {
        let mut events = Vec::new();
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => {
                    self.out.extend_from_slice(&packet.bytes)
                }
                ServerSessionResult::RaisedEvent(event) => events.push(event),
                ServerSessionResult::UnhandleableMessageReceived(m) => {
                    debug!(type_id = m.type_id, "ignoring RTMP message")
                }
            }
        }
        events
    }

    async fn on_event(
        &mut self,
        rtmp: &mut ServerSession,
        event: ServerSessionEvent,
    ) -> Result<()> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                // OBS and ffmpeg may append "?query" or "/" to the app.
                let app = app_name
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned();
                Span::current().record("app", field::debug(&app));
                if app != self.ctx.settings.app {
                    self.reject(
                        rtmp,
                        request_id,
                        "NetConnection.Connect.Rejected",
                        "unknown application",
                    )?;
                    return Err(Error::Refused(format!(
                        "application {app:?} is not served (expected {:?})",
                        self.ctx.settings.app
                    )));
                }
                let results = rtmp
                    .accept_request(request_id)
                    .map_err(|e| Error::Protocol(e.to_string()))?;
                self.absorb(results);
                self.app = Some(app);
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => self.on_publish(rtmp, request_id, stream_key).await?,
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(p) = self.publishing.as_mut() {
                    p.state.demux.set_hints(hints(&metadata));
                }
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.on_media(true, timestamp.value, data).await?,
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.on_media(false, timestamp.value, data).await?,
            ServerSessionEvent::PublishStreamFinished { .. } => self.end = Some(End::Finished),
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                self.reject(
                    rtmp,
                    request_id,
                    "NetStream.Play.Failed",
                    "this server only ingests",
                )?;
                return Err(Error::Refused(
                    "play requested; this server only ingests".into(),
                ));
            }
            ServerSessionEvent::ReleaseStreamRequested { request_id, .. } => {
                // Harmless; answering keeps strict clients happy.
                if let Ok(results) = rtmp.accept_request(request_id) {
                    self.absorb(results);
                }
            }
            other => debug!(event = ?other, "RTMP event"),
        }
        Ok(())
    }

    /// A publish request: authorize, claim the key, ask the handler where media goes. Every
    /// refusal tells the publisher the same [`crate::REFUSED`] (an unknown key and a busy
    /// one read alike); the log line says why.
    async fn on_publish(
        &mut self,
        rtmp: &mut ServerSession,
        request_id: u32,
        stream_key: String,
    ) -> Result<()> {
        const DENIED: &str = "NetStream.Publish.Denied";
        if self.publishing.is_some() {
            self.reject(rtmp, request_id, DENIED, crate::REFUSED)?;
            return Err(Error::Refused("second publish on one connection".into()));
        }
        let Some(app) = self.app.clone() else {
            return Err(Error::Protocol("publish before connect".into()));
        };
        if stream_key.is_empty() {
            self.reject(rtmp, request_id, DENIED, crate::REFUSED)?;
            return Err(Error::Refused("empty stream key".into()));
        }
        let key = StreamKey::new(stream_key);
        Span::current().record("key", field::display(&key));
        let info = SessionInfo {
            id: self.id,
            peer: self.peer,
            app,
            protocol: crate::Protocol::Rtmp,
        };
        if let Err(refusal) = self.ctx.handler.authorize(&info, &key).await {
            self.reject(rtmp, request_id, DENIED, refusal.public_text())?;
            return Err(Error::Refused(format!("publish not authorized: {refusal}")));
        }
        let demux = FlvDemuxer::new(DemuxSettings {
            no_keyframe_timeout: self.ctx.settings.no_keyframe_timeout,
            ..DemuxSettings::default()
        });
        let flv = Flv {
            demux,
            started: false,
            cues: Vec::new(),
            last_media_ms: None,
        };
        let publishing = match crate::session::start(&self.ctx, &info, &key, flv) {
            Ok(publishing) => publishing,
            Err(refused) => {
                self.reject(rtmp, request_id, DENIED, refused.public_text)?;
                return Err(refused.error);
            }
        };
        let results = rtmp
            .accept_request(request_id)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        self.absorb(results);
        self.publishing = Some(publishing);
        info!("publishing");
        Ok(())
    }

    async fn on_media(&mut self, video: bool, timestamp_ms: u32, data: Bytes) -> Result<()> {
        let Some(p) = self.publishing.as_mut() else {
            debug!("media before publish; ignored");
            return Ok(());
        };
        p.touch();
        let flv = &mut p.state;
        flv.last_media_ms = Some(i64::from(timestamp_ms));
        if video {
            flv.demux.push_video(timestamp_ms, data)?;
        } else {
            flv.demux.push_audio(timestamp_ms, data)?;
        }
        self.drain().await
    }

    /// Hands the demuxer's events to the pipeline.
    async fn drain(&mut self) -> Result<()> {
        let sink_timeout = self.ctx.settings.sink_timeout;
        let Some(p) = self.publishing.as_mut() else {
            return Ok(());
        };
        loop {
            let flv = &mut p.state;
            let event = match flv.demux.poll_event() {
                Some(event) => event,
                None if flv.started && !flv.cues.is_empty() => MediaEvent::Cue(flv.cues.remove(0)),
                None => break,
            };
            flv.started |= matches!(event, MediaEvent::Tracks(_));
            if !p.forward(event, sink_timeout).await? {
                self.end = Some(End::PipelineClosed);
                break;
            }
        }
        Ok(())
    }

    /// The stream ended normally: release anything the demuxer was holding.
    async fn finish_media(&mut self) {
        if let Some(p) = self.publishing.as_mut() {
            p.state.demux.finish();
            let _ = self.drain().await;
        }
    }

    fn reject(
        &mut self,
        rtmp: &mut ServerSession,
        request_id: u32,
        code: &str,
        description: &str,
    ) -> Result<()> {
        let results = rtmp
            .reject_request(request_id, code, description)
            .map_err(|e| Error::Protocol(e.to_string()))?;
        self.absorb(results);
        Ok(())
    }
}

fn hints(metadata: &StreamMetadata) -> StreamHints {
    // Absent fields say nothing: some encoders omit them.
    StreamHints {
        video: metadata.video_codec_id.map(|_| true),
        audio: metadata.audio_codec_id.map(|_| true),
    }
}

/// The RTMP handshake; returns the bytes that followed it.
async fn handshake(sock: &mut TcpStream, deadline: Instant) -> Result<Vec<u8>> {
    let mut handshake = Handshake::new(PeerType::Server);
    let mut buf = [0u8; 4096];
    loop {
        let n = timeout_at(deadline, sock.read(&mut buf))
            .await
            .map_err(|_| {
                Error::Timeout("RTMP handshake not completed within handshake_timeout")
            })??;
        if n == 0 {
            return Err(Error::Handshake("peer closed the connection".into()));
        }
        let (response, remaining) = match handshake
            .process_bytes(&buf[..n])
            .map_err(|e| Error::Handshake(e.to_string()))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => (response_bytes, None),
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => (response_bytes, Some(remaining_bytes)),
        };
        if !response.is_empty() {
            timeout_at(deadline, sock.write_all(&response))
                .await
                .map_err(|_| Error::Timeout("the peer does not read the handshake"))??;
        }
        if let Some(remaining) = remaining {
            return Ok(remaining);
        }
    }
}
