//! End-to-end tests: real ffmpeg publishers → the weir binary → hls.js and Shaka in
//! Chromium, curl, ffprobe. See tests/src/lib.rs for the harness.

mod bad_input;
mod players;
