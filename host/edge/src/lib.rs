//! weir-edge: an edge is a second source of renditions. It follows an upstream weir's
//! LL-HLS (one blocking playlist request and one part request per rendition, whatever the
//! number of viewers) and writes what it pulls into the local registry, where the origin
//! serves it as it serves a primary's own streams. docs/design/009-edge.md is the design.
//!
//! This crate holds the sans-IO follower (`follow`) and the playlist trim (`trim`); the
//! upstream client and the wiring come with the rest of issue 16.

pub mod follow;
pub mod trim;

pub use follow::{Action, Follower, Publication};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("upstream playlist: {0}")]
    Playlist(String),
    /// An object name that is not a weir part or init segment (`part<seq>.m4s`,
    /// `init<generation>.mp4`): an edge follows a weir, whose names carry the numbers it
    /// orders by.
    #[error("{0:?} is not a weir object name (part<seq>.m4s or init<n>.mp4): an edge follows a weir upstream")]
    NotWeir(String),
    #[error("byte-range parts are not followed yet: set byterange_parts = false for this tenant upstream")]
    ByteRange,
}
