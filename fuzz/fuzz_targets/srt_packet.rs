//! srt-protocol (the vendored, patched copy: docs/design/008-srt-protocol-patches.md) on
//! arbitrary datagrams: packet parsing and serialization, the listener state machine that
//! srt-tokio's shared listener task runs, and the connections it opens.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    weir_ingest::srt::fuzzing::packets(data);
});
