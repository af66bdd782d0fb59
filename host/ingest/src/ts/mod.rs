//! MPEG-2 transport streams (what SRT and UDP contributions carry). Pure: no IO, no clock.
//!
//! [`TsDemuxer`] turns TS bytes, fed in pieces of any size, into
//! [`MediaEvent`](weir_media::MediaEvent)s: H.264 and AAC samples plus SCTE-35 cues (parsed
//! by [`crate::scte35`]). Packet, PSI and PES framing come from mpeg2ts-reader; see
//! docs/design/004-mpeg-ts-demux.md for why, and for what is done by hand.

mod adts;
mod demux;
/// Moved to [`weir_media::h264`] (the encoder uses it too); re-exported at its old path.
pub use weir_media::h264;

pub use demux::{
    Scte35Stats, TsDemuxer, TsSettings, TsStats, DEFAULT_MAX_PES_BYTES, DEFAULT_TRACK_WAIT,
};

#[cfg(test)]
pub(crate) use demux::TsContext;

/// Every [`MediaEvent`](weir_media::MediaEvent) of a whole transport stream, with the
/// demuxer's counters.
pub fn read_all(data: &[u8]) -> (Vec<weir_media::MediaEvent>, TsStats) {
    let mut d = TsDemuxer::default();
    d.push(data);
    d.finish();
    let events = std::iter::from_fn(|| d.poll_event()).collect();
    (events, d.stats())
}
