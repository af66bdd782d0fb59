//! The `[plugins]` section of `weir.toml`: what an operator tunes of the plugin host, as
//! read from the file, and its one check.
//!
//! Outside the `runtime` feature (only [`PluginsConfig::settings`] needs wasmtime's side of
//! the crate), so that the binary's config, and its fuzz target, compile without wasmtime.

use std::time::Duration;

use serde::Deserialize;

use crate::{Limits, DEFAULT_ASSET_LIST_RATE, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_VARIANTS};

/// `[plugins]`. Every key is optional; an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PluginsConfig {
    /// Threads that run plugin calls (never tokio's, so media is never starved).
    pub threads: usize,
    /// One call is interrupted after this long.
    pub call_timeout_ms: u64,
    /// Linear memory cap per plugin instance, MiB.
    pub memory_mb: usize,
    /// Table elements per table, per instance.
    pub table_elements: usize,
    /// Core instances per call (a component holds several; JavaScript ones about 10).
    pub instances: usize,
    /// A playlist request waits this long for the plugins' output, then gets the failure
    /// policy's answer (the run goes on, and later requests get its result).
    pub deadline_ms: u64,
    /// How long an interstitial asset-list request waits for the plugins.
    pub asset_list_timeout_ms: u64,
    /// The most a plugin's answer (a playlist or an asset list) may weigh, KiB.
    pub max_output_kib: usize,
    /// Distinct variants (values of what it declared) one plugin runs for; beyond, its
    /// failure policy answers.
    pub max_variants: usize,
    /// Asset-list runs per second per tenant (cache misses; twice as many in a burst).
    pub asset_list_rate: u32,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        let limits = Limits::default();
        Self {
            threads: 2,
            call_timeout_ms: duration_ms(limits.call_timeout),
            memory_mb: limits.memory_bytes >> 20,
            table_elements: limits.table_elements,
            instances: limits.instances,
            deadline_ms: 50,
            asset_list_timeout_ms: 500,
            max_output_kib: DEFAULT_MAX_OUTPUT_BYTES >> 10,
            max_variants: DEFAULT_MAX_VARIANTS,
            asset_list_rate: DEFAULT_ASSET_LIST_RATE,
        }
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A `[plugins]` value out of range; the message names the key (`plugins.threads = 0 must
/// be 1 to 64`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(pub String);

impl PluginsConfig {
    /// Checks every value against its range.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        // (key, value, lowest, highest)
        let ranges: [(&str, u64, u64, u64); 8] = [
            ("threads", self.threads as u64, 1, 64),
            ("call_timeout_ms", self.call_timeout_ms, 1, 1000),
            ("memory_mb", self.memory_mb as u64, 1, 4096),
            ("table_elements", self.table_elements as u64, 1, 10_000_000),
            ("instances", self.instances as u64, 1, 1000),
            ("max_output_kib", self.max_output_kib as u64, 1, 65_536),
            ("max_variants", self.max_variants as u64, 1, 1_000_000),
            (
                "asset_list_rate",
                u64::from(self.asset_list_rate),
                1,
                100_000,
            ),
        ];
        for (key, value, lowest, highest) in ranges {
            if !(lowest..=highest).contains(&value) {
                return Err(InvalidConfig(format!(
                    "plugins.{key} = {value} must be {lowest} to {highest}"
                )));
            }
        }
        Ok(())
    }

    /// The plugin host's settings: these values, the rest at their defaults.
    #[cfg(feature = "runtime")]
    pub fn settings(&self) -> crate::Settings {
        crate::Settings {
            limits: Limits {
                memory_bytes: self.memory_mb << 20,
                table_elements: self.table_elements,
                instances: self.instances,
                call_timeout: Duration::from_millis(self.call_timeout_ms),
                output_bytes: self.max_output_kib << 10,
                ..Limits::default()
            },
            threads: self.threads,
            deadline: Duration::from_millis(self.deadline_ms),
            asset_list_timeout: Duration::from_millis(self.asset_list_timeout_ms),
            max_variants: self.max_variants,
            asset_list_rate: self.asset_list_rate,
            asset_list_burst: self.asset_list_rate.saturating_mul(2),
            ..crate::Settings::default()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_hosts() {
        let c = PluginsConfig::default();
        c.validate().unwrap();
        assert_eq!(c.max_output_kib, 1024);
        assert_eq!((c.memory_mb, c.call_timeout_ms, c.threads), (64, 10, 2));
        #[cfg(feature = "runtime")]
        {
            let s = c.settings();
            let d = crate::Settings::default();
            assert_eq!(s.limits.memory_bytes, d.limits.memory_bytes);
            assert_eq!(s.limits.call_timeout, d.limits.call_timeout);
            assert_eq!(s.limits.output_bytes, d.limits.output_bytes);
            assert_eq!((s.threads, s.deadline), (d.threads, d.deadline));
            assert_eq!(s.asset_list_timeout, d.asset_list_timeout);
            assert_eq!(s.asset_list_burst, d.asset_list_burst);
        }
    }

    #[test]
    fn each_range_names_its_key() {
        type Change = fn(&mut PluginsConfig);
        let cases: [(Change, &str); 9] = [
            (|c| c.threads = 0, "plugins.threads = 0 must be 1 to 64"),
            (|c| c.threads = 65, "plugins.threads = 65 must be 1 to 64"),
            (
                |c| c.call_timeout_ms = 1001,
                "plugins.call_timeout_ms = 1001 must be 1 to 1000",
            ),
            (
                |c| c.memory_mb = 0,
                "plugins.memory_mb = 0 must be 1 to 4096",
            ),
            (
                |c| c.table_elements = 10_000_001,
                "plugins.table_elements = 10000001 must be 1 to 10000000",
            ),
            (
                |c| c.instances = 0,
                "plugins.instances = 0 must be 1 to 1000",
            ),
            (
                |c| c.max_output_kib = 65_537,
                "plugins.max_output_kib = 65537 must be 1 to 65536",
            ),
            (
                |c| c.max_variants = 0,
                "plugins.max_variants = 0 must be 1 to 1000000",
            ),
            (
                |c| c.asset_list_rate = 100_001,
                "plugins.asset_list_rate = 100001 must be 1 to 100000",
            ),
        ];
        for (change, message) in cases {
            let mut c = PluginsConfig::default();
            change(&mut c);
            assert_eq!(c.validate().unwrap_err().to_string(), message);
        }
    }
}
