//! The IO side of an edge: following an upstream weir's stream into the local registry
//! with weir-check's HTTP client (HTTP/1.1, h2c is not used; HTTPS with HTTP/2 when the
//! upstream offers it). One task per rendition runs the [`Follower`] loop.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::{debug, info, warn};
use url::Url;
use weir_check::http::Client;
use weir_check::playlist::parse_multivariant;
use weir_media::{rendition_channel, RenditionProducer, RenditionSnapshot, StreamRegistry};

use crate::follow::{Action, Follower};
use crate::Error;

/// How often a followed stream's multivariant playlist is fetched again.
const MULTIVARIANT_REFRESH: Duration = Duration::from_secs(2);

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

/// An upstream weir (a primary, or another edge).
pub struct Upstream {
    base: Url,
    client: Client,
    registry: StreamRegistry,
    settings: EdgeSettings,
}

impl Upstream {
    pub fn new(
        base: Url,
        client: Client,
        registry: StreamRegistry,
        settings: EdgeSettings,
    ) -> Self {
        Self {
            base,
            client,
            registry,
            settings,
        }
    }

    fn url(&self, path: &str) -> Result<Url, Error> {
        self.base
            .join(path)
            .map_err(|e| Error::Upstream(format!("{path}: {e}")))
    }

    /// Follows stream `name`: registers it with the upstream's multivariant playlist and
    /// follows each of its renditions until the upstream ends it or forgets it.
    pub async fn follow_stream(self: Arc<Self>, name: String) -> Result<(), Error> {
        let master_url = self.url(&format!("/live/{name}/master.m3u8"))?;
        let master = self
            .client
            .get(&master_url, None, self.settings.request_timeout)
            .await
            .map_err(|e| Error::Upstream(e.to_string()))?;
        if master.status != 200 {
            return Err(Error::Upstream(format!(
                "{master_url}: answered {}",
                master.status
            )));
        }
        let text =
            std::str::from_utf8(&master.body).map_err(|_| Error::Playlist("not UTF-8".into()))?;
        let variants = parse_multivariant(text).map_err(Error::Playlist)?;
        let mut renditions = Vec::new();
        let mut followers = Vec::new();
        for v in variants.variants.iter().chain(&variants.media) {
            let Some((rendition, _)) = v.uri.split_once('/') else {
                continue;
            };
            let url = master_url
                .join(&v.uri)
                .map_err(|e| Error::Upstream(format!("{}: {e}", v.uri)))?;
            let (producer, consumer) = rendition_channel();
            renditions.push((rendition.to_owned(), consumer));
            followers.push((rendition.to_owned(), url, producer));
        }
        // Registered whole: no reader sees the stream without its renditions.
        let stream = self
            .registry
            .publish_with(&name, Some(master.body.clone()), renditions);
        let mut tasks = tokio::task::JoinSet::new();
        for (rendition, url, producer) in followers {
            info!(stream = %name, %rendition, "following upstream rendition");
            tasks.spawn(Arc::clone(&self).follow_rendition(url, producer));
        }
        // The multivariant playlist changes upstream too (BANDWIDTH and AVERAGE-BANDWIDTH
        // as segments are measured): fetched again every few seconds while followed.
        let mut last = master.body;
        loop {
            tokio::select! {
                done = tasks.join_next() => if done.is_none() { break },
                () = tokio::time::sleep(MULTIVARIANT_REFRESH) => {
                    let timeout = self.settings.request_timeout;
                    if let Ok(f) = self.client.get(&master_url, None, timeout).await {
                        if f.status == 200 && f.body != last {
                            stream.set_multivariant(f.body.clone());
                            last = f.body;
                        }
                    }
                }
            }
        }
        info!(stream = %name, "upstream stream over");
        Ok(())
    }

    #[allow(clippy::disallowed_methods)] // the driver is where the clock is read
    async fn follow_rendition(self: Arc<Self>, url: Url, producer: RenditionProducer) {
        let mut follower = Follower::new();
        let mut version = 0;
        let mut missing_since = None;
        loop {
            let mut request = url.clone();
            if let Some((msn, part)) = follower.next_request() {
                request
                    .query_pairs_mut()
                    .append_pair("_HLS_msn", &msn.to_string())
                    .append_pair("_HLS_part", &part.to_string());
            }
            let answer = self
                .client
                .get(&request, None, self.settings.request_timeout)
                .await;
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
                    Action::Init { generation, uri } => match self.object(&url, &uri).await {
                        Some(bytes) => producer.set_init_generation(generation, bytes),
                        None => warn!(%uri, "init segment not fetched"),
                    },
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
                            // Dropped unfinished (upstream failed): the part is aborted and
                            // its local readers get an error, as on a primary.
                            if let Some(bytes) = me.object(&base, &uri).await {
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

    /// An object next to `playlist` (a part, a segment, an init segment), whole.
    async fn object(&self, playlist: &Url, uri: &str) -> Option<Bytes> {
        let url = playlist.join(uri).ok()?;
        match self
            .client
            .get(&url, None, self.settings.request_timeout)
            .await
        {
            Ok(f) if f.status == 200 => Some(f.body),
            Ok(f) => {
                warn!(%url, status = f.status, "upstream object");
                None
            }
            Err(e) => {
                warn!(%url, error = %e, "upstream object");
                None
            }
        }
    }
}
