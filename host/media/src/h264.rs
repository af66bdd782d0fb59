//! H.264 bitstream helpers shared by every stage that reads or writes H.264: Annex B byte
//! streams (MPEG-TS, encoders' output) → the 4-byte length-prefixed NAL units of
//! [`Sample::data`](crate::Sample::data) and back, the `avcC` built from in-band SPS/PPS, and
//! the picture size an `avcC` declares.
//!
//! Ingest (FLV and MPEG-TS demux) and the encoder (its decoder's input, its encoders' output)
//! both use them, so they live here rather than in either. Pure functions: no IO, no clock.
//!
//! ```
//! use weir_media::h264;
//!
//! // One IDR slice behind an access unit delimiter, as an encoder writes it.
//! let au = h264::access_unit(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0xaa]);
//! assert!(au.keyframe);
//! assert_eq!(&au.data[..], &[0, 0, 0, 2, 0x65, 0xaa]);
//! assert_eq!(&h264::to_annex_b(&[], &au.data, false)[..], &[0, 0, 0, 1, 0x65, 0xaa]);
//! ```

use bytes::{BufMut, Bytes, BytesMut};
use h264_reader::avcc::AvcDecoderConfigurationRecord;
use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::nal::{Nal, RefNal};

use crate::H264Config;

const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// One access unit, rewritten for `Sample::data`.
#[derive(Debug, Default)]
pub struct AccessUnit {
    /// NAL units with 4-byte big-endian lengths; access unit delimiters removed.
    pub data: Bytes,
    pub keyframe: bool,
    /// The first SPS and PPS in the access unit, if any.
    pub sps: Option<Bytes>,
    pub pps: Option<Bytes>,
}

/// The NAL units of an Annex B byte stream: the bytes between start codes (`00 00 01`, with
/// any leading zeros), without trailing zero bytes. Bytes before the first start code are not
/// a NAL unit and are skipped.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = find_start_code(data, 0).map(|(_, end)| end);
    std::iter::from_fn(move || loop {
        let start = pos?;
        let (nal_end, next) = match find_start_code(data, start) {
            Some((sc, end)) => (sc, Some(end)),
            None => (data.len(), None),
        };
        pos = next;
        let mut nal = &data[start..nal_end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            return Some(nal);
        }
    })
}

/// The next `00 00 01` at or after `from`: (its first byte, the byte after it).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let tail = data.get(from..)?;
    tail.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|i| (from + i, from + i + 3))
}

/// Rewrites an Annex B access unit into 4-byte length-prefixed NAL units.
pub fn access_unit(annex_b: &[u8]) -> AccessUnit {
    let mut out = BytesMut::with_capacity(annex_b.len() + 16);
    let mut au = AccessUnit::default();
    for nal in nal_units(annex_b) {
        let nal_type = nal[0] & 0x1f;
        match nal_type {
            NAL_AUD => continue,
            NAL_IDR => au.keyframe = true,
            NAL_SPS if au.sps.is_none() => au.sps = Some(Bytes::copy_from_slice(nal)),
            NAL_PPS if au.pps.is_none() => au.pps = Some(Bytes::copy_from_slice(nal)),
            _ => {}
        }
        // A NAL unit inside one PES is far below 4 GiB.
        out.put_u32(u32::try_from(nal.len()).unwrap_or(u32::MAX));
        out.extend_from_slice(nal);
    }
    au.data = out.freeze();
    au
}

/// The parameter sets a stream carries in band (MPEG-TS, RTP) and the `avcC` they make,
/// followed access unit by access unit: a new SPS/PPS pair replaces the config only when it
/// makes a usable one.
#[derive(Debug, Default, Clone)]
pub struct InBandParams {
    params: Option<(Bytes, Bytes)>,
    config: Option<H264Config>,
}

impl InBandParams {
    /// Takes `au`'s SPS and PPS when it carries both and they are not the ones in use.
    /// `Err`: they make no usable `avcC` (the config in use stays).
    pub fn update(&mut self, au: &AccessUnit) -> Result<(), String> {
        let (Some(sps), Some(pps)) = (&au.sps, &au.pps) else {
            return Ok(());
        };
        if self
            .params
            .as_ref()
            .is_some_and(|(s, p)| s == sps && p == pps)
        {
            return Ok(());
        }
        self.config = Some(config(sps, pps)?);
        self.params = Some((sps.clone(), pps.clone()));
        Ok(())
    }

    /// The config in use, once a stream has shown its parameter sets.
    pub fn config(&self) -> Option<&H264Config> {
        self.config.as_ref()
    }
}

/// Builds the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) for one SPS and PPS,
/// the way ffmpeg's muxers write it: profile, compatibility and level copied from the SPS,
/// 4-byte NAL lengths, and the chroma/bit-depth extension for the profiles that carry it.
/// Width and height come from the SPS, through the FLV demuxer's avcC parser, so a record
/// that does not round-trip is refused.
pub fn config(sps: &[u8], pps: &[u8]) -> Result<H264Config, String> {
    let (Some(&[_, profile, compat, level]), Ok(sps_len), Ok(pps_len)) = (
        sps.get(..4),
        u16::try_from(sps.len()),
        u16::try_from(pps.len()),
    ) else {
        return Err(format!(
            "SPS of {} bytes / PPS of {} bytes",
            sps.len(),
            pps.len()
        ));
    };
    if pps.is_empty() {
        return Err("empty PPS".to_owned());
    }
    let parsed = SeqParameterSet::from_bits(RefNal::new(sps, &[], true).rbsp_bits())
        .map_err(|e| format!("SPS: {e:?}"))?;
    let mut avcc = BytesMut::with_capacity(16 + sps.len() + pps.len());
    avcc.put_u8(1);
    avcc.put_u8(profile);
    avcc.put_u8(compat);
    avcc.put_u8(level);
    avcc.put_u8(0xfc | 3); // lengthSizeMinusOne = 3
    avcc.put_u8(0xe0 | 1); // one SPS
    avcc.put_u16(sps_len);
    avcc.extend_from_slice(sps);
    avcc.put_u8(1); // one PPS
    avcc.put_u16(pps_len);
    avcc.extend_from_slice(pps);
    if parsed.profile_idc.has_chroma_info() {
        let chroma = &parsed.chroma_info;
        avcc.put_u8(0xfc | (chroma.chroma_format.to_u32() & 3) as u8);
        avcc.put_u8(0xf8 | (chroma.bit_depth_luma_minus8 & 7));
        avcc.put_u8(0xf8 | (chroma.bit_depth_chroma_minus8 & 7));
        avcc.put_u8(0); // no SPS extensions
    }
    let avcc = avcc.freeze();
    // Worded as ingest words a bad FLV sequence header, which this message used to be.
    let (width, height, _) =
        parse_avcc(&avcc).map_err(|e| format!("invalid AVC sequence header: {e}"))?;
    Ok(H264Config {
        avcc,
        width,
        height,
    })
}

/// The picture size and NAL length size (1, 2 or 4 bytes) an `avcC` record declares, from
/// its first SPS. A record that does not parse, has no SPS, an empty one or 3-byte NAL lengths
/// is refused with what was wrong.
pub fn parse_avcc(avcc: &[u8]) -> Result<(u16, u16, u8), String> {
    let record = AvcDecoderConfigurationRecord::try_from(avcc)
        .map_err(|e| format!("avcC does not parse: {e:?}"))?;
    let length_size = record.length_size_minus_one() + 1;
    if length_size == 3 {
        return Err("NAL length size 3".to_owned());
    }
    let sps = record
        .sequence_parameter_sets()
        .next()
        .ok_or_else(|| "no SPS in avcC".to_owned())?
        .map_err(|e| format!("SPS: {e:?}"))?;
    // h264-reader's RefNal panics on an empty NAL (found by the flv_demux fuzz target).
    if sps.is_empty() {
        return Err("empty SPS in avcC".to_owned());
    }
    let nal = RefNal::new(sps, &[], true);
    let sps = SeqParameterSet::from_bits(nal.rbsp_bits()).map_err(|e| format!("SPS: {e:?}"))?;
    let (w, h) = sps
        .pixel_dimensions()
        .map_err(|e| format!("SPS dimensions: {e:?}"))?;
    let width = u16::try_from(w).map_err(|_| format!("width {w}"))?;
    let height = u16::try_from(h).map_err(|_| format!("height {h}"))?;
    Ok((width, height, length_size))
}

/// Length-prefixed NAL units (4-byte lengths) → Annex B, with the `avcC`'s SPS and PPS in
/// front when `with_params` (a keyframe), so the decoder needs no extradata.
pub fn to_annex_b(avcc: &[u8], data: &[u8], with_params: bool) -> Bytes {
    const START: [u8; 4] = [0, 0, 0, 1];
    let mut out = Vec::with_capacity(data.len() + 64);
    if with_params {
        for ps in parameter_sets(avcc) {
            out.extend_from_slice(&START);
            out.extend_from_slice(ps);
        }
    }
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else {
            break;
        };
        out.extend_from_slice(&START);
        out.extend_from_slice(nal);
        rest = &rest[4 + len..];
    }
    Bytes::from(out)
}

/// The SPS and PPS NAL units in an `avcC` record.
pub fn parameter_sets(avcc: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let Some(&n_sps) = avcc.get(5) else {
        return out;
    };
    let mut pos = 6;
    let mut take = |count: usize, pos: &mut usize| {
        for _ in 0..count {
            let Some(len) = avcc.get(*pos..*pos + 2) else {
                return;
            };
            let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
            let Some(ps) = avcc.get(*pos + 2..*pos + 2 + len) else {
                return;
            };
            out.push(ps);
            *pos += 2 + len;
        }
    };
    take(usize::from(n_sps & 0x1f), &mut pos);
    let n_pps = avcc.get(pos).copied().unwrap_or(0);
    pos += 1;
    take(usize::from(n_pps), &mut pos);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_with_parameter_sets() {
        let avcc = [
            1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, 2, 0x67, 1, 1, 0, 2, 0x68, 2,
        ];
        let data = [0, 0, 0, 2, 0x65, 9, 0, 0, 0, 1, 0x06];
        let out = to_annex_b(&avcc, &data, true);
        assert_eq!(
            &out[..],
            &[0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 9, 0, 0, 0, 1, 6]
        );
        // Back again: the same NAL units, length-prefixed, parameter sets found.
        let au = access_unit(&out);
        assert_eq!(&au.data[12..], &data[..]);
        assert_eq!(au.sps.as_deref(), Some(&[0x67, 1][..]));
        // A lying length stops the conversion instead of reading past the end.
        let out = to_annex_b(&avcc, &[0, 0, 0, 9, 0x65], false);
        assert!(out.is_empty());
        assert!(parameter_sets(&[1, 2]).is_empty());
    }

    #[test]
    fn splits_on_three_and_four_byte_start_codes() {
        let data = [
            0xff, 0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 0, 1, 0x65, 0xaa, 0, 0,
        ];
        let nals: Vec<&[u8]> = nal_units(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x09, 0xf0][..], &[0x67, 1, 2][..], &[0x65, 0xaa][..]]
        );
        assert_eq!(nal_units(&[0, 0, 0, 0]).count(), 0);
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
    }

    #[test]
    fn access_unit_drops_delimiters_and_finds_idr() {
        let au = access_unit(&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0xaa]);
        assert!(au.keyframe);
        assert_eq!(&au.data[..], &[0, 0, 0, 2, 0x65, 0xaa]);
        let au = access_unit(&[0, 0, 1, 0x41, 0xbb]);
        assert!(!au.keyframe);
    }

    #[test]
    fn rejects_garbage_parameter_sets() {
        assert!(config(&[0x67], &[0x68]).is_err());
        assert!(config(&[0x67, 0x64, 0, 0x0d, 0xff, 0xff], &[0x68, 1]).is_err());
        assert!(config(&[0x67, 0x64, 0, 0x0d], &[]).is_err());
    }
}
