//! The daemon (`run`): connects, creates the schema, and runs until SIGTERM or SIGINT.

use tracing::info;

use crate::config::Settings;
use crate::store::{self, Schema};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot create {path}: {source}")]
    Folder {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen for signals: {0}")]
    Signal(std::io::Error),
}

/// Runs the daemon until a stop signal arrives.
pub async fn run(settings: Settings) -> Result<(), DaemonError> {
    for dir in [&settings.paths.inbox, &settings.paths.state_root] {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Folder {
            path: dir.clone(),
            source,
        })?;
    }
    let session = store::connect(&settings).await?;
    let schema = Schema::from_config(&settings.database);
    store::init_schema(&session, &schema).await?;
    store::BarStatements::prepare(&session, &schema).await?;
    info!(
        contact_points = %settings.contact_points.join(","),
        keyspace = %schema.keyspace,
        inbox = %settings.paths.inbox.display(),
        "connected, schema ready; waiting for a stop signal (file loading is not built yet)"
    );
    wait_for_stop().await.map_err(DaemonError::Signal)?;
    info!("stop signal received; exiting");
    Ok(())
}

async fn wait_for_stop() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
