//! TsDemuxer on arbitrary bytes, fed in two pieces split where the first two bytes say
//! (so the fuzzer explores partial packets and resync across `push` calls). The PES
//! reassembly and the ADTS/H.264 parsers are reached through it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::ts::TsDemuxer;

fuzz_target!(|data: &[u8]| {
    let (split, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => (0, data),
    };
    let (first, second) = rest.split_at(split.min(rest.len()));
    let mut demux = TsDemuxer::default();
    demux.push(first);
    while demux.poll_event().is_some() {}
    demux.push(second);
    demux.finish();
    while demux.poll_event().is_some() {}
    let _ = demux.stats();
});
