//! The backlog gauges: files and bytes waiting in the inbox and in processing/, refreshed
//! periodically off the runtime.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::blocking;
use crate::pipeline::claim::Folders;
use crate::pipeline::watch;
use crate::telemetry::metrics;

/// How often the backlog gauges are refreshed.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);

/// Refreshes the backlog gauges until `stop`.
pub(crate) async fn report(folders: Folders, stop: CancellationToken) {
    let dirs = [folders.inbox, folders.processing];
    loop {
        let dirs = dirs.clone();
        if let Ok((files, bytes)) = blocking::fs(move || Ok(count(&dirs))).await {
            metrics::backlog(files, bytes);
        }
        tokio::select! {
            _ = tokio::time::sleep(BACKLOG_INTERVAL) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// Candidate files and their bytes in `dirs` (unreadable folders count nothing).
fn count(dirs: &[PathBuf]) -> (u64, u64) {
    let (mut files, mut bytes) = (0u64, 0u64);
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !watch::is_candidate_name(&entry.file_name()) {
                continue;
            }
            if let Ok(meta) = entry.metadata()
                && meta.is_file()
            {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    (files, bytes)
}
