//! Wiring between the config, the plugin host and the origin's manifest filter.

use std::path::Path;

use anyhow::Context;
use bytes::Bytes;
use weir_cache::BoxFuture;
use weir_origin::{Filtered, ManifestFilter, RequestCtx, Route};
use weir_plugin_host::{
    AssetListError, PlaylistRequest, PluginSpec, Plugins, Settings, TenantSettings,
};

use crate::config::Config;
use std::sync::Arc;

use weir_stream::{StreamOptions, StreamPolicy};

pub fn settings(config: &Config) -> Settings {
    config.plugins.settings()
}

pub fn tenants(config: &Config) -> Vec<TenantSettings> {
    config
        .tenants
        .iter()
        .map(|t| TenantSettings {
            name: t.name.clone(),
            streams: t.streams.clone(),
            country_header: t.country_header.clone(),
            // Checked by `Config::validate`; canonical already, so this keeps them as they are.
            asset_hosts: t
                .ad_hosts
                .iter()
                .filter_map(|h| weir_plugin_host::validate::asset_host(h).ok())
                .collect(),
        })
        .collect()
}

/// What each stream's tenant asks of the pipeline.
pub fn stream_policy(config: &Config) -> StreamPolicy {
    let encoder = |transcode: Option<bool>, ladder: Option<&Vec<crate::config::RungConfig>>| {
        transcode.unwrap_or(config.encoder.enabled).then(|| {
            Arc::new(config.encoder.settings(
                ladder.unwrap_or(&config.encoder.ladder),
                config.segment_target(),
                config.part_target(),
            ))
        })
    };
    let mut policy = StreamPolicy::default();
    policy.default.encoder = encoder(None, None);
    policy.default.byterange_parts = config.packager.byterange_parts;
    for t in &config.tenants {
        let options = StreamOptions {
            cue_tags: t.packager_cue_tags,
            slate: t.slate,
            encoder: encoder(t.transcode, t.ladder.as_ref()),
            byterange_parts: t.byterange_parts.unwrap_or(config.packager.byterange_parts),
        };
        if t.name == weir_plugin_host::DEFAULT_TENANT {
            policy.default = options.clone();
        }
        for s in &t.streams {
            policy.streams.insert(s.clone(), options.clone());
        }
    }
    policy
}

/// Reads every configured plugin and installs each tenant's chain. A tenant whose chain
/// fails keeps the one it had, and the error names the tenant and plugin.
pub async fn load_chains(plugins: &Plugins, config: &Config, base: &Path) -> anyhow::Result<()> {
    let mut chains = Vec::with_capacity(config.tenants.len());
    for t in &config.tenants {
        let mut specs = Vec::new();
        for p in &t.plugins {
            let path = base.join(&p.path);
            let component = std::fs::read(&path).with_context(|| {
                format!(
                    "tenant {}: plugin {}: reading {}",
                    t.name,
                    p.name,
                    path.display()
                )
            })?;
            let plugin_config = match (&p.config, &p.config_file) {
                (Some(c), _) => c.clone(),
                (None, Some(f)) => {
                    let f = base.join(f);
                    std::fs::read_to_string(&f).with_context(|| {
                        format!(
                            "tenant {}: plugin {}: reading {}",
                            t.name,
                            p.name,
                            f.display()
                        )
                    })?
                }
                (None, None) => String::new(),
            };
            specs.push(PluginSpec {
                name: p.name.clone(),
                component: Bytes::from(component),
                config: plugin_config,
            });
        }
        chains.push((t.name.clone(), specs));
    }
    // All or nothing: a plugin that fails to compile or init leaves every chain as it was.
    plugins
        .replace_all(tenants(config), chains)
        .await
        .context("loading the tenants' plugin chains")
}

/// The origin's phase 4, backed by the plugin host.
pub struct Filter(pub Plugins);

impl Filter {
    fn request<'a>(
        ctx: &'a RequestCtx,
        stream: &'a str,
        rendition: &'a str,
    ) -> PlaylistRequest<'a> {
        PlaylistRequest {
            stream,
            rendition,
            headers: &ctx.request.headers,
            query: ctx.request.uri.query(),
            cues: &ctx.cues,
        }
    }
}

impl ManifestFilter for Filter {
    fn media_playlist<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        playlist: Bytes,
    ) -> BoxFuture<'a, Filtered> {
        Box::pin(async move {
            let Route::MediaPlaylist {
                stream, rendition, ..
            } = &ctx.route
            else {
                return playlist.into();
            };
            let req = Self::request(ctx, stream, rendition);
            let m = match &ctx.full_playlist {
                Some(full) => {
                    self.0
                        .media_playlist_delta(&req, full.clone(), playlist)
                        .await
                }
                None => self.0.media_playlist(&req, playlist).await,
            };
            Filtered {
                body: m.body,
                vary: m.vary,
            }
        })
    }

    fn multivariant_playlist<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        playlist: Bytes,
    ) -> BoxFuture<'a, Filtered> {
        Box::pin(async move {
            let Route::Multivariant { stream } = &ctx.route else {
                return playlist.into();
            };
            let m = self
                .0
                .multivariant_playlist(&Self::request(ctx, stream, ""), playlist)
                .await;
            Filtered {
                body: m.body,
                vary: m.vary,
            }
        })
    }

    fn asset_list<'a>(
        &'a self,
        ctx: &'a RequestCtx,
        stream: &'a str,
        cue_id: u32,
    ) -> BoxFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            match self
                .0
                .asset_list(
                    stream,
                    cue_id,
                    &ctx.request.headers,
                    ctx.request.uri.query(),
                )
                .await
            {
                Ok(json) => Some(absolute_asset_uris(&json, &ctx.request, stream)),
                Err(e @ (AssetListError::RateLimited | AssetListError::Busy)) => {
                    // Counted on /metrics; a flood must not become a flood of log lines.
                    tracing::debug!(stream, cue_id, error = %e, "asset list not resolved");
                    None
                }
                Err(e) => {
                    tracing::info!(stream, cue_id, error = %e, "asset list not resolved");
                    None
                }
            }
        })
    }
}

/// Makes the asset URIs of an asset list absolute. Plugins name ads by path
/// (`/assets/ad/index.m3u8`), but hls.js resolves an asset list's URIs against the page, not
/// against the asset list, so a path would point at the web site instead of the origin.
/// The base is the asset-list request: its scheme (`X-Forwarded-Proto` behind a CDN or
/// proxy) and host (`Host`, or `:authority` on HTTP/2).
fn absolute_asset_uris(json: &Bytes, request: &http::request::Parts, stream: &str) -> Bytes {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(json) else {
        return json.clone();
    };
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| request.uri.authority().map(|a| a.to_string()));
    let Some(host) = host.filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"'])) else {
        return json.clone();
    };
    let scheme = request
        .headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| matches!(*p, "http" | "https"))
        .or_else(|| request.uri.scheme_str())
        .unwrap_or("http");
    let Some(assets) = value.get_mut("ASSETS").and_then(|a| a.as_array_mut()) else {
        return json.clone();
    };
    for asset in assets {
        let Some(uri) = asset.get_mut("URI") else {
            continue;
        };
        let Some(text) = uri.as_str() else { continue };
        if text.contains("://") {
            continue;
        }
        let absolute = if let Some(rest) = text.strip_prefix("//") {
            format!("{scheme}://{rest}")
        } else if text.starts_with('/') {
            format!("{scheme}://{host}{text}")
        } else {
            format!("{scheme}://{host}/live/{stream}/asset-list/{text}")
        };
        *uri = serde_json::Value::String(absolute);
    }
    Bytes::from(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_uris_become_absolute_on_the_origin_that_was_asked() {
        let (parts, ()) = http::Request::get("/live/demo/asset-list/7.json")
            .header("host", "origin.example:8080")
            .body(())
            .unwrap()
            .into_parts();
        let json = Bytes::from_static(
            br#"{"ASSETS":[{"URI":"/assets/ad/index.m3u8","DURATION":6.0},{"URI":"https://ads.example/x.m3u8","DURATION":5.0},{"URI":"b.m3u8","DURATION":1.0}]}"#,
        );
        let out: serde_json::Value =
            serde_json::from_slice(&absolute_asset_uris(&json, &parts, "demo")).unwrap();
        assert_eq!(
            out["ASSETS"][0]["URI"],
            "http://origin.example:8080/assets/ad/index.m3u8"
        );
        assert_eq!(out["ASSETS"][1]["URI"], "https://ads.example/x.m3u8");
        assert_eq!(
            out["ASSETS"][2]["URI"],
            "http://origin.example:8080/live/demo/asset-list/b.m3u8"
        );
        assert_eq!(out["ASSETS"][0]["DURATION"], 6.0);

        let (behind_cdn, ()) = http::Request::get("/live/demo/asset-list/7.json")
            .header("host", "cdn.example")
            .header("x-forwarded-proto", "https")
            .body(())
            .unwrap()
            .into_parts();
        let out: serde_json::Value =
            serde_json::from_slice(&absolute_asset_uris(&json, &behind_cdn, "demo")).unwrap();
        assert_eq!(
            out["ASSETS"][0]["URI"],
            "https://cdn.example/assets/ad/index.m3u8"
        );
        // Not JSON: passed on as it is.
        let garbage = Bytes::from_static(b"not json");
        assert_eq!(absolute_asset_uris(&garbage, &parts, "demo"), garbage);
    }

    #[test]
    fn byterange_parts_per_tenant_over_the_global_default() {
        let config: Config = toml::from_str(
            "[packager]\nbyterange_parts = true\n\
             [[tenants]]\nname = \"a\"\nstreams = [\"s\"]\n\
             [[tenants]]\nname = \"b\"\nstreams = [\"t\"]\nbyterange_parts = false\n",
        )
        .unwrap();
        let policy = stream_policy(&config);
        assert!(policy.for_stream("s").byterange_parts);
        assert!(!policy.for_stream("t").byterange_parts);
        assert!(policy.for_stream("other").byterange_parts);

        let config: Config = toml::from_str(
            "[[tenants]]\nname = \"a\"\nstreams = [\"s\"]\nbyterange_parts = true\n",
        )
        .unwrap();
        let policy = stream_policy(&config);
        assert!(policy.for_stream("s").byterange_parts);
        assert!(
            !policy.for_stream("other").byterange_parts,
            "off by default"
        );
    }
}
