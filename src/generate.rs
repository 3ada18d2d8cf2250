//! A deterministic generator of realistic bar files, for tests and benchmarks. (stub: being written)

/// Arguments of `bar-ingest generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {}

/// Runs `bar-ingest generate`.
pub fn cli_main(_args: GenerateArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("generate is not built yet")
}
