//! End-to-end tests: real ffmpeg publishers → the weir binary → hls.js and Shaka in
//! Chromium, curl, ffprobe. See tests/src/lib.rs for the harness.

#![allow(clippy::disallowed_methods)]
// tests and benches drive real peers on the real clock

// A panic in a test helper is a test failure with a line number.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod byterange;
mod check;
mod continuity;
mod dashboard;
mod deploy;
mod edge;
mod encoder;
mod hardening_auth;
mod hardening_lifecycle;
mod hardening_load;
mod hardening_plugins;
mod hardening_rtmp;
mod hardening_srt;
mod numbering;
mod players;
mod plugins;
mod scte35;
mod shaka;
mod srt_ingest;
mod whip;
