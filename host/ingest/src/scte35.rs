//! SCTE-35 `splice_info_section` → [`CueEvent`].
//!
//! Parsed by hand: scte35-reader 0.16 keeps `break_duration` in a private field, reports
//! errors only to the `log` crate and never hands back the section bytes, so it cannot fill a
//! [`CueEvent`] (see docs/design/004-mpeg-ts-demux.md). The parser is bounds-checked
//! throughout and never panics.
//!
//! What becomes a cue:
//!
//! | command | [`CueKind`] | `id` | `out_of_network` | `pts` | `duration` |
//! | --- | --- | --- | --- | --- | --- |
//! | `splice_insert` | `SpliceInsert` | `splice_event_id` | `out_of_network_indicator` | `splice_time` (first component's in component mode), `None` for `splice_immediate_flag` | `break_duration` |
//! | `time_signal` | `TimeSignal` | first segmentation descriptor's `segmentation_event_id` (0 if none) | [`segmentation_type_is_out`] | `splice_time` | `segmentation_duration` |
//! | `splice_null` | `SpliceNull` | 0 | false | `None` | `None` |
//!
//! `pts` is `pts_time + pts_adjustment` modulo 2^33, as a raw 33-bit value here; the TS
//! demuxer then places it on its unwrapped timeline. A cancelled event
//! (`splice_event_cancel_indicator`, or a time_signal whose segmentation descriptors are all
//! cancelled) is [`Scte35Error::Cancelled`]. `splice_schedule`, `bandwidth_reservation`,
//! private commands and encrypted sections are [`Scte35Error::Unsupported`].

use std::time::Duration;

use bytes::Bytes;
use weir_media::{CueEvent, CueKind};

/// The `table_id` of a splice_info_section.
pub const SCTE35_TABLE_ID: u8 = 0xFC;
/// The PMT `stream_type` of a SCTE-35 PID.
pub const SCTE35_STREAM_TYPE: u8 = 0x86;

const PTS_MASK: u64 = (1 << 33) - 1;
/// table_id + flags/section_length.
const COMMON_HEADER: usize = 3;
/// protocol_version … splice_command_type.
const SPLICE_HEADER: usize = 11;
const CRC_LEN: usize = 4;
/// The smallest possible section: headers, an empty command, descriptor_loop_length, CRC.
const MIN_SECTION: usize = COMMON_HEADER + SPLICE_HEADER + 2 + CRC_LEN;

/// Why a splice_info_section was not turned into a cue.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Scte35Error {
    /// Shorter than the smallest possible section.
    #[error("section of {0} bytes is too short")]
    TooShort(usize),
    /// Not a splice_info_section.
    #[error("table_id {0:#04x} is not a splice_info_section (0xfc)")]
    TableId(u8),
    /// `section_length` disagrees with the bytes present.
    #[error("section_length says {declared} bytes, {actual} present")]
    Length { declared: usize, actual: usize },
    /// The MPEG-2 CRC_32 does not match.
    #[error("CRC_32 mismatch")]
    Crc,
    /// A field runs past the end of its command, descriptor or section.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A command or feature this parser does not turn into a cue.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The section cancels an event rather than announcing one.
    #[error("event {0} cancelled")]
    Cancelled(u32),
}

/// Whether a segmentation_type_id starts an ad break (leaves the network).
///
/// True for Break Start (0x22), Provider/Distributor Advertisement Start (0x30, 0x32),
/// Provider/Distributor Placement Opportunity Start (0x34, 0x36) and Provider/Distributor Ad
/// Block Start (0x44, 0x46): the types that ad-insertion systems treat as an avail.
/// Everything else is false, including Program Start (0x10) and Chapter Start (0x20), which
/// mark programme structure rather than a break (a blackout plugin sees the type itself in
/// [`CueEvent::segmentation_type`]), and all the matching End types.
pub fn segmentation_type_is_out(segmentation_type_id: u8) -> bool {
    matches!(
        segmentation_type_id,
        0x22 | 0x30 | 0x32 | 0x34 | 0x36 | 0x44 | 0x46
    )
}

/// Parses one complete splice_info_section (table_id through CRC_32) into a cue.
///
/// The section's `section_length` must match `bytes` exactly and its CRC_32 must be right.
/// `pts` is the raw 33-bit `pts_time + pts_adjustment`, not placed on any stream's timeline.
///
/// ```
/// use weir_ingest::scte35::parse_splice_info_section;
/// use weir_media::CueKind;
///
/// // splice_insert, event 1, out of network, pts_time 756296448, break 19125000 ticks.
/// let section = [
///     0xfc, 0x30, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xf0, 0x14, 0x05,
///     0x00, 0x00, 0x00, 0x01, 0x7f, 0xef, 0xfe, 0x2d, 0x14, 0x2b, 0x00, 0xfe, 0x01, 0x23,
///     0xd3, 0x08, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x7f, 0x15, 0x7a, 0x49,
/// ];
/// let cue = parse_splice_info_section(&section)?;
/// assert_eq!((cue.kind, cue.id, cue.out_of_network), (CueKind::SpliceInsert, 1, true));
/// assert_eq!(cue.pts, Some(756_296_448));
/// assert_eq!(cue.duration.map(|d| d.as_millis()), Some(212_500));
/// # Ok::<(), weir_ingest::Error>(())
/// ```
pub fn parse_splice_info_section(bytes: &[u8]) -> crate::Result<CueEvent> {
    Ok(parse(bytes)?)
}

/// [`parse_splice_info_section`] with this module's error type.
pub(crate) fn parse(bytes: &[u8]) -> Result<CueEvent, Scte35Error> {
    if bytes.len() < COMMON_HEADER {
        return Err(Scte35Error::TooShort(bytes.len()));
    }
    if bytes[0] != SCTE35_TABLE_ID {
        return Err(Scte35Error::TableId(bytes[0]));
    }
    let declared = COMMON_HEADER + (usize::from(bytes[1] & 0x0f) << 8 | usize::from(bytes[2]));
    if declared != bytes.len() {
        return Err(Scte35Error::Length {
            declared,
            actual: bytes.len(),
        });
    }
    if bytes.len() < MIN_SECTION {
        return Err(Scte35Error::TooShort(bytes.len()));
    }
    if mpeg2ts_reader::mpegts_crc::sum32(bytes) != 0 {
        return Err(Scte35Error::Crc);
    }
    // Everything between the common header and the CRC.
    let body = &bytes[COMMON_HEADER..bytes.len() - CRC_LEN];
    let mut r = Bits::new(body);
    let protocol_version = r.u8(8, "protocol_version")?;
    if protocol_version != 0 {
        return Err(Scte35Error::Unsupported(format!(
            "protocol_version {protocol_version}"
        )));
    }
    if r.flag("encrypted_packet")? {
        return Err(Scte35Error::Unsupported("encrypted section".to_owned()));
    }
    r.skip(6, "encryption_algorithm")?;
    let pts_adjustment = r.u64(33, "pts_adjustment")?;
    r.skip(8, "cw_index")?;
    r.skip(12, "tier")?;
    let command_length = usize::from(r.u16(12, "splice_command_length")?);
    let command_type = r.u8(8, "splice_command_type")?;
    let rest = r.rest();
    // 0xFFF: a legacy encoder that did not fill the length in; the command says how long it is.
    let (command, after) = if command_length == 0xfff {
        (rest, None)
    } else {
        let (c, a) = rest
            .split_at_checked(command_length)
            .ok_or(Scte35Error::Malformed("splice_command_length"))?;
        (c, Some(a))
    };
    let mut c = Bits::new(command);
    let adjust = |pts: Option<u64>| pts.map(|p| ((p + pts_adjustment) & PTS_MASK) as i64);
    let mut cue = CueEvent {
        id: 0,
        kind: CueKind::SpliceNull,
        out_of_network: false,
        pts: None,
        duration: None,
        segmentation_type: None,
        section: Bytes::copy_from_slice(bytes),
    };
    match command_type {
        0x00 => {}
        0x05 => {
            let insert = splice_insert(&mut c)?;
            cue.kind = CueKind::SpliceInsert;
            cue.id = insert.event_id;
            cue.out_of_network = insert.out_of_network;
            cue.pts = adjust(insert.pts);
            cue.duration = insert.duration.map(ticks_to_duration);
        }
        0x06 => {
            cue.kind = CueKind::TimeSignal;
            cue.pts = adjust(splice_time(&mut c)?);
        }
        other => return Err(Scte35Error::Unsupported(command_name(other))),
    }
    let after = match after {
        Some(a) => a,
        None => rest
            .get(c.consumed_bytes()..)
            .ok_or(Scte35Error::Malformed("splice_command"))?,
    };
    let mut d = Bits::new(after);
    let loop_length = usize::from(d.u16(16, "descriptor_loop_length")?);
    let descriptors = d
        .rest()
        .get(..loop_length)
        .ok_or(Scte35Error::Malformed("descriptor_loop_length"))?;
    if cue.kind == CueKind::TimeSignal {
        let mut cancelled = None;
        for seg in segmentation_descriptors(descriptors) {
            match seg? {
                Segmentation::Cancelled(id) => cancelled = cancelled.or(Some(id)),
                Segmentation::Active {
                    event_id,
                    type_id,
                    duration,
                } => {
                    cue.id = event_id;
                    cue.segmentation_type = Some(type_id);
                    cue.out_of_network = segmentation_type_is_out(type_id);
                    cue.duration = duration.map(ticks_to_duration);
                    return Ok(cue);
                }
            }
        }
        if let Some(id) = cancelled {
            return Err(Scte35Error::Cancelled(id));
        }
    }
    Ok(cue)
}

struct Insert {
    event_id: u32,
    out_of_network: bool,
    pts: Option<u64>,
    duration: Option<u64>,
}

fn splice_insert(r: &mut Bits<'_>) -> Result<Insert, Scte35Error> {
    let event_id = r.u32(32, "splice_event_id")?;
    if r.flag("splice_event_cancel_indicator")? {
        return Err(Scte35Error::Cancelled(event_id));
    }
    r.skip(7, "reserved")?;
    let out_of_network = r.flag("out_of_network_indicator")?;
    let program_splice = r.flag("program_splice_flag")?;
    let has_duration = r.flag("duration_flag")?;
    let immediate = r.flag("splice_immediate_flag")?;
    r.skip(4, "reserved")?;
    let mut pts = None;
    if program_splice {
        if !immediate {
            pts = splice_time(r)?;
        }
    } else {
        let components = r.u8(8, "component_count")?;
        for i in 0..components {
            r.skip(8, "component_tag")?;
            if !immediate {
                let t = splice_time(r)?;
                if i == 0 {
                    pts = t;
                }
            }
        }
    }
    let duration = if has_duration {
        r.skip(1, "auto_return")?;
        r.skip(6, "reserved")?;
        Some(r.u64(33, "break_duration")?)
    } else {
        None
    };
    r.skip(16, "unique_program_id")?;
    r.skip(8, "avail_num")?;
    r.skip(8, "avails_expected")?;
    Ok(Insert {
        event_id,
        out_of_network,
        pts,
        duration,
    })
}

fn splice_time(r: &mut Bits<'_>) -> Result<Option<u64>, Scte35Error> {
    if r.flag("time_specified_flag")? {
        r.skip(6, "reserved")?;
        Ok(Some(r.u64(33, "pts_time")?))
    } else {
        r.skip(7, "reserved")?;
        Ok(None)
    }
}

enum Segmentation {
    Cancelled(u32),
    Active {
        event_id: u32,
        type_id: u8,
        duration: Option<u64>,
    },
}

/// The CUEI segmentation descriptors (tag 0x02) of a descriptor loop, in order; other
/// descriptors are skipped.
fn segmentation_descriptors(
    mut buf: &[u8],
) -> impl Iterator<Item = Result<Segmentation, Scte35Error>> + '_ {
    std::iter::from_fn(move || loop {
        if buf.is_empty() {
            return None;
        }
        let Some(&[tag, len]) = buf.get(..2) else {
            buf = &[];
            return Some(Err(Scte35Error::Malformed("splice_descriptor header")));
        };
        let Some(body) = buf.get(2..2 + usize::from(len)) else {
            buf = &[];
            return Some(Err(Scte35Error::Malformed("splice_descriptor_length")));
        };
        buf = &buf[2 + usize::from(len)..];
        if tag == 0x02 && body.get(..4) == Some(b"CUEI") {
            return Some(segmentation_descriptor(&body[4..]));
        }
    })
}

fn segmentation_descriptor(body: &[u8]) -> Result<Segmentation, Scte35Error> {
    let mut r = Bits::new(body);
    let event_id = r.u32(32, "segmentation_event_id")?;
    if r.flag("segmentation_event_cancel_indicator")? {
        return Ok(Segmentation::Cancelled(event_id));
    }
    r.skip(7, "reserved")?;
    let program = r.flag("program_segmentation_flag")?;
    let has_duration = r.flag("segmentation_duration_flag")?;
    // delivery_not_restricted_flag plus five bits of restrictions or reserved.
    r.skip(6, "delivery restrictions")?;
    if !program {
        let components = r.u8(8, "component_count")?;
        for _ in 0..components {
            r.skip(48, "component")?;
        }
    }
    let duration = if has_duration {
        Some(r.u64(40, "segmentation_duration")?)
    } else {
        None
    };
    r.skip(8, "segmentation_upid_type")?;
    let upid_length = r.u8(8, "segmentation_upid_length")?;
    r.skip(usize::from(upid_length) * 8, "segmentation_upid")?;
    let type_id = r.u8(8, "segmentation_type_id")?;
    r.skip(8, "segment_num")?;
    r.skip(8, "segments_expected")?;
    Ok(Segmentation::Active {
        event_id,
        type_id,
        duration,
    })
}

fn ticks_to_duration(ticks: u64) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / 90_000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

fn command_name(command_type: u8) -> String {
    let name = match command_type {
        0x04 => "splice_schedule",
        0x07 => "bandwidth_reservation",
        0xff => "private_command",
        _ => "reserved",
    };
    format!("{name} (splice_command_type {command_type:#04x})")
}

/// A big-endian bit reader that reports, rather than panics on, reads past the end.
struct Bits<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    fn u64(&mut self, n: usize, field: &'static str) -> Result<u64, Scte35Error> {
        debug_assert!(n <= 64);
        if self.pos + n > self.buf.len() * 8 {
            return Err(Scte35Error::Malformed(field));
        }
        let mut v = 0u64;
        for _ in 0..n {
            let bit = (self.buf[self.pos / 8] >> (7 - self.pos % 8)) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    fn u32(&mut self, n: usize, field: &'static str) -> Result<u32, Scte35Error> {
        Ok(self.u64(n.min(32), field)? as u32)
    }

    fn u16(&mut self, n: usize, field: &'static str) -> Result<u16, Scte35Error> {
        Ok(self.u64(n.min(16), field)? as u16)
    }

    fn u8(&mut self, n: usize, field: &'static str) -> Result<u8, Scte35Error> {
        Ok(self.u64(n.min(8), field)? as u8)
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, Scte35Error> {
        Ok(self.u64(1, field)? == 1)
    }

    fn skip(&mut self, n: usize, field: &'static str) -> Result<(), Scte35Error> {
        if self.pos + n > self.buf.len() * 8 {
            return Err(Scte35Error::Malformed(field));
        }
        self.pos += n;
        Ok(())
    }

    /// Whole bytes read so far (rounded up).
    fn consumed_bytes(&self) -> usize {
        self.pos.div_ceil(8)
    }

    /// The unread bytes, from the next byte boundary.
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.consumed_bytes()..).unwrap_or_default()
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, no final xor), as PSI and SCTE-35
/// sections carry it. A whole section including its CRC_32 sums to 0.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    mpeg2ts_reader::mpegts_crc::sum32(data)
}

/// Encodes an immediate splice_insert splice_info_section (SCTE 35 2022, 9.6 and 9.7.3),
/// CRC included: for operators whose contribution carries no SCTE-35 (the cue API), so
/// that `SCTE35-OUT`/`-IN` still carry a real section.
pub fn encode_splice_insert(id: u32, out_of_network: bool, duration: Option<Duration>) -> Bytes {
    let mut cmd = Vec::with_capacity(20);
    cmd.extend_from_slice(&id.to_be_bytes());
    cmd.push(0x7f); // cancel_indicator 0, reserved
                    // out_of_network, program_splice_flag 1, duration_flag, splice_immediate 1,
                    // event_id_compliance_flag 1, reserved
    cmd.push(u8::from(out_of_network) << 7 | 1 << 6 | u8::from(duration.is_some()) << 5 | 0x1f);
    if let Some(d) = duration {
        let ticks = (d.as_secs_f64() * 90_000.0).round() as u64 & 0x1_ffff_ffff;
        // auto_return 1, reserved, 33-bit duration
        cmd.push(0x80 | 0x7e | (ticks >> 32) as u8);
        cmd.extend_from_slice(&(ticks as u32).to_be_bytes());
    }
    cmd.extend_from_slice(&[0, 0, 0, 0]); // unique_program_id, avail_num, avails_expected

    let mut s = Vec::with_capacity(32 + cmd.len());
    s.push(SCTE35_TABLE_ID);
    s.extend_from_slice(&[0, 0]); // section_length, patched below
    s.push(0); // protocol_version
    s.extend_from_slice(&[0, 0, 0, 0, 0]); // not encrypted, pts_adjustment 0
    s.push(0xff); // cw_index
    let len = cmd.len();
    s.push(0xff); // tier 0xfff …
    s.push(0xf0 | ((len >> 8) as u8 & 0x0f)); // … and splice_command_length
    s.push(len as u8);
    s.push(0x05); // splice_insert
    s.extend_from_slice(&cmd);
    s.extend_from_slice(&[0, 0]); // descriptor_loop_length
    let section_length = s.len() - 3 + 4;
    s[1] = 0x30 | ((section_length >> 8) as u8 & 0x0f); // syntax 0, private 0, sap_type 3
    s[2] = section_length as u8;
    let crc = crc32_mpeg2(&s);
    s.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The example section from scte35-reader's docs (and SCTE-35's own sample).
    const INSERT_OUT: [u8; 40] = [
        0xfc, 0x30, 0x25, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xf0, 0x14, 0x05, 0x00,
        0x00, 0x00, 0x01, 0x7f, 0xef, 0xfe, 0x2d, 0x14, 0x2b, 0x00, 0xfe, 0x01, 0x23, 0xd3, 0x08,
        0x00, 0x01, 0x01, 0x01, 0x00, 0x00, 0x7f, 0x15, 0x7a, 0x49,
    ];

    /// Appends a correct CRC_32 and fixes section_length.
    pub(crate) fn seal(mut body: Vec<u8>) -> Vec<u8> {
        let len = body.len() + CRC_LEN - COMMON_HEADER;
        body[1] = (body[1] & 0xf0) | ((len >> 8) as u8 & 0x0f);
        body[2] = len as u8;
        let crc = crc32(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        body
    }

    use super::crc32_mpeg2 as crc32;

    fn header(command_type: u8, command_len: u16, pts_adjustment: u64) -> Vec<u8> {
        let mut v = vec![0xfc, 0x30, 0x00, 0x00];
        v.push(((pts_adjustment >> 32) & 1) as u8);
        v.extend_from_slice(&(pts_adjustment as u32).to_be_bytes());
        v.push(0x00); // cw_index
        v.push(0xff); // tier (high 8)
        v.push(0xf0 | ((command_len >> 8) as u8 & 0x0f));
        v.push(command_len as u8);
        v.push(command_type);
        v
    }

    fn splice_time_bytes(pts: u64) -> [u8; 5] {
        [
            0xfe | ((pts >> 32) & 1) as u8,
            (pts >> 24) as u8,
            (pts >> 16) as u8,
            (pts >> 8) as u8,
            pts as u8,
        ]
    }

    #[test]
    fn hand_written_crc_matches_the_library() {
        assert_eq!(crc32(&INSERT_OUT[..36]), 0x7f15_7a49);
        assert_eq!(mpeg2ts_reader::mpegts_crc::sum32(&INSERT_OUT), 0);
    }

    #[test]
    fn splice_insert_out_with_break_duration() {
        let cue = parse(&INSERT_OUT).unwrap();
        assert_eq!(cue.kind, CueKind::SpliceInsert);
        assert_eq!((cue.id, cue.out_of_network), (1, true));
        assert_eq!(cue.pts, Some(0x0_2d14_2b00));
        assert_eq!(cue.duration, Some(ticks_to_duration(0x0123_d308)));
        assert_eq!(cue.segmentation_type, None);
        assert_eq!(&cue.section[..], &INSERT_OUT[..]);
    }

    #[test]
    fn pts_adjustment_wraps_at_33_bits() {
        let mut v = header(0x06, 5, (1 << 33) - 10);
        v.extend_from_slice(&splice_time_bytes(100));
        v.extend_from_slice(&[0, 0]);
        let cue = parse(&seal(v)).unwrap();
        assert_eq!((cue.kind, cue.pts), (CueKind::TimeSignal, Some(90)));
    }

    #[test]
    fn time_signal_with_segmentation_descriptor() {
        let mut v = header(0x06, 5, 0);
        v.extend_from_slice(&splice_time_bytes(900_000));
        let mut seg = b"CUEI".to_vec();
        seg.extend_from_slice(&0x4800_0008u32.to_be_bytes());
        seg.push(0x7f); // not cancelled
        seg.push(0xff); // program, duration, not restricted
        seg.extend_from_slice(&[0x00, 0x00, 0x29, 0x32, 0xe0]); // 2_700_000 ticks = 30 s
        seg.extend_from_slice(&[0x08, 0x08]); // upid type TI, 8 bytes
        seg.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        seg.extend_from_slice(&[0x34, 0x00, 0x00]); // PPO start
        let mut desc = vec![0x02, seg.len() as u8];
        desc.extend_from_slice(&seg);
        v.extend_from_slice(&(desc.len() as u16).to_be_bytes());
        v.extend_from_slice(&desc);
        let cue = parse(&seal(v)).unwrap();
        assert_eq!(cue.kind, CueKind::TimeSignal);
        assert_eq!(cue.id, 0x4800_0008);
        assert_eq!(cue.segmentation_type, Some(0x34));
        assert!(cue.out_of_network);
        assert_eq!(cue.duration, Some(Duration::from_secs(30)));
        assert_eq!(cue.pts, Some(900_000));
    }

    #[test]
    fn splice_null_and_immediate_insert() {
        let mut v = header(0x00, 0, 0);
        v.extend_from_slice(&[0, 0]);
        let cue = parse(&seal(v)).unwrap();
        assert_eq!((cue.kind, cue.pts, cue.id), (CueKind::SpliceNull, None, 0));

        // splice_insert, event 7, IN, program splice, immediate, no duration.
        let mut v = header(0x05, 10, 0);
        v.extend_from_slice(&[0, 0, 0, 7, 0x7f, 0b0101_1111, 0, 1, 0, 0]);
        v.extend_from_slice(&[0, 0]);
        let cue = parse(&seal(v)).unwrap();
        assert_eq!((cue.id, cue.out_of_network, cue.pts), (7, false, None));
    }

    #[test]
    fn legacy_unknown_command_length() {
        let mut v = header(0x06, 0xfff, 0);
        v.extend_from_slice(&splice_time_bytes(1234));
        v.extend_from_slice(&[0, 0]);
        assert_eq!(parse(&seal(v)).unwrap().pts, Some(1234));
    }

    #[test]
    fn rejects_bad_sections_without_panicking() {
        let mut bad_crc = INSERT_OUT;
        bad_crc[39] ^= 1;
        assert_eq!(parse(&bad_crc), Err(Scte35Error::Crc));
        let mut flipped = INSERT_OUT;
        flipped[20] ^= 0x10;
        assert_eq!(parse(&flipped), Err(Scte35Error::Crc));
        // section_length lies in both directions.
        let mut long = INSERT_OUT;
        long[2] = 0x30;
        assert!(matches!(parse(&long), Err(Scte35Error::Length { .. })));
        assert!(matches!(
            parse(&INSERT_OUT[..30]),
            Err(Scte35Error::Length { .. })
        ));
        assert_eq!(parse(&[0xfc]), Err(Scte35Error::TooShort(1)));
        assert_eq!(parse(&[0x02, 0, 0]), Err(Scte35Error::TableId(2)));
        // A command length that runs past the section, with a correct CRC.
        let mut v = header(0x05, 0x200, 0);
        v.extend_from_slice(&[0, 0]);
        assert_eq!(
            parse(&seal(v)),
            Err(Scte35Error::Malformed("splice_command_length"))
        );
        // A truncated splice_insert.
        let mut v = header(0x05, 4, 0);
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
        assert!(matches!(parse(&seal(v)), Err(Scte35Error::Malformed(_))));
        // A cancel.
        let mut v = header(0x05, 5, 0);
        v.extend_from_slice(&[0, 0, 0, 9, 0xff, 0, 0]);
        assert_eq!(parse(&seal(v)), Err(Scte35Error::Cancelled(9)));
        // splice_schedule.
        let mut v = header(0x04, 0, 0);
        v.extend_from_slice(&[0, 0]);
        assert!(matches!(parse(&seal(v)), Err(Scte35Error::Unsupported(_))));
        // Every prefix and every single-byte corruption of a good section is an error or a
        // cue, never a panic.
        for n in 0..INSERT_OUT.len() {
            let _ = parse(&INSERT_OUT[..n]);
            let _ = parse(&seal(INSERT_OUT[..n.max(3)].to_vec()));
        }
        for i in 0..36 {
            for x in [0x01u8, 0x80, 0xff] {
                let mut v = INSERT_OUT[..36].to_vec();
                v[i] ^= x;
                let _ = parse(&seal(v));
            }
        }
    }

    #[test]
    fn segmentation_type_mapping() {
        for t in [0x22, 0x30, 0x32, 0x34, 0x36, 0x44, 0x46] {
            assert!(segmentation_type_is_out(t), "{t:#x}");
        }
        for t in [0x10, 0x11, 0x20, 0x23, 0x31, 0x35, 0x37, 0x45, 0x47, 0x00] {
            assert!(!segmentation_type_is_out(t), "{t:#x}");
        }
    }

    /// Differential check against scte35-reader on the sections both can read.
    #[test]
    fn agrees_with_scte35_reader() {
        use mpeg2ts_reader::psi::{self, WholeCompactSyntaxPayloadParser};
        use std::cell::RefCell;
        use std::rc::Rc;

        struct Grab(Rc<RefCell<Vec<String>>>);
        impl scte35_reader::SpliceInfoProcessor for Grab {
            fn process(
                &self,
                header: scte35_reader::SpliceInfoHeader<'_>,
                command: scte35_reader::SpliceCommand,
                _: scte35_reader::SpliceDescriptors<'_>,
            ) {
                self.0
                    .borrow_mut()
                    .push(format!("{} {command:?}", header.pts_adjustment()));
            }
        }
        let got = Rc::new(RefCell::new(Vec::new()));
        let mut p = scte35_reader::Scte35SectionProcessor::<_, crate::ts::TsContext>::new(Grab(
            Rc::clone(&got),
        ));
        let h = psi::SectionCommonHeader::new(&INSERT_OUT[..3]);
        p.section(&mut crate::ts::TsContext::for_tests(), &h, &INSERT_OUT);
        let theirs = got.borrow().join("");
        let ours = parse(&INSERT_OUT).unwrap();
        assert!(theirs.contains("splice_event_id: 1,"), "{theirs}");
        assert!(theirs.contains("network_indicator: Out"), "{theirs}");
        assert!(
            theirs.contains(&format!("Timed(Some({}))", ours.pts.unwrap())),
            "{theirs}"
        );
        assert!(theirs.contains("duration: 19125000"), "{theirs}");
    }
}
