//! Just enough ISO BMFF to tell whether a CMAF part starts with (or holds) a sync sample
//! of its video track: `moov/trak/{tkhd,mdia/hdlr}` and `moov/mvex/trex` in the init
//! segment, `moof/traf/{tfhd,trun}` in the part. Malformed input gives `None`, never a
//! panic (fuzzed: `fuzz/fuzz_targets/check_parsers.rs`).

/// The init segment's video track and its `trex` default sample flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTrack {
    pub track_id: u32,
    pub default_flags: u32,
}

/// What a part's video samples say about independence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Independence {
    /// The part's first video sample is a sync sample.
    pub starts_with_sync: bool,
    /// Some video sample in the part is a sync sample.
    pub has_sync: bool,
}

/// `sample_is_non_sync_sample` in ISO/IEC 14496-12 sample flags.
const NON_SYNC: u32 = 0x0001_0000;

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// The boxes directly inside `b`: (type, body).
fn boxes(mut b: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = u32_at(b, 0)? as usize;
        let kind: [u8; 4] = b.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            1 => {
                let hi = u64::from(u32_at(b, 8)?);
                let lo = u64::from(u32_at(b, 12)?);
                (16, usize::try_from((hi << 32) | lo).ok()?)
            }
            0 => (8, b.len()),
            s => (8, s),
        };
        if size < header || size > b.len() {
            b = &[];
            return None;
        }
        let body = &b[header..size];
        b = &b[size..];
        Some((kind, body))
    })
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(b).find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// Finds the video track (handler `vide`) of an init segment.
pub fn video_track(init: &[u8]) -> Option<VideoTrack> {
    let moov = child(init, b"moov")?;
    let mut id = None;
    for (kind, trak) in boxes(moov) {
        if &kind != b"trak" {
            continue;
        }
        let hdlr = child(child(trak, b"mdia")?, b"hdlr")?;
        if hdlr.get(8..12)? != b"vide" {
            continue;
        }
        let tkhd = child(trak, b"tkhd")?;
        let at = if tkhd.first()? == &1 { 20 } else { 12 };
        id = Some(u32_at(tkhd, at)?);
        break;
    }
    let track_id = id?;
    let default_flags = child(moov, b"mvex")
        .and_then(|mvex| {
            boxes(mvex)
                .filter(|(k, _)| k == b"trex")
                .find(|(_, t)| u32_at(t, 4) == Some(track_id))
                .and_then(|(_, t)| u32_at(t, 20))
        })
        .unwrap_or(0);
    Some(VideoTrack {
        track_id,
        default_flags,
    })
}

/// Reads the sample flags of the video track's samples in a part (every `moof` in order).
/// `None` when the part has no `moof` for the track or cannot be read.
pub fn independence(part: &[u8], track: VideoTrack) -> Option<Independence> {
    let mut first: Option<bool> = None;
    let mut any = false;
    for (kind, moof) in boxes(part) {
        if &kind != b"moof" {
            continue;
        }
        for (kind, traf) in boxes(moof) {
            if &kind != b"traf" {
                continue;
            }
            let tfhd = child(traf, b"tfhd")?;
            let flags = u32_at(tfhd, 0)? & 0x00ff_ffff;
            if u32_at(tfhd, 4)? != track.track_id {
                continue;
            }
            let mut at = 8;
            let mut default_flags = track.default_flags;
            for (bit, len) in [(0x1, 8), (0x2, 4), (0x8, 4), (0x10, 4)] {
                if flags & bit != 0 {
                    at += len;
                }
            }
            if flags & 0x20 != 0 {
                default_flags = u32_at(tfhd, at)?;
            }
            for (kind, trun) in boxes(traf) {
                if &kind != b"trun" {
                    continue;
                }
                let tflags = u32_at(trun, 0)? & 0x00ff_ffff;
                let count = u32_at(trun, 4)?;
                let mut at = 8;
                if tflags & 0x1 != 0 {
                    at += 4;
                }
                let first_flags = if tflags & 0x4 != 0 {
                    let f = u32_at(trun, at)?;
                    at += 4;
                    Some(f)
                } else {
                    None
                };
                let per_sample = [0x100, 0x200, 0x400, 0x800]
                    .iter()
                    .filter(|&&b| tflags & b != 0)
                    .count()
                    * 4;
                let flags_offset = [0x100, 0x200].iter().filter(|&&b| tflags & b != 0).count() * 4;
                for i in 0..count as usize {
                    let f = if tflags & 0x400 != 0 {
                        u32_at(trun, at + i * per_sample + flags_offset)?
                    } else if i == 0 {
                        first_flags.unwrap_or(default_flags)
                    } else {
                        default_flags
                    };
                    let sync = f & NON_SYNC == 0;
                    first.get_or_insert(sync);
                    any |= sync;
                    if any && first.is_some() && i > 0 {
                        break;
                    }
                }
            }
        }
    }
    Some(Independence {
        starts_with_sync: first?,
        has_sync: any,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn init(video_id: u32, trex_flags: u32) -> Vec<u8> {
        let trak = |id: u32, handler: &[u8; 4]| {
            let mut tkhd = vec![0, 0, 0, 3];
            tkhd.extend_from_slice(&[0; 8]);
            tkhd.extend_from_slice(&id.to_be_bytes());
            tkhd.extend_from_slice(&[0; 60]);
            let mut hdlr = vec![0; 8];
            hdlr.extend_from_slice(handler);
            hdlr.extend_from_slice(&[0; 13]);
            [bx(b"tkhd", &tkhd), bx(b"mdia", &bx(b"hdlr", &hdlr))].concat()
        };
        let mut trex = vec![0; 4];
        trex.extend_from_slice(&video_id.to_be_bytes());
        trex.extend_from_slice(&[0; 12]);
        trex.extend_from_slice(&trex_flags.to_be_bytes());
        let moov = [
            bx(b"trak", &trak(1, b"soun")),
            bx(b"trak", &trak(video_id, b"vide")),
            bx(b"mvex", &bx(b"trex", &trex)),
        ]
        .concat();
        [bx(b"ftyp", b"iso6\0\0\0\0"), bx(b"moov", &moov)].concat()
    }

    /// A moof with one traf for `track`, first-sample flags and `n` samples with
    /// per-sample sizes.
    fn moof(track: u32, first_flags: Option<u32>, n: u32) -> Vec<u8> {
        let mut tfhd = vec![0, 0x02, 0, 0x20]; // default-base-is-moof, default flags
        tfhd.extend_from_slice(&track.to_be_bytes());
        tfhd.extend_from_slice(&NON_SYNC.to_be_bytes());
        let flags: u32 = 0x1 | 0x200 | if first_flags.is_some() { 0x4 } else { 0 };
        let mut trun = flags.to_be_bytes().to_vec();
        trun.extend_from_slice(&n.to_be_bytes());
        trun.extend_from_slice(&0u32.to_be_bytes());
        if let Some(f) = first_flags {
            trun.extend_from_slice(&f.to_be_bytes());
        }
        for _ in 0..n {
            trun.extend_from_slice(&100u32.to_be_bytes());
        }
        bx(
            b"moof",
            &bx(b"traf", &[bx(b"tfhd", &tfhd), bx(b"trun", &trun)].concat()),
        )
    }

    #[test]
    fn finds_the_video_track_and_its_defaults() {
        let t = video_track(&init(2, NON_SYNC)).unwrap();
        assert_eq!(t.track_id, 2);
        assert_eq!(t.default_flags, NON_SYNC);
        assert_eq!(video_track(b"garbage"), None);
    }

    #[test]
    fn a_part_that_starts_with_a_sync_sample() {
        let t = video_track(&init(2, NON_SYNC)).unwrap();
        let part = [moof(1, None, 3), bx(b"mdat", &[0; 10]), moof(2, Some(0), 4)].concat();
        let i = independence(&part, t).unwrap();
        assert!(i.starts_with_sync && i.has_sync);
    }

    #[test]
    fn a_part_without_a_sync_sample() {
        let t = video_track(&init(2, NON_SYNC)).unwrap();
        let part = [moof(2, None, 4), bx(b"mdat", &[0; 10])].concat();
        let i = independence(&part, t).unwrap();
        assert!(!i.starts_with_sync && !i.has_sync);
    }

    #[test]
    fn a_sync_sample_in_a_later_chunk_of_the_part() {
        let t = video_track(&init(2, NON_SYNC)).unwrap();
        let part = [moof(2, None, 1), moof(2, Some(0), 1)].concat();
        let i = independence(&part, t).unwrap();
        assert!(!i.starts_with_sync && i.has_sync);
    }

    #[test]
    fn truncated_input_is_none_at_every_length() {
        let t = video_track(&init(2, NON_SYNC)).unwrap();
        let part = moof(2, Some(0), 4);
        for n in 0..part.len() {
            let _ = independence(&part[..n], t);
        }
        let i = init(2, 0);
        for n in 0..i.len() {
            let _ = video_track(&i[..n]);
        }
    }
}
