//! Entry points for the fuzz target `whip` (`fuzz/`): everything a WHIP publisher's bytes
//! reach, from arbitrary input. The offer check and webrtc-rs's SDP parser (the HTTP body),
//! the mux's STUN reading (any datagram on the shared port), RTP reassembly (H.264 and Opus
//! payloads, any sequence and timestamp), and a peer connection answering an offer fed
//! arbitrary datagrams (STUN, DTLS, SRTP as a stranger would send them).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};

use super::depack::{AudioTranscoder, Depack, Kind, Transcoders, VideoCodec};
use weir_media::{AacConfig, MediaEvent, Sample};

/// The first byte picks what the rest is.
pub fn input(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => offer(rest),
        1 => {
            let _ = super::mux::local_ufrag(rest);
        }
        2 => rtp(rest),
        _ => datagrams(rest),
    }
}

fn offer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = super::check_offer(text, true);
    let _ = super::sdp_attr(text, "ice-ufrag");
}

struct Silent;

impl AudioTranscoder for Silent {
    fn config(&self) -> AacConfig {
        super::depack::aac_placeholder()
    }
    fn push(&mut self, pts: i64, _opus: &[u8]) -> Result<Vec<Sample>, String> {
        Ok(vec![Sample {
            track: 1,
            dts: pts,
            cts_offset: 0,
            keyframe: true,
            duration: Some(1024),
            data: Bytes::new(),
        }])
    }
}

/// Records: `[kind, seq(2), ts(4), marker, len(2), payload…]`, in order. Checks what the
/// pipeline relies on: tracks first, video decode times rising, samples within the tracks.
#[allow(clippy::disallowed_methods)] // an epoch for the run
fn rtp(mut data: &[u8]) {
    let transcoders = Transcoders {
        opus: Arc::new(|_| Ok(Box::new(Silent) as Box<dyn AudioTranscoder>)),
        vp8: None,
    };
    let t0 = Instant::now();
    // (VP8 is reassembled without a transcoder here: its frames stop after the builder,
    // which is the part a stranger's bytes reach.)
    let video = if data.first().is_some_and(|b| b & 0x80 != 0) {
        VideoCodec::Vp8
    } else {
        VideoCodec::H264
    };
    let mut d = Depack::new(t0, video, true, transcoders);
    let mut n = 0u64;
    let mut tracks = 0usize;
    let mut last_video: Option<i64> = None;
    while data.len() >= 10 {
        let (head, rest) = data.split_at(10);
        let len = usize::from(u16::from_be_bytes([head[8], head[9]])).min(rest.len());
        let (payload, rest) = rest.split_at(len);
        data = rest;
        let kind = if head[0] & 1 == 0 {
            Kind::Video
        } else {
            Kind::Audio
        };
        let packet = Packet {
            header: Header {
                version: 2,
                marker: head[7] & 1 == 1,
                payload_type: 96,
                sequence_number: u16::from_be_bytes([head[1], head[2]]),
                timestamp: u32::from_be_bytes([head[3], head[4], head[5], head[6]]),
                ssrc: 1,
                ..Default::default()
            },
            payload: Bytes::copy_from_slice(payload),
        };
        n += 1;
        d.push(t0 + Duration::from_millis(n * 10), kind, packet);
        while let Some(e) = d.poll_event() {
            match e {
                MediaEvent::Tracks(t) => {
                    assert!(!t.is_empty());
                    tracks = t.len();
                }
                MediaEvent::Sample(s) => {
                    assert!(s.track < tracks, "a sample before its tracks");
                    if s.track == 0 {
                        assert!(last_video.is_none_or(|l| s.dts > l), "video time went back");
                        last_video = Some(s.dts);
                    }
                }
                MediaEvent::Cue(_) => {}
            }
        }
    }
}

/// A peer connection that answered a browser's offer, fed `data` as datagrams
/// (`[len(2), bytes…]`…) from one address: nothing may panic.
#[allow(clippy::disallowed_methods)] // an epoch for the run
fn datagrams(mut data: &[u8]) {
    let now = Instant::now();
    let Ok(mut pc) = super::peer_connection(now, VideoCodec::H264) else {
        return;
    };
    let Ok(offer) = RTCSessionDescription::offer(super::tests_offer().to_owned()) else {
        return;
    };
    if pc.set_remote_description(now, offer).is_err() {
        return;
    }
    let Ok(answer) = pc.create_answer(None) else {
        return;
    };
    if pc.set_local_description(now, answer).is_err() {
        return;
    }
    let transport = TransportContext {
        local_addr: "10.0.0.1:8189".parse().expect("literal"),
        peer_addr: "10.0.0.2:50000".parse().expect("literal"),
        ecn: None,
        transport_protocol: TransportProtocol::UDP,
    };
    let mut t = now;
    while data.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]])).min(data.len() - 2);
        let (datagram, rest) = data[2..].split_at(len);
        data = rest;
        t += Duration::from_millis(5);
        let _ = pc.handle_read(TaggedBytesMut {
            now: t,
            transport,
            message: BytesMut::from(datagram),
        });
        let _ = pc.handle_timeout(t);
        while pc.poll_write().is_some() {}
        while pc.poll_event().is_some() {}
        while pc.poll_read().is_some() {}
    }
}
