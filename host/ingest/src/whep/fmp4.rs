//! Reading weir's own CMAF back into samples, for WHEP: the init segment (track ids,
//! timescales, the `avcC`'s parameter sets, the AAC config) and a part's chunks (`moof` +
//! `mdat`: each sample's track, decode time, sync flag and bytes). mp4-atom parses the
//! boxes; this walks them. Every size and offset is checked: parts can come from an
//! upstream (an edge), and a bad one is an error for that feed, never a panic.

use bytes::Bytes;
use mp4_atom::{Any, Codec as SampleEntry, Decode, DecodeMaybe, Ftyp, Moov};
use weir_media::AacConfig;

/// What a rendition's init segment says about its tracks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Init {
    /// (track id, timescale, SPS and PPS NAL units)
    pub(crate) video: Option<(u32, u32, Vec<Bytes>)>,
    /// (track id, timescale, config)
    pub(crate) audio: Option<(u32, u32, AacConfig)>,
}

pub(crate) fn parse_init(mut buf: &[u8]) -> Result<Init, String> {
    let _ = Ftyp::decode(&mut buf).map_err(|e| format!("init: ftyp: {e}"))?;
    let moov = Moov::decode(&mut buf).map_err(|e| format!("init: moov: {e}"))?;
    let mut init = Init::default();
    for trak in &moov.trak {
        let id = trak.tkhd.track_id;
        let timescale = trak.mdia.mdhd.timescale;
        match trak.mdia.minf.stbl.stsd.codecs.first() {
            Some(SampleEntry::Avc1(avc1)) if init.video.is_none() => {
                let params = avc1
                    .avcc
                    .sequence_parameter_sets
                    .iter()
                    .chain(&avc1.avcc.picture_parameter_sets)
                    .map(|p| Bytes::copy_from_slice(p))
                    .collect();
                init.video = Some((id, timescale, params));
            }
            Some(SampleEntry::Mp4a(mp4a)) if init.audio.is_none() => {
                let Some(ds) = mp4a.esds.es_desc.dec_config.dec_specific.as_ref() else {
                    continue;
                };
                if let Some(config) = AacConfig::from_asc(Bytes::copy_from_slice(&ds.raw)) {
                    init.audio = Some((id, timescale, config));
                }
            }
            _ => {}
        }
    }
    Ok(init)
}

/// One sample of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkSample {
    pub(crate) track_id: u32,
    /// Decode time in the track's timescale.
    pub(crate) dts: u64,
    pub(crate) keyframe: bool,
    pub(crate) data: Bytes,
}

/// ISO/IEC 14496-12 8.8.3.1: `sample_is_non_sync_sample`.
const NON_SYNC: u32 = 0x0001_0000;

/// The samples of `buf`: one or more `moof` + `mdat` pairs (anything else is skipped).
pub(crate) fn parse_chunks(buf: &Bytes) -> Result<Vec<ChunkSample>, String> {
    let mut out = Vec::new();
    let mut rest: &[u8] = buf;
    while !rest.is_empty() {
        let start = buf.len() - rest.len();
        let atom = match Any::decode_maybe(&mut rest) {
            Ok(Some(a)) => a,
            Ok(None) => return Err("chunk: truncated box".into()),
            Err(e) => return Err(format!("chunk: {e}")),
        };
        let Any::Moof(moof) = atom else {
            continue;
        };
        for traf in &moof.traf {
            let Some(trun) = traf.trun.first() else {
                continue;
            };
            let mut dts = traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time);
            let offset = trun.data_offset.unwrap_or(0);
            let mut at = usize::try_from(i64::try_from(start).unwrap_or(0) + i64::from(offset))
                .map_err(|_| "chunk: negative data offset".to_owned())?;
            for (i, entry) in trun.samples.iter().enumerate() {
                let size = entry
                    .size
                    .or(traf.tfhd.default_sample_size)
                    .ok_or("chunk: a sample without a size")?;
                let size = usize::try_from(size).map_err(|_| "chunk: sample size")?;
                let end = at.checked_add(size).ok_or("chunk: sample size")?;
                if end > buf.len() {
                    return Err(format!(
                        "chunk: sample {i} runs past the data ({end} > {})",
                        buf.len()
                    ));
                }
                let flags = entry.flags.or(traf.tfhd.default_sample_flags).unwrap_or(0);
                out.push(ChunkSample {
                    track_id: traf.tfhd.track_id,
                    dts,
                    keyframe: flags & NON_SYNC == 0,
                    data: buf.slice(at..end),
                });
                at = end;
                let duration = entry
                    .duration
                    .or(traf.tfhd.default_sample_duration)
                    .unwrap_or(0);
                dts = dts.saturating_add(u64::from(duration));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_init(&[]).is_err());
        assert!(parse_init(&[0, 0, 0, 8, b'f', b't', b'y', b'p']).is_err());
        assert!(parse_chunks(&Bytes::from_static(&[
            0, 0, 0, 9, b'm', b'o', b'o', b'f', 0
        ]))
        .is_err());
        assert!(parse_chunks(&Bytes::new()).unwrap().is_empty());
    }
}
