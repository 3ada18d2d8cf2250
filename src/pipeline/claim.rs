//! Claim: takes a file from the inbox into this instance's `processing/` folder by an atomic
//! rename, and moves finished files on (done/, failed/ with a sidecar, duplicates/, or back).

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::account::dead_letter::sync_dir;

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

/// Claims `file` by renaming it into `processing`. None if another worker or instance took it
/// first (or it vanished): that is not an error.
pub fn claim(file: &Path, processing: &Path) -> std::io::Result<Option<PathBuf>> {
    let Some(name) = file.file_name() else {
        return Ok(None);
    };
    let target = processing.join(name);
    if target.exists() {
        // Same name still being processed here: leave the new one in the inbox for later.
        return Ok(None);
    }
    match std::fs::rename(file, &target) {
        Ok(()) => Ok(Some(target)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
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

/// Moves `file` into `dir` under its own name, or `name.1`, `name.2`, ... if taken: archives
/// never overwrite. Returns the new path.
pub(crate) fn archive(file: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, "no file name"))?;
    let mut target = dir.join(name);
    let mut n = 0u32;
    while target.exists() {
        n += 1;
        target = dir.join(format!("{}.{n}", name.to_string_lossy()));
    }
    std::fs::rename(file, &target)?;
    sync_dir(dir)?;
    Ok(target)
}

/// Writes `<archived>.error.json` beside a file moved to failed/ (tmp + fsync + rename).
pub(crate) fn write_sidecar(archived: &Path, body: &serde_json::Value) -> std::io::Result<PathBuf> {
    let mut name = archived.as_os_str().to_owned();
    name.push(".error.json");
    let path = PathBuf::from(name);
    let tmp = path.with_extension("json.tmp");
    {
        let file = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&file, body)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_is_exclusive_and_archive_never_overwrites() {
        let root = tempfile::tempdir().unwrap();
        let folders = Folders::new(&root.path().join("inbox"), root.path(), "a");
        folders.create_all().unwrap();
        let f = folders.inbox.join("X_full_1min_adjsplit.txt");
        std::fs::write(&f, "x").unwrap();
        let claimed = claim(&f, &folders.processing).unwrap().unwrap();
        assert!(claimed.exists() && !f.exists());
        assert_eq!(
            claim(&f, &folders.processing).unwrap(),
            None,
            "second claim loses"
        );
        assert_eq!(pending(&folders.processing).unwrap(), vec![claimed.clone()]);

        let first = archive(&claimed, &folders.done).unwrap();
        std::fs::write(&f, "y").unwrap();
        let again = claim(&f, &folders.processing).unwrap().unwrap();
        let second = archive(&again, &folders.done).unwrap();
        assert_ne!(first, second);
        assert_eq!(std::fs::read_to_string(first).unwrap(), "x");
        assert_eq!(std::fs::read_to_string(second).unwrap(), "y");
    }
}
