//! Weir's packager: turns one rendition's [`Sample`](weir_media::Sample)s into muxed CMAF
//! parts and segments, and keeps the LL-HLS playlist model of its rolling window. Pure: no IO,
//! no clock, no async.
//!
//! - [`Packager`] is a sans-IO state machine: [`Packager::push`] a sample (with the wall-clock
//!   time the caller read, used only to anchor `EXT-X-PROGRAM-DATE-TIME`), then drain
//!   [`Packager::poll_output`] for [`Output`] events: parts opening, CMAF chunks (`moof`+`mdat`)
//!   to append to the part in progress, parts and segments completing, the window advancing.
//! - [`Settings`] holds the configuration (segment and part targets, window length), with
//!   `DEFAULT_*` constants; the packager's state is kept apart from it.
//! - The stream survives its contribution: [`Packager::gap`] keeps the timeline's cadence with
//!   `GAP=YES` parts and `EXT-X-GAP` segments while the publisher is away, and
//!   [`Packager::restart`] takes a new publisher session (new init segment, generation
//!   [`init_uri`], `EXT-X-DISCONTINUITY`). [`wall_clock_start`] numbers a stream so that a
//!   restart of Weir never makes sequence numbers go backwards.
//! - [`Packager::push_cue`] places SCTE-35 cues on the program-date-time timeline; the playlist
//!   carries them as `EXT-X-DATERANGE` and [`Packager::cues`] lists them for plugins.
//! - [`MediaPlaylist`] and [`MultivariantPlaylist`] are plain values (build them by hand or get
//!   one from [`Packager::media_playlist`]) rendered with `write_to(impl Write)`.
//!
//! Video and audio of one rendition travel muxed: one init segment with one track each, and
//! every chunk is a `moof` with one `traf` per track that has samples in it. Parts are named by a
//! global, monotonic part sequence number (`part{seq}.m4s`), so the preload hint can name the
//! next part before anyone knows whether it starts a new segment.
//!
//! ```
//! use bytes::Bytes;
//! use weir_media::{AacConfig, Codec, Sample, Track};
//! use weir_packager::{Output, Packager, Settings};
//!
//! let aac = AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap();
//! let tracks = vec![Track { timescale: 48_000, codec: Codec::Aac(aac) }];
//! let mut packager = Packager::new(Settings::default(), tracks, 0, 0).unwrap();
//! assert_eq!(packager.next_part_seq(), 0);
//!
//! // Three seconds of AAC frames, 1024 samples each.
//! for i in 0..141 {
//!     let sample = Sample {
//!         track: 0,
//!         dts: i * 1024,
//!         cts_offset: 0,
//!         keyframe: true,
//!         duration: Some(1024),
//!         data: Bytes::from_static(&[0x21, 0x10]),
//!     };
//!     // Each frame arrives when its media time says (1024 samples at 48 kHz).
//!     packager.push(1_764_086_400_000 + (i as u64 * 1024 * 1000 / 48_000), sample).unwrap();
//! }
//! let mut segments = 0;
//! while let Some(output) = packager.poll_output() {
//!     if let Output::SegmentCompleted { msn, .. } = output {
//!         assert_eq!(msn, 0);
//!         segments += 1;
//!     }
//! }
//! assert_eq!(segments, 1);
//!
//! let mut text = Vec::new();
//! packager.media_playlist().write_to(&mut text, false).unwrap();
//! let text = String::from_utf8(text).unwrap();
//! assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2025-11-25T16:00:00.000Z"));
//! assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part"));
//! ```

// Tests may unwrap; the library itself never does (clippy::unwrap_used is on for it).
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod cmaf;
mod cue;
mod packager;
mod playlist;
mod settings;

pub use packager::{wall_clock_start, Output, Packager, CUT_TOLERANCE};
pub use playlist::{
    format_program_date_time, ByteRange, DateRange, MediaPlaylist, MultivariantPlaylist, PartEntry,
    PartialSegment, RenditionReport, SegmentEntry, Variant,
};
pub use settings::{
    Settings, DEFAULT_PART_TARGET, DEFAULT_SEGMENT_TARGET, DEFAULT_WINDOW, MAX_SEGMENT_TARGET,
    MIN_PART_TARGET,
};
pub use weir_media::PlacedCue;

/// URI of init segment generation `generation` (see [`Packager::init_generation`]),
/// relative to the media playlist: `init<seq>.mp4`, where `seq` is the sequence number of the
/// first part that uses it. Part numbers are never reused, across restarts of weir either
/// (docs/design/003), so neither is an init URI: its bytes never change and it can be cached
/// like a segment, even when a restarted stream's publisher has other codec parameters.
pub fn init_uri(generation: u64) -> String {
    format!("init{generation}.mp4")
}

/// URI of segment `msn`, relative to the media playlist.
pub fn segment_uri(msn: u64) -> String {
    format!("seg{msn}.m4s")
}

/// URI of part `seq` (global part sequence number), relative to the media playlist.
pub fn part_uri(seq: u64) -> String {
    format!("part{seq}.m4s")
}

/// Everything that can go wrong in the packager. Every variant is about one stream's input or
/// configuration: the caller decides whether to drop the sample or the session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`Settings`] value is out of range; the message names its `weir.toml` key.
    #[error("{0}")]
    InvalidSettings(String),
    #[error("a rendition needs at least one track")]
    NoTracks,
    #[error("track {track}: {reason}")]
    InvalidTrack { track: usize, reason: String },
    #[error("sample for track {track}, but the rendition has {tracks} tracks")]
    UnknownTrack { track: usize, tracks: usize },
    #[error("track {track}: dts {dts} does not follow the previous dts {previous}")]
    NonMonotonicDts {
        track: usize,
        dts: i64,
        previous: i64,
    },
    #[error("track {track}: dts {dts} is out of the representable range")]
    TimestampOutOfRange { track: usize, dts: i64 },
    #[error("sample pushed after finish()")]
    Finished,
    #[error("writing a box: {0}")]
    Box(#[from] mp4_atom::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
