//! parse_splice_info_section on arbitrary bytes. With `fix` set by the first byte, the
//! section_length and CRC_32 are made right first, so the fuzzer gets past them into the
//! command and descriptor parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::parse_splice_info_section;

use weir_ingest::scte35::crc32_mpeg2 as crc32;

fuzz_target!(|data: &[u8]| {
    let Some((&fix, rest)) = data.split_first() else {
        return;
    };
    if fix & 1 == 0 || rest.len() < 3 || rest.len() > 4000 {
        let _ = parse_splice_info_section(rest);
        return;
    }
    let mut section = rest.to_vec();
    section[0] = 0xfc;
    let len = section.len() + 4 - 3;
    section[1] = (section[1] & 0xf0) | ((len >> 8) as u8 & 0x0f);
    section[2] = len as u8;
    let crc = crc32(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    let _ = parse_splice_info_section(&section);
});
