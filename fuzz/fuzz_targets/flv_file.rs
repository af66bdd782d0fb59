//! FlvFile (tag reader + demuxer) on arbitrary bytes, whole and fed in pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_ingest::flv::{DemuxSettings, FlvFile, FlvTagReader};

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = FlvFile::new(data, DemuxSettings::default()) {
        for event in file {
            if event.is_err() {
                break;
            }
        }
    }
    // The streaming reader, fed in pieces whose size comes from the first byte.
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut reader = FlvTagReader::new();
    for chunk in data.chunks(piece) {
        reader.push(chunk);
        loop {
            match reader.next_tag() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    let _ = reader.finish();
});
