//! `weir streams …`: a client for the operator API's stream calls on a running weir (the
//! admin token, or a tenant's for its own streams).

use anyhow::bail;
use bytes::Bytes;
use http::Method;

use crate::plugin_cli::ApiClient;

#[derive(clap::Args, Debug)]
pub struct StreamsArgs {
    #[command(subcommand)]
    pub command: StreamsCommand,
    #[command(flatten)]
    pub client: ApiClient,
}

#[derive(clap::Subcommand, Debug)]
pub enum StreamsCommand {
    /// The live streams (a tenant's token lists its own).
    List,
    /// End a stream's publisher session; the stream goes on on the stand-by slate.
    Kick {
        /// The stream key the publisher used.
        key: String,
    },
    /// Splice at the live edge: `--out SECONDS` starts a break, `--in` ends it.
    Cue {
        key: String,
        #[arg(long, conflicts_with = "back_in")]
        out: Option<f64>,
        #[arg(long = "in")]
        back_in: bool,
        /// The splice event id (pairs an out with its in).
        #[arg(long, default_value_t = 1)]
        id: u32,
    },
}

pub async fn run(args: StreamsArgs) -> anyhow::Result<()> {
    let (method, path, body) = match &args.command {
        StreamsCommand::List => (Method::GET, "/api/v1/streams".to_owned(), String::new()),
        StreamsCommand::Kick { key } => (
            Method::POST,
            format!("/api/v1/streams/{key}/kick"),
            String::new(),
        ),
        StreamsCommand::Cue {
            key,
            out,
            back_in,
            id,
        } => {
            let body = match (out, back_in) {
                (Some(d), false) => serde_json::json!({"type": "out", "duration": d, "id": id}),
                (None, true) => serde_json::json!({"type": "in", "id": id}),
                _ => bail!("give --out SECONDS or --in"),
            };
            (
                Method::POST,
                format!("/api/v1/streams/{key}/cues"),
                body.to_string(),
            )
        }
    };
    args.client
        .run(method, &path, Bytes::from(body), None)
        .await
}
