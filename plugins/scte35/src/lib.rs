//! scte35: writes the stream's SCTE-35 cues into its media playlists.
//!
//! Two dialects, chosen by config (README.md):
//!
//! - `daterange` (default): `EXT-X-DATERANGE` per RFC 8216bis 4.4.5.1.1, the same lines
//!   weir's packager writes. An OUT gets `ID="splice-<id>"`, `START-DATE`,
//!   `PLANNED-DURATION` (the declared length) and `SCTE35-OUT`; once its IN has arrived, a
//!   second tag with the same ID and `START-DATE` carries `DURATION` and `SCTE35-IN`,
//!   written where the IN happens. A lone IN and any other command (`SCTE35-CMD`) stand
//!   alone. A tag the input already carries (same ID and the same attributes named) is not
//!   written twice, so this plugin can run on top of the packager's own cue rendering.
//! - `cue-out`: `EXT-X-CUE-OUT:<secs>` on the segment where the break starts,
//!   `EXT-X-CUE-OUT-CONT:<elapsed>/<secs>` on each later segment inside it, `EXT-X-CUE-IN`
//!   on the first segment after it. `both` writes both.
//!
//! Which cues: a tag is written only when its date falls inside the playlist's time range,
//! `[first segment's date, end of the listed media + the preload-hinted part)`. A break
//! whose OUT is dated before the first listed segment but which is still open (or ends
//! inside the window) keeps its OUT tag, placed before the first segment. RFC 8216bis
//! 4.4.5.1 defines a date range by its dates, not by where its tag sits, and keeps it in
//! the playlist while it applies to listed segments; a client that joins mid-break needs
//! the OUT to know it is inside one. Ranges that ended before the window are dropped.
//! In a delta update the window starts at the estimated date of the first skipped segment,
//! so skipped segments keep their tags as the full playlist has them.
//!
//! varies-on: nothing (every viewer gets the same playlist). failure-policy: last-good
//! (a failed run keeps the markers the previous good run placed).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use serde::Deserialize;
use weir_guest::scte35::{self, CueRole};
use weir_guest::time::format_secs;
use weir_guest::{
    CueEvent, DateRange, FailurePolicy, Guest, MediaPlaylist, PluginInfo, RequestContext,
};

/// Which tags to write.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Dialect {
    #[default]
    Daterange,
    CueOut,
    Both,
}

impl Dialect {
    /// The name the config uses.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Daterange => "daterange",
            Dialect::CueOut => "cue-out",
            Dialect::Both => "both",
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub dialect: Dialect,
}

impl Config {
    pub fn parse(text: &str) -> Result<Self, String> {
        weir_guest::config::from_json(text)
    }
}

thread_local! {
    // One instance serves one tenant's plugin: init stores the config here for the calls
    // that follow in the same instance.
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn config() -> Result<Rc<Config>, String> {
    CONFIG
        .with(|c| c.borrow().clone())
        .ok_or_else(|| "scte35: not initialised (init must run in this instance first)".to_string())
}

struct Scte35;

impl Guest for Scte35 {
    fn init(config: String) -> Result<PluginInfo, String> {
        let parsed = Config::parse(&config)?;
        // Concatenated, not `format!`: init runs before every call (in a fresh instance),
        // where formatting's indirect calls first touch the function table, a page fault.
        let mut line = String::from("scte35: dialect ");
        line.push_str(parsed.dialect.name());
        weir_guest::log::info(&line);
        CONFIG.with(|c| *c.borrow_mut() = Some(Rc::new(parsed)));
        Ok(PluginInfo {
            varies_on: Vec::new(),
            failure_policy: FailurePolicy::LastGood,
        })
    }

    fn transform_media_playlist(
        _ctx: RequestContext,
        cues: Vec<CueEvent>,
        playlist: String,
    ) -> Result<String, String> {
        let config = config()?;
        transform(&config, &cues, playlist)
    }

    fn transform_multivariant_playlist(
        _ctx: RequestContext,
        playlist: String,
    ) -> Result<String, String> {
        Ok(playlist)
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("scte35 inserts no interstitials".into())
    }
}

weir_guest::export!(Scte35);

/// The plugin's work, apart from the bindings so it can be tested natively.
pub fn transform(config: &Config, cues: &[CueEvent], text: String) -> Result<String, String> {
    if cues.is_empty() {
        return Ok(text);
    }
    // The playlist keeps the text (no copy); unedited, it renders it back byte for byte.
    let mut playlist = MediaPlaylist::parse_owned(text)?;
    let Some(window) = window(&playlist) else {
        // No EXT-X-PROGRAM-DATE-TIME: cue dates cannot be placed.
        return Ok(playlist.render());
    };
    let mut changed = false;
    if matches!(config.dialect, Dialect::Daterange | Dialect::Both) {
        changed |= add_dateranges(&mut playlist, cues, window)?;
    }
    if matches!(config.dialect, Dialect::CueOut | Dialect::Both) {
        changed |= add_cue_out(&mut playlist, cues, window)?;
    }
    if !changed {
        return Ok(playlist.render());
    }
    playlist.omit_partial_date_for_hlsjs();
    Ok(playlist.render())
}

/// `[start, end)` of the playlist on the date timeline (see the crate docs).
pub fn window(playlist: &MediaPlaylist) -> Option<(u64, u64)> {
    let first = playlist.start_ms()?;
    let skipped = playlist
        .skipped_segments()
        .saturating_mul(playlist.target_duration_ms());
    let hinted = if playlist.preload_hints().is_empty() {
        0
    } else {
        playlist.part_target_ms().unwrap_or(0)
    };
    Some((
        first.saturating_sub(skipped),
        playlist.end_ms()?.saturating_add(hinted),
    ))
}

/// One tag to write: where it goes and what it says.
struct Placed {
    at_ms: u64,
    range: DateRange,
}

fn add_dateranges(
    playlist: &mut MediaPlaylist,
    cues: &[CueEvent],
    (start, end): (u64, u64),
) -> Result<bool, String> {
    let inside = |ms: u64| ms >= start && ms < end;
    let mut taken = BTreeSet::new();
    let mut placed = Vec::new();
    for cue in cues {
        let role = scte35::role(cue);
        if role == CueRole::In && scte35::is_paired_in(cue, cues) {
            continue; // written as its OUT's closing tag
        }
        let id = unique_id(&mut taken, cue);
        let section = (!cue.section.is_empty()).then_some(cue.section.as_slice());
        let mut range = DateRange::new(id.clone(), cue.start_ms);
        if let Some(d) = cue.duration_ms {
            range = range.planned_duration_ms(d);
        }
        match role {
            CueRole::Out => {
                let b = scte35::Break {
                    out: cue,
                    r#in: None,
                };
                if !b.overlaps(start, end) {
                    continue;
                }
                if let Some(s) = section {
                    range = range.scte35_out(s);
                }
                placed.push(Placed {
                    at_ms: cue.start_ms,
                    range,
                });
                if let Some(back) = cue.end_ms.filter(|e| inside(*e)) {
                    let mut close = DateRange::new(id, cue.start_ms)
                        .duration_ms(back.saturating_sub(cue.start_ms));
                    let r#in = cues.iter().find(|c| {
                        scte35::role(c) == CueRole::In && c.id == cue.id && c.start_ms == back
                    });
                    if let Some(s) = r#in.map(|c| c.section.as_slice()).filter(|s| !s.is_empty()) {
                        close = close.scte35_in(s);
                    }
                    placed.push(Placed {
                        at_ms: back,
                        range: close,
                    });
                }
            }
            CueRole::In | CueRole::Cmd => {
                if !inside(cue.start_ms) {
                    continue;
                }
                if let Some(s) = section {
                    range = if role == CueRole::In {
                        range.scte35_in(s)
                    } else {
                        range.scte35_cmd(s)
                    };
                }
                placed.push(Placed {
                    at_ms: cue.start_ms,
                    range,
                });
            }
        }
    }
    let existing: BTreeSet<_> = playlist
        .dateranges()
        .iter()
        .map(|d| shape(&d.attributes))
        .collect();
    placed.sort_by_key(|p| p.at_ms);
    let mut changed = false;
    for p in placed {
        let attributes = p.range.attributes()?;
        if existing.contains(&shape(&attributes)) {
            continue;
        }
        // What `p.range.to_tag()` writes, without building the attributes again.
        let mut tag = String::from("#EXT-X-DATERANGE:");
        tag.push_str(&attributes.render());
        playlist.insert_tag_at(p.at_ms, &tag)?;
        changed = true;
    }
    Ok(changed)
}

/// `splice-<id>`, or `splice-<id>-<start_ms>` (then `-<n>`) when an earlier cue in the list
/// took it: event ids are reused, and two ranges with one ID must agree on every attribute.
fn unique_id(taken: &mut BTreeSet<String>, cue: &CueEvent) -> String {
    let mut base = String::from("splice-");
    weir_guest::time::push_decimal(&mut base, u64::from(cue.id));
    let mut id = base.clone();
    if taken.contains(&id) {
        let dated = format!("{base}-{}", cue.start_ms);
        id = dated.clone();
        let mut n = 1;
        while taken.contains(&id) {
            n += 1;
            id = format!("{dated}-{n}");
        }
    }
    taken.insert(id.clone());
    id
}

/// What makes two DATERANGE tags "the same one": the ID and which attributes they name.
fn shape(attributes: &weir_guest::attr::AttributeList) -> (String, Vec<String>) {
    let id = attributes.get("ID").unwrap_or_default().to_string();
    let mut names: Vec<String> = attributes
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| n != "ID" && n != "START-DATE")
        .collect();
    names.sort();
    (id, names)
}

fn add_cue_out(
    playlist: &mut MediaPlaylist,
    cues: &[CueEvent],
    (start, end): (u64, u64),
) -> Result<bool, String> {
    let mut changed = false;
    for b in scte35::breaks(cues) {
        if !b.overlaps(start, end) {
            continue;
        }
        let length = b.planned_ms().or(b.length_ms());
        let back = b.expected_end_ms();
        let mut cue_in_written = false;
        for segment in playlist.segments_mut() {
            let Some(s0) = segment.start_ms() else {
                continue;
            };
            let s1 = if segment.is_partial() {
                u64::MAX
            } else {
                segment.end_ms().unwrap_or(s0)
            };
            let tag = if b.start_ms() >= s0 && b.start_ms() < s1 {
                Some(match length {
                    Some(d) => format!("#EXT-X-CUE-OUT:{}", format_secs(d)),
                    None => "#EXT-X-CUE-OUT".to_string(),
                })
            } else if s0 > b.start_ms() && back.is_none_or(|e| s0 < e) {
                let elapsed = format_secs(s0 - b.start_ms());
                Some(match length {
                    Some(d) => format!("#EXT-X-CUE-OUT-CONT:{elapsed}/{}", format_secs(d)),
                    None => format!("#EXT-X-CUE-OUT-CONT:{elapsed}"),
                })
            } else if back.is_some_and(|e| s0 >= e) && !cue_in_written {
                cue_in_written = true;
                Some("#EXT-X-CUE-IN".to_string())
            } else {
                None
            };
            if let Some(tag) = tag {
                segment.push_tag(&tag)?;
                changed = true;
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_guest::CueKind;

    const FULL: &str = include_str!("../../../guest-sdk/tests/data/media_full.m3u8");
    const DELTA: &str = include_str!("../../../guest-sdk/tests/data/media_delta.m3u8");
    /// 2026-11-25T16:00:00.000Z: seg40's date in the golden files.
    const T0: u64 = 1_795_622_400_000;
    const OUT_SECTION: [u8; 4] = [0xFC, 0x30, 0x25, 0x00];
    const IN_SECTION: [u8; 4] = [0xFC, 0x30, 0x20, 0x00];

    fn out(id: u32, start: u64, planned: Option<u64>, end: Option<u64>) -> CueEvent {
        CueEvent {
            id,
            kind: CueKind::SpliceInsert,
            out_of_network: true,
            start_ms: start,
            duration_ms: planned,
            end_ms: end,
            segmentation_type: None,
            section: OUT_SECTION.to_vec(),
        }
    }

    fn r#in(id: u32, at: u64) -> CueEvent {
        CueEvent {
            out_of_network: false,
            start_ms: at,
            duration_ms: None,
            section: IN_SECTION.to_vec(),
            ..out(id, at, None, None)
        }
    }

    fn run(dialect: Dialect, cues: &[CueEvent], text: &str) -> String {
        transform(&Config { dialect }, cues, text.to_string()).unwrap()
    }

    #[test]
    fn config() {
        assert_eq!(Config::parse("").unwrap().dialect, Dialect::Daterange);
        assert_eq!(
            Config::parse(r#"{"dialect":"cue-out"}"#).unwrap().dialect,
            Dialect::CueOut
        );
        assert_eq!(
            Config::parse(r#"{"dialect":"both"}"#).unwrap().dialect,
            Dialect::Both
        );
        let e = Config::parse(r#"{"dialect":"scte"}"#).unwrap_err();
        assert!(e.contains("unknown variant `scte`"), "{e}");
        assert!(Config::parse(r#"{"dialet":"both"}"#)
            .unwrap_err()
            .contains("unknown field"));
    }

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 999, 4_294_967_295, u64::MAX] {
            let mut s = String::from("x");
            weir_guest::time::push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn no_cues_or_no_dates_pass_through_unchanged() {
        assert_eq!(run(Dialect::Both, &[], FULL), FULL);
        let undated = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n";
        assert_eq!(
            run(Dialect::Both, &[out(1, T0, None, None)], undated),
            undated
        );
    }

    #[test]
    fn an_out_and_its_in_as_the_packager_writes_them() {
        let cues = [
            out(999, T0 + 3000, Some(30_000), Some(T0 + 7533)),
            r#in(999, T0 + 7533),
        ];
        let text = run(Dialect::Daterange, &cues, FULL);
        let expected_out = "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:02.000Z\n#EXT-X-DATERANGE:ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",PLANNED-DURATION=30.000,SCTE35-OUT=0xFC302500\n#EXTINF";
        let expected_in = "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:06.000Z\n#EXT-X-DATERANGE:ID=\"splice-999\",START-DATE=\"2026-11-25T16:00:03.000Z\",DURATION=4.533,SCTE35-IN=0xFC302000\n#EXTINF";
        assert!(text.contains(expected_out), "{text}");
        assert!(text.contains(expected_in), "{text}");
        assert_eq!(text.matches("EXT-X-DATERANGE").count(), 2);
        // Idempotent: running on its own output adds nothing.
        assert_eq!(run(Dialect::Daterange, &cues, &text), text);
    }

    #[test]
    fn skips_what_the_packager_already_wrote() {
        let packaged = include_str!("../../../guest-sdk/tests/data/media_dateranges.m3u8");
        // The cues behind that golden file (sections shortened in the file itself).
        let mut o = out(999, T0 + 3000, Some(30_000), Some(T0 + 7533));
        o.section = weir_guest::attr::parse_hex("0xFC30250005000003E77FEF").unwrap();
        let mut i = r#in(999, T0 + 7533);
        i.section = weir_guest::attr::parse_hex("0xFC30200005000003E77F4F").unwrap();
        assert_eq!(run(Dialect::Daterange, &[o, i], packaged), packaged);
    }

    #[test]
    fn window_rules() {
        let cues = [
            // Ended before the window: dropped.
            out(1, T0 - 60_000, Some(30_000), Some(T0 - 30_000)),
            r#in(1, T0 - 30_000),
            // Started before the window, still open: kept, placed before the first segment.
            out(2, T0 - 10_000, Some(60_000), None),
            // After the window (the hinted part ends at 15.0 s): not yet.
            out(3, T0 + 15_000, None, None),
            // Inside the segment in progress.
            out(4, T0 + 14_200, None, None),
        ];
        let text = run(Dialect::Daterange, &cues, FULL);
        assert!(!text.contains("splice-1\""), "{text}");
        assert!(!text.contains("splice-3\""), "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n#EXT-X-DATERANGE:ID=\"splice-2\",START-DATE=\"2026-11-25T15:59:50.000Z\",PLANNED-DURATION=60.000,SCTE35-OUT=0xFC302500\n#EXTINF"), "{text}");
        // The range dated inside the parts-only segment drops that segment's own date (hls.js).
        assert!(text.contains("seg46.m4s\n#EXT-X-DATERANGE:ID=\"splice-4\",START-DATE=\"2026-11-25T16:00:14.200Z\",SCTE35-OUT=0xFC302500\n#EXT-X-PART"), "{text}");
        MediaPlaylist::parse(&text).unwrap();
    }

    #[test]
    fn lone_in_commands_and_reused_ids() {
        let mut cmd = out(0, T0 + 5000, None, None);
        cmd.kind = CueKind::SpliceNull;
        cmd.out_of_network = false;
        cmd.section = vec![0xFC, 0x30, 0x11, 0x00];
        let cues = [
            r#in(5, T0 + 1000),
            cmd,
            out(7, T0 + 2000, None, Some(T0 + 4000)),
            r#in(7, T0 + 4000),
            out(7, T0 + 8000, None, None),
        ];
        let text = run(Dialect::Daterange, &cues, FULL);
        assert!(
            text.contains(
                "ID=\"splice-5\",START-DATE=\"2026-11-25T16:00:01.000Z\",SCTE35-IN=0xFC302000"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "ID=\"splice-0\",START-DATE=\"2026-11-25T16:00:05.000Z\",SCTE35-CMD=0xFC301100"
            ),
            "{text}"
        );
        assert!(text.contains("ID=\"splice-7\",START-DATE=\"2026-11-25T16:00:02.000Z\",DURATION=2.000,SCTE35-IN=0xFC302000"), "{text}");
        assert!(
            text.contains(&format!(
                "ID=\"splice-7-{}\",START-DATE=\"2026-11-25T16:00:08.000Z\"",
                T0 + 8000
            )),
            "{text}"
        );
    }

    #[test]
    fn cue_out_dialect() {
        let cues = [
            out(9, T0 + 4000, Some(6000), Some(T0 + 10_000)),
            r#in(9, T0 + 10_000),
        ];
        let text = run(Dialect::CueOut, &cues, FULL);
        let seg = |msn: u32, tag: &str| format!("{tag}\n#EXTINF:2.00000,\nseg{msn}.m4s");
        assert!(text.contains(&seg(42, "#EXT-X-CUE-OUT:6.000")), "{text}");
        assert!(
            text.contains(&seg(43, "#EXT-X-CUE-OUT-CONT:2.000/6.000")),
            "{text}"
        );
        assert!(text.contains("#EXT-X-CUE-OUT-CONT:4.000/6.000\n#EXT-X-PART:DURATION=0.50000,URI=\"part1016.m4s\""), "{text}");
        assert!(
            text.contains("#EXT-X-CUE-IN\n#EXT-X-PART:DURATION=0.50000,URI=\"part1020.m4s\""),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-CUE").count(), 4);
        assert!(!text.contains("EXT-X-DATERANGE"));

        let both = run(Dialect::Both, &cues, FULL);
        assert_eq!(both.matches("#EXT-X-CUE").count(), 4);
        assert_eq!(both.matches("EXT-X-DATERANGE").count(), 2);
    }

    #[test]
    fn cue_out_for_a_break_that_began_before_the_window() {
        let cues = [out(9, T0 - 4000, None, None)];
        let text = run(Dialect::CueOut, &cues, FULL);
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n#EXT-X-CUE-OUT-CONT:4.000\n#EXTINF"), "{text}");
        // Every listed segment, the one in progress included, is inside the open break.
        assert_eq!(text.matches("#EXT-X-CUE-OUT-CONT").count(), 8);
        assert!(!text.contains("#EXT-X-CUE-IN"));
    }

    #[test]
    fn delta_updates_keep_tags_for_skipped_segments() {
        // seg40 (16:00:00) is skipped; the window reaches back one target duration.
        let cues = [out(3, T0 + 500, Some(30_000), None)];
        let text = run(Dialect::Daterange, &cues, DELTA);
        assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:02.000Z\n#EXT-X-DATERANGE:ID=\"splice-3\""), "{text}");
        let before = run(
            Dialect::Daterange,
            &[out(3, T0 - 500, None, Some(T0 - 100))],
            DELTA,
        );
        assert_eq!(before, DELTA);
    }

    #[test]
    fn mangled_playlists_never_panic() {
        use weir_guest::testing::{mangled, splice_in, splice_out, MEDIA_DELTA, MEDIA_FULL};
        let cues = [
            splice_out(1, T0 - 5000, Some(30_000), None),
            splice_out(2, T0 + 3000, Some(4000), Some(T0 + 7000)),
            splice_in(2, T0 + 7000),
            splice_out(3, u64::MAX - 1, Some(u64::MAX), Some(u64::MAX)),
        ];
        for dialect in [Dialect::Daterange, Dialect::CueOut, Dialect::Both] {
            for text in mangled(MEDIA_FULL, 7, 300)
                .into_iter()
                .chain(mangled(MEDIA_DELTA, 8, 300))
            {
                let _ = transform(&Config { dialect }, &cues, text);
            }
        }
    }
}
