//! `weir`: the live-video origin and LL-HLS packager.
//!
//! `weir serve` with no arguments plays a built-in live test stream and accepts RTMP
//! publishers; see README.md.

mod api;
mod auth;
mod check_cli;
mod config;
mod edge;
mod playback;
mod plugin_cli;
mod plugins;
mod ready;
mod state;
mod stream_cli;
mod testsrc;
mod whip;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tracing::{error, info, warn};
use weir_media::{MediaEvent, StreamKey, StreamRegistry};

use crate::config::{Config, TestSourceKind};
use weir_stream::{StreamMetrics, StreamSettings, Streams};

#[derive(Parser, Debug)]
#[command(
    name = "weir",
    version,
    about = "Live-video origin and Low-Latency HLS packager"
)]
struct Cli {
    /// Log lines as text (for people) or JSON (one object per line, for a log pipeline:
    /// timestamp, level, target, fields, spans).
    #[arg(long, global = true, env = "WEIR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once, at startup
enum Command {
    /// Ingest, package and serve live streams (plays a built-in test stream with no config).
    Serve(ServeArgs),
    /// Manage a running server's manifest plugins (push, list, remove).
    Plugin(plugin_cli::PluginArgs),
    /// Follow an LL-HLS stream (weir's or any other) and report the rules it breaks.
    Check(check_cli::CheckArgs),
    /// List a running server's streams, kick a publisher, splice at the live edge.
    Streams(stream_cli::StreamsArgs),
    /// Serve an upstream weir's streams as a regional edge: one upstream request per
    /// rendition, whatever the number of viewers (no ingest).
    Edge(EdgeArgs),
    /// Print a signed playback URL for a stream whose tenant has `playback_keys`.
    SignUrl(playback::SignArgs),
}

#[derive(clap::Args, Debug)]
struct EdgeArgs {
    /// The upstream weir, e.g. https://primary.example:8443 (`edge.upstream`). Give it once
    /// per primary when several may hold a stream (`edge.upstreams`); comma-separated in
    /// the environment variable.
    #[arg(long, env = "WEIR_UPSTREAM", value_delimiter = ',', required = true)]
    upstream: Vec<String>,
    /// Trust any upstream certificate (`edge.insecure`).
    #[arg(long)]
    insecure: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Debug)]
struct ServeArgs {
    /// TOML config file (see examples/weir.toml). CLI flags override it.
    #[arg(short, long, env = "WEIR_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP listener (HTTP/1.1 and h2c), e.g. 0.0.0.0:8080.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// HTTPS listener (HTTP/2 via ALPN); needs --tls-cert and --tls-key.
    #[arg(long)]
    https: Option<SocketAddr>,
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// RTMP listener, e.g. 0.0.0.0:1935.
    #[arg(long)]
    rtmp: Option<SocketAddr>,
    /// SRT listener (UDP), e.g. 0.0.0.0:9000.
    #[arg(long)]
    srt: Option<SocketAddr>,
    /// WHIP's UDP port (WebRTC media of every WHIP session), e.g. 0.0.0.0:8189.
    #[arg(long)]
    whip_udp: Option<SocketAddr>,
    /// SRT passphrase every caller must use (AES); none by default.
    #[arg(long, env = "WEIR_SRT_PASSPHRASE")]
    srt_passphrase: Option<String>,
    /// Bearer token for the operator API (/api/v1/…); the API is off without one.
    #[arg(long, env = "WEIR_API_TOKEN")]
    api_token: Option<String>,
    /// Target segment duration in milliseconds.
    #[arg(long)]
    segment_ms: Option<u64>,
    /// Target part duration in milliseconds.
    #[arg(long)]
    part_ms: Option<u64>,
    /// Playlist window in seconds.
    #[arg(long)]
    window_s: Option<u64>,
    /// Do not serve the built-in test stream.
    #[arg(long)]
    no_test_source: bool,
    /// The built-in test stream: `pattern` (live clock and tone, through the encoder's
    /// ladder) or `clip` (a looped clip, passed through as `src`: no encoding).
    #[arg(long, value_enum)]
    test_source: Option<TestSourceKind>,
    /// Transcode contributions into the encoder's ladder (`encoder.enabled`).
    #[arg(long)]
    transcode: bool,
    /// libx264 preset for the ladder (`encoder.preset`), e.g. ultrafast on a small machine.
    #[arg(long)]
    preset: Option<String>,
    /// Keeps media sequence and part numbers above the last run's (`server.state_dir`).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if let Some(a) = self.http {
            c.server.http = a;
        }
        if let Some(a) = self.https {
            c.server.https = Some(a);
        }
        if let Some(p) = &self.tls_cert {
            c.server.tls_cert = Some(p.clone());
        }
        if let Some(p) = &self.tls_key {
            c.server.tls_key = Some(p.clone());
        }
        if let Some(a) = self.rtmp {
            c.rtmp.listen = a;
        }
        if let Some(a) = self.srt {
            c.srt.listen = a;
        }
        if let Some(a) = self.whip_udp {
            c.whip.udp = a;
        }
        if let Some(p) = &self.srt_passphrase {
            c.srt.passphrase = Some(p.clone());
        }
        if let Some(t) = &self.api_token {
            c.api.token = Some(t.clone());
        }
        if let Some(v) = self.segment_ms {
            c.packager.segment_ms = v;
        }
        if let Some(v) = self.part_ms {
            c.packager.part_ms = v;
        }
        if let Some(v) = self.window_s {
            c.packager.window_s = v;
        }
        if self.no_test_source {
            c.test_source.enabled = false;
        }
        if let Some(k) = self.test_source {
            c.test_source.kind = k;
        }
        if self.transcode {
            c.encoder.enabled = true;
        }
        if let Some(p) = &self.preset {
            c.encoder.preset = p.clone();
        }
        if let Some(d) = &self.state_dir {
            c.server.state_dir = Some(d.clone());
        }
        c.validate()?;
        Ok(c)
    }
}

/// `WEIR_LOG` unset: info, but the WebRTC stack (webrtc-rs's `rtc` crates) only for
/// warnings: it reports each session's state changes at info, which weir's own lines do.
const DEFAULT_LOG: &str =
    "info,rtc=warn,rtc_ice=warn,rtc_dtls=error,rtc_srtp=warn,rtc_interceptor=warn";

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| DEFAULT_LOG.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("weir")
                .build()
                .context("starting the tokio runtime")?
                .block_on(serve(config, args.config.clone()))?;
        }
        Command::Edge(args) => {
            let mut config = args.serve.config()?;
            let (first, more) = args
                .upstream
                .split_first()
                .context("--upstream is required")?;
            config.edge.upstream = Some(first.clone());
            config.edge.upstreams = more.to_vec();
            config.edge.insecure |= args.insecure;
            config.validate()?;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("weir")
                .build()
                .context("starting the tokio runtime")?
                .block_on(serve(config, args.serve.config.clone()))?;
        }
        Command::Streams(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?
            .block_on(stream_cli::run(args))?,
        Command::Plugin(args) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?
            .block_on(plugin_cli::run(args))?,
        Command::SignUrl(args) => println!("{}", playback::sign_url(&args)?),
        Command::Check(args) => {
            return tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the tokio runtime")?
                .block_on(check_cli::run(args))
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Routes a publish (RTMP or SRT) to a stream name and a packaging pipeline.
struct Publisher {
    auth: Arc<auth::AuthHandle>,
    streams: Streams,
    max_streams: usize,
}

impl weir_ingest::PublishHandler for Publisher {
    fn authorize<'a>(
        &'a self,
        session: &'a weir_ingest::SessionInfo,
        key: &'a StreamKey,
    ) -> weir_ingest::publish::AuthorizeFuture<'a> {
        Box::pin(async move { self.auth.get().authorize(session, key).await.map(drop) })
    }

    fn publish(
        &self,
        session: &weir_ingest::SessionInfo,
        key: &StreamKey,
    ) -> Result<tokio::sync::mpsc::Sender<MediaEvent>, weir_ingest::Refusal> {
        let name = self.auth.get().stream_for(key)?;
        let publisher = weir_stream::PublisherInfo {
            protocol: session.protocol.as_str().to_owned(),
            addr: session.peer.to_string(),
        };
        self.streams
            .attach_publisher(&name, self.max_streams, Some(publisher))
            .map_err(|_| {
                weir_ingest::Refusal::Overloaded(format!(
                    "{} streams are running (ingest.max_streams)",
                    self.max_streams
                ))
            })
    }

    fn ended(&self, _session: &weir_ingest::SessionInfo, key: &StreamKey, error: Option<&str>) {
        if let (Some(error), Ok(name)) = (error, self.auth.get().stream_for(key)) {
            self.streams
                .note_error(&name, &format!("publisher session ended: {error}"));
        }
    }
}

/// `/metrics`: the pipeline's counters, then the plugins'.
struct AllMetrics {
    pipeline: Arc<StreamMetrics>,
    encoder: Arc<weir_encoder::EncoderMetrics>,
    webrtc: Option<Arc<weir_ingest::whip::WebRtcMetrics>>,
    plugins: weir_plugin_host::Plugins,
}

impl weir_origin::MetricsSource for AllMetrics {
    fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        self.pipeline.render(&mut out);
        out.push_str(&self.encoder.render());
        self.plugins.metrics().render(&mut out);
        if let Some(webrtc) = &self.webrtc {
            webrtc.render(&mut out);
        }
        out
    }
}

async fn serve(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    raise_nofile_limit();
    let edge = config.edge.upstream.is_some();
    if !edge {
        warn_if_ingest_is_open(&config);
    }
    let registry = StreamRegistry::new();
    let upstream_health = match &config.edge.upstream {
        Some(upstream) => Some(edge::follow_on_miss(&registry, upstream, &config.edge)?),
        None => None,
    };
    let ready = Arc::new(ready::Ready::new(upstream_health));
    let metrics = Arc::new(StreamMetrics::default());
    let settings = StreamSettings {
        packager: config.packager.settings(),
        loss_timeout: Duration::from_millis(config.ingest.loss_timeout_ms),
        standby: config.ingest.standby_slate,
        idle_end: Duration::from_secs(config.ingest.idle_end_s),
        linger: Duration::from_secs(config.packager.linger_s),
        policy: plugins::stream_policy(&config),
        numbering: match config.state_dir() {
            Some(dir) => {
                let store = state::NumberingStore::open(&dir)
                    .with_context(|| format!("server.state_dir {}", dir.display()))?;
                info!(dir = %dir.display(), "numbering state");
                Some(Arc::new(state::StoreReservations(Arc::new(store)))
                    as Arc<dyn weir_stream::Reservations>)
            }
            None => None,
        },
    };
    let encodes = config.encoder.enabled
        || config.tenants.iter().any(|t| t.transcode == Some(true))
        || (config.test_source.enabled && config.test_source.kind == TestSourceKind::Pattern);
    if encodes {
        let accel = config
            .encoder
            .settings(&[], Duration::ZERO, Duration::ZERO)
            .accel;
        info!(paths = %weir_encoder::detect(accel), "live encoder");
    }
    if let Some(path) = &config.encoder.slate_image {
        let (w, h) = weir_encoder::check_image(path)
            .with_context(|| format!("encoder.slate_image {}", path.display()))?;
        info!(path = %path.display(), width = w, height = h, "slate image");
        if config.ingest.standby_slate {
            // Passed-through streams show it too when their contribution is lost: encoded
            // once, here, into the stand-by clip they loop.
            let encoder =
                config
                    .encoder
                    .settings(&[], config.segment_target(), config.part_target());
            let events = weir_encoder::still_clip(path, &encoder, 2)
                .with_context(|| format!("encoding encoder.slate_image {}", path.display()))?;
            let clip = testsrc::Clip::from_events(events)
                .with_context(|| format!("encoder.slate_image {}", path.display()))?;
            testsrc::Clip::set_standby(clip);
            info!(path = %path.display(), "stand-by slate for passed-through streams");
        }
    }
    let auth = Arc::new(auth::AuthHandle::new(
        auth::Auth::new(&config).context("ingest settings")?,
    ));
    let encoder_metrics = Arc::new(weir_encoder::EncoderMetrics::default());
    let streams = Streams::new(
        registry.clone(),
        settings,
        Arc::clone(&metrics),
        Arc::clone(&encoder_metrics),
        Arc::new(testsrc::BuiltinClips),
    );

    // Manifest plugins: the configured chains are loaded before anything is served.
    let plugin_host =
        weir_plugin_host::Plugins::new(plugins::settings(&config), plugins::tenants(&config))
            .context("starting the plugin host")?;
    let config_dir = config_path
        .as_deref()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    plugins::load_chains(&plugin_host, &config, &config_dir)
        .await
        .context("loading the configured plugins")?;

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let shutdown = move || {
        let mut rx = shutdown_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    // Origin.
    let http = TcpListener::bind(config.server.http)
        .await
        .with_context(|| format!("binding server.http {}", config.server.http))?;
    let http_addr = http.local_addr()?;
    // The ingest listeners are bound before the origin is built, so the dashboard page can
    // show the publish URLs with their real ports; they start accepting further down.
    let rtmp_listener = match config.rtmp.enabled && !edge {
        true => Some(
            TcpListener::bind(config.rtmp.listen)
                .await
                .with_context(|| format!("binding rtmp.listen {}", config.rtmp.listen))?,
        ),
        false => None,
    };
    let srt_socket = match config.srt.enabled && !edge {
        true => Some(
            weir_ingest::bind_srt(config.srt.listen)
                .await
                .with_context(|| format!("binding srt.listen {}", config.srt.listen))?,
        ),
        false => None,
    };
    let rtmp_addr = rtmp_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let srt_addr = srt_socket.as_ref().map(|s| s.local_addr()).transpose()?;
    let keys = weir_ingest::ActiveKeys::new(weir_ingest::RtmpSettings::default().takeover_after);
    let handler: Arc<dyn weir_ingest::PublishHandler> = Arc::new(Publisher {
        auth: Arc::clone(&auth),
        streams: streams.clone(),
        max_streams: config.ingest.max_streams,
    });
    // WHIP: its sessions' media on one UDP port; offers come to the origin's port.
    let whip = match config.whip.enabled && !edge {
        true => Some(
            weir_ingest::Whip::bind(
                config.whip.udp,
                config
                    .whip
                    .settings(config.segment_target(), config.part_target()),
                Arc::clone(&handler),
                keys.clone(),
                whip::transcoders(
                    config.encoder.audio_bitrate,
                    config.encoder.settings(
                        &config.encoder.ladder,
                        config.segment_target(),
                        config.part_target(),
                    ),
                ),
            )
            .await
            .with_context(|| format!("binding whip.udp {}", config.whip.udp))?,
        ),
        false => None,
    };
    let mut origin = weir_origin::Origin::new(
        weir_origin::OriginSettings {
            cors_allow_origin: config.server.cors_allow_origin.clone(),
            assets_dir: config.server.assets_dir.clone(),
            assets: weir_origin::StaticAssets {
                index_html: dashboard_page(
                    &config,
                    rtmp_addr,
                    srt_addr,
                    whip.as_ref().map(weir_ingest::Whip::udp_addr),
                    edge,
                ),
                hls_js: Bytes::from_static(include_bytes!("../assets/hls.min.js")),
            },
            cache: config.cache_settings(),
            // The [server] limits (connections, timeouts, header and API body caps).
            ..config.server.origin_limits()
        },
        registry.clone(),
    )
    .context("origin settings")?;
    // WHEP viewers share WHIP's UDP port.
    let whep = whip.as_ref().map(|w| {
        w.whep(
            registry.clone(),
            whip::opus_encoders(96_000),
            config.whip.max_viewers,
        )
    });
    let tenant_tokens: Vec<(String, String)> = config
        .tenants
        .iter()
        .filter_map(|t| Some((t.name.clone(), t.api_token.clone()?)))
        .collect();
    if config.api.token.is_some() || !tenant_tokens.is_empty() {
        let resolver_config = config.clone();
        origin = origin.with_api(Arc::new(api::Api {
            token: config.api.token.clone(),
            tenant_tokens,
            streams: streams.clone(),
            registry: registry.clone(),
            resolve: {
                let auth = Arc::clone(&auth);
                Arc::new(move |key| stream_name_any(&resolver_config, &auth, key))
            },
            plugins: plugin_host.clone(),
            webrtc: whip.clone().zip(whep.clone()),
        }));
    }
    if let Some(whip) = &whip {
        origin = origin.with_handler(
            "/whip",
            Arc::new(whip::WhipHttp {
                whip: whip.clone(),
                ice_servers: config.whip.ice_servers.clone().into(),
                cors_allow_origin: http::HeaderValue::from_str(&config.server.cors_allow_origin)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("*")),
            }),
        );
    }
    let playback = Arc::new(playback::Playback::new(&config, plugin_host.clone()));
    if let Some(whep) = &whep {
        origin = origin.with_handler(
            "/whep/",
            Arc::new(whip::WhepHttp {
                whep: whep.clone(),
                ice_servers: config.whip.ice_servers.clone().into(),
                playback: Arc::clone(&playback) as Arc<dyn weir_origin::signed::PlaybackAuth>,
                cors_allow_origin: http::HeaderValue::from_str(&config.server.cors_allow_origin)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("*")),
            }),
        );
    }
    let origin = Arc::new(
        origin
            .with_playback_auth(Arc::clone(&playback) as Arc<dyn weir_origin::signed::PlaybackAuth>)
            .with_manifest_filter(Arc::new(plugins::Filter(plugin_host.clone())))
            .with_readiness(Arc::clone(&ready) as Arc<dyn weir_origin::Readiness>)
            .with_metrics(Arc::new(AllMetrics {
                pipeline: Arc::clone(&metrics),
                encoder: Arc::clone(&encoder_metrics),
                webrtc: whip.as_ref().map(weir_ingest::Whip::metrics),
                plugins: plugin_host.clone(),
            })),
    );
    let mut tasks = tokio::task::JoinSet::new();
    let o = Arc::clone(&origin);
    let stop = shutdown();
    tasks.spawn(async move { o.serve(http, None, stop).await.context("http listener") });
    let mut https_addr = None;
    let mut tls_reloader = None;
    if let (Some(addr), Some(cert), Some(key)) = (
        config.server.https,
        &config.server.tls_cert,
        &config.server.tls_key,
    ) {
        let (reloader, tls) = weir_origin::ReloadableTls::load(cert, key)
            .context("loading server.tls_cert/tls_key")?;
        tls_reloader = Some(Arc::new(reloader));
        let l = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding server.https {addr}"))?;
        https_addr = Some(l.local_addr()?);
        let o = Arc::clone(&origin);
        let stop = shutdown();
        tasks.spawn(async move { o.serve(l, Some(tls), stop).await.context("https listener") });
    }

    if let Some(path) = config_path.clone() {
        tokio::spawn(reload_on_sighup(Reload {
            path,
            plugins: plugin_host.clone(),
            auth: Arc::clone(&auth),
            playback,
            tls: tls_reloader,
        }));
    }

    // Ingest: RTMP, SRT and WHIP share one key registry, so one key is one stream on any.
    if let Some(l) = rtmp_listener {
        let rtmp_settings = config.rtmp.settings(config.ingest.max_connections_per_ip);
        let (handler, keys, stop) = (Arc::clone(&handler), keys.clone(), shutdown());
        tasks.spawn(async move {
            weir_ingest::serve_rtmp_with_keys(l, rtmp_settings, handler, keys, stop).await;
            Ok(())
        });
    }
    if let Some(socket) = srt_socket {
        let srt_settings = config
            .srt
            .settings(&config.rtmp.app, config.ingest.max_connections_per_ip);
        let (handler, keys, stop) = (Arc::clone(&handler), keys.clone(), shutdown());
        tasks.spawn(async move {
            weir_ingest::serve_srt(socket, srt_settings, handler, keys, stop)
                .await
                .context("srt listener")
        });
    }

    // Built-in test stream.
    if config.test_source.enabled && !edge {
        match config.test_source.kind {
            TestSourceKind::Pattern => {
                let ts = &config.test_source;
                let encoder = config.encoder.settings(
                    &config.encoder.ladder,
                    config.segment_target(),
                    config.part_target(),
                );
                streams.start_test_pattern(&ts.name, Arc::new(encoder), ts.width, ts.height);
            }
            TestSourceKind::Clip => {
                let clip = testsrc::Clip::builtin()?;
                let tx = streams.attach(&config.test_source.name);
                tokio::spawn(testsrc::run(clip, tx));
            }
        }
    }

    // Chaos testing: WEIR_FAILPOINT_LISTENER_PANIC_MS=N panics a task beside the listeners
    // after N ms, to show that a dead listener ends the process with a non-zero status (for
    // its supervisor to restart) instead of leaving it half-serving.
    if let Some(ms) = std::env::var("WEIR_FAILPOINT_LISTENER_PANIC_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        warn!(ms, "failpoint WEIR_FAILPOINT_LISTENER_PANIC_MS is set");
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            panic!("failpoint WEIR_FAILPOINT_LISTENER_PANIC_MS");
        });
    }

    print_banner(
        &config,
        http_addr,
        https_addr,
        rtmp_addr,
        srt_addr,
        whip.as_ref().map(weir_ingest::Whip::udp_addr),
    );
    ready.listening();

    let grace = Duration::from_secs(config.server.shutdown_grace_s);
    let outcome = tokio::select! {
        signal = stop_signal() => {
            let signal = signal.context("listening for SIGTERM/SIGINT")?;
            ready.draining();
            info!(signal, grace = ?grace, "shutting down: no new publishers or connections; in-flight requests finish");
            Ok(())
        }
        Some(r) = tasks.join_next() => match r {
            Ok(Ok(())) => {
                error!("a listener stopped by itself; shutting down");
                Err(anyhow::anyhow!("a listener stopped unexpectedly"))
            }
            Ok(Err(e)) => {
                error!(error = %format!("{e:#}"), "a listener failed; shutting down");
                Err(e)
            }
            Err(e) => {
                error!(error = %e, "a listener task panicked; shutting down");
                Err(anyhow::anyhow!("a listener task panicked: {e}"))
            }
        }
    };
    if config.server.end_streams_on_shutdown {
        // Stopped for good: every playlist gets EXT-X-ENDLIST while the listeners still
        // serve it, so players and CDNs see the end instead of a stalled stream.
        streams.end_all();
        tokio::time::sleep(ENDLIST_PUBLISH_WAIT.min(grace)).await;
        info!("every stream ended (EXT-X-ENDLIST)");
    }
    let _ = shutdown_tx.send(true);
    if tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!(grace = ?grace, "shutdown grace period over; closing what is left");
    }
    outcome
}

/// The dashboard page (`/`) with what it cannot learn from the browser: the ingest ports
/// and the RTMP application, for its publish URLs (nothing secret).
fn dashboard_page(
    config: &Config,
    rtmp: Option<SocketAddr>,
    srt: Option<SocketAddr>,
    whip: Option<SocketAddr>,
    edge: bool,
) -> Bytes {
    let page = include_str!("../assets/index.html");
    let info = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "app": config.rtmp.app,
        "rtmp_port": rtmp.map(|a| a.port()),
        "srt_port": srt.map(|a| a.port()),
        "srt_passphrase": config.srt.passphrase.is_some(),
        "whip": whip.is_some(),
        "whip_udp_port": whip.map(|a| a.port()),
        "edge": edge,
        "api": config.api.token.is_some() || config.tenants.iter().any(|t| t.api_token.is_some()),
        "test_stream": (config.test_source.enabled && !edge).then(|| config.test_source.name.clone()),
    });
    // JSON in a <script> element: `<` is escaped so no value can close the element.
    let info = info.to_string().replace('<', "\\u003c");
    Bytes::from(page.replacen("/*weir-info*/null", &info, 1))
}

/// With `server.end_streams_on_shutdown`, how long the ended playlists are served before
/// the listeners stop (a blocked reload returns at once on the final playlist).
const ENDLIST_PUBLISH_WAIT: Duration = Duration::from_secs(1);

/// Completes on SIGTERM (Kubernetes, systemd) or SIGINT (Ctrl-C), naming which.
async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

/// Raises the open-file limit to its hard limit: every viewer connection, publisher and
/// blocked playlist request holds a descriptor, and the usual soft limit is 1024.
fn raise_nofile_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => info!(limit = n, "open-file limit (RLIMIT_NOFILE)"),
        Err(e) => warn!(error = %e, "could not raise the open-file limit (RLIMIT_NOFILE)"),
    }
}

/// Says so loudly when anyone on the network may publish.
fn warn_if_ingest_is_open(config: &Config) {
    if !config.allow_any_key() {
        return;
    }
    let public = |on: bool, a: SocketAddr| on && !a.ip().is_loopback();
    for (proto, on, addr) in [
        ("rtmp", config.rtmp.enabled, config.rtmp.listen),
        ("srt", config.srt.enabled, config.srt.listen),
        // WHIP publishes through the HTTP listener.
        ("whip", config.whip.enabled, config.server.http),
    ] {
        if public(on, addr) {
            warn!(
                protocol = proto,
                %addr,
                "ingest is open: any stream key may publish from the network \
                 (ingest.allow_any_key). Configure ingest.keys or ingest.on_publish, or \
                 listen on 127.0.0.1; see docs/SECURITY.md"
            );
        }
    }
}

/// What SIGHUP re-reads: publish keys and the callback, tenants and plugin chains, and the
/// TLS certificate (from the same files). Listeners and other settings need a restart.
struct Reload {
    path: PathBuf,
    plugins: weir_plugin_host::Plugins,
    auth: Arc<auth::AuthHandle>,
    playback: Arc<playback::Playback>,
    tls: Option<Arc<weir_origin::ReloadableTls>>,
}

/// SIGHUP: everything is read and checked first, then everything is swapped; a bad file,
/// certificate or plugin is logged, and what runs stays as it was.
async fn reload_on_sighup(reload: Reload) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot listen for SIGHUP; config reload is off");
            return;
        }
    };
    while hup.recv().await.is_some() {
        info!(path = %reload.path.display(), "SIGHUP: reloading keys, tenants, playback keys, plugins and the TLS certificate");
        match reload.run().await {
            Ok(()) => info!("reload done"),
            Err(e) => error!(error = %format!("{e:#}"), "reload failed; nothing changed"),
        }
    }
}

impl Reload {
    async fn run(&self) -> anyhow::Result<()> {
        let config = Config::load(&self.path)?;
        config.validate()?;
        let auth = auth::Auth::new(&config).context("ingest settings")?;
        let cert = match &self.tls {
            Some(tls) => Some(tls.prepare().context("server.tls_cert/tls_key")?),
            None => None,
        };
        let dir = self.path.parent().map(PathBuf::from).unwrap_or_default();
        // Compiles and inits every changed plugin of every tenant, then swaps every chain,
        // or fails having changed nothing; what follows cannot fail.
        plugins::load_chains(&self.plugins, &config, &dir).await?;
        self.auth.set(auth);
        self.playback.set(&config);
        if let (Some(tls), Some(cert)) = (&self.tls, cert) {
            tls.install(cert);
        }
        Ok(())
    }
}

/// The stream a cue API request's key names: a publish key's stream, or the test source.
fn stream_name_any(config: &Config, auth: &auth::AuthHandle, key: &StreamKey) -> Option<String> {
    auth.get().stream_for(key).ok().or_else(|| {
        (config.test_source.enabled && key.expose() == config.test_source.name)
            .then(|| config.test_source.name.clone())
    })
}

fn print_banner(
    config: &Config,
    http: SocketAddr,
    https: Option<SocketAddr>,
    rtmp: Option<SocketAddr>,
    srt: Option<SocketAddr>,
    whip: Option<SocketAddr>,
) {
    let host = |a: SocketAddr| {
        if a.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        } else {
            a
        }
    };
    // Machine-readable lines first (the tests read them), then the human ones.
    println!("listening http={http}");
    if let Some(a) = https {
        println!("listening https={a}");
    }
    if let Some(a) = rtmp {
        println!("listening rtmp={a}");
    }
    if let Some(a) = srt {
        println!("listening srt={a}");
    }
    if let Some(a) = whip {
        println!("listening whip-udp={a}");
    }
    println!();
    println!("weir {} is up", env!("CARGO_PKG_VERSION"));
    println!("  player:      http://{}/", host(http));
    if config.test_source.enabled {
        println!(
            "  test stream: http://{}/live/{}/master.m3u8",
            host(http),
            config.test_source.name
        );
    }
    if let Some(a) = https {
        println!("  over TLS:    https://{}/", host(a));
    }
    if let Some(a) = rtmp {
        println!(
            "  publish to:  rtmp://{}/{}/<stream-key>",
            host(a),
            config.rtmp.app
        );
        println!(
            "               then play http://{}/live/<stream-key>/master.m3u8",
            host(http)
        );
    }
    if let Some(a) = srt {
        println!(
            "  or over SRT: srt://{}?streamid=#!::r={}/<stream-key>,m=publish (MPEG-TS)",
            host(a),
            config.rtmp.app
        );
    }
    if let Some(a) = whip {
        println!(
            "  or WHIP:     http://{}/whip/<stream-key> (WebRTC media on udp {})",
            host(http),
            a.port()
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}
