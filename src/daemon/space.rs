//! The free-space floor: free space on the state root (statvfs), checked every few seconds and
//! before each claim. Below the floor no new file is claimed (files being loaded finish),
//! `/readyz` answers 503 and a gauge says so; when space comes back, claiming resumes by itself.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::blocking;
use crate::config::RetentionConfig;
use crate::names::Shown;
use crate::telemetry::health::Health;
use crate::telemetry::metrics;

/// Free and total bytes of one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Bytes an unprivileged user may still allocate (`f_bavail`: root's reserve excluded).
    pub free: u64,
    /// Size of the filesystem.
    pub total: u64,
}

/// Free space of the filesystem holding `path`.
pub(crate) fn usage(path: &Path) -> io::Result<Usage> {
    let s = rustix::fs::statvfs(path)?;
    Ok(Usage {
        free: s.f_bavail.saturating_mul(s.f_frsize),
        total: s.f_blocks.saturating_mul(s.f_frsize),
    })
}

/// Watches free space on the state root and pauses claiming below the floor.
#[derive(Debug)]
pub(crate) struct SpaceFloor {
    /// The state root: it shares the inbox's filesystem (checked at start).
    root: PathBuf,
    /// `min_free_bytes` and `min_free_percent`.
    config: RetentionConfig,
    /// Where the paused state is kept (and `/readyz` reads it).
    health: Arc<Health>,
    /// A failing statvfs was logged: log it once, not every few seconds.
    failure_logged: AtomicBool,
}

impl SpaceFloor {
    pub(crate) fn new(root: &Path, config: &RetentionConfig, health: Arc<Health>) -> Self {
        Self {
            root: root.to_owned(),
            config: config.clone(),
            health,
            failure_logged: AtomicBool::new(false),
        }
    }

    /// Claiming is paused (as of the last check).
    pub(crate) fn paused(&self) -> bool {
        self.health.disk_space_low()
    }

    /// Checks free space now, off the runtime, and records it. True when a file may be
    /// claimed. A check that fails does not pause claiming (it is logged once).
    pub(crate) async fn check(&self) -> bool {
        let root = self.root.clone();
        match blocking::fs(move || usage(&root)).await {
            Ok(u) => {
                self.failure_logged.store(false, Ordering::Relaxed);
                self.record(u);
            }
            Err(e) => {
                if !self.failure_logged.swap(true, Ordering::Relaxed) {
                    warn!(state_root = %Shown(&self.root), error = %e,
                        "cannot read the free space of the state root; the free-space floor is not enforced until it can");
                }
            }
        }
        !self.paused()
    }

    /// Sets the gauges and the paused state; logs a change of state with the numbers.
    fn record(&self, u: Usage) {
        let floor = self.config.floor_bytes(u.total);
        metrics::free_space(u.free, floor);
        let low = u.free < floor;
        if !self.health.set_disk_space_low(low) {
            return;
        }
        let root = Shown(&self.root);
        if low {
            warn!(free_bytes = u.free, floor_bytes = floor, state_root = %root,
                "free space below the floor (retention.min_free_bytes / min_free_percent): no new \
                 file is claimed until space is freed; files being loaded finish");
        } else {
            info!(free_bytes = u.free, floor_bytes = floor, state_root = %root,
                "free space back above the floor: claiming resumes");
        }
    }
}

/// Checks free space every `interval` until `stop`.
pub(crate) async fn monitor(floor: Arc<SpaceFloor>, interval: Duration, stop: CancellationToken) {
    loop {
        floor.check().await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floor(min_free_bytes: u64) -> (SpaceFloor, Arc<Health>) {
        let health = Arc::new(Health::default());
        let config = RetentionConfig {
            min_free_bytes,
            ..RetentionConfig::default()
        };
        (
            SpaceFloor::new(Path::new("/"), &config, health.clone()),
            health,
        )
    }

    #[test]
    fn statvfs_reports_some_free_space_of_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let u = usage(dir.path()).unwrap();
        assert!(u.total > 0 && u.free <= u.total, "{u:?}");
    }

    #[test]
    fn below_the_floor_pauses_and_readiness_says_why_then_resumes() {
        let (floor, health) = floor(1000);
        floor.record(Usage {
            free: 999,
            total: 10_000,
        });
        assert!(floor.paused());
        assert!(
            health
                .not_ready_reasons()
                .iter()
                .any(|r| r.starts_with("disk_space_low"))
        );
        floor.record(Usage {
            free: 1000,
            total: 10_000,
        });
        assert!(!floor.paused());
        assert!(
            !health
                .not_ready_reasons()
                .iter()
                .any(|r| r.starts_with("disk_space_low"))
        );
    }

    #[tokio::test]
    async fn check_reads_the_real_filesystem() {
        // No filesystem has u64::MAX bytes free: paused. A floor of 0 never pauses.
        let (high, _) = floor(u64::MAX);
        assert!(!high.check().await && high.paused());
        let (zero, _) = floor(0);
        assert!(zero.check().await && !zero.paused());
    }
}
