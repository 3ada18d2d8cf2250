//! Health: what `/healthz` and `/readyz` report, set by the stages that know.
//!
//! Every change of a flag is mirrored into the `bar_ingest_database_up`, `bar_ingest_ready` and
//! `bar_ingest_claims_paused` gauges, so that Prometheus sees what `/readyz` says.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness flags. Cheap to read and write from any task.
#[derive(Debug, Default)]
pub struct Health {
    /// The last database request succeeded (false while writes are being retried).
    database_up: AtomicBool,
    /// The inbox watcher is running and has finished its first scan.
    watcher_ready: AtomicBool,
    /// Free space on the state root is below the floor: no new file is claimed.
    disk_space_low: AtomicBool,
    /// The cluster answers but refuses writes for want of live replicas (`Unavailable` at the
    /// configured consistency), until a write is taken again. The database probe does not
    /// clear it, since a node that answers a probe may still lack its replicas. A flag, so that
    /// every taken write clears it without a lock.
    replicas_unavailable: AtomicBool,
    /// What the cluster said in its last `Unavailable` answer, for `/readyz`.
    replicas_said: Mutex<String>,
}

/// The `/readyz` reason while free space is below the floor (its first word is the reason code
/// that the claims-paused gauge carries too).
pub(crate) const DISK_SPACE_LOW: &str = "disk_space_low: free space on the state root is below \
     retention.min_free_bytes / min_free_percent; no new file is claimed";

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

    /// Records whether free space is below the floor; true when that changed.
    pub(crate) fn set_disk_space_low(&self, low: bool) -> bool {
        let changed = self.disk_space_low.swap(low, Ordering::Relaxed) != low;
        if changed {
            super::metrics::claims_paused_for_space(low);
            super::metrics::ready(self.ready());
        }
        changed
    }

    /// Free space is below the floor: claiming is paused.
    pub(crate) fn disk_space_low(&self) -> bool {
        self.disk_space_low.load(Ordering::Relaxed)
    }

    /// Records that writes are refused for want of replicas (`Some(what the cluster said)`), or
    /// that one was taken again (`None`).
    pub(crate) fn set_replicas_unavailable(&self, said: Option<String>) {
        let missing = said.is_some();
        if let Some(said) = said {
            *self.replicas_said.lock().unwrap_or_else(|e| e.into_inner()) = said;
        }
        if self.replicas_unavailable.swap(missing, Ordering::Relaxed) != missing {
            super::metrics::ready(self.ready());
        }
    }

    fn replicas_unavailable(&self) -> bool {
        self.replicas_unavailable.load(Ordering::Relaxed)
    }

    /// Ready to take files: database reachable with the replicas writes need, watcher running,
    /// enough free space.
    pub fn ready(&self) -> bool {
        self.database_up()
            && !self.replicas_unavailable()
            && self.watcher_ready.load(Ordering::Relaxed)
            && !self.disk_space_low()
    }

    /// Why the service is not ready, one short phrase per cause (empty when ready): the body of
    /// a 503 from `/readyz`.
    pub(crate) fn not_ready_reasons(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if !self.database_up() {
            reasons.push("database unreachable".to_owned());
        }
        if self.replicas_unavailable() {
            let said = self.replicas_said.lock().unwrap_or_else(|e| e.into_inner());
            reasons.push(format!(
                "replicas_unavailable: writes are refused, too few replicas are alive for the \
                 configured consistency; retrying until a node returns ({said})"
            ));
        }
        if !self.watcher_ready.load(Ordering::Relaxed) {
            reasons.push("inbox watcher not running (starting, or stopping)".to_owned());
        }
        if self.disk_space_low() {
            reasons.push(DISK_SPACE_LOW.to_owned());
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
