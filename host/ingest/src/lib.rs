//! Weir's contribution ingest: RTMP (rml_rtmp) with FLV demux, stream-key auth and takeover.
//!
//! - [`flv`] is the pure core: [`FlvDemuxer`] turns FLV audio/video tag bodies into
//!   [`MediaEvent`](weir_media::MediaEvent)s (H.264 + AAC), [`FlvTagReader`] splits an FLV
//!   byte stream into tags, and [`FlvFile`] reads a whole `.flv` file.
//! - [`publish`] and [`keys`] are the publish contract every protocol shares: a
//!   [`PublishHandler`] decides whether and where a [`SessionInfo`]'s stream goes (or gives a
//!   [`Refusal`]), and [`ActiveKeys`] keeps one publisher per stream key, so one key is one
//!   stream whatever the protocol. Each protocol's session is a peer of the others: it ends in
//!   the same shapes and hands media to the pipeline the same way.
//! - [`rtmp`] is the tokio driver: [`serve_rtmp`] accepts publishers on
//!   `rtmp://HOST:PORT/APP/KEY` and demuxes their FLV.
//! - [`srt`] is the SRT listener: [`serve_srt`] accepts MPEG-TS callers (stream id names the
//!   key, optional AES passphrase) and refuses what it can at the SRT handshake.
//! - [`ts`] is the pure MPEG-TS core: [`TsDemuxer`] turns transport stream bytes, fed in any
//!   pieces, into H.264/AAC samples and SCTE-35 cues on one unwrapped 90 kHz timeline,
//!   counting damage in [`TsStats`] instead of failing.
//! - [`whip`] is WHIP (RFC 9725): WebRTC publishers (browsers, OBS) on one UDP port, H.264
//!   passed through and Opus turned into AAC, behind the same publish contract.
//! - [`scte35`] parses splice_info_sections ([`parse_splice_info_section`]) into
//!   [`CueEvent`](weir_media::CueEvent)s; RTMP `onCuePoint`/`onAdCue` data messages become
//!   cues too.
//!
//! Every failure ends one session with one log line and an [`Error`] naming what was seen.
//!
//! ```
//! use bytes::Bytes;
//! use weir_ingest::flv::{FlvDemuxer, StreamHints};
//! use weir_media::{Codec, MediaEvent};
//!
//! let mut demux = FlvDemuxer::default();
//! demux.set_hints(StreamHints { video: Some(false), audio: Some(true) });
//! // AAC sequence header (AAC-LC, 48 kHz, stereo), then one raw AAC frame 21 ms later.
//! demux.push_audio(0, Bytes::from_static(&[0xAF, 0x00, 0x11, 0x90]))?;
//! demux.push_audio(21, Bytes::from_static(&[0xAF, 0x01, 0x21, 0x10]))?;
//!
//! let Some(MediaEvent::Tracks(tracks)) = demux.poll_event() else { panic!("tracks first") };
//! assert!(matches!(&tracks[0].codec, Codec::Aac(c) if c.sample_rate == 48_000));
//! let Some(MediaEvent::Sample(frame)) = demux.poll_event() else { panic!("then the frame") };
//! assert_eq!((frame.dts, frame.duration), (21 * 48, Some(1024)));
//! # Ok::<(), weir_ingest::Error>(())
//! ```

pub mod config;
mod error;
pub mod flv;
pub mod keys;
pub mod publish;
pub mod rtmp;
pub mod scte35;
mod session;
pub mod srt;
pub mod ts;
pub mod whep;
pub mod whip;

pub use config::{IceServer, RtmpConfig, SrtConfig, WhipConfig};
pub use error::{Error, Result};
/// Annex B → length-prefixed access units and `avcC` from SPS/PPS: [`weir_media::h264`],
/// re-exported at the path it had when it lived here.
pub use weir_media::h264;

/// The message of a session task's panic, for the one log line that reports it (RTMP and SRT
/// sessions run as tasks so that a panic in a protocol crate closes only that session).
pub(crate) fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned())
}
pub use flv::{FlvDemuxer, FlvFile, FlvTagReader};
pub use keys::{ActiveKeys, KeyBusy, DEFAULT_TAKEOVER_AFTER};
pub use publish::{
    PerIpLimit, Protocol, PublishHandler, Refusal, SessionInfo, OVERLOADED, REFUSED,
};
pub use rtmp::{serve_rtmp, serve_rtmp_with_keys, RtmpSettings};
pub use scte35::parse_splice_info_section;
pub use srt::{bind_srt, serve_srt, SrtSettings};
pub use ts::{TsDemuxer, TsSettings, TsStats};
pub use whep::Whep;
pub use whip::{Whip, WhipError, WhipSettings};
