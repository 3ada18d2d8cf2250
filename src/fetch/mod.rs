//! The read side: bars of a symbol over a time range, every month bucket queried concurrently.
//! (stub: being written)

use crate::config::Settings;

/// Arguments of `bar-ingest fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {}

/// Runs `bar-ingest fetch`; returns the process exit code.
pub async fn cli_main(
    _settings: Settings,
    _args: FetchArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("fetch is not built yet")
}
