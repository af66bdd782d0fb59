//! One rendition's rolling window and the snapshots that blocking playlist reloads wait on.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::part::{part_channel, PartConsumer, PartProducer};

/// The published state of a rendition after one part: where the live edge is, and the
/// rendered playlists. Playlists are rendered once per version by the packager, never per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenditionSnapshot {
    /// Bumped on every publish.
    pub version: u64,
    /// Oldest media sequence number still in the window.
    pub first_msn: u64,
    /// Media sequence number of the segment being built (its parts so far are listed).
    pub next_msn: u64,
    /// How many parts of `next_msn` are complete.
    pub parts_done: u32,
    pub target_duration: Duration,
    pub part_target: Duration,
    /// The full media playlist.
    pub playlist: Bytes,
    /// The delta update (`EXT-X-SKIP`), when the window is long enough to skip anything.
    pub playlist_skip: Option<Bytes>,
    /// `EXT-X-ENDLIST` was written: nothing more will be published.
    pub ended: bool,
    /// The stream's cues near the window, oldest first, for manifest plugins.
    pub cues: std::sync::Arc<[crate::PlacedCue]>,
}

impl RenditionSnapshot {
    /// Whether this version satisfies a blocking reload for `_HLS_msn=msn[&_HLS_part=part]`
    /// (RFC 8216bis 6.2.5.2): segment `msn` is complete, or part `part` of it is.
    pub fn satisfies(&self, msn: u64, part: Option<u32>) -> bool {
        if self.ended || msn < self.next_msn {
            return true;
        }
        match part {
            Some(p) => msn == self.next_msn && p < self.parts_done,
            None => false,
        }
    }

    /// Whether `_HLS_msn=msn[&_HLS_part=part]` is so far ahead of the live edge that the
    /// server should answer 400 at once instead of blocking (RFC 8216bis 6.2.5.2, a SHOULD):
    /// `msn` more than two past the last complete segment (`next_msn - 1`), or `part` more than
    /// the [Advance Part Limit](RenditionSnapshot::advance_part_limit) past the last part in
    /// the playlist. A part in a later segment is counted as if the segment in progress ended
    /// now, so no request a player can make from a recent playlist is refused. A playlist that
    /// has ended ignores both directives.
    pub fn too_far_ahead(&self, msn: u64, part: Option<u32>) -> bool {
        if self.ended {
            return false;
        }
        if msn > self.next_msn.saturating_add(1) {
            return true;
        }
        let Some(part) = part.map(u64::from) else {
            return false;
        };
        // Parts from the last one listed to the one asked for, at the fewest.
        let ahead = if msn == self.next_msn {
            (part + 1).saturating_sub(u64::from(self.parts_done))
        } else if msn > self.next_msn {
            part + 1
        } else {
            // Past the end of a complete segment is part 0 of the next: never far.
            0
        };
        ahead > self.advance_part_limit()
    }

    /// RFC 8216bis 6.2.5.2: three divided by the part target (in seconds) if it is under a
    /// second, else three.
    pub fn advance_part_limit(&self) -> u64 {
        let part_ns = self.part_target.as_nanos();
        if part_ns == 0 {
            return u64::MAX;
        }
        if self.part_target < Duration::from_secs(1) {
            u64::try_from(3_000_000_000 / part_ns).unwrap_or(u64::MAX)
        } else {
            3
        }
    }
}

/// The result of looking an object up in the window.
#[derive(Debug)]
pub enum Lookup<T> {
    Found(T),
    /// It was in the window and has been evicted (HTTP 410).
    Gone,
    /// It does not exist, or not yet (HTTP 404).
    Missing,
}

#[derive(Debug)]
struct Segment {
    msn: u64,
    /// Global part sequence numbers of its parts.
    parts: Range<u64>,
}

/// Init segments kept per rendition: the current one and the ones that segments still in
/// the window may reference (one per publisher return with new codec parameters).
const MAX_INIT_GENERATIONS: usize = 8;

/// Segments a removed segment outlives the playlist by, beyond the longest playlist's
/// complete segments: one for its own duration and one for the partial segment at the end
/// of the playlist that listed it. See [`RenditionProducer::publish`].
const RETAIN_EXTRA_SEGMENTS: u64 = 2;

#[derive(Debug, Default)]
struct Window {
    /// Init segments by generation, oldest first.
    inits: VecDeque<(u64, Bytes)>,
    /// Every part in the window by global sequence number, the open one last.
    parts: VecDeque<(u64, PartConsumer)>,
    /// Complete segments, oldest first.
    segments: VecDeque<Segment>,
    /// Objects below these have left the window and its grace period (410 rather than 404).
    first_msn: u64,
    first_part: u64,
    /// The most complete segments any published playlist listed.
    longest_playlist: u64,
}

impl Window {
    /// Part `seq`. Sequence numbers are increasing but not contiguous: gap parts (published
    /// while a contribution is lost) have no body and are never opened.
    fn part(&self, seq: u64) -> Option<&PartConsumer> {
        let i = self.parts.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
        self.parts.get(i).map(|(_, p)| p)
    }

    /// How many parts complete segment `msn` has, if it is still kept.
    fn segment_parts(&self, msn: u64) -> Option<u64> {
        let i = self.segments.binary_search_by_key(&msn, |s| s.msn).ok()?;
        self.segments
            .get(i)
            .map(|s| s.parts.end.saturating_sub(s.parts.start))
    }
}

/// Whether `snapshot` answers `_HLS_msn=msn[&_HLS_part=part]`: as
/// [`RenditionSnapshot::satisfies`], except that a part index past the last part of a complete
/// segment asks for part 0 of the next one (RFC 8216bis 6.2.5.2). A segment the window no
/// longer holds (or a gap segment, which it never held) is answered as before, at once.
fn ready(shared: &Shared, snapshot: &RenditionSnapshot, msn: u64, part: Option<u32>) -> bool {
    if let Some(p) = part {
        if !snapshot.ended && msn < snapshot.next_msn {
            let parts = shared.window().segment_parts(msn);
            if parts.is_some_and(|n| u64::from(p) >= n) {
                return snapshot.satisfies(msn.saturating_add(1), Some(0));
            }
        }
    }
    snapshot.satisfies(msn, part)
}

#[derive(Debug)]
struct Shared {
    window: Mutex<Window>,
}

impl Shared {
    fn window(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Creates a rendition: the packager side and a cloneable reader side.
pub fn rendition_channel() -> (RenditionProducer, RenditionConsumer) {
    let (tx, rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        window: Mutex::new(Window::default()),
    });
    (
        RenditionProducer {
            shared: Arc::clone(&shared),
            tx,
        },
        RenditionConsumer { shared, rx },
    )
}

/// The writer of one rendition, owned by the stream's packaging task.
///
/// Parts are named by a global, monotonic sequence number rather than by (segment, index):
/// the preload hint must name the next part before anyone knows whether it will start a
/// new segment (that depends on the next frame being a keyframe).
#[derive(Debug)]
pub struct RenditionProducer {
    shared: Arc<Shared>,
    tx: watch::Sender<Option<Arc<RenditionSnapshot>>>,
}

impl RenditionProducer {
    /// Sets the init segment of generation 0 (see [`RenditionProducer::set_init_generation`]).
    pub fn set_init(&self, init: Bytes) {
        self.set_init_generation(0, init);
    }

    /// Adds (or replaces) the init segment of `generation`. A new generation follows a
    /// change of codec parameters; older ones stay servable for the segments that use them.
    pub fn set_init_generation(&self, generation: u64, init: Bytes) {
        let mut w = self.shared.window();
        w.inits.retain(|(g, _)| *g != generation);
        w.inits.push_back((generation, init));
        w.inits.make_contiguous().sort_by_key(|(g, _)| *g);
        while w.inits.len() > MAX_INIT_GENERATIONS {
            w.inits.pop_front();
        }
    }

    /// Opens part `seq`. Readers can attach to it at once, which is what lets a request for
    /// the preload-hinted part stream the part while it is written. Opening a part that is
    /// already open returns `None`.
    pub fn begin_part(&self, seq: u64) -> Option<PartProducer> {
        let mut w = self.shared.window();
        if w.parts.back().is_some_and(|(s, _)| *s >= seq) {
            return None;
        }
        if w.parts.is_empty() {
            w.first_part = w.first_part.max(seq);
        }
        let (producer, consumer) = part_channel();
        w.parts.push_back((seq, consumer));
        Some(producer)
    }

    /// Records that segment `msn` is complete and made of parts `parts`.
    pub fn complete_segment(&self, msn: u64, parts: Range<u64>) {
        let mut w = self.shared.window();
        if w.segments.is_empty() {
            w.first_msn = w.first_msn.max(msn);
        }
        w.segments.push_back(Segment { msn, parts });
    }

    /// Publishes a new version and wakes every blocked reader whose condition it satisfies.
    ///
    /// A segment that left the playlist (below `snapshot.first_msn`) stays downloadable, parts
    /// included, for a while (RFC 8216bis 6.2.2: its duration plus that of the longest
    /// playlist that listed it, counted from when it first appeared; a part, three target
    /// durations after its tag left): a player or CDN that holds an older playlist can still
    /// fetch what it lists. The window has no clock, so the grace period is counted in
    /// segments: it is evicted once as many more segments as the longest playlist listed,
    /// plus [`RETAIN_EXTRA_SEGMENTS`], have left after it. Those later segments play for at
    /// least as long as the playlist that listed it (the packager cuts on the stream's cadence,
    /// gaps included), and it first appeared a whole playlist before it left, so this errs on
    /// the long side. Only then is it 410.
    pub fn publish(&self, snapshot: RenditionSnapshot) {
        {
            let mut w = self.shared.window();
            let listed = snapshot.next_msn.saturating_sub(snapshot.first_msn);
            w.longest_playlist = w.longest_playlist.max(listed);
            let grace = w.longest_playlist.saturating_add(RETAIN_EXTRA_SEGMENTS);
            let keep_from = snapshot.first_msn.saturating_sub(grace);
            while w.segments.front().is_some_and(|s| s.msn < keep_from) {
                if let Some(seg) = w.segments.pop_front() {
                    w.first_part = w.first_part.max(seg.parts.end);
                }
            }
            let first_part = w.first_part;
            while w.parts.front().is_some_and(|(s, _)| *s < first_part) {
                w.parts.pop_front();
            }
            w.first_msn = w.first_msn.max(keep_from);
        }
        self.tx.send_replace(Some(Arc::new(snapshot)));
    }

    /// The latest published version.
    pub fn snapshot(&self) -> Option<Arc<RenditionSnapshot>> {
        self.tx.borrow().clone()
    }

    pub fn consumer(&self) -> RenditionConsumer {
        RenditionConsumer {
            shared: Arc::clone(&self.shared),
            rx: self.tx.subscribe(),
        }
    }
}

/// A reader of one rendition. Clone it freely: one per request.
#[derive(Debug, Clone)]
pub struct RenditionConsumer {
    shared: Arc<Shared>,
    rx: watch::Receiver<Option<Arc<RenditionSnapshot>>>,
}

impl RenditionConsumer {
    /// The latest published version, if any.
    pub fn snapshot(&self) -> Option<Arc<RenditionSnapshot>> {
        self.rx.borrow().clone()
    }

    /// Waits until a published version satisfies `_HLS_msn=msn[&_HLS_part=part]` (see
    /// [`RenditionConsumer::is_ready`]).
    /// Returns `None` if the producer is gone without ever satisfying it.
    /// The caller bounds the wait (3× target duration) with a timer.
    pub async fn wait_for(
        &mut self,
        msn: u64,
        part: Option<u32>,
    ) -> Option<Arc<RenditionSnapshot>> {
        let shared = Arc::clone(&self.shared);
        let snap = self
            .rx
            .wait_for(|s| s.as_ref().is_some_and(|s| ready(&shared, s, msn, part)))
            .await
            .ok()?;
        snap.clone()
    }

    /// Whether `snapshot` answers `_HLS_msn=msn[&_HLS_part=part]` now. A part index past the
    /// last part of a complete segment means part 0 of the next segment (RFC 8216bis
    /// 6.2.5.2), which is what [`RenditionConsumer::wait_for`] waits for too.
    pub fn is_ready(&self, snapshot: &RenditionSnapshot, msn: u64, part: Option<u32>) -> bool {
        ready(&self.shared, snapshot, msn, part)
    }

    /// Waits for the first published version.
    pub async fn first(&mut self) -> Option<Arc<RenditionSnapshot>> {
        let snap = self.rx.wait_for(Option::is_some).await.ok()?;
        snap.clone()
    }

    /// The newest init segment.
    pub fn init(&self) -> Option<Bytes> {
        self.shared.window().inits.back().map(|(_, b)| b.clone())
    }

    /// The init segment of `generation`, if it is still kept.
    pub fn init_generation(&self, generation: u64) -> Option<Bytes> {
        let w = self.shared.window();
        w.inits
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, b)| b.clone())
    }

    /// Part `seq` (global part sequence number): complete, or still being written.
    pub fn part(&self, seq: u64) -> Lookup<PartConsumer> {
        let w = self.shared.window();
        if seq < w.first_part {
            return Lookup::Gone;
        }
        match w.part(seq) {
            Some(p) => Lookup::Found(p.clone()),
            None => Lookup::Missing,
        }
    }

    /// Waits for a version newer than `version`; `None` once the producer is gone.
    pub async fn newer_than(&mut self, version: u64) -> Option<Arc<RenditionSnapshot>> {
        let snap = self
            .rx
            .wait_for(|s| s.as_ref().is_some_and(|s| s.version > version))
            .await
            .ok()?;
        snap.clone()
    }

    /// Segment `msn`'s parts so far, in order, and whether it is complete: a complete
    /// segment's parts, or for the segment in progress (the latest version's `next_msn`)
    /// the parts after the last complete segment, the one being written last. A segment is
    /// completed before the next one's first part is opened, so those parts are all its
    /// own. This is what a byte range of a segment in progress is served from.
    pub fn segment_so_far(&self, msn: u64) -> Lookup<(Vec<PartConsumer>, bool)> {
        let in_progress = self
            .rx
            .borrow()
            .as_ref()
            .is_some_and(|s| !s.ended && s.next_msn == msn);
        let w = self.shared.window();
        if msn < w.first_msn {
            return Lookup::Gone;
        }
        if let Some(seg) = w.segments.iter().find(|s| s.msn == msn) {
            let parts: Option<Vec<PartConsumer>> =
                seg.parts.clone().map(|seq| w.part(seq).cloned()).collect();
            return parts.map_or(Lookup::Missing, |p| Lookup::Found((p, true)));
        }
        if !in_progress || w.segments.back().is_some_and(|s| s.msn > msn) {
            return Lookup::Missing;
        }
        let from = w.segments.back().map_or(0, |s| s.parts.end);
        let parts = w
            .parts
            .iter()
            .filter(|(seq, _)| *seq >= from)
            .map(|(_, p)| p.clone())
            .collect();
        Lookup::Found((parts, false))
    }

    /// All parts of complete segment `msn`, in order.
    pub fn segment(&self, msn: u64) -> Lookup<Vec<PartConsumer>> {
        let w = self.shared.window();
        if msn < w.first_msn {
            return Lookup::Gone;
        }
        let Some(seg) = w.segments.iter().find(|s| s.msn == msn) else {
            return Lookup::Missing;
        };
        let parts: Option<Vec<PartConsumer>> =
            seg.parts.clone().map(|seq| w.part(seq).cloned()).collect();
        match parts {
            Some(p) => Lookup::Found(p),
            None => Lookup::Missing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(version: u64, first: u64, next: u64, parts: u32) -> RenditionSnapshot {
        RenditionSnapshot {
            version,
            first_msn: first,
            next_msn: next,
            parts_done: parts,
            target_duration: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            playlist: Bytes::from(format!("v{version}")),
            playlist_skip: None,
            ended: false,
            cues: Default::default(),
        }
    }

    #[test]
    fn blocking_conditions() {
        let s = snap(1, 0, 5, 2);
        assert!(s.satisfies(4, None));
        assert!(s.satisfies(4, Some(9)));
        assert!(!s.satisfies(5, None));
        assert!(s.satisfies(5, Some(1)));
        assert!(!s.satisfies(5, Some(2)));
        assert!(!s.satisfies(6, Some(0)));
        assert!(!s.too_far_ahead(6, None));
        assert!(s.too_far_ahead(7, None));
        assert_eq!(s.advance_part_limit(), 6);
        assert!(!s.too_far_ahead(5, Some(7)));
        assert!(s.too_far_ahead(5, Some(8)));
        assert!(!s.too_far_ahead(6, Some(5)));
        assert!(s.too_far_ahead(6, Some(6)));
        assert!(!s.too_far_ahead(4, Some(99)));
    }

    #[tokio::test]
    async fn wait_for_wakes_on_the_satisfying_version() {
        let (p, c) = rendition_channel();
        p.publish(snap(1, 0, 0, 1));
        let mut waiter = c.clone();
        let task = tokio::spawn(async move { waiter.wait_for(0, Some(2)).await });
        p.publish(snap(2, 0, 0, 2));
        p.publish(snap(3, 0, 0, 3));
        let got = task.await.unwrap().unwrap();
        assert!(got.version >= 3);
    }

    #[test]
    fn window_eviction_answers_gone() {
        let (p, c) = rendition_channel();
        let mut seq = 10;
        for msn in 0..3 {
            let first = seq;
            for _ in 0..2 {
                let w = p.begin_part(seq).unwrap();
                w.push(Bytes::from(format!("{msn}.{seq}")));
                w.finish();
                seq += 1;
            }
            p.complete_segment(msn, first..seq);
        }
        assert!(p.begin_part(seq - 1).is_none(), "a part opens once");
        p.set_init(Bytes::from_static(b"init0"));
        p.set_init_generation(1, Bytes::from_static(b"init1"));
        assert_eq!(c.init().unwrap(), Bytes::from_static(b"init1"));
        assert_eq!(c.init_generation(0).unwrap(), Bytes::from_static(b"init0"));
        assert!(c.init_generation(2).is_none());
        let open = p.begin_part(seq).unwrap();
        assert!(matches!(c.part(seq), Lookup::Found(ref part) if !part.is_complete()));
        assert!(matches!(c.segment(0), Lookup::Found(ref v) if v.len() == 2));
        p.publish(snap(1, 1, 3, 0));
        // Segment 0 left the playlist but stays downloadable for a while (RFC 8216bis 6.2.2).
        assert!(matches!(c.segment(0), Lookup::Found(ref v) if v.len() == 2));
        assert!(matches!(c.part(10), Lookup::Found(_)));
        // Gone once the longest playlist's worth of segments (two) plus two more have left.
        p.publish(snap(2, 4, 6, 0));
        assert!(matches!(c.segment(0), Lookup::Found(_)));
        p.publish(snap(3, 5, 7, 0));
        assert!(matches!(c.part(10), Lookup::Gone));
        assert!(matches!(c.part(11), Lookup::Gone));
        assert!(matches!(c.segment(0), Lookup::Gone));
        assert!(matches!(c.part(12), Lookup::Found(_)));
        assert!(matches!(c.segment(1), Lookup::Found(_)));
        assert!(matches!(c.segment(3), Lookup::Missing));
        assert!(matches!(c.part(99), Lookup::Missing));
        drop(open);
        // Parts skipped by a gap leave holes in the numbering; later parts are still found.
        let after_gap = p.begin_part(seq + 10).unwrap();
        after_gap.finish();
        p.complete_segment(9, seq + 10..seq + 11);
        assert!(matches!(c.part(seq + 5), Lookup::Missing));
        assert!(matches!(c.part(seq + 10), Lookup::Found(_)));
        assert!(matches!(c.segment(9), Lookup::Found(ref v) if v.len() == 1));
    }

    #[test]
    fn segment_so_far_is_the_parts_after_the_last_complete_segment() {
        let (p, c) = rendition_channel();
        for seq in 0..3 {
            p.begin_part(seq).unwrap().finish();
        }
        p.complete_segment(0, 0..2);
        let open = p.begin_part(3).unwrap();
        p.publish(snap(1, 0, 1, 1));
        let Lookup::Found((parts, true)) = c.segment_so_far(0) else {
            panic!("segment 0 is complete");
        };
        assert_eq!(parts.len(), 2);
        // Segment 1 in progress: part 2 (complete) and part 3 (being written).
        let Lookup::Found((parts, false)) = c.segment_so_far(1) else {
            panic!("segment 1 is in progress");
        };
        assert_eq!(parts.len(), 2);
        assert!(parts[0].is_complete() && !parts[1].is_complete());
        assert!(matches!(c.segment_so_far(2), Lookup::Missing));
        // Completed before the next segment's first part opens: never the next one's parts.
        open.finish();
        p.complete_segment(1, 2..4);
        let _next = p.begin_part(4).unwrap();
        assert!(matches!(c.segment_so_far(1), Lookup::Found((ref v, true)) if v.len() == 2));
        p.publish(snap(2, 0, 2, 0));
        assert!(matches!(c.segment_so_far(2), Lookup::Found((ref v, false)) if v.len() == 1));
    }
}
