//! Claim: takes a file from the inbox into this instance's `processing/` folder by an atomic
//! rename, and moves finished files on (done/, failed/ with a sidecar, duplicates/, or back).

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_NOW, UTIME_OMIT, utimensat};

use super::rename::{is_taken, moved, rename_noreplace};
use crate::names::{Shown, derived};

/// The folders of one instance, all under one parent on the inbox's filesystem.
#[derive(Debug, Clone)]
pub struct Folders {
    pub inbox: PathBuf,
    /// `state_root/processing/<instance>`: files this instance has claimed.
    pub processing: PathBuf,
    /// Files loaded.
    pub done: PathBuf,
    /// Files quarantined or failed, each with a `*.error.json` sidecar.
    pub failed: PathBuf,
    /// Files whose content was already loaded.
    pub duplicates: PathBuf,
    /// Dead-letter logs of rejected rows.
    pub dead_letter: PathBuf,
}

/// A folder problem that stops the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("cannot create or read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the inbox {inbox} and the state folder {state} are on different filesystems; files are \
         claimed by rename, which cannot cross filesystems (EXDEV): put both under one parent"
    )]
    CrossDevice { inbox: PathBuf, state: PathBuf },
}

impl Folders {
    pub fn new(inbox: &Path, state_root: &Path, instance: &str) -> Self {
        Self {
            inbox: inbox.to_owned(),
            processing: state_root.join("processing").join(instance),
            done: state_root.join("done"),
            failed: state_root.join("failed"),
            duplicates: state_root.join("duplicates"),
            dead_letter: state_root.join("dead-letter"),
        }
    }

    /// Creates every folder and checks that claiming by rename can work.
    pub(crate) fn create_all(&self) -> Result<(), FolderError> {
        for dir in [
            &self.inbox,
            &self.processing,
            &self.done,
            &self.failed,
            &self.duplicates,
            &self.dead_letter,
        ] {
            std::fs::create_dir_all(dir).map_err(|source| FolderError::Io {
                path: dir.clone(),
                source,
            })?;
        }
        let dev = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.dev())
                .map_err(|source| FolderError::Io {
                    path: p.to_owned(),
                    source,
                })
        };
        if dev(&self.inbox)? != dev(&self.processing)? {
            return Err(FolderError::CrossDevice {
                inbox: self.inbox.clone(),
                state: self.processing.clone(),
            });
        }
        Ok(())
    }
}

/// What became of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The file is in processing/ under this path.
    Claimed(PathBuf),
    /// Another worker or instance took it first, or it vanished: not an error.
    Gone,
    /// A file of the same name is still in this instance's processing/ (being loaded, or its
    /// move out failed and is being retried): the new delivery waits in the inbox.
    NameInProcessing(PathBuf),
}

/// Claims `file` by renaming it into `processing` (never replacing, both folders fsynced). A
/// rename that happened but whose fsync failed is a claim (logged): the file is in processing/.
pub fn claim(file: &Path, processing: &Path) -> std::io::Result<Claim> {
    let Some(name) = file.file_name() else {
        return Ok(Claim::Gone);
    };
    let target = processing.join(name);
    match rename_noreplace(file, &target) {
        Ok(()) => Ok(Claim::Claimed(target)),
        Err(e) if moved(&e) => {
            tracing::warn!(file = %Shown(&target), error = %e,
                "claimed (moved into processing/), but the folders could not be fsynced: a power \
                 loss could bring the file back to the inbox, where it would be a duplicate");
            Ok(Claim::Claimed(target))
        }
        Err(e) if is_taken(&e) => Ok(Claim::NameInProcessing(target)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Claim::Gone),
        Err(e) => Err(e),
    }
}

/// Files this instance claimed and did not finish (a crash or a stop): resumed first at start.
/// Every entry counts, whatever its type: the loader sends a symbolic link, a FIFO or anything
/// else that is not a regular file to failed/ with its reason instead of leaving it here.
pub(crate) fn pending(processing: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(processing)? {
        files.push(entry?.path());
    }
    files.sort();
    Ok(files)
}

/// Moves `file` into `dir` (done/, duplicates/, failed/, or the inbox for a hand-back) under its
/// own name, or `name.1`, `name.2`, ... if taken, each kept within the filesystem's name limit by
/// [`derived`]. Each name is tried by a rename that never replaces, so two instances archiving
/// the same name at once, or a new delivery of the name, never lose a file. Returns the new path.
pub fn archive(file: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no file name"))?;
    // A taken name gets a suffix unique to this move (the time in µs), so a daily file of a
    // fixed name is archived in two renames, not one per earlier archive; `.1`, `.2` after it
    // only if two moves of the name share a microsecond.
    let unique = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    move_to_free_name(file, dir, |n| match n {
        0 => derived(name, ""),
        1 => derived(name, &format!(".{unique}")),
        n => derived(name, &format!(".{unique}.{}", n - 1)),
    })
}

/// Digits of the unique suffix [`archive`] gives a taken name (µs since the epoch, from 2001 to
/// 2286).
const UNIQUE_DIGITS: usize = 16;

/// The name a file was delivered under: `name` without the suffix [`archive`] adds when the
/// name is taken (`.<16 digits>`, and `.<n>` after it on a tie), so that a file handed back
/// beside a new delivery of its name still matches its `[[source]]` rule and names its symbol.
/// Other names are returned as they are.
pub fn logical_name(name: &OsStr) -> &OsStr {
    use std::os::unix::ffi::OsStrExt;
    let b = name.as_bytes();
    let digits_before = |end: usize| {
        b[..end]
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut end = b.len();
    // A tie's `.<n>` after the unique part.
    let n = digits_before(end);
    if (1..=3).contains(&n) && end > n && b[end - n - 1] == b'.' {
        let before = end - n - 1;
        if digits_before(before) == UNIQUE_DIGITS {
            end = before;
        }
    }
    let d = digits_before(end);
    if d == UNIQUE_DIGITS && end > d + 1 && b[end - d - 1] == b'.' {
        return OsStr::from_bytes(&b[..end - d - 1]);
    }
    name
}

/// [`archive`] into an archive folder (done/, duplicates/, failed/), then sets the file's
/// modification time to now: retention ages (`[retention.*] max_age`) count from the archiving,
/// not from when the vendor wrote the file (a copy that kept its mtime would be old on arrival).
/// A file whose time cannot be set stays archived; the failure is logged.
pub(crate) fn archive_stamped(file: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let target = archive(file, dir)?;
    let now = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
    };
    if let Err(e) = utimensat(CWD, &target, &now, AtFlags::SYMLINK_NOFOLLOW) {
        tracing::warn!(file = %Shown(&target), error = %e,
            "archived, but its modification time could not be set: retention ages it by its old one");
    }
    Ok(target)
}

/// The sidecar name of `name`, a file in failed/: `<name>.error.json`, or `<name>.error.<n>.json`
/// when that was taken (`n` from 1), shortened by [`derived`] if it would not fit. Retention
/// pairs a failed file with the sidecar of this name.
pub(crate) fn sidecar_name(name: &OsStr, n: u64) -> OsString {
    match n {
        0 => derived(name, ".error.json"),
        n => derived(name, &format!(".error.{n}.json")),
    }
}

/// Writes the sidecar of a file moved to failed/ as `archived`: `<name>.error.json` (shortened
/// by [`derived`] if it would not fit), written to a temp name of its own, fsynced, renamed
/// without replacing (`<name>.error.1.json`, ... if taken), and its folder fsynced.
pub(crate) fn write_sidecar(archived: &Path, body: &serde_json::Value) -> std::io::Result<PathBuf> {
    let (dir, name) = match (archived.parent(), archived.file_name()) {
        (Some(d), Some(n)) => (d, n),
        _ => return Err(std::io::Error::new(ErrorKind::InvalidInput, "no file name")),
    };
    // The archived name is unique in failed/, so is this temp name (byte for byte).
    let tmp = dir.join(derived(name, ".error.json.tmp"));
    {
        let file = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&file, body)?;
        file.sync_all()?;
    }
    move_to_free_name(&tmp, dir, |n| sidecar_name(name, n))
}

/// Renames `file` into `dir` under the first of `names(0)`, `names(1)`, ... that is free, each
/// tried by a rename that never replaces (no check-then-rename race).
fn move_to_free_name(
    file: &Path,
    dir: &Path,
    names: impl Fn(u64) -> OsString,
) -> std::io::Result<PathBuf> {
    for n in 0u64.. {
        let target = dir.join(names(n));
        match rename_noreplace(file, &target) {
            Ok(()) => return Ok(target),
            Err(e) if moved(&e) => {
                tracing::warn!(file = %Shown(&target), error = %e,
                    "moved, but the folders could not be fsynced: a power loss could undo the move");
                return Ok(target);
            }
            Err(e) if is_taken(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("a folder cannot hold 2^64 files")
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};

    use super::*;

    #[test]
    fn an_archived_file_is_stamped_now_and_a_plain_move_keeps_its_time() {
        let root = tempfile::tempdir().unwrap();
        let (done, inbox) = (root.path().join("done"), root.path().join("inbox"));
        std::fs::create_dir_all(&done).unwrap();
        std::fs::create_dir_all(&inbox).unwrap();
        let old = filetime::FileTime::from_unix_time(1_000_000_000, 0);
        let age = |p: &Path| {
            std::fs::metadata(p)
                .unwrap()
                .modified()
                .unwrap()
                .elapsed()
                .unwrap()
        };
        let a = root.path().join("A.txt");
        std::fs::write(&a, "x").unwrap();
        filetime::set_file_mtime(&a, old).unwrap();
        let archived = archive_stamped(&a, &done).unwrap();
        assert!(age(&archived) < std::time::Duration::from_secs(60));
        let b = root.path().join("B.txt");
        std::fs::write(&b, "y").unwrap();
        filetime::set_file_mtime(&b, old).unwrap();
        let moved = archive(&b, &inbox).unwrap();
        assert!(age(&moved) > std::time::Duration::from_secs(86_400 * 365));
    }
    use crate::names::NAME_MAX;

    fn folders() -> (tempfile::TempDir, Folders) {
        let root = tempfile::tempdir().unwrap();
        let folders = Folders::new(&root.path().join("inbox"), root.path(), "a");
        folders.create_all().unwrap();
        (root, folders)
    }

    #[test]
    fn claim_is_exclusive_and_archive_never_overwrites() {
        let (_root, folders) = folders();
        let f = folders.inbox.join("X_full_1min_adjsplit.txt");
        std::fs::write(&f, "x").unwrap();
        let Claim::Claimed(claimed) = claim(&f, &folders.processing).unwrap() else {
            panic!("not claimed")
        };
        assert!(claimed.exists() && !f.exists());
        assert_eq!(
            claim(&f, &folders.processing).unwrap(),
            Claim::Gone,
            "second claim loses"
        );
        assert_eq!(pending(&folders.processing).unwrap(), vec![claimed.clone()]);

        let first = archive(&claimed, &folders.done).unwrap();
        std::fs::write(&f, "y").unwrap();
        let Claim::Claimed(again) = claim(&f, &folders.processing).unwrap() else {
            panic!("not claimed")
        };
        let second = archive(&again, &folders.done).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(first).unwrap(), "x");
        assert_eq!(std::fs::read_to_string(second).unwrap(), "y");
    }

    #[test]
    fn a_name_still_being_processed_is_not_claimed_over() {
        let (_root, folders) = folders();
        let name = "Y_full_1min_adjsplit.txt";
        std::fs::write(folders.processing.join(name), "old").unwrap();
        std::fs::write(folders.inbox.join(name), "new").unwrap();
        assert_eq!(
            claim(&folders.inbox.join(name), &folders.processing).unwrap(),
            Claim::NameInProcessing(folders.processing.join(name))
        );
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap();
        assert_eq!(read(folders.processing.join(name)), "old");
        assert_eq!(read(folders.inbox.join(name)), "new");
    }

    /// A 255-byte name already archived: `name.1` would be 257 bytes (ENAMETOOLONG).
    #[test]
    fn a_longest_name_already_archived_is_archived_again_shortened() {
        let (_root, folders) = folders();
        let name = format!("L_{}.txt", "x".repeat(NAME_MAX - 6));
        assert_eq!(name.len(), NAME_MAX);
        std::fs::write(folders.done.join(&name), "first").unwrap();
        let claimed = folders.processing.join(&name);
        std::fs::write(&claimed, "second").unwrap();
        let archived = archive(&claimed, &folders.done).unwrap();
        let archived_name = archived.file_name().unwrap();
        assert!(archived_name.len() <= NAME_MAX);
        assert!(
            archived_name
                .as_bytes()
                .iter()
                .rev()
                .take(16)
                .all(u8::is_ascii_digit)
        );
        assert_eq!(std::fs::read_to_string(&archived).unwrap(), "second");
        assert_eq!(
            std::fs::read_to_string(folders.done.join(&name)).unwrap(),
            "first"
        );
        assert!(!claimed.exists());
    }

    #[test]
    fn the_logical_name_drops_only_the_suffix_archive_adds() {
        let l = |s: &str| logical_name(OsStr::new(s)).to_str().unwrap().to_owned();
        assert_eq!(l("A_utc.csv.1733400000123456"), "A_utc.csv");
        assert_eq!(l("A_utc.csv.1733400000123456.2"), "A_utc.csv");
        assert_eq!(l("A_utc.csv"), "A_utc.csv");
        assert_eq!(l("A_utc.csv.1"), "A_utc.csv.1");
        assert_eq!(l("A.173340000012345"), "A.173340000012345");
        assert_eq!(l("1733400000123456"), "1733400000123456");
        // What `archive` gives a taken name.
        let (_root, folders) = folders();
        std::fs::write(folders.inbox.join("B_utc.csv"), "new").unwrap();
        let handed = folders.processing.join("B_utc.csv");
        std::fs::write(&handed, "old").unwrap();
        let back = archive(&handed, &folders.inbox).unwrap();
        assert_eq!(logical_name(back.file_name().unwrap()), "B_utc.csv");
    }

    /// A daily file of a fixed name archived for the 301st time was moved by 301 renames, one
    /// per taken name `X`, `X.1`, ... `X.300` (an NFS round trip each). Now a taken name gets a
    /// unique suffix at once.
    #[test]
    fn archiving_a_fixed_name_probed_every_earlier_archive() {
        let (_root, folders) = folders();
        let name = "DAY_full_1min_adjsplit.txt";
        std::fs::write(folders.done.join(name), "0").unwrap();
        for n in 1..=300 {
            std::fs::write(folders.done.join(format!("{name}.{n}")), "old").unwrap();
        }
        let claimed = folders.processing.join(name);
        std::fs::write(&claimed, "new").unwrap();
        let archived = archive(&claimed, &folders.done).unwrap();
        let archived_name = archived.file_name().unwrap().to_string_lossy().into_owned();
        assert_ne!(
            archived_name,
            format!("{name}.301"),
            "probed every earlier name"
        );
        assert!(archived_name.starts_with(name), "{archived_name}");
        assert_eq!(std::fs::read_to_string(&archived).unwrap(), "new");
    }

    #[test]
    fn an_archived_name_keeps_its_invalid_bytes() {
        let (_root, folders) = folders();
        let name = OsString::from_vec(b"Z_bad\xff.txt".to_vec());
        std::fs::write(folders.done.join(&name), "first").unwrap();
        let claimed = folders.processing.join(&name);
        std::fs::write(&claimed, "second").unwrap();
        let archived = archive(&claimed, &folders.done).unwrap();
        assert!(
            archived
                .file_name()
                .unwrap()
                .as_bytes()
                .starts_with(b"Z_bad\xff.txt.")
        );
    }

    #[test]
    fn a_sidecar_of_a_longest_name_fits_and_is_durable_under_its_own_name() {
        let (_root, folders) = folders();
        let name = format!("Q_{}.txt", "q".repeat(NAME_MAX - 6));
        let archived = folders.failed.join(&name);
        std::fs::write(&archived, "data").unwrap();
        let body = serde_json::json!({"outcome": "quarantined"});
        let sidecar = write_sidecar(&archived, &body).unwrap();
        let sidecar_name = sidecar.file_name().unwrap();
        assert!(sidecar_name.len() <= NAME_MAX);
        assert!(sidecar_name.as_bytes().ends_with(b".error.json"));
        let read: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
        assert_eq!(read, body);
        let left: Vec<_> = std::fs::read_dir(&folders.failed).unwrap().collect();
        assert_eq!(left.len(), 2, "the file and its sidecar, no temp file");
    }

    /// A data file that happens to be named like another file's sidecar is never replaced.
    #[test]
    fn a_sidecar_never_replaces_a_file_of_its_name() {
        let (_root, folders) = folders();
        let archived = folders.failed.join("S_x.txt");
        std::fs::write(&archived, "data").unwrap();
        std::fs::write(folders.failed.join("S_x.txt.error.json"), "another file").unwrap();
        let sidecar = write_sidecar(&archived, &serde_json::json!({})).unwrap();
        assert_eq!(sidecar, folders.failed.join("S_x.txt.error.1.json"));
        let other = std::fs::read_to_string(folders.failed.join("S_x.txt.error.json")).unwrap();
        assert_eq!(other, "another file");
    }
}
