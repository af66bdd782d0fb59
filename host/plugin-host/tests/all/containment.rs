//! Containment (issue 12): whatever a plugin answers, no URI leaves its stream, no answer
//! exceeds the output cap, variants do not multiply without bound, and asset-list calls get
//! only what the plugin declared, cached and rate-limited per tenant. The misbehaving
//! plugin is `plugins/fault-escape`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use weir_plugin_host::{AssetListError, PlaylistRequest, Plugins, Settings, TenantSettings};

use crate::support::*;

const MEDIA_SPOTS: [&str; 8] = [
    "segment",
    "map",
    "part",
    "hint",
    "report",
    "key",
    "asset-list",
    "asset-uri",
];
const MULTIVARIANT_SPOTS: [&str; 6] = [
    "variant",
    "media",
    "session-data",
    "i-frame",
    "session-key",
    "steering",
];
/// `fault_escape::FORMS.len()`.
const FORMS: usize = 15;

/// Tenant `acme` (stream `demo`, ads allowed on ads.allowed.example) and tenant `beta`
/// (stream `other`), each with fault-escape. Requests wait for the run (a debug build on
/// two busy cores), so every answer is the run's and not the deadline's.
async fn hosts(tweak: impl FnOnce(&mut Settings)) -> Plugins {
    let mut settings = Settings::default();
    settings.limits.call_timeout = Duration::from_secs(1);
    settings.deadline = Duration::from_secs(5);
    settings.asset_list_timeout = Duration::from_secs(5);
    tweak(&mut settings);
    let mut acme = TenantSettings::new("acme");
    acme.streams = vec!["demo".to_owned()];
    acme.asset_hosts = vec!["ads.allowed.example".to_owned()];
    let mut beta = TenantSettings::new("beta");
    beta.streams = vec!["other".to_owned()];
    let host = Plugins::new(settings, vec![acme, beta]).unwrap();
    for tenant in ["acme", "beta"] {
        host.push(tenant, spec("escape", "fault-escape", tenant))
            .await
            .unwrap();
    }
    host
}

fn metric(host: &Plugins, needle: &str) -> u64 {
    let mut text = String::new();
    host.metrics().render(&mut text);
    text.lines()
        .filter(|l| l.starts_with(needle))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn failures(host: &Plugins, tenant: &str, plugin: &str, kind: &str) -> u64 {
    metric(
        host,
        &format!(
            "weir_plugin_failures_total{{tenant=\"{tenant}\",plugin=\"{plugin}\",kind=\"{kind}\"}}"
        ),
    )
}

async fn playlist(
    host: &Plugins,
    stream: &str,
    rendition: &str,
    input: &str,
    query: &str,
) -> (String, Vec<String>) {
    let headers = HeaderMap::new();
    let req = PlaylistRequest {
        stream,
        rendition,
        headers: &headers,
        query: Some(query),
        cues: &[],
    };
    let out = if rendition.is_empty() {
        host.multivariant_playlist(&req, Bytes::from(input.to_owned()))
            .await
    } else {
        host.media_playlist(&req, Bytes::from(input.to_owned()))
            .await
    };
    (String::from_utf8(out.body.to_vec()).unwrap(), out.vary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_escaping_uri_on_every_tag_is_refused_and_counted() {
    let host = hosts(|_| {}).await;
    let media = media_playlist(100, 4);
    let mut cases = 0;
    for spot in MEDIA_SPOTS {
        for n in 0..FORMS {
            let (out, _) =
                playlist(&host, "demo", "src", &media, &format!("case={spot}:{n}")).await;
            // Refused: pass-through, the plugin's failure policy.
            assert_eq!(out, media, "{spot}:{n}");
            cases += 1;
        }
    }
    for spot in MULTIVARIANT_SPOTS {
        for n in 0..FORMS {
            let (out, _) =
                playlist(&host, "demo", "", MULTIVARIANT, &format!("case={spot}:{n}")).await;
            assert_eq!(out, MULTIVARIANT, "{spot}:{n}");
            cases += 1;
        }
    }
    for (input, rendition) in [(media.as_str(), "src"), (MULTIVARIANT, "")] {
        let (out, _) = playlist(&host, "demo", rendition, input, "case=hidden").await;
        assert_eq!(out, input);
        let (out, _) = playlist(&host, "demo", rendition, input, "case=cr").await;
        assert_eq!(out, input);
    }
    assert_eq!(failures(&host, "acme", "escape", "uri_escape"), cases + 2);
    assert_eq!(failures(&host, "acme", "escape", "invalid"), 2);
    // The tenant's ad host is allowed for an interstitial's asset list, and the rest of
    // the output (the mark) goes through with it.
    let (out, _) = playlist(&host, "demo", "src", &media, "case=allowed").await;
    assert!(
        out.contains("X-ASSET-LIST=\"https://ads.allowed.example/list.json\"")
            && out.ends_with("## acme case=allowed\n"),
        "{out}"
    );
    // Tenant beta does not list that host.
    let (out, _) = playlist(&host, "other", "src", &media, "case=allowed").await;
    assert_eq!(out, media);
    assert_eq!(failures(&host, "beta", "escape", "uri_escape"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60_mib_answer_is_refused_by_the_host() {
    // Memory enough for the guest to build 60 MiB: the host's own cap must stop it.
    let host = hosts(|s| s.limits.memory_bytes = 160 << 20).await;
    let media = media_playlist(100, 4);
    let (out, _) = playlist(&host, "demo", "src", &media, "case=big").await;
    assert_eq!(out, media);
    let (out, _) = playlist(&host, "demo", "", MULTIVARIANT, "case=big").await;
    assert_eq!(out, MULTIVARIANT);
    let r = host
        .asset_list("demo", 1, &HeaderMap::new(), Some("case=big"))
        .await;
    assert!(matches!(r, Err(AssetListError::Unresolved(1))), "{r:?}");
    assert_eq!(failures(&host, "acme", "escape", "output_too_large"), 3);
    assert_eq!(failures(&host, "acme", "escape", "memory"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variants_beyond_the_limit_share_one_run() {
    let host = hosts(|s| s.max_variants = 8).await;
    let media = media_playlist(100, 4);
    let calls = || {
        metric(
            &host,
            "weir_plugin_calls_total{tenant=\"acme\",plugin=\"escape\",function=\"transform-media-playlist\"}",
        )
    };
    let mut marked = 0;
    for i in 0..200 {
        let (out, vary) = playlist(&host, "demo", "src", &media, &format!("case=v{i}")).await;
        assert_eq!(vary, ["x-viewer"]);
        if out == format!("{media}## acme case=v{i}\n") {
            marked += 1;
        } else {
            // Over the limit: the failure policy (pass-through), without a call.
            assert_eq!(out, media, "v{i}");
        }
    }
    assert_eq!(marked, 8);
    // A call per admitted variant; the rest share one run, which does not call the plugin.
    assert_eq!(calls(), 8);
    assert_eq!(failures(&host, "acme", "escape", "variant_limit"), 192);
    // A known variant still gets its own answer.
    let (out, _) = playlist(&host, "demo", "src", &media, "case=v3").await;
    assert!(out.ends_with("## acme case=v3\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_list_calls_get_only_what_the_plugin_declared() {
    let host = hosts(|_| {}).await;
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("cookie", "session=secret"),
        ("authorization", "Bearer secret"),
        ("x-viewer", "v1"),
        ("cf-ipcountry", "us"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    let json = host
        .asset_list(
            "demo",
            7,
            &headers,
            Some("case=echo&token=secret&_HLS_primary_id=abc"),
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(
        v["CTX"],
        serde_json::json!({
            "country": "US",
            "headers": [["x-viewer", "v1"]],
            "query": [["case", "echo"]],
        }),
        "{v}"
    );
    assert!(!String::from_utf8_lossy(&json).contains("secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_lists_stay_contained() {
    let host = hosts(|_| {}).await;
    let headers = HeaderMap::new();
    let json = host.asset_list("demo", 1, &headers, None).await.unwrap();
    assert!(String::from_utf8_lossy(&json).contains("\"/assets/ad/index.m3u8\""));
    let json = host
        .asset_list("demo", 1, &headers, Some("case=allowed"))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&json).contains("https://ads.allowed.example/ad/index.m3u8"));
    let r = host
        .asset_list("demo", 1, &headers, Some("case=evil"))
        .await;
    assert!(matches!(r, Err(AssetListError::Unresolved(1))), "{r:?}");
    assert_eq!(failures(&host, "acme", "escape", "uri_escape"), 1);
    // Beta does not allow the ad host.
    let r = host
        .asset_list("other", 1, &headers, Some("case=allowed"))
        .await;
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asset_list_runs_are_cached_and_rate_limited_per_tenant() {
    // No refill: exactly `burst` runs per tenant.
    let host = hosts(|s| {
        s.asset_list_rate = 0;
        s.asset_list_burst = 3;
    })
    .await;
    let headers = HeaderMap::new();
    let calls = |tenant: &str| {
        metric(
            &host,
            &format!(
                "weir_plugin_calls_total{{tenant=\"{tenant}\",plugin=\"escape\",function=\"resolve-asset-list\"}}"
            ),
        )
    };
    for case in ["a", "b", "c"] {
        let q = format!("case={case}");
        host.asset_list("demo", 1, &headers, Some(&q))
            .await
            .unwrap();
    }
    assert_eq!(calls("acme"), 3);
    let r = host.asset_list("demo", 1, &headers, Some("case=d")).await;
    assert!(matches!(r, Err(AssetListError::RateLimited)), "{r:?}");
    assert_eq!(failures(&host, "acme", "", "rate_limit"), 1);
    // Cached answers need no run.
    for _ in 0..10 {
        host.asset_list("demo", 1, &headers, Some("case=a"))
            .await
            .unwrap();
    }
    assert_eq!(calls("acme"), 3);
    // Another tenant has its own budget.
    host.asset_list("other", 1, &headers, Some("case=a"))
        .await
        .unwrap();
    assert_eq!(calls("beta"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_asset_list_holds_one_worker_at_most() {
    // Eight of acme's asset lists loop until interrupted (1 s each). With one slot per
    // tenant they hold one of the two workers at a time, so beta's playlist runs take the
    // other at once. Without the slot all eight would queue on both workers, and beta's
    // runs would wait 4 s behind them, past the 2 s deadline (then: pass-through).
    let host = hosts(|s| {
        s.asset_list_burst = 1000;
        s.deadline = Duration::from_secs(2);
    })
    .await;
    let mut floods = Vec::new();
    for i in 0..8 {
        let host = host.clone();
        floods.push(tokio::spawn(async move {
            let q = format!("case=slow-{i}");
            host.asset_list("demo", 1, &HeaderMap::new(), Some(&q))
                .await
        }));
    }
    // Let the flood reach the workers first.
    while metric(&host, "weir_plugin_calls_total{tenant=\"acme\",plugin=\"escape\",function=\"resolve-asset-list\"}") == 0
        && failures(&host, "acme", "escape", "timeout") == 0
    {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..5 {
        let input = media_playlist(200 + i, 4);
        let started = std::time::Instant::now();
        let (out, _) = playlist(&host, "other", "src", &input, "").await;
        if !out.ends_with("## beta case=\n") {
            // Which mechanism: a deadline (took >= 2 s, fallbacks reason="deadline") or a
            // failed call (failures of beta), and how far acme's flood had got.
            let mut text = String::new();
            host.metrics().render(&mut text);
            let lines: Vec<&str> = text
                .lines()
                .filter(|l| {
                    !l.starts_with('#')
                        && (l.contains("fallbacks")
                            || l.contains("failures")
                            || l.contains("calls_total")
                            || l.contains("_sum")
                            || l.contains("_count"))
                })
                .collect();
            panic!(
                "run {i}: pass-through after {:?}\n{}\n{out}",
                started.elapsed(),
                lines.join("\n")
            );
        }
    }
    for f in floods {
        assert!(f.await.unwrap().is_err());
    }
    assert!(failures(&host, "acme", "escape", "timeout") >= 1);
}
