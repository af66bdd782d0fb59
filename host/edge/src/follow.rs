//! Following one upstream rendition, sans IO (docs/design/009-edge.md).
//!
//! The driver asks upstream for the playlist [`Follower::next_request`] names (a blocking
//! request for the part after the last one seen, full playlist), hands the text to
//! [`Follower::playlist`], and carries out the actions it returns, in order: fetch an init
//! segment, open a part locally and fill it from upstream (the hinted part is held upstream
//! until it is complete, then sent whole), record a segment's parts, publish.

use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

use weir_check::playlist::{parse_media, MediaPlaylist};

use crate::trim::trim;
use crate::Error;

/// What the driver does next, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Fetch init segment `uri` and keep it as generation `generation`.
    Init { generation: u64, uri: String },
    /// Open part `seq` locally (so local requests for it wait) and fill it from upstream
    /// `uri`; a gap part (`EXT-X-PART:…,GAP=YES`) has no bytes: open and finish it empty.
    Part { seq: u64, uri: String, gap: bool },
    /// Segment `msn` is complete and made of local parts `parts`.
    Segment { msn: u64, parts: Range<u64> },
    /// A new version of the local playlist.
    Publish(Publication),
}

/// The local playlist: the upstream's, trimmed to what this edge holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publication {
    pub first_msn: u64,
    pub next_msn: u64,
    pub parts_done: u32,
    pub target_duration: Duration,
    pub part_target: Duration,
    pub playlist: String,
    pub ended: bool,
}

#[derive(Debug, Default)]
pub struct Follower {
    /// The newest part opened locally.
    opened: Option<u64>,
    /// The first part opened locally: what the edge holds starts there.
    held_from: Option<u64>,
    inits: BTreeSet<u64>,
    /// The newest segment recorded locally.
    recorded: Option<u64>,
    next: Option<(u64, u32)>,
}

/// The number in a weir object name: `part123.m4s` → 123, `init7.mp4` → 7.
fn number(uri: &str, prefix: &str, suffix: &str) -> Option<u64> {
    let name = uri.rsplit('/').next()?;
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

fn part_seq(uri: &str) -> Result<u64, Error> {
    number(uri, "part", ".m4s").ok_or_else(|| Error::NotWeir(uri.to_owned()))
}

impl Follower {
    pub fn new() -> Self {
        Self::default()
    }

    /// `(_HLS_msn, _HLS_part)` for the next blocking request: the part after the last one
    /// seen. `None` before the first playlist (ask without directives) and after the end.
    pub fn next_request(&self) -> Option<(u64, u32)> {
        self.next
    }

    /// Forgets where the next blocking request points: the next request asks for the
    /// upstream's playlist as it is (after a 400 or 503, e.g. an upstream that restarted).
    pub fn restart_request(&mut self) {
        self.next = None;
    }

    /// Takes one full upstream playlist; returns what to do, in order.
    pub fn playlist(&mut self, text: &str) -> Result<Vec<Action>, Error> {
        let p = parse_media(text).map_err(Error::Playlist)?;
        if p.skipped.is_some() {
            return Err(Error::Playlist(
                "a delta update where the full playlist was asked for".into(),
            ));
        }
        let mut actions = Vec::new();
        // Init segments first: the parts that follow use them.
        for line in text.lines().filter(|l| l.starts_with("#EXT-X-MAP:")) {
            let attrs = weir_check::playlist::attributes(&line["#EXT-X-MAP:".len()..]);
            let uri = attrs.get("URI").cloned().unwrap_or_default();
            let generation =
                number(&uri, "init", ".mp4").ok_or_else(|| Error::NotWeir(uri.clone()))?;
            if self.inits.insert(generation) {
                actions.push(Action::Init { generation, uri });
            }
        }
        // Parts, oldest first, then the hinted one.
        let listed = p
            .segments
            .iter()
            .flat_map(|s| &s.parts)
            .chain(&p.open_parts);
        for part in listed {
            if part.byterange.is_some() {
                return Err(Error::ByteRange);
            }
            let seq = part_seq(&part.uri)?;
            self.open(&mut actions, seq, &part.uri, part.gap);
        }
        let hint = p.hints.iter().find(|h| h.kind == "PART");
        if let Some(h) = hint {
            if h.byterange_start.is_some() {
                return Err(Error::ByteRange);
            }
            let seq = part_seq(&h.uri)?;
            self.open(&mut actions, seq, &h.uri, false);
        }
        // Complete segments whose parts are all held.
        let mut first_held = None;
        for s in &p.segments {
            let (Some(first), Some(last)) = (s.parts.first(), s.parts.last()) else {
                continue;
            };
            let (first, last) = (part_seq(&first.uri)?, part_seq(&last.uri)?);
            if self.held_from.is_none_or(|h| first < h) {
                continue;
            }
            first_held.get_or_insert(s.msn);
            if self.recorded.is_none_or(|r| s.msn > r) {
                self.recorded = Some(s.msn);
                actions.push(Action::Segment {
                    msn: s.msn,
                    parts: first..last.saturating_add(1),
                });
            }
        }
        self.next = (!p.endlist).then(|| next_after(&p));
        // Publish once a complete segment is held (a player needs one to start).
        if let Some(first_msn) = first_held {
            actions.push(Action::Publish(Publication {
                first_msn,
                next_msn: p.open_msn(),
                parts_done: u32::try_from(p.open_parts.len()).unwrap_or(u32::MAX),
                target_duration: Duration::from_secs(p.target_duration.unwrap_or(0)),
                part_target: Duration::from_secs_f64(p.part_target.unwrap_or(0.0).max(0.0)),
                playlist: trim(text, p.media_sequence, first_msn),
                ended: p.endlist,
            }));
        }
        Ok(actions)
    }

    fn open(&mut self, actions: &mut Vec<Action>, seq: u64, uri: &str, gap: bool) {
        if self.opened.is_some_and(|o| seq <= o) {
            return;
        }
        self.opened = Some(seq);
        self.held_from.get_or_insert(seq);
        actions.push(Action::Part {
            seq,
            uri: uri.to_owned(),
            gap,
        });
    }
}

/// The part after the newest one listed.
fn next_after(p: &MediaPlaylist) -> (u64, u32) {
    (
        p.open_msn(),
        u32::try_from(p.open_parts.len()).unwrap_or(u32::MAX),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playlist(first_msn: u64, complete: &[(u64, &[u64])], open: &[u64], hint: u64) -> String {
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n\
             #EXT-X-PART-INF:PART-TARGET=0.50000\n#EXT-X-MEDIA-SEQUENCE:{first_msn}\n\
             #EXT-X-MAP:URI=\"init100.mp4\"\n"
        );
        for (msn, parts) in complete {
            s.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:2026-12-07T07:20:{:02}.000Z\n",
                msn % 60
            ));
            for p in *parts {
                s.push_str(&format!(
                    "#EXT-X-PART:DURATION=0.50000,URI=\"part{p}.m4s\"\n"
                ));
            }
            s.push_str(&format!("#EXTINF:2.00000,\nseg{msn}.m4s\n"));
        }
        for p in open {
            s.push_str(&format!(
                "#EXT-X-PART:DURATION=0.50000,URI=\"part{p}.m4s\"\n"
            ));
        }
        s.push_str(&format!(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{hint}.m4s\"\n"
        ));
        s
    }

    fn parts(actions: &[Action]) -> Vec<u64> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Part { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    fn publication(actions: &[Action]) -> Option<&Publication> {
        actions.iter().find_map(|a| match a {
            Action::Publish(p) => Some(p),
            _ => None,
        })
    }

    #[test]
    fn joining_opens_the_listed_parts_and_publishes_from_the_first_held_segment() {
        let mut f = Follower::new();
        assert_eq!(f.next_request(), None);
        // Segment 10 no longer lists its parts; 11 and 12 do; 13 is in progress.
        let text = playlist(
            10,
            &[
                (10, &[]),
                (11, &[104, 105, 106, 107]),
                (12, &[108, 109, 110, 111]),
            ],
            &[112],
            113,
        );
        let a = f.playlist(&text).unwrap();
        assert_eq!(
            a[0],
            Action::Init {
                generation: 100,
                uri: "init100.mp4".into()
            }
        );
        assert_eq!(parts(&a), (104..=113).collect::<Vec<_>>());
        assert!(a.contains(&Action::Segment {
            msn: 11,
            parts: 104..108
        }));
        assert!(a.contains(&Action::Segment {
            msn: 12,
            parts: 108..112
        }));
        let p = publication(&a).unwrap();
        assert_eq!((p.first_msn, p.next_msn, p.parts_done), (11, 13, 1));
        assert!(
            p.playlist.contains("#EXT-X-MEDIA-SEQUENCE:11\n") && !p.playlist.contains("seg10"),
            "{}",
            p.playlist
        );
        assert_eq!(f.next_request(), Some((13, 1)));

        // The next version: the hinted part is listed, a new one hinted; nothing twice.
        let text = playlist(
            10,
            &[
                (10, &[]),
                (11, &[104, 105, 106, 107]),
                (12, &[108, 109, 110, 111]),
            ],
            &[112, 113],
            114,
        );
        let a = f.playlist(&text).unwrap();
        assert_eq!(parts(&a), vec![114]);
        assert!(!a
            .iter()
            .any(|x| matches!(x, Action::Init { .. } | Action::Segment { .. })));
        assert_eq!(publication(&a).unwrap().parts_done, 2);
        assert_eq!(f.next_request(), Some((13, 2)));
    }

    #[test]
    fn nothing_is_published_before_a_complete_segment_is_held() {
        let mut f = Follower::new();
        // Joined as segment 12 ended: its parts are listed but 11's are not.
        let a = f
            .playlist(&playlist(11, &[(11, &[])], &[108, 109], 110))
            .unwrap();
        assert_eq!(parts(&a), vec![108, 109, 110]);
        assert!(publication(&a).is_none());
        let a = f
            .playlist(&playlist(
                11,
                &[(11, &[]), (12, &[108, 109, 110, 111])],
                &[],
                112,
            ))
            .unwrap();
        assert_eq!(parts(&a), vec![111, 112]);
        assert!(a.contains(&Action::Segment {
            msn: 12,
            parts: 108..112
        }));
        assert_eq!(publication(&a).unwrap().first_msn, 12);
        assert_eq!(f.next_request(), Some((13, 0)));
    }

    #[test]
    fn byte_ranges_and_foreign_names_are_refused_with_a_reason() {
        let mut f = Follower::new();
        let text = playlist(1, &[], &[5], 6).replace("part6.m4s", "chunk-6.m4s");
        assert!(matches!(f.playlist(&text), Err(Error::NotWeir(u)) if u == "chunk-6.m4s"));
        let text = playlist(1, &[], &[5], 6)
            .replace("URI=\"part5.m4s\"", "URI=\"seg1.m4s\",BYTERANGE=\"100@0\"");
        assert!(matches!(
            Follower::new().playlist(&text),
            Err(Error::ByteRange)
        ));
        assert!(matches!(
            Follower::new().playlist("not a playlist"),
            Err(Error::Playlist(_))
        ));
    }

    #[test]
    fn an_ended_playlist_asks_for_nothing_more() {
        let mut f = Follower::new();
        let text = playlist(1, &[(1, &[1, 2, 3, 4])], &[], 5).replace(
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part5.m4s\"\n",
            "#EXT-X-ENDLIST\n",
        );
        let a = f.playlist(&text).unwrap();
        assert!(publication(&a).unwrap().ended);
        assert_eq!(f.next_request(), None);
    }
}
