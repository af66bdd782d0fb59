//! Box-level checks of real packager output: decode every moof and check that the timeline is
//! continuous per track and that each trun's data_offset points at its samples.

use mp4_atom::{Any, Decode};

use crate::decode::package_capture;

#[test]
fn chunks_are_continuous_and_self_consistent() {
    let p = package_capture(weir_packager::Settings::default());
    let mut next = [None::<u64>; 3];
    let mut sequence = 0;
    let mut total = [0usize; 3];
    for body in p.parts.values() {
        let mut buf = body.as_slice();
        while !buf.is_empty() {
            let start = body.len() - buf.len();
            match Any::decode(&mut buf).unwrap() {
                Any::Styp(_) => {}
                Any::Moof(moof) => {
                    assert!(moof.mfhd.sequence_number > sequence);
                    sequence = moof.mfhd.sequence_number;
                    let moof_len = body.len() - buf.len() - start;
                    let mdat_start = moof_len + 8;
                    let mut offset = mdat_start;
                    for traf in &moof.traf {
                        assert!(traf.tfhd.default_base_is_moof);
                        let id = traf.tfhd.track_id as usize;
                        let tfdt = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                        if let Some(expected) = next[id] {
                            assert_eq!(tfdt, expected, "track {id} timeline has a hole");
                        }
                        let trun = &traf.trun[0];
                        assert_eq!(trun.data_offset, Some(offset as i32));
                        let mut end = tfdt;
                        for e in trun.samples.iter() {
                            end += u64::from(e.duration.unwrap());
                            offset += e.size.unwrap() as usize;
                        }
                        next[id] = Some(end);
                        total[id] += trun.samples.len();
                    }
                    // The mdat follows and holds exactly the runs' bytes.
                    let mdat_len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    assert_eq!(&buf[4..8], b"mdat");
                    assert_eq!(mdat_len + moof_len, offset);
                }
                Any::Mdat(_) => {}
                other => panic!("unexpected box {other:?}"),
            }
        }
    }
    assert_eq!(total[1], p.video_samples);
    assert_eq!(total[2], p.audio_samples);
}

#[test]
fn every_segment_starts_with_styp_and_an_independent_part() {
    let p = package_capture(weir_packager::Settings::default());
    for (_, parts) in &p.segments {
        let first = &p.parts[&parts.start];
        assert_eq!(&first[4..8], b"styp");
        for seq in parts.clone().skip(1) {
            assert_eq!(&p.parts[&seq][4..8], b"moof", "part {seq}");
        }
    }
}
