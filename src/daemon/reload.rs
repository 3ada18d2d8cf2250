//! Reload: applies a configuration read again while the daemon runs (the binary reads it on
//! SIGHUP). The live keys ([`crate::config::reload::LIVE_KEYS`]) take effect from the next
//! batch; every other changed key is named in a warning, as needing a restart, at every reload
//! until then; a file that does not validate is refused with its error, and nothing changes.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::reload::Changes;
use crate::config::{ConfigError, Settings};
use crate::ingest::Loader;

/// A request to apply the configuration read again.
#[derive(Debug)]
pub struct Reload {
    /// The file read and validated again, or why it could not be.
    pub settings: Result<Settings, ConfigError>,
    /// Told what came of it, if someone waits (the daemon logs it either way).
    pub done: Option<oneshot::Sender<Result<Changes, ConfigError>>>,
}

impl Reload {
    /// A request nobody waits on (the binary's, on SIGHUP).
    pub fn new(settings: Result<Settings, ConfigError>) -> Self {
        Self {
            settings,
            done: None,
        }
    }
}

/// Applies reload requests until the channel closes or `end` is cancelled. `started` are the
/// settings the daemon runs with.
pub(super) async fn serve(
    mut requests: mpsc::Receiver<Reload>,
    started: Settings,
    loader: Arc<Loader>,
    end: CancellationToken,
) {
    let mut last = started.clone();
    loop {
        let request = tokio::select! {
            r = requests.recv() => match r { Some(r) => r, None => return },
            _ = end.cancelled() => return,
        };
        let outcome = match request.settings {
            Ok(new) => {
                let changes = Changes::between(&started, &last, &new);
                loader.apply_live(&new.ingest);
                report(&changes);
                last = new;
                Ok(changes)
            }
            Err(e) => {
                error!(error = %e, "reload refused: the configuration is not valid; the settings in force stay");
                Err(e)
            }
        };
        if let Some(done) = request.done {
            let _ = done.send(outcome);
        }
    }
}

/// Logs what a reload applied and what waits for a restart.
fn report(changes: &Changes) {
    info!(
        applied = ?changes.applied,
        need_restart = ?changes.need_restart,
        "configuration reloaded"
    );
    for key in &changes.need_restart {
        warn!(
            key = %key,
            "`{key}` differs from the value the daemon started with; it takes effect only at the next start (restart the daemon)"
        );
    }
}
