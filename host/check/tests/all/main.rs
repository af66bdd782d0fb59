//! weir-check against small, deliberately broken LL-HLS servers (`live.rs`): each breaks
//! one rule and `check` must fail naming it; the same server with nothing broken passes.

#![allow(clippy::unwrap_used)] // tests assert by unwrapping
#![allow(clippy::disallowed_methods)] // the servers run on the real clock, as the checker does

mod broken;
mod live;
