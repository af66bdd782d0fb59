//! weir-ingest integration tests: one binary, a module per area.

#![allow(clippy::unwrap_used)] // tests may unwrap
#![allow(clippy::disallowed_methods)] // tests and benches drive real peers on the real clock

mod flv;
mod rtmp;
mod scte35;
mod srt;
mod support;
mod ts;
