//! Weir's SRT stream id parser (`host/ingest/src/srt/streamid.rs`): every convention
//! (`KEY`, `live/KEY`, `#!::r=…,m=…`, `publish:…`) on arbitrary text, with the invariants
//! the listener relies on checked (a key is never empty and comes from the stream id).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_ingest::srt::fuzzing::stream_id(data);
});
