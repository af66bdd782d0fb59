//! `weir check URL`: follows an LL-HLS stream and reports the rules it breaks (weir-check).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// A multivariant or media playlist URL (http:// or https://).
    pub url: String,
    /// How long to follow the stream, in seconds.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Accept any TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file instead of the system's.
    #[arg(long)]
    pub ca: Option<PathBuf>,
}

/// Runs the check; the exit status is non-zero on any error finding.
pub async fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut settings = weir_check::Settings::new(args.url);
    settings.duration = Duration::from_secs(args.duration);
    settings.insecure = args.insecure;
    settings.ca = args.ca;
    let report = weir_check::check(&settings).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
