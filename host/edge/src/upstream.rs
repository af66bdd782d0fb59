//! The IO side of an edge: following an upstream weir's stream into the local registry
//! with weir-check's HTTP client (HTTP/1.1, h2c is not used; HTTPS with HTTP/2 when the
//! upstream offers it). One task per rendition runs the [`Follower`] loop.
//!
//! With several upstreams (primaries), a stream is followed from the one that has it with
//! a live publisher, the newest such copy when two do (the rule in
//! docs/design/009-edge.md); when the followed copy loses its publisher the edge looks
//! again and moves to where the publisher went.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use url::Url;
use weir_check::http::{Client, Fetched};
use weir_check::playlist::parse_multivariant;
use weir_media::{rendition_channel, RenditionProducer, RenditionSnapshot, StreamRegistry};

use crate::follow::{Action, Follower};
use crate::Error;

/// How often a followed stream's multivariant playlist is fetched again (and, when its
/// copy has no publisher, the other upstreams asked).
const MULTIVARIANT_REFRESH: Duration = Duration::from_secs(2);
/// How long one upstream gets to say whether it has a stream.
const LOCATE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug)]
pub struct EdgeSettings {
    /// One upstream request's limit. A blocking reload upstream answers within three target
    /// durations (503 after that), so this is above it.
    pub request_timeout: Duration,
    /// Between retries while the upstream fails or stalls.
    pub retry: Duration,
    /// An upstream that answers 404 for a stream this long has ended it.
    pub give_up: Duration,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            retry: Duration::from_millis(500),
            give_up: Duration::from_secs(30),
        }
    }
}

/// The upstream weirs an edge follows (primaries, or other edges).
pub struct Upstream {
    bases: Vec<Url>,
    client: Client,
    registry: StreamRegistry,
    settings: EdgeSettings,
}

/// One upstream's copy of a stream, as its multivariant playlist answer describes it.
struct Copy {
    base: Url,
    master: Fetched,
    live: bool,
    started: u64,
}

impl Copy {
    fn of(base: &Url, master: Fetched) -> Self {
        let header = |name| master.header(name).map(str::to_owned);
        Self {
            live: header(weir_origin_headers::PUBLISHER).as_deref() != Some("none"),
            started: header(weir_origin_headers::STARTED)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            base: base.clone(),
            master,
        }
    }
}

/// The headers a weir origin puts on multivariant playlists (weir-origin's
/// `PUBLISHER_HEADER` and `STARTED_HEADER`; an upstream without them counts as live).
mod weir_origin_headers {
    pub const PUBLISHER: &str = "weir-publisher";
    pub const STARTED: &str = "weir-stream-started";
    pub const HIDDEN: &str = "weir-hidden-renditions";
}

/// A rendition name as weir makes them (`[A-Za-z0-9_-]`, 1 to 128): anything else in the
/// header is ignored.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn master_url(base: &Url, name: &str) -> Result<Url, Error> {
    let path = format!("/live/{name}/master.m3u8");
    base.join(&path)
        .map_err(|e| Error::Upstream(format!("{path}: {e}")))
}

impl Upstream {
    /// An edge of `bases`: one upstream, or several primaries any of which may hold a
    /// stream.
    pub fn new(
        bases: Vec<Url>,
        client: Client,
        registry: StreamRegistry,
        settings: EdgeSettings,
    ) -> Self {
        Self {
            bases,
            client,
            registry,
            settings,
        }
    }

    /// Where stream `name` is: every upstream is asked at once, and the copy with a live
    /// publisher wins, the newest of those when several have one.
    async fn locate(&self, name: &str) -> Result<Copy, Error> {
        let asks = self.bases.iter().map(|base| async move {
            let url = master_url(base, name)?;
            match self.client.get(&url, None, LOCATE_TIMEOUT).await {
                Ok(f) if f.status == 200 => Ok(Copy::of(base, f)),
                Ok(f) => Err(Error::Upstream(format!("{url}: answered {}", f.status))),
                Err(e) => Err(Error::Upstream(e.to_string())),
            }
        });
        let answers = futures_util::future::join_all(asks).await;
        let mut best: Option<Copy> = None;
        let mut last_error = None;
        for answer in answers {
            match answer {
                Ok(c) => {
                    if best
                        .as_ref()
                        .is_none_or(|b| (c.live, c.started) > (b.live, b.started))
                    {
                        best = Some(c);
                    }
                }
                Err(e) => last_error = Some(e),
            }
        }
        best.ok_or_else(|| last_error.unwrap_or_else(|| Error::Upstream("no upstream".into())))
    }

    /// Follows stream `name`: registers it with the upstream's multivariant playlist and
    /// follows each of its renditions until the upstream ends it or forgets it. With several
    /// upstreams, moves to another one's copy when the followed copy has lost its publisher
    /// and another has one.
    pub async fn follow_stream(self: Arc<Self>, name: String) -> Result<(), Error> {
        let copy = self.locate(&name).await?;
        let master_url = master_url(&copy.base, &name)?;
        let master = copy.master;
        let text =
            std::str::from_utf8(&master.body).map_err(|_| Error::Playlist("not UTF-8".into()))?;
        let variants = parse_multivariant(text).map_err(Error::Playlist)?;
        let mut renditions = Vec::new();
        let mut followers = Vec::new();
        // The listed renditions, then the hidden ones the upstream names (a slate that a
        // plugin here may point viewers at).
        let hidden: Vec<String> = master
            .header(weir_origin_headers::HIDDEN)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|n| valid_name(n))
            .map(|n| format!("{n}/index.m3u8"))
            .collect();
        let uris = variants
            .variants
            .iter()
            .chain(&variants.media)
            .map(|v| v.uri.clone())
            .chain(hidden);
        let mut seen = std::collections::HashSet::new();
        for uri in uris {
            let Some((rendition, _)) = uri.split_once('/') else {
                continue;
            };
            if !seen.insert(rendition.to_owned()) {
                continue;
            }
            let url = master_url
                .join(&uri)
                .map_err(|e| Error::Upstream(format!("{uri}: {e}")))?;
            let (producer, consumer) = rendition_channel();
            renditions.push((rendition.to_owned(), consumer));
            followers.push((rendition.to_owned(), url, producer));
        }
        // Registered whole: no reader sees the stream without its renditions.
        let stream = self
            .registry
            .publish_with(&name, Some(master.body.clone()), renditions);
        stream.set_publisher_live(copy.live);
        stream.set_started_unix_ms(copy.started);
        // Where the renditions are followed from: a move to another upstream changes it.
        let (current, _) = watch::channel(copy.base.clone());
        let mut tasks = tokio::task::JoinSet::new();
        for (rendition, url, producer) in followers {
            info!(stream = %name, %rendition, upstream = %copy.base, "following upstream rendition");
            // The rendition's path under the stream, so it can be joined to another base.
            let path = url.path().to_owned();
            tasks.spawn(Arc::clone(&self).follow_rendition(path, current.subscribe(), producer));
        }
        // The multivariant playlist changes upstream too (BANDWIDTH and AVERAGE-BANDWIDTH
        // as segments are measured): fetched again every few seconds while followed.
        let mut last = master.body;
        let mut master_url = master_url;
        loop {
            tokio::select! {
                done = tasks.join_next() => if done.is_none() { break },
                () = tokio::time::sleep(MULTIVARIANT_REFRESH) => {
                    let timeout = self.settings.request_timeout;
                    let answer = self.client.get(&master_url, None, timeout).await;
                    let here = match answer {
                        Ok(f) if f.status == 200 => Some(Copy::of(&current.borrow(), f)),
                        _ => None,
                    };
                    let here_live = here.as_ref().is_some_and(|c| c.live);
                    let mut copy = here;
                    if !here_live && self.bases.len() > 1 {
                        // The publisher left this copy: is it at another upstream now?
                        if let Ok(other) = self.locate(&name).await {
                            if other.live && other.base != *current.borrow() {
                                info!(stream = %name, from = %*current.borrow(), to = %other.base, "the publisher moved; following it");
                                master_url = master_url_or(&other.base, &name, master_url);
                                current.send_replace(other.base.clone());
                                copy = Some(other);
                            }
                        }
                    }
                    if let Some(c) = copy {
                        stream.set_publisher_live(c.live);
                        stream.set_started_unix_ms(c.started);
                        if c.master.body != last {
                            stream.set_multivariant(c.master.body.clone());
                            last = c.master.body;
                        }
                    }
                }
            }
        }
        info!(stream = %name, "upstream stream over");
        Ok(())
    }

    #[allow(clippy::disallowed_methods)] // the driver is where the clock is read
    async fn follow_rendition(
        self: Arc<Self>,
        path: String,
        mut base: watch::Receiver<Url>,
        producer: RenditionProducer,
    ) {
        let mut follower = Follower::new();
        let mut version = 0;
        let mut missing_since = None;
        loop {
            let url = match base.borrow_and_update().join(&path) {
                Ok(u) => u,
                Err(e) => {
                    warn!(%path, error = %e, "rendition URL");
                    return;
                }
            };
            let mut request = url.clone();
            if let Some((msn, part)) = follower.next_request() {
                request
                    .query_pairs_mut()
                    .append_pair("_HLS_msn", &msn.to_string())
                    .append_pair("_HLS_part", &part.to_string());
            }
            let answer = tokio::select! {
                answer = self.client.get(&request, None, self.settings.request_timeout) => answer,
                // Moved to another upstream: ask it from its live edge.
                changed = base.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    follower.restart_request();
                    continue;
                }
            };
            let fetched = match answer {
                Ok(f) if f.status == 200 => f,
                Ok(f) if f.status == 404 => {
                    let since = *missing_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= self.settings.give_up {
                        return;
                    }
                    tokio::time::sleep(self.settings.retry).await;
                    continue;
                }
                Ok(f) => {
                    // 503 (a blocking reload that timed out upstream) or 400 (the request
                    // is past an upstream that restarted): ask again from its live edge.
                    debug!(%request, status = f.status, "upstream playlist");
                    follower.restart_request();
                    tokio::time::sleep(self.settings.retry).await;
                    continue;
                }
                Err(e) => {
                    warn!(%request, error = %e, "upstream unreachable; keeping the window");
                    tokio::time::sleep(self.settings.retry).await;
                    continue;
                }
            };
            missing_since = None;
            let Ok(text) = std::str::from_utf8(&fetched.body) else {
                warn!(%request, "upstream playlist is not UTF-8");
                tokio::time::sleep(self.settings.retry).await;
                continue;
            };
            let actions = match follower.playlist(text) {
                Ok(a) => a,
                Err(e) => {
                    warn!(%request, error = %e, "cannot follow this upstream playlist");
                    tokio::time::sleep(self.settings.retry).await;
                    continue;
                }
            };
            let mut ended = false;
            for action in actions {
                match action {
                    Action::Init { generation, uri } => {
                        match self.object_patiently(&url, &uri, false).await {
                            Some(bytes) => producer.set_init_generation(generation, bytes),
                            None => warn!(%uri, "init segment not fetched"),
                        }
                    }
                    Action::Part { seq, uri, gap } => {
                        let Some(part) = producer.begin_part(seq) else {
                            continue;
                        };
                        if gap {
                            part.finish();
                            continue;
                        }
                        let me = Arc::clone(&self);
                        let base = url.clone();
                        tokio::spawn(async move {
                            // While the upstream is unreachable (a primary restarting) the
                            // part stays open and its local readers wait, as for a hinted
                            // part, instead of getting errors; dropped unfinished (the
                            // upstream says it will never exist, or gave up), it is aborted
                            // and its readers get an error, as on a primary.
                            if let Some(bytes) = me.object_patiently(&base, &uri, true).await {
                                part.push(bytes);
                                part.finish();
                            }
                        });
                    }
                    Action::Segment { msn, parts } => producer.complete_segment(msn, parts),
                    Action::Publish(p) => {
                        version += 1;
                        ended = p.ended;
                        producer.publish(RenditionSnapshot {
                            version,
                            first_msn: p.first_msn,
                            next_msn: p.next_msn,
                            parts_done: p.parts_done,
                            target_duration: p.target_duration,
                            part_target: p.part_target,
                            playlist: Bytes::from(p.playlist),
                            playlist_skip: None,
                            ended: p.ended,
                            cues: Arc::from(Vec::new()),
                        });
                    }
                }
            }
            if ended {
                return;
            }
        }
    }

    /// An object next to `playlist` (a part or an init segment), whole; asked again while
    /// the upstream is unreachable or answers 5xx, until it answers or `give_up` passes.
    /// `hold`: a part that will never come is held open until then (see below); an init
    /// segment's absence is said at once.
    #[allow(clippy::disallowed_methods)] // the driver is where the clock is read
    async fn object_patiently(&self, playlist: &Url, uri: &str, hold: bool) -> Option<Bytes> {
        let url = playlist.join(uri).ok()?;
        let deadline = tokio::time::Instant::now() + self.settings.give_up;
        loop {
            match self
                .client
                .get(&url, None, self.settings.request_timeout)
                .await
            {
                Ok(f) if f.status == 200 => return Some(f.body),
                Ok(f) if f.status == 404 || f.status == 410 => {
                    // It will never come (a restarted upstream numbers on from higher). The
                    // players that asked for it are still waiting: they are left waiting
                    // until `give_up`, by which time this edge's playlist has moved on to
                    // the upstream's new run and the players with it (they abandon the
                    // request), rather than told at once with an error that Shaka counts
                    // against the part and, the second time, as critical.
                    debug!(%url, status = f.status, "upstream object is not coming");
                    if hold {
                        tokio::time::sleep_until(deadline).await;
                    }
                    return None;
                }
                Ok(f) => debug!(%url, status = f.status, "upstream object; asking again"),
                Err(e) => debug!(%url, error = %e, "upstream object; asking again"),
            }
            if tokio::time::Instant::now() >= deadline {
                warn!(%url, "upstream object: gave up");
                return None;
            }
            tokio::time::sleep(self.settings.retry).await;
        }
    }
}

fn master_url_or(base: &Url, name: &str, fallback: Url) -> Url {
    master_url(base, name).unwrap_or(fallback)
}
