//! Weir's manifest plugins: WebAssembly components (the `weir:plugin` WIT world in `wit/`)
//! that rewrite playlists per tenant, kept off the media path.
//!
//! - [`Runtime`]: one wasmtime [`Engine`](wasmtime::Engine) with the pooling allocator and
//!   epoch interruption. A component is compiled and linked once when it is pushed; every
//!   call instantiates it in a fresh store with a memory cap and a deadline, so no state
//!   leaks between calls and a plugin that loops is cut off after `call_timeout`.
//! - [`Plugins`]: tenants, their plugin chains (swapped atomically on push), and the
//!   transform path: one run per (chain, stream, rendition, playlist version, variant key)
//!   with single flight, on dedicated worker threads, cached; a request waits at most
//!   `deadline` and then gets the failure policy's answer.
//! - [`validate`] and [`replay`]: what makes an output acceptable, and how `last-good`
//!   re-applies an earlier output's edits.
//!
//! - [`delta`]: the delta update (`_HLS_skip=YES`) of a chain's output, made from the full
//!   playlist the chain ran on.
//! - [`config`]: the `[plugins]` section of `weir.toml` ([`PluginsConfig`]) and its check.
//!
//! Parts and segments never come here.
//!
//! The default feature `runtime` is everything above. Without it the crate is only
//! [`validate`], [`replay`] and [`config`] (no wasmtime), which is what the fuzz targets
//! build.
//!
//! ```
//! use weir_plugin_host::validate::{media_playlist, Scope};
//!
//! let input = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg1.m4s\n";
//! let scope = Scope { stream: "demo", asset_hosts: &[] };
//! let slate = input.replace("seg1.m4s", "../slate/seg1.m4s");
//! assert!(media_playlist(input, &slate, &scope, "720p").is_ok());
//! let escape = input.replace("seg1.m4s", "%2e%2e/%2e%2e/other/720p/seg1.m4s");
//! assert!(media_playlist(input, &escape, &scope, "720p").is_err());
//! ```

pub mod config;
pub mod delta;
#[cfg(feature = "runtime")]
mod metrics;
#[cfg(feature = "runtime")]
mod plugins;
pub mod replay;
#[cfg(feature = "runtime")]
mod runtime;
pub mod validate;
#[cfg(feature = "runtime")]
mod workers;

use std::time::Duration;

pub use config::{InvalidConfig, PluginsConfig};
#[cfg(feature = "runtime")]
pub use metrics::Metrics;
#[cfg(feature = "runtime")]
pub use plugins::{
    AssetListError, Manipulated, PlaylistRequest, PluginSpec, PluginSummary, Plugins, PushError,
    Settings, StartError, TenantSettings, DEFAULT_ASSET_LIST_BURST, DEFAULT_ASSET_LIST_CACHE_BYTES,
    DEFAULT_ASSET_LIST_CACHE_TTL, DEFAULT_ASSET_LIST_CONCURRENCY, DEFAULT_CACHE_BYTES,
    DEFAULT_LAST_GOOD_BYTES, DEFAULT_TENANT, DEFAULT_VARIANT_IDLE,
};
#[cfg(feature = "runtime")]
pub use runtime::{
    Compiled, CueEvent, CueKind, FailurePolicy, PluginInfo, RequestContext, Runtime,
    VariantAttribute,
};

/// Distinct variants (values of what it declared in `varies-on`) one plugin runs for at
/// once. A request with a new one beyond this gets the plugin's failure policy, without a
/// call (`variant_limit`): 100,000 different `?x=` values cost one run per playlist
/// version, not 100,000. Countries alone are at most 677. (Outside the `runtime` feature,
/// like the other limits the binary's config names, so that its config compiles without
/// wasmtime.)
pub const DEFAULT_MAX_VARIANTS: usize = 1024;
/// Asset-list runs (cache misses) per second, per tenant.
pub const DEFAULT_ASSET_LIST_RATE: u32 = 50;

/// The most bytes one plugin answer (a playlist or an asset list) may have; a longer one is
/// refused as `output_too_large`. Weir's playlists are a few kilobytes.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Caps for every plugin call.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Linear memory per instance, bytes.
    pub memory_bytes: usize,
    /// Table elements per table.
    pub table_elements: usize,
    /// Core instances per store (a component may contain several).
    pub instances: usize,
    /// Wall time one call may take before it is interrupted.
    pub call_timeout: Duration,
    /// Epoch tick: the deadline's resolution.
    pub epoch_tick: Duration,
    /// Component instances alive at once across all calls (pool size).
    pub max_concurrent_instances: u32,
    /// The most bytes a call's answer may have (see [`DEFAULT_MAX_OUTPUT_BYTES`]).
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            instances: 64,
            call_timeout: Duration::from_millis(10),
            epoch_tick: Duration::from_millis(1),
            max_concurrent_instances: 64,
            output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// Why a plugin call did not produce a usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("trapped: {0}")]
    Trap(String),
    #[error("ran past its {0:?} deadline")]
    Timeout(Duration),
    #[error("hit its memory cap")]
    MemoryCap,
    #[error("returned an error: {0}")]
    Err(String),
    #[error("returned an invalid playlist: {0}")]
    Invalid(String),
    #[error("returned {bytes} bytes, over the {limit}-byte cap")]
    OutputTooLarge { bytes: usize, limit: usize },
    #[error("returned a URI that leaves the stream: {0}")]
    UriEscape(String),
    #[error("was not run: the plugin has as many variants as it may have")]
    VariantLimit,
    #[error("was not run: the tenant's asset-list calls are over their rate")]
    RateLimited,
    #[error("was not run: the plugin workers are overloaded")]
    Overloaded,
}

impl Failure {
    /// The `kind` label on `weir_plugin_failures_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::Trap(_) => "trap",
            Failure::Timeout(_) => "timeout",
            Failure::MemoryCap => "memory",
            Failure::Err(_) => "err",
            Failure::Invalid(_) => "invalid",
            Failure::OutputTooLarge { .. } => "output_too_large",
            Failure::UriEscape(_) => "uri_escape",
            Failure::VariantLimit => "variant_limit",
            Failure::RateLimited => "rate_limit",
            Failure::Overloaded => "overload",
        }
    }
}

impl From<validate::Rejection> for Failure {
    fn from(r: validate::Rejection) -> Self {
        match r {
            validate::Rejection::UriEscape(m) => Failure::UriEscape(m),
            validate::Rejection::Syntax(m) | validate::Rejection::Media(m) => Failure::Invalid(m),
        }
    }
}
