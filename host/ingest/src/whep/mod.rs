//! WHEP (draft-ietf-wish-whep): any live stream, whatever protocol it came in on, played in
//! a browser over WebRTC for sub-second preview.
//!
//! `POST /whep/{stream}` (the binary's HTTP side) → [`Whep::offer`]: the browser's recvonly
//! offer in, an answer with H.264 video and Opus audio out, and a session resource that
//! `DELETE` ends. Sessions share WHIP's UDP port and mux. Media comes from the stream's
//! rendition in the registry, as the origin serves it ([`feed`]): one feed per stream reads
//! the CMAF parts as they are written, turns AAC into Opus once, and broadcasts frames; each
//! viewer ([`viewer`]) packetizes them for its own connection from a bounded queue.

mod feed;
pub(crate) mod fmp4;
mod viewer;

use std::collections::HashMap;
use std::io::Cursor;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::interceptor::Registry;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sdp::description::session::SessionDescription;
use tokio::sync::{broadcast, mpsc};
use tracing::{info, Instrument};
use weir_media::{AacConfig, StreamRegistry};

use crate::whip::{self, Answer, VideoCodec, WhipError};
use feed::Frame;

/// Turns a stream's AAC into Opus for WebRTC viewers (the binary supplies it: weir-encoder's).
pub trait OpusEncoder: Send {
    /// One raw AAC frame at `pts` (the track's 48 kHz clock); returns the Opus packets
    /// completed, each with its first sample's time on the same clock.
    fn push(&mut self, pts: i64, aac: &[u8]) -> Result<Vec<(i64, Bytes)>, String>;
}

/// Makes an encoder for a stream's AAC (`config`), starting at `pts`.
pub type OpusEncoders =
    Arc<dyn Fn(AacConfig, i64) -> Result<Box<dyn OpusEncoder>, String> + Send + Sync>;

/// The WHEP viewers of one process.
#[derive(Clone)]
pub struct Whep {
    inner: Arc<Inner>,
}

struct Inner {
    whip: Arc<whip::Shared>,
    registry: StreamRegistry,
    opus: OpusEncoders,
    max_viewers: usize,
    feeds: Mutex<HashMap<String, broadcast::Sender<Arc<Frame>>>>,
    sessions: Mutex<HashMap<String, Viewing>>,
}

/// A viewer's close signal and its figures.
type Viewing = (mpsc::Sender<()>, Arc<Mutex<whip::SessionStats>>);

impl Whep {
    pub(crate) fn new(
        whip: Arc<whip::Shared>,
        registry: StreamRegistry,
        opus: OpusEncoders,
        max_viewers: usize,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                whip,
                registry,
                opus,
                max_viewers,
                feeds: Mutex::new(HashMap::new()),
                sessions: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Viewers now.
    pub fn viewers(&self) -> usize {
        self.inner.lock_sessions().len()
    }

    /// Each viewer's figures (refreshed every second by its task).
    pub fn session_stats(&self) -> Vec<whip::SessionStats> {
        self.inner
            .lock_sessions()
            .values()
            .map(|(_, s)| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }

    /// A browser's offer to watch `stream`; its HTTP request reached `local_ip`.
    #[allow(clippy::disallowed_methods)] // the HTTP side drives the connection's start
    pub fn offer(&self, local_ip: IpAddr, stream: &str, offer: &str) -> Result<Answer, WhipError> {
        let inner = &self.inner;
        check_offer(offer)?;
        if inner.registry.get(stream).is_none() {
            return Err(WhipError::UnknownStream);
        }
        if inner.lock_sessions().len() >= inner.max_viewers {
            return Err(WhipError::Refused {
                public: crate::OVERLOADED,
                overloaded: true,
            });
        }
        let now = Instant::now();
        let mut m = whip::media_engine(VideoCodec::H264).map_err(internal)?;
        let registry = register_default_interceptors(Registry::new(), &mut m).map_err(internal)?;
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(m)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(internal)?;
        let mut senders = Vec::new();
        for (kind, codec) in [
            (
                RtpCodecKind::Video,
                RTCRtpCodec {
                    mime_type: "video/H264".to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line:
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                            .to_owned(),
                    rtcp_feedback: vec![],
                },
            ),
            (
                RtpCodecKind::Audio,
                RTCRtpCodec {
                    mime_type: "audio/opus".to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
            ),
        ] {
            let ssrc = inner.whip.random() as u32;
            let track = MediaStreamTrack::new(
                format!("weir-{stream}"),
                format!("weir-{stream}-{kind}"),
                format!("{stream} {kind}"),
                kind,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec,
                    ..Default::default()
                }],
            );
            senders.push(pc.add_track(track).map_err(internal)?);
        }
        let desc = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| WhipError::BadOffer(e.to_string()))?;
        pc.set_remote_description(now, desc)
            .map_err(|e| WhipError::BadOffer(e.to_string()))?;
        inner.whip.add_candidates(&mut pc, local_ip)?;
        let answer = pc
            .create_answer(None)
            .map_err(|e| WhipError::NoCodec(e.to_string()))?;
        pc.set_local_description(now, answer).map_err(internal)?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| WhipError::Internal("no local description".into()))?;
        if !sdp
            .lines()
            .any(|l| l.starts_with("a=rtpmap:") && l.to_ascii_lowercase().contains(" h264/90000"))
        {
            return Err(WhipError::NoCodec(
                "the offer cannot receive H.264 in packetization mode 1".into(),
            ));
        }
        let ufrag = whip::sdp_attr(&sdp, "ice-ufrag")
            .ok_or_else(|| WhipError::Internal("answer has no ice-ufrag".into()))?;
        let id = format!("{:016x}{:016x}", inner.whip.random(), inner.whip.random());
        let etag = format!("\"{:016x}\"", inner.whip.random());

        let frames = inner.subscribe(stream);
        let (dg_tx, dg_rx) = mpsc::channel(256);
        let (close_tx, close_rx) = mpsc::channel(1);
        inner.whip.routes.add(&ufrag, dg_tx);
        let stats = Arc::new(Mutex::new(whip::SessionStats {
            kind: "whep",
            stream: stream.to_owned(),
            ..whip::SessionStats::default()
        }));
        inner
            .lock_sessions()
            .insert(id.clone(), (close_tx, Arc::clone(&stats)));
        let on_end = {
            let inner = Arc::clone(inner);
            let (id, ufrag) = (id.clone(), ufrag.clone());
            Box::new(move || {
                inner.lock_sessions().remove(&id);
                inner.whip.routes.remove(&ufrag);
            })
        };
        let viewer = viewer::Viewer {
            pc,
            socket: Arc::clone(&inner.whip.socket),
            local: inner.whip.local,
            datagrams: dg_rx,
            close: close_rx,
            frames,
            video: senders[0],
            audio: senders[1],
            connect_timeout: Duration::from_secs(15),
            on_end,
            metrics: Arc::clone(&inner.whip.metrics),
            stats,
        };
        let span = tracing::info_span!(parent: None, "whep", %stream, resource = %id);
        info!(parent: &span, "whep viewer answered");
        tokio::spawn(viewer.run().instrument(span));
        Ok(Answer { sdp, id, etag })
    }

    /// DELETE on a viewer's resource.
    pub fn delete(&self, id: &str) -> Result<(), WhipError> {
        match self.inner.lock_sessions().get(id) {
            Some((tx, _)) => {
                let _ = tx.try_send(());
                Ok(())
            }
            None => Err(WhipError::UnknownSession),
        }
    }
}

impl Inner {
    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Viewing>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver of `stream`'s feed, starting the feed when it has none.
    fn subscribe(&self, stream: &str) -> broadcast::Receiver<Arc<Frame>> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        feeds.retain(|_, tx| tx.receiver_count() > 0);
        if let Some(tx) = feeds.get(stream) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(feed::QUEUE);
        feeds.insert(stream.to_owned(), tx.clone());
        let span = tracing::info_span!(parent: None, "whep_feed", %stream);
        tokio::spawn(
            feed::run(
                self.registry.clone(),
                stream.to_owned(),
                tx,
                Arc::clone(&self.opus),
            )
            .instrument(span),
        );
        rx
    }
}

fn internal(e: impl std::fmt::Display) -> WhipError {
    WhipError::Internal(e.to_string())
}

/// A WHEP offer must be SDP with a video section.
fn check_offer(offer: &str) -> Result<(), WhipError> {
    let sd = SessionDescription::unmarshal(&mut Cursor::new(offer.as_bytes()))
        .map_err(|e| WhipError::BadOffer(e.to_string()))?;
    if !sd
        .media_descriptions
        .iter()
        .any(|m| m.media_name.media == "video")
    {
        return Err(WhipError::NoCodec("the offer has no video section".into()));
    }
    Ok(())
}
