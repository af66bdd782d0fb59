//! weir-edge: an edge is a second source of renditions. It follows an upstream weir's
//! LL-HLS (one blocking playlist request and one part request per rendition, whatever the
//! number of viewers) and writes what it pulls into the local registry, where the origin
//! serves it as it serves a primary's own streams. docs/design/009-edge.md is the design.
//!
//! `follow` is the sans-IO follower, `trim` the playlist trim, `upstream` the tasks that
//! drive them against an upstream over HTTP. The `weir edge` wiring (a registry miss
//! starting a follow, auth, discovery across primaries) comes with the rest of issue 16.

pub mod follow;
pub mod trim;
pub mod upstream;

pub use follow::{Action, Follower, Publication};
pub use upstream::{EdgeSettings, Upstream};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("upstream playlist: {0}")]
    Playlist(String),
    #[error("upstream: {0}")]
    Upstream(String),
    /// An object name that is not a weir part or init segment (`part<seq>.m4s`,
    /// `init<generation>.mp4`): an edge follows a weir, whose names carry the numbers it
    /// orders by.
    #[error("{0:?} is not a weir object name (part<seq>.m4s or init<n>.mp4): an edge follows a weir upstream")]
    NotWeir(String),
    #[error("byte-range parts are not followed yet: set byterange_parts = false for this tenant upstream")]
    ByteRange,
}
