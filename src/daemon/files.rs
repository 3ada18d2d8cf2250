//! Where a loaded file goes: done/, duplicates/, failed/ with a sidecar, back to the inbox, or
//! nowhere (interrupted: it stays claimed and resumes at the next start).

use std::path::{Path, PathBuf};

use tracing::{error, info, warn};

use tokio_util::sync::CancellationToken;

use super::blocking;
use crate::ingest::{DeliveryResult, FileResult, FileSummary};
use crate::names::Shown;
use crate::pipeline::claim::{self, Folders};
use crate::store::retry::Backoff;

/// A file that could not be put where its result says.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MoveError {
    /// The file is still in processing/ and is looked at again at the next start.
    #[error("cannot move the file out of processing/ into {}", Shown(dir))]
    Move {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file was moved to failed/, but its `*.error.json` could not be written.
    #[error(
        "the file is in failed/ as {}, but its sidecar could not be written",
        Shown(archived)
    )]
    Sidecar {
        archived: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// [`put_away`], retrying a failed move out of processing/ with backoff until it succeeds or
/// `cancel` fires (the file then stays claimed and is resumed at the next start). Every failure
/// is logged with its next delay; while the file waits, a new delivery of its name waits in the
/// inbox (the claim says so in the log).
pub(crate) async fn put_away_retrying(
    folders: &Folders,
    path: &Path,
    result: &DeliveryResult,
    backoff: Backoff,
    cancel: &CancellationToken,
) {
    let mut attempt = 0;
    loop {
        let e = match put_away(folders, path, result).await {
            Ok(()) if attempt > 0 => {
                info!(file = %Shown(path), retries = attempt, "moved out of processing/ at last");
                return;
            }
            Ok(()) => return,
            Err(e) => e,
        };
        let detail = std::error::Error::source(&e).map(ToString::to_string);
        if matches!(e, MoveError::Sidecar { .. }) {
            error!(file = %Shown(path), error = %e, cause = detail.unwrap_or_default(),
                "the sidecar is missing; the file itself is in failed/");
            return;
        }
        let delay = backoff.delay(attempt);
        error!(file = %Shown(path), error = %e, cause = detail.unwrap_or_default(),
            retry_in = ?delay, attempt = attempt + 1,
            "cannot move the file out of processing/; retrying (a new delivery of its name \
             waits in the inbox meanwhile)");
        attempt += 1;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => {
                warn!(file = %Shown(path),
                    "stopping: the file stays in processing/ and is looked at again at the next start");
                return;
            }
        }
    }
}

/// Moves a claimed delivery to where its result says, logging what happened: one unit as its
/// result says; several (a zip) to done/ when every unit loaded (or was already loaded), to
/// duplicates/ when every one was a duplicate, else to failed/ with a sidecar listing each
/// unit's outcome. A change hands the delivery back; an interruption leaves it claimed.
pub(crate) async fn put_away(
    folders: &Folders,
    path: &Path,
    result: &DeliveryResult,
) -> Result<(), MoveError> {
    if result.interrupted() {
        return Ok(());
    }
    match &result.units[..] {
        _ if result.changed() => archive(path, &folders.inbox, Stamp::Keep)
            .await
            .map(|back| {
                info!(file = %Shown(&back), "handed back to the inbox");
            }),
        [one] => put_away_one(folders, path, one).await,
        _ if result.all_duplicates() => {
            info!(file = %Shown(path), units = result.units.len(),
                "every unit already loaded (same content); archived as a duplicate");
            archive(path, &folders.duplicates, Stamp::Now)
                .await
                .map(drop)
        }
        _ if result.all_loaded() => archive(path, &folders.done, Stamp::Now).await.map(drop),
        units => {
            let not_loaded = units.iter().filter(|r| r.why().is_some()).count();
            error!(file = %Shown(path), units = units.len(), not_loaded,
                "units of the delivery not loaded; moved to failed/ (the others are loaded)");
            fail_units(path, folders, units).await
        }
    }
}

/// Moves a delivery of one unit where its result says.
async fn put_away_one(
    folders: &Folders,
    path: &Path,
    result: &FileResult,
) -> Result<(), MoveError> {
    match result {
        FileResult::Loaded(_) | FileResult::AlreadyDone(_) => {
            archive(path, &folders.done, Stamp::Now).await.map(drop)
        }
        FileResult::Duplicate(s) => {
            info!(file = %Shown(Path::new(&s.file_name)), fingerprint = %s.fingerprint,
                "already loaded (same content); archived as a duplicate");
            archive(path, &folders.duplicates, Stamp::Now)
                .await
                .map(drop)
        }
        FileResult::Quarantined(s, why) => {
            error!(file = %Shown(path), reason = %why, "file quarantined; moved to failed/");
            fail(path, folders, s, result).await
        }
        FileResult::Failed(s, e) => {
            error!(file = %Shown(path), reason = %e.chain(), "file not loaded; moved to failed/");
            fail(path, folders, s, result).await
        }
        FileResult::Empty(s) => {
            warn!(file = %Shown(path), "empty file; moved to failed/");
            fail(path, folders, s, result).await
        }
        // Handled for the whole delivery by `put_away`.
        FileResult::Changed(_) | FileResult::Interrupted => Ok(()),
    }
}

/// Whether a move sets the file's modification time to now (archive folders, whose retention
/// ages count from the archiving) or keeps it (a hand-back to the inbox).
#[derive(Clone, Copy)]
enum Stamp {
    Now,
    Keep,
}

async fn archive(path: &Path, dir: &Path, stamp: Stamp) -> Result<PathBuf, MoveError> {
    let (from, to) = (path.to_owned(), dir.to_owned());
    blocking::fs(move || match stamp {
        Stamp::Now => claim::archive_stamped(&from, &to),
        Stamp::Keep => claim::archive(&from, &to),
    })
    .await
    .map_err(|source| MoveError::Move {
        dir: dir.to_owned(),
        source,
    })
}

/// Moves the file to failed/ and writes its sidecar.
async fn fail(
    path: &Path,
    folders: &Folders,
    summary: &FileSummary,
    result: &FileResult,
) -> Result<(), MoveError> {
    let mut body = unit_json(summary, result.outcome_name(), result.why().as_deref());
    body["time"] = now().into();
    write_failed(path, folders, body).await
}

/// Moves a delivery of several units, some not loaded, to failed/; its sidecar lists each
/// unit's outcome (the loaded ones are in the database and the load history).
async fn fail_units(path: &Path, folders: &Folders, units: &[FileResult]) -> Result<(), MoveError> {
    let listed: Vec<serde_json::Value> = units
        .iter()
        .filter_map(|r| {
            let s = r.summary()?;
            Some(unit_json(s, r.outcome_name(), r.why().as_deref()))
        })
        .collect();
    let not_loaded: Vec<&FileResult> = units.iter().filter(|r| r.why().is_some()).collect();
    let first = not_loaded.first().and_then(|r| {
        let s = r.summary()?;
        Some(format!("{}: {}", s.file_name, r.why()?))
    });
    let loaded = units.len() - not_loaded.len();
    let body = serde_json::json!({
        "file": path.file_name().unwrap_or_default().to_string_lossy(),
        "outcome": if loaded > 0 { "partly_loaded" } else { "failed" },
        "error": format!(
            "{} of {} units not loaded (the other {loaded} are); first: {}",
            not_loaded.len(),
            units.len(),
            first.unwrap_or_default()
        ),
        "units": listed,
        "time": now(),
    });
    write_failed(path, folders, body).await
}

/// One unit's record in a sidecar.
fn unit_json(summary: &FileSummary, outcome: &str, why: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "file": summary.file_name,
        "outcome": outcome,
        "reason": summary.reason,
        "error": why,
        "layout": summary.layout,
        "fingerprint": summary.fingerprint,
        "symbol": summary.symbol,
        "rows_in": summary.rows_in,
        "rows_written": summary.rows_written,
        "rows_rejected": summary.rows_rejected,
        "dead_letter": summary.dead_letter,
        "dead_letter_dropped": summary.dead_letter_dropped,
        "scan_stopped_after_line": summary.scan_stopped_after_line,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Moves the file to failed/ and writes `body` as its sidecar.
async fn write_failed(
    path: &Path,
    folders: &Folders,
    body: serde_json::Value,
) -> Result<(), MoveError> {
    let archived = archive(path, &folders.failed, Stamp::Now).await?;
    let at = archived.clone();
    blocking::fs(move || claim::write_sidecar(&at, &body))
        .await
        .map(drop)
        .map_err(|source| MoveError::Sidecar { archived, source })
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::names::NAME_MAX;

    fn one(result: FileResult) -> DeliveryResult {
        DeliveryResult {
            units: vec![result],
        }
    }

    fn folders() -> (tempfile::TempDir, Folders) {
        let root = tempfile::tempdir().unwrap();
        let folders = Folders::new(&root.path().join("inbox"), root.path(), "a");
        folders.create_all().unwrap();
        (root, folders)
    }

    fn names_in(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    /// A 255-byte name quarantined: `<name>.error.json` would be 266 bytes (ENAMETOOLONG).
    #[tokio::test]
    async fn a_quarantined_longest_name_lands_in_failed_with_its_sidecar() {
        let (_root, folders) = folders();
        let name = format!("Q_{}.txt", "q".repeat(NAME_MAX - 6));
        let path = folders.processing.join(&name);
        std::fs::write(&path, "bad\n").unwrap();
        let summary = FileSummary {
            file_name: name.clone(),
            ..FileSummary::default()
        };
        let result = FileResult::Quarantined(summary, "too many rejects".into());
        put_away(&folders, &path, &one(result)).await.unwrap();

        assert!(names_in(&folders.processing).is_empty(), "nothing stuck");
        let failed = names_in(&folders.failed);
        assert_eq!(failed.len(), 2, "the file and its sidecar: {failed:?}");
        assert!(failed.iter().any(|n| n.as_bytes() == name.as_bytes()));
        let sidecar = failed
            .iter()
            .find(|n| n.as_bytes().ends_with(b".error.json"))
            .expect("a sidecar");
        let body: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folders.failed.join(sidecar)).unwrap()).unwrap();
        assert_eq!(body["outcome"], "quarantined");
        assert_eq!(body["file"], name.as_str());
    }

    /// A file that changed while loading goes back to the inbox; a new delivery of its name
    /// that arrived meanwhile stays as it is, and the handed-back file is kept beside it.
    #[tokio::test]
    async fn a_hand_back_keeps_a_new_delivery_of_the_same_name() {
        let (_root, folders) = folders();
        let name = "H_full_1min_adjsplit.txt";
        let path = folders.processing.join(name);
        std::fs::write(&path, "handed back").unwrap();
        std::fs::write(folders.inbox.join(name), "new delivery").unwrap();
        put_away(
            &folders,
            &path,
            &one(FileResult::Changed(FileSummary::default())),
        )
        .await
        .unwrap();

        assert!(names_in(&folders.processing).is_empty());
        let mut contents: Vec<String> = names_in(&folders.inbox)
            .iter()
            .map(|n| std::fs::read_to_string(folders.inbox.join(n)).unwrap())
            .collect();
        contents.sort();
        assert_eq!(contents, ["handed back", "new delivery"]);
        let new = std::fs::read_to_string(folders.inbox.join(name)).unwrap();
        assert_eq!(new, "new delivery");
    }
}
