//! Weir's shared media vocabulary.
//!
//! Every stage of Weir speaks the types in this crate and nothing else:
//!
//! - [`Track`], [`Codec`] and [`Sample`]: what ingest demuxes and the packager consumes.
//!   Samples carry decode timestamps in the track's own timescale, never in wall-clock time.
//! - [`PartProducer`] / [`PartConsumer`]: an append-only body that the packager writes chunk by
//!   chunk and any number of HTTP responses read while it grows (a preload-hinted part).
//! - [`RenditionProducer`] / [`RenditionConsumer`]: one rendition's rolling window (init
//!   segment, parts, segments) and its latest [`RenditionSnapshot`], which blocking playlist
//!   reloads wait on.
//! - [`StreamRegistry`]: the streams currently live, by name.
//! - [`h264`]: Annex B ↔ length-prefixed NAL units and `avcC` records, shared by ingest and
//!   the encoder (the origin and the cache never call it: to them media is opaque bytes).
//!
//! Consumers are cheap to clone, which is how one producer fans out to every viewer.
//! The crate does no IO and reads no clock.
//!
//! ```
//! use weir_media::part_channel;
//! use bytes::Bytes;
//!
//! let (producer, mut consumer) = part_channel();
//! producer.push(Bytes::from_static(b"moof"));
//! producer.finish();
//! let body = tokio_test_block_on(async move { consumer.collect().await });
//! assert_eq!(body.unwrap(), Bytes::from_static(b"moof"));
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

mod cue;
pub mod date;
pub mod h264;
mod key;
pub mod metrics;
mod part;
mod registry;
mod rendition;
mod track;

pub use cue::{CueEvent, CueKind, PlacedCue};
pub use key::{Redacted, StreamKey};
pub use part::{part_channel, PartAborted, PartConsumer, PartProducer};
pub use registry::{StreamConsumer, StreamProducer, StreamRegistry};
pub use rendition::{
    rendition_channel, Lookup, RenditionConsumer, RenditionProducer, RenditionSnapshot,
};
pub use track::{AacConfig, Codec, H264Config, MediaEvent, Sample, Track, TrackKind};
