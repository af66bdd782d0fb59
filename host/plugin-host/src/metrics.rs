//! Per tenant and plugin counters, rendered in the Prometheus text format on `/metrics`.
//!
//! Calls happen once per playlist version and variant, not per request, so one mutex over
//! a map is cheap enough and keeps label sets exact.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the call latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];

#[derive(Debug, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

type Labels = (String, String, &'static str);

#[derive(Debug, Default)]
struct Inner {
    /// (tenant, plugin, function) → calls.
    calls: BTreeMap<Labels, u64>,
    /// (tenant, plugin, kind) → failures.
    failures: BTreeMap<Labels, u64>,
    /// (tenant, plugin, reason) → playlists served with a fallback.
    fallbacks: BTreeMap<Labels, u64>,
    /// (tenant, plugin, result) → pushes and reloads.
    reloads: BTreeMap<Labels, u64>,
    latency: BTreeMap<(String, String), Histogram>,
    /// Transform results served from the cache, by tenant.
    cache_hits: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        // A poisoned lock only means a panic elsewhere mid-update; counters stay usable.
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut inner);
    }

    pub(crate) fn call(&self, tenant: &str, plugin: &str, function: &'static str, took: Duration) {
        self.with(|m| {
            *m.calls
                .entry((tenant.to_owned(), plugin.to_owned(), function))
                .or_default() += 1;
            let h = m
                .latency
                .entry((tenant.to_owned(), plugin.to_owned()))
                .or_default();
            let secs = took.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        });
    }

    pub(crate) fn failure(&self, tenant: &str, plugin: &str, kind: &'static str) {
        self.with(|m| {
            *m.failures
                .entry((tenant.to_owned(), plugin.to_owned(), kind))
                .or_default() += 1;
        });
    }

    pub(crate) fn fallback(&self, tenant: &str, plugin: &str, reason: &'static str) {
        self.with(|m| {
            *m.fallbacks
                .entry((tenant.to_owned(), plugin.to_owned(), reason))
                .or_default() += 1;
        });
    }

    pub(crate) fn reload(&self, tenant: &str, plugin: &str, result: &'static str) {
        self.with(|m| {
            *m.reloads
                .entry((tenant.to_owned(), plugin.to_owned(), result))
                .or_default() += 1;
        });
    }

    pub(crate) fn cache_hit(&self, tenant: &str) {
        self.with(|m| *m.cache_hits.entry(tenant.to_owned()).or_default() += 1);
    }

    /// Failures of one plugin, all kinds together (for tests and the admin API).
    pub fn failures_of(&self, tenant: &str, plugin: &str) -> u64 {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        m.failures
            .iter()
            .filter(|((t, p, _), _)| t == tenant && p == plugin)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn render(&self, out: &mut String) {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let family =
            |out: &mut String, name: &str, help: &str, third: &str, map: &BTreeMap<Labels, u64>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for ((tenant, plugin, x), n) in map {
                    let _ = writeln!(
                        out,
                        "{name}{{tenant=\"{}\",plugin=\"{}\",{third}=\"{x}\"}} {n}",
                        escape(tenant),
                        escape(plugin)
                    );
                }
            };
        family(
            out,
            "weir_plugin_calls_total",
            "Plugin calls by function.",
            "function",
            &m.calls,
        );
        family(
            out,
            "weir_plugin_failures_total",
            "Failed or refused plugin calls by kind (trap, timeout, memory, err, invalid, uri_escape, output_too_large, variant_limit, rate_limit, overload; plugin=\"\" for a tenant-wide refusal).",
            "kind",
            &m.failures,
        );
        family(
            out,
            "weir_plugin_fallbacks_total",
            "Playlists served with a failure policy applied (plugin=\"\" for the whole chain).",
            "reason",
            &m.fallbacks,
        );
        family(
            out,
            "weir_plugin_reloads_total",
            "Plugin pushes and reloads by result.",
            "result",
            &m.reloads,
        );
        let name = "weir_plugin_call_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Wall time of one plugin call, fresh instance included.\n# TYPE {name} histogram"
        );
        for ((tenant, plugin), h) in &m.latency {
            let labels = format!(
                "tenant=\"{}\",plugin=\"{}\"",
                escape(tenant),
                escape(plugin)
            );
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
        }
        let name = "weir_plugin_cache_hits_total";
        let _ = writeln!(
            out,
            "# HELP {name} Playlists served from cached transform results.\n# TYPE {name} counter"
        );
        for (tenant, n) in &m.cache_hits {
            let _ = writeln!(out, "{name}{{tenant=\"{}\"}} {n}", escape(tenant));
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
