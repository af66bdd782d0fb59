//! AAC in MPEG-TS: ADTS frames (ISO/IEC 13818-7 6.2 / 14496-3 1.A.2).

use bytes::Bytes;
use weir_media::AacConfig;

/// One ADTS frame: its raw AAC payload and the configuration its header describes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AdtsFrame<'a> {
    pub config: [u8; 2],
    pub raw: &'a [u8],
}

impl AdtsFrame<'_> {
    /// The AudioSpecificConfig for this frame's header, if the library accepts it.
    pub fn aac_config(&self) -> Option<AacConfig> {
        AacConfig::from_asc(Bytes::copy_from_slice(&self.config))
    }
}

/// What one PES payload held.
#[derive(Debug, Default)]
pub(crate) struct Frames<'a> {
    pub frames: Vec<AdtsFrame<'a>>,
    /// Headers that did not parse, frames that ran past the end, bytes skipped to find a
    /// sync word, frames with several raw data blocks.
    pub errors: u64,
}

/// Splits a PES payload into ADTS frames. A damaged header or a frame that runs past the end
/// counts one error; the scan then looks for the next sync word.
pub(crate) fn frames(mut data: &[u8]) -> Frames<'_> {
    let mut out = Frames::default();
    let mut skipping = false;
    while !data.is_empty() {
        match header(data) {
            Some((header_len, frame_len, blocks, config)) if frame_len <= data.len() => {
                skipping = false;
                if blocks == 0 {
                    out.frames.push(AdtsFrame {
                        config,
                        raw: &data[header_len..frame_len],
                    });
                } else {
                    // Several raw_data_blocks in one frame cannot be one MP4 sample.
                    out.errors += 1;
                }
                data = &data[frame_len..];
            }
            _ => {
                if !skipping {
                    out.errors += 1;
                    skipping = true;
                }
                // Resume at the next plausible sync word.
                let next = data
                    .windows(2)
                    .skip(1)
                    .position(|w| w[0] == 0xff && w[1] & 0xf6 == 0xf0)
                    .map_or(data.len(), |i| i + 1);
                data = &data[next..];
            }
        }
    }
    out
}

/// (header length, frame length, number_of_raw_data_blocks_in_frame, AudioSpecificConfig).
fn header(d: &[u8]) -> Option<(usize, usize, u8, [u8; 2])> {
    let h = d.get(..7)?;
    // Sync word, and layer 0.
    if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
        return None;
    }
    let protection_absent = h[1] & 1 == 1;
    let profile = h[2] >> 6;
    let freq_index = (h[2] >> 2) & 0x0f;
    let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
    let frame_len =
        (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    let blocks = h[6] & 0x03;
    let header_len = if protection_absent { 7 } else { 9 };
    if freq_index > 12 || frame_len <= header_len {
        return None;
    }
    let object_type = profile + 1;
    let asc = [
        (object_type << 3) | (freq_index >> 1),
        ((freq_index & 1) << 7) | (channels << 3),
    ];
    Some((header_len, frame_len, blocks, asc))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// An ADTS header for AAC-LC 48 kHz stereo around `payload`.
    pub(crate) fn adts(payload: &[u8]) -> Vec<u8> {
        let len = payload.len() + 7;
        let mut v = vec![
            0xff,
            0xf1,
            (1 << 6) | (3 << 2),
            (2 << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            ((len as u8 & 7) << 5) | 0x1f,
            0xfc,
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn splits_frames_and_builds_the_config() {
        let mut pes = adts(&[1, 2, 3]);
        pes.extend(adts(&[4, 5]));
        let f = frames(&pes);
        assert_eq!(f.errors, 0);
        assert_eq!(f.frames.len(), 2);
        assert_eq!(f.frames[0].raw, &[1, 2, 3]);
        assert_eq!(f.frames[1].raw, &[4, 5]);
        let c = f.frames[0].aac_config().unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48_000, 2));
        assert_eq!(&c.asc[..], &[0x11, 0x90]);
    }

    #[test]
    fn resyncs_after_garbage_and_counts_truncation() {
        let mut pes = vec![0x00, 0x12, 0xff];
        pes.extend(adts(&[9]));
        pes.extend(&adts(&[7, 7, 7])[..8]);
        let f = frames(&pes);
        assert_eq!(f.frames.len(), 1);
        assert_eq!(f.frames[0].raw, &[9]);
        assert_eq!(f.errors, 2);
        assert_eq!(frames(&[0xff; 40]).frames.len(), 0);
    }
}
