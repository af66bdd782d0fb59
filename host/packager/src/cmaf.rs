//! CMAF box writers: the init segment (`ftyp`+`moov`), the `styp` that opens a segment, and
//! one chunk (`moof`+`mdat`). They write into a `Vec<u8>` and know nothing about cutting.

use bytes::Bytes;
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Atom, Audio, Avc1, Avcc, Codec as SampleEntry, Dinf, Dref, DrefEntry, Encode, Esds, FixedPoint,
    FourCC, Ftyp, Hdlr, Mdhd, Mdia, Minf, Moov, Mp4a, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Styp,
    Tkhd, Trak, Trex, Url, Visual, Vmhd,
};
use weir_media::{AacConfig, Codec, H264Config, Track};

use crate::{Error, Result};

/// `sample_depends_on = 2` (an I-frame): a sync sample.
pub(crate) const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub(crate) const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// A sample whose duration is known, ready to be written.
#[derive(Clone, Debug)]
pub(crate) struct ReadySample {
    /// Decode time in the track's timescale, on the packager's (non-negative) timeline.
    pub decode_time: u64,
    pub duration: u32,
    pub cts_offset: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// The samples of one track in one chunk. `samples` is non-empty and contiguous in time.
#[derive(Clone, Copy)]
pub(crate) struct TrackRun<'a> {
    pub track_id: u32,
    pub samples: &'a [ReadySample],
}

/// Writes `ftyp` + `moov` for `tracks`; track `i` gets track id `i + 1`.
pub(crate) fn write_init(tracks: &[Track], out: &mut Vec<u8>) -> Result<()> {
    Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"iso6"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"cmf2"),
        ],
    }
    .encode(out)?;

    let mut trak = Vec::with_capacity(tracks.len());
    let mut trex = Vec::with_capacity(tracks.len());
    for (index, track) in tracks.iter().enumerate() {
        let track_id = track_id(index)?;
        trak.push(write_trak(index, track_id, track)?);
        trex.push(Trex {
            track_id,
            default_sample_description_index: 1,
            ..Trex::default()
        });
    }
    Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: track_id(tracks.len())?,
            ..Mvhd::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak,
        ..Moov::default()
    }
    .encode(out)?;
    Ok(())
}

pub(crate) fn track_id(index: usize) -> Result<u32> {
    u32::try_from(index + 1).map_err(|_| Error::InvalidTrack {
        track: index,
        reason: "too many tracks".into(),
    })
}

fn write_trak(index: usize, track_id: u32, track: &Track) -> Result<Trak> {
    if track.timescale == 0 {
        return Err(Error::InvalidTrack {
            track: index,
            reason: "timescale is 0".into(),
        });
    }
    let (handler, name, entry, vmhd, smhd, width, height, volume) = match &track.codec {
        Codec::H264(h264) => (
            b"vide",
            "VideoHandler",
            avc1(index, h264)?,
            Some(Vmhd::default()),
            None,
            h264.width,
            h264.height,
            0,
        ),
        Codec::Aac(aac) => (
            b"soun",
            "SoundHandler",
            mp4a(track_id, aac),
            None,
            Some(Smhd::default()),
            0,
            0,
            1,
        ),
    };
    Ok(Trak {
        tkhd: Tkhd {
            track_id,
            enabled: true,
            in_movie: true,
            volume: volume.into(),
            width: width.into(),
            height: height.into(),
            ..Tkhd::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: track.timescale,
                language: "und".into(),
                ..Mdhd::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: name.into(),
            },
            minf: Minf {
                vmhd,
                smhd,
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![DrefEntry::Url(Url::default())],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![entry],
                    },
                    stco: Some(Stco::default()),
                    ..Stbl::default()
                },
                ..Minf::default()
            },
        },
        ..Trak::default()
    })
}

fn avc1(index: usize, h264: &H264Config) -> Result<SampleEntry> {
    let avcc = Avcc::decode_body(&mut h264.avcc.as_ref()).map_err(|e| Error::InvalidTrack {
        track: index,
        reason: format!("bad AVCDecoderConfigurationRecord: {e}"),
    })?;
    if avcc.length_size != 4 {
        // Sample::data is documented as 4-byte length-prefixed NAL units.
        return Err(Error::InvalidTrack {
            track: index,
            reason: format!("avcC NAL length size {} (want 4)", avcc.length_size),
        });
    }
    Ok(Avc1 {
        visual: Visual {
            data_reference_index: 1,
            width: h264.width,
            height: h264.height,
            ..Visual::default()
        },
        avcc,
        btrt: None,
        colr: None,
        pasp: None,
        taic: None,
        fiel: None,
        spatial: None,
    }
    .into())
}

fn mp4a(track_id: u32, aac: &AacConfig) -> SampleEntry {
    // The sample entry's rate is 16.16 fixed point: rates above 65535 Hz do not fit and
    // decoders read the real rate from the AudioSpecificConfig anyway.
    let rate = u16::try_from(aac.sample_rate).unwrap_or(0);
    let channels = if aac.channels == 0 { 2 } else { aac.channels };
    let asc = aac.asc.as_ref();
    let freq_index = match (asc.first(), asc.get(1)) {
        (Some(a), Some(b)) => ((a & 0x07) << 1) | (b >> 7),
        _ => 0,
    };
    Mp4a {
        audio: Audio {
            data_reference_index: 1,
            channel_count: u16::from(channels),
            sample_size: 16,
            sample_rate: FixedPoint::new(rate, 0),
        },
        esds: Esds {
            es_desc: EsDescriptor {
                es_id: u16::try_from(track_id).unwrap_or(0),
                dec_config: DecoderConfig {
                    object_type_indication: 0x40, // MPEG-4 audio
                    stream_type: 0x05,            // audio stream
                    dec_specific: Some(DecoderSpecific {
                        profile: aac.object_type,
                        freq_index,
                        chan_conf: aac.channels,
                        raw: asc.to_vec(),
                    }),
                    ..DecoderConfig::default()
                },
                sl_config: SLConfig::default(),
                ..EsDescriptor::default()
            },
        },
        btrt: None,
        taic: None,
    }
    .into()
}

/// Writes the `styp` that opens a segment (its first part's first chunk).
pub(crate) fn write_styp(out: &mut Vec<u8>) -> Result<()> {
    Styp {
        major_brand: FourCC::new(b"msdh"),
        minor_version: 0,
        compatible_brands: vec![
            FourCC::new(b"msdh"),
            FourCC::new(b"msix"),
            FourCC::new(b"cmfs"),
            FourCC::new(b"cmfc"),
            FourCC::new(b"iso6"),
        ],
    }
    .encode(out)?;
    Ok(())
}

/// Writes one CMAF chunk: a `moof` with one `traf` per run, then one `mdat` holding the runs'
/// sample data in the same order.
///
/// The boxes are written by hand, byte for byte what mp4-atom encodes for the same `Moof`
/// (`tests::chunk_matches_mp4_atom` holds the two together): a chunk is written for every
/// video frame, and building mp4-atom's `Moof` (a `Vec` of `Traf`, each with a `Vec` of
/// `Trun` and one of entries) and encoding it twice to learn the data offsets cost more than
/// copying the frame. `out` grows once, by exactly the chunk's size, so the sample data is
/// copied once.
/// `runs` is walked three times (sizes, boxes, data), so the caller needs no `Vec` of them.
pub(crate) fn write_chunk<'a>(
    sequence: u32,
    runs: impl Iterator<Item = TrackRun<'a>> + Clone,
    out: &mut Vec<u8>,
) -> Result<()> {
    let moof_len: u64 = 8 + MFHD_LEN + runs.clone().map(|r| traf_len(r.samples.len())).sum::<u64>();
    let data_len: u64 = runs
        .clone()
        .flat_map(|r| r.samples)
        .map(|s| s.data.len() as u64)
        .sum();
    let too_large = |kind: &[u8; 4]| Error::Box(mp4_atom::Error::TooLarge(FourCC::new(kind)));
    let moof_size = u32::try_from(moof_len).map_err(|_| too_large(b"moof"))?;
    let mdat_size = u32::try_from(8 + data_len).map_err(|_| too_large(b"mdat"))?;
    // trun.data_offset counts from the start of the moof (default-base-is-moof).
    if i32::try_from(moof_len + 8 + data_len).is_err() {
        return Err(too_large(b"moof"));
    }
    out.reserve_exact(usize::try_from(moof_len + 8 + data_len).map_err(|_| too_large(b"mdat"))?);

    put_header(out, moof_size, b"moof");
    put_header(out, 16, b"mfhd");
    out.extend_from_slice(&0u32.to_be_bytes()); // version 0, no flags
    out.extend_from_slice(&sequence.to_be_bytes());
    let mut data_offset = moof_len + 8;
    for run in runs.clone() {
        let n = run.samples.len();
        // Checked above: the whole chunk fits a u32 and its data offsets an i32.
        let traf_size = traf_len(n) as u32;
        put_header(out, traf_size, b"traf");
        put_header(out, 16, b"tfhd");
        out.extend_from_slice(&TFHD_DEFAULT_BASE_IS_MOOF.to_be_bytes()); // version 0
        out.extend_from_slice(&run.track_id.to_be_bytes());
        put_header(out, 20, b"tfdt");
        out.extend_from_slice(&0x0100_0000u32.to_be_bytes()); // version 1
        let base = run.samples.first().map_or(0, |s| s.decode_time);
        out.extend_from_slice(&base.to_be_bytes());
        // mp4-atom's choice: with a single sample, whose flags are then the first sample's
        // flags, the entries carry no flags field.
        let first_only = n == 1;
        let flags = TRUN_DATA_OFFSET
            | TRUN_DURATION
            | TRUN_SIZE
            | TRUN_CTS
            | if first_only {
                TRUN_FIRST_SAMPLE_FLAGS
            } else {
                TRUN_SAMPLE_FLAGS
            };
        put_header(out, trun_len(n) as u32, b"trun");
        out.extend_from_slice(&(0x0100_0000 | flags).to_be_bytes()); // version 1
        out.extend_from_slice(&(n as u32).to_be_bytes());
        out.extend_from_slice(&(data_offset as u32).to_be_bytes());
        if let Some(first) = run.samples.first().filter(|_| first_only) {
            out.extend_from_slice(&sample_flags(first).to_be_bytes());
        }
        for sample in run.samples {
            out.extend_from_slice(&sample.duration.to_be_bytes());
            out.extend_from_slice(&(sample.data.len() as u32).to_be_bytes());
            if !first_only {
                out.extend_from_slice(&sample_flags(sample).to_be_bytes());
            }
            out.extend_from_slice(&sample.cts_offset.to_be_bytes());
        }
        data_offset += run.samples.iter().map(|s| s.data.len() as u64).sum::<u64>();
    }

    put_header(out, mdat_size, b"mdat");
    for run in runs {
        for sample in run.samples {
            out.extend_from_slice(&sample.data);
        }
    }
    Ok(())
}

/// `mfhd`: header, version and flags, sequence number.
const MFHD_LEN: u64 = 16;
const TFHD_DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;
const TRUN_DATA_OFFSET: u32 = 0x001;
const TRUN_FIRST_SAMPLE_FLAGS: u32 = 0x004;
const TRUN_DURATION: u32 = 0x100;
const TRUN_SIZE: u32 = 0x200;
const TRUN_SAMPLE_FLAGS: u32 = 0x400;
const TRUN_CTS: u32 = 0x800;

/// `traf` of `n` samples: header, `tfhd` (16), `tfdt` version 1 (20), `trun`.
fn traf_len(n: usize) -> u64 {
    8 + 16 + 20 + trun_len(n)
}

/// `trun` of `n` samples: header, version and flags, count, data offset, then duration,
/// size and composition offset per sample, with flags per sample, or once for a single one.
fn trun_len(n: usize) -> u64 {
    let n = n as u64;
    if n == 1 {
        8 + 4 + 4 + 4 + 4 + 12
    } else {
        8 + 4 + 4 + 4 + 16 * n
    }
}

fn put_header(out: &mut Vec<u8>, size: u32, kind: &[u8; 4]) {
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(kind);
}

fn sample_flags(sample: &ReadySample) -> u32 {
    if sample.keyframe {
        SYNC_SAMPLE_FLAGS
    } else {
        NON_SYNC_SAMPLE_FLAGS
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mp4_atom::{Any, Decode, TrunEntry};

    /// A minimal but well-formed avcC (Baseline, one SPS, one PPS, 4-byte lengths).
    pub(crate) const TEST_AVCC: &[u8] = &[
        0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1e, 0x01, 0x00, 0x02,
        0x68, 0xce,
    ];

    pub(crate) fn video_track() -> Track {
        Track {
            timescale: 90_000,
            codec: Codec::H264(H264Config {
                avcc: Bytes::from_static(TEST_AVCC),
                width: 320,
                height: 240,
            }),
        }
    }

    pub(crate) fn audio_track() -> Track {
        let aac = AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap();
        Track {
            timescale: 48_000,
            codec: Codec::Aac(aac),
        }
    }

    #[test]
    fn init_segment_round_trips() {
        let mut out = Vec::new();
        write_init(&[video_track(), audio_track()], &mut out).unwrap();
        let mut buf = out.as_slice();
        let ftyp = Ftyp::decode(&mut buf).unwrap();
        assert_eq!(ftyp.major_brand, FourCC::new(b"iso6"));
        let moov = Moov::decode(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.mvex.unwrap().trex.len(), 2);
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, 90_000);
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48_000);
        match &moov.trak[0].mdia.minf.stbl.stsd.codecs[0] {
            SampleEntry::Avc1(avc1) => {
                let mut avcc = Vec::new();
                avc1.avcc.encode_body(&mut avcc).unwrap();
                assert_eq!(avcc, TEST_AVCC, "avcC survives byte for byte");
                assert_eq!((avc1.visual.width, avc1.visual.height), (320, 240));
            }
            other => panic!("{other:?}"),
        }
        match &moov.trak[1].mdia.minf.stbl.stsd.codecs[0] {
            SampleEntry::Mp4a(mp4a) => {
                let ds = mp4a.esds.es_desc.dec_config.dec_specific.as_ref().unwrap();
                assert_eq!(ds.raw, [0x11, 0x90]);
                assert_eq!((ds.profile, ds.freq_index, ds.chan_conf), (2, 3, 2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_garbage_avcc() {
        let mut track = video_track();
        track.codec = Codec::H264(H264Config {
            avcc: Bytes::from_static(&[0x01, 0x42]),
            width: 1,
            height: 1,
        });
        let err = write_init(&[track], &mut Vec::new()).unwrap_err();
        assert!(matches!(err, Error::InvalidTrack { track: 0, .. }), "{err}");
    }

    fn sample(t: u64, d: u32, key: bool, cts: i32, len: usize) -> ReadySample {
        ReadySample {
            decode_time: t,
            duration: d,
            cts_offset: cts,
            keyframe: key,
            data: Bytes::from(vec![key as u8; len]),
        }
    }

    /// The mp4-atom encoding of a chunk, as `write_chunk` wrote it before it wrote boxes by
    /// hand: the reference it must match byte for byte.
    fn write_chunk_with_mp4_atom(sequence: u32, runs: &[TrackRun<'_>]) -> Vec<u8> {
        use mp4_atom::{Mfhd, Moof, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples};
        let traf = |run: &TrackRun<'_>| Traf {
            tfhd: Tfhd {
                track_id: run.track_id,
                default_base_is_moof: true,
                ..Tfhd::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: run.samples.first().map_or(0, |s| s.decode_time),
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(
                    run.samples
                        .iter()
                        .map(|s| TrunEntry {
                            duration: Some(s.duration),
                            size: Some(s.data.len() as u32),
                            flags: Some(sample_flags(s)),
                            cts: Some(i64::from(s.cts_offset)),
                        })
                        .collect(),
                ),
            }],
            ..Traf::default()
        };
        let mut moof = Moof {
            mfhd: Mfhd {
                sequence_number: sequence,
            },
            traf: runs.iter().map(traf).collect(),
        };
        let mut scratch = Vec::new();
        moof.encode(&mut scratch).unwrap();
        let mut offset = scratch.len() as u64 + 8;
        for (traf, run) in moof.traf.iter_mut().zip(runs) {
            traf.trun[0].data_offset = Some(offset as i32);
            offset += run.samples.iter().map(|s| s.data.len() as u64).sum::<u64>();
        }
        let mut out = Vec::new();
        moof.encode(&mut out).unwrap();
        out.extend_from_slice(&((offset - scratch.len() as u64) as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
        for run in runs {
            for sample in run.samples {
                out.extend_from_slice(&sample.data);
            }
        }
        out
    }

    #[test]
    fn chunk_matches_mp4_atom() {
        // One and several samples per run, one and two runs, negative composition offsets,
        // decode times past 32 bits, empty sample data, a sequence number past 16 bits.
        let video: Vec<ReadySample> = (0..5)
            .map(|i| {
                sample(
                    9000 + i * 3000,
                    3000,
                    i == 0,
                    3000 - 2000 * i as i32,
                    40 + i as usize,
                )
            })
            .collect();
        let audio: Vec<ReadySample> = (0..4)
            .map(|i| sample((1 << 33) + i * 1024, 1024, true, 0, 7 * i as usize))
            .collect();
        for (v, a) in [
            (0, 1),
            (1, 0),
            (1, 1),
            (2, 1),
            (5, 4),
            (1, 4),
            (5, 0),
            (0, 4),
        ] {
            let mut runs = Vec::new();
            if v > 0 {
                runs.push(TrackRun {
                    track_id: 1,
                    samples: &video[..v],
                });
            }
            if a > 0 {
                runs.push(TrackRun {
                    track_id: 2,
                    samples: &audio[..a],
                });
            }
            let mut out = vec![0xAB; 3]; // appends after what is there
            write_chunk(70_000 + v as u32, runs.iter().copied(), &mut out).unwrap();
            assert_eq!(out[..3], [0xAB; 3]);
            assert_eq!(
                out[3..],
                write_chunk_with_mp4_atom(70_000 + v as u32, &runs),
                "{v} video and {a} audio samples"
            );
        }
    }

    #[test]
    fn chunk_round_trips_with_data_offsets() {
        let video = [
            sample(9000, 3000, true, 3000, 100),
            sample(12000, 3000, false, -3000, 50),
        ];
        let audio = [
            sample(4800, 1024, true, 0, 7),
            sample(5824, 1024, true, 0, 9),
        ];
        let mut out = Vec::new();
        write_chunk(
            7,
            [
                TrackRun {
                    track_id: 1,
                    samples: &video,
                },
                TrackRun {
                    track_id: 2,
                    samples: &audio,
                },
            ]
            .into_iter(),
            &mut out,
        )
        .unwrap();

        let mut buf = out.as_slice();
        let moof = match Any::decode(&mut buf).unwrap() {
            Any::Moof(m) => m,
            other => panic!("{other:?}"),
        };
        let moof_len = out.len() - buf.len();
        let mdat = match Any::decode(&mut buf).unwrap() {
            Any::Mdat(m) => m,
            other => panic!("{other:?}"),
        };
        assert!(buf.is_empty());
        assert_eq!(mdat.data.len(), 166);
        assert_eq!(moof.mfhd.sequence_number, 7);
        let [v, a] = moof.traf.as_slice() else {
            panic!("two trafs")
        };
        assert!(v.tfhd.default_base_is_moof && a.tfhd.default_base_is_moof);
        assert_eq!(v.tfdt.as_ref().unwrap().base_media_decode_time, 9000);
        assert_eq!(a.tfdt.as_ref().unwrap().base_media_decode_time, 4800);
        let v_off = v.trun[0].data_offset.unwrap() as usize;
        let a_off = a.trun[0].data_offset.unwrap() as usize;
        assert_eq!(v_off, moof_len + 8);
        assert_eq!(a_off, moof_len + 8 + 150);
        assert_eq!(out[a_off], 1, "audio data where the offset says");
        let entries: Vec<TrunEntry> = v.trun[0].samples.iter().collect();
        assert_eq!(entries[0].flags, Some(SYNC_SAMPLE_FLAGS));
        assert_eq!(entries[1].flags, Some(NON_SYNC_SAMPLE_FLAGS));
        assert_eq!(entries[1].cts, Some(-3000));
        assert_eq!(entries[1].size, Some(50));
        assert_eq!(entries[0].duration, Some(3000));
    }
}
