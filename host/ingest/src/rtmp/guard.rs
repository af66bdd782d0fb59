//! A shadow RTMP chunk reader that enforces limits before rml_rtmp sees a byte.
//!
//! rml_rtmp 0.8 trusts its peer in ways that a server on the internet cannot:
//!
//! - its deserializer reserves a whole message's declared length (up to 16 MiB) as soon as
//!   it reads a chunk header;
//! - it decodes every complete command and data message with rml_amf0, which recurses once
//!   per nested AMF object or array with no depth limit. A few kilobytes of nested strict
//!   arrays overflow a tokio worker's stack, and a stack overflow aborts the whole process:
//!   it is not a panic that the session's task boundary could catch;
//! - it keeps one payload buffer for all chunk streams, so a chunk that interrupts an
//!   unfinished message is glued onto it (and a reader that followed the specification
//!   would no longer agree with it on where messages begin and end);
//! - it indexes decoded AMF values unchecked (a command with fewer than three values, an
//!   `@setDataFrame` with nothing after it) and subtracts an extended timestamp delta
//!   below `0xffffff` with overflow: panics, contained by the session's task, but not
//!   wanted either.
//!
//! [`ChunkGuard`] sees every byte first: the session passes each read to
//! [`ChunkGuard::check`] before rml_rtmp's `handle_input`, and ends on an error, so rml_rtmp
//! never sees the chunk that would have completed (and decoded) a refused message. The
//! guard follows chunk boundaries exactly as rml_rtmp does (including `SetChunkSize`) and
//! refuses, each with its own [`Error`]:
//!
//! - a message longer than its limit, on its first chunk header: `max_message` for audio
//!   and video, [`MAX_COMMAND_MESSAGE`] for every other type (commands, data, shared
//!   objects, control);
//! - a command, data or shared-object message that nests AMF values deeper than
//!   [`MAX_AMF_DEPTH`], or that rml_rtmp would index out of bounds. The guard buffers such a
//!   message (it is at most [`MAX_COMMAND_MESSAGE`] long) and scans it without recursion
//!   when its last chunk arrives;
//! - a chunk that interrupts an unfinished message (interleaved chunk streams: ffmpeg and
//!   OBS never send them, and rml_rtmp cannot read them);
//! - more than [`MAX_CHUNK_STREAMS`] chunk stream ids on one connection.
//!
//! So the guard holds at most one message's payload ([`MAX_COMMAND_MESSAGE`] bytes), one
//! small header per chunk stream, and the AMF data messages (cue points) completed since
//! the session last took them. Sans-IO.

use std::collections::HashMap;

use crate::{Error, Result};

/// The largest command, data, shared-object or control message accepted (every message
/// type but audio and video). Real encoders send a few hundred bytes (`connect`,
/// `@setDataFrame`, `onCuePoint`); a message this large is an attack or a broken peer, and
/// rml_rtmp would decode it in one go.
pub(crate) const MAX_COMMAND_MESSAGE: usize = 64 * 1024;
/// The deepest nesting of AMF objects and arrays accepted in a command or data message.
/// `connect` and `onMetaData` nest one level, cue points two.
pub(crate) const MAX_AMF_DEPTH: usize = 32;
/// Distinct chunk stream ids one connection may use. ffmpeg and OBS use fewer than ten.
pub(crate) const MAX_CHUNK_STREAMS: usize = 64;

const EXTENDED_TIMESTAMP: u32 = 0x00ff_ffff;
const SET_CHUNK_SIZE: u8 = 1;
const AUDIO: u8 = 8;
const VIDEO: u8 = 9;
/// AMF3 and AMF0 data messages (`@setDataFrame`, `onCuePoint`…), which rml_rtmp drops unless
/// they set metadata, so this reader keeps their payloads for the session.
const AMF3_DATA: u8 = 15;
const AMF3_SHARED_OBJECT: u8 = 16;
const AMF3_COMMAND: u8 = 17;
const AMF0_DATA: u8 = 18;
const AMF0_SHARED_OBJECT: u8 = 19;
const AMF0_COMMAND: u8 = 20;
/// Complete data messages kept until the session takes them.
const MAX_DATA_QUEUED: usize = 64;
/// The longest chunk header: 3-byte basic header, 11-byte message header, 4-byte extended
/// timestamp.
const MAX_HEADER: usize = 18;
/// The largest chunk size rml_rtmp accepts in `SetChunkSize`.
const MAX_CHUNK_SIZE: u32 = 0x7fff_ffff;

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
    /// Bytes of the current chunk's payload still to come.
    payload_left: usize,
    /// The chunk stream of the current chunk.
    current: u32,
    /// The chunk stream whose message is unfinished, if any: rml_rtmp reads one message at
    /// a time, so the next chunk must continue it.
    open: Option<u32>,
    /// The payload of the unfinished message, when it is one the guard reads (anything but
    /// audio and video, so at most [`MAX_COMMAND_MESSAGE`] bytes).
    body: Vec<u8>,
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
            open: None,
            body: Vec::new(),
            done: Vec::new(),
        }
    }

    /// The AMF data messages completed since the last call, in order: (type_id, payload).
    pub(crate) fn take_data_messages(&mut self) -> Vec<(u8, Vec<u8>)> {
        std::mem::take(&mut self.done)
    }

    /// Checks the next bytes of the stream (everything after the handshake, in order). After
    /// an error the connection must be dropped: the guard's state no longer follows it.
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
        if let Some(open) = self.open {
            if open != csid || fmt != 3 {
                return Err(Error::Protocol(format!(
                    "a chunk of format {fmt} on chunk stream {csid} interrupts the unfinished \
                     message on chunk stream {open} (interleaved messages are not supported)"
                )));
            }
        }
        let previous = self.streams.get(&csid).copied();
        if previous.is_none() && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(Error::TooManyChunkStreams {
                max: MAX_CHUNK_STREAMS,
            });
        }
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
        let continuing = self.open.is_some();
        if fmt < 3 {
            s.timestamp_field = u24(&m[0..3]);
        }
        if fmt < 2 {
            s.length = u24(&m[3..6]) as usize;
            s.type_id = m[6];
        }
        pos += header_len;
        if s.timestamp_field >= EXTENDED_TIMESTAMP {
            let Some(ext) = h.get(pos..pos + 4) else {
                return Ok(None);
            };
            let ext = u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]);
            // A delta only moves to the extended field when it does not fit in 24 bits;
            // rml_rtmp subtracts 0xffffff from it unchecked.
            if fmt != 0 && !continuing && ext < EXTENDED_TIMESTAMP {
                return Err(Error::Protocol(format!(
                    "extended timestamp delta {ext:#x} on chunk stream {csid} is below 0xffffff"
                )));
            }
            pos += 4;
        }
        if !continuing {
            let max = if matches!(s.type_id, AUDIO | VIDEO) {
                self.max_message
            } else {
                MAX_COMMAND_MESSAGE.min(self.max_message)
            };
            if s.length > max {
                return Err(if matches!(s.type_id, AUDIO | VIDEO) {
                    Error::MessageTooLarge { len: s.length, max }
                } else {
                    Error::CommandTooLarge {
                        type_id: s.type_id,
                        len: s.length,
                        max,
                    }
                });
            }
            s.left = s.length;
            self.body.clear();
            if !matches!(s.type_id, AUDIO | VIDEO) {
                self.body.reserve(s.length);
            }
        }
        self.payload_left = s.left.min(self.chunk_size);
        self.current = csid;
        self.open = Some(csid);
        self.streams.insert(csid, s);
        Ok(Some(pos))
    }

    fn payload(&mut self, bytes: &[u8]) -> Result<()> {
        self.payload_left -= bytes.len();
        let Some(s) = self.streams.get_mut(&self.current) else {
            return Ok(());
        };
        s.left -= bytes.len();
        let (type_id, complete) = (s.type_id, s.left == 0);
        if !matches!(type_id, AUDIO | VIDEO) {
            self.body.extend_from_slice(bytes);
        }
        if complete && self.payload_left == 0 {
            self.open = None;
            self.complete(type_id)?;
        }
        Ok(())
    }

    /// The last chunk of a message is in: decide before rml_rtmp decodes it.
    fn complete(&mut self, type_id: u8) -> Result<()> {
        let body = std::mem::take(&mut self.body);
        match type_id {
            SET_CHUNK_SIZE => {
                let Some(b) = body.get(..4) else {
                    return Err(Error::Protocol("SetChunkSize shorter than 4 bytes".into()));
                };
                let size = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                if size == 0 || size > MAX_CHUNK_SIZE {
                    return Err(Error::Protocol(format!("SetChunkSize of {size}")));
                }
                self.chunk_size = size as usize;
            }
            AMF0_COMMAND | AMF3_COMMAND => {
                // rml_rtmp reads an AMF3 command as AMF0 after a leading 0 byte, if any.
                let amf0 = match body.split_first() {
                    Some((0, rest)) if type_id == AMF3_COMMAND => rest,
                    _ => &body[..],
                };
                let shape = scan(type_id, amf0)?;
                // Name, transaction id, command object: rml_rtmp takes the first three.
                if shape.values < 3 {
                    return Err(Error::Protocol(format!(
                        "command message (type {type_id}) with {} AMF values, fewer than 3",
                        shape.values
                    )));
                }
            }
            AMF0_DATA | AMF3_DATA => {
                // rml_rtmp reads both types as AMF0 from the first byte; the cue decoder reads
                // AMF3 data after its format byte. Both readings are checked.
                let shape = scan(type_id, &body)?;
                if type_id == AMF3_DATA {
                    scan(type_id, body.get(1..).unwrap_or_default())?;
                }
                // rml_rtmp indexes the two values after `@setDataFrame` unchecked.
                if shape.set_data_frame && shape.values < 3 {
                    return Err(Error::Protocol(format!(
                        "@setDataFrame data message with {} AMF values, fewer than 3",
                        shape.values
                    )));
                }
                if self.done.len() < MAX_DATA_QUEUED {
                    self.done.push((type_id, body));
                }
            }
            AMF0_SHARED_OBJECT | AMF3_SHARED_OBJECT => {
                // Nothing decodes them today (rml_rtmp passes them on as unknown); the
                // limits hold for them anyway, should that change.
                scan(type_id, &body)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// What [`scan`] saw at the top level of an AMF message.
#[derive(Debug, Default, PartialEq, Eq)]
struct Shape {
    /// Top-level values started before the end (or the first malformed byte).
    values: usize,
    /// The first value is the string `@setDataFrame`.
    set_data_frame: bool,
}

/// An open AMF container.
#[derive(Debug)]
enum Frame {
    /// AMF0 object, ECMA array or typed object: properties up to an empty name and 0x09.
    Object,
    /// AMF0 strict array: `left` values, or fewer if 0x09 comes first (as rml_amf0 reads it).
    StrictArray { left: u32 },
    /// AMF3 array: string-keyed values up to the empty string, then `dense` values.
    Amf3Array { keyed: bool, dense: u32 },
    /// AMF3 object: `sealed` values, then (if dynamic) string-keyed values up to the empty
    /// string.
    Amf3Object { sealed: u32, dynamic: bool },
    /// AMF3 object vector or dictionary: `left` values.
    Amf3Values { left: u64 },
}

/// Scans a run of AMF0 values (with AMF3 values behind the 0x11 switch marker) for their
/// nesting depth, without recursion, reading them as rml_amf0 does: to the end of the
/// bytes or to a top-level object-end marker, and no further than the first byte rml_amf0
/// would fail on (nothing decodes past it). Markers rml_amf0 does not know (typed object,
/// long string, AMF3…) are read by the specification, which can only find more depth than
/// rml_amf0 would reach, never less.
fn scan(type_id: u8, bytes: &[u8]) -> Result<Shape> {
    let mut s = Scanner {
        bytes,
        pos: 0,
        stack: Vec::new(),
        too_deep: false,
        traits: Vec::new(),
    };
    let mut shape = Shape::default();
    while s.step(&mut shape).is_some() {}
    if s.too_deep {
        return Err(Error::AmfTooDeep {
            type_id,
            max: MAX_AMF_DEPTH,
        });
    }
    Ok(shape)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Frame>,
    too_deep: bool,
    /// AMF3 traits seen so far (sealed member count, dynamic), for traits references.
    traits: Vec<(u32, bool)>,
}

/// AMF3 traits kept for references; a message that defines more is not read further.
const MAX_AMF3_TRAITS: usize = 1024;

impl Scanner<'_> {
    /// Reads one value or closes one container; `None` when the scan is over.
    fn step(&mut self, shape: &mut Shape) -> Option<()> {
        let Some(frame) = self.stack.last_mut() else {
            let marker = self.u8()?;
            if marker == 0x09 {
                return None; // rml_amf0 stops reading the message here
            }
            shape.values += 1;
            if shape.values == 1 && marker == 0x02 {
                let start = self.pos;
                self.amf0_value(marker)?;
                shape.set_data_frame =
                    self.bytes.get(start + 2..self.pos) == Some(b"@setDataFrame");
                return Some(());
            }
            return self.amf0_value(marker);
        };
        match frame {
            Frame::Object => {
                let name = self.u16()?;
                if name == 0 {
                    return match self.u8()? {
                        0x09 => self.pop(),
                        _ => None,
                    };
                }
                self.skip(usize::from(name))?;
                match self.u8()? {
                    0x09 => None,
                    marker => self.amf0_value(marker),
                }
            }
            Frame::StrictArray { left } => {
                if *left == 0 {
                    return self.pop();
                }
                *left -= 1;
                match self.u8()? {
                    0x09 => self.pop(),
                    marker => self.amf0_value(marker),
                }
            }
            Frame::Amf3Array { keyed: true, .. } => {
                if self.amf3_key()? {
                    if let Some(Frame::Amf3Array { keyed, .. }) = self.stack.last_mut() {
                        *keyed = false;
                    }
                    return Some(());
                }
                self.amf3_value()
            }
            Frame::Amf3Array {
                keyed: false,
                dense: left,
            }
            | Frame::Amf3Object { sealed: left, .. }
                if *left > 0 =>
            {
                *left -= 1;
                self.amf3_value()
            }
            Frame::Amf3Array { .. } | Frame::Amf3Object { dynamic: false, .. } => self.pop(),
            Frame::Amf3Object { dynamic: true, .. } => {
                if self.amf3_key()? {
                    return self.pop();
                }
                self.amf3_value()
            }
            Frame::Amf3Values { left } => {
                if *left == 0 {
                    return self.pop();
                }
                *left -= 1;
                self.amf3_value()
            }
        }
    }

    fn amf0_value(&mut self, marker: u8) -> Option<()> {
        match marker {
            0x00 => self.skip(8), // number
            0x01 => self.skip(1), // boolean
            0x02 => {
                let len = self.u16()?;
                self.skip(usize::from(len)) // string
            }
            0x03 => self.push(Frame::Object), // object
            0x05 | 0x06 => Some(()),          // null, undefined
            0x07 => self.skip(2),             // reference
            0x08 => {
                self.skip(4)?; // ECMA array: count, then properties
                self.push(Frame::Object)
            }
            0x0a => {
                let left = self.u32()?;
                self.push(Frame::StrictArray { left })
            }
            0x0b => self.skip(10), // date
            0x0c | 0x0f => {
                let len = self.u32()?; // long string, XML document
                self.skip(usize::try_from(len).ok()?)
            }
            0x10 => {
                let len = self.u16()?; // typed object: class name, properties
                self.skip(usize::from(len))?;
                self.push(Frame::Object)
            }
            0x11 => self.amf3_value(), // switch to AMF3 for one value
            _ => None,
        }
    }

    fn amf3_value(&mut self) -> Option<()> {
        match self.u8()? {
            0x00..=0x03 => Some(()),      // undefined, null, false, true
            0x04 => self.u29().map(drop), // integer
            0x05 => self.skip(8),         // double
            0x06 | 0x07 | 0x0b | 0x0c => self.amf3_string().map(drop), // string, XML, bytes
            0x08 => {
                if self.u29()? & 1 == 1 {
                    self.skip(8)?; // date
                }
                Some(())
            }
            0x09 => {
                let u = self.u29()?;
                if u & 1 == 0 {
                    return Some(()); // reference
                }
                self.push(Frame::Amf3Array {
                    keyed: true,
                    dense: u >> 1,
                })
            }
            0x0a => self.amf3_object(),
            marker @ 0x0d..=0x0f => {
                let u = self.u29()?;
                if u & 1 == 1 {
                    let size = if marker == 0x0f { 8 } else { 4 };
                    self.skip(1 + size * usize::try_from(u >> 1).ok()?)?; // fixed flag, items
                }
                Some(())
            }
            0x10 => {
                let u = self.u29()?;
                if u & 1 == 0 {
                    return Some(());
                }
                self.skip(1)?; // fixed flag
                self.amf3_string()?; // element type name
                self.push(Frame::Amf3Values {
                    left: u64::from(u >> 1),
                })
            }
            0x11 => {
                let u = self.u29()?;
                if u & 1 == 0 {
                    return Some(());
                }
                self.skip(1)?; // weak keys flag
                self.push(Frame::Amf3Values {
                    left: 2 * u64::from(u >> 1),
                })
            }
            _ => None,
        }
    }

    fn amf3_object(&mut self) -> Option<()> {
        let u = self.u29()?;
        if u & 1 == 0 {
            return Some(()); // object reference
        }
        let (sealed, dynamic) = if u & 2 == 0 {
            *self.traits.get(usize::try_from(u >> 2).ok()?)? // traits reference
        } else if u & 4 != 0 {
            return None; // externalizable: its body is opaque, and nothing reads past it
        } else {
            self.amf3_string()?; // class name
            let sealed = u >> 4;
            for _ in 0..sealed {
                self.amf3_string()?; // sealed member names
            }
            if self.traits.len() >= MAX_AMF3_TRAITS {
                return None;
            }
            self.traits.push((sealed, u & 8 != 0));
            (sealed, u & 8 != 0)
        };
        self.push(Frame::Amf3Object { sealed, dynamic })
    }

    /// An AMF3 string (inline or a reference); `true` if it is the empty string that ends a
    /// run of keyed values.
    fn amf3_key(&mut self) -> Option<bool> {
        self.amf3_string().map(|u| u == 1)
    }

    /// An AMF3 string, XML or byte array header and body; returns the U29 header.
    fn amf3_string(&mut self) -> Option<u32> {
        let u = self.u29()?;
        if u & 1 == 1 {
            self.skip(usize::try_from(u >> 1).ok()?)?;
        }
        Some(u)
    }

    fn push(&mut self, frame: Frame) -> Option<()> {
        if self.stack.len() >= MAX_AMF_DEPTH {
            self.too_deep = true;
            return None;
        }
        self.stack.push(frame);
        Some(())
    }

    fn pop(&mut self) -> Option<()> {
        self.stack.pop().map(drop)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.bytes.len() {
            return None;
        }
        self.pos = end;
        Some(())
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let b = self.bytes.get(self.pos..self.pos.checked_add(N)?)?;
        self.pos += N;
        b.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Option<u16> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }

    /// AMF3's variable-length 29-bit integer.
    fn u29(&mut self) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..3 {
            let b = self.u8()?;
            v = v << 7 | u32::from(b & 0x7f);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        Some(v << 8 | u32::from(self.u8()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::super::{cue, DEFAULT_MAX_MESSAGE_BYTES};
    use super::*;
    use bytes::Bytes;
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::{MessagePayload, RtmpMessage};
    use rml_rtmp::rml_amf0::{self, Amf0Value};
    use rml_rtmp::time::RtmpTimestamp;

    fn message(serializer: &mut ChunkSerializer, type_id: u8, ts: u32, len: usize) -> Vec<u8> {
        raw(serializer, type_id, ts, vec![7u8; len])
    }

    fn raw(serializer: &mut ChunkSerializer, type_id: u8, ts: u32, data: Vec<u8>) -> Vec<u8> {
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(ts),
            message_stream_id: 1,
            type_id,
            data: Bytes::from(data),
        };
        serializer.serialize(&payload, false, false).unwrap().bytes
    }

    fn command(
        serializer: &mut ChunkSerializer,
        name: &str,
        tx: f64,
        args: Vec<Amf0Value>,
    ) -> Vec<u8> {
        let mut args = args.into_iter();
        let message = RtmpMessage::Amf0Command {
            command_name: name.to_owned(),
            transaction_id: tx,
            command_object: args.next().unwrap_or(Amf0Value::Null),
            additional_arguments: args.collect(),
        };
        let payload = message
            .into_message_payload(RtmpTimestamp::new(0), 0)
            .unwrap();
        serializer.serialize(&payload, false, false).unwrap().bytes
    }

    fn data(serializer: &mut ChunkSerializer, values: Vec<Amf0Value>) -> Vec<u8> {
        raw(
            serializer,
            AMF0_DATA,
            0,
            rml_amf0::serialize(&values).unwrap(),
        )
    }

    fn s(v: &str) -> Amf0Value {
        Amf0Value::Utf8String(v.to_owned())
    }

    fn obj(pairs: &[(&str, Amf0Value)]) -> Amf0Value {
        Amf0Value::Object(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<HashMap<_, _>>(),
        )
    }

    /// What ffmpeg sends from `connect` to its first media message, serialized by rml_rtmp.
    fn publisher_session() -> Vec<u8> {
        let mut ser = ChunkSerializer::new();
        let mut wire = Vec::new();
        wire.extend(command(
            &mut ser,
            "connect",
            1.0,
            vec![obj(&[
                ("app", s("live")),
                ("type", s("nonprivate")),
                ("flashVer", s("FMLE/3.0 (compatible; Lavf59.27.100)")),
                ("tcUrl", s("rtmp://127.0.0.1:1935/live")),
            ])],
        ));
        wire.extend(
            ser.set_max_chunk_size(4096, RtmpTimestamp::new(0))
                .unwrap()
                .bytes,
        );
        wire.extend(command(
            &mut ser,
            "releaseStream",
            2.0,
            vec![Amf0Value::Null, s("key")],
        ));
        wire.extend(command(
            &mut ser,
            "FCPublish",
            3.0,
            vec![Amf0Value::Null, s("key")],
        ));
        wire.extend(command(
            &mut ser,
            "createStream",
            4.0,
            vec![Amf0Value::Null],
        ));
        wire.extend(command(
            &mut ser,
            "publish",
            5.0,
            vec![Amf0Value::Null, s("key"), s("live")],
        ));
        let mut meta = vec![
            ("duration", Amf0Value::Number(0.0)),
            ("width", Amf0Value::Number(1280.0)),
            ("height", Amf0Value::Number(720.0)),
            ("videocodecid", Amf0Value::Number(7.0)),
            ("audiocodecid", Amf0Value::Number(10.0)),
            ("encoder", s("Lavf59.27.100")),
        ];
        meta.extend((0..40).map(|_| ("filler", Amf0Value::Boolean(true))));
        wire.extend(data(
            &mut ser,
            vec![s("@setDataFrame"), s("onMetaData"), obj(&meta)],
        ));
        wire.extend(message(&mut ser, VIDEO, 0, 9000));
        wire.extend(message(&mut ser, AUDIO, 0, 300));
        wire.extend(data(
            &mut ser,
            vec![
                s("onCuePoint"),
                obj(&[
                    ("name", s("cue-out")),
                    ("time", Amf0Value::Number(1.5)),
                    ("parameters", obj(&[("duration", Amf0Value::Number(30.0))])),
                ]),
            ],
        ));
        wire.extend(message(&mut ser, VIDEO, 33, 5000));
        wire
    }

    /// A command message whose command object is `depth` nested containers, each opened
    /// by `open` (its marker and fixed fields) and closed by `close`.
    fn nested(depth: usize, open: &[u8], close: &[u8]) -> Vec<u8> {
        let mut amf = rml_amf0::serialize(&vec![s("connect"), Amf0Value::Number(1.0)]).unwrap();
        for _ in 0..depth {
            amf.extend_from_slice(open);
        }
        amf.push(0x05); // null, innermost
        for _ in 0..depth {
            amf.extend_from_slice(close);
        }
        amf
    }

    fn feed(g: &mut ChunkGuard, wire: &[u8], split: usize) -> Result<()> {
        wire.chunks(split).try_for_each(|piece| g.check(piece))
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
            feed(&mut g, &wire, split).unwrap();
            assert_eq!(g.chunk_size, 4096);
            assert_eq!(
                (g.payload_left, g.header.len(), g.open),
                (0, 0, None),
                "split {split}"
            );
            // Media is never buffered.
            assert_eq!(g.body.capacity(), 0);
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
    fn a_real_publisher_session_passes_at_every_split() {
        let wire = publisher_session();
        let check = |g: &mut ChunkGuard| {
            let data = g.take_data_messages();
            assert_eq!(data.len(), 2);
            assert!(data.iter().all(|(t, _)| *t == AMF0_DATA));
            let cue = cue::from_data_message(AMF0_DATA, &data[1].1, None).unwrap();
            assert_eq!(cue.pts, Some(135_000));
            assert_eq!((g.payload_left, g.header.len(), g.open), (0, 0, None));
            assert_eq!(g.chunk_size, 4096);
        };
        for at in 0..=wire.len() {
            let mut g = ChunkGuard::new(DEFAULT_MAX_MESSAGE_BYTES);
            g.check(&wire[..at]).unwrap();
            g.check(&wire[at..]).unwrap();
            check(&mut g);
        }
        for split in [1, 2, 3, 5, 11, 127, 129, 4096] {
            let mut g = ChunkGuard::new(DEFAULT_MAX_MESSAGE_BYTES);
            feed(&mut g, &wire, split).unwrap();
            check(&mut g);
        }
    }

    /// Every byte ffmpeg sent when it published (tests/data/README.md), after the handshake.
    #[test]
    fn a_real_ffmpeg_publish_passes_at_awkward_splits() {
        let capture = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/ffmpeg-publish.rtmp"
        ))
        .unwrap();
        let wire = &capture[1 + 2 * 1536..];
        let check = |g: &mut ChunkGuard| {
            let data = g.take_data_messages();
            assert_eq!(data.len(), 1, "@setDataFrame");
            assert!(data[0].1.starts_with(b"\x02\x00\x0d@setDataFrame"));
            assert_eq!((g.payload_left, g.header.len(), g.open), (0, 0, None));
            assert!(g.streams.len() < 10);
        };
        // Every split inside the commands and metadata, then fixed steps through the media.
        for at in 0..1024 {
            let mut g = ChunkGuard::new(DEFAULT_MAX_MESSAGE_BYTES);
            g.check(&wire[..at]).unwrap();
            g.check(&wire[at..]).unwrap();
            check(&mut g);
        }
        for split in [1, 2, 3, 7, 13, 127, 128, 129, 4095, 4096, 4097, wire.len()] {
            let mut g = ChunkGuard::new(DEFAULT_MAX_MESSAGE_BYTES);
            feed(&mut g, wire, split).unwrap();
            check(&mut g);
        }
    }

    #[test]
    fn the_megabyte_amf_bomb_is_refused_on_its_header() {
        // The reproducer: ~1 MB of nested strict arrays as a command message, right
        // after the handshake.
        let bomb = nested(200_000, &[0x0a, 0, 0, 0, 1], &[]);
        assert!(bomb.len() > 1_000_000);
        let wire = raw(&mut ChunkSerializer::new(), AMF0_COMMAND, 0, bomb);
        let mut g = ChunkGuard::new(DEFAULT_MAX_MESSAGE_BYTES);
        // The first chunk's header is enough: nothing is buffered.
        let err = g.check(&wire[..12]).unwrap_err();
        assert!(
            matches!(err, Error::CommandTooLarge { type_id: 20, max, .. } if max == MAX_COMMAND_MESSAGE),
            "{err}"
        );
        assert_eq!(g.body.capacity(), 0);
    }

    #[test]
    fn a_small_deep_message_is_refused_on_the_chunk_that_completes_it() {
        let bomb = nested(1000, &[0x0a, 0, 0, 0, 1], &[]);
        assert!(bomb.len() < 6000, "{}", bomb.len());
        let wire = raw(&mut ChunkSerializer::new(), AMF0_COMMAND, 0, bomb);
        for split in [1, 7, 128, 129] {
            let mut g = ChunkGuard::new(DEFAULT_MAX_MESSAGE_BYTES);
            // Everything but the last byte passes: the message is not complete, so rml_rtmp
            // would not decode it yet.
            feed(&mut g, &wire[..wire.len() - 1], split).unwrap();
            let err = g.check(&wire[wire.len() - 1..]).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::AmfTooDeep {
                        type_id: 20,
                        max: MAX_AMF_DEPTH
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn every_container_kind_counts_and_the_limit_is_exact() {
        let kinds: [(&str, &[u8], &[u8]); 7] = [
            ("object", &[0x03, 0, 1, b'a'], &[0, 0, 9]),
            ("ECMA array", &[0x08, 0, 0, 0, 1, 0, 1, b'a'], &[0, 0, 9]),
            ("strict array", &[0x0a, 0, 0, 0, 1], &[]),
            ("typed object", &[0x10, 0, 1, b'T', 0, 1, b'a'], &[0, 0, 9]),
            // AMF3 behind the switch marker: a dense array of one, then its element.
            ("AMF3 array", &[0x11, 0x09, 0x03, 0x01], &[]),
            // AMF3 dynamic anonymous object with one key; its value comes next.
            (
                "AMF3 object",
                &[0x11, 0x0a, 0x0b, 0x01, 0x03, b'a'],
                &[0x01],
            ),
            (
                "AMF3 dictionary",
                &[0x11, 0x11, 0x03, 0x00, 0x04, 0x01],
                &[],
            ),
        ];
        for (name, open, close) in kinds {
            // Inside AMF3 the innermost value must be AMF3 too, and the switch marker appears
            // only once; build those bodies by hand.
            let body = |depth: usize| {
                if open[0] != 0x11 {
                    return nested(depth, open, close);
                }
                let mut amf =
                    rml_amf0::serialize(&vec![s("connect"), Amf0Value::Number(1.0)]).unwrap();
                amf.push(0x11);
                for _ in 0..depth {
                    amf.extend_from_slice(&open[1..]);
                }
                amf.push(0x01); // AMF3 null
                for _ in 0..depth {
                    amf.extend_from_slice(close);
                }
                amf
            };
            assert_eq!(
                scan(AMF0_COMMAND, &body(MAX_AMF_DEPTH)).unwrap().values,
                3,
                "{name} at the limit"
            );
            let err = scan(AMF0_COMMAND, &body(MAX_AMF_DEPTH + 1)).unwrap_err();
            assert!(matches!(err, Error::AmfTooDeep { .. }), "{name}: {err}");
        }
    }

    /// Random AMF0 values from rml_amf0's own serializer: the scan refuses exactly those
    /// nested deeper than the limit and counts their top-level values.
    #[test]
    fn scan_depth_matches_rml_amf0_values() {
        fn depth(v: &Amf0Value) -> usize {
            match v {
                Amf0Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
                Amf0Value::StrictArray(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
                _ => 0,
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        fn value(next: &mut dyn FnMut(u64) -> u64, budget: usize) -> Amf0Value {
            match next(if budget == 0 { 4 } else { 10 }) {
                0 => Amf0Value::Number(1.5),
                1 => Amf0Value::Utf8String("\u{9}x".repeat(3)),
                2 => Amf0Value::Boolean(true),
                3 => Amf0Value::Null,
                4..=6 => Amf0Value::Object(
                    (0..1 + next(3))
                        .map(|i| (format!("k{i}"), value(next, budget - 1)))
                        .collect(),
                ),
                _ => Amf0Value::StrictArray(
                    (0..1 + next(3)).map(|_| value(next, budget - 1)).collect(),
                ),
            }
        }
        let (mut refused, mut passed) = (0, 0);
        for _ in 0..400 {
            let budget = 20 + next(25) as usize;
            let values: Vec<_> = (0..1 + next(4)).map(|_| value(&mut next, budget)).collect();
            let bytes = rml_amf0::serialize(&values).unwrap();
            let deepest = values.iter().map(depth).max().unwrap_or(0);
            match scan(AMF0_DATA, &bytes) {
                Ok(shape) => {
                    assert!(deepest <= MAX_AMF_DEPTH, "{deepest} passed");
                    assert_eq!(shape.values, values.len());
                    passed += 1;
                }
                Err(_) => {
                    assert!(deepest > MAX_AMF_DEPTH, "{deepest} refused");
                    refused += 1;
                }
            }
        }
        assert!(
            refused > 20 && passed > 20,
            "{refused} refused, {passed} passed"
        );
    }

    #[test]
    fn amf3_messages_are_checked_as_rml_rtmp_and_the_cue_decoder_read_them() {
        let deep = nested(100, &[0x0a, 0, 0, 0, 1], &[]);
        // A command behind AMF3's leading 0 byte.
        let mut body = vec![0];
        body.extend(&deep);
        let wire = raw(&mut ChunkSerializer::new(), AMF3_COMMAND, 0, body.clone());
        let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
        assert!(
            matches!(err, Error::AmfTooDeep { type_id: 17, .. }),
            "{err}"
        );
        // A data message: rml_rtmp reads it from byte 0, the cue decoder from byte 1.
        for first in [vec![], vec![0]] {
            let mut body = first;
            body.extend(&deep);
            let wire = raw(&mut ChunkSerializer::new(), AMF3_DATA, 0, body);
            let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
            assert!(
                matches!(err, Error::AmfTooDeep { type_id: 15, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn messages_rml_rtmp_would_index_out_of_bounds_are_refused() {
        let cases: [(u8, Vec<Amf0Value>); 3] = [
            (AMF0_COMMAND, vec![s("connect"), Amf0Value::Number(1.0)]),
            (AMF0_DATA, vec![s("@setDataFrame")]),
            (AMF0_DATA, vec![s("@setDataFrame"), s("onMetaData")]),
        ];
        for (type_id, values) in cases {
            let body = rml_amf0::serialize(&values).unwrap();
            let wire = raw(&mut ChunkSerializer::new(), type_id, 0, body);
            let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "{values:?}: {err}");
        }
        // Other short data messages are fine (and ignored downstream).
        let body = rml_amf0::serialize(&vec![s("onTextData")]).unwrap();
        let wire = raw(&mut ChunkSerializer::new(), AMF0_DATA, 0, body);
        ChunkGuard::new(1 << 20).check(&wire).unwrap();
    }

    #[test]
    fn interleaved_chunk_streams_are_refused() {
        // csid 4 starts a 300-byte video message (three chunks at 128), then csid 5 sends a
        // command before it is finished.
        let mut wire = vec![0x04, 0, 0, 0, 0, 0x01, 0x2c, VIDEO, 1, 0, 0, 0];
        wire.extend([0x17; 128]);
        wire.extend([0x05, 0, 0, 0, 0, 0, 10, AMF0_COMMAND, 0, 0, 0, 0]);
        wire.extend([0x05; 10]);
        let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
        assert!(
            matches!(err, Error::Protocol(ref m) if m.contains("interleaved")),
            "{err}"
        );
        // A new header on the same stream before the end is refused too.
        let mut wire = vec![0x04, 0, 0, 0, 0, 0x01, 0x2c, VIDEO, 1, 0, 0, 0];
        wire.extend([0x17; 128]);
        wire.extend([0x44, 0, 0, 0, 0, 0, 10, AMF0_COMMAND]);
        assert!(ChunkGuard::new(1 << 20).check(&wire).is_err());
    }

    #[test]
    fn chunk_stream_ids_are_bounded() {
        let mut g = ChunkGuard::new(1 << 20);
        let mut wire = Vec::new();
        for csid in 0..=MAX_CHUNK_STREAMS as u8 {
            // Two-byte basic header (csid 64 + n), zero-length audio.
            wire.extend([0x00, csid, 0, 0, 0, 0, 0, 0, AUDIO, 1, 0, 0, 0]);
        }
        let err = g.check(&wire).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooManyChunkStreams {
                    max: MAX_CHUNK_STREAMS
                }
            ),
            "{err}"
        );
        assert_eq!(g.streams.len(), MAX_CHUNK_STREAMS);
    }

    #[test]
    fn a_small_extended_timestamp_delta_is_refused() {
        // The bytes of the ingest test `a_panic_in_a_session_is_contained`: rml_rtmp
        // subtracts 0xffffff from the extended delta 5 (a panic in debug builds).
        let mut wire = vec![
            0x03, 0xff, 0xff, 0xff, 0, 0, 1, 9, 1, 0, 0, 0, 0x01, 0, 0, 0, 0x17,
        ];
        wire.extend_from_slice(&[0x43, 0xff, 0xff, 0xff, 0, 0, 1, 9, 0, 0, 0, 5, 0x17]);
        let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
        assert!(
            matches!(err, Error::Protocol(ref m) if m.contains("extended")),
            "{err}"
        );
    }

    #[test]
    fn oversize_commands_and_bad_chunk_sizes_are_refused() {
        let mut ser = ChunkSerializer::new();
        let wire = message(&mut ser, AMF0_DATA, 0, MAX_COMMAND_MESSAGE + 1);
        let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
        assert!(
            matches!(err, Error::CommandTooLarge { type_id: 18, .. }),
            "{err}"
        );
        // Control messages too: a "SetChunkSize" of 1 MB.
        let wire = message(&mut ser, SET_CHUNK_SIZE, 0, 1 << 20);
        assert!(ChunkGuard::new(1 << 22).check(&wire).is_err());
        for size in [0u32, 0x8000_0000] {
            let wire = raw(&mut ser, SET_CHUNK_SIZE, 0, size.to_be_bytes().to_vec());
            let err = ChunkGuard::new(1 << 20).check(&wire).unwrap_err();
            assert!(matches!(err, Error::Protocol(_)), "{err}");
        }
    }

    #[test]
    fn rejects_headers_without_history() {
        let mut g = ChunkGuard::new(1000);
        assert!(matches!(g.check(&[0xc3]), Err(Error::Protocol(_))));
    }
}
