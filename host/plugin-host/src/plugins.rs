//! Tenants, their plugin chains, and the transform path.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use weir_media::PlacedCue;

use crate::runtime::{timed, Compiled, RequestContext, Runtime};
use crate::workers::Workers;
use crate::{
    replay, validate, CueEvent, CueKind, Failure, FailurePolicy, Limits, Metrics, VariantAttribute,
};

pub use crate::DEFAULT_MAX_VARIANTS;
/// A variant unseen for this long gives its place to a new one once the set is full.
pub const DEFAULT_VARIANT_IDLE: Duration = Duration::from_secs(60);
/// Bytes of transform results kept (bodies and keys).
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;
/// Bytes of last good (input, output) pairs kept for `last-good`.
pub const DEFAULT_LAST_GOOD_BYTES: u64 = 32 << 20;
pub use crate::DEFAULT_ASSET_LIST_RATE;
/// The burst above [`DEFAULT_ASSET_LIST_RATE`].
pub const DEFAULT_ASSET_LIST_BURST: u32 = 100;
/// Asset-list runs of one tenant on the plugin workers at once; the rest wait their turn
/// (within the asset-list timeout), so one tenant's asset lists never hold every worker.
pub const DEFAULT_ASSET_LIST_CONCURRENCY: usize = 1;
/// How long an asset-list answer (or the lack of one) is reused for the same cue and
/// declared request attributes.
pub const DEFAULT_ASSET_LIST_CACHE_TTL: Duration = Duration::from_secs(10);
/// Bytes of asset-list answers kept.
pub const DEFAULT_ASSET_LIST_CACHE_BYTES: u64 = 8 << 20;
/// A plugin's variant-limit warning is logged at most this often.
const LIMIT_LOG_EVERY: Duration = Duration::from_secs(10);
/// A full variant set is swept for idle entries at most this often.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// How the transform path behaves.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: Limits,
    /// Plugin worker threads.
    pub threads: usize,
    /// Transform jobs waiting at most; beyond that a request gets the fallback at once.
    pub queue: usize,
    /// How long a playlist request waits for the chain's output before the failure policy
    /// answers instead. The run goes on and later requests get its result.
    pub deadline: Duration,
    /// How long an asset-list request waits for a plugin's answer.
    pub asset_list_timeout: Duration,
    /// Bytes of transform results kept ([`DEFAULT_CACHE_BYTES`]).
    pub cache_bytes: u64,
    /// How long a transform result is kept; playlists change every part anyway.
    pub cache_ttl: Duration,
    /// Bytes of last good outputs kept ([`DEFAULT_LAST_GOOD_BYTES`]).
    pub last_good_bytes: u64,
    /// Variants per plugin ([`DEFAULT_MAX_VARIANTS`]).
    pub max_variants: usize,
    /// [`DEFAULT_VARIANT_IDLE`].
    pub variant_idle: Duration,
    /// Asset-list runs per second per tenant ([`DEFAULT_ASSET_LIST_RATE`]).
    pub asset_list_rate: u32,
    /// [`DEFAULT_ASSET_LIST_BURST`].
    pub asset_list_burst: u32,
    /// [`DEFAULT_ASSET_LIST_CONCURRENCY`].
    pub asset_list_concurrency: usize,
    /// [`DEFAULT_ASSET_LIST_CACHE_TTL`].
    pub asset_list_cache_ttl: Duration,
    /// [`DEFAULT_ASSET_LIST_CACHE_BYTES`].
    pub asset_list_cache_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            threads: 2,
            queue: 1024,
            deadline: Duration::from_millis(50),
            asset_list_timeout: Duration::from_millis(500),
            cache_bytes: DEFAULT_CACHE_BYTES,
            cache_ttl: Duration::from_secs(30),
            last_good_bytes: DEFAULT_LAST_GOOD_BYTES,
            max_variants: DEFAULT_MAX_VARIANTS,
            variant_idle: DEFAULT_VARIANT_IDLE,
            asset_list_rate: DEFAULT_ASSET_LIST_RATE,
            asset_list_burst: DEFAULT_ASSET_LIST_BURST,
            asset_list_concurrency: DEFAULT_ASSET_LIST_CONCURRENCY,
            asset_list_cache_ttl: DEFAULT_ASSET_LIST_CACHE_TTL,
            asset_list_cache_bytes: DEFAULT_ASSET_LIST_CACHE_BYTES,
        }
    }
}

/// A tenant: who owns which streams, and where its viewers' country comes from.
#[derive(Clone, Debug)]
pub struct TenantSettings {
    pub name: String,
    /// Stream names (the `/live/<stream>/` part) that belong to this tenant.
    pub streams: Vec<String>,
    /// The request header carrying the viewer's ISO 3166 country (set by the CDN).
    pub country_header: String,
    /// Hosts where its plugins' asset lists and ad assets may live (`host` or `host:port`,
    /// canonical: see [`validate::asset_host`]). Every other URI stays in the stream.
    pub asset_hosts: Vec<String>,
}

impl TenantSettings {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            streams: Vec::new(),
            country_header: "cf-ipcountry".to_owned(),
            asset_hosts: Vec::new(),
        }
    }
}

/// One plugin to put in a chain.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub name: String,
    pub component: Bytes,
    pub config: String,
}

/// What `list` and `push` report.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PluginSummary {
    pub name: String,
    /// `sha256:<hex>` of the component bytes.
    pub digest: String,
    pub size: usize,
    pub varies_on: Vec<String>,
    pub failure_policy: &'static str,
    pub pushed_at_ms: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("unknown tenant {0:?} (configure it under [[tenants]])")]
    UnknownTenant(String),
    #[error("no plugin {name:?} in tenant {tenant:?}")]
    UnknownPlugin { tenant: String, name: String },
    #[error("invalid plugin name {0:?}: use 1-64 of a-z, 0-9, '-', '_'")]
    BadName(String),
    #[error("plugin {name:?} rejected: {reason}")]
    Rejected { name: String, reason: String },
    #[error("plugin {name:?} failed init: {failure}")]
    InitFailed { name: String, failure: Failure },
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot start the wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot start the plugin workers: {0}")]
    Workers(std::io::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum AssetListError {
    #[error("no plugin of this stream's tenant answers asset-list requests")]
    NoPlugin,
    #[error("no plugin resolved cue {0}")]
    Unresolved(u32),
    #[error("not run: the tenant's asset-list calls are over their rate")]
    RateLimited,
    #[error("not run: the tenant's asset-list calls are all busy")]
    Busy,
}

struct Plugin {
    id: u64,
    name: Arc<str>,
    tenant: Arc<str>,
    digest: String,
    size: usize,
    config: String,
    varies_on: Vec<VariantAttribute>,
    policy: FailurePolicy,
    compiled: Compiled,
    pushed_at_ms: u64,
    /// Calls in a row that ran out of time (see [`OPEN_AFTER_TIMEOUTS`]).
    timeouts_in_a_row: std::sync::atomic::AtomicU32,
    /// Runs that skipped this plugin while its circuit was open.
    skipped: std::sync::atomic::AtomicU32,
    /// The variants it runs for (see [`DEFAULT_MAX_VARIANTS`]).
    variants: Mutex<Variants>,
}

/// The variants a plugin has been asked for lately, by hash.
#[derive(Debug, Default)]
struct Variants {
    seen: HashMap<u64, Instant>,
    swept: Option<Instant>,
    warned: Option<Instant>,
}

impl Variants {
    /// Whether `key` may run as a variant of its own: a known one may, a new one while
    /// there is room. When the set is full, variants idle for `idle` make room (swept at
    /// most every [`SWEEP_EVERY`], so a flood costs one pass a second, not one a request).
    fn admit(&mut self, key: u64, now: Instant, max: usize, idle: Duration) -> bool {
        if let Some(seen) = self.seen.get_mut(&key) {
            *seen = now;
            return true;
        }
        if self.seen.len() >= max
            && self
                .swept
                .is_none_or(|at| now.duration_since(at) >= SWEEP_EVERY)
        {
            self.swept = Some(now);
            self.seen.retain(|_, seen| now.duration_since(*seen) < idle);
        }
        if self.seen.len() < max {
            self.seen.insert(key, now);
            true
        } else {
            false
        }
    }

    /// Whether to log a refusal now (at most every [`LIMIT_LOG_EVERY`]).
    fn should_warn(&mut self, now: Instant) -> bool {
        let due = self
            .warned
            .is_none_or(|at| now.duration_since(at) >= LIMIT_LOG_EVERY);
        if due {
            self.warned = Some(now);
        }
        due
    }
}

impl Plugin {
    fn summary(&self) -> PluginSummary {
        PluginSummary {
            name: self.name.to_string(),
            digest: self.digest.clone(),
            size: self.size,
            varies_on: self.varies_on.iter().map(attribute_label).collect(),
            failure_policy: match self.policy {
                FailurePolicy::PassThrough => "pass-through",
                FailurePolicy::LastGood => "last-good",
            },
            pushed_at_ms: self.pushed_at_ms,
        }
    }
}

fn attribute_label(a: &VariantAttribute) -> String {
    match a {
        VariantAttribute::Country => "country".to_owned(),
        VariantAttribute::Header(h) => format!("header:{}", h.to_ascii_lowercase()),
        VariantAttribute::Query(q) => format!("query:{q}"),
    }
}

/// A tenant's ordered plugins. Replaced whole on every change; readers hold the old one.
struct Chain {
    generation: u64,
    plugins: Vec<Arc<Plugin>>,
}

/// A plugin whose last calls all ran out of time is skipped (its failure policy applies at
/// once) instead of spending its whole timeout on every new playlist version; every
/// `PROBE_EVERY`-th run still calls it, and the first call that finishes in time closes
/// the circuit. Other failures (traps, garbage) cost microseconds and are always retried.
const OPEN_AFTER_TIMEOUTS: u32 = 3;
const PROBE_EVERY: u32 = 8;

struct Tenant {
    settings: TenantSettings,
    chain: Arc<Chain>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Media,
    Multivariant,
}

impl Kind {
    fn function(self) -> &'static str {
        match self {
            Kind::Media => "transform-media-playlist",
            Kind::Multivariant => "transform-multivariant-playlist",
        }
    }
}

/// A transform result's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct RunKey {
    generation: u64,
    stream: String,
    rendition: String,
    kind: Kind,
    variant: String,
    /// Hash of the input playlist and the cues: the playlist version, delta or not.
    input: u64,
}

/// Where last good outputs are remembered: per plugin (by push id), or per chain (id 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct GoodKey {
    plugin: u64,
    stream: String,
    rendition: String,
    kind: Kind,
    variant: String,
}

type GoodPair = Arc<(String, String)>;

/// The request a playlist is for.
#[derive(Debug)]
pub struct PlaylistRequest<'a> {
    pub stream: &'a str,
    /// Empty for the multivariant playlist.
    pub rendition: &'a str,
    pub headers: &'a HeaderMap,
    /// The raw query string.
    pub query: Option<&'a str>,
    pub cues: &'a [PlacedCue],
}

/// A playlist after the tenant's chain, and what the answer depends on.
#[derive(Debug)]
pub struct Manipulated {
    pub body: Bytes,
    /// Request headers the answer varies on (for `Vary`), lower case.
    pub vary: Vec<String>,
}

/// An asset-list answer's identity: the cue, and every request attribute some plugin of
/// the chain gets (the country, and what each declared).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AssetKey {
    generation: u64,
    stream: String,
    cue_id: u32,
    variant: String,
}

/// An asset-list answer: the JSON, or `None` when no plugin resolved the cue.
type AssetAnswer = Option<Bytes>;

/// A token bucket: one tenant's asset-list runs.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Inner {
    rt: Runtime,
    settings: Settings,
    metrics: Metrics,
    workers: Workers,
    tenants: RwLock<HashMap<String, Tenant>>,
    stream_tenants: RwLock<HashMap<String, String>>,
    results: moka::sync::Cache<RunKey, Bytes>,
    inflight: Mutex<HashMap<RunKey, watch::Receiver<Option<Bytes>>>>,
    last_good: moka::sync::Cache<GoodKey, GoodPair>,
    asset_lists: moka::sync::Cache<AssetKey, AssetAnswer>,
    asset_inflight: Mutex<HashMap<AssetKey, watch::Receiver<Option<AssetAnswer>>>>,
    /// Per tenant: asset-list runs allowed now, and the runs on the workers at once.
    asset_buckets: Mutex<HashMap<String, Bucket>>,
    asset_slots: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Compiled components by digest: pushing the same bytes with a new config (or the same
    /// chain again on SIGHUP) skips the compile, which takes seconds for JS and Python.
    compiled: moka::sync::Cache<String, Compiled>,
    next_id: AtomicU64,
    /// Serialises chain changes so two pushes cannot lose each other's update.
    change: tokio::sync::Mutex<()>,
}

/// The plugin host: cheap to clone.
#[derive(Clone)]
pub struct Plugins(Arc<Inner>);

impl std::fmt::Debug for Plugins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugins")
            .field("settings", &self.0.settings)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_TENANT: &str = "default";

impl Plugins {
    /// Starts the engine and the workers. `tenants` is the configured list; the `default`
    /// tenant (streams nobody else claims) always exists.
    pub fn new(settings: Settings, tenants: Vec<TenantSettings>) -> Result<Self, StartError> {
        let rt = Runtime::new(settings.limits.clone())
            .map_err(|e| StartError::Engine(format!("{e:#}")))?;
        let workers =
            Workers::new(settings.threads, settings.queue).map_err(StartError::Workers)?;
        // Every cache is bounded in bytes: a key or value is as big as a plugin made it.
        let results = moka::sync::Cache::builder()
            .max_capacity(settings.cache_bytes)
            .weigher(|k: &RunKey, v: &Bytes| {
                weight(&[&k.stream, &k.rendition, &k.variant], v.len())
            })
            .time_to_live(settings.cache_ttl)
            .build();
        let last_good = moka::sync::Cache::builder()
            .max_capacity(settings.last_good_bytes)
            .weigher(|k: &GoodKey, v: &GoodPair| {
                weight(
                    &[&k.stream, &k.rendition, &k.variant],
                    v.0.len() + v.1.len(),
                )
            })
            .time_to_idle(Duration::from_secs(600))
            .build();
        let asset_lists = moka::sync::Cache::builder()
            .max_capacity(settings.asset_list_cache_bytes)
            .weigher(|k: &AssetKey, v: &AssetAnswer| {
                weight(&[&k.stream, &k.variant], v.as_ref().map_or(0, Bytes::len))
            })
            .time_to_live(settings.asset_list_cache_ttl)
            .build();
        let plugins = Self(Arc::new(Inner {
            rt,
            settings,
            metrics: Metrics::default(),
            workers,
            tenants: RwLock::new(HashMap::new()),
            stream_tenants: RwLock::new(HashMap::new()),
            results,
            inflight: Mutex::new(HashMap::new()),
            last_good,
            asset_lists,
            asset_inflight: Mutex::new(HashMap::new()),
            asset_buckets: Mutex::new(HashMap::new()),
            asset_slots: Mutex::new(HashMap::new()),
            compiled: moka::sync::Cache::new(32),
            next_id: AtomicU64::new(1),
            change: tokio::sync::Mutex::new(()),
        }));
        plugins.configure_tenants(tenants);
        Ok(plugins)
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn settings(&self) -> &Settings {
        &self.0.settings
    }

    /// Sets the tenant list and stream ownership. Tenants that stay keep their chains; a
    /// tenant that is gone loses its chain.
    pub fn configure_tenants(&self, tenants: Vec<TenantSettings>) {
        let mut map = write(&self.0.tenants);
        let mut streams = HashMap::new();
        let mut next: HashMap<String, Tenant> = HashMap::new();
        let mut all = tenants;
        if !all.iter().any(|t| t.name == DEFAULT_TENANT) {
            all.push(TenantSettings::new(DEFAULT_TENANT));
        }
        for mut settings in all {
            settings.country_header = settings.country_header.to_ascii_lowercase();
            for s in &settings.streams {
                streams.insert(s.clone(), settings.name.clone());
            }
            let chain = map.remove(&settings.name).map_or_else(
                || {
                    Arc::new(Chain {
                        generation: self.next_id(),
                        plugins: Vec::new(),
                    })
                },
                |t| t.chain,
            );
            next.insert(settings.name.clone(), Tenant { settings, chain });
        }
        *map = next;
        *write(&self.0.stream_tenants) = streams;
    }

    fn next_id(&self) -> u64 {
        self.0.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The tenant a stream belongs to.
    pub fn tenant_of(&self, stream: &str) -> String {
        read(&self.0.stream_tenants)
            .get(stream)
            .cloned()
            .unwrap_or_else(|| DEFAULT_TENANT.to_owned())
    }

    fn tenant(&self, stream: &str) -> Option<(TenantSettings, Arc<Chain>)> {
        let name = self.tenant_of(stream);
        read(&self.0.tenants)
            .get(&name)
            .map(|t| (t.settings.clone(), t.chain.clone()))
    }

    pub fn list(&self, tenant: &str) -> Result<Vec<PluginSummary>, PushError> {
        let tenants = read(&self.0.tenants);
        let t = tenants
            .get(tenant)
            .ok_or_else(|| PushError::UnknownTenant(tenant.to_owned()))?;
        Ok(t.chain.plugins.iter().map(|p| p.summary()).collect())
    }

    /// Compiles, validates and `init`s one plugin, then puts it in the tenant's chain:
    /// in place of the plugin with the same name, or at the end. On any error the chain is
    /// left as it was.
    pub async fn push(&self, tenant: &str, spec: PluginSpec) -> Result<PluginSummary, PushError> {
        let _change = self.0.change.lock().await;
        self.check_tenant(tenant)?;
        let plugin = self.prepare(tenant, spec).await?;
        let summary = plugin.summary();
        self.swap(tenant, |plugins| {
            match plugins.iter().position(|p| p.name == plugin.name) {
                Some(i) => plugins[i] = plugin.clone(),
                None => plugins.push(plugin.clone()),
            }
        });
        tracing::info!(tenant, plugin = %summary.name, digest = %summary.digest, "plugin pushed");
        Ok(summary)
    }

    /// Replaces a tenant's whole chain (config reload). Plugins whose bytes and config did
    /// not change are kept as they are, without a new `init`.
    pub async fn set_chain(&self, tenant: &str, specs: Vec<PluginSpec>) -> Result<(), PushError> {
        let _change = self.0.change.lock().await;
        self.check_tenant(tenant)?;
        let current: Vec<Arc<Plugin>> = read(&self.0.tenants)
            .get(tenant)
            .map(|t| t.chain.plugins.clone())
            .unwrap_or_default();
        let mut next = Vec::with_capacity(specs.len());
        for spec in specs {
            let digest = digest(&spec.component);
            match current
                .iter()
                .find(|p| *p.name == *spec.name && p.digest == digest && p.config == spec.config)
            {
                Some(same) => next.push(same.clone()),
                None => next.push(self.prepare(tenant, spec).await?),
            }
        }
        self.swap(tenant, |plugins| *plugins = next);
        Ok(())
    }

    /// Replaces every tenant's settings and chain at once (config reload). Every changed
    /// plugin of every tenant is compiled and `init`ed first, and the tenants and chains are
    /// swapped only when all of them succeeded: a failure changes nothing. Tenants missing
    /// from `chains` keep their chains.
    pub async fn replace_all(
        &self,
        tenants: Vec<TenantSettings>,
        chains: Vec<(String, Vec<PluginSpec>)>,
    ) -> Result<(), PushError> {
        let _change = self.0.change.lock().await;
        let known = |name: &str| name == DEFAULT_TENANT || tenants.iter().any(|t| t.name == name);
        let mut prepared = Vec::with_capacity(chains.len());
        for (tenant, specs) in chains {
            if !known(&tenant) {
                return Err(PushError::UnknownTenant(tenant));
            }
            let current: Vec<Arc<Plugin>> = read(&self.0.tenants)
                .get(&tenant)
                .map(|t| t.chain.plugins.clone())
                .unwrap_or_default();
            let mut next = Vec::with_capacity(specs.len());
            for spec in specs {
                let digest = digest(&spec.component);
                match current.iter().find(|p| {
                    *p.name == *spec.name && p.digest == digest && p.config == spec.config
                }) {
                    Some(same) => next.push(same.clone()),
                    None => next.push(self.prepare(&tenant, spec).await?),
                }
            }
            prepared.push((tenant, next));
        }
        self.configure_tenants(tenants);
        for (tenant, next) in prepared {
            self.swap(&tenant, |plugins| *plugins = next);
        }
        Ok(())
    }

    pub async fn remove(&self, tenant: &str, name: &str) -> Result<(), PushError> {
        let _change = self.0.change.lock().await;
        self.check_tenant(tenant)?;
        let known = read(&self.0.tenants)
            .get(tenant)
            .is_some_and(|t| t.chain.plugins.iter().any(|p| &*p.name == name));
        if !known {
            return Err(PushError::UnknownPlugin {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
            });
        }
        self.swap(tenant, |plugins| plugins.retain(|p| &*p.name != name));
        self.0.metrics.reload(tenant, name, "removed");
        tracing::info!(tenant, plugin = name, "plugin removed");
        Ok(())
    }

    fn check_tenant(&self, tenant: &str) -> Result<(), PushError> {
        if read(&self.0.tenants).contains_key(tenant) {
            Ok(())
        } else {
            Err(PushError::UnknownTenant(tenant.to_owned()))
        }
    }

    fn swap(&self, tenant: &str, edit: impl FnOnce(&mut Vec<Arc<Plugin>>)) {
        let generation = self.next_id();
        let mut tenants = write(&self.0.tenants);
        if let Some(t) = tenants.get_mut(tenant) {
            let mut plugins = t.chain.plugins.clone();
            edit(&mut plugins);
            t.chain = Arc::new(Chain {
                generation,
                plugins,
            });
        }
    }

    /// Compile and init, off the async runtime (a JavaScript component takes seconds).
    async fn prepare(&self, tenant: &str, spec: PluginSpec) -> Result<Arc<Plugin>, PushError> {
        if !valid_name(&spec.name) {
            return Err(PushError::BadName(spec.name));
        }
        let this = self.clone();
        let tenant = tenant.to_owned();
        let id = self.next_id();
        let joined =
            tokio::task::spawn_blocking(move || this.prepare_blocking(id, &tenant, spec)).await;
        joined.unwrap_or_else(|e| {
            Err(PushError::Rejected {
                name: String::new(),
                reason: format!("validation panicked: {e}"),
            })
        })
    }

    fn prepare_blocking(
        &self,
        id: u64,
        tenant: &str,
        spec: PluginSpec,
    ) -> Result<Arc<Plugin>, PushError> {
        let metrics = &self.0.metrics;
        let rejected = |reason: String| {
            metrics.reload(tenant, &spec.name, "rejected");
            tracing::warn!(tenant, plugin = %spec.name, %reason, "plugin push rejected");
            PushError::Rejected {
                name: spec.name.clone(),
                reason,
            }
        };
        let digest = digest(&spec.component);
        let compiled = match self.0.compiled.get(&digest) {
            Some(c) => c,
            None => {
                let c = self.0.rt.compile(&spec.component).map_err(rejected)?;
                self.0.compiled.insert(digest.clone(), c.clone());
                c
            }
        };
        let (tenant_a, name_a): (Arc<str>, Arc<str>) = (tenant.into(), spec.name.as_str().into());
        let (info, took) = timed(|| {
            self.0
                .rt
                .init(&compiled, (&tenant_a, &name_a), &spec.config)
        });
        metrics.call(tenant, &spec.name, "init", took);
        let info = info.map_err(|failure| {
            metrics.failure(tenant, &spec.name, failure.kind());
            metrics.reload(tenant, &spec.name, "rejected");
            tracing::warn!(tenant, plugin = %spec.name, %failure, "plugin init failed; chain unchanged");
            PushError::InitFailed {
                name: spec.name.clone(),
                failure,
            }
        })?;
        metrics.reload(tenant, &spec.name, "ok");
        Ok(Arc::new(Plugin {
            id,
            name: name_a,
            tenant: tenant_a,
            digest,
            size: spec.component.len(),
            config: spec.config,
            varies_on: info.varies_on,
            policy: info.failure_policy,
            compiled,
            pushed_at_ms: unix_ms(),
            timeouts_in_a_row: Default::default(),
            skipped: Default::default(),
            variants: Mutex::new(Variants::default()),
        }))
    }

    /// Runs the stream's tenant chain over a media playlist.
    pub async fn media_playlist(&self, req: &PlaylistRequest<'_>, playlist: Bytes) -> Manipulated {
        self.manipulate(Kind::Media, req, playlist).await
    }

    /// The chain's answer to a delta update request (`_HLS_skip=YES`): the chain runs on
    /// the `full` playlist of the same version (one run serves both kinds of request, and
    /// no plugin ever sees `EXT-X-SKIP`), and the answer is the delta update of its output
    /// that skips what the packager's `delta` skips ([`crate::delta`]). Without a chain, or
    /// when `delta` skips nothing, the packager's own answer.
    pub async fn media_playlist_delta(
        &self,
        req: &PlaylistRequest<'_>,
        full: Bytes,
        delta: Bytes,
    ) -> Manipulated {
        let skipped = std::str::from_utf8(&delta)
            .ok()
            .and_then(crate::delta::skipped_segments);
        let has_chain = self
            .tenant(req.stream)
            .is_some_and(|(_, chain)| !chain.plugins.is_empty());
        let Some(skipped) = skipped.filter(|_| has_chain) else {
            return self.media_playlist(req, delta).await;
        };
        let m = self.manipulate(Kind::Media, req, full).await;
        match std::str::from_utf8(&m.body)
            .ok()
            .and_then(|text| crate::delta::delta_update(text, skipped))
        {
            Some(text) => Manipulated {
                body: Bytes::from(text),
                vary: m.vary,
            },
            None => m,
        }
    }

    /// Runs the stream's tenant chain over the multivariant playlist.
    pub async fn multivariant_playlist(
        &self,
        req: &PlaylistRequest<'_>,
        playlist: Bytes,
    ) -> Manipulated {
        self.manipulate(Kind::Multivariant, req, playlist).await
    }

    async fn manipulate(
        &self,
        kind: Kind,
        req: &PlaylistRequest<'_>,
        playlist: Bytes,
    ) -> Manipulated {
        let Some((tenant, chain)) = self.tenant(req.stream) else {
            return Manipulated {
                body: playlist,
                vary: Vec::new(),
            };
        };
        if chain.plugins.is_empty() {
            return Manipulated {
                body: playlist,
                vary: Vec::new(),
            };
        }
        let Ok(text) = std::str::from_utf8(&playlist) else {
            return Manipulated {
                body: playlist,
                vary: Vec::new(),
            };
        };
        let attrs = Attributes::from_request(&tenant, req.headers, req.query);
        let (variant, refused, vary) = self.variants(&chain, &tenant, &attrs);
        let cues: Vec<CueEvent> = req.cues.iter().map(cue_event).collect();
        let key = RunKey {
            generation: chain.generation,
            stream: req.stream.to_owned(),
            rendition: req.rendition.to_owned(),
            kind,
            variant: variant.clone(),
            input: input_hash(text, req.cues),
        };
        if let Some(body) = self.0.results.get(&key) {
            self.0.metrics.cache_hit(&tenant.name);
            return Manipulated { body, vary };
        }
        let mut rx = {
            let mut inflight = self.0.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let job = Job {
                        plugins: self.clone(),
                        chain: chain.clone(),
                        key: key.clone(),
                        tenant: tenant.name.clone(),
                        asset_hosts: tenant.asset_hosts.clone(),
                        attrs,
                        refused,
                        cues,
                        input: text.to_owned(),
                        tx,
                    };
                    match self.0.workers.submit(Box::new(move || job.run())) {
                        Ok(()) => {
                            inflight.insert(key.clone(), rx.clone());
                            rx
                        }
                        Err(_) => {
                            drop(inflight);
                            for p in &chain.plugins {
                                self.0.metrics.failure(
                                    &tenant.name,
                                    &p.name,
                                    Failure::Overloaded.kind(),
                                );
                            }
                            return self.fallback(
                                &chain,
                                &key,
                                &tenant.name,
                                playlist,
                                vary,
                                "overload",
                            );
                        }
                    }
                }
            }
        };
        let waited =
            tokio::time::timeout(self.0.settings.deadline, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(done)) => match done.as_ref() {
                Some(body) => Manipulated {
                    body: body.clone(),
                    vary,
                },
                None => self.fallback(&chain, &key, &tenant.name, playlist, vary, "deadline"),
            },
            _ => self.fallback(&chain, &key, &tenant.name, playlist, vary, "deadline"),
        }
    }

    /// The answer when the chain's output is not ready in time: the chain's last good edits
    /// replayed when any plugin in it asks for `last-good`, the input otherwise.
    fn fallback(
        &self,
        chain: &Chain,
        key: &RunKey,
        tenant: &str,
        playlist: Bytes,
        vary: Vec<String>,
        reason: &'static str,
    ) -> Manipulated {
        self.0.metrics.fallback(tenant, "", reason);
        let wants_last_good = chain
            .plugins
            .iter()
            .any(|p| p.policy == FailurePolicy::LastGood);
        if wants_last_good {
            let good = self.0.last_good.get(&GoodKey {
                plugin: 0,
                stream: key.stream.clone(),
                rendition: key.rendition.clone(),
                kind: key.kind,
                variant: key.variant.clone(),
            });
            if let (Some(good), Ok(text)) = (good, std::str::from_utf8(&playlist)) {
                let body = Bytes::from(replay::replay(&good.0, &good.1, text));
                return Manipulated { body, vary };
            }
        }
        Manipulated {
            body: playlist,
            vary,
        }
    }

    /// The chain's variant key, which plugins may not run as a variant of their own (see
    /// [`DEFAULT_MAX_VARIANTS`]), and the request headers the answer varies on.
    #[allow(clippy::disallowed_methods)] // expires the variant cap's entries by age
    fn variants(
        &self,
        chain: &Chain,
        tenant: &TenantSettings,
        attrs: &Attributes,
    ) -> (String, Vec<bool>, Vec<String>) {
        let settings = &self.0.settings;
        let now = Instant::now();
        let mut key = String::new();
        let mut refused = Vec::with_capacity(chain.plugins.len());
        let mut vary = Vec::new();
        for (i, p) in chain.plugins.iter().enumerate() {
            let own = plugin_variant(&p.varies_on, tenant, attrs, &mut vary);
            let admitted = p.varies_on.is_empty()
                || {
                    let mut variants = p.variants.lock().unwrap_or_else(|e| e.into_inner());
                    let ok = variants.admit(
                        hash(&own),
                        now,
                        settings.max_variants,
                        settings.variant_idle,
                    );
                    if !ok && variants.should_warn(now) {
                        tracing::warn!(
                            tenant = %tenant.name, plugin = %p.name, max = settings.max_variants,
                            "plugin has as many variants as it may have; new ones get its failure policy"
                        );
                    }
                    ok
                };
            if !admitted {
                self.0
                    .metrics
                    .failure(&tenant.name, &p.name, Failure::VariantLimit.kind());
            }
            key.push_str(&i.to_string());
            key.push(':');
            key.push_str(if admitted { &own } else { "\u{1}over" });
            key.push('|');
            refused.push(!admitted);
        }
        vary.sort();
        vary.dedup();
        (key, refused, vary)
    }

    /// Answers an HLS Interstitial asset-list request: the tenant's plugins in chain order,
    /// first `ok` wins. Each plugin sees the viewer's country and only the headers and
    /// query parameters it declared. Answers are cached per cue and those attributes, one
    /// run per key at a time; runs (cache misses) are rate-limited per tenant and run at
    /// most [`Settings::asset_list_concurrency`] at once per tenant, so one tenant's
    /// viewers cannot fill the workers that every tenant's playlists need.
    #[allow(clippy::disallowed_methods)] // the asset-list call's deadline: this is the request's driver
    pub async fn asset_list(
        &self,
        stream: &str,
        cue_id: u32,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Bytes, AssetListError> {
        let settings = &self.0.settings;
        let deadline = Instant::now() + settings.asset_list_timeout;
        let (tenant, chain) = self.tenant(stream).ok_or(AssetListError::NoPlugin)?;
        if chain.plugins.is_empty() {
            return Err(AssetListError::NoPlugin);
        }
        let attrs = Attributes::from_request(&tenant, headers, query);
        let mut variant = format!("country={};", attrs.country.as_deref().unwrap_or(""));
        for p in &chain.plugins {
            variant.push_str(&plugin_variant(
                &p.varies_on,
                &tenant,
                &attrs,
                &mut Vec::new(),
            ));
            variant.push('|');
        }
        let key = AssetKey {
            generation: chain.generation,
            stream: stream.to_owned(),
            cue_id,
            variant,
        };
        let unresolved = |answer: AssetAnswer| answer.ok_or(AssetListError::Unresolved(cue_id));
        if let Some(answer) = self.0.asset_lists.get(&key) {
            self.0.metrics.cache_hit(&tenant.name);
            return unresolved(answer);
        }
        let (mut rx, leader) = {
            let mut inflight = self
                .0
                .asset_inflight
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match inflight.get(&key) {
                Some(rx) => (rx.clone(), None),
                None => {
                    if !self.take_asset_token(&tenant.name) {
                        drop(inflight);
                        self.0
                            .metrics
                            .failure(&tenant.name, "", Failure::RateLimited.kind());
                        return Err(AssetListError::RateLimited);
                    }
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx.clone());
                    (rx, Some(tx))
                }
            }
        };
        if let Some(tx) = leader {
            // Until the job owns it, dropping this (a timeout, a viewer gone) ends the
            // flight: followers see the sender gone and stop waiting.
            let flight = AssetFlight {
                plugins: self.clone(),
                key: key.clone(),
            };
            let slots = self.asset_slots(&tenant.name);
            let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, slots.acquire_owned()).await
            else {
                self.0
                    .metrics
                    .failure(&tenant.name, "", Failure::Overloaded.kind());
                return Err(AssetListError::Busy);
            };
            let this = self.clone();
            let job = move || {
                let answer = this.run_asset_list(&chain, &tenant, &attrs, &key.stream, cue_id);
                drop(permit);
                this.0.asset_lists.insert(key, answer.clone());
                drop(flight);
                let _ = tx.send(Some(answer));
            };
            if self.0.workers.submit(Box::new(job)).is_err() {
                return Err(AssetListError::Busy);
            }
        }
        let answer = match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
            Ok(Ok(done)) => done.clone().flatten(),
            _ => None,
        };
        unresolved(answer)
    }

    /// One asset-list run, on a plugin worker.
    fn run_asset_list(
        &self,
        chain: &Chain,
        tenant: &TenantSettings,
        attrs: &Attributes,
        stream: &str,
        cue_id: u32,
    ) -> AssetAnswer {
        let scope = validate::Scope {
            stream,
            asset_hosts: &tenant.asset_hosts,
        };
        for p in &chain.plugins {
            let mut ctx = attrs.context_for(&p.varies_on, &tenant.name, stream, "");
            // The WIT promises asset lists the viewer's country, declared or not.
            ctx.country = attrs.country.clone();
            let (r, took) = timed(|| {
                self.0.rt.resolve_asset_list(
                    &p.compiled,
                    (&p.tenant, &p.name),
                    &p.config,
                    &ctx,
                    cue_id,
                )
            });
            self.0
                .metrics
                .call(&tenant.name, &p.name, "resolve-asset-list", took);
            let checked = r.and_then(|json| {
                checked(|| validate::asset_list(&json, &scope, cue_id)).map(|()| json)
            });
            match checked {
                Ok(json) => return Some(Bytes::from(json)),
                // `err` is how a plugin without interstitials says "not mine".
                Err(Failure::Err(_)) => {}
                Err(f) => {
                    self.0.metrics.failure(&tenant.name, &p.name, f.kind());
                    tracing::warn!(tenant = %tenant.name, plugin = %p.name, cue_id, failure = %f, "asset-list call failed");
                }
            }
        }
        None
    }

    /// Takes one of the tenant's asset-list run tokens, if there is one.
    #[allow(clippy::disallowed_methods)] // the asset-list rate limit's token bucket refills by time
    fn take_asset_token(&self, tenant: &str) -> bool {
        let settings = &self.0.settings;
        let (rate, burst) = (
            f64::from(settings.asset_list_rate),
            f64::from(settings.asset_list_burst.max(1)),
        );
        let now = Instant::now();
        let mut buckets = self
            .0
            .asset_buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn asset_slots(&self, tenant: &str) -> Arc<tokio::sync::Semaphore> {
        let n = self.0.settings.asset_list_concurrency.max(1);
        self.0
            .asset_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(n)))
            .clone()
    }
}

/// An asset-list run in flight: removes itself from the in-flight map when dropped.
struct AssetFlight {
    plugins: Plugins,
    key: AssetKey,
}

impl Drop for AssetFlight {
    fn drop(&mut self) {
        self.plugins
            .0
            .asset_inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// Runs a validator, turning a panic in it (or in m3u8-rs under it) into a refusal.
fn checked(f: impl FnOnce() -> Result<(), validate::Rejection>) -> Result<(), Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(Failure::from),
        Err(_) => Err(Failure::Invalid("the validator panicked on it".to_owned())),
    }
}

/// A cache entry's weight in bytes: its strings, its body, and a little for the rest.
fn weight(strings: &[&str], body: usize) -> u32 {
    let total = strings.iter().map(|s| s.len()).sum::<usize>() + body + 64;
    u32::try_from(total).unwrap_or(u32::MAX)
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// One chain run, on a plugin worker.
struct Job {
    plugins: Plugins,
    chain: Arc<Chain>,
    key: RunKey,
    tenant: String,
    asset_hosts: Vec<String>,
    attrs: Attributes,
    /// Per plugin: over its variant limit, so not called for this run.
    refused: Vec<bool>,
    cues: Vec<CueEvent>,
    input: String,
    tx: watch::Sender<Option<Bytes>>,
}

/// Removes a run from the in-flight map when it ends, even by a panic: later requests
/// for its key then start a new run instead of waiting on one that is gone.
struct Flight<'a> {
    plugins: &'a Plugins,
    key: &'a RunKey,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.plugins
            .0
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.key);
    }
}

impl Job {
    fn run(self) {
        let inner = &self.plugins.0;
        let key = &self.key;
        let flight = Flight {
            plugins: &self.plugins,
            key,
        };
        let scope = validate::Scope {
            stream: &key.stream,
            asset_hosts: &self.asset_hosts,
        };
        let original = self.input.clone();
        let mut text = self.input;
        for (i, p) in self.chain.plugins.iter().enumerate() {
            let good_key = GoodKey {
                plugin: p.id,
                stream: key.stream.clone(),
                rendition: key.rendition.clone(),
                kind: key.kind,
                variant: key.variant.clone(),
            };
            // The failure policy's answer: last-good's replay, or the input.
            let fallback = |text: String, reason: &'static str| -> String {
                let replayed = match p.policy {
                    FailurePolicy::LastGood => inner
                        .last_good
                        .get(&good_key)
                        .map(|good| replay::replay(&good.0, &good.1, &text)),
                    FailurePolicy::PassThrough => None,
                };
                let how = if replayed.is_some() {
                    "last-good"
                } else {
                    "pass-through"
                };
                inner.metrics.fallback(
                    &self.tenant,
                    &p.name,
                    if reason.is_empty() { how } else { reason },
                );
                replayed.unwrap_or(text)
            };
            if self.refused.get(i).copied().unwrap_or(false) {
                text = fallback(text, "variant-limit");
                continue;
            }
            if p.timeouts_in_a_row.load(Ordering::Relaxed) >= OPEN_AFTER_TIMEOUTS
                && p.skipped.fetch_add(1, Ordering::Relaxed) % PROBE_EVERY != PROBE_EVERY - 1
            {
                text = fallback(text, "circuit-open");
                continue;
            }
            let ctx =
                self.attrs
                    .context_for(&p.varies_on, &self.tenant, &key.stream, &key.rendition);
            let (result, took) = timed(|| match key.kind {
                Kind::Media => inner.rt.transform_media(
                    &p.compiled,
                    (&p.tenant, &p.name),
                    &p.config,
                    &ctx,
                    &self.cues,
                    &text,
                ),
                Kind::Multivariant => inner.rt.transform_multivariant(
                    &p.compiled,
                    (&p.tenant, &p.name),
                    &p.config,
                    &ctx,
                    &text,
                ),
            });
            inner
                .metrics
                .call(&self.tenant, &p.name, key.kind.function(), took);
            let checked = result.and_then(|out| {
                checked(|| match key.kind {
                    Kind::Media => validate::media_playlist(&text, &out, &scope, &key.rendition),
                    Kind::Multivariant => validate::multivariant_playlist(&text, &out, &scope),
                })
                .map(|()| out)
            });
            if matches!(checked, Err(Failure::Timeout(_))) {
                p.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed);
            } else {
                p.timeouts_in_a_row.store(0, Ordering::Relaxed);
            }
            text = match checked {
                Ok(out) => {
                    inner
                        .last_good
                        .insert(good_key.clone(), Arc::new((text, out.clone())));
                    out
                }
                Err(failure) => {
                    inner.metrics.failure(&self.tenant, &p.name, failure.kind());
                    tracing::warn!(
                        tenant = %self.tenant, plugin = %p.name, stream = %key.stream,
                        rendition = %key.rendition, phase = key.kind.function(), %failure,
                        "plugin failed; applying its failure policy"
                    );
                    fallback(text, "")
                }
            };
        }
        inner.last_good.insert(
            GoodKey {
                plugin: 0,
                stream: key.stream.clone(),
                rendition: key.rendition.clone(),
                kind: key.kind,
                variant: key.variant.clone(),
            },
            Arc::new((original, text.clone())),
        );
        let body = Bytes::from(text);
        inner.results.insert(key.clone(), body.clone());
        drop(flight);
        let _ = self.tx.send(Some(body));
    }
}

/// The request attributes a plugin may vary on, read once per request.
#[derive(Clone, Debug, Default)]
struct Attributes {
    country: Option<String>,
    /// Lower-case name → value, every header (only declared ones reach a plugin: never a
    /// cookie or `Authorization` it did not ask for by name).
    headers: Vec<(String, String)>,
    /// Every query parameter except the `_HLS_*` directives.
    query: Vec<(String, String)>,
    now_ms: u64,
}

impl Attributes {
    fn from_request(tenant: &TenantSettings, headers: &HeaderMap, query: Option<&str>) -> Self {
        let country = headers
            .get(tenant.country_header.as_str())
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_uppercase())
            .filter(|v| v.len() == 2 && v.bytes().all(|b| b.is_ascii_uppercase()));
        let headers = headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let query = query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .filter(|(k, _)| !k.starts_with("_HLS_"))
            .collect();
        Self {
            country,
            headers,
            query,
            now_ms: unix_ms(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The context one plugin sees: only what it declared.
    fn context_for(
        &self,
        declared: &[VariantAttribute],
        tenant: &str,
        stream: &str,
        rendition: &str,
    ) -> RequestContext {
        let mut ctx = RequestContext {
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
            rendition: rendition.to_owned(),
            country: None,
            headers: Vec::new(),
            query: Vec::new(),
            now_ms: self.now_ms,
        };
        for attr in declared {
            match attr {
                VariantAttribute::Country => ctx.country = self.country.clone(),
                VariantAttribute::Header(h) => {
                    if let Some(v) = self.header(h) {
                        ctx.headers.push((h.to_ascii_lowercase(), v.to_owned()));
                    }
                }
                VariantAttribute::Query(q) => {
                    if let Some(v) = self.query(q) {
                        ctx.query.push((q.clone(), v.to_owned()));
                    }
                }
            }
        }
        ctx
    }
}

/// One plugin's variant: the values of the attributes it declared, as `label=value;`, and
/// the headers among them pushed onto `vary`.
fn plugin_variant(
    declared: &[VariantAttribute],
    tenant: &TenantSettings,
    attrs: &Attributes,
    vary: &mut Vec<String>,
) -> String {
    let mut key = String::new();
    for attr in declared {
        let value = match attr {
            VariantAttribute::Country => {
                vary.push(tenant.country_header.clone());
                attrs.country.as_deref()
            }
            VariantAttribute::Header(h) => {
                vary.push(h.to_ascii_lowercase());
                attrs.header(h)
            }
            VariantAttribute::Query(q) => attrs.query(q),
        };
        key.push_str(&attribute_label(attr));
        key.push('=');
        key.push_str(value.unwrap_or("\u{0}"));
        key.push(';');
    }
    key
}

fn cue_event(placed: &PlacedCue) -> CueEvent {
    let cue = &placed.cue;
    CueEvent {
        id: cue.id,
        kind: match cue.kind {
            weir_media::CueKind::SpliceInsert => CueKind::SpliceInsert,
            weir_media::CueKind::TimeSignal => CueKind::TimeSignal,
            weir_media::CueKind::SpliceNull => CueKind::SpliceNull,
        },
        out_of_network: cue.out_of_network,
        start_ms: placed.start_ms,
        duration_ms: cue
            .duration
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        end_ms: placed.end_ms,
        segmentation_type: cue.segmentation_type,
        section: cue.section.to_vec(),
    }
}

fn input_hash(text: &str, cues: &[PlacedCue]) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    for c in cues {
        (c.cue.id, c.start_ms, c.end_ms, c.cue.out_of_network).hash(&mut h);
    }
    h.finish()
}

fn digest(bytes: &[u8]) -> String {
    let sum = Sha256::digest(bytes);
    let mut s = String::with_capacity(71);
    s.push_str("sha256:");
    for b in sum {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[allow(clippy::disallowed_methods)] // the wall clock a plugin call is given as its input's now (the host is the plugins' driver)
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}
