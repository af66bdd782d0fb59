//! The H.264 bitstream helpers the encoder and the TS demuxer share, on arbitrary bytes:
//! `avcC` parameter sets, length-prefixed → Annex B (lying lengths), Annex B → access unit
//! and `avcC` from whatever SPS/PPS it finds. The first byte splits the input into an `avcC`
//! and a sample.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::h264::{access_unit, config, parameter_sets, to_annex_b};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let (avcc, sample) = rest.split_at(usize::from(split).min(rest.len()));
    let _ = parameter_sets(avcc);
    let annex_b = to_annex_b(avcc, sample, split & 1 == 1);
    let au = access_unit(&annex_b);
    if let (Some(sps), Some(pps)) = (&au.sps, &au.pps) {
        let _ = config(sps, pps);
    }
    let _ = access_unit(rest);
});
