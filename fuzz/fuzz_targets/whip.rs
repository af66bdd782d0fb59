//! WHIP (`host/ingest/src/whip/`): what a publisher's bytes reach. The offer check and
//! webrtc-rs's SDP parser, the UDP mux's STUN reading, RTP reassembly into H.264 access
//! units and Opus frames (tracks first, video time rising), and a peer connection fed
//! arbitrary datagrams after answering an offer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_ingest::whip::fuzzing::input(data);
});
