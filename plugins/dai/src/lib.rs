//! dai: server-guided ad insertion with HLS Interstitials.
//!
//! **Playlist.** For each ad break (a `splice_insert` out of network, or a `time_signal`
//! whose segmentation type starts a break) dated inside the playlist, the media playlist
//! gets
//!
//! ```text
//! #EXT-X-DATERANGE:ID="ad-<id>",CLASS="com.apple.hls.interstitial",START-DATE="...",
//!   CUE="ONCE",DURATION=<break secs>,X-ASSET-LIST="../asset-list/<id>.json",
//!   X-RESUME-OFFSET=<secs>,X-RESTRICT="SKIP,JUMP"
//! ```
//!
//! (one line). The tag is the same for every viewer, so the playlist stays cacheable
//! (varies-on: nothing). `START-DATE` is the cue's date; the tag is written only while that
//! date lies inside the listed media (`[first segment, end of the last part)`), where hls.js
//! anchors it to a segment that carries `EXT-X-PROGRAM-DATE-TIME` (the playlist keeps its
//! dates; only the segment in progress may lose its own, see
//! `MediaPlaylist::omit_partial_date_for_hlsjs`). `DURATION` is the declared break length,
//! or the measured one once the IN has arrived when none was declared: it never changes
//! once written, because hls.js drops a date range whose attributes change between
//! playlist updates.
//!
//! **Asset list.** The player fetches `X-ASSET-LIST` (`/live/<stream>/asset-list/<id>.json`,
//! plus hls.js's `_HLS_primary_id` and `_HLS_start_offset`), and the host asks this plugin's
//! `resolve-asset-list`. The answer is per viewer: the ads for the query parameter named in
//! `ads.by_query.param` when its value is listed, else the viewer's country in
//! `ads.by_country`, else `ads.default`, as `{"ASSETS":[{"URI":...,"DURATION":...}]}`.
//!
//! failure-policy: pass-through (without the tags, viewers just see the programme).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use weir_guest::{
    scte35, Asset, CueEvent, FailurePolicy, Guest, Interstitial, MediaPlaylist, PluginInfo,
    RequestContext, VariantAttribute,
};

/// The plugin's config (README.md).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub ads: Ads,
    /// `X-RESUME-OFFSET`: `"break"` (resume where the break ends: live stays live) or
    /// seconds (0 pauses the programme for the ads).
    #[serde(default)]
    pub resume_offset: ResumeOffset,
    /// `X-RESTRICT`: `"SKIP,JUMP"`, `"SKIP"`, `"JUMP"` or `""`.
    #[serde(default = "default_restrict")]
    pub restrict: String,
    /// `CUE`: `"ONCE"` (a viewer sees a break once, even seeking back over it) or `""` (no
    /// attribute). `ONCE` also keeps hls.js from appending the ad "in place" into the
    /// programme's buffer: for a break cued at the live edge, whose end is past the
    /// playlist's end, hls.js 1.7.4 sometimes appended the ad at time 0 instead of the
    /// break's start, stalled, and ended the ad after a fraction of a second (3 of 6 runs
    /// of the plugins e2e test; none of 8 with `ONCE`; hls.js 1.6.19 played it either way).
    #[serde(default = "default_cue")]
    pub cue: String,
}

fn default_restrict() -> String {
    "SKIP,JUMP".to_string()
}

fn default_cue() -> String {
    "ONCE".to_string()
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ads {
    #[serde(default)]
    pub default: Vec<Ad>,
    /// By ISO 3166-1 alpha-2 country.
    #[serde(default)]
    pub by_country: BTreeMap<String, Vec<Ad>>,
    #[serde(default)]
    pub by_query: Option<ByQuery>,
}

/// Ads chosen by a query parameter of the asset-list request.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ByQuery {
    pub param: String,
    pub values: BTreeMap<String, Vec<Ad>>,
}

/// One ad: its playlist and length.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ad {
    #[serde(rename(serialize = "URI"))]
    pub uri: String,
    #[serde(rename(serialize = "DURATION"))]
    pub duration: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum ResumeOffset {
    /// The break's length.
    #[default]
    Break,
    Secs(f64),
}

impl<'de> Deserialize<'de> for ResumeOffset {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ResumeOffset;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"break\" or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ResumeOffset, E> {
                match v {
                    "break" => Ok(ResumeOffset::Break),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ResumeOffset, E> {
                if v.is_finite() && v >= 0.0 {
                    Ok(ResumeOffset::Secs(v))
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(v), &self))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ResumeOffset, E> {
                Ok(ResumeOffset::Secs(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ResumeOffset, E> {
                self.visit_f64(v as f64)
            }
        }
        d.deserialize_any(V)
    }
}

impl Config {
    /// Parses and checks the JSON config; errors name the key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut c: Config = weir_guest::config::from_json(text)?;
        check_ads("ads.default", &c.ads.default)?;
        let mut by_country = BTreeMap::new();
        for (country, ads) in std::mem::take(&mut c.ads.by_country) {
            let code = country.trim().to_ascii_uppercase();
            if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(format!(
                    "config: ads.by_country: {country:?} is not an ISO 3166-1 alpha-2 code"
                ));
            }
            check_ads(&format!("ads.by_country.{code}"), &ads)?;
            by_country.insert(code, ads);
        }
        c.ads.by_country = by_country;
        if let Some(q) = &c.ads.by_query {
            if q.param.is_empty() || q.param.starts_with("_HLS_") {
                return Err(format!(
                    "config: ads.by_query.param: {:?} cannot be used (empty, or an _HLS_ directive)",
                    q.param
                ));
            }
            for (value, ads) in &q.values {
                check_ads(&format!("ads.by_query.values.{value}"), ads)?;
            }
        }
        let any = !c.ads.default.is_empty()
            || c.ads.by_country.values().any(|a| !a.is_empty())
            || c.ads
                .by_query
                .as_ref()
                .is_some_and(|q| q.values.values().any(|a| !a.is_empty()));
        if !any {
            return Err("config: ads: no ads configured (give ads.default at least)".into());
        }
        let tokens: BTreeSet<&str> = c
            .restrict
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        if let Some(bad) = tokens.iter().find(|t| !matches!(**t, "SKIP" | "JUMP")) {
            return Err(format!(
                "config: restrict: {bad:?} is not SKIP or JUMP (give \"SKIP,JUMP\", \"SKIP\", \"JUMP\" or \"\")"
            ));
        }
        // PRE and POST make no sense for a break at a cue's date.
        if !matches!(c.cue.as_str(), "ONCE" | "") {
            return Err(format!(
                "config: cue: {:?} is not ONCE (give \"ONCE\" or \"\")",
                c.cue
            ));
        }
        Ok(c)
    }

    fn restrict_skip_jump(&self) -> (bool, bool) {
        let has = |t: &str| self.restrict.split(',').any(|x| x.trim() == t);
        (has("SKIP"), has("JUMP"))
    }
}

fn check_ads(key: &str, ads: &[Ad]) -> Result<(), String> {
    for (i, ad) in ads.iter().enumerate() {
        if ad.uri.trim().is_empty() || ad.uri.chars().any(char::is_control) {
            return Err(format!(
                "config: {key}[{i}].uri: {:?} is not a usable URI",
                ad.uri
            ));
        }
        if !(ad.duration.is_finite() && ad.duration > 0.0) {
            return Err(format!(
                "config: {key}[{i}].duration: {} is not a positive number of seconds",
                ad.duration
            ));
        }
    }
    Ok(())
}

thread_local! {
    static CONFIG: RefCell<Option<Rc<Config>>> = const { RefCell::new(None) };
}

fn config() -> Result<Rc<Config>, String> {
    CONFIG
        .with(|c| c.borrow().clone())
        .ok_or_else(|| "dai: not initialised (init must run in this instance first)".to_string())
}

struct Dai;

impl Guest for Dai {
    fn init(config: String) -> Result<PluginInfo, String> {
        let parsed = Config::parse(&config)?;
        weir_guest::log::info(&format!(
            "dai: {} default ads, ads for {} countries, {}, resume offset {}",
            parsed.ads.default.len(),
            parsed.ads.by_country.len(),
            match &parsed.ads.by_query {
                Some(q) => format!("ads by query parameter {:?}", q.param),
                None => "no ads by query parameter".to_string(),
            },
            match parsed.resume_offset {
                ResumeOffset::Break => "the break's length".to_string(),
                ResumeOffset::Secs(s) => format!("{s} s"),
            }
        ));
        // The host gives an asset-list call only the query parameters a plugin declared.
        let varies_on = parsed
            .ads
            .by_query
            .as_ref()
            .map(|q| vec![VariantAttribute::Query(q.param.clone())])
            .unwrap_or_default();
        CONFIG.with(|c| *c.borrow_mut() = Some(Rc::new(parsed)));
        Ok(PluginInfo {
            varies_on,
            failure_policy: FailurePolicy::PassThrough,
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

    fn resolve_asset_list(ctx: RequestContext, cue_id: u32) -> Result<String, String> {
        let config = config()?;
        resolve(&config, &ctx, cue_id)
    }
}

weir_guest::export!(Dai);

/// The asset-list URI a break's interstitial names, relative to the media playlist.
pub fn asset_list_uri(cue_id: u32) -> String {
    format!("../asset-list/{cue_id}.json")
}

/// Adds the interstitials (the plugin's transform, testable natively).
pub fn transform(config: &Config, cues: &[CueEvent], text: String) -> Result<String, String> {
    let breaks = scte35::breaks(cues);
    if breaks.is_empty() {
        return Ok(text);
    }
    let mut playlist = MediaPlaylist::parse(&text)?;
    let (Some(start), Some(end)) = (playlist.start_ms(), playlist.end_ms()) else {
        return Ok(text);
    };
    let existing: BTreeSet<String> = playlist
        .dateranges()
        .iter()
        .filter_map(|d| d.id().map(str::to_string))
        .collect();
    let (skip, jump) = config.restrict_skip_jump();
    let mut ids = BTreeSet::new();
    let mut changed = false;
    for b in breaks {
        // Event ids are reused; two date ranges with one ID must agree on every attribute.
        let mut id = format!("ad-{}", b.id());
        if !ids.insert(id.clone()) {
            id = format!("ad-{}-{}", b.id(), b.start_ms());
            ids.insert(id.clone());
        }
        if b.start_ms() < start || b.start_ms() >= end || existing.contains(&id) {
            continue;
        }
        let length = b.planned_ms().or(b.length_ms());
        let mut tag = Interstitial::new(id, b.start_ms(), Asset::List(asset_list_uri(b.id())))
            .restrict(skip, jump);
        if !config.cue.is_empty() {
            tag = tag.cue(config.cue.clone());
        }
        if let Some(d) = length {
            tag = tag.duration_ms(d);
        }
        match config.resume_offset {
            ResumeOffset::Break => {
                if let Some(d) = length {
                    tag = tag.resume_offset_ms(d);
                }
            }
            ResumeOffset::Secs(s) => tag = tag.resume_offset_ms((s * 1000.0).round() as u64),
        }
        playlist.insert_tag_at(b.start_ms(), &tag.to_tag()?)?;
        changed = true;
    }
    if !changed {
        return Ok(text);
    }
    playlist.omit_partial_date_for_hlsjs();
    Ok(playlist.render())
}

/// The ads for this viewer: by query parameter, else by country, else the default.
pub fn select<'a>(config: &'a Config, ctx: &RequestContext) -> &'a [Ad] {
    if let Some(q) = &config.ads.by_query {
        if let Some(ads) = ctx.query_param(&q.param).and_then(|v| q.values.get(v)) {
            return ads;
        }
    }
    if let Some(ads) = ctx
        .country
        .as_deref()
        .and_then(|c| config.ads.by_country.get(&c.trim().to_ascii_uppercase()))
    {
        return ads;
    }
    &config.ads.default
}

#[derive(Serialize)]
struct AssetList<'a> {
    #[serde(rename = "ASSETS")]
    assets: &'a [Ad],
}

/// The asset-list JSON for one viewer (the plugin's `resolve-asset-list`).
pub fn resolve(config: &Config, ctx: &RequestContext, _cue_id: u32) -> Result<String, String> {
    serde_json::to_string(&AssetList {
        assets: select(config, ctx),
    })
    .map_err(|e| format!("dai: asset list: {e}"))
}

#[cfg(test)]
mod tests;
