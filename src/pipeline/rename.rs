//! Moves a file between the inbox and the state folders by a rename that never replaces an
//! existing file, made durable in both directories.
//!
//! A plain `rename(2)` silently replaces its target: two instances archiving the same name into a
//! shared `done/`, or a file handed back into an inbox where a new delivery of the same name has
//! just arrived, would lose a file. `renameat2(RENAME_NOREPLACE)` fails with `EEXIST` instead;
//! where the filesystem does not support that flag (`EINVAL`, or `ENOSYS` on an old kernel), a
//! hard link (which fails with `EEXIST` too) and an unlink of the source do the same.

use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{CWD, RenameFlags, renameat_with};
use rustix::io::Errno;

use crate::names::Shown;

/// Renames `from` to `to` unless `to` exists, then fsyncs the directories of both, so that after
/// a power loss the file is in exactly one of them, never both and never neither.
///
/// An error of kind [`ErrorKind::AlreadyExists`] means `to` is taken and nothing moved;
/// [`ErrorKind::NotFound`] that `from` is gone. An error for which [`moved`] is true means the
/// file did move and only the fsync of a directory failed. Both paths must be on one filesystem.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => {}
        Err(e) if e == Errno::INVAL || e == Errno::NOSYS => link_then_unlink(from, to)?,
        Err(e) => return Err(e.into()),
    }
    sync_parents(from, to).map_err(|e| io::Error::new(e.kind(), NotDurable(e)))
}

/// The rename happened, but a directory could not be fsynced after it: the file is at its new
/// name, which a power loss before the next sync could undo.
#[derive(Debug, thiserror::Error)]
#[error("moved, but not made durable: {0}")]
pub struct NotDurable(#[source] io::Error);

/// Whether an error from [`rename_noreplace`] came after the file moved (only the fsync failed).
pub fn moved(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<NotDurable>().is_some())
}

/// The fallback where the filesystem cannot rename without replacing: `link(2)` never replaces
/// either. A crash between the link and the unlink leaves the file under both names (loaded
/// again it is a duplicate by content), never under none.
fn link_then_unlink(from: &Path, to: &Path) -> io::Result<()> {
    link_then_unlink_with(from, to, || {})
}

/// [`link_then_unlink`], running `between` after the link (tests put a race there).
fn link_then_unlink_with(from: &Path, to: &Path, between: impl FnOnce()) -> io::Result<()> {
    std::fs::hard_link(from, to)?;
    between();
    // Unlink the old name only while it still names the file just linked: a new file renamed
    // over it meanwhile stays (the moved file then has only its new name, so the move is done).
    // The window left is the one between this check and the unlink.
    let inode = |p: &Path| std::fs::symlink_metadata(p).map(|m| (m.dev(), m.ino()));
    match (inode(from), inode(to)) {
        (Ok(a), Ok(b)) if a != b => return Ok(()),
        (Err(e), _) if e.kind() == ErrorKind::NotFound => return Ok(()),
        _ => {}
    }
    if let Err(e) = std::fs::remove_file(from) {
        // Undo the link so the file stays where the caller believes it is.
        let _ = std::fs::remove_file(to);
        return Err(io::Error::new(
            e.kind(),
            format!(
                "linked {} to {} but cannot remove the old name: {e}",
                Shown(from),
                Shown(to)
            ),
        ));
    }
    Ok(())
}

/// Fsyncs the directory of `to`, then that of `from` if it is another one.
fn sync_parents(from: &Path, to: &Path) -> io::Result<()> {
    let (from_dir, to_dir) = (parent(from), parent(to));
    sync_dir(to_dir)?;
    if from_dir != to_dir {
        sync_dir(from_dir)?;
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory, so that entries added to or removed from it survive a power loss.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io::Error::new(e.kind(), format!("cannot fsync {}: {e}", Shown(dir))))
}

/// Whether an error from [`rename_noreplace`] means "the target name is taken".
pub fn is_taken(e: &io::Error) -> bool {
    e.kind() == ErrorKind::AlreadyExists
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_name_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "new").unwrap();
        std::fs::write(&b, "old").unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert!(is_taken(&e), "{e}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old");
    }

    #[test]
    fn a_free_name_is_taken_across_directories() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let (a, b) = (dir.path().join("a"), sub.join("a"));
        std::fs::write(&a, "x").unwrap();
        rename_noreplace(&a, &b).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "x");
        let gone = rename_noreplace(&a, &dir.path().join("c")).unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound);
    }

    #[test]
    fn the_link_fallback_never_replaces_either() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::write(&a, "new").unwrap();
        std::fs::write(&b, "old").unwrap();
        let e = link_then_unlink(&a, &b).unwrap_err();
        assert!(is_taken(&e), "{e}");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "old");
        link_then_unlink(&a, &c).unwrap();
        assert!(!a.exists());
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "new");
    }

    /// The fallback unlinked the old name without checking what it named: a new delivery
    /// renamed over that name between the link and the unlink was deleted.
    #[test]
    fn the_link_fallback_unlinked_a_new_file_renamed_over_the_old_name() {
        let dir = tempfile::tempdir().unwrap();
        let (inbox_name, claimed, new) = (
            dir.path().join("x"),
            dir.path().join("claimed"),
            dir.path().join("x.part"),
        );
        std::fs::write(&inbox_name, "first delivery").unwrap();
        std::fs::write(&new, "second delivery").unwrap();
        let moved = link_then_unlink_with(&inbox_name, &claimed, || {
            std::fs::rename(&new, &inbox_name).unwrap();
        });
        assert!(moved.is_ok(), "{moved:?}");
        assert_eq!(std::fs::read_to_string(&claimed).unwrap(), "first delivery");
        assert_eq!(
            std::fs::read_to_string(&inbox_name).ok().as_deref(),
            Some("second delivery"),
            "the new delivery was unlinked"
        );
    }

    #[test]
    fn the_link_fallback_moves_a_symlink_itself_not_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let (link, moved) = (dir.path().join("l"), dir.path().join("m"));
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        link_then_unlink(&link, &moved).unwrap();
        assert!(std::fs::symlink_metadata(&moved).unwrap().is_symlink());
    }
}
