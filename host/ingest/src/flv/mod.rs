//! FLV: the tag format that RTMP carries and `.flv` files hold. Pure: no IO, no clock.
//!
//! - [`FlvDemuxer`] turns audio/video tag bodies (as RTMP messages deliver them) into
//!   [`MediaEvent`](weir_media::MediaEvent)s.
//! - [`FlvTagReader`] splits an FLV byte stream into tags, fed in pieces of any size.
//! - [`FlvFile`] reads a whole `.flv` file through both.

mod demux;
mod file;

pub use demux::{
    DemuxSettings, DemuxStats, FlvDemuxer, StreamHints, TagKind, DEFAULT_NO_KEYFRAME_TIMEOUT,
    DEFAULT_TRACK_WAIT,
};
pub use file::{FlvFile, FlvHeader, FlvTag, FlvTagReader};

/// Every [`MediaEvent`](weir_media::MediaEvent) of a whole `.flv` file, or the first error:
/// [`FlvFile::read_all`].
pub fn read_file(data: &[u8]) -> crate::Result<Vec<weir_media::MediaEvent>> {
    FlvFile::read_all(data)
}
