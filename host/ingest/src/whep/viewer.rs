//! One WHEP viewer's task: the peer connection (send only) on the shared UDP port, fed from
//! its stream's feed. A viewer starts at the next keyframe; one that falls more than the
//! feed's queue behind (a slow or lossy link) skips to the next keyframe, and nobody else
//! waits for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::RTCPeerConnection;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::codec::opus::OpusPayloader;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::rtp::packetizer::Payloader;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::sansio::Protocol;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, info};

use super::feed::Frame;
use crate::whip::mux::Datagram;

/// RTP payloads are cut to this (an IPv4 path MTU of 1280 with room for SRTP and headers).
const MTU: usize = 1200;

pub(crate) struct Viewer {
    pub(crate) pc: RTCPeerConnection,
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) local: SocketAddr,
    pub(crate) datagrams: mpsc::Receiver<Datagram>,
    pub(crate) close: mpsc::Receiver<()>,
    pub(crate) frames: broadcast::Receiver<Arc<Frame>>,
    pub(crate) video: RTCRtpSenderId,
    pub(crate) audio: RTCRtpSenderId,
    pub(crate) connect_timeout: Duration,
    pub(crate) on_end: Box<dyn FnOnce() + Send>,
    pub(crate) metrics: Arc<crate::whip::WebRtcMetrics>,
    pub(crate) stats: Arc<std::sync::Mutex<crate::whip::SessionStats>>,
}

struct Out {
    seq: u16,
    payloader: Box<dyn Payloader>,
}

#[allow(clippy::disallowed_methods)] // a viewer's task is its driver
impl Viewer {
    pub(crate) async fn run(mut self) {
        use std::sync::atomic::Ordering;
        self.metrics.whep_viewers.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .whep_viewers_total
            .fetch_add(1, Ordering::Relaxed);
        let why = self.drive().await;
        self.metrics.whep_viewers.fetch_sub(1, Ordering::Relaxed);
        info!(why, "whep viewer ended");
        let _ = self.pc.close();
        self.flush().await;
        let end = std::mem::replace(&mut self.on_end, Box::new(|| {}));
        end();
    }

    async fn drive(&mut self) -> &'static str {
        let started = Instant::now();
        let mut connected = false;
        let mut waiting_key = true;
        let mut skipped = 0u64;
        let mut sent = 0u64;
        let mut last_stats = (started, 0, 0);
        let mut next_stats = started;
        let mut peer: Option<SocketAddr> = None;
        let mut video = Out {
            seq: 0,
            payloader: Box::new(H264Payloader::default()),
        };
        let mut audio = Out {
            seq: 0,
            payloader: Box::new(OpusPayloader),
        };
        loop {
            self.flush().await;
            while let Some(event) = self.pc.poll_event() {
                if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) = event {
                    match state {
                        RTCPeerConnectionState::Connected => {
                            if !connected {
                                info!(after = ?started.elapsed(), "whep viewer connected");
                            }
                            connected = true;
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                            return "connection closed";
                        }
                        _ => {}
                    }
                }
            }
            // Viewers' RTCP (receiver reports, PLI) is read and dropped: a PLI is answered
            // by the stream's next keyframe, at most a segment away.
            while self.pc.poll_read().is_some() {}
            let now = Instant::now();
            if now >= next_stats {
                next_stats = now + Duration::from_secs(1);
                let mut st = self
                    .stats
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                st.refresh(&mut self.pc, now, started, &mut last_stats);
                st.connected = connected;
                st.peer = peer.map(|p| p.to_string());
                st.lost = skipped;
                st.frames = sent;
            }
            if !connected && started.elapsed() > self.connect_timeout {
                return "no connection";
            }
            let next = self
                .pc
                .poll_timeout()
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(1))
                .min(Instant::now() + Duration::from_millis(200));
            let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(next));
            tokio::select! {
                d = self.datagrams.recv() => {
                    let Some(d) = d else { return "shutdown" };
                    peer = Some(d.from);
                    crate::whip::mux::read_into(&mut self.pc, self.local, d);
                }
                _ = self.close.recv() => return "deleted",
                () = sleep => {
                    if self.pc.handle_timeout(Instant::now()).is_err() {
                        return "webrtc error";
                    }
                }
                f = self.frames.recv() => match f {
                    Ok(frame) => {
                        if !connected {
                            continue;
                        }
                        if waiting_key {
                            if !(frame.video && frame.keyframe) {
                                continue;
                            }
                            waiting_key = false;
                        }
                        let (out, sender, ts) = if frame.video {
                            (&mut video, self.video, (frame.wall_us.wrapping_mul(9) / 100) as u32)
                        } else {
                            (&mut audio, self.audio, (frame.wall_us.wrapping_mul(6) / 125) as u32)
                        };
                        send(&mut self.pc, sender, out, ts, &frame.data);
                        if frame.video {
                            sent += 1;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        skipped += 1;
                        self.metrics
                            .whep_skips_total
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        debug!(skipped, "whep viewer fell behind; skipping to the next keyframe");
                        waiting_key = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return "stream ended",
                },
            }
        }
    }

    async fn flush(&mut self) {
        crate::whip::mux::flush(&mut self.pc, &self.socket).await;
    }
}

/// Packetizes one frame and hands it to the sender (RTP timestamp `ts`).
#[allow(clippy::disallowed_methods)] // the viewer's task stamps its packets
fn send(
    pc: &mut RTCPeerConnection,
    sender: RTCRtpSenderId,
    out: &mut Out,
    ts: u32,
    data: &bytes::Bytes,
) {
    let Some(mut s) = pc.rtp_sender(sender) else {
        return;
    };
    let Some(ssrc) = s.track().ssrcs().last() else {
        return;
    };
    let Some(pt) = s
        .get_parameters()
        .rtp_parameters
        .codecs
        .first()
        .map(|c| c.payload_type)
    else {
        return;
    };
    let Ok(payloads) = out.payloader.payload(MTU, data) else {
        return;
    };
    let n = payloads.len();
    for (i, payload) in payloads.into_iter().enumerate() {
        out.seq = out.seq.wrapping_add(1);
        let packet = Packet {
            header: Header {
                version: 2,
                marker: i + 1 == n,
                payload_type: pt,
                sequence_number: out.seq,
                timestamp: ts,
                ssrc,
                ..Default::default()
            },
            payload,
        };
        if let Err(e) = s.write_rtp(Instant::now(), packet) {
            debug!(error = %e, "whep write_rtp");
            return;
        }
    }
}
