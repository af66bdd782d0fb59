//! The MPEG-TS demuxer: TS packets → [`MediaEvent`]s.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use mpeg2ts_reader::demultiplex::{
    Demultiplex, DemuxContext, FilterChangeset, FilterRequest, NullPacketFilter, PacketFilter,
};
use mpeg2ts_reader::packet::{Packet, Pid};
use mpeg2ts_reader::pes::{self, ElementaryStreamConsumer, PesHeader, PesPacketFilter};
use mpeg2ts_reader::psi::pat::{PatSection, ProgramDescriptor};
use mpeg2ts_reader::psi::pmt::PmtSection;
use mpeg2ts_reader::{mpegts_crc, packet_filter_switch};
use tracing::debug;
use weir_media::{AacConfig, CueEvent, H264Config, MediaEvent, Sample, Track};

use super::{adts, h264};
use crate::scte35::{self, Scte35Error};

/// How long (in media time) to wait after the first video keyframe for the first frame of an
/// audio stream that the PMT announces, before starting without it.
pub const DEFAULT_TRACK_WAIT: Duration = Duration::from_secs(1);
/// The largest PES packet reassembled; a larger one is dropped.
pub const DEFAULT_MAX_PES_BYTES: usize = 8 << 20;

const TS: usize = Packet::SIZE;
const SYNC: u8 = Packet::SYNC_BYTE;
const STREAM_H264: u8 = 0x1b;
const STREAM_ADTS: u8 = 0x0f;
const WRAP: i64 = 1 << 33;
const HALF_WRAP: i64 = 1 << 32;
/// PCM samples in one AAC frame.
const AAC_FRAME: i64 = 1024;
/// The largest PSI or SCTE-35 section (ISO/IEC 13818-1 2.4.4.11: private sections).
const MAX_SECTION: usize = 4096 + 3;
/// Samples and bytes held while waiting for the audio track, whatever their timestamps say.
const MAX_PENDING: usize = 1024;
const MAX_PENDING_BYTES: usize = 32 << 20;
/// Cues held until the first `Tracks`.
const MAX_EARLY_CUES: usize = 64;

/// How the demuxer decides when to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsSettings {
    /// Media time after the first video keyframe to wait for the first frame of an audio
    /// stream the PMT announces, before starting with video alone.
    pub track_wait: Duration,
    /// The largest PES packet reassembled; larger ones are dropped and counted.
    pub max_pes_bytes: usize,
}

impl Default for TsSettings {
    fn default() -> Self {
        Self {
            track_wait: DEFAULT_TRACK_WAIT,
            max_pes_bytes: DEFAULT_MAX_PES_BYTES,
        }
    }
}

/// Counters for one demuxer, for logs and metrics. Everything that went wrong is counted
/// here; nothing in a transport stream ends the demuxer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TsStats {
    /// 188-byte packets framed (including ones then ignored).
    pub packets: u64,
    /// Times the 0x47 sync byte was lost and searched for again.
    pub resyncs: u64,
    /// Bytes thrown away while searching for sync, or left over at the end.
    pub skipped_bytes: u64,
    /// Packets with `transport_error_indicator` set (dropped by the packet layer).
    pub transport_errors: u64,
    /// Continuity counter jumps on the PIDs that are read.
    pub cc_errors: u64,
    /// PAT/PMT sections dropped: bad CRC, truncated, or not parseable.
    pub psi_errors: u64,
    /// PMTs after the first one that changed the selected streams.
    pub pmt_changes: u64,
    /// PES packets dropped: they lost packets (continuity error), their header did not parse,
    /// they had no timestamp where one was needed, or they exceeded `max_pes_bytes`.
    pub pes_errors: u64,
    /// H.264 access units that could not be used (no NAL units, SPS/PPS that do not parse).
    pub video_errors: u64,
    /// ADTS damage: bad headers, truncated frames, skipped bytes, multi-block frames.
    pub audio_errors: u64,
    /// Times the AAC sample counter was re-aligned to the PES timestamps.
    pub audio_resyncs: u64,
    pub video_samples: u64,
    pub audio_samples: u64,
    /// Samples dropped: before the first `Tracks`, before a keyframe after a codec change,
    /// or before their track's configuration is known.
    pub dropped: u64,
    pub tracks_events: u64,
    pub scte35: Scte35Stats,
}

/// SCTE-35 counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scte35Stats {
    /// Sections that became a [`MediaEvent::Cue`].
    pub cues: u64,
    /// Bad CRC_32.
    pub crc: u64,
    /// `section_length` disagreeing with the bytes that arrived (including sections cut
    /// short by the next one).
    pub length: u64,
    /// Fields running past their command or descriptor, wrong table_id.
    pub malformed: u64,
    /// Commands that are not cues (splice_schedule, private, encrypted…).
    pub unsupported: u64,
    /// Cancelled events.
    pub cancelled: u64,
    /// Cues dropped because too many arrived before the first `Tracks`.
    pub dropped: u64,
}

/// Turns an MPEG transport stream into [`MediaEvent`]s. Sans-IO: feed bytes in any pieces
/// with [`push`](Self::push), take events with [`poll_event`](Self::poll_event), call
/// [`finish`](Self::finish) at the end of the stream.
///
/// - The first program of the PAT is read: its first H.264 stream (`stream_type` 0x1B), first
///   ADTS AAC stream (0x0F) and first SCTE-35 stream (0x86). A new PMT that changes them
///   switches streams; changed codec parameters give a new `Tracks` at the next keyframe.
/// - Video: timescale 90 000, `dts` = PES DTS (or PTS), `cts_offset` = PTS − DTS; samples
///   hold 4-byte length-prefixed NAL units without access unit delimiters (SPS/PPS stay
///   in-band); the `avcC` is built from the first SPS and PPS; keyframe = contains an IDR.
/// - Audio: timescale = sample rate, one sample per ADTS frame (header stripped), a running
///   sample counter re-aligned to the PES PTS only when they drift apart by half a frame.
/// - 33-bit timestamps are unwrapped onto one monotonic `i64` timeline shared by video, audio
///   and SCTE-35 cues (each value is placed nearest the last audio/video timestamp), so a cue's
///   `pts` compares directly with `dts + cts_offset` of the video samples. The timeline starts
///   at the stream's first raw timestamp; it is not rebased to zero.
/// - `Tracks` comes first, at the first video keyframe (with audio if its first frame has
///   arrived, waiting up to [`TsSettings::track_wait`] for it when the PMT lists audio), or for
///   audio-only programs at the first AAC frame. Cues that arrive earlier follow it.
/// - Damage is counted in [`TsStats`], never returned: lost sync is searched for again, a PES
///   that lost packets (continuity counter jump) is dropped whole without touching the next
///   one, and sections with a bad CRC are skipped.
pub struct TsDemuxer {
    demux: Demultiplex<TsContext>,
    ctx: TsContext,
    /// Bytes of a packet not yet complete, or not yet confirmed after a sync loss.
    rem: Vec<u8>,
    in_sync: bool,
}

impl std::fmt::Debug for TsDemuxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsDemuxer")
            .field("stats", &self.ctx.core.stats)
            .finish_non_exhaustive()
    }
}

impl Default for TsDemuxer {
    fn default() -> Self {
        Self::new(TsSettings::default())
    }
}

impl TsDemuxer {
    pub fn new(settings: TsSettings) -> Self {
        let mut ctx = TsContext::new(Core::new(settings));
        let demux = Demultiplex::new(&mut ctx);
        Self {
            demux,
            ctx,
            rem: Vec::new(),
            in_sync: true,
        }
    }

    /// Feeds transport stream bytes, in pieces of any size.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.rem.is_empty() {
            let used = self.frame(bytes);
            self.rem.extend_from_slice(&bytes[used..]);
        } else {
            let mut buf = std::mem::take(&mut self.rem);
            buf.extend_from_slice(bytes);
            let used = self.frame(&buf);
            buf.drain(..used);
            self.rem = buf;
        }
    }

    /// The end of the stream: delivers the last PES packets (which no following packet
    /// closes) and anything held while waiting for a track.
    pub fn finish(&mut self) {
        self.ctx.core.stats.skipped_bytes += self.rem.len() as u64;
        self.rem.clear();
        self.ctx.core.finish();
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.ctx.core.out.pop_front()
    }

    pub fn stats(&self) -> TsStats {
        self.ctx.core.stats
    }

    /// Hands every whole packet in `buf` to the demultiplexer; returns how many bytes were
    /// used (the rest is an incomplete packet, or a sync candidate awaiting confirmation).
    fn frame(&mut self, buf: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            if !self.in_sync {
                // A candidate is a 0x47 with another 0x47 one packet later.
                match (pos..buf.len()).find(|&i| buf[i] == SYNC) {
                    None => {
                        self.ctx.core.stats.skipped_bytes += (buf.len() - pos) as u64;
                        return buf.len();
                    }
                    Some(i) => {
                        self.ctx.core.stats.skipped_bytes += (i - pos) as u64;
                        pos = i;
                        match buf.get(i + TS) {
                            None => return pos,
                            Some(&SYNC) => self.in_sync = true,
                            Some(_) => {
                                pos += 1;
                                continue;
                            }
                        }
                    }
                }
            }
            // Hand over the run of packets that start with a sync byte.
            let start = pos;
            while buf.len() - pos >= TS && buf[pos] == SYNC {
                if buf[pos + 1] & 0x80 != 0 {
                    self.ctx.core.stats.transport_errors += 1;
                }
                pos += TS;
            }
            if pos > start {
                self.ctx.core.stats.packets += ((pos - start) / TS) as u64;
                self.demux.push(&mut self.ctx, &buf[start..pos]);
            }
            if buf.len() - pos < TS {
                if buf.get(pos).is_some_and(|&b| b != SYNC) {
                    self.lose_sync();
                    continue;
                }
                return pos;
            }
            self.lose_sync();
        }
    }

    fn lose_sync(&mut self) {
        self.in_sync = false;
        self.ctx.core.stats.resyncs += 1;
    }
}

/// The demultiplexer's context: mpeg2ts-reader's filter changeset plus all demuxer state
/// (the `demux_context!` macro allows no fields, so this implements `DemuxContext` by hand).
pub struct TsContext {
    changeset: FilterChangeset<Filter>,
    core: Core,
}

impl TsContext {
    fn new(core: Core) -> Self {
        Self {
            changeset: FilterChangeset::default(),
            core,
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests() -> Self {
        Self::new(Core::new(TsSettings::default()))
    }

    fn on_section(&mut self, table: Table, section: &[u8]) {
        match table {
            Table::Pat => self.on_pat(section),
            Table::Pmt => self.on_pmt(section),
            Table::Scte35 => self.core.on_scte35(section),
        }
    }

    fn psi_ok(&mut self, section: &[u8], table_id: u8) -> bool {
        // table_id, syntax indicator, and room for the 5-byte syntax header and the CRC.
        let ok = section.len() >= 12
            && section[0] == table_id
            && section[1] & 0x80 != 0
            && mpegts_crc::sum32(section) == 0;
        if !ok {
            self.core.stats.psi_errors += 1;
        }
        // current_next_indicator 0: a table for later, not this one.
        ok && section[5] & 1 == 1
    }

    fn on_pat(&mut self, section: &[u8]) {
        if self.core.last_pat.as_deref() == Some(section) || !self.psi_ok(section, 0x00) {
            return;
        }
        self.core.last_pat = Some(section.to_vec());
        let pat = PatSection::new(&section[8..section.len() - 4]);
        let program = pat.programs().find_map(|p| match p {
            ProgramDescriptor::Program {
                program_number,
                pid,
            } => Some((program_number, pid)),
            ProgramDescriptor::Network { .. } => None,
        });
        let Some((program_number, pid)) = program else {
            debug!("PAT lists no program");
            return;
        };
        if reserved_pid(u16::from(pid)) {
            self.core.stats.psi_errors += 1;
            return;
        }
        let old = self.core.pmt_pid.replace(pid);
        self.core.program = Some(program_number);
        if old != Some(pid) {
            if let Some(old) = old {
                self.changeset.remove(old);
            }
            self.core.last_pmt = None;
            self.changeset
                .insert(pid, Filter::Section(SectionFilter::new(Table::Pmt)));
        }
    }

    fn on_pmt(&mut self, section: &[u8]) {
        if self.core.last_pmt.as_deref() == Some(section) || !self.psi_ok(section, 0x02) {
            return;
        }
        let program_number = u16::from_be_bytes([section[3], section[4]]);
        if Some(program_number) != self.core.program {
            return;
        }
        let pmt = match PmtSection::from_bytes(&section[8..section.len() - 4]) {
            Ok(pmt) => pmt,
            Err(e) => {
                debug!(?e, "PMT does not parse");
                self.core.stats.psi_errors += 1;
                return;
            }
        };
        self.core.last_pmt = Some(section.to_vec());
        let taken = |pid: u16| reserved_pid(pid) || Some(Pid::new(pid)) == self.core.pmt_pid;
        let mut sel = Selection::default();
        for s in pmt.streams() {
            let pid = u16::from(s.elementary_pid());
            if taken(pid) || [sel.video, sel.audio, sel.scte35].contains(&Some(pid)) {
                continue;
            }
            let slot = match s.stream_type().0 {
                STREAM_H264 => &mut sel.video,
                STREAM_ADTS => &mut sel.audio,
                scte35::SCTE35_STREAM_TYPE => &mut sel.scte35,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(pid);
            }
        }
        let old = std::mem::replace(&mut self.core.sel, sel);
        if old == sel {
            return;
        }
        if self.core.pmt_seen {
            self.core.stats.pmt_changes += 1;
        }
        self.core.pmt_seen = true;
        debug!(?sel, "PMT streams");
        let still_used = |pid: u16| [sel.video, sel.audio, sel.scte35].contains(&Some(pid));
        for pid in [old.video, old.audio, old.scte35].into_iter().flatten() {
            if !still_used(pid) {
                self.changeset.remove(Pid::new(pid));
            }
        }
        if sel.video != old.video {
            self.core.video.reset();
            if let Some(pid) = sel.video {
                self.changeset.insert(
                    Pid::new(pid),
                    Filter::Pes(PesPacketFilter::new(Es(Role::Video))),
                );
            }
        }
        if sel.audio != old.audio {
            self.core.audio.reset();
            self.core.audio_wait_done = false;
            if let Some(pid) = sel.audio {
                self.changeset.insert(
                    Pid::new(pid),
                    Filter::Pes(PesPacketFilter::new(Es(Role::Audio))),
                );
            }
        }
        if sel.scte35 != old.scte35 {
            if let Some(pid) = sel.scte35 {
                self.changeset.insert(
                    Pid::new(pid),
                    Filter::Section(SectionFilter::new(Table::Scte35)),
                );
            }
        }
    }
}

impl DemuxContext for TsContext {
    type F = Filter;

    fn filter_changeset(&mut self) -> &mut FilterChangeset<Filter> {
        &mut self.changeset
    }

    fn construct(&mut self, req: FilterRequest<'_, '_>) -> Filter {
        match req {
            FilterRequest::ByPid(pid) if u16::from(pid) == 0 => {
                Filter::Section(SectionFilter::new(Table::Pat))
            }
            // PMT and stream filters are installed by `on_pat`/`on_pmt`; everything else
            // is ignored.
            _ => Filter::Null(NullPacketFilter::default()),
        }
    }
}

/// PAT 0x0000, CAT 0x0001, TSDT 0x0002, the reserved range up to 0x000F, and null packets.
fn reserved_pid(pid: u16) -> bool {
    !(0x10..0x1fff).contains(&pid)
}

packet_filter_switch! {
    Filter<TsContext> {
        Section: SectionFilter,
        Pes: PesPacketFilter<TsContext, Es>,
        Null: NullPacketFilter<TsContext>,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Pat,
    Pmt,
    Scte35,
}

/// Reassembles the sections of one PID (several per packet, or one over several packets),
/// checking the continuity counter. mpeg2ts-reader's own section chain deduplicates by
/// version before checking the CRC, so one corrupted PAT or PMT would hide every later
/// copy with the same version; this one checks first and deduplicates whole sections.
pub struct SectionFilter {
    table: Table,
    cc: Option<u8>,
    buf: Vec<u8>,
    /// Inside a section that continues in the next packet.
    active: bool,
}

impl SectionFilter {
    fn new(table: Table) -> Self {
        Self {
            table,
            cc: None,
            buf: Vec::new(),
            active: false,
        }
    }

    fn broken(&mut self, ctx: &mut TsContext) {
        if std::mem::take(&mut self.active) {
            self.buf.clear();
            match self.table {
                Table::Scte35 => ctx.core.stats.scte35.length += 1,
                _ => ctx.core.stats.psi_errors += 1,
            }
        }
    }

    /// Appends `data` to the open section and delivers it once complete. Returns the bytes
    /// after its end, if it ended.
    fn fill<'a>(&mut self, ctx: &mut TsContext, data: &'a [u8]) -> Option<&'a [u8]> {
        let need = if self.buf.len() >= 3 {
            section_size(&self.buf)
        } else {
            // Complete the 3-byte header first.
            let missing = 3 - self.buf.len();
            let Some(head) = data.get(..missing) else {
                self.buf.extend_from_slice(data);
                return None;
            };
            let mut h = self.buf.clone();
            h.extend_from_slice(head);
            section_size(&h)
        };
        if need > MAX_SECTION {
            self.broken(ctx);
            return None;
        }
        let missing = need - self.buf.len().min(need);
        let Some((tail, rest)) = data.split_at_checked(missing) else {
            self.buf.extend_from_slice(data);
            return None;
        };
        self.buf.extend_from_slice(tail);
        self.active = false;
        let section = std::mem::take(&mut self.buf);
        ctx.on_section(self.table, &section);
        self.buf = section;
        self.buf.clear();
        Some(rest)
    }
}

/// 3 + section_length.
fn section_size(header: &[u8]) -> usize {
    3 + (usize::from(header[1] & 0x0f) << 8 | usize::from(header[2]))
}

impl PacketFilter for SectionFilter {
    type Ctx = TsContext;

    fn consume(&mut self, ctx: &mut TsContext, pk: &Packet<'_>) {
        let cc = pk.continuity_counter().count();
        let has_payload = pk.adaptation_control().has_payload();
        if let Some(last) = self.cc {
            let expected = if has_payload { (last + 1) & 0x0f } else { last };
            if cc != expected && !(has_payload && cc == last) {
                ctx.core.stats.cc_errors += 1;
                self.broken(ctx);
            }
        }
        self.cc = Some(cc);
        let Some(payload) = pk.payload() else {
            return;
        };
        if !pk.payload_unit_start_indicator() {
            if self.active {
                self.fill(ctx, payload);
            }
            return;
        }
        let Some((&pointer, data)) = payload.split_first() else {
            return;
        };
        let Some((before, mut rest)) = data.split_at_checked(usize::from(pointer)) else {
            self.broken(ctx);
            return;
        };
        if self.active {
            self.fill(ctx, before);
            // A section still open here was shorter than its section_length said.
            self.broken(ctx);
        }
        // Sections back to back until stuffing (0xFF) or the end of the packet.
        while rest.first().is_some_and(|&b| b != 0xff) {
            self.active = true;
            self.buf.clear();
            match self.fill(ctx, rest) {
                Some(next) => rest = next,
                None => break,
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Video,
    Audio,
}

/// Forwards mpeg2ts-reader's PES callbacks to the demuxer state, so that a PES still open at
/// the end of the stream can be delivered by [`TsDemuxer::finish`].
pub struct Es(Role);

impl ElementaryStreamConsumer<TsContext> for Es {
    fn start_stream(&mut self, _: &mut TsContext) {}

    fn begin_packet(&mut self, ctx: &mut TsContext, header: PesHeader<'_>) {
        ctx.core.pes_begin(self.0, &header);
    }

    fn continue_packet(&mut self, ctx: &mut TsContext, data: &[u8]) {
        ctx.core.pes_data(self.0, data);
    }

    fn end_packet(&mut self, ctx: &mut TsContext) {
        ctx.core.pes_end(self.0);
    }

    fn continuity_error(&mut self, ctx: &mut TsContext) {
        ctx.core.stats.cc_errors += 1;
        ctx.core.pes_lost(self.0);
    }
}

/// The streams chosen from the PMT, by PID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Selection {
    video: Option<u16>,
    audio: Option<u16>,
    scte35: Option<u16>,
}

/// One PES packet being reassembled.
#[derive(Debug)]
struct Pes {
    pts: Option<u64>,
    dts: Option<u64>,
    data: Vec<u8>,
}

#[derive(Debug, Default)]
struct VideoState {
    open: Option<Pes>,
    /// The last complete PES, kept until the next PES header says whether it continues the
    /// same access unit (a PES without PTS does).
    done: Option<Pes>,
    params: h264::InBandParams,
}

impl VideoState {
    fn reset(&mut self) {
        self.open = None;
        self.done = None;
    }
}

#[derive(Debug, Default)]
struct AudioState {
    open: Option<Pes>,
    config: Option<AacConfig>,
    next_dts: Option<i64>,
}

impl AudioState {
    fn reset(&mut self) {
        self.open = None;
        self.next_dts = None;
    }
}

/// 33-bit timestamps → one unwrapped `i64` timeline.
#[derive(Debug, Default)]
struct Clock {
    last: Option<i64>,
}

impl Clock {
    /// The unwrapped value nearest the last one.
    fn place(&self, raw: u64) -> i64 {
        let raw = (raw as i64) & (WRAP - 1);
        match self.last {
            None => raw,
            Some(last) => {
                let mut d = (raw - last).rem_euclid(WRAP);
                if d >= HALF_WRAP {
                    d -= WRAP;
                }
                last + d
            }
        }
    }

    /// Places `raw` and makes it the reference for the next one.
    fn extend(&mut self, raw: u64) -> i64 {
        let v = self.place(raw);
        self.last = Some(v);
        v
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

/// The demuxer's state, apart from mpeg2ts-reader's filters.
struct Core {
    settings: TsSettings,
    stats: TsStats,
    out: VecDeque<MediaEvent>,
    clock: Clock,
    program: Option<u16>,
    pmt_pid: Option<Pid>,
    last_pat: Option<Vec<u8>>,
    last_pmt: Option<Vec<u8>>,
    pmt_seen: bool,
    sel: Selection,
    video: VideoState,
    audio: AudioState,
    /// The configs of the last `Tracks` sent; `None` before the first.
    sent: Option<(Option<H264Config>, Option<AacConfig>)>,
    /// Since this video DTS, samples are held for the audio track.
    wait_since: Option<i64>,
    audio_wait_done: bool,
    pending: Vec<(Option<Kind>, MediaEvent)>,
    pending_bytes: usize,
    early_cues: Vec<CueEvent>,
}

impl Core {
    fn new(settings: TsSettings) -> Self {
        Self {
            settings,
            stats: TsStats::default(),
            out: VecDeque::new(),
            clock: Clock::default(),
            program: None,
            pmt_pid: None,
            last_pat: None,
            last_pmt: None,
            pmt_seen: false,
            sel: Selection::default(),
            video: VideoState::default(),
            audio: AudioState::default(),
            sent: None,
            wait_since: None,
            audio_wait_done: false,
            pending: Vec::new(),
            pending_bytes: 0,
            early_cues: Vec::new(),
        }
    }

    fn finish(&mut self) {
        // No packet follows to close the last PES packets.
        self.pes_end(Role::Video);
        if let Some(done) = self.video.done.take() {
            self.video_access_unit(done);
        }
        self.pes_end(Role::Audio);
        self.flush_pending();
    }

    // --- PES reassembly -------------------------------------------------------------

    fn pes_begin(&mut self, role: Role, header: &PesHeader<'_>) {
        let open = match role {
            Role::Video => &mut self.video.open,
            Role::Audio => &mut self.audio.open,
        };
        if open.take().is_some() {
            // end_packet is always called first; this is belt and braces.
            self.stats.pes_errors += 1;
        }
        let Some((pts, dts, payload)) = pes_fields(header) else {
            self.stats.pes_errors += 1;
            return;
        };
        let pes = Pes {
            pts,
            dts,
            data: payload.to_vec(),
        };
        match role {
            Role::Video => self.video_pes(pes),
            Role::Audio => self.audio.open = Some(pes),
        }
    }

    fn pes_data(&mut self, role: Role, data: &[u8]) {
        let max = self.settings.max_pes_bytes;
        let open = match role {
            Role::Video => &mut self.video.open,
            Role::Audio => &mut self.audio.open,
        };
        if let Some(pes) = open {
            if pes.data.len() + data.len() > max {
                *open = None;
                self.stats.pes_errors += 1;
            } else {
                pes.data.extend_from_slice(data);
            }
        }
    }

    fn pes_end(&mut self, role: Role) {
        match role {
            Role::Video => {
                if let Some(open) = self.video.open.take() {
                    self.video.done = Some(open);
                }
            }
            Role::Audio => {
                if let Some(open) = self.audio.open.take() {
                    self.audio_pes(open);
                }
            }
        }
    }

    /// Packets were lost: the PES they belonged to is dropped whole.
    fn pes_lost(&mut self, role: Role) {
        let open = match role {
            Role::Video => &mut self.video.open,
            Role::Audio => &mut self.audio.open,
        };
        if open.take().is_some() {
            self.stats.pes_errors += 1;
        }
    }

    /// A new video PES has begun.
    fn video_pes(&mut self, pes: Pes) {
        if pes.pts.is_none() {
            // No timestamp: the continuation of the access unit before it, if there is one.
            match self.video.done.take() {
                Some(mut done) => {
                    done.data.extend_from_slice(&pes.data);
                    self.video.open = Some(done);
                }
                None => self.stats.pes_errors += 1,
            }
            return;
        }
        if let Some(done) = self.video.done.take() {
            self.video_access_unit(done);
        }
        self.video.open = Some(pes);
    }

    // --- Video ----------------------------------------------------------------------

    fn video_access_unit(&mut self, pes: Pes) {
        let Some(pts) = pes.pts else {
            self.stats.pes_errors += 1;
            return;
        };
        let au = h264::access_unit(&pes.data);
        if au.data.is_empty() {
            self.stats.video_errors += 1;
            return;
        }
        if let Err(e) = self.video.params.update(&au) {
            debug!("unusable SPS/PPS: {e}");
            self.stats.video_errors += 1;
        }
        if self.video.params.config().is_none() {
            self.stats.dropped += 1;
            return;
        }
        let dts = self.clock.extend(pes.dts.unwrap_or(pts));
        let pts = self.clock.place(pts);
        let cts_offset = i32::try_from(pts - dts).unwrap_or(0);
        let sample = Sample {
            track: 0,
            dts,
            cts_offset,
            keyframe: au.keyframe,
            duration: None,
            data: au.data,
        };
        self.on_video_sample(sample);
    }

    fn on_video_sample(&mut self, sample: Sample) {
        let desired = self.desired();
        if let Some(since) = self.wait_since {
            let dts = sample.dts;
            self.hold(Kind::Video, sample);
            let limit = duration_ticks(self.settings.track_wait, 90_000);
            if dts.saturating_sub(since) >= limit {
                self.audio_wait_done = true;
                self.flush_pending();
            }
            return;
        }
        match &self.sent {
            Some(sent) if *sent == desired => self.emit(Kind::Video, sample),
            _ if sample.keyframe => {
                if self.sel.audio.is_some() && desired.1.is_none() && !self.audio_wait_done {
                    self.wait_since = Some(sample.dts);
                    self.hold(Kind::Video, sample);
                } else {
                    self.emit_tracks();
                    self.emit(Kind::Video, sample);
                }
            }
            // Only the audio changed: this frame still belongs under the tracks sent.
            Some(sent) if sent.0 == desired.0 => self.emit(Kind::Video, sample),
            _ => self.stats.dropped += 1,
        }
    }

    // --- Audio ----------------------------------------------------------------------

    fn audio_pes(&mut self, pes: Pes) {
        let parsed = adts::frames(&pes.data);
        self.stats.audio_errors += parsed.errors;
        let pts = pes.pts.map(|p| self.clock.extend(p));
        for (k, frame) in parsed.frames.iter().enumerate() {
            let Some(config) = frame.aac_config() else {
                self.stats.audio_errors += 1;
                continue;
            };
            if self.audio.config.as_ref() != Some(&config) {
                if self.audio.config.is_some() {
                    debug!(?config, "AAC configuration changed");
                }
                self.audio.config = Some(config);
                self.audio.next_dts = None;
            }
            let rate = self.audio.config.as_ref().map_or(48_000, |c| c.sample_rate);
            let measured = pts.map(|p| rescale(p, rate) + k as i64 * AAC_FRAME);
            let dts = match (self.audio.next_dts, measured) {
                (Some(next), Some(m)) if (m - next).abs() > AAC_FRAME / 2 => {
                    self.stats.audio_resyncs += 1;
                    m
                }
                (Some(next), _) => next,
                (None, Some(m)) => m,
                (None, None) => {
                    self.stats.pes_errors += 1;
                    return;
                }
            };
            self.audio.next_dts = Some(dts + AAC_FRAME);
            let sample = Sample {
                track: 0,
                dts,
                cts_offset: 0,
                keyframe: true,
                duration: Some(AAC_FRAME as u32),
                data: Bytes::copy_from_slice(frame.raw),
            };
            self.on_audio_sample(sample);
        }
    }

    fn on_audio_sample(&mut self, sample: Sample) {
        let desired = self.desired();
        if self.wait_since.is_some() {
            self.hold(Kind::Audio, sample);
            if desired.1.is_some() {
                self.flush_pending();
            }
            return;
        }
        match &self.sent {
            Some(sent) if *sent == desired => self.emit(Kind::Audio, sample),
            // Only the video changed: audio still fits the tracks sent until the keyframe.
            Some(sent) if sent.1 == desired.1 => self.emit(Kind::Audio, sample),
            _ if self.sel.video.is_none() => {
                self.emit_tracks();
                self.emit(Kind::Audio, sample);
            }
            _ => self.stats.dropped += 1,
        }
    }

    // --- SCTE-35 --------------------------------------------------------------------

    fn on_scte35(&mut self, section: &[u8]) {
        let s = &mut self.stats.scte35;
        let mut cue = match scte35::parse(section) {
            Ok(cue) => cue,
            Err(e) => {
                debug!("SCTE-35 section skipped: {e}");
                match e {
                    Scte35Error::Crc => s.crc += 1,
                    Scte35Error::Length { .. } | Scte35Error::TooShort(_) => s.length += 1,
                    Scte35Error::Cancelled(_) => s.cancelled += 1,
                    Scte35Error::Unsupported(_) => s.unsupported += 1,
                    Scte35Error::TableId(_) | Scte35Error::Malformed(_) => s.malformed += 1,
                }
                return;
            }
        };
        s.cues += 1;
        cue.pts = cue.pts.map(|raw| self.clock.place(raw as u64));
        if self.sent.is_some() {
            self.out.push_back(MediaEvent::Cue(cue));
        } else if self.wait_since.is_some() {
            self.pending.push((None, MediaEvent::Cue(cue)));
        } else if self.early_cues.len() < MAX_EARLY_CUES {
            self.early_cues.push(cue);
        } else {
            self.stats.scte35.dropped += 1;
        }
    }

    // --- Tracks and emission --------------------------------------------------------

    /// The tracks the stream has now.
    fn desired(&self) -> (Option<H264Config>, Option<AacConfig>) {
        (
            self.sel.video.and(self.video.params.config().cloned()),
            self.sel.audio.and(self.audio.config.clone()),
        )
    }

    fn hold(&mut self, kind: Kind, sample: Sample) {
        self.pending_bytes += sample.data.len();
        self.pending.push((Some(kind), MediaEvent::Sample(sample)));
        if self.pending.len() >= MAX_PENDING || self.pending_bytes >= MAX_PENDING_BYTES {
            self.audio_wait_done = true;
            self.flush_pending();
        }
    }

    /// Starts with the tracks known now and releases what was held.
    fn flush_pending(&mut self) {
        if self.wait_since.take().is_none() {
            return;
        }
        self.emit_tracks();
        self.pending_bytes = 0;
        for (kind, event) in std::mem::take(&mut self.pending) {
            match (kind, event) {
                (Some(kind), MediaEvent::Sample(s)) => self.emit(kind, s),
                (_, event) => self.out.push_back(event),
            }
        }
    }

    fn emit_tracks(&mut self) {
        let (video, audio) = self.desired();
        let mut tracks = Vec::with_capacity(2);
        if let Some(v) = &video {
            tracks.push(Track {
                timescale: 90_000,
                codec: weir_media::Codec::H264(v.clone()),
            });
        }
        if let Some(a) = &audio {
            tracks.push(Track {
                timescale: a.sample_rate,
                codec: weir_media::Codec::Aac(a.clone()),
            });
        }
        self.sent = Some((video, audio));
        self.stats.tracks_events += 1;
        self.out.push_back(MediaEvent::Tracks(tracks));
        for cue in std::mem::take(&mut self.early_cues) {
            self.out.push_back(MediaEvent::Cue(cue));
        }
    }

    fn emit(&mut self, kind: Kind, mut sample: Sample) {
        let Some((video, audio)) = &self.sent else {
            self.stats.dropped += 1;
            return;
        };
        match kind {
            Kind::Video if video.is_some() => {
                sample.track = 0;
                self.stats.video_samples += 1;
            }
            Kind::Audio if audio.is_some() => {
                sample.track = usize::from(video.is_some());
                self.stats.audio_samples += 1;
            }
            _ => {
                self.stats.dropped += 1;
                return;
            }
        }
        self.out.push_back(MediaEvent::Sample(sample));
    }
}

/// (PTS, DTS, first payload bytes) of a PES header, or `None` if it does not parse. A
/// stream_id without the optional header (padding, private_stream_2…) has no timestamps.
fn pes_fields<'a>(header: &PesHeader<'a>) -> Option<(Option<u64>, Option<u64>, &'a [u8])> {
    match header.contents() {
        pes::PesContents::Parsed(Some(c)) => {
            let (pts, dts) = match c.pts_dts() {
                Ok(pes::PtsDts::PtsOnly(Ok(pts))) => (Some(pts.value()), None),
                Ok(pes::PtsDts::Both {
                    pts: Ok(pts),
                    dts: Ok(dts),
                }) => (Some(pts.value()), Some(dts.value())),
                Err(pes::PesError::FieldNotPresent) => (None, None),
                _ => return None,
            };
            Some((pts, dts, c.payload()))
        }
        pes::PesContents::Parsed(None) => None,
        pes::PesContents::Payload(p) => Some((None, None, p)),
    }
}

/// 90 kHz ticks → `rate` ticks, rounding down.
fn rescale(ticks: i64, rate: u32) -> i64 {
    (i128::from(ticks) * i128::from(rate)).div_euclid(90_000) as i64
}

fn duration_ticks(d: Duration, rate: u32) -> i64 {
    i64::try_from(d.as_nanos() * u128::from(rate) / 1_000_000_000).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn clock_unwraps_in_both_directions() {
        let mut c = Clock::default();
        let top = (1u64 << 33) - 3000;
        assert_eq!(c.extend(top), top as i64);
        // Forward across the wrap.
        assert_eq!(c.extend(1000), (1 << 33) + 1000);
        // A little behind (audio before video), back across the wrap.
        assert_eq!(c.extend(top + 10), top as i64 + 10);
        assert_eq!(c.extend(5000), (1 << 33) + 5000);
        // A cue far ahead is placed without moving the reference.
        assert_eq!(c.place(5000 + 90_000 * 60), (1 << 33) + 5000 + 90_000 * 60);
        assert_eq!(c.last, Some((1 << 33) + 5000));
        // Backwards from near zero goes negative rather than jumping ahead 26 hours.
        let mut c = Clock::default();
        c.extend(100);
        assert_eq!(c.extend((1 << 33) - 100), -100);
    }

    #[test]
    fn rescales_to_the_audio_rate() {
        assert_eq!(rescale(90_000, 48_000), 48_000);
        assert_eq!(rescale(1920, 48_000), 1024);
        assert_eq!(rescale(-90_000, 44_100), -44_100);
        assert_eq!(duration_ticks(Duration::from_secs(1), 90_000), 90_000);
    }

    #[test]
    fn garbage_never_panics_and_is_counted() {
        let mut d = TsDemuxer::default();
        let mut x = 0x1234_5678u32;
        let junk: Vec<u8> = (0..50_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        d.push(&junk);
        d.finish();
        assert!(d.poll_event().is_none());
        assert!(d.stats().skipped_bytes > 40_000, "{:?}", d.stats());
        // Packets that start with 0x47 but are otherwise random.
        let mut d = TsDemuxer::default();
        for chunk in junk.chunks(TS) {
            let mut p = chunk.to_vec();
            p[0] = SYNC;
            d.push(&p);
        }
        d.finish();
        assert_eq!(d.stats().resyncs, 0);
    }
}
