//! The pre-encoded clip, loaded once and shared by every publisher: FLV tags for RTMP,
//! 1316-byte MPEG-TS messages with their send times for SRT. Nothing is encoded here.

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use bytes::Bytes;
use weir_ingest::flv::{FlvTag, TagKind};
use weir_ingest::FlvTagReader;

const TS_PACKET: usize = 188;
/// Seven TS packets: what libsrt callers (ffmpeg) send per SRT message.
pub const TS_PER_MESSAGE: usize = 7;
const PCR_HZ: u64 = 90_000;

/// The clip's audio and video tags (script tags dropped), timestamps in ms from 0.
#[derive(Debug)]
pub struct FlvClip {
    pub tags: Vec<FlvTag>,
}

impl FlvClip {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut reader = FlvTagReader::new();
        reader.push(&data);
        let mut tags = Vec::new();
        while let Some(tag) = reader.next_tag()? {
            if tag.kind != TagKind::Script {
                tags.push(tag);
            }
        }
        reader.finish()?;
        ensure!(!tags.is_empty(), "{} has no audio or video", path.display());
        Ok(Self { tags })
    }

    pub fn duration(&self) -> Duration {
        let last = self.tags.iter().map(|t| t.timestamp_ms).max().unwrap_or(0);
        Duration::from_millis(u64::from(last))
    }
}

/// One SRT message and when, from the clip's start, an encoder would have sent it.
#[derive(Debug, Clone)]
pub struct TsMessage {
    pub at: Duration,
    pub bytes: Bytes,
}

/// The clip as SRT messages. A message is sent at the time of the last PCR at or before its
/// end: ffmpeg's muxer stamps PCR from the DTS of the frame it is writing, so this paces the
/// messages frame by frame, as a live encoder would.
#[derive(Debug)]
pub struct TsClip {
    pub messages: Vec<TsMessage>,
}

impl TsClip {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let data = Bytes::from(
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        );
        ensure!(
            data.len() >= TS_PACKET && data.len() % TS_PACKET == 0,
            "{}: {} bytes is not a whole number of TS packets",
            path.display(),
            data.len()
        );
        let mut first: Option<u64> = None;
        let mut last = 0u64;
        let mut messages = Vec::with_capacity(data.len() / (TS_PACKET * TS_PER_MESSAGE) + 1);
        for (i, message) in data.chunks(TS_PACKET * TS_PER_MESSAGE).enumerate() {
            for packet in message.chunks(TS_PACKET) {
                ensure!(packet[0] == 0x47, "lost TS sync in message {i}");
                if let Some(pcr) = pcr_base(packet) {
                    let base = *first.get_or_insert(pcr);
                    // 33-bit wrap-around.
                    last = pcr.wrapping_sub(base) & ((1 << 33) - 1);
                }
            }
            let start = i * TS_PACKET * TS_PER_MESSAGE;
            messages.push(TsMessage {
                at: Duration::from_micros(last * 1_000_000 / PCR_HZ),
                bytes: data.slice(start..start + message.len()),
            });
        }
        ensure!(first.is_some(), "{} carries no PCR", path.display());
        Ok(Self { messages })
    }

    pub fn duration(&self) -> Duration {
        self.messages.last().map_or(Duration::ZERO, |m| m.at)
    }
}

/// The 90 kHz base of a packet's PCR, if its adaptation field carries one.
fn pcr_base(p: &[u8]) -> Option<u64> {
    let has_adaptation = p[3] & 0x20 != 0;
    if !has_adaptation || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let b = |i: usize| u64::from(p[i]);
    Some(b(6) << 25 | b(7) << 17 | b(8) << 9 | b(9) << 1 | b(10) >> 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pcr_base() {
        let mut p = [0u8; TS_PACKET];
        p[0] = 0x47;
        p[3] = 0x30;
        p[4] = 7;
        p[5] = 0x10;
        // base = 90_000 (1 s): the top 33 of the 48 bits in bytes 6..12.
        let v: u64 = 90_000 << 15;
        for (i, byte) in p[6..12].iter_mut().enumerate() {
            *byte = (v >> (40 - 8 * i)) as u8;
        }
        assert_eq!(pcr_base(&p), Some(90_000));
        p[5] = 0;
        assert_eq!(pcr_base(&p), None);
    }
}
