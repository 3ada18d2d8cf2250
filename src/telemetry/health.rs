//! Health: what `/healthz` and `/readyz` report, set by the stages that know.
//!
//! Every change of a flag is mirrored into the `bar_ingest_database_up` and `bar_ingest_ready`
//! gauges, so that Prometheus sees what `/readyz` says.

use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flags. Cheap to read and write from any task.
#[derive(Debug, Default)]
pub struct Health {
    /// The last database request succeeded (false while writes are being retried).
    database_up: AtomicBool,
    /// The inbox watcher is running and has finished its first scan.
    watcher_ready: AtomicBool,
}

impl Health {
    pub(crate) fn set_database_up(&self, up: bool) {
        if self.database_up.swap(up, Ordering::Relaxed) != up {
            super::metrics::database_up(up);
            super::metrics::ready(self.ready());
        }
    }

    pub(crate) fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Relaxed)
    }

    pub(crate) fn set_watcher_ready(&self, ready: bool) {
        if self.watcher_ready.swap(ready, Ordering::Relaxed) != ready {
            super::metrics::ready(self.ready());
        }
    }

    /// Ready to take files: database reachable and watcher running.
    pub fn ready(&self) -> bool {
        self.database_up() && self.watcher_ready.load(Ordering::Relaxed)
    }

    /// Why the service is not ready, one short phrase per cause (empty when ready): the body of
    /// a 503 from `/readyz`.
    pub(crate) fn not_ready_reasons(&self) -> Vec<&'static str> {
        let mut reasons = Vec::new();
        if !self.database_up() {
            reasons.push("database unreachable");
        }
        if !self.watcher_ready.load(Ordering::Relaxed) {
            reasons.push("inbox watcher not running (starting, or stopping)");
        }
        reasons
    }
}

/// Checks the database every `interval` with a trivial query and records the answer, so that
/// readiness is true even when no file is being written. Runs until `cancel`.
pub(crate) async fn probe_database(
    session: std::sync::Arc<scylla::client::session::Session>,
    health: std::sync::Arc<Health>,
    interval: std::time::Duration,
    cancel: tokio_util::sync::CancellationToken,
) {
    loop {
        let ok = tokio::time::timeout(
            interval,
            session.query_unpaged("SELECT release_version FROM system.local", ()),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        health.set_database_up(ok);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
