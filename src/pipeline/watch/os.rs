//! The watcher's I/O: checks and lists the inbox, runs inotify, and turns notify's events into
//! the plain [`FileEvent`]s the state machine decides on.

use std::fs::Metadata;
use std::io;
use std::path::Path;
use std::sync::Arc;

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::names::Shown;

use super::state::{FileEvent, Listing, Observed, Signature};
use super::{WatchError, is_candidate_name};

/// Events buffered between notify's thread and the watch task. When full, further events are
/// dropped and a rescan is requested instead: the thread never blocks and memory never grows.
pub(super) const EVENT_QUEUE_CAPACITY: usize = 4096;

/// Files a single scan considers. Past this the rest of the listing is skipped (with a warning)
/// and picked up by later scans, once the consumer has claimed some: memory stays bounded however
/// full the inbox gets.
pub(super) const MAX_FILES_PER_SCAN: usize = 100_000;

/// Identity of a directory (device, inode): tells a re-created inbox from the one inotify watches.
pub(super) type DirId = (u64, u64);

#[cfg(unix)]
pub(super) fn dir_id(meta: &Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
pub(super) fn dir_id(_meta: &Metadata) -> DirId {
    (0, 0)
}

/// A file's size and mtime.
fn signature(meta: &Metadata) -> Signature {
    Signature {
        len: meta.len(),
        mtime: meta.modified().ok(),
    }
}

/// Fails unless the inbox is a directory this process can list; returns its identity.
pub(super) async fn check_inbox(inbox: &Path) -> Result<DirId, WatchError> {
    let path = inbox.to_owned();
    let checked = tokio::task::spawn_blocking(move || {
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            std::fs::read_dir(&path)?;
        }
        Ok::<_, io::Error>(meta)
    })
    .await
    .unwrap_or_else(|join| Err(io::Error::other(join)));
    match checked {
        Ok(meta) if meta.is_dir() => Ok(dir_id(&meta)),
        Ok(_) => Err(WatchError::NotADirectory {
            path: inbox.to_owned(),
        }),
        Err(source) => Err(WatchError::InboxUnreadable {
            path: inbox.to_owned(),
            source,
        }),
    }
}

/// The signature of `path` if it is a regular file (symlinks not followed); `None` if it is gone
/// (claimed by another instance, say) or not a regular file.
pub(super) async fn regular_file(path: &Path) -> Option<Signature> {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_file() => Some(signature(&meta)),
        _ => None,
    }
}

/// Candidate regular files at the top of `inbox` with their signatures (blocking). `started` is
/// when the scan began.
pub(super) fn list_inbox(inbox: &Path, started: Instant) -> io::Result<Listing> {
    let mut listing = Listing {
        started,
        files: Vec::new(),
        skipped: 0,
    };
    for entry in std::fs::read_dir(inbox)? {
        let entry = entry?;
        if !is_candidate_name(&entry.file_name()) {
            continue;
        }
        // Does not follow symlinks: only regular files count.
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                // Usually NotFound: claimed between the listing and the stat.
                debug!(path = %Shown(&entry.path()), error = %e, "cannot stat an inbox entry");
                continue;
            }
        };
        if !meta.is_file() {
            continue;
        }
        if listing.files.len() >= MAX_FILES_PER_SCAN {
            listing.skipped += 1;
            continue;
        }
        listing.files.push(Observed {
            path: entry.path(),
            sig: signature(&meta),
            at: Instant::now(),
        });
    }
    Ok(listing)
}

/// What a notify event says of each of its paths, in the order the state machine must hear it.
/// What notify 8 reports on Linux decides the mapping (see the module docs of [`super`]).
pub(super) fn file_events(event: &Event) -> Vec<(FileEvent, &Path)> {
    let all = |kind: FileEvent| event.paths.iter().map(|p| (kind, p.as_path())).collect();
    match event.kind {
        EventKind::Create(CreateKind::File) => all(FileEvent::Created),
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => all(FileEvent::Written),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => all(FileEvent::ClosedAfterWrite),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => all(FileEvent::MovedIn),
        // [from, to]; on Linux a `To` for the same path came just before: a harmless duplicate.
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => {
            let last = event.paths.len().saturating_sub(1);
            let kind = |i| {
                if i == last {
                    FileEvent::MovedIn
                } else {
                    FileEvent::MovedAway
                }
            };
            let paths = event.paths.iter().enumerate();
            paths.map(|(i, p)| (kind(i), p.as_path())).collect()
        }
        EventKind::Modify(ModifyKind::Name(_)) => all(FileEvent::MovedAway),
        EventKind::Remove(_) => all(FileEvent::Removed),
        _ => Vec::new(),
    }
}

/// Whether `event` says the inbox itself was removed or moved away.
pub(super) fn inbox_gone(event: &Event, inbox: &Path) -> bool {
    matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
    ) && event.paths.iter().any(|p| p == inbox)
}

/// The inotify side of notify mode.
pub(super) struct Inotify {
    /// Owns notify's thread and the inotify watch; dropping it stops both.
    watcher: RecommendedWatcher,
    /// Events from notify's thread, bounded.
    pub(super) events: mpsc::Receiver<notify::Result<Event>>,
    /// Signalled by notify's thread when `events` was full and an event was dropped: the task
    /// rescans. A permit is stored if the task is busy, so the wake-up is never lost.
    pub(super) overflowed: Arc<Notify>,
    /// The directory the watch is on; `None` when it was lost (the inbox was deleted or moved).
    /// A scan that finds a different directory at the inbox path watches that one instead.
    pub(super) watched: Option<DirId>,
}

impl Inotify {
    /// Starts watching `inbox` (identity `id`); must happen before the first scan, so that no file
    /// falls between the listing and the watch.
    pub(super) fn start(inbox: &Path, id: DirId) -> Result<Self, WatchError> {
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE_CAPACITY);
        let overflowed = Arc::new(Notify::new());
        let overflow_signal = Arc::clone(&overflowed);
        let handler = move |event: notify::Result<Event>| {
            if let Err(mpsc::error::TrySendError::Full(_)) = events_tx.try_send(event) {
                overflow_signal.notify_one();
            }
        };
        let notify_failed = |source| WatchError::Notify {
            path: inbox.to_owned(),
            source,
        };
        let mut watcher = notify::recommended_watcher(handler).map_err(notify_failed)?;
        watcher
            .watch(inbox, RecursiveMode::NonRecursive)
            .map_err(notify_failed)?;
        Ok(Self {
            watcher,
            events,
            overflowed,
            watched: Some(id),
        })
    }

    /// Watches the directory now at `inbox` (identity `id`), dropping any older watch.
    pub(super) fn rearm(&mut self, inbox: &Path, id: DirId) {
        // The old watch may already be gone with its directory; that is fine.
        let _ = self.watcher.unwatch(inbox);
        match self.watcher.watch(inbox, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.watched = Some(id);
                info!(inbox = %inbox.display(), "watching the inbox again");
            }
            Err(e) => {
                self.watched = None;
                warn!(inbox = %inbox.display(), error = %e,
                    "cannot watch the inbox with inotify; relying on rescans until it works");
            }
        }
    }
}

/// The next notify event; never resolves in poll mode.
pub(super) async fn next_event(inotify: &mut Option<Inotify>) -> Option<notify::Result<Event>> {
    match inotify {
        Some(inotify) => inotify.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when notify dropped events; never in poll mode.
pub(super) async fn overflow_signal(overflowed: Option<&Notify>) {
    match overflowed {
        Some(overflowed) => overflowed.notified().await,
        None => std::future::pending().await,
    }
}
