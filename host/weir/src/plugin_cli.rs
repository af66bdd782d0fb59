//! `weir plugin …`: a client for the plugin admin API of a running weir.

use std::path::PathBuf;

use anyhow::{bail, Context};
use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::api::CONFIG_HEADER;

#[derive(clap::Args, Debug)]
pub struct PluginArgs {
    #[command(subcommand)]
    pub command: PluginCommand,
    #[command(flatten)]
    pub client: ApiClient,
}

/// Where the operator API is and the token for it: shared by `weir plugin` and
/// `weir streams`.
#[derive(clap::Args, Debug)]
pub struct ApiClient {
    /// The weir server's HTTP address.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        env = "WEIR_SERVER"
    )]
    pub server: String,
    /// The operator API's bearer token (`api.token`, or a tenant's `api_token`).
    #[arg(long, global = true, env = "WEIR_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

impl ApiClient {
    /// Sends one API call, prints the answer, and fails on a non-2xx status.
    pub async fn run(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
        config: Option<String>,
    ) -> anyhow::Result<()> {
        let Some(token) = self.token.as_deref() else {
            bail!("give the API token with --token or WEIR_API_TOKEN");
        };
        let (status, text) = call(&self.server, token, method, path, body, config).await?;
        print!("{text}");
        if !text.ends_with('\n') {
            println!();
        }
        if !status.is_success() {
            bail!("server answered {status}");
        }
        Ok(())
    }
}

#[derive(clap::Subcommand, Debug)]
pub enum PluginCommand {
    /// Compile, check and init a plugin on the server, then swap it into the tenant's chain.
    Push {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// The component (.wasm).
        file: PathBuf,
        /// The plugin's config (usually JSON), passed to its `init`.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show a tenant's chain.
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Take a plugin out of a tenant's chain.
    Remove {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
}

pub async fn run(args: PluginArgs) -> anyhow::Result<()> {
    let (method, path, body, config) = match &args.command {
        PluginCommand::Push {
            tenant,
            name,
            file,
            config,
        } => {
            let component =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let config = match config {
                Some(c) => Some(
                    std::fs::read_to_string(c)
                        .with_context(|| format!("reading {}", c.display()))?,
                ),
                None => None,
            };
            (
                Method::PUT,
                format!("/api/v1/tenants/{tenant}/plugins/{name}"),
                Bytes::from(component),
                config,
            )
        }
        PluginCommand::List { tenant } => (
            Method::GET,
            format!("/api/v1/tenants/{tenant}/plugins"),
            Bytes::new(),
            None,
        ),
        PluginCommand::Remove { tenant, name } => (
            Method::DELETE,
            format!("/api/v1/tenants/{tenant}/plugins/{name}"),
            Bytes::new(),
            None,
        ),
    };
    args.client.run(method, &path, body, config).await
}

async fn call(
    server: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Bytes,
    config: Option<String>,
) -> anyhow::Result<(StatusCode, String)> {
    let uri: Uri = server
        .parse()
        .with_context(|| format!("--server {server:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--server must be an http:// URL (the admin API is for internal networks)");
    }
    let authority = uri.authority().context("--server has no host")?.clone();
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host(), port))
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    tokio::spawn(conn);
    let content_type = if config.is_some() || method == Method::PUT {
        "application/wasm"
    } else {
        "application/json"
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, authority.as_str())
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, content_type);
    if let Some(c) = config {
        request = request.header(
            CONFIG_HEADER,
            base64::engine::general_purpose::STANDARD.encode(c),
        );
    }
    let response = sender
        .send_request(request.body(Full::new(body))?)
        .await
        .context("sending the request")?;
    let status = response.status();
    let text = response
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}
