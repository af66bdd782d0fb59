//! FlvDemuxer on arbitrary tag sequences: each record is
//! `[kind: u8][timestamp: u32 BE][len: u16 BE][body: len bytes]`.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use weir_ingest::flv::{FlvDemuxer, StreamHints, TagKind};

fuzz_target!(|data: &[u8]| {
    let mut demux = FlvDemuxer::default();
    let mut rest = data;
    if let Some((&hints, tail)) = rest.split_first() {
        let hint = |bits: u8| match bits & 3 {
            0 => None,
            1 => Some(false),
            _ => Some(true),
        };
        demux.set_hints(StreamHints {
            video: hint(hints),
            audio: hint(hints >> 2),
        });
        rest = tail;
    }
    while rest.len() >= 7 {
        let kind = match rest[0] % 3 {
            0 => TagKind::Audio,
            1 => TagKind::Video,
            _ => TagKind::Script,
        };
        let ts = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]])).min(rest.len() - 7);
        let body = Bytes::copy_from_slice(&rest[7..7 + len]);
        rest = &rest[7 + len..];
        if demux.push_tag(kind, ts, body).is_err() {
            return;
        }
        while demux.poll_event().is_some() {}
    }
    demux.finish();
    while demux.poll_event().is_some() {}
});
