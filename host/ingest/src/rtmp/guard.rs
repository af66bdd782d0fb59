//! A shadow RTMP chunk-header reader that enforces limits before rml_rtmp buffers anything.
//!
//! rml_rtmp's deserializer reserves a whole message's declared length (up to 16 MiB) as soon
//! as it reads a chunk header, and offers no limit. This reader sees the same bytes first,
//! follows chunk boundaries (including `SetChunkSize`) without keeping payloads, and
//! rejects a message whose declared length is over the limit. Sans-IO.

use std::collections::HashMap;

use crate::{Error, Result};

const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;
const SET_CHUNK_SIZE: u8 = 1;
/// AMF3 and AMF0 data messages (`@setDataFrame`, `onCuePoint`…), which rml_rtmp drops unless
/// they set metadata, so this reader keeps their payloads for the session.
const AMF3_DATA: u8 = 15;
const AMF0_DATA: u8 = 18;
/// Data messages larger than this are not kept (cue points are a few hundred bytes).
const MAX_DATA_MESSAGE: usize = 64 * 1024;
/// Complete data messages kept until the session takes them.
const MAX_DATA_QUEUED: usize = 64;
/// The longest chunk header: 3-byte basic header, 11-byte message header, 4-byte extended
/// timestamp.
const MAX_HEADER: usize = 18;

#[derive(Clone, Copy, Debug, Default)]
struct Stream {
    length: usize,
    type_id: u8,
    timestamp_field: u32,
    /// Payload bytes of the current message not yet seen.
    left: usize,
}

#[derive(Debug)]
pub(crate) struct ChunkGuard {
    max_message: usize,
    chunk_size: usize,
    streams: HashMap<u32, Stream>,
    header: Vec<u8>,
    /// Bytes of the current chunk's payload still to skip, and the stream they belong to.
    payload_left: usize,
    current: u32,
    /// The payload of an in-progress `SetChunkSize` message.
    set_chunk_size: Vec<u8>,
    /// In-progress data messages, by chunk stream.
    data: HashMap<u32, Vec<u8>>,
    /// Complete data messages: (type_id, payload).
    done: Vec<(u8, Vec<u8>)>,
}

impl ChunkGuard {
    pub(crate) fn new(max_message: usize) -> Self {
        Self {
            max_message,
            chunk_size: 128,
            streams: HashMap::new(),
            header: Vec::with_capacity(MAX_HEADER),
            payload_left: 0,
            current: 0,
            set_chunk_size: Vec::new(),
            data: HashMap::new(),
            done: Vec::new(),
        }
    }

    /// The AMF data messages completed since the last call, in order: (type_id, payload).
    pub(crate) fn take_data_messages(&mut self) -> Vec<(u8, Vec<u8>)> {
        std::mem::take(&mut self.done)
    }

    /// Checks the next bytes of the stream (everything after the handshake, in order).
    pub(crate) fn check(&mut self, mut input: &[u8]) -> Result<()> {
        while !input.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(input.len());
                self.payload(&input[..n])?;
                input = &input[n..];
                continue;
            }
            let before = self.header.len();
            let take = (MAX_HEADER - before).min(input.len());
            self.header.extend_from_slice(&input[..take]);
            match self.parse_header()? {
                Some(used) => {
                    input = &input[used - before..];
                    self.header.clear();
                    // A zero-length chunk can complete a zero-length message at once.
                    if self.payload_left == 0 {
                        self.payload(&[])?;
                    }
                }
                None => {
                    input = &input[take..];
                }
            }
        }
        Ok(())
    }

    /// Parses a chunk header from `self.header`; `None` if more bytes are needed.
    fn parse_header(&mut self) -> Result<Option<usize>> {
        let h = &self.header;
        let Some(&b0) = h.first() else {
            return Ok(None);
        };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match h.get(1) {
                Some(&b1) => (64 + u32::from(b1), 2),
                None => return Ok(None),
            },
            1 => match h.get(1..3) {
                Some(b) => (64 + u32::from(b[0]) + 256 * u32::from(b[1]), 3),
                None => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let header_len = [11, 7, 3, 0][usize::from(fmt)];
        let Some(m) = h.get(pos..pos + header_len) else {
            return Ok(None);
        };
        let previous = self.streams.get(&csid).copied();
        let mut s = match (fmt, previous) {
            (0, _) => Stream::default(),
            (_, Some(p)) => p,
            (_, None) => {
                return Err(Error::Protocol(format!(
                    "chunk of format {fmt} on chunk stream {csid} with no previous header"
                )))
            }
        };
        let u24 = |b: &[u8]| u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let continuing = fmt == 3 && s.left > 0;
        if fmt < 3 {
            s.timestamp_field = u24(&m[0..3]);
        }
        if fmt < 2 {
            s.length = u24(&m[3..6]) as usize;
            s.type_id = m[6];
        }
        pos += header_len;
        if s.timestamp_field >= EXTENDED_TIMESTAMP {
            if h.len() < pos + 4 {
                return Ok(None);
            }
            pos += 4;
        }
        if !continuing {
            if s.length > self.max_message {
                return Err(Error::MessageTooLarge {
                    len: s.length,
                    max: self.max_message,
                });
            }
            s.left = s.length;
            if s.type_id == SET_CHUNK_SIZE {
                self.set_chunk_size.clear();
            }
            if matches!(s.type_id, AMF0_DATA | AMF3_DATA) && s.length <= MAX_DATA_MESSAGE {
                self.data.insert(csid, Vec::with_capacity(s.length));
            } else {
                self.data.remove(&csid);
            }
        }
        self.payload_left = s.left.min(self.chunk_size);
        self.current = csid;
        self.streams.insert(csid, s);
        Ok(Some(pos))
    }

    fn payload(&mut self, bytes: &[u8]) -> Result<()> {
        self.payload_left -= bytes.len();
        let Some(s) = self.streams.get_mut(&self.current) else {
            return Ok(());
        };
        s.left -= bytes.len();
        if let Some(buf) = self.data.get_mut(&self.current) {
            buf.extend_from_slice(bytes);
            if s.left == 0 {
                let payload = self.data.remove(&self.current).unwrap_or_default();
                if self.done.len() < MAX_DATA_QUEUED {
                    self.done.push((s.type_id, payload));
                }
            }
        }
        if s.type_id == SET_CHUNK_SIZE && self.set_chunk_size.len() < 4 {
            let want = 4 - self.set_chunk_size.len();
            self.set_chunk_size
                .extend_from_slice(&bytes[..want.min(bytes.len())]);
        }
        if s.left == 0 && self.payload_left == 0 && s.type_id == SET_CHUNK_SIZE {
            let b = &self.set_chunk_size;
            if b.len() < 4 {
                return Err(Error::Protocol("SetChunkSize shorter than 4 bytes".into()));
            }
            let size = (u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff) as usize;
            if size == 0 {
                return Err(Error::Protocol("SetChunkSize of 0".into()));
            }
            self.chunk_size = size;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::time::RtmpTimestamp;

    fn message(serializer: &mut ChunkSerializer, type_id: u8, ts: u32, len: usize) -> Vec<u8> {
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(ts),
            message_stream_id: 1,
            type_id,
            data: Bytes::from(vec![7u8; len]),
        };
        serializer.serialize(&payload, false, false).unwrap().bytes
    }

    #[test]
    fn follows_real_chunking_including_chunk_size_changes() {
        let mut ser = ChunkSerializer::new();
        let mut wire = Vec::new();
        wire.extend(message(&mut ser, 9, 0, 1000));
        wire.extend(message(&mut ser, 8, 20, 300));
        wire.extend(
            ser.set_max_chunk_size(4096, RtmpTimestamp::new(0))
                .unwrap()
                .bytes,
        );
        wire.extend(message(&mut ser, 9, 0x0100_0000, 9000)); // extended timestamp
        wire.extend(message(&mut ser, 9, 0x0100_0021, 9000));
        wire.extend(message(&mut ser, 8, 40, 0));
        wire.extend(message(&mut ser, 9, 60, 500));
        for split in [1, 7, 128, 4097, wire.len()] {
            let mut g = ChunkGuard::new(10_000);
            for piece in wire.chunks(split) {
                g.check(piece).unwrap();
            }
            assert_eq!(g.chunk_size, 4096);
            assert_eq!((g.payload_left, g.header.len()), (0, 0), "split {split}");
        }
        let mut g = ChunkGuard::new(8999);
        let err = g.check(&wire).unwrap_err();
        assert!(
            matches!(
                err,
                Error::MessageTooLarge {
                    len: 9000,
                    max: 8999
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_headers_without_history() {
        let mut g = ChunkGuard::new(1000);
        assert!(matches!(g.check(&[0xc3]), Err(Error::Protocol(_))));
    }
}
