//! Following a live stream as a low-latency player does, and judging what comes back.
//!
//! One task per rendition runs a blocking-reload loop; the parts, segments and probes it
//! requests run in their own tasks and write what they saw into the rendition's
//! [`Obs`]. Rules about one playlist or one update are judged as responses arrive; rules
//! that relate several observations (a hint and the part that came, a part's bytes and
//! its `INDEPENDENT`, a rendition report and its sibling's edge) are judged at the end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use url::Url;

use crate::http::{Client, Fetched};
use crate::mp4::{self, Independence, VideoTrack};
use crate::playlist::{self, MediaPlaylist, Part, Segment};
use crate::Severity::{Error as E, Warning as W};
use crate::{clock, rule, Error, Findings, RenditionSummary, Report, Result, Settings};

/// How long to wait for a probe that should be refused at once.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// "At once" for a probe that should be refused.
const AT_ONCE: Duration = Duration::from_millis(500);

struct Ctx {
    client: Client,
    findings: Findings,
    deadline: Instant,
    base: Url,
}

impl Ctx {
    /// A URL as the report names it: relative to the checked URL where it can be.
    fn name(&self, u: &Url) -> String {
        if u == &self.base {
            return u.path().rsplit('/').next().unwrap_or_default().to_string();
        }
        self.base
            .make_relative(u)
            .filter(|r| !r.starts_with("../../"))
            .unwrap_or_else(|| u.to_string())
    }
}

/// Follows the stream for [`Settings::duration`] and reports what broke which rule.
///
/// Errors are for a stream that cannot be checked at all (the URL does not answer 200 with
/// a playlist); everything else is a finding in the [`Report`].
pub async fn check(settings: &Settings) -> Result<Report> {
    let url = Url::parse(&settings.url).map_err(|e| Error::Url {
        url: settings.url.clone(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Url {
            url: settings.url.clone(),
            reason: "only http and https are supported".into(),
        });
    }
    let client = Client::new(settings.ca.as_deref(), settings.insecure)?;
    let start = clock::now();
    let ctx = Arc::new(Ctx {
        client,
        findings: Findings::default(),
        deadline: start + settings.duration,
        base: url.clone(),
    });
    let first = ctx.client.get(&url, None, Duration::from_secs(10)).await?;
    if first.status != 200 {
        return Err(Error::Status {
            url: url.to_string(),
            status: first.status,
        });
    }
    let text = String::from_utf8_lossy(&first.body).into_owned();
    let top = ctx.name(&url);
    content_type(&ctx, &url, &first, &top);
    let mut notes = Vec::new();
    let multivariant = playlist::is_multivariant(&text);
    let mut renditions: Vec<Url> = Vec::new();
    if multivariant {
        let mv = playlist::parse_multivariant(&text).map_err(|reason| Error::Playlist {
            url: url.to_string(),
            reason,
        })?;
        check_multivariant(&ctx, &mv, &top);
        for v in mv.variants.iter().chain(&mv.media) {
            if let Ok(u) = url.join(&v.uri) {
                if !renditions.contains(&u) {
                    renditions.push(u);
                }
            }
        }
        if renditions.is_empty() {
            return Err(Error::Playlist {
                url: url.to_string(),
                reason: "a multivariant playlist without variants".into(),
            });
        }
    } else {
        playlist::parse_media(&text).map_err(|reason| Error::Playlist {
            url: url.to_string(),
            reason,
        })?;
        renditions.push(url.clone());
        notes.push(
            "a media playlist was given: multivariant attributes and rendition reports not checked"
                .to_string(),
        );
    }
    let tasks: Vec<_> = renditions
        .iter()
        .map(|u| {
            let r = Rendition::new(ctx.clone(), u.clone());
            tokio::spawn(r.run())
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        if let Ok(o) = t.await {
            outcomes.push(o);
        }
    }
    if multivariant {
        check_reports(&ctx, &renditions, &outcomes);
    }
    if url.scheme() == "https" {
        for (host, proto) in ctx.client.alpn() {
            if proto.as_deref() != Some("h2") {
                ctx.findings.add(
                    E,
                    rule::HTTP2,
                    &top,
                    format!(
                        "the TLS connection to {host} negotiated {} instead of h2",
                        proto.as_deref().unwrap_or("no ALPN protocol")
                    ),
                );
            }
        }
    } else {
        notes.push("plain http: HTTP/2 over TLS not checked (give an https URL)".into());
    }
    Ok(Report {
        url: url.to_string(),
        duration_s: clock::now().duration_since(start).as_secs_f64(),
        renditions: outcomes.into_iter().map(|o| o.summary).collect(),
        findings: ctx.findings.take_sorted(),
        notes,
    })
}

fn check_multivariant(ctx: &Ctx, mv: &playlist::Multivariant, name: &str) {
    for v in &mv.variants {
        let a = &v.attributes;
        let u = &v.uri;
        if !a.contains_key("BANDWIDTH") {
            ctx.findings
                .add(E, rule::BANDWIDTH, name, format!("{u} has no BANDWIDTH"));
        }
        let codecs = a.get("CODECS");
        if codecs.is_none() {
            ctx.findings
                .add(W, rule::CODECS, name, format!("{u} has no CODECS"));
        }
        let video = codecs.is_none_or(|c| {
            [
                "avc1", "avc3", "hvc1", "hev1", "av01", "vp09", "dvh1", "dvhe",
            ]
            .iter()
            .any(|k| c.contains(k))
        });
        if video && !a.contains_key("RESOLUTION") {
            ctx.findings
                .add(W, rule::RESOLUTION, name, format!("{u} has no RESOLUTION"));
        }
        if video && !a.contains_key("FRAME-RATE") {
            ctx.findings
                .add(W, rule::FRAME_RATE, name, format!("{u} has no FRAME-RATE"));
        }
        if !a.contains_key("AVERAGE-BANDWIDTH") {
            ctx.findings.add(
                W,
                rule::AVERAGE_BANDWIDTH,
                name,
                format!("{u} has no AVERAGE-BANDWIDTH"),
            );
        }
    }
}

fn content_type(ctx: &Ctx, url: &Url, f: &Fetched, name: &str) {
    let path = url.path();
    if path.ends_with(".m3u8") || path.ends_with(".m3u") {
        return;
    }
    let ct = f.header("content-type").unwrap_or("").to_ascii_lowercase();
    if !ct.starts_with("application/vnd.apple.mpegurl") && !ct.starts_with("audio/mpegurl") {
        ctx.findings.add(
            E,
            rule::CONTENT_TYPE,
            name,
            format!("{path} is neither named .m3u8 nor served as application/vnd.apple.mpegurl (Content-Type {ct:?})"),
        );
    }
}

/// `max-age` of a Cache-Control header, and whether it forbids caching.
fn cache_control(f: &Fetched) -> (Option<u64>, bool) {
    let Some(cc) = f.header("cache-control") else {
        return (None, false);
    };
    let mut max_age = None;
    let mut forbids = false;
    for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if let Some(v) = d.strip_prefix("max-age=") {
            max_age = v.parse().ok();
        } else if d == "no-store" || d == "no-cache" || d == "private" {
            forbids = true;
        }
    }
    (max_age, forbids)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Part { hinted: bool },
    Segment,
    Removed,
    RemovedPart,
}

struct MediaObs {
    ok: bool,
    status: u16,
    last_byte: Option<Instant>,
    independence: Option<Independence>,
}

struct Listed {
    uri: String,
    independent: bool,
    gap: bool,
    at: Instant,
}

/// What a rendition's tasks saw, judged at the end.
#[derive(Default)]
struct Obs {
    /// (msn, part index) → the part as first listed.
    listed: BTreeMap<(u64, u64), Listed>,
    /// Part count of each segment completed while the checker watched.
    seg_parts: BTreeMap<u64, u64>,
    /// (when, the position the hint should name, the hinted resource's key).
    hints: Vec<(Instant, (u64, u64), String)>,
    /// A part's key (URI, with its byte range) → what fetching it gave.
    media: HashMap<String, MediaObs>,
    /// (when, the last part) of each playlist version seen.
    edges: Vec<(Instant, (u64, u64))>,
    /// (when, target playlist, LAST-MSN, LAST-PART).
    reports: Vec<(Instant, Url, Option<u64>, Option<u64>)>,
    /// The rendition reports of the last playlist.
    last_reports: Option<Vec<Url>>,
    summary: RenditionSummary,
}

struct Outcome {
    url: Url,
    part_target: f64,
    obs: Obs,
    summary: RenditionSummary,
}

struct Rendition {
    ctx: Arc<Ctx>,
    name: String,
    url: Url,
    obs: Arc<Mutex<Obs>>,
    tasks: Vec<JoinHandle<()>>,
    video: Option<VideoTrack>,
    map_uri: Option<String>,
    td: u64,
    pt: f64,
    known: BTreeMap<u64, Segment>,
    started: HashSet<String>,
    duration_checked: HashSet<(u64, u64)>,
    removed_parts_fetched: HashSet<u64>,
    flip: bool,
}

fn lock(obs: &Mutex<Obs>) -> MutexGuard<'_, Obs> {
    obs.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A part's identity: its URI, and its byte range when it has one.
fn key(uri: &str, range: Option<&str>) -> String {
    match range {
        Some(r) => format!("{uri}@{r}"),
        None => uri.to_string(),
    }
}

/// Whether a hint's key names the part listed under `listed`: the same key, or for
/// byte-range parts the same URI with `BYTERANGE-START` equal to the listed part's offset
/// (`uri@start` against `uri@len@offset`; the hint has no length when it is open-ended).
fn hint_names(hint: &str, listed: &str) -> bool {
    if hint == listed {
        return true;
    }
    let (Some((hint_uri, start)), Some((uri, range))) =
        (hint.rsplit_once('@'), listed.split_once('@'))
    else {
        return false;
    };
    hint_uri == uri
        && range
            .split_once('@')
            .is_some_and(|(_, offset)| offset == start)
}

/// `BYTERANGE="n@o"` → an HTTP Range header value.
fn range_header(byterange: &str) -> Option<String> {
    let (n, o) = byterange.split_once('@')?;
    let n: u64 = n.parse().ok()?;
    let o: u64 = o.parse().ok()?;
    Some(format!("bytes={o}-{}", o.checked_add(n)?.checked_sub(1)?))
}

impl Rendition {
    fn new(ctx: Arc<Ctx>, url: Url) -> Self {
        let name = ctx.name(&url);
        let obs = Obs {
            summary: RenditionSummary {
                playlist: name.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        Self {
            ctx,
            name,
            url,
            obs: Arc::new(Mutex::new(obs)),
            tasks: Vec::new(),
            video: None,
            map_uri: None,
            td: 1,
            pt: 0.0,
            known: BTreeMap::new(),
            started: HashSet::new(),
            duration_checked: HashSet::new(),
            removed_parts_fetched: HashSet::new(),
            flip: false,
        }
    }

    fn add(&self, sev: crate::Severity, rule: &str, msg: impl Into<String>) {
        self.ctx.findings.add(sev, rule, &self.name, msg);
    }

    fn with_query(&self, q: &str) -> Url {
        let mut u = self.url.clone();
        let q = match self.url.query() {
            Some(x) if !x.is_empty() => format!("{x}&{q}"),
            _ => q.to_string(),
        };
        u.set_query(Some(&q));
        u
    }

    fn block_timeout(&self) -> Duration {
        Duration::from_secs(3 * self.td) + Duration::from_secs(1)
    }

    /// One playlist request (blocking when `query` is given); a failure is a finding.
    async fn reload(&self, query: Option<&str>) -> Option<(MediaPlaylist, Fetched)> {
        let url = match query {
            Some(q) => self.with_query(q),
            None => self.url.clone(),
        };
        let timeout = match query {
            Some(_) => self.block_timeout(),
            None => Duration::from_secs(10),
        };
        let what = query.unwrap_or("(no directives)");
        let f = match self.ctx.client.get(&url, None, timeout).await {
            Ok(f) => f,
            Err(Error::Timeout { .. }) if query.is_some() => {
                if clock::now() < self.ctx.deadline {
                    self.add(
                        E,
                        rule::BLOCKING,
                        format!(
                            "{what}: no answer within {:.1} s (3 x the target duration, and a part MUST come within one PART-TARGET)",
                            timeout.as_secs_f64()
                        ),
                    );
                }
                return None;
            }
            Err(e) => {
                self.add(E, rule::AVAILABLE, format!("playlist {what}: {e}"));
                return None;
            }
        };
        if f.status != 200 {
            self.add(
                E,
                if query.is_some() {
                    rule::BLOCKING
                } else {
                    rule::AVAILABLE
                },
                format!("playlist {what}: answered {}", f.status),
            );
            return None;
        }
        content_type(&self.ctx, &url, &f, &self.name);
        let (max_age, forbids) = cache_control(&f);
        if query.is_some() {
            if forbids || max_age.is_none_or(|a| a == 0) {
                self.add(
                    W,
                    rule::CACHE_CONTROL,
                    format!(
                        "a blocking playlist response is not cacheable (Cache-Control {:?}): a CDN cannot collapse the viewers' identical requests",
                        f.header("cache-control").unwrap_or("")
                    ),
                );
            }
        } else if max_age.is_none_or(|a| a > self.td) {
            self.add(
                W,
                rule::CACHE_CONTROL,
                format!(
                    "the playlist without delivery directives is cacheable for {} (Cache-Control {:?}); more than the target duration {} s serves a stale live edge",
                    max_age.map_or("an unbounded time".to_string(), |a| format!("{a} s")),
                    f.header("cache-control").unwrap_or(""),
                    self.td
                ),
            );
        }
        let text = String::from_utf8_lossy(&f.body);
        match playlist::parse_media(&text) {
            Ok(p) => Some((p, f)),
            Err(reason) => {
                self.add(E, rule::AVAILABLE, format!("playlist {what}: {reason}"));
                None
            }
        }
    }

    async fn run(mut self) -> Outcome {
        let Some((mut pl, f)) = self.reload(None).await else {
            return self.finish().await;
        };
        let (Some(pt), true) = (pl.part_target, pl.server_control.can_block_reload) else {
            self.add(
                E,
                rule::LOW_LATENCY,
                "not an LL-HLS playlist: no EXT-X-PART-INF, or no CAN-BLOCK-RELOAD=YES",
            );
            return self.finish().await;
        };
        if !(pt.is_finite() && pt > 0.0 && pt <= 60.0) {
            self.add(
                E,
                rule::LOW_LATENCY,
                format!("PART-TARGET {pt} is not a duration the checker can follow"),
            );
            return self.finish().await;
        }
        self.pt = pt;
        self.td = pl.target_duration.unwrap_or(1).clamp(1, 600);
        if pl.target_duration.is_none() {
            self.add(E, rule::TARGET_DURATION, "no EXT-X-TARGETDURATION");
        }
        self.header_checks(&pl);
        self.absorb(None, &pl, f.head_at).await;
        self.probes(&pl);
        let mut iter = 0u32;
        while clock::now() < self.ctx.deadline && !pl.endlist {
            iter += 1;
            let (m, p, past_end) = self.next_want(&pl);
            if let Some(h) = pl.hints.iter().find(|h| h.kind == "PART") {
                let range = h.byterange_start.map(|s| format!("bytes={s}-"));
                let k = key(&h.uri, h.byterange_start.map(|s| s.to_string()).as_deref());
                let expected = if past_end {
                    (m.saturating_add(1), 0)
                } else {
                    (m, p)
                };
                if self.started.insert(k.clone()) {
                    lock(&self.obs)
                        .hints
                        .push((clock::now(), expected, k.clone()));
                    self.spawn_fetch(&h.uri, range, k, Kind::Part { hinted: true });
                }
            }
            let skip = pl.server_control.can_skip_until.is_some() && iter.is_multiple_of(4);
            let q = format!("_HLS_msn={m}&_HLS_part={p}");
            let q_sent = if skip {
                format!("{q}&_HLS_skip=YES")
            } else {
                q.clone()
            };
            let Some((new, f)) = self.reload(Some(&q_sent)).await else {
                match self.reload(None).await {
                    Some((new, f)) => {
                        self.absorb(Some(&pl), &new, f.head_at).await;
                        pl = new;
                    }
                    None => tokio::time::sleep(Duration::from_secs_f64(self.pt)).await,
                }
                continue;
            };
            {
                let mut o = lock(&self.obs);
                o.summary.reloads += 1;
                o.summary.past_end_requests += u32::from(past_end);
                o.summary.delta_updates += u32::from(skip);
            }
            let new = if skip {
                match self.merge_delta(&new, &q).await {
                    Some(full) => full,
                    None => continue,
                }
            } else {
                new
            };
            if !new.endlist && !new.has_part(m, p) {
                let edge = new
                    .last_part()
                    .map_or("none".to_string(), |(a, b)| format!("{a}.{b}"));
                let (r, why) = if past_end {
                    (
                        rule::PART_PAST_END,
                        format!("segment {m} has {p} parts, so this asks for part 0 of segment {} and MUST wait for it", m.saturating_add(1)),
                    )
                } else {
                    (
                        rule::BLOCKING,
                        "the server MUST wait until the playlist holds it".to_string(),
                    )
                };
                self.add(
                    E,
                    r,
                    format!(
                        "{q} answered after {} ms with a playlist whose last part is {edge}: {why}",
                        f.head_at.duration_since(f.sent).as_millis()
                    ),
                );
                // Do not spin on a server that answers at once.
                tokio::time::sleep(Duration::from_secs_f64(self.pt / 2.0)).await;
            }
            self.absorb(Some(&pl), &new, f.head_at).await;
            pl = new;
        }
        self.finish().await
    }

    /// The next part a player asks for; at a segment boundary, every other time as the
    /// part index past the completed segment's last part (RFC 8216bis 6.2.5.2).
    fn next_want(&mut self, pl: &MediaPlaylist) -> (u64, u64, bool) {
        let open = pl.open_msn();
        if !pl.open_parts.is_empty() {
            return (open, pl.open_parts.len() as u64, false);
        }
        self.flip = !self.flip;
        match pl.segments.last() {
            Some(last) if self.flip && !last.parts.is_empty() => {
                (last.msn, last.parts.len() as u64, true)
            }
            _ => (open, 0, false),
        }
    }

    fn header_checks(&self, pl: &MediaPlaylist) {
        let pt = self.pt;
        let td = self.td as f64;
        match pl.server_control.part_hold_back {
            None => self.add(
                E,
                rule::PART_HOLD_BACK,
                "no PART-HOLD-BACK (REQUIRED with EXT-X-PART-INF)",
            ),
            Some(phb) if phb < 2.0 * pt - 1e-6 => self.add(
                E,
                rule::PART_HOLD_BACK,
                format!("{phb} s < 2 x PART-TARGET {pt} s (MUST be at least twice)"),
            ),
            Some(phb) if phb < 3.0 * pt - 1e-6 => self.add(
                W,
                rule::PART_HOLD_BACK,
                format!("{phb} s < 3 x PART-TARGET {pt} s (SHOULD be at least three times)"),
            ),
            _ => {}
        }
        if let Some(hb) = pl.server_control.hold_back {
            if hb < 3.0 * td - 1e-6 {
                self.add(
                    E,
                    rule::HOLD_BACK,
                    format!("{hb} s < 3 x the target duration {td} s"),
                );
            }
        }
        if let Some(csu) = pl.server_control.can_skip_until {
            if csu < 6.0 * td - 1e-6 {
                self.add(
                    E,
                    rule::CAN_SKIP_UNTIL,
                    format!("{csu} s < 6 x the target duration {td} s"),
                );
            }
        }
    }

    /// Probes each rendition once: far past the edge (SHOULD be 400 at once), `_HLS_part`
    /// alone (MUST be 400), and a part already listed (answered at once, 200).
    fn probes(&mut self, pl: &MediaPlaylist) {
        let open = pl.open_msn();
        let apl = if self.pt < 1.0 {
            (3.0 / self.pt).ceil() as u64
        } else {
            3
        };
        // (query, the status expected, whether at once, severity, rule, what it asks).
        let mut probes = vec![
            (
                format!("_HLS_msn={}", open.saturating_add(10)),
                400,
                true,
                W,
                rule::ADVANCE_LIMIT,
                "more than two segments past the last one",
            ),
            (
                format!(
                    "_HLS_msn={open}&_HLS_part={}",
                    (pl.open_parts.len() as u64).saturating_add(apl + 2)
                ),
                400,
                true,
                W,
                rule::ADVANCE_LIMIT,
                "past the Advance Part Limit",
            ),
            (
                "_HLS_part=0".to_string(),
                400,
                false,
                E,
                rule::PART_WITHOUT_MSN,
                "_HLS_part without _HLS_msn",
            ),
        ];
        if let Some((m, p)) = pl.last_part() {
            probes.push((
                format!("_HLS_msn={m}&_HLS_part={p}"),
                200,
                true,
                E,
                rule::BLOCKING,
                "a part the playlist already lists",
            ));
        }
        for (q, want, at_once, sev, r, what) in probes {
            let url = self.with_query(&q);
            let ctx = self.ctx.clone();
            let name = self.name.clone();
            self.tasks.push(tokio::spawn(async move {
                let got = match ctx.client.get(&url, None, PROBE_TIMEOUT).await {
                    Ok(f)
                        if f.status == want
                            && (!at_once || f.head_at.duration_since(f.sent) <= AT_ONCE) =>
                    {
                        return
                    }
                    Ok(f) => format!(
                        "answered {} after {} ms",
                        f.status,
                        f.head_at.duration_since(f.sent).as_millis()
                    ),
                    Err(Error::Timeout { after, .. }) => {
                        format!("no answer within {} ms", after.as_millis())
                    }
                    Err(e) => e.to_string(),
                };
                let when = if at_once { " at once" } else { "" };
                ctx.findings.add(
                    sev,
                    r,
                    &name,
                    format!("{q} ({what}): {got}; expected {want}{when}"),
                );
            }));
        }
    }

    /// Rebuilds the full playlist from a delta update and the segments already known, and
    /// checks the delta against the rules and against the full playlist.
    async fn merge_delta(&mut self, delta: &MediaPlaylist, q: &str) -> Option<MediaPlaylist> {
        let Some(skipped) = delta.skipped else {
            // Nothing older than the skip boundary: the full playlist is the delta update.
            let total: f64 = delta.segments.iter().map(|s| s.duration).sum();
            let csu = delta.server_control.can_skip_until.unwrap_or(f64::MAX);
            if total > csu + self.td as f64 {
                self.add(
                    E,
                    rule::SKIP,
                    format!("{q}&_HLS_skip=YES answered without EXT-X-SKIP, with {total:.1} s of segments, more than CAN-SKIP-UNTIL {csu} s"),
                );
            }
            return Some(delta.clone());
        };
        let first = delta.media_sequence;
        let mut segments = Vec::new();
        for msn in first..first.saturating_add(skipped) {
            match self.known.get(&msn) {
                Some(s) => segments.push(s.clone()),
                None => {
                    self.add(
                        E,
                        rule::SKIP,
                        format!(
                            "the delta update skipped segment {msn}, which no full playlist listed"
                        ),
                    );
                    return None;
                }
            }
        }
        if let Some(csu) = delta.server_control.can_skip_until {
            let kept: f64 = delta.segments.iter().map(|s| s.duration).sum();
            if kept + self.td as f64 + 1e-3 < csu {
                self.add(
                    E,
                    rule::SKIP,
                    format!("the delta update keeps only {kept:.3} s of segments: segments within the skip boundary ({csu} s) were skipped"),
                );
            }
        }
        // The same request without _HLS_skip is answered at once: compare.
        if let Some((full, _)) = self.reload(Some(q)).await {
            if full.media_sequence == delta.media_sequence
                && full.open_msn() == delta.open_msn()
                && full.open_parts.len() == delta.open_parts.len()
            {
                let listed = delta.segments.len() as u64;
                if full.segments.len() as u64 != skipped.saturating_add(listed) {
                    self.add(
                        E,
                        rule::SKIP,
                        format!(
                            "EXT-X-SKIP:SKIPPED-SEGMENTS={skipped} and {listed} segments listed, but the full playlist has {} segments",
                            full.segments.len()
                        ),
                    );
                }
                for s in &delta.segments {
                    if full.segment(s.msn).is_none_or(|f| f.uri != s.uri) {
                        self.add(
                            E,
                            rule::SKIP,
                            format!("the delta update lists {} as segment {}, the full playlist does not", s.uri, s.msn),
                        );
                    }
                }
            }
        }
        segments.extend(delta.segments.iter().cloned());
        Some(MediaPlaylist {
            skipped: None,
            segments,
            ..delta.clone()
        })
    }

    fn spawn_fetch(&mut self, uri: &str, range: Option<String>, key: String, kind: Kind) {
        let Ok(url) = self.url.join(uri) else {
            self.add(
                E,
                rule::AVAILABLE,
                format!("cannot resolve the URI {uri:?}"),
            );
            return;
        };
        let ctx = self.ctx.clone();
        let obs = self.obs.clone();
        let name = self.name.clone();
        let video = self.video;
        let (pt, td) = (self.pt, self.td);
        let uri = uri.to_string();
        self.tasks.push(tokio::spawn(async move {
            let timeout = match kind {
                Kind::Part { hinted: true } => {
                    Duration::from_secs(3 * td).max(Duration::from_secs(2))
                        + Duration::from_secs_f64(pt)
                }
                _ => Duration::from_secs(10),
            };
            let missing_rule = match kind {
                Kind::Part { hinted: true } => rule::HINT_AVAILABLE,
                Kind::Removed => rule::REMOVED_AVAILABLE,
                Kind::RemovedPart => rule::REMOVED_PART_AVAILABLE,
                _ => rule::AVAILABLE,
            };
            let what = match kind {
                Kind::Part { hinted: true } => "hinted part",
                Kind::Part { hinted: false } => "part",
                Kind::Segment => "segment",
                Kind::Removed => "segment just removed from the playlist",
                Kind::RemovedPart => "part just removed from the playlist",
            };
            let f = match ctx.client.get(&url, range.as_deref(), timeout).await {
                Ok(f) => f,
                Err(e) => {
                    if clock::now() < ctx.deadline + timeout {
                        ctx.findings
                            .add(E, missing_rule, &name, format!("{what} {uri}: {e}"));
                    }
                    return;
                }
            };
            let ok = f.status == 200 || f.status == 206;
            // A hint the server withdrew (its segmentation changed) MAY be 404 (6.2.6):
            // judged at the end, once it is known whether the part was listed.
            let withdrawn_maybe = kind == (Kind::Part { hinted: true });
            if !ok {
                if !withdrawn_maybe {
                    ctx.findings.add(
                        E,
                        missing_rule,
                        &name,
                        format!("{what} {uri}: answered {}", f.status),
                    );
                }
            } else {
                let (max_age, forbids) = cache_control(&f);
                if forbids || max_age.is_none_or(|a| a < 60) {
                    ctx.findings.add(
                        W,
                        rule::CACHE_CONTROL,
                        &name,
                        format!(
                            "{what} {uri}: Cache-Control {:?}; media objects never change and should be cacheable for at least a minute",
                            f.header("cache-control").unwrap_or("")
                        ),
                    );
                }
            }
            let mut o = lock(&obs);
            match kind {
                Kind::Part { hinted } if ok => {
                    // An open-ended byte range (a byte-range hint) is answered with the
                    // rest of the segment, part by part: each part whole, in turn.
                    let spread = if range.as_deref().is_some_and(|r| r.ends_with('-')) {
                        f.burst_spread(Duration::from_secs_f64(pt / 2.0))
                    } else {
                        f.spread()
                    };
                    let limit = Duration::from_millis(100).max(Duration::from_secs_f64(pt / 4.0));
                    let ms = spread.as_secs_f64() * 1000.0;
                    if hinted {
                        o.summary.hinted_parts += 1;
                        o.summary.hinted_spread_max_ms = o.summary.hinted_spread_max_ms.max(ms);
                    } else {
                        o.summary.listed_spread_max_ms = o.summary.listed_spread_max_ms.max(ms);
                    }
                    o.summary.parts_fetched += 1;
                    if spread > limit {
                        ctx.findings.add(
                            E,
                            rule::PART_WHOLE,
                            &name,
                            format!(
                                "{what} {uri}: {ms:.0} ms from its first byte to its last ({} bytes; PART-TARGET {pt} s): the bytes were sent as the part was produced, not at link speed once it was complete",
                                f.body.len()
                            ),
                        );
                    }
                }
                Kind::Segment if ok => o.summary.segments_fetched += 1,
                Kind::Removed => o.summary.removed_segments_fetched += 1,
                _ => {}
            }
            if let Kind::Part { .. } = kind {
                o.media.insert(
                    key,
                    MediaObs {
                        ok,
                        status: f.status,
                        last_byte: f.last_byte,
                        independence: video.and_then(|t| mp4::independence(&f.body, t)),
                    },
                );
            }
        }));
    }

    /// Takes in a new version of the playlist: what changed since `prev`, what is new.
    async fn absorb(&mut self, prev: Option<&MediaPlaylist>, new: &MediaPlaylist, at: Instant) {
        if new.map_uri.is_some() && new.map_uri != self.map_uri {
            self.map_uri = new.map_uri.clone();
            self.load_init().await;
        }
        if let Some(p) = prev {
            self.compare(p, new);
        }
        let td = self.td;
        // Segments: new ones are checked and fetched, known ones must not have changed.
        let mut prev_seg: Option<Segment> = None;
        for s in &new.segments {
            if let Some(k) = self.known.get(&s.msn) {
                let mut changed = Vec::new();
                if k.uri != s.uri {
                    changed.push(format!("URI {} -> {}", k.uri, s.uri));
                }
                if (k.duration - s.duration).abs() > 1e-6 {
                    changed.push(format!("EXTINF {} -> {}", k.duration, s.duration));
                }
                if let (Some(a), Some(b)) = (k.pdt_ms, s.pdt_ms) {
                    if (a - b).abs() > 1.0 {
                        changed.push(format!("PROGRAM-DATE-TIME moved {:.0} ms", b - a));
                    }
                }
                for (i, (a, b)) in k.parts.iter().zip(&s.parts).enumerate() {
                    if a.uri != b.uri || a.byterange != b.byterange {
                        changed.push(format!("part {i} {} -> {}", a.uri, b.uri));
                    }
                }
                if !changed.is_empty() {
                    self.add(
                        E,
                        rule::PLAYLIST_CHANGES,
                        format!(
                            "segment {} changed between reloads: {}",
                            s.msn,
                            changed.join(", ")
                        ),
                    );
                }
            } else {
                if (s.duration.round() as u64) > td {
                    self.add(
                        E,
                        rule::TARGET_DURATION,
                        format!(
                            "segment {}: EXTINF {} rounds above the target duration {td} s",
                            s.msn, s.duration
                        ),
                    );
                }
                if let (Some(p), Some(pdt)) = (
                    prev_seg
                        .as_ref()
                        .or(self.known.get(&(s.msn.wrapping_sub(1)))),
                    s.pdt_ms,
                ) {
                    if let (Some(ppdt), false) = (p.pdt_ms, s.discontinuity) {
                        let gap = pdt - (ppdt + p.duration * 1000.0);
                        if gap.abs() > 100.0 {
                            self.add(
                                W,
                                rule::PDT,
                                format!(
                                    "segment {}: PROGRAM-DATE-TIME is {gap:.0} ms off the previous segment's date + EXTINF, with no EXT-X-DISCONTINUITY",
                                    s.msn
                                ),
                            );
                        }
                    }
                }
                if (prev.is_some() || Some(s) == new.segments.last()) && !s.gap {
                    let uri = s.uri.clone();
                    self.spawn_fetch(&uri, None, uri.clone(), Kind::Segment);
                }
                if prev.is_some() && !s.parts.is_empty() {
                    lock(&self.obs)
                        .seg_parts
                        .insert(s.msn, s.parts.len() as u64);
                }
                self.known.insert(s.msn, s.clone());
            }
            prev_seg = Some(s.clone());
        }
        // Forget what left the window long ago.
        let floor = new.media_sequence.saturating_sub(64);
        self.known = self.known.split_off(&floor);
        // Parts.
        let mut all: Vec<(u64, u64, &Part, bool)> = Vec::new();
        for s in &new.segments {
            let n = s.parts.len();
            for (i, p) in s.parts.iter().enumerate() {
                all.push((s.msn, i as u64, p, i + 1 == n));
            }
        }
        let open = new.open_msn();
        for (i, p) in new.open_parts.iter().enumerate() {
            all.push((open, i as u64, p, false));
        }
        let pt = self.pt;
        for (idx, &(msn, i, p, last)) in all.iter().enumerate() {
            let next_same_segment = all.get(idx + 1).filter(|n| n.0 == msn);
            let fresh = !lock(&self.obs).listed.contains_key(&(msn, i));
            if fresh {
                let k = key(&p.uri, p.byterange.as_deref());
                {
                    let mut o = lock(&self.obs);
                    o.summary.parts_listed += 1;
                    o.listed.insert(
                        (msn, i),
                        Listed {
                            uri: k.clone(),
                            independent: p.independent,
                            gap: p.gap,
                            at,
                        },
                    );
                }
                if p.duration > pt + 1e-3 {
                    self.add(
                        E,
                        rule::PART_DURATION,
                        format!(
                            "part {} ({msn}.{i}): DURATION {} > PART-TARGET {pt}",
                            p.uri, p.duration
                        ),
                    );
                }
                if !p.gap && self.started.insert(k.clone()) {
                    let range = p.byterange.as_deref().and_then(range_header);
                    let uri = p.uri.clone();
                    self.spawn_fetch(&uri, range, k, Kind::Part { hinted: false });
                }
            }
            // The 85 % floor, once the part is known not to be its segment's last.
            let exempt =
                p.independent || p.gap || last || next_same_segment.is_some_and(|n| n.2.gap);
            if (next_same_segment.is_some() || last)
                && self.duration_checked.insert((msn, i))
                && !exempt
                && p.duration < 0.85 * pt - 1e-3
            {
                self.add(
                    E,
                    rule::PART_DURATION,
                    format!(
                        "part {} ({msn}.{i}): DURATION {} < 85 % of PART-TARGET {pt}",
                        p.uri, p.duration
                    ),
                );
            }
        }
        let mut o = lock(&self.obs);
        if let Some(edge) = new.last_part() {
            o.edges.push((at, edge));
        }
        let mut targets = Vec::new();
        for r in &new.reports {
            if let Ok(u) = self.url.join(&r.uri) {
                o.reports.push((at, u.clone(), r.last_msn, r.last_part));
                targets.push(u);
            }
        }
        o.last_reports = Some(targets);
    }

    /// What may not change between two versions of the playlist (6.2.1), and the
    /// resources that left it (6.2.2).
    fn compare(&mut self, p: &MediaPlaylist, new: &MediaPlaylist) {
        if new.target_duration != p.target_duration {
            self.add(
                E,
                rule::PLAYLIST_CHANGES,
                format!(
                    "EXT-X-TARGETDURATION changed from {:?} to {:?}",
                    p.target_duration, new.target_duration
                ),
            );
        }
        if new.media_sequence < p.media_sequence {
            self.add(
                E,
                rule::PLAYLIST_CHANGES,
                format!(
                    "EXT-X-MEDIA-SEQUENCE went backwards, from {} to {}",
                    p.media_sequence, new.media_sequence
                ),
            );
        }
        if new.discontinuity_sequence < p.discontinuity_sequence {
            self.add(
                E,
                rule::PLAYLIST_CHANGES,
                format!(
                    "EXT-X-DISCONTINUITY-SEQUENCE went backwards, from {} to {}",
                    p.discontinuity_sequence, new.discontinuity_sequence
                ),
            );
        }
        if let (Some(a), Some(b)) = (p.last_part(), new.last_part()) {
            if b < a {
                self.add(
                    E,
                    rule::PLAYLIST_CHANGES,
                    format!(
                        "the last part went backwards, from {}.{} to {}.{}",
                        a.0, a.1, b.0, b.1
                    ),
                );
            }
        }
        // The segment that was in progress and is now complete: were all its parts listed?
        if !p.open_parts.is_empty() {
            if let Some(seg) = new.segment(p.open_msn()) {
                if !seg.parts.is_empty() {
                    let sum: f64 = seg.parts.iter().map(|x| x.duration).sum();
                    if (sum - seg.duration).abs() > 0.4 * self.pt {
                        self.add(
                            E,
                            rule::PARTS_LISTED,
                            format!(
                                "segment {}: its {} parts add up to {sum:.3} s, its EXTINF is {} s",
                                seg.msn,
                                seg.parts.len(),
                                seg.duration
                            ),
                        );
                    }
                }
            }
        }
        // Segments that just left the playlist must still be served.
        for s in &p.segments {
            if s.msn < new.media_sequence && !s.gap {
                let uri = s.uri.clone();
                self.spawn_fetch(&uri, None, format!("removed {uri}"), Kind::Removed);
            }
            // Parts whose tags were just removed: one per segment.
            let gone = new.segment(s.msn).is_none_or(|n| n.parts.is_empty());
            if gone && !s.parts.is_empty() && self.removed_parts_fetched.insert(s.msn) {
                if let Some(part) = s.parts.iter().find(|x| !x.gap) {
                    let uri = part.uri.clone();
                    let range = part.byterange.as_deref().and_then(range_header);
                    self.spawn_fetch(&uri, range, format!("removed {uri}"), Kind::RemovedPart);
                }
            }
        }
    }

    async fn load_init(&mut self) {
        let Some(uri) = self.map_uri.clone() else {
            return;
        };
        let Ok(url) = self.url.join(&uri) else { return };
        match self
            .ctx
            .client
            .get(&url, None, Duration::from_secs(10))
            .await
        {
            Ok(f) if f.status == 200 => {
                self.video = mp4::video_track(&f.body);
            }
            Ok(f) => self.add(
                E,
                rule::AVAILABLE,
                format!("media initialization section {uri}: answered {}", f.status),
            ),
            Err(e) => self.add(
                E,
                rule::AVAILABLE,
                format!("media initialization section {uri}: {e}"),
            ),
        }
    }

    /// Waits briefly for the requests still running, then judges what relates several
    /// observations.
    async fn finish(mut self) -> Outcome {
        let grace = clock::now() + Duration::from_secs_f64(2.0 * self.pt) + Duration::from_secs(1);
        for t in self.tasks.drain(..) {
            let left = grace.saturating_duration_since(clock::now());
            let abort = t.abort_handle();
            if tokio::time::timeout(left, t).await.is_err() {
                abort.abort();
            }
        }
        let mut obs = std::mem::take(&mut *lock(&self.obs));
        obs.summary.independence_checked = self.judge(&obs);
        Outcome {
            url: self.url.clone(),
            part_target: self.pt,
            summary: obs.summary.clone(),
            obs,
        }
    }

    /// Returns how many parts had their video samples compared with `INDEPENDENT`.
    fn judge(&self, o: &Obs) -> u32 {
        let pt = self.pt;
        let mut compared = 0;
        // INDEPENDENT against the part's video samples.
        for ((msn, i), l) in &o.listed {
            let Some(ind) = o.media.get(&l.uri).and_then(|m| m.independence) else {
                continue;
            };
            compared += 1;
            if l.independent && !ind.has_sync {
                self.add(
                    E,
                    rule::INDEPENDENT,
                    format!(
                        "part {} ({msn}.{i}) is INDEPENDENT=YES but holds no sync video sample",
                        l.uri
                    ),
                );
            } else if l.independent && !ind.starts_with_sync {
                self.add(
                    W,
                    rule::INDEPENDENT,
                    format!("part {} ({msn}.{i}) is INDEPENDENT=YES but its first video sample is not a sync sample", l.uri),
                );
            } else if !l.independent && !l.gap && ind.has_sync {
                self.add(
                    W,
                    rule::INDEPENDENT,
                    format!(
                        "part {} ({msn}.{i}) holds a sync video sample but has no INDEPENDENT=YES",
                        l.uri
                    ),
                );
            }
        }
        // Each hint named the part that came next, and the playlist that listed it came
        // promptly once its bytes were there.
        for (_, (m, p), k) in &o.hints {
            let listed = o.listed.get(&(*m, *p)).or_else(|| {
                o.seg_parts
                    .get(m)
                    .filter(|&&n| n == *p)
                    .and_then(|_| o.listed.get(&(m.saturating_add(1), 0)))
            });
            let fetched = o.media.get(k);
            let Some(l) = listed else {
                // Never listed: a withdrawn hint, which SHOULD be 404; or the check ended.
                if let Some(m) = fetched.filter(|m| !m.ok && m.status != 404) {
                    self.add(
                        W,
                        rule::HINT_AVAILABLE,
                        format!(
                            "hinted part {k} was withdrawn and answered {} (SHOULD be 404)",
                            m.status
                        ),
                    );
                }
                continue;
            };
            if let Some(m) =
                fetched.filter(|m| !m.ok && o.listed.values().any(|x| hint_names(k, &x.uri)))
            {
                self.add(
                    E,
                    rule::HINT_AVAILABLE,
                    format!(
                        "hinted part {k} answered {} although the playlist then listed it",
                        m.status
                    ),
                );
            }
            if !hint_names(k, &l.uri) && fetched.is_some_and(|m| !m.ok) {
                // Withdrawn (answered 404 or so) and replaced: allowed by 6.2.6.
                continue;
            }
            if !hint_names(k, &l.uri) {
                self.add(
                    E,
                    rule::HINT_NEXT,
                    format!(
                        "the preload hint named {k}, but the next part listed ({m}.{p}) is {}",
                        l.uri
                    ),
                );
                continue;
            }
            if let Some(MediaObs {
                ok: true,
                last_byte: Some(done),
                ..
            }) = o.media.get(k)
            {
                let late = l.at.saturating_duration_since(*done);
                let limit = Duration::from_secs_f64(pt).max(Duration::from_millis(150));
                if late > limit {
                    self.add(
                        E,
                        rule::BLOCKING_PROMPT,
                        format!(
                            "part {k} ({m}.{p}) was complete {} ms before the blocking reload waiting for it was answered (PART-TARGET {pt} s)",
                            late.as_millis()
                        ),
                    );
                }
            }
        }
        compared
    }
}

/// Rendition reports against what the checker saw of each sibling.
fn check_reports(ctx: &Ctx, renditions: &[Url], outcomes: &[Outcome]) {
    for a in outcomes {
        let name = ctx.name(&a.url);
        if let Some(targets) = &a.obs.last_reports {
            for r in renditions {
                if r != &a.url && !targets.contains(r) {
                    ctx.findings.add(
                        E,
                        rule::RENDITION_REPORTS_ALL,
                        &name,
                        format!("no EXT-X-RENDITION-REPORT for {}", ctx.name(r)),
                    );
                }
            }
        }
        for (at, target, msn, part) in &a.obs.reports {
            let Some(b) = outcomes.iter().find(|b| &b.url == target) else {
                ctx.findings.add(
                    E,
                    rule::RENDITION_REPORT,
                    &name,
                    format!("reports {target}, which the multivariant playlist does not list"),
                );
                continue;
            };
            let Some(msn) = *msn else {
                ctx.findings.add(
                    E,
                    rule::RENDITION_REPORT,
                    &name,
                    format!("the report for {} has no LAST-MSN", ctx.name(target)),
                );
                continue;
            };
            let slack = Duration::from_secs_f64(b.part_target.max(a.part_target))
                + Duration::from_millis(250);
            let reported = (msn, part.unwrap_or(0));
            let cmp = |e: (u64, u64)| if part.is_some() { e } else { (e.0, 0) };
            let before = at.checked_sub(slack).and_then(|t| {
                b.obs
                    .edges
                    .iter()
                    .rev()
                    .find(|(w, _)| *w <= t)
                    .map(|(_, e)| cmp(*e))
            });
            let after = b
                .obs
                .edges
                .iter()
                .find(|(w, _)| *w >= *at + slack)
                .map(|(_, e)| cmp(*e));
            if let Some(lo) = before.filter(|lo| reported < *lo) {
                ctx.findings.add(
                    E,
                    rule::RENDITION_REPORT,
                    &name,
                    format!(
                        "reported {} at {}.{} while it was already at {}.{}",
                        ctx.name(target),
                        reported.0,
                        reported.1,
                        lo.0,
                        lo.1
                    ),
                );
            } else if let Some(hi) = after.filter(|hi| reported > *hi) {
                ctx.findings.add(
                    E,
                    rule::RENDITION_REPORT,
                    &name,
                    format!(
                        "reported {} at {}.{}, ahead of its playlist ({}.{} later)",
                        ctx.name(target),
                        reported.0,
                        reported.1,
                        hi.0,
                        hi.1
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byterange_hint_names_the_part_listed_at_its_start() {
        assert!(hint_names("part7.m4s", "part7.m4s"));
        assert!(!hint_names("part7.m4s", "part8.m4s"));
        assert!(hint_names("seg3.m4s@0", "seg3.m4s@40365@0"));
        assert!(hint_names("seg3.m4s@6320", "seg3.m4s@6312@6320"));
        assert!(!hint_names("seg3.m4s@6320", "seg3.m4s@6320@0"));
        assert!(!hint_names("seg3.m4s@0", "seg4.m4s@6320@0"));
    }
}
