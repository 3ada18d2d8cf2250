//! The `bar-ingest` binary: parse the command line, start logging, turn signals into the
//! daemon's shutdown (SIGTERM, SIGINT) and reloads (SIGHUP), dispatch, and map errors to exit
//! codes.

use std::path::Path;
use std::process::ExitCode;

mod check;
mod cli;
mod coverage;
mod exit;
mod fetch;
mod generated;
mod load;
mod migrate;

use anyhow::Context;
use bar_ingest::config::{ConfigError, Settings};
use bar_ingest::store::{self, Schema};
use bar_ingest::{daemon, telemetry};
use clap::Parser;
use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging(cli.log_format.into());
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bar-ingest: error: {e:#}");
            exit::code(exit::CANNOT_RUN)
        }
    }
}

fn load_settings(
    file: Option<&Path>,
    contact_points: Option<&str>,
) -> Result<Settings, ConfigError> {
    match file {
        Some(f) => Settings::load(f, contact_points),
        None => Settings::defaults(contact_points),
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let points = cli.contact_points.as_deref();
    match cli.command {
        Command::CheckConfig { file, connect } => {
            let Some(file) = file.or(cli.config) else {
                anyhow::bail!("check-config needs a file: bar-ingest check-config FILE");
            };
            check::check_config(&file, points, connect)
        }
        Command::Schema { loader, reader } => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            check::print_schema(&settings, loader.as_deref(), reader.as_deref());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => generated::man_page(&mut std::io::stdout().lock()),
        Command::Completions { shell } => {
            generated::completions(shell, &mut std::io::stdout().lock())
        }
        Command::InitSchema => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            block_on(async {
                let session = store::connect(&settings).await?;
                let db = &settings.database;
                let schema = Schema::from_config(db);
                let user = db.user();
                store::ensure_schema(&session, &schema, true, user).await?;
                println!("schema ready: {} and {}", schema.bars(), schema.history());
                Ok::<_, anyhow::Error>(())
            })??;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch(args) => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            block_on(fetch::run(settings, args))?
        }
        Command::Load(args) => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            block_on(load::run(settings, args))?
        }
        Command::Migrate(args) => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            block_on(migrate::run(settings, args))?
        }
        Command::Coverage(args) => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            block_on(coverage::run(settings, args))?
        }
        Command::Run => {
            let settings = load_settings(cli.config.as_deref(), points)?;
            let file = cli.config.clone();
            let points = points.map(str::to_owned);
            block_on(async move {
                let stop = stop_signals().context("cannot listen for stop signals")?;
                let reloads = reload_signals(file, points).context("cannot listen for SIGHUP")?;
                daemon::run(settings, stop, reloads)
                    .await
                    .map_err(anyhow::Error::from)
            })??;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reload requests queued for the daemon before it takes them (while it waits for the
/// database, say); SIGHUPs beyond wait for room.
const RELOADS_QUEUED: usize = 4;

/// Turns each SIGHUP into a reload request: the config file (`file`, or the built-in defaults)
/// read and validated again, with the same contact-point override. Call inside the runtime:
/// the handler is installed at once (before, SIGHUP would end the process).
fn reload_signals(
    file: Option<std::path::PathBuf>,
    points: Option<String>,
) -> std::io::Result<tokio::sync::mpsc::Receiver<daemon::Reload>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = tokio::sync::mpsc::channel(RELOADS_QUEUED);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            let (file, points) = (file.clone(), points.clone());
            tracing::info!("SIGHUP received: reading the configuration again");
            let read = tokio::task::spawn_blocking(move || {
                load_settings(file.as_deref(), points.as_deref())
            })
            .await;
            let Ok(settings) = read else {
                tracing::error!("reading the configuration failed (a bug); nothing changes");
                continue;
            };
            if tx.send(daemon::Reload::new(settings)).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Resolves at the first SIGTERM or SIGINT; a second one exits the process at once with
/// 128 + the signal number (nothing is lost: claimed files resume at the next start, and every
/// write is idempotent). Call inside the runtime: the handlers are installed at once.
pub(crate) fn stop_signals()
-> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let first = next_stop_signal(&mut term, &mut int).await;
        tracing::info!(signal = first, "stop signal received");
        tokio::spawn(async move {
            let second = next_stop_signal(&mut term, &mut int).await;
            tracing::warn!(signal = second, "second stop signal: exiting at once");
            std::process::exit(exit::SIGNAL_BASE + second);
        });
    })
}

/// The number of the next SIGTERM or SIGINT received.
async fn next_stop_signal(
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
) -> i32 {
    tokio::select! {
        _ = term.recv() => SIGTERM,
        _ = int.recv() => SIGINT,
    }
}

const SIGTERM: i32 = 15;
const SIGINT: i32 = 2;

/// How long blocking work (a file read on a hung NFS mount, say) may delay the exit.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `future` on a multi-threaded runtime, then shuts the runtime down without waiting
/// forever for blocking tasks.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> std::io::Result<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let out = rt.block_on(future);
    rt.shutdown_timeout(RUNTIME_SHUTDOWN);
    Ok(out)
}
