//! weir-stream's integration tests: every timing rule of the stream stage on a virtual
//! clock (see `harness`), and the tokio driver under a paused tokio clock.

#![allow(clippy::unwrap_used)] // tests assert by unwrapping

mod harness;

mod byterange;
mod cues;
mod driver;
mod idle;
mod ladder;
mod loss;
mod multivariant;
mod standby;
mod start;
