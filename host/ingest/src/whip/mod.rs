//! WHIP (RFC 9725): WebRTC contribution from browsers and OBS, bridged into the same
//! pipeline as RTMP and SRT.
//!
//! [`Whip`] is the protocol without HTTP: the embedding binary routes `POST /whip/{key}`
//! to [`Whip::offer`] (the SDP offer in, the answer and a session resource out), and
//! `DELETE` and `PATCH` on that resource to [`Whip::delete`] and [`Whip::patch`]. Every
//! session shares one UDP socket ([`mux`]), so a firewall or a Kubernetes Service opens one
//! port. Each session is a task that drives webrtc-rs's sans-IO peer connection
//! (`rtc`; design 011 says why not the `webrtc` crate's socket-per-connection driver),
//! rebuilds H.264 access units and Opus frames from RTP ([`depack`]), turns Opus into AAC
//! through the binary's [`AudioTranscoder`], and publishes through the same contract as
//! RTMP and SRT: one publisher per key, the same `on_publish` rules, the same ends.
//!
//! What an offer may carry: H.264 in packetization mode 1 (passed through: no decoding in
//! ingest) or else VP8 (turned into H.264 by the binary's [`VideoTranscoder`]), and Opus
//! audio (optional). An offer with neither is refused ([`WhipError::NoCodec`]).

mod depack;
pub mod fuzzing;
mod metrics;
pub(crate) mod mux;
mod peer;

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::io::Cursor;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rtc::interceptor::Registry;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::{
    MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8,
};
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use rtc::sdp::description::session::SessionDescription;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::{info, Instrument};
use weir_media::StreamKey;

pub(crate) use depack::VideoCodec;
pub use depack::{AudioTranscoder, OpusTranscoders, Transcoders, VideoTranscoder, Vp8Transcoders};
pub use metrics::{SessionStats, WebRtcMetrics};

use crate::keys::ActiveKeys;
use crate::publish::{Protocol, PublishHandler, SessionInfo};
use crate::session::{self, Ctx};
use peer::{Control, Peer};

/// A WHIP offer larger than this is refused (a browser's offer is 4–8 KB).
pub const MAX_OFFER: usize = 64 * 1024;

/// What WHIP sessions run with.
#[derive(Debug, Clone)]
pub struct WhipSettings {
    /// Addresses given to publishers as ICE host candidates (with the UDP port). Empty: the
    /// address the publisher's HTTP request reached, which is right unless a NAT or a load
    /// balancer sits between (then list the public address here).
    pub candidate_ips: Vec<IpAddr>,
    /// Sessions at once; one more is refused (503).
    pub max_sessions: usize,
    /// A keyframe is asked for (PLI) when none came for this long: browsers send one only
    /// when asked, and segments start on keyframes.
    pub keyframe_interval: Duration,
    /// A session with no WebRTC connection (ICE and DTLS) after this long ends.
    pub connect_timeout: Duration,
    /// How long a full pipeline may hold one event before the session fails.
    pub sink_timeout: Duration,
    /// The most video a publisher may send, kbit/s: the answer's video section says
    /// `b=AS` (RFC 4566 5.8), which browsers and OBS honour as their encoder's ceiling.
    pub max_video_kbps: Option<u32>,
}

/// When to ask for a keyframe, unless configured: 0.4 part target before the segment
/// target, so the keyframe, which comes a frame or two after the request, lands in the
/// segment's last part and the packager cuts there (see `WhipConfig::keyframe_interval_ms`).
pub fn keyframe_interval(segment_target: Duration, part_target: Duration) -> Duration {
    segment_target.saturating_sub(part_target * 2 / 5)
}

impl Default for WhipSettings {
    fn default() -> Self {
        Self {
            candidate_ips: Vec::new(),
            max_sessions: 100,
            // For the packager's default targets: 2 s segments of 500 ms parts.
            keyframe_interval: keyframe_interval(
                Duration::from_secs(2),
                Duration::from_millis(500),
            ),
            connect_timeout: Duration::from_secs(15),
            sink_timeout: Duration::from_secs(5),
            max_video_kbps: None,
        }
    }
}

/// Why an offer, a PATCH or a DELETE was refused: each maps to one HTTP status, and its
/// text is safe to send to the publisher.
#[derive(Debug, thiserror::Error)]
pub enum WhipError {
    /// 400: not an SDP offer we can read.
    #[error("malformed SDP offer: {0}")]
    BadOffer(String),
    /// 422: no H.264 (packetization mode 1) or VP8 video in the offer.
    #[error("no usable codec: {0}")]
    NoCodec(String),
    /// 401 (a refused key) or 503 (a limit): the publish contract's public text.
    #[error("{public}")]
    Refused {
        public: &'static str,
        overloaded: bool,
    },
    /// 404: no such session (or not this key's).
    #[error("no such WHIP session")]
    UnknownSession,
    /// 404 (WHEP): no such live stream.
    #[error("no such live stream")]
    UnknownStream,
    /// 400: a PATCH body that is not a trickle-ice-sdpfrag.
    #[error("malformed ICE fragment: {0}")]
    BadFragment(String),
    /// 422: an ICE restart the session could not take (publish again with a new POST).
    #[error("ICE restart failed: {0}")]
    IceRestart(String),
    /// 500.
    #[error("WebRTC setup failed: {0}")]
    Internal(String),
}

/// A session's answer: the SDP and the resource that names the session.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sdp: String,
    /// The resource id (`/whip/session/{id}`): 128 random bits in hex.
    pub id: String,
    /// The ICE session's tag (RFC 9725 4.3.1), the answer's ufrag and password digest.
    pub etag: String,
}

/// What a PATCH did (RFC 9725 4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patched {
    /// Trickled candidates (how many the session took): `204`.
    Trickled(usize),
    /// An ICE restart (the fragment had a new ufrag and password): `200` with weir's new
    /// credentials and candidates as a trickle-ice-sdpfrag, and the session's new ETag. The
    /// session, its stream and its media go on: no discontinuity.
    Restarted { fragment: String, etag: String },
}

/// The WHIP sessions of one process, on one UDP socket.
#[derive(Clone)]
pub struct Whip {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) ctx: Ctx<WhipSettings>,
    pub(crate) routes: Arc<mux::Routes>,
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) local: SocketAddr,
    sessions: Mutex<HashMap<String, Entry>>,
    transcoders: Transcoders,
    pub(crate) metrics: Arc<WebRtcMetrics>,
    next_id: AtomicU64,
    random: std::collections::hash_map::RandomState,
}

struct Entry {
    key: StreamKey,
    etag: String,
    remote_ufrag: String,
    control: mpsc::Sender<Control>,
    stats: Arc<Mutex<SessionStats>>,
}

impl Shared {
    /// A session ended: its resource and its routes go.
    pub(crate) fn forget(&self, id: &str, ufrag: &str) {
        self.lock().remove(id);
        self.routes.remove(ufrag);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives `pc` weir's host candidates on the shared port: the configured addresses, or
    /// `local_ip` (where the HTTP request arrived).
    pub(crate) fn add_candidates(
        &self,
        pc: &mut rtc::peer_connection::RTCPeerConnection,
        local_ip: IpAddr,
    ) -> Result<(), WhipError> {
        let ips = if self.ctx.settings.candidate_ips.is_empty() {
            vec![local_ip]
        } else {
            self.ctx.settings.candidate_ips.clone()
        };
        for ip in ips {
            let candidate = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: "udp".to_owned(),
                    address: ip.to_string(),
                    port: self.local.port(),
                    component: 1,
                    ..Default::default()
                },
                ..Default::default()
            }
            .new_candidate_host()
            .map_err(|e| WhipError::Internal(e.to_string()))?;
            let init = RTCIceCandidate::from(&candidate)
                .to_json()
                .map_err(|e| WhipError::Internal(e.to_string()))?;
            pc.add_local_candidate(init)
                .map_err(|e| WhipError::Internal(e.to_string()))?;
        }
        Ok(())
    }

    /// A session's ETag (RFC 9725 4.3.1): a digest of weir's ICE credentials for it, so it
    /// changes with an ICE restart.
    pub(crate) fn etag(&self, ufrag: &str, pwd: &str) -> String {
        let mut h = self.random.build_hasher();
        h.write(ufrag.as_bytes());
        h.write(pwd.as_bytes());
        format!("\"{:016x}\"", h.finish())
    }

    /// 64 unpredictable bits (the std hasher's keys come from the OS's random source).
    pub(crate) fn random(&self) -> u64 {
        let mut h = self.random.build_hasher();
        // SipHash under the process's random keys, over a number never hashed twice.
        h.write_u64(self.next_id.fetch_add(1, Ordering::Relaxed));
        h.finish()
    }
}

impl Whip {
    /// Binds the UDP socket every session shares and starts routing it.
    pub async fn bind(
        udp: SocketAddr,
        settings: WhipSettings,
        handler: Arc<dyn PublishHandler>,
        keys: ActiveKeys,
        transcoders: Transcoders,
    ) -> std::io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(udp).await?);
        let local = socket.local_addr()?;
        let routes = Arc::new(mux::Routes::default());
        tokio::spawn(mux::run(Arc::clone(&socket), Arc::clone(&routes)));
        info!(%local, "whip: webrtc media on one udp port");
        Ok(Self {
            shared: Arc::new(Shared {
                ctx: Ctx {
                    settings,
                    handler,
                    keys,
                },
                routes,
                socket,
                local,
                sessions: Mutex::new(HashMap::new()),
                transcoders,
                metrics: Arc::new(WebRtcMetrics::default()),
                next_id: AtomicU64::new(1),
                random: std::collections::hash_map::RandomState::new(),
            }),
        })
    }

    /// WHEP viewers on the same UDP port (and the same candidates) as these publishers.
    pub fn whep(
        &self,
        registry: weir_media::StreamRegistry,
        opus: crate::whep::OpusEncoders,
        max_viewers: usize,
    ) -> crate::whep::Whep {
        crate::whep::Whep::new(Arc::clone(&self.shared), registry, opus, max_viewers)
    }

    /// WHIP's and WHEP's counters.
    pub fn metrics(&self) -> Arc<WebRtcMetrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// The UDP address sessions use.
    pub fn udp_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Sessions now.
    pub fn sessions(&self) -> usize {
        self.shared.lock().len()
    }

    /// Each publisher's figures (refreshed every second by its session).
    pub fn session_stats(&self) -> Vec<SessionStats> {
        self.shared
            .lock()
            .values()
            .map(|e| {
                e.stats
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
            })
            .collect()
    }

    /// A publisher's offer for `key`, from `peer`, whose HTTP request reached `local_ip`.
    /// Checks the offer, then the key (the publish contract), then answers.
    #[allow(clippy::disallowed_methods)] // the HTTP side drives the connection's start
    pub fn offer(
        &self,
        peer: SocketAddr,
        local_ip: IpAddr,
        key: &StreamKey,
        offer: &str,
    ) -> Result<Answer, WhipError> {
        let shared = &self.shared;
        let (video, audio) = check_offer(offer, shared.transcoders.vp8.is_some())?;
        if shared.lock().len() >= shared.ctx.settings.max_sessions {
            return Err(WhipError::Refused {
                public: crate::OVERLOADED,
                overloaded: true,
            });
        }
        let info = SessionInfo {
            id: shared.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            app: "whip".to_owned(),
            protocol: Protocol::Whip,
        };
        let span = tracing::info_span!(parent: None, "whip", session = info.id, peer = %peer, key = %key.redacted());
        let _g = span.enter();
        let publishing = session::start(&shared.ctx, &info, key, ()).map_err(|refused| {
            info!(reason = %refused.error, "whip publish refused");
            WhipError::Refused {
                public: refused.public_text,
                overloaded: refused.public_text == crate::OVERLOADED,
            }
        })?;

        let mut pc = peer_connection(Instant::now(), video)
            .map_err(|e| WhipError::Internal(e.to_string()))?;
        let offer_desc = RTCSessionDescription::offer(offer.to_owned())
            .map_err(|e| WhipError::BadOffer(e.to_string()))?;
        pc.set_remote_description(Instant::now(), offer_desc)
            .map_err(|e| WhipError::BadOffer(e.to_string()))?;
        shared.add_candidates(&mut pc, local_ip)?;
        let answer = pc
            .create_answer(None)
            .map_err(|e| WhipError::NoCodec(e.to_string()))?;
        pc.set_local_description(Instant::now(), answer)
            .map_err(|e| WhipError::Internal(e.to_string()))?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| WhipError::Internal("no local description".into()))?;
        if !answer_has(&sdp, video) {
            return Err(WhipError::NoCodec(format!(
                "no {video:?} in the answer: the offer's parameters for it are not ones weir takes"
            )));
        }
        let sdp = match shared.ctx.settings.max_video_kbps {
            Some(kbps) => with_video_bandwidth(&sdp, kbps),
            None => sdp,
        };
        let ufrag = sdp_attr(&sdp, "ice-ufrag")
            .ok_or_else(|| WhipError::Internal("answer has no ice-ufrag".into()))?;
        let pwd = sdp_attr(&sdp, "ice-pwd").unwrap_or_default();
        let remote_ufrag = sdp_attr(offer, "ice-ufrag").unwrap_or_default();
        let id = format!("{:016x}{:016x}", shared.random(), shared.random());
        let etag = shared.etag(&ufrag, &pwd);

        let (dg_tx, dg_rx) = mpsc::channel(1024);
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        shared.routes.add(&ufrag, dg_tx);
        let stats = Arc::new(Mutex::new(SessionStats {
            kind: "whip",
            stream: key.redacted().to_string(),
            ..SessionStats::default()
        }));
        shared.lock().insert(
            id.clone(),
            Entry {
                key: key.clone(),
                etag: etag.clone(),
                remote_ufrag,
                control: ctl_tx,
                stats: Arc::clone(&stats),
            },
        );
        let peer = Peer {
            pc,
            shared: Arc::clone(shared),
            socket: Arc::clone(&shared.socket),
            local: shared.local,
            datagrams: dg_rx,
            control: ctl_rx,
            depack: depack::Depack::new(Instant::now(), video, audio, shared.transcoders.clone()),
            publishing,
            id: id.clone(),
            ufrag,
            offer: offer.to_owned(),
            stats,
        };
        info!(resource = %id, ?video, audio, "whip session answered");
        shared
            .metrics
            .whip_sessions_total
            .fetch_add(1, Ordering::Relaxed);
        drop(_g);
        tokio::spawn(peer.run().instrument(span));
        Ok(Answer { sdp, id, etag })
    }

    /// DELETE on a session's resource: the session ends. The id (128 random bits, told only
    /// to the publisher) names it; a `token` sent along must be the session's key.
    pub fn delete(&self, id: &str, token: Option<&StreamKey>) -> Result<(), WhipError> {
        let entry = self.entry(id, token)?;
        let _ = entry.try_send(Control::Close);
        Ok(())
    }

    /// PATCH with a trickle-ice-sdpfrag (RFC 8840): its candidates go to the session. A
    /// fragment with another ufrag (and its password) is an ICE restart (RFC 9725 4.4.2):
    /// the session answers the publisher's new credentials with its own, over the same
    /// port, and goes on — a publisher whose network changed keeps its stream with no
    /// discontinuity.
    pub async fn patch(
        &self,
        id: &str,
        token: Option<&StreamKey>,
        fragment: &str,
    ) -> Result<Patched, WhipError> {
        let control = self.entry(id, token)?;
        let remote_ufrag = self
            .shared
            .lock()
            .get(id)
            .map(|e| e.remote_ufrag.clone())
            .unwrap_or_default();
        let f = parse_fragment(fragment)?;
        match f.ufrag {
            Some(ufrag) if !remote_ufrag.is_empty() && ufrag != remote_ufrag => {
                let pwd = f.pwd.ok_or_else(|| {
                    WhipError::BadFragment("an ICE restart needs the new a=ice-pwd".into())
                })?;
                let (reply, answer) = tokio::sync::oneshot::channel();
                control
                    .send(Control::Restart {
                        ufrag: ufrag.clone(),
                        pwd,
                        candidates: f.candidates,
                        reply,
                    })
                    .await
                    .map_err(|_| WhipError::UnknownSession)?;
                let restarted = tokio::time::timeout(Duration::from_secs(5), answer)
                    .await
                    .map_err(|_| WhipError::IceRestart("the session did not answer".into()))?
                    .map_err(|_| WhipError::UnknownSession)??;
                let etag = self.shared.etag(&restarted.ufrag, &restarted.pwd);
                if let Some(e) = self.shared.lock().get_mut(id) {
                    e.remote_ufrag = ufrag;
                    e.etag = etag.clone();
                }
                Ok(Patched::Restarted {
                    fragment: restarted.fragment,
                    etag,
                })
            }
            _ => {
                let n = f.candidates.len();
                if n > 0 {
                    let _ = control.try_send(Control::Candidates(f.candidates));
                }
                Ok(Patched::Trickled(n))
            }
        }
    }

    /// The session's tag, for `If-Match` on PATCH.
    pub fn etag(&self, id: &str) -> Option<String> {
        self.shared.lock().get(id).map(|e| e.etag.clone())
    }

    fn entry(
        &self,
        id: &str,
        token: Option<&StreamKey>,
    ) -> Result<mpsc::Sender<Control>, WhipError> {
        let sessions = self.shared.lock();
        match sessions.get(id) {
            Some(e) if token.is_none_or(|t| crate::keys::same_key(&e.key, t)) => {
                Ok(e.control.clone())
            }
            _ => Err(WhipError::UnknownSession),
        }
    }
}

/// The codecs weir takes: H.264 in packetization mode 1 (the profiles browsers offer) or,
/// for an offer without it, VP8; and Opus. Only the session's video codec is registered, so
/// the answer cannot pick VP8 (a transcode) where H.264 (passed through) was offered. No RTX:
/// retransmissions (NACK) come on the media's own SSRC.
pub(crate) fn media_engine(video: VideoCodec) -> Result<MediaEngine, rtc::shared::error::Error> {
    let mut m = MediaEngine::default();
    m.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    let feedback = |typ: &str, parameter: &str| rtc::rtp_transceiver::rtp_sender::RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    if video == VideoCodec::Vp8 {
        m.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![
                        feedback("ccm", "fir"),
                        feedback("nack", ""),
                        feedback("nack", "pli"),
                    ],
                },
                payload_type: 96,
            },
            RtpCodecKind::Video,
        )?;
        return Ok(m);
    }
    for (pt, profile) in [
        (102, "42001f"),
        (125, "42e01f"),
        (127, "4d001f"),
        (123, "640032"),
    ] {
        m.register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_H264.to_owned(),
                    clock_rate: 90000,
                    channels: 0,
                    sdp_fmtp_line: format!(
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}"
                    ),
                    rtcp_feedback: vec![
                        feedback("ccm", "fir"),
                        feedback("nack", ""),
                        feedback("nack", "pli"),
                    ],
                },
                payload_type: pt,
            },
            RtpCodecKind::Video,
        )?;
    }
    Ok(m)
}

pub(crate) fn peer_connection(
    now: Instant,
    video: VideoCodec,
) -> Result<rtc::peer_connection::RTCPeerConnection, rtc::shared::error::Error> {
    let mut m = media_engine(video)?;
    let registry = register_default_interceptors(Registry::new(), &mut m)?;
    let mut pc = RTCPeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(m)
        .with_interceptor_registry(registry)
        .build(now)?;
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        pc.add_transceiver_from_kind(
            kind,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )?;
    }
    Ok(pc)
}

/// Reads the offer as SDP and checks that it can work: a video section offering H.264 in
/// packetization mode 1, or VP8 when `vp8` (a transcoder is there). Returns the video codec
/// the session will take (H.264 whenever offered) and whether it offers Opus audio.
fn check_offer(offer: &str, vp8: bool) -> Result<(VideoCodec, bool), WhipError> {
    let sd = SessionDescription::unmarshal(&mut Cursor::new(offer.as_bytes()))
        .map_err(|e| WhipError::BadOffer(e.to_string()))?;
    if sd.media_descriptions.is_empty() {
        return Err(WhipError::BadOffer("no media sections".into()));
    }
    let mut h264 = false;
    let mut has_vp8 = false;
    let mut opus = false;
    for md in &sd.media_descriptions {
        let rtpmaps: Vec<(&str, String)> = md
            .attributes
            .iter()
            .filter(|a| a.key == "rtpmap")
            .filter_map(|a| {
                let v = a.value.as_deref()?;
                let (pt, codec) = v.split_once(' ')?;
                Some((pt, codec.to_ascii_lowercase()))
            })
            .collect();
        match md.media_name.media.as_str() {
            "video" => {
                for (pt, codec) in &rtpmaps {
                    has_vp8 |= codec.starts_with("vp8/90000");
                    if !codec.starts_with("h264/90000") {
                        continue;
                    }
                    let mode1 = md.attributes.iter().any(|a| {
                        a.key == "fmtp"
                            && a.value.as_deref().is_some_and(|v| {
                                v.split_once(' ').is_some_and(|(p, params)| {
                                    p == *pt && params.contains("packetization-mode=1")
                                })
                            })
                    });
                    h264 |= mode1;
                }
            }
            "audio" => opus |= rtpmaps.iter().any(|(_, c)| c.starts_with("opus/48000")),
            _ => {}
        }
    }
    match (h264, has_vp8 && vp8) {
        (true, _) => Ok((VideoCodec::H264, opus)),
        (false, true) => Ok((VideoCodec::Vp8, opus)),
        (false, false) => Err(WhipError::NoCodec(format!(
            "weir takes H.264 video in packetization mode 1{} (and Opus audio); the offer has none",
            if vp8 { " or VP8" } else { "" }
        ))),
    }
}

fn answer_has(sdp: &str, video: VideoCodec) -> bool {
    let name = match video {
        VideoCodec::H264 => " h264/90000",
        VideoCodec::Vp8 => " vp8/90000",
    };
    sdp.lines()
        .any(|l| l.starts_with("a=rtpmap:") && l.to_ascii_lowercase().contains(name))
}

/// `sdp` with `b=AS:{kbps}` in its video section (after its `c=` line, where RFC 4566
/// puts bandwidth lines; any `b=` it had there is replaced).
fn with_video_bandwidth(sdp: &str, kbps: u32) -> String {
    let mut out = String::with_capacity(sdp.len() + 16);
    let mut in_video = false;
    let mut pending = false;
    for line in sdp.lines() {
        if line.starts_with("m=") {
            in_video = line.starts_with("m=video");
            pending = in_video;
        } else if in_video && line.starts_with("b=") {
            continue;
        } else if pending && !line.starts_with("i=") && !line.starts_with("c=") {
            // The first line after m=, i= and c=: where b= belongs.
            out.push_str(&format!("b=AS:{kbps}\r\n"));
            pending = false;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    if pending {
        out.push_str(&format!("b=AS:{kbps}\r\n"));
    }
    out
}

/// A trickle-ice-sdpfrag (RFC 8840), read.
#[derive(Debug, Default)]
struct Fragment {
    ufrag: Option<String>,
    pwd: Option<String>,
    candidates: Vec<RTCIceCandidateInit>,
}

fn parse_fragment(fragment: &str) -> Result<Fragment, WhipError> {
    let mut f = Fragment::default();
    let mut mid: Option<String> = None;
    for line in fragment.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("a=ice-ufrag:") {
            f.ufrag = Some(u.to_owned());
        } else if let Some(p) = line.strip_prefix("a=ice-pwd:") {
            f.pwd = Some(p.to_owned());
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            mid = Some(m.to_owned());
        } else if let Some(c) = line.strip_prefix("a=candidate:") {
            f.candidates.push(RTCIceCandidateInit {
                candidate: format!("candidate:{c}"),
                sdp_mid: mid.clone(),
                ..Default::default()
            });
        } else if line.starts_with("a=") || line.starts_with("m=") {
            // ice-options, group, end-of-candidates: nothing to do.
        } else {
            return Err(WhipError::BadFragment(format!(
                "not an SDP attribute line: {:?}",
                line.chars().take(40).collect::<String>()
            )));
        }
    }
    Ok(f)
}

/// `sdp` (an offer) with the ICE credentials `ufrag` and `pwd` in place of its own, and
/// without its candidates (an ICE restart's come trickled).
pub(crate) fn with_ice_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("a=ice-ufrag:") {
            out.push_str(&format!("a=ice-ufrag:{ufrag}"));
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str(&format!("a=ice-pwd:{pwd}"));
        } else if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}

/// The trickle-ice-sdpfrag that answers an ICE restart: the answer's new credentials, and
/// its first (bundled) media section's mid and candidates.
pub(crate) fn answer_fragment(sdp: &str) -> String {
    let mut out = String::new();
    for name in ["ice-ufrag", "ice-pwd"] {
        if let Some(v) = sdp_attr(sdp, name) {
            out.push_str(&format!("a={name}:{v}\r\n"));
        }
    }
    let mut sections = 0;
    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            sections += 1;
            if sections > 1 {
                break;
            }
        } else if sections == 0
            || !(line.starts_with("a=mid:")
                || line.starts_with("a=candidate:")
                || line == "a=end-of-candidates")
        {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// The first `a={name}:` value in an SDP.
pub(crate) fn sdp_attr(sdp: &str, name: &str) -> Option<String> {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
        .map(str::to_owned)
}

/// A browser's offer (Chromium's shape): the fuzz target's peer connections answer it.
fn tests_offer() -> &'static str {
    include_str!("offer.sdp")
}

#[cfg(test)]
mod tests;
