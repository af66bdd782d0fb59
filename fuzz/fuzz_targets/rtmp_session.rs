//! A whole RTMP server session through rml_rtmp, as weir runs one: the handshake, the chunk
//! guard, rml_rtmp's chunk deserializer and AMF decoder, `connect`/`publish` accepted, the
//! FLV demuxer and the cue point decoder. What the guard lets through must never panic,
//! hang or blow the stack in rml_rtmp.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_ingest::rtmp::fuzzing::rtmp_session(data);
});
