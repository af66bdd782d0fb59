//! `weir edge`: the registry's miss hook starts following a stream upstream (weir-edge).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};
use weir_edge::{EdgeSettings, Upstream};
use weir_media::StreamRegistry;

use crate::config::EdgeConfig;
use crate::ready::UpstreamHealth;

/// Makes every request for a stream this process does not have follow it from `upstream`
/// (once: a stream being followed is not asked for twice), and checks the upstream's
/// `/healthz` every two seconds for `/readyz`.
pub fn follow_on_miss(
    registry: &StreamRegistry,
    upstream: &str,
    config: &EdgeConfig,
) -> anyhow::Result<UpstreamHealth> {
    let base = url::Url::parse(upstream).with_context(|| format!("edge.upstream {upstream}"))?;
    let mut bases = vec![base];
    for u in &config.upstreams {
        bases.push(url::Url::parse(u).with_context(|| format!("edge.upstreams {u}"))?);
    }
    let client = weir_check::http::Client::new(config.ca.as_deref(), config.insecure)
        .context("edge.ca / TLS setup")?;
    // The shared edge token goes upstream with every request: a primary with signed
    // playback URLs lets this edge pull its streams without one.
    let client = match &config.token {
        Some(token) => client.with_bearer(token).context("edge.token")?,
        None => client,
    };
    let health: UpstreamHealth = Arc::new(Mutex::new(Err("upstream not checked yet".into())));
    let healthz: Vec<url::Url> = bases
        .iter()
        .map(|b| b.join("/healthz"))
        .collect::<Result<_, _>>()?;
    let (probe, h) = (client.clone(), Arc::clone(&health));
    tokio::spawn(async move {
        loop {
            // Ready while any upstream answers: a stream on the others is still followed.
            let mut state = Err("no upstream".to_owned());
            for url in &healthz {
                state = match probe.get(url, None, Duration::from_secs(2)).await {
                    Ok(f) if f.status == 200 => Ok(()),
                    Ok(f) => Err(format!("upstream {url} answered {}", f.status)),
                    Err(e) => Err(format!("upstream unreachable: {e}")),
                };
                if state.is_ok() {
                    break;
                }
            }
            *h.lock().unwrap_or_else(PoisonError::into_inner) = state;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });
    let up = Arc::new(Upstream::new(
        bases,
        client,
        registry.clone(),
        EdgeSettings::default(),
    ));
    let following = Arc::new(Mutex::new(HashSet::<String>::new()));
    info!(%upstream, "edge: streams are followed from upstream on first request");
    registry.on_miss(Arc::new(move |name: &str| {
        if !following
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned())
        {
            return;
        }
        let (up, following, name) = (Arc::clone(&up), Arc::clone(&following), name.to_owned());
        tokio::spawn(async move {
            if let Err(e) = up.follow_stream(name.clone()).await {
                warn!(stream = %name, error = %e, "edge: cannot follow upstream stream");
            }
            following
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&name);
        });
    }));
    Ok(health)
}
