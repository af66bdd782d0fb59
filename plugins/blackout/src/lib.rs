//! blackout: hides the programme from viewers in some countries during blackout windows.
//!
//! For a viewer whose country is in the configured set, every segment that overlaps a
//! blackout window is replaced:
//!
//! - with a **slate rendition** (`slate_rendition`; `slate-{rendition}` picks each rung's own
//!   slate on a transcoded stream, with that rung's codec parameters): the segment's, its parts' and (when
//!   the next part falls in the window) the preload hint's URIs point into the slate
//!   rendition of the same stream (`seg41.m4s` → `../slate/seg41.m4s`), `EXT-X-MAP` points
//!   to the slate's init segment, and each live↔slate switch gets `EXT-X-DISCONTINUITY`;
//! - without one: `EXT-X-GAP` on the segments and `GAP=YES` on their parts.
//!
//! Every other viewer, and every viewer when no window applies to the listed segments,
//! gets the input back byte for byte.
//!
//! **Joining during a blackout.** With a slate rendition, a blacked-out viewer who loads the
//! multivariant playlist while a window is on (at the request's `now-ms`) gets every variant
//! pointed at the slate rendition's own playlist (`slate/index.m3u8`), so the player plays
//! the slate as an ordinary live stream. A viewer already playing when a window starts
//! stays on the programme's playlist, where the segments are swapped as above (weir numbers
//! both renditions' segments from the wall clock, so `segN` of the slate is about the same
//! time as `segN` of the programme).
//!
//! **Which segments.** A segment is blacked out when it starts in
//! `(window start − target duration, window end)`. Deciding on the start alone keeps the
//! decision for a segment the same from its first part to long after it is complete (hls.js
//! rejects a playlist update in which a listed segment changed URI), and since no segment
//! is longer than the target duration, no programme segment overlapping a window is
//! missed. The price is at most one target duration of slate around each window.
//!
//! **Discontinuity sequence.** The switches this plugin adds must keep each segment's
//! discontinuity sequence number stable as the window slides. Switch points are window
//! edges, so the plugin counts the edges at or before the first segment of the playlist
//! and adds that to `EXT-X-DISCONTINUITY-SEQUENCE`; a listed segment carries
//! `EXT-X-DISCONTINUITY` for the edges between its predecessor's start and its own (the
//! first listed segment's edges are in the count instead). Edges come from the config
//! (stable) and, with `cue_triggered`, from the cues the host lists: a break whose cues
//! the host stops listing stops counting (see README.md).
//!
//! **Failure policy: last-good.** Pass-through would serve the programme to exactly the
//! viewers who must not see it whenever a run fails; last-good re-applies the previous run's
//! replacements to the segments still listed. (With no good run yet the host has nothing
//! else to serve.)
//!
//! varies-on: country.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use weir_guest::{
    scte35, time, CueEvent, FailurePolicy, Guest, MediaPlaylist, PluginInfo, RequestContext,
    VariantAttribute,
};

/// The validated config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// ISO 3166-1 alpha-2, upper case.
    pub countries: BTreeSet<String>,
    /// `[start, end)` in Unix ms.
    pub windows: Vec<(u64, u64)>,
    /// Out cues start a blackout that lasts until their in cue (or declared duration).
    pub cue_triggered: bool,
    pub slate: Option<Slate>,
}

/// Where slate media lives: a rendition of the same stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slate {
    /// The slate rendition's name, or a template with `{rendition}` (a transcoded stream's
    /// `slate-{rendition}`: each rung's own slate, with the rung's codec parameters).
    pub rendition: String,
    /// The slate rendition's init segment (`EXT-X-MAP`), a file name in its folder.
    pub init: String,
}

const RENDITION: &str = "{rendition}";

impl Slate {
    /// The slate rendition for viewers of `rendition`.
    pub fn rendition_for(&self, rendition: &str) -> String {
        self.rendition.replace(RENDITION, rendition)
    }

    /// Whether `rendition` is a slate rendition (the template's shape).
    pub fn is_slate(&self, rendition: &str) -> bool {
        match self.rendition.split_once(RENDITION) {
            Some((pre, post)) => {
                rendition.len() > pre.len() + post.len()
                    && rendition.starts_with(pre)
                    && rendition.ends_with(post)
            }
            None => self.rendition == rendition,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    countries: Vec<String>,
    #[serde(default)]
    windows: Vec<RawWindow>,
    #[serde(default)]
    cue_triggered: bool,
    #[serde(default)]
    slate_rendition: Option<String>,
    #[serde(default)]
    slate_init: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    start: Instant,
    end: Instant,
}

/// A date in the config: RFC 3339 text or Unix milliseconds.
struct Instant(u64);

impl<'de> Deserialize<'de> for Instant {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Instant;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 date-time (\"2026-11-25T19:00:00Z\") or Unix milliseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Instant, E> {
                Ok(Instant(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Instant, E> {
                u64::try_from(v)
                    .map(Instant)
                    .map_err(|_| E::custom("a date before 1970"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Instant, E> {
                time::parse_iso8601(v).map(Instant).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Config {
    /// Parses and checks the JSON config; errors name the key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let raw: RawConfig = weir_guest::config::from_json(text)?;
        let mut countries = BTreeSet::new();
        if raw.countries.is_empty() {
            return Err("config: countries: list at least one country".into());
        }
        for (i, c) in raw.countries.iter().enumerate() {
            let code = c.trim().to_ascii_uppercase();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "config: countries[{i}]: {c:?} is not an ISO 3166-1 alpha-2 code (e.g. \"US\")"
                ));
            }
            countries.insert(code);
        }
        let mut windows = Vec::new();
        for (i, w) in raw.windows.iter().enumerate() {
            if w.end.0 <= w.start.0 {
                return Err(format!("config: windows[{i}]: end must be after start"));
            }
            windows.push((w.start.0, w.end.0));
        }
        if windows.is_empty() && !raw.cue_triggered {
            return Err(
                "config: nothing to black out: give `windows` or set `cue_triggered`".into(),
            );
        }
        let slate = match (raw.slate_rendition, raw.slate_init) {
            (Some(rendition), init) => {
                check_name("slate_rendition", &rendition.replace(RENDITION, "r"))?;
                let init = init.unwrap_or_else(|| "init.mp4".to_string());
                check_name("slate_init", &init)?;
                Some(Slate { rendition, init })
            }
            (None, Some(_)) => {
                return Err("config: slate_init: only with slate_rendition".into());
            }
            (None, None) => None,
        };
        Ok(Config {
            countries,
            windows,
            cue_triggered: raw.cue_triggered,
            slate,
        })
    }
}

/// One path segment of the stream's own folder: nothing that could leave `/live/<stream>/`.
fn check_name(key: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "config: {key}: {name:?} must be one path segment of letters, digits, '-', '_', '.'"
        ))
    }
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn config() -> Result<Rc<Config>, String> {
    CONFIG.with(|c| c.borrow().clone()).ok_or_else(|| {
        "blackout: not initialised (init must run in this instance first)".to_string()
    })
}

struct Blackout;

impl Guest for Blackout {
    fn init(config: String) -> Result<PluginInfo, String> {
        let parsed = Config::parse(&config)?;
        weir_guest::log::info(&format!(
            "blackout: {} countries, {} windows, cue-triggered {}, {}",
            parsed.countries.len(),
            parsed.windows.len(),
            parsed.cue_triggered,
            match &parsed.slate {
                Some(s) => format!("slate rendition {:?}", s.rendition),
                None => "GAP (no slate rendition)".to_string(),
            }
        ));
        CONFIG.with(|c| *c.borrow_mut() = Some(Rc::new(parsed)));
        Ok(PluginInfo {
            varies_on: vec![VariantAttribute::Country],
            failure_policy: FailurePolicy::LastGood,
        })
    }

    fn transform_media_playlist(
        ctx: RequestContext,
        cues: Vec<CueEvent>,
        playlist: String,
    ) -> Result<String, String> {
        let config = config()?;
        transform(&config, &ctx, &cues, playlist)
    }

    fn transform_multivariant_playlist(
        ctx: RequestContext,
        playlist: String,
    ) -> Result<String, String> {
        let config = config()?;
        redirect_to_slate(&config, &ctx, &[], playlist)
    }

    fn resolve_asset_list(_ctx: RequestContext, _cue_id: u32) -> Result<String, String> {
        Err("blackout inserts no interstitials".into())
    }
}

weir_guest::export!(Blackout);

/// A blacked-out viewer joining during a window gets the slate rendition for every variant.
pub fn redirect_to_slate(
    config: &Config,
    ctx: &RequestContext,
    cues: &[CueEvent],
    playlist: String,
) -> Result<String, String> {
    let Some(slate) = &config.slate else {
        return Ok(playlist);
    };
    if !applies_to(config, ctx) || !Schedule::new(config, cues, 0).covers(ctx.now_ms) {
        return Ok(playlist);
    }
    let mut mv = weir_guest::MultivariantPlaylist::parse(&playlist).map_err(|e| e.to_string())?;
    for v in mv.variants() {
        // `720p/index.m3u8` → `slate-720p/index.m3u8` (or `slate/index.m3u8`).
        let name = v.uri.split('/').next().unwrap_or_default();
        let uri = format!("{}/index.m3u8", slate.rendition_for(name));
        mv.set_variant_uri(v.index, &uri).map_err(|e| e.to_string())?;
    }
    Ok(mv.render())
}

/// Whether this viewer is blacked out at all.
pub fn applies_to(config: &Config, ctx: &RequestContext) -> bool {
    let in_set = ctx
        .country
        .as_deref()
        .is_some_and(|c| config.countries.contains(&c.trim().to_ascii_uppercase()));
    let is_slate = config
        .slate
        .as_ref()
        .is_some_and(|s| s.is_slate(&ctx.rendition));
    in_set && !is_slate
}

/// The blackout schedule: merged `[from, until)` ranges of segment start dates that are
/// blacked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    ranges: Vec<(u64, u64)>,
}

impl Schedule {
    /// Windows (and, with `cue_triggered`, breaks) widened by `lead` (the target duration)
    /// at their start: a segment starting less than `lead` before a window overlaps it.
    pub fn new(config: &Config, cues: &[CueEvent], lead: u64) -> Self {
        let mut ranges: Vec<(u64, u64)> = config.windows.clone();
        if config.cue_triggered {
            for b in scte35::breaks(cues) {
                ranges.push((b.start_ms(), b.expected_end_ms().unwrap_or(u64::MAX)));
            }
        }
        let mut widened: Vec<(u64, u64)> = ranges
            .into_iter()
            .map(|(start, end)| (start.saturating_add(1).saturating_sub(lead), end))
            .collect();
        widened.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for (start, end) in widened {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Schedule { ranges: merged }
    }

    /// Whether a segment starting at `ms` is blacked out.
    pub fn covers(&self, ms: u64) -> bool {
        self.ranges.iter().any(|(s, e)| ms >= *s && ms < *e)
    }

    /// How many switch points (range edges) lie in `(after, upto]`.
    pub fn edges_in(&self, after: Option<u64>, upto: u64) -> u64 {
        self.ranges
            .iter()
            .flat_map(|(s, e)| [Some(*s), (*e != u64::MAX).then_some(*e)])
            .flatten()
            .filter(|e| after.is_none_or(|a| *e > a) && *e <= upto)
            .count() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

/// The plugin's work, apart from the bindings so it can be tested natively.
pub fn transform(
    config: &Config,
    ctx: &RequestContext,
    cues: &[CueEvent],
    text: String,
) -> Result<String, String> {
    if !applies_to(config, ctx) {
        return Ok(text);
    }
    let mut playlist = MediaPlaylist::parse(&text)?;
    if playlist.segments().is_empty() {
        return Ok(text);
    }
    let lead = match playlist.target_duration_ms() {
        0 => playlist
            .segments()
            .iter()
            .map(|s| s.duration_ms())
            .max()
            .unwrap_or(0),
        t => t,
    };
    let schedule = Schedule::new(config, cues, lead);
    if schedule.is_empty() {
        return Ok(text);
    }
    let mut starts = Vec::with_capacity(playlist.segments().len());
    for s in playlist.segments() {
        starts.push(s.start_ms().ok_or(
            "blackout: the playlist has no EXT-X-PROGRAM-DATE-TIME, so windows cannot be placed",
        )?);
    }
    let blacked: Vec<bool> = starts.iter().map(|s| schedule.covers(*s)).collect();
    let next_start = playlist.next_part_start_ms().unwrap_or(u64::MAX);
    let hint_blacked = match playlist.partial() {
        Some(_) => blacked.last().copied().unwrap_or(false),
        None => schedule.covers(next_start),
    };

    let Some(slate) = &config.slate else {
        if !blacked.contains(&true) {
            return Ok(text);
        }
        for (segment, _) in playlist
            .segments_mut()
            .iter_mut()
            .zip(&blacked)
            .filter(|(_, b)| **b)
        {
            segment.mark_gap()?;
        }
        return Ok(playlist.render());
    };
    let slate_rendition = slate.rendition_for(&ctx.rendition);

    // Segment and part URIs.
    let input_maps: Vec<Option<String>> = playlist
        .segments()
        .iter()
        .map(|s| s.map_uri().map(str::to_string))
        .collect();
    for (segment, _) in playlist
        .segments_mut()
        .iter_mut()
        .zip(&blacked)
        .filter(|(_, b)| **b)
    {
        if let Some(uri) = segment.uri().map(|u| slate_uri(&slate_rendition, u)) {
            segment.set_uri(&uri)?;
        }
        for part in segment.parts() {
            segment.set_part_uri(part.index, &slate_uri(&slate_rendition, &part.uri))?;
        }
    }

    // Discontinuities at the switches, and the count of those that slid out.
    let first = starts[0];
    let skipped = playlist.skipped_segments();
    let playlist_start = first.saturating_sub(skipped.saturating_mul(lead));
    let before = schedule.edges_in(None, playlist_start);
    for i in 0..starts.len() {
        let prev = match i {
            0 if skipped == 0 => continue,
            0 => first.saturating_sub(lead),
            _ => starts[i - 1],
        };
        for _ in 0..schedule.edges_in(Some(prev), starts[i]) {
            playlist.add_discontinuity(i)?;
        }
    }
    if before > 0 {
        let n = playlist.discontinuity_sequence().saturating_add(before);
        playlist.set_discontinuity_sequence(n);
    }

    // Maps: the slate's init on slate segments, the programme's back after them.
    let slate_init = format!("../{slate_rendition}/{}", slate.init);
    for (i, input) in input_maps.iter().enumerate() {
        let Some(input) = input else { continue };
        let wanted = if blacked[i] { &slate_init } else { input };
        if playlist.segments()[i].map_uri() != Some(wanted.as_str()) {
            playlist.set_map(i, wanted)?;
        }
    }

    // The preload hint, when the part it names is blacked out.
    if hint_blacked {
        for hint in playlist.preload_hints() {
            let uri = if hint.kind == "MAP" {
                slate_init.clone()
            } else {
                slate_uri(&slate_rendition, &hint.uri)
            };
            playlist.set_preload_hint_uri(hint.index, &uri)?;
        }
    }
    let out = playlist.render();
    Ok(out)
}

/// `seg41.m4s` → `../slate/seg41.m4s`: the same file name in the slate rendition's folder.
pub fn slate_uri(rendition: &str, uri: &str) -> String {
    let prefix = format!("../{rendition}/");
    if uri.starts_with(&prefix) {
        return uri.to_string();
    }
    let (path, query) = match uri.find('?') {
        Some(i) => uri.split_at(i),
        None => (uri, ""),
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    format!("{prefix}{name}{query}")
}

#[cfg(test)]
mod tests;
