//! FLV files: a streaming tag reader and a whole-file reader on top of [`FlvDemuxer`].

use bytes::{Buf, Bytes, BytesMut};
use weir_media::MediaEvent;

use super::demux::{DemuxSettings, FlvDemuxer, StreamHints, TagKind};
use crate::{Error, Result};

const FILE_HEADER: usize = 9;
const TAG_HEADER: usize = 11;
const PREVIOUS_TAG_SIZE: usize = 4;

/// The FLV file header's track flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvHeader {
    pub version: u8,
    pub has_audio: bool,
    pub has_video: bool,
}

impl FlvHeader {
    /// The flags as demuxer hints. Some muxers write both flags as 0; that says nothing.
    pub fn hints(&self) -> StreamHints {
        if !self.has_audio && !self.has_video {
            return StreamHints::default();
        }
        StreamHints {
            video: Some(self.has_video),
            audio: Some(self.has_audio),
        }
    }
}

/// One FLV tag: its type, its 32-bit millisecond timestamp and its body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlvTag {
    pub kind: TagKind,
    pub timestamp_ms: u32,
    pub body: Bytes,
}

#[derive(Debug)]
enum State {
    Header,
    /// Skipping bytes as they arrive: the rest of the header and PreviousTagSize0, or
    /// (`trailer`) the PreviousTagSize after a tag.
    Skip {
        left: u64,
        trailer: bool,
    },
    Tag,
}

/// Splits an FLV byte stream into tags, fed in pieces of any size. Sans-IO.
///
/// Memory grows only with bytes actually pushed, never with a tag's declared `DataSize`:
/// a tag that claims more than the stream holds is reported by [`finish`](Self::finish) as
/// [`Error::Truncated`].
#[derive(Debug)]
pub struct FlvTagReader {
    buf: BytesMut,
    state: State,
    header: Option<FlvHeader>,
    /// Stream offset of `buf[0]`, for error messages.
    offset: u64,
}

impl Default for FlvTagReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvTagReader {
    pub fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            state: State::Header,
            header: None,
            offset: 0,
        }
    }

    /// The file header, once it has been read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete tag, or `None` until more bytes are pushed. Tags of other types
    /// than audio, video and script data are skipped.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>> {
        loop {
            match self.state {
                State::Header => {
                    if self.buf.len() < FILE_HEADER {
                        let seen = &self.buf[..self.buf.len().min(3)];
                        if !b"FLV".starts_with(seen) {
                            return Err(Error::NotFlv(seen.to_vec()));
                        }
                        return Ok(None);
                    }
                    if &self.buf[..3] != b"FLV" {
                        return Err(Error::NotFlv(self.buf[..3].to_vec()));
                    }
                    let flags = self.buf[4];
                    let data_offset =
                        u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]);
                    if (data_offset as usize) < FILE_HEADER {
                        return Err(Error::NotFlv(self.buf[..FILE_HEADER].to_vec()));
                    }
                    self.header = Some(FlvHeader {
                        version: self.buf[3],
                        has_audio: flags & 0x04 != 0,
                        has_video: flags & 0x01 != 0,
                    });
                    self.consume(FILE_HEADER);
                    self.state = State::Skip {
                        left: u64::from(data_offset) - FILE_HEADER as u64
                            + PREVIOUS_TAG_SIZE as u64,
                        trailer: false,
                    };
                }
                State::Skip { left: n, trailer } => {
                    let available = self.buf.len() as u64;
                    if available < n {
                        self.consume(self.buf.len());
                        self.state = State::Skip {
                            left: n - available,
                            trailer,
                        };
                        return Ok(None);
                    }
                    // n <= buf.len(), so it fits in usize.
                    self.consume(usize::try_from(n).unwrap_or(usize::MAX));
                    self.state = State::Tag;
                }
                State::Tag => {
                    if self.buf.len() < TAG_HEADER {
                        return Ok(None);
                    }
                    let h = &self.buf[..TAG_HEADER];
                    if h[0] & 0x20 != 0 {
                        return Err(Error::Encrypted);
                    }
                    let tag_type = h[0] & 0x1f;
                    let size = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
                    let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                    if self.buf.len() < TAG_HEADER + size {
                        return Ok(None);
                    }
                    self.consume(TAG_HEADER);
                    let body = self.buf.split_to(size).freeze();
                    self.offset += size as u64;
                    self.state = State::Skip {
                        left: PREVIOUS_TAG_SIZE as u64,
                        trailer: true,
                    };
                    if let Some(kind) = TagKind::from_flv(tag_type) {
                        return Ok(Some(FlvTag {
                            kind,
                            timestamp_ms,
                            body,
                        }));
                    }
                }
            }
        }
    }

    /// The end of the stream: an error if it stopped inside the header or a tag.
    /// A missing final PreviousTagSize is tolerated.
    pub fn finish(&self) -> Result<()> {
        match self.state {
            State::Header => Err(Error::Truncated(format!(
                "{} bytes, shorter than the 9-byte FLV header",
                self.buf.len()
            ))),
            State::Skip { trailer: true, .. } => Ok(()),
            State::Skip { left, .. } => Err(Error::Truncated(format!(
                "{left} bytes missing from the FLV header"
            ))),
            State::Tag if self.buf.is_empty() => Ok(()),
            State::Tag if self.buf.len() < TAG_HEADER => Err(Error::Truncated(format!(
                "{} bytes at offset {}, too few for an 11-byte tag header",
                self.buf.len(),
                self.offset
            ))),
            State::Tag => {
                let h = &self.buf[..TAG_HEADER];
                let size = usize::from(h[1]) << 16 | usize::from(h[2]) << 8 | usize::from(h[3]);
                Err(Error::Truncated(format!(
                    "tag at offset {} declares {size} bytes of data, {} remain",
                    self.offset,
                    self.buf.len() - TAG_HEADER
                )))
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.offset += n as u64;
    }
}

/// A whole `.flv` file as [`MediaEvent`]s: an iterator that stops at the first error.
///
/// ```no_run
/// # fn main() -> weir_ingest::Result<()> {
/// let bytes = std::fs::read("clip.flv")?;
/// let events = weir_ingest::FlvFile::read_all(&bytes)?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FlvFile {
    reader: FlvTagReader,
    demux: FlvDemuxer,
    done: bool,
}

impl FlvFile {
    /// Reads the header (so that a non-FLV file fails here) and prepares to demux.
    pub fn new(data: &[u8], settings: DemuxSettings) -> Result<Self> {
        let mut reader = FlvTagReader::new();
        reader.push(data);
        let mut demux = FlvDemuxer::new(settings);
        // Reading the first tag parses the header; hand the tag to the demuxer after hints.
        let first = reader.next_tag()?;
        let header = reader.header().ok_or_else(|| {
            Error::Truncated(format!(
                "{} bytes, shorter than the 9-byte FLV header",
                data.len()
            ))
        })?;
        demux.set_hints(header.hints());
        let mut file = Self {
            reader,
            demux,
            done: false,
        };
        if let Some(tag) = first {
            file.demux.push_tag(tag.kind, tag.timestamp_ms, tag.body)?;
        }
        Ok(file)
    }

    /// Every event of the file, or the first error.
    pub fn read_all(data: &[u8]) -> Result<Vec<MediaEvent>> {
        Self::new(data, DemuxSettings::default())?.collect()
    }

    /// The demuxer's counters so far.
    pub fn stats(&self) -> super::demux::DemuxStats {
        self.demux.stats()
    }

    fn step(&mut self) -> Result<bool> {
        match self.reader.next_tag()? {
            Some(tag) => {
                self.demux.push_tag(tag.kind, tag.timestamp_ms, tag.body)?;
                Ok(true)
            }
            None => {
                self.reader.finish()?;
                self.demux.finish();
                Ok(false)
            }
        }
    }
}

impl Iterator for FlvFile {
    type Item = Result<MediaEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.demux.poll_event() {
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            match self.step() {
                Ok(true) => {}
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tag(tag_type: u8, ts: u32, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(body.len()).unwrap();
        let mut v = vec![tag_type];
        v.extend_from_slice(&len.to_be_bytes()[1..]);
        let t = ts.to_be_bytes();
        v.extend_from_slice(&[t[1], t[2], t[3], t[0], 0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&(len + 11).to_be_bytes());
        v
    }

    fn header(flags: u8) -> Vec<u8> {
        let mut v = b"FLV\x01".to_vec();
        v.push(flags);
        v.extend_from_slice(&[0, 0, 0, 9, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn reads_tags_fed_one_byte_at_a_time() {
        let mut file = header(0x05);
        file.extend(tag(8, 0x0102_0304, &[0xAF, 0x00, 0x11, 0x88]));
        file.extend(tag(7, 5, &[1, 2, 3])); // not a known tag type: skipped
        file.extend(tag(18, 0, b"meta"));
        let mut r = FlvTagReader::new();
        let mut tags = Vec::new();
        for b in &file {
            r.push(std::slice::from_ref(b));
            while let Some(t) = r.next_tag().unwrap() {
                tags.push(t);
            }
        }
        r.finish().unwrap();
        assert_eq!(
            r.header(),
            Some(FlvHeader {
                version: 1,
                has_audio: true,
                has_video: true
            })
        );
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].kind, TagKind::Audio);
        assert_eq!(tags[0].timestamp_ms, 0x0102_0304);
        assert_eq!(&tags[0].body[..], &[0xAF, 0x00, 0x11, 0x88]);
        assert_eq!(tags[1].kind, TagKind::Script);
    }

    #[test]
    fn a_lying_data_size_is_truncation_not_an_allocation() {
        let mut file = header(0x04);
        file.extend(tag(8, 0, &[0xAF, 0x00, 0x11, 0x88]));
        // Claims 16 MiB - 1, carries 3 bytes.
        file.extend_from_slice(&[8, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3]);
        let err = FlvFile::read_all(&file).unwrap_err();
        assert!(
            matches!(err, Error::Truncated(ref m) if m.contains("16777215")),
            "{err}"
        );
    }

    #[test]
    fn rejects_what_is_not_flv() {
        assert!(matches!(
            FlvFile::read_all(b"GIF89a...."),
            Err(Error::NotFlv(_))
        ));
        assert!(matches!(FlvFile::read_all(b"FL"), Err(Error::Truncated(_))));
        let mut bad_offset = header(0x05);
        bad_offset[8] = 3;
        assert!(matches!(
            FlvFile::read_all(&bad_offset),
            Err(Error::NotFlv(_))
        ));
        let mut encrypted = header(0x05);
        encrypted.extend(tag(0x28, 0, &[0xAF, 0x00, 0x11, 0x88]));
        assert!(matches!(
            FlvFile::read_all(&encrypted),
            Err(Error::Encrypted)
        ));
    }

    #[test]
    fn header_only_file_is_empty() {
        assert!(FlvFile::read_all(&header(0x05)).unwrap().is_empty());
    }
}
