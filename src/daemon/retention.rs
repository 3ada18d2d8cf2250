//! Retention: retires old files from the archive folders (`done/`, `duplicates/`, `failed/`,
//! `dead-letter/`) by age and by total size, once at start and every `retention.interval`. A
//! file in `failed/` goes together with its `*.error.json`. The inbox and `processing/` are
//! never touched, nor files still being written (`*.tmp`, dot-files), except a `*.tmp` left by a
//! crash (untouched for a day).

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::blocking;
use crate::config::{FolderRetention, RetentionAction, RetentionConfig};
use crate::names::Shown;
use crate::pipeline::claim::{self, Folders};
use crate::telemetry::metrics;

/// What one sweep did to one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSweep {
    /// The folder's `[retention]` key: `done`, `duplicates`, `failed` or `dead_letter`.
    pub folder: &'static str,
    pub removed_files: u64,
    pub removed_bytes: u64,
    pub kept_files: u64,
    pub kept_bytes: u64,
    /// Files that could not be listed or removed (each logged).
    pub errors: u64,
}

/// One unit of retention: a file, or in failed/ a file with its sidecar.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    /// The data file first, its sidecar last (removed in this order).
    paths: Vec<PathBuf>,
    bytes: u64,
    /// The newest modification time of its files: a failed file counts from when its sidecar
    /// was written.
    mtime: SystemTime,
}

/// Applies `config` to every archive folder of `folders` as of `now`; returns what it did per
/// folder. Blocking: the daemon runs it on the blocking pool.
pub fn sweep(folders: &Folders, config: &RetentionConfig, now: SystemTime) -> Vec<FolderSweep> {
    config
        .folders()
        .into_iter()
        .filter_map(|(name, limits)| {
            let dir = folder_path(folders, name);
            if dir == folders.inbox || folders.processing.starts_with(dir) {
                warn!(folder = %Shown(dir), "not swept: it is the inbox or holds processing/");
                return None;
            }
            Some(sweep_folder(name, dir, limits, now))
        })
        .collect()
}

/// The folder of a `[retention]` key.
fn folder_path<'a>(folders: &'a Folders, name: &str) -> &'a Path {
    match name {
        "done" => &folders.done,
        "duplicates" => &folders.duplicates,
        "failed" => &folders.failed,
        _ => &folders.dead_letter,
    }
}

fn sweep_folder(
    name: &'static str,
    dir: &Path,
    limits: &FolderRetention,
    now: SystemTime,
) -> FolderSweep {
    let mut report = FolderSweep {
        folder: name,
        removed_files: 0,
        removed_bytes: 0,
        kept_files: 0,
        kept_bytes: 0,
        errors: 0,
    };
    remove_stale_temp_files(dir, now, &mut report);
    let groups = match list(dir, name == "failed") {
        Ok(g) => g,
        Err(e) => {
            warn!(folder = %Shown(dir), error = %e, "retention cannot list the folder");
            report.errors += 1;
            return report;
        }
    };
    let (retire, keep) = plan(groups, limits, now);
    for group in keep {
        report.kept_files += group.paths.len() as u64;
        report.kept_bytes += group.bytes;
    }
    for group in retire {
        match limits.action {
            RetentionAction::Delete => delete(&group, &mut report),
        }
    }
    report
}

/// A `*.tmp` file (a dead-letter log or a sidecar being written) untouched for this long was
/// left by a crash: nothing writes one for so long.
const STALE_TEMP_AGE: Duration = Duration::from_secs(86_400);

/// Removes the `*.tmp` files of `dir` older than [`STALE_TEMP_AGE`], whatever the folder's
/// limits: a crash left them, and no run will finish them.
fn remove_stale_temp_files(dir: &Path, now: SystemTime, report: &mut FolderSweep) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.as_encoded_bytes().ends_with(b".tmp") {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if meta.is_file() && now.duration_since(mtime).unwrap_or(Duration::ZERO) > STALE_TEMP_AGE {
            stale.push(dir.join(name));
        }
    }
    if !stale.is_empty() {
        info!(folder = %Shown(dir), files = stale.len(), "retention: removing temp files left by a crash");
    }
    delete(
        &Group {
            paths: stale,
            bytes: 0,
            mtime: now,
        },
        report,
    );
}

/// Deletes a group's files, counting what went and what could not.
fn delete(group: &Group, report: &mut FolderSweep) {
    for path in &group.paths {
        let bytes = std::fs::symlink_metadata(path).map_or(0, |m| m.len());
        match std::fs::remove_file(path) {
            Ok(()) => {
                debug!(file = %Shown(path), bytes, "retention: removed");
                report.removed_files += 1;
                report.removed_bytes += bytes;
            }
            // Gone already (another instance sharing the state root swept it): nothing to do.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(file = %Shown(path), error = %e, "retention cannot remove the file");
                report.errors += 1;
            }
        }
    }
}

/// The folder's files as retention units, oldest first. Directories, dot-files and `*.tmp`
/// (still being written) are left alone. With `pair_sidecars`, a file and its sidecar are one
/// unit.
fn list(dir: &Path, pair_sidecars: bool) -> io::Result<Vec<Group>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        names.push(entry?.file_name());
    }
    groups_of(dir, names, pair_sidecars)
}

/// The files `names` of `dir` as retention units, oldest first.
fn groups_of(dir: &Path, names: Vec<OsString>, pair_sidecars: bool) -> io::Result<Vec<Group>> {
    let mut files: Vec<(OsString, u64, SystemTime)> = Vec::new();
    for name in names {
        if !is_retained_name(&name) {
            continue;
        }
        // The entry itself, never what a symbolic link points to. One that vanished since the
        // listing (archived or retired by another instance) is simply not there.
        let meta = match std::fs::symlink_metadata(dir.join(&name)) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            continue;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        files.push((name, meta.len(), mtime));
    }
    let mut groups = group(dir, files, pair_sidecars);
    groups.sort_by(|a, b| a.mtime.cmp(&b.mtime).then_with(|| a.paths.cmp(&b.paths)));
    Ok(groups)
}

/// Not a dot-file, not a `*.tmp` file being written.
fn is_retained_name(name: &std::ffi::OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    !(bytes.is_empty() || bytes[0] == b'.' || bytes.ends_with(b".tmp"))
}

/// Files into units: each file alone, or with `pair_sidecars` each file with its sidecar (a
/// sidecar whose file is gone is a unit of its own).
fn group(dir: &Path, files: Vec<(OsString, u64, SystemTime)>, pair_sidecars: bool) -> Vec<Group> {
    let index: std::collections::HashMap<&OsString, (u64, SystemTime)> =
        files.iter().map(|(n, b, t)| (n, (*b, *t))).collect();
    let mut paired: HashSet<OsString> = HashSet::new();
    let mut groups = Vec::new();
    if pair_sidecars {
        for (name, bytes, mtime) in &files {
            let sidecar = claim::sidecar_name(name, 0);
            if sidecar == *name {
                continue;
            }
            if let Some((s_bytes, s_mtime)) = index.get(&sidecar) {
                groups.push(Group {
                    paths: vec![dir.join(name), dir.join(&sidecar)],
                    bytes: bytes + s_bytes,
                    mtime: (*mtime).max(*s_mtime),
                });
                paired.insert(name.clone());
                paired.insert(sidecar);
            }
        }
    }
    for (name, bytes, mtime) in files {
        if !paired.contains(&name) {
            groups.push(Group {
                paths: vec![dir.join(&name)],
                bytes,
                mtime,
            });
        }
    }
    groups
}

/// Splits units (oldest first) into those to retire and those to keep: older than `max_age`,
/// then the oldest of the rest until the folder fits `max_bytes`.
fn plan(groups: Vec<Group>, limits: &FolderRetention, now: SystemTime) -> (Vec<Group>, Vec<Group>) {
    let too_old = |g: &Group| {
        limits.max_age.is_some_and(|max| {
            // A modification time in the future counts as new.
            now.duration_since(g.mtime).unwrap_or(Duration::ZERO) > max
        })
    };
    let (mut retire, keep): (Vec<Group>, Vec<Group>) = groups.into_iter().partition(too_old);
    let Some(max_bytes) = limits.max_bytes else {
        return (retire, keep);
    };
    let mut total: u64 = keep.iter().map(|g| g.bytes).sum();
    let mut kept = Vec::with_capacity(keep.len());
    for g in keep {
        if total > max_bytes {
            total -= g.bytes;
            retire.push(g);
        } else {
            kept.push(g);
        }
    }
    (retire, kept)
}

/// Counts a sweep in the metrics and logs it in one line.
fn record(folders: &Folders, sweeps: &[FolderSweep]) {
    let (mut files, mut bytes, mut kept, mut kept_bytes, mut errors) = (0, 0, 0, 0, 0);
    for s in sweeps {
        metrics::retention_swept(s.folder, s.removed_files, s.removed_bytes, s.kept_bytes);
        files += s.removed_files;
        bytes += s.removed_bytes;
        kept += s.kept_files;
        kept_bytes += s.kept_bytes;
        errors += s.errors;
    }
    let by_folder: Vec<String> = sweeps
        .iter()
        .map(|s| format!("{}={}", s.folder, s.removed_files))
        .collect();
    let state_root = folders.done.parent().unwrap_or(&folders.done);
    info!(removed_files = files, removed_bytes = bytes, removed_by_folder = %by_folder.join(","),
        kept_files = kept, kept_bytes, errors, state_root = %Shown(state_root),
        "retention sweep done");
}

/// Sweeps at once, then every `retention.interval`, until `stop`.
pub(crate) async fn run(folders: Folders, config: RetentionConfig, stop: CancellationToken) {
    loop {
        let (f, c) = (folders.clone(), config.clone());
        match blocking::fs(move || Ok(sweep(&f, &c, SystemTime::now()))).await {
            Ok(sweeps) => record(&folders, &sweeps),
            Err(e) => {
                warn!(error = %e, "the retention sweep failed; it runs again at the next interval")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(config.interval) => {}
            _ = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn unit(name: &str, bytes: u64, days_old: u64, now: SystemTime) -> Group {
        Group {
            paths: vec![PathBuf::from(name)],
            bytes,
            mtime: now - DAY * days_old as u32,
        }
    }

    fn names(groups: &[Group]) -> Vec<String> {
        groups
            .iter()
            .map(|g| g.paths[0].display().to_string())
            .collect()
    }

    /// One entry that vanished between the listing and its stat (another instance archived
    /// or retired it) made the whole folder unlisted: nothing in it was retired that round.
    #[test]
    fn one_vanished_entry_made_retention_skip_the_whole_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "x").unwrap();
        std::fs::write(dir.path().join("b"), "y").unwrap();
        let names = ["a", "vanished", "b"].map(OsString::from).to_vec();
        let groups = groups_of(dir.path(), names, false).expect("the folder is listed");
        let mut listed = names_of(&groups);
        listed.sort();
        assert_eq!(listed, ["a", "b"]);
    }

    fn names_of(groups: &[Group]) -> Vec<String> {
        groups
            .iter()
            .map(|g| {
                g.paths[0]
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
    }

    /// Temp files left by a crash (a dead-letter log or a sidecar being written) were never
    /// removed: retention skips `*.tmp`. Now one older than a day goes; a fresh one stays.
    #[test]
    fn temp_files_left_by_a_crash_were_never_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let (stale, fresh) = (
            dir.path().join("X.txt.a.rejects.jsonl.tmp"),
            dir.path().join("Y.txt.error.json.tmp"),
        );
        std::fs::write(&stale, "left by a crash").unwrap();
        std::fs::write(&fresh, "being written").unwrap();
        let two_days_ago = SystemTime::now() - 2 * DAY;
        filetime::set_file_mtime(&stale, filetime::FileTime::from_system_time(two_days_ago))
            .unwrap();
        let report = sweep_folder(
            "dead_letter",
            dir.path(),
            &FolderRetention::default(),
            SystemTime::now(),
        );
        assert!(!stale.exists(), "the stale temp file is still there");
        assert!(fresh.exists());
        assert_eq!(report.removed_files, 1);
    }

    #[test]
    fn no_limit_keeps_everything() {
        let now = SystemTime::now();
        let groups = vec![unit("a", 10, 5000, now), unit("b", 10, 0, now)];
        let (retire, keep) = plan(groups, &FolderRetention::default(), now);
        assert!(retire.is_empty());
        assert_eq!(names(&keep), ["a", "b"]);
    }

    #[test]
    fn age_then_size_retire_the_oldest() {
        let now = SystemTime::now();
        // Oldest first, as `list` gives them.
        let groups = vec![
            unit("a", 100, 40, now),
            unit("b", 100, 20, now),
            unit("c", 100, 10, now),
            unit("d", 100, 1, now),
        ];
        let limits = FolderRetention {
            max_age: Some(DAY * 30),
            max_bytes: Some(150),
            ..FolderRetention::default()
        };
        let (retire, keep) = plan(groups, &limits, now);
        assert_eq!(names(&retire), ["a", "b", "c"]);
        assert_eq!(names(&keep), ["d"]);
    }

    #[test]
    fn a_future_mtime_counts_as_new() {
        let now = SystemTime::now();
        let future = Group {
            mtime: now + DAY,
            ..unit("f", 1, 0, now)
        };
        let limits = FolderRetention {
            max_age: Some(Duration::from_secs(1)),
            ..FolderRetention::default()
        };
        let (retire, _) = plan(vec![future], &limits, now);
        assert!(retire.is_empty());
    }

    #[test]
    fn sidecars_pair_with_their_file_and_tmp_files_are_left_alone() {
        let now = SystemTime::now();
        let old = now - DAY * 10;
        let files = vec![
            (OsString::from("A.txt"), 10, old),
            (OsString::from("A.txt.error.json"), 1, now),
            (OsString::from("orphan.error.json"), 2, old),
            (OsString::from("B.txt"), 3, old),
        ];
        let mut groups = group(Path::new("f"), files, true);
        groups.sort_by(|a, b| a.paths.cmp(&b.paths));
        assert_eq!(groups.len(), 3);
        assert_eq!(
            groups[0].paths,
            [
                PathBuf::from("f/A.txt"),
                PathBuf::from("f/A.txt.error.json")
            ]
        );
        // The pair counts from the newer of the two.
        assert_eq!((groups[0].bytes, groups[0].mtime), (11, now));
        assert!(!is_retained_name(std::ffi::OsStr::new(
            "x.a.rejects.jsonl.tmp"
        )));
        assert!(!is_retained_name(std::ffi::OsStr::new(".hidden")));
        assert!(is_retained_name(std::ffi::OsStr::new("x.rejects.jsonl")));
    }
}
