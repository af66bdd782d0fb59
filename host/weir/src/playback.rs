//! Who may play what: each tenant's signed-URL keys (`tenants.playback_keys`) and the
//! shared edge token (`edge.token`) that lets an edge pull any stream
//! (docs/design/010-signed-urls.md). `weir sign-url` makes the URLs.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use weir_origin::signed::{self, Denied, PlaybackAuth};

use crate::config::Config;

/// The origin's [`PlaybackAuth`], rebuilt from the config on SIGHUP.
pub struct Playback {
    state: RwLock<State>,
    plugins: weir_plugin_host::Plugins,
}

#[derive(Default)]
struct State {
    /// Tenant → its keys, first the signing one. Tenants without keys are open.
    keys: HashMap<String, Vec<Vec<u8>>>,
    /// SHA-256 of `edge.token`: compared in constant time, and the same length whatever
    /// was sent.
    edge_token: Option<[u8; 32]>,
}

impl State {
    fn from_config(config: &Config) -> Self {
        Self {
            keys: config
                .tenants
                .iter()
                .filter(|t| !t.playback_keys.is_empty())
                .map(|t| {
                    let keys = t.playback_keys.iter().map(|k| k.as_bytes().to_vec());
                    (t.name.clone(), keys.collect())
                })
                .collect(),
            edge_token: config.edge.token.as_deref().map(digest),
        }
    }
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

impl Playback {
    /// `plugins` knows which tenant owns a stream.
    pub fn new(config: &Config, plugins: weir_plugin_host::Plugins) -> Self {
        Self {
            state: RwLock::new(State::from_config(config)),
            plugins,
        }
    }

    /// Takes the keys and the edge token of a re-read config (SIGHUP).
    pub fn set(&self, config: &Config) {
        *self.state.write().unwrap_or_else(PoisonError::into_inner) = State::from_config(config);
    }

    fn sent_by_an_edge(&self, state: &State, request: &http::request::Parts) -> bool {
        let Some(want) = &state.edge_token else {
            return false;
        };
        let sent = request
            .headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        sent.is_some_and(|t| bool::from(digest(t).ct_eq(want)))
    }
}

impl PlaybackAuth for Playback {
    fn authorize(
        &self,
        stream: &str,
        token: Option<&str>,
        request: &http::request::Parts,
    ) -> Result<(), Denied> {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if state.keys.is_empty() {
            return Ok(());
        }
        let Some(keys) = state.keys.get(&self.plugins.tenant_of(stream)) else {
            return Ok(());
        };
        if self.sent_by_an_edge(&state, request) {
            return Ok(());
        }
        let token = token.ok_or(Denied::Missing)?;
        signed::verify(keys, stream, token, unix_now())
    }
}

fn unix_now() -> u64 {
    // The request's own time: the origin serving it is the driver that reads the clock.
    #[allow(clippy::disallowed_methods)]
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// `weir sign-url`: print a signed playback URL for a stream, with the first key of the
/// tenant that owns it in the config file (or `--key`).
#[derive(clap::Args, Debug)]
pub struct SignArgs {
    /// The stream to sign for.
    #[arg(long)]
    stream: String,
    /// How long the URL plays, in seconds (a viewer that joined keeps playing only while
    /// it is valid: make it longer than a viewing session).
    #[arg(long, default_value_t = 6 * 3600)]
    ttl_s: u64,
    /// Where the URL points: the origin, an edge or the CDN in front of them.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base: String,
    /// The config file whose `tenants.playback_keys` sign the URL.
    #[arg(short, long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// Sign with this key instead (at least 32 characters).
    #[arg(long, env = "WEIR_PLAYBACK_KEY", hide_env_values = true)]
    key: Option<String>,
}

pub fn sign_url(args: &SignArgs) -> anyhow::Result<String> {
    if !crate::config::valid_stream_name(&args.stream) {
        bail!("--stream {:?} is not a stream name", args.stream);
    }
    let key = match (&args.key, &args.config) {
        (Some(key), _) => {
            if key.len() < 32 {
                bail!("--key must be at least 32 characters");
            }
            key.clone()
        }
        (None, Some(path)) => {
            let config = Config::load(path)?;
            config.validate()?;
            let tenant = config
                .tenants
                .iter()
                .find(|t| t.streams.contains(&args.stream))
                .or_else(|| config.tenants.iter().find(|t| t.name == "default"))
                .with_context(|| {
                    format!(
                        "no tenant in {} owns stream {}",
                        path.display(),
                        args.stream
                    )
                })?;
            tenant.playback_keys.first().cloned().with_context(|| {
                format!(
                    "tenant {} has no playback_keys: its streams are open",
                    tenant.name
                )
            })?
        }
        (None, None) => bail!("give --config (the tenant's playback_keys) or --key"),
    };
    let expires = unix_now()
        .checked_add(Duration::from_secs(args.ttl_s).as_secs())
        .context("--ttl-s is too large")?;
    let base = args.base.trim_end_matches('/');
    Ok(format!(
        "{base}{}",
        signed::signed_path(key.as_bytes(), &args.stream, expires)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> Config {
        let c: Config = toml::from_str(toml).unwrap();
        c.validate().unwrap();
        c
    }

    fn request(bearer: Option<&str>) -> http::request::Parts {
        let mut r = http::Request::get("/live/x/master.m3u8");
        if let Some(b) = bearer {
            r = r.header("authorization", format!("Bearer {b}"));
        }
        r.body(()).unwrap().into_parts().0
    }

    const KEY: &str = "acme-playback-key-0123456789abcdef";

    fn playback(c: &Config) -> Playback {
        let plugins =
            weir_plugin_host::Plugins::new(crate::plugins::settings(c), crate::plugins::tenants(c))
                .unwrap();
        Playback::new(c, plugins)
    }

    #[test]
    fn only_a_keyed_tenants_streams_need_a_token_and_the_edge_token_passes() {
        let c = config(&format!(
            r#"
            [edge]
            token = "edge-token-0123456789"
            [[tenants]]
            name = "acme"
            streams = ["news"]
            playback_keys = ["{KEY}"]
            "#
        ));
        let p = playback(&c);
        // An open tenant's stream (default) needs nothing.
        assert_eq!(p.authorize("other", None, &request(None)), Ok(()));
        assert_eq!(
            p.authorize("news", None, &request(None)),
            Err(Denied::Missing)
        );
        let good = signed::token(KEY.as_bytes(), "news", unix_now() + 60);
        let good = good.strip_prefix(signed::TOKEN_MARK).unwrap();
        assert_eq!(p.authorize("news", Some(good), &request(None)), Ok(()));
        let old = signed::token(KEY.as_bytes(), "news", unix_now() - 1);
        let old = old.strip_prefix(signed::TOKEN_MARK).unwrap();
        assert_eq!(
            p.authorize("news", Some(old), &request(None)),
            Err(Denied::Expired)
        );
        assert_eq!(
            p.authorize("news", None, &request(Some("edge-token-0123456789"))),
            Ok(())
        );
        assert_eq!(
            p.authorize("news", None, &request(Some("edge-token-012345678"))),
            Err(Denied::Missing)
        );
        // SIGHUP without keys opens the stream.
        p.set(&config(""));
        assert_eq!(p.authorize("news", None, &request(None)), Ok(()));
    }

    #[test]
    fn sign_url_uses_the_owning_tenants_first_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(
            &path,
            format!(
                "[[tenants]]\nname = \"acme\"\nstreams = [\"news\"]\nplayback_keys = [\"{KEY}\", \"{}\"]\n",
                "x".repeat(32)
            ),
        )
        .unwrap();
        let args = |stream: &str| SignArgs {
            stream: stream.to_owned(),
            ttl_s: 60,
            base: "https://cdn.example/".to_owned(),
            config: Some(path.clone()),
            key: None,
        };
        let url = sign_url(&args("news")).unwrap();
        let path_part = url.strip_prefix("https://cdn.example").unwrap();
        let (clean, token) = signed::split(path_part);
        assert_eq!(clean, "/live/news/master.m3u8");
        assert_eq!(
            signed::verify(&[KEY], "news", token.unwrap(), unix_now()),
            Ok(())
        );
        let err = sign_url(&args("open")).unwrap_err().to_string();
        assert!(err.contains("no tenant"), "{err}");
        let err = sign_url(&SignArgs {
            key: Some("short".into()),
            ..args("news")
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("32 characters"), "{err}");
    }
}
