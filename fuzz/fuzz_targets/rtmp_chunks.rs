//! The RTMP chunk-stream guard (message sizes, SetChunkSize, data messages) and the AMF cue
//! point decoder, which weir parses itself ahead of rml_rtmp.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| usize::from(*b) * 7);
    weir_ingest::rtmp::fuzzing::chunk_stream(data.get(1..).unwrap_or_default(), split);
});
