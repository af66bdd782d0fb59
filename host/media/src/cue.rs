//! Ad and programme cues (SCTE-35) as they travel from ingest to the packager.

use std::time::Duration;

use bytes::Bytes;

/// The SCTE-35 command a cue came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CueKind {
    SpliceInsert,
    TimeSignal,
    SpliceNull,
}

/// One splice point. Ingest fills it from a SCTE-35 section (TS), an RTMP cue point (AMF
/// `onCuePoint`/`onAdCue`) or the cue API; the packager places it on the program-date-time
/// timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CueEvent {
    /// `splice_event_id`, or `segmentation_event_id` for a time_signal.
    pub id: u32,
    pub kind: CueKind,
    /// Leaving the network (an ad break starts) rather than returning to it.
    pub out_of_network: bool,
    /// When the splice happens, in 90 kHz ticks on the same timeline as the video samples'
    /// decode timestamps (pts_time + pts_adjustment, unwrapped past 2^33 by ingest).
    /// `None` means immediately (splice_immediate_flag, or a cue with no time).
    pub pts: Option<i64>,
    /// The break duration, when the cue declares one.
    pub duration: Option<Duration>,
    /// The segmentation_type_id of a time_signal's segmentation descriptor.
    pub segmentation_type: Option<u8>,
    /// The complete splice_info_section, CRC included, for `SCTE35-OUT`/`-IN`/`-CMD`.
    /// Empty when the cue did not come from a section (RTMP cue points, the API without one).
    pub section: Bytes,
}

/// A cue with its place on the program-date-time timeline, as plugins see it (DESIGN.md:
/// cue times are wall-clock milliseconds, never 90 kHz PTS).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacedCue {
    pub cue: CueEvent,
    /// When the splice happens, in Unix milliseconds.
    pub start_ms: u64,
    /// For an OUT, the date of the IN that closed it, once it has arrived.
    pub end_ms: Option<u64>,
}
