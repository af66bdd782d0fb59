//! One WHIP session's task: it drives the sans-IO peer connection with the datagrams the
//! mux routes to it and the clock, sends through the shared socket, asks for keyframes
//! (PLI) and hands rebuilt media to the pipeline through the shared publish contract.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::RTCRtpReceiverId;
use rtc::sansio::Protocol;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::depack::{Depack, Kind};
use super::mux::Datagram;
use super::{Shared, WhipError};
use crate::session::{evicted, End, Publishing};
use crate::{Error, Result};

/// What the HTTP side asks of a live session.
#[derive(Debug)]
pub(crate) enum Control {
    /// Trickled ICE candidates from the publisher (PATCH).
    Candidates(Vec<RTCIceCandidateInit>),
    /// An ICE restart (PATCH with the publisher's new credentials): answered with weir's.
    Restart {
        ufrag: String,
        pwd: String,
        candidates: Vec<RTCIceCandidateInit>,
        reply: oneshot::Sender<std::result::Result<Restarted, WhipError>>,
    },
    /// DELETE: the publisher is done.
    Close,
}

/// An ICE restart's answer: weir's new credentials, and the fragment that tells them.
#[derive(Debug)]
pub(crate) struct Restarted {
    pub(crate) ufrag: String,
    pub(crate) pwd: String,
    pub(crate) fragment: String,
}

pub(crate) struct Peer {
    pub(crate) pc: RTCPeerConnection,
    pub(crate) shared: Arc<Shared>,
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) local: SocketAddr,
    pub(crate) datagrams: mpsc::Receiver<Datagram>,
    pub(crate) control: mpsc::Receiver<Control>,
    pub(crate) depack: Depack,
    pub(crate) publishing: Publishing<()>,
    pub(crate) id: String,
    /// weir's ICE ufrag for this session (the mux routes binding requests by it).
    pub(crate) ufrag: String,
    /// The publisher's offer: an ICE restart is this offer with new credentials.
    pub(crate) offer: String,
    pub(crate) stats: Arc<std::sync::Mutex<super::SessionStats>>,
}

/// A keyframe is asked for at most this often.
const PLI_MIN_GAP: Duration = Duration::from_millis(500);
/// A keyframe this much before the interval is up still counts as the interval's (the
/// packager cuts a segment on the first keyframe at its target).
const KEYFRAME_SLACK: Duration = Duration::from_millis(20);

// A session's task is its driver: it reads the clock for the sans-IO peer connection.
#[allow(clippy::disallowed_methods)]
impl Peer {
    pub(crate) async fn run(mut self) {
        let metrics = Arc::clone(&self.shared.metrics);
        metrics.whip_sessions.fetch_add(1, Ordering::Relaxed);
        let result = self.drive().await;
        metrics.whip_sessions.fetch_sub(1, Ordering::Relaxed);
        let stats = self.depack.stats();
        for (counter, v) in [
            (&metrics.whip_frames_total, stats.video_frames),
            (&metrics.whip_packets_lost_total, stats.lost_packets),
            (&metrics.whip_packets_bad_total, stats.bad_packets),
        ] {
            counter.fetch_add(v, Ordering::Relaxed);
        }
        match &result {
            Ok(end) => info!(
                ?end,
                video_frames = stats.video_frames,
                audio_frames = stats.audio_frames,
                lost_packets = stats.lost_packets,
                bad_packets = stats.bad_packets,
                "whip session ended"
            ),
            Err(e) => warn!(
                error = %e,
                video_frames = stats.video_frames,
                lost_packets = stats.lost_packets,
                bad_packets = stats.bad_packets,
                "whip session failed"
            ),
        }
        self.publishing.ended(&self.shared.ctx, &result);
        let _ = self.pc.close();
        self.flush().await;
        self.shared.forget(&self.id, &self.ufrag);
    }

    async fn drive(&mut self) -> Result<End> {
        let settings = self.shared.ctx.settings.clone();
        let mut receivers: HashMap<String, (Kind, RTCRtpReceiverId)> = HashMap::new();
        let mut video_ssrc: Option<(u32, RTCRtpReceiverId)> = None;
        let mut last_pli: Option<Instant> = None;
        let mut last_keyframe: Option<Instant> = None;
        let mut connected = false;
        let started = Instant::now();
        let mut last_stats = (started, 0, 0);
        let mut next_stats = started;
        let mut peer: Option<SocketAddr> = None;
        loop {
            self.flush().await;
            while let Some(event) = self.pc.poll_event() {
                match event {
                    RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                        debug!(%state, "whip connection state");
                        match state {
                            RTCPeerConnectionState::Connected => {
                                if !connected {
                                    info!(after = ?started.elapsed(), "whip session connected");
                                }
                                connected = true;
                            }
                            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                                return Ok(End::PeerClosed);
                            }
                            _ => {}
                        }
                    }
                    RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                        let kind = self
                            .pc
                            .rtp_receiver(init.receiver_id)
                            .map(|r| r.track().kind());
                        let kind = match kind {
                            Some(RtpCodecKind::Video) => Kind::Video,
                            Some(RtpCodecKind::Audio) => Kind::Audio,
                            _ => continue,
                        };
                        receivers.insert(init.track_id.to_string(), (kind, init.receiver_id));
                    }
                    _ => {}
                }
            }
            while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
                if let RTCMessage::RtpPacket(track_id, packet) = message {
                    let Some(&(kind, receiver)) = receivers.get(&track_id.to_string()) else {
                        continue;
                    };
                    if kind == Kind::Video && video_ssrc.is_none() {
                        video_ssrc = Some((packet.header.ssrc, receiver));
                    }
                    self.publishing.touch();
                    self.depack.push(Instant::now(), kind, packet);
                }
            }
            while let Some(event) = self.depack.poll_event() {
                if let weir_media::MediaEvent::Sample(s) = &event {
                    // The keyframe that will start a segment: the first, or one a whole
                    // interval on (one that came sooner, for a loss, starts none).
                    let now = Instant::now();
                    if s.track == 0
                        && s.keyframe
                        && last_keyframe.is_none_or(|t| {
                            now.duration_since(t) + KEYFRAME_SLACK >= settings.keyframe_interval
                        })
                    {
                        last_keyframe = Some(now);
                    }
                }
                if !self
                    .publishing
                    .forward(event, settings.sink_timeout)
                    .await?
                {
                    return Ok(End::PipelineClosed);
                }
            }
            // Keyframes: when reassembly lost a frame or has none yet, and every
            // `keyframe_interval` (browsers send one only when asked; segments need them).
            let now = Instant::now();
            let due = self.depack.take_keyframe_request()
                || last_keyframe
                    .is_some_and(|t| now.duration_since(t) >= settings.keyframe_interval);
            if due && last_pli.is_none_or(|t| now.duration_since(t) >= PLI_MIN_GAP) {
                if let Some((ssrc, receiver)) = video_ssrc {
                    if let Some(mut r) = self.pc.rtp_receiver(receiver) {
                        let pli = PictureLossIndication {
                            sender_ssrc: 0,
                            media_ssrc: ssrc,
                        };
                        if let Err(e) = r.write_rtcp(now, vec![Box::new(pli)]) {
                            debug!(error = %e, "pli");
                        }
                        last_pli = Some(now);
                    }
                }
            }
            if now >= next_stats {
                next_stats = now + Duration::from_secs(1);
                let d = self.depack.stats();
                let mut st = self
                    .stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st.refresh(&mut self.pc, now, started, &mut last_stats);
                st.connected = connected;
                st.peer = peer.map(|p| p.to_string());
                st.lost = d.lost_packets;
                st.frames = d.video_frames;
            }
            if !connected && started.elapsed() > settings.connect_timeout {
                return Err(Error::Refused(format!(
                    "no WebRTC connection within {:?} (ICE or DTLS failed)",
                    settings.connect_timeout
                )));
            }
            let next = self
                .pc
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1))
                .min(now + Duration::from_millis(100));
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(next));
            tokio::select! {
                d = self.datagrams.recv() => {
                    let Some(d) = d else { return Ok(End::Shutdown) };
                    peer = Some(d.from);
                    super::mux::read_into(&mut self.pc, self.local, d);
                }
                c = self.control.recv() => match c {
                    Some(Control::Candidates(cs)) => {
                        for c in cs {
                            if let Err(e) = self.pc.add_remote_candidate(c) {
                                debug!(error = %e, "trickled candidate refused");
                            }
                        }
                    }
                    Some(Control::Restart { ufrag, pwd, candidates, reply }) => {
                        let restarted = self.restart_ice(&ufrag, &pwd, candidates);
                        match &restarted {
                            Ok(r) => info!(ufrag = %r.ufrag, "whip ice restart"),
                            Err(e) => warn!(error = %e, "whip ice restart refused"),
                        }
                        let _ = reply.send(restarted);
                    }
                    Some(Control::Close) | None => return Ok(End::Finished),
                },
                () = sleep => {
                    self.pc.handle_timeout(Instant::now()).map_err(|e| Error::Protocol(format!("webrtc: {e}")))?;
                }
                () = evicted(Some(&self.publishing)) => return Ok(End::TakenOver),
            }
        }
    }

    /// Restarts ICE as the answerer (RFC 8445 9): the publisher's offer again with its new
    /// credentials makes the peer connection restart ICE, and the answer to it carries
    /// weir's new ones. DTLS, SRTP and the media go on; only the ICE checks start over,
    /// from whatever address the publisher now has. The mux routes the new ufrag's binding
    /// requests to this session.
    fn restart_ice(
        &mut self,
        ufrag: &str,
        pwd: &str,
        candidates: Vec<RTCIceCandidateInit>,
    ) -> std::result::Result<Restarted, WhipError> {
        let failed = |e: &dyn std::fmt::Display| WhipError::IceRestart(e.to_string());
        let offer = super::with_ice_credentials(&self.offer, ufrag, pwd);
        let now = Instant::now();
        let desc = RTCSessionDescription::offer(offer.clone())
            .map_err(|e| WhipError::BadFragment(e.to_string()))?;
        self.pc
            .set_remote_description(now, desc)
            .map_err(|e| failed(&e))?;
        let answer = self.pc.create_answer(None).map_err(|e| failed(&e))?;
        self.pc
            .set_local_description(now, answer)
            .map_err(|e| failed(&e))?;
        let sdp = self
            .pc
            .local_description()
            .map(|d| d.sdp)
            .ok_or_else(|| failed(&"no local description"))?;
        let (Some(local_ufrag), Some(local_pwd)) = (
            super::sdp_attr(&sdp, "ice-ufrag"),
            super::sdp_attr(&sdp, "ice-pwd"),
        ) else {
            return Err(failed(&"the answer has no ICE credentials"));
        };
        for c in candidates {
            if let Err(e) = self.pc.add_remote_candidate(c) {
                debug!(error = %e, "restart candidate refused");
            }
        }
        self.shared.routes.rekey(&self.ufrag, &local_ufrag);
        self.ufrag.clone_from(&local_ufrag);
        self.offer = offer;
        Ok(Restarted {
            fragment: super::answer_fragment(&sdp),
            ufrag: local_ufrag,
            pwd: local_pwd,
        })
    }

    async fn flush(&mut self) {
        super::mux::flush(&mut self.pc, &self.socket).await;
    }
}
