//! Watch: reports complete candidate files in the inbox (inotify plus rescans, or polling).
//!
//! The watcher knows nothing of the pipeline: it sends paths on a channel and the consumer claims
//! them by rename. It may send a path more than once; a file left in the inbox is sent again.
//!
//! How a file counts as complete:
//! - **Events** (notify mode): inotify `CloseWrite` (the writer closed it) or `MovedTo` (renamed
//!   into the inbox). A plain `Create` is never enough: the writer may still be writing. On Linux a
//!   move into the folder never shows up as `Create`, so `Create` never reports a file (it only
//!   marks it as being written, below); a file that appears without a close or a move (a hard
//!   link, say) is left to the rescan.
//! - **Scans** (the start-up scan, the periodic rescan, every poll): the settle rule. A scan
//!   remembers each file's size and mtime and *when it first saw that pair*; the file is complete
//!   once a later scan sees the same pair at least `settle` after that. The rule is judged by what
//!   this process observed, never by comparing the mtime with the clock, so it holds on NFS/CIFS
//!   whose server clock differs from ours and for tools that set an old mtime. The price: a file
//!   found by a scan is reported no sooner than `settle` after it was first seen, and so the first
//!   full scan (and `first_scan_done`) ends `settle` after the first listing.
//! - **Files being written** (notify mode): the settle rule cannot tell a finished file from one
//!   whose writer paused for longer than `settle`, and a scan would report that half-written file.
//!   So a file that events showed being written is never reported by a scan, whatever its settle
//!   state: only its `CloseWrite` reports it (a writer that dies still closes its files, and the
//!   kernel still sends that). What notify 8 reports on Linux decides the rule: a write or a
//!   truncation is `Modify(Data(Any))`; creating a file is `Create(File)`; a close after writing is
//!   `Access(Close(Write))`; but every open, for reading or writing, is `Access(Open(Any))` and a
//!   close after reading is not reported at all, so an open says nothing. A file enters the set
//!   on `Modify(Data)` (or `Modify(Any)`), and on `Create(File)`, but then only while it is still
//!   empty: a hard link also raises a bare `Create` and never a `CloseWrite`, and a created file
//!   that has been written has raised `Modify` too. It leaves the set on `CloseWrite` (reported
//!   then), on a rename away or over it, and on a delete. Where events may have been lost (a queue
//!   overflow, a notify error, the inbox watch lost or re-armed, notify's thread gone) the set is
//!   cleared and those files fall back to the settle rule, as does any file past
//!   `MAX_FILES_BEING_WRITTEN`. Files present at start-up with no event since, and an existing
//!   file opened for writing but not written yet, keep the settle rule: no event shows them being
//!   written. And a `CloseWrite` cannot say which writer closed: a second writer's close reports
//!   a file that the first still holds open.
//!   Poll mode sees no events at all: there, the settle rule is the only rule.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::Metadata;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher as _};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use crate::config::WatchMode;

/// Events buffered between notify's thread and the watch task. When full, further events are
/// dropped and a rescan is requested instead: the thread never blocks and memory never grows.
const EVENT_QUEUE_CAPACITY: usize = 4096;

/// Files a single scan considers. Past this the rest of the listing is skipped (with a warning)
/// and picked up by later scans, once the consumer has claimed some: memory stays bounded however
/// full the inbox gets.
const MAX_FILES_PER_SCAN: usize = 100_000;

/// Least time between the end of one scan and the start of the next, so that an overflow storm or
/// a zero interval cannot turn the watcher into a busy loop listing the folder.
const MIN_SCAN_GAP: Duration = Duration::from_millis(50);

/// Files held as being written at once (see [`Writers`]). Past this, further files keep only the
/// settle rule (with a warning): memory stays bounded however many files are written at once.
const MAX_FILES_BEING_WRITTEN: usize = 10_000;

/// Stands in for a deadline that overflows `Instant` (a test's "never" settle time, say).
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// File name suffixes (compared ASCII case-insensitively) of files still being written.
const PARTIAL_SUFFIXES: [&[u8]; 2] = [b".part", b".tmp"];

/// What to watch and how often.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The folder vendors drop files into. Only its top level is watched: subfolders are not
    /// inbox files (and `processing/` etc. may live next to it).
    pub inbox: PathBuf,
    /// Notify for local disks; poll where inotify sees nothing (NFS/CIFS).
    pub mode: WatchMode,
    /// Notify mode: full rescan this often, backing notify up (events can be lost). In both
    /// modes, a file still in the inbox that was already sent is sent again after this long: the
    /// consumer may have failed to claim it, and re-sending it on every poll would only flood the
    /// channel with duplicates. e.g. 30 s.
    pub rescan_interval: Duration,
    /// Poll mode: how often the folder is listed; bounds how late a file is noticed. e.g. 2 s.
    pub poll_interval: Duration,
    /// A file found by a scan (not by a CloseWrite/MovedTo event) is reported only once its size
    /// and mtime have been unchanged for this long, so that a file still being copied is not
    /// claimed half-written. In notify mode a file that events showed being written is not
    /// reported by a scan at all until it is closed (see the module docs). e.g. 5 s.
    pub settle: Duration,
}

/// Whether a file name is a candidate: not a dot-file, not `*.part`, not `*.tmp`
/// (case-insensitive). Valid UTF-8 is not required.
pub fn is_candidate_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    if bytes.is_empty() || bytes[0] == b'.' {
        return false;
    }
    !PARTIAL_SUFFIXES.iter().any(|suffix| {
        bytes.len() >= suffix.len()
            && bytes[bytes.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    })
}

/// Why the watcher could not start. Once running, it never fails: trouble with the inbox is
/// logged and retried at the next scan.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The inbox is missing or cannot be listed.
    #[error("cannot read the inbox {}: {source} (create it, or fix paths.inbox)", path.display())]
    InboxUnreadable {
        /// The inbox, as configured.
        path: PathBuf,
        /// What the filesystem said.
        source: io::Error,
    },
    /// The inbox exists but is a file.
    #[error("the inbox {} is not a directory (fix paths.inbox)", path.display())]
    NotADirectory {
        /// The inbox, as configured.
        path: PathBuf,
    },
    /// inotify could not be set up on the inbox.
    #[error(
        "cannot watch the inbox {} with inotify: {source} (raise fs.inotify.max_user_instances \
         or max_user_watches, or set watch.mode = \"poll\")",
        path.display()
    )]
    Notify {
        /// The inbox, as configured.
        path: PathBuf,
        /// What notify said.
        source: notify::Error,
    },
}

/// Runs until `cancel` fires. Sends the path of each complete candidate regular file in the inbox
/// (top level only, no recursion) on `tx`; the same path may be sent more than once, and a file
/// that stays in the inbox is re-sent after `rescan_interval`. After the first full scan of the
/// inbox has been sent, `first_scan_done` gets `()` once: that is a scan `settle` after the first
/// listing (see the module docs). A full channel is waited on (backpressure); a closed channel
/// ends the watch with `Ok`. Only a failure at start (inbox missing or not a directory, inotify
/// setup) is `Err`.
pub async fn watch(
    opts: WatchOptions,
    tx: mpsc::Sender<PathBuf>,
    first_scan_done: oneshot::Sender<()>,
    cancel: CancellationToken,
) -> Result<(), WatchError> {
    let inbox_id = check_inbox(&opts.inbox).await?;
    let inotify = match opts.mode {
        WatchMode::Notify => Some(Inotify::start(&opts.inbox, inbox_id)?),
        WatchMode::Poll => None,
    };
    info!(inbox = %opts.inbox.display(), mode = ?opts.mode, "watching the inbox");
    let started = Instant::now();
    let mut watch = Watch {
        first_scan_due: None,
        opts,
        tx,
        cancel,
        seen: HashMap::new(),
        writers: Writers::default(),
        first_scan_done: Some(first_scan_done),
        inotify,
        periodic_due: started,
        settle_due: None,
        rescan_requested: false,
        earliest_scan: started,
        inbox_failing: false,
    };
    watch.run().await;
    Ok(())
}

/// Fails unless the inbox is a directory this process can list; returns its identity.
async fn check_inbox(inbox: &Path) -> Result<DirId, WatchError> {
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

/// Identity of a directory (device, inode): tells a re-created inbox from the one inotify watches.
type DirId = (u64, u64);

#[cfg(unix)]
fn dir_id(meta: &Metadata) -> DirId {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_id(_meta: &Metadata) -> DirId {
    (0, 0)
}

/// What a scan compares to decide whether a file is still changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Signature {
    /// Grows while a writer appends.
    len: u64,
    /// Changes on every write, even one that keeps the size; `None` where the platform has none.
    mtime: Option<SystemTime>,
}

impl Signature {
    fn of(meta: &Metadata) -> Self {
        Self {
            len: meta.len(),
            mtime: meta.modified().ok(),
        }
    }
}

/// What the watcher remembers about a file in the inbox, between scans.
#[derive(Debug)]
struct Seen {
    /// Size and mtime when last looked at.
    sig: Signature,
    /// When this signature was first observed: the settle time counts from here.
    changed_at: Instant,
    /// An event (CloseWrite/MovedTo) said the file is complete, so no settle wait is needed.
    complete: bool,
    /// When the file was last sent (at this signature), so a file still in the inbox is re-sent
    /// once per `rescan_interval` rather than at every scan.
    sent_at: Option<Instant>,
}

/// One file as a scan saw it.
struct Observed {
    /// `inbox/name`, built the same way as event paths so that both agree.
    path: PathBuf,
    /// Its size and mtime.
    sig: Signature,
    /// When it was looked at, right after the stat: settle time is measured between these.
    at: Instant,
}

/// The result of listing the inbox.
struct Listing {
    /// Candidate regular files, at most `MAX_FILES_PER_SCAN`.
    files: Vec<Observed>,
    /// Candidates left out past `MAX_FILES_PER_SCAN`.
    skipped: usize,
}

/// What events showed of a file being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Writing {
    /// Created (`Create(File)`), no write seen yet. Holds the file only while it is empty: a hard
    /// link raises the same bare `Create` but never a `CloseWrite`, and a writer's first write
    /// raises `Modify`, which makes this `Written`.
    Created,
    /// Written or truncated (`Modify(Data)`): held until closed.
    Written,
}

/// Notify mode: inbox candidates that events showed being written and that have not been closed,
/// renamed away or deleted since.
///
/// Why it exists: the settle rule alone takes a file whose writer paused for longer than `settle`
/// for a finished one, and the consumer would claim it half-written. Scans skip the files held
/// here; their `CloseWrite` reports them. Cleared whenever events may have been lost (those
/// files then fall back to the settle rule), and bounded by `MAX_FILES_BEING_WRITTEN`.
#[derive(Debug, Default)]
struct Writers {
    /// Path (as events and scans both build it, `inbox/name`) to what was seen.
    files: HashMap<PathBuf, Writing>,
    /// The bound was hit and a warning logged; warned again only once the set has drained to half.
    full_warned: bool,
}

impl Writers {
    /// `Create(File)`: held while empty. Never downgrades a file already seen written.
    fn created(&mut self, path: &Path) {
        if !self.files.contains_key(path) {
            self.insert(path, Writing::Created);
        }
    }

    /// `Modify(Data)`: held until closed.
    fn written(&mut self, path: &Path) {
        match self.files.get_mut(path) {
            Some(writing) => *writing = Writing::Written,
            None => self.insert(path, Writing::Written),
        }
    }

    fn insert(&mut self, path: &Path, writing: Writing) {
        if self.files.len() >= MAX_FILES_BEING_WRITTEN {
            if self.full_warned {
                debug!(path = %path.display(), limit = MAX_FILES_BEING_WRITTEN,
                    "too many files being written at once; the settle rule judges this one");
            } else {
                warn!(path = %path.display(), limit = MAX_FILES_BEING_WRITTEN,
                    "too many files being written at once; scans judge further ones by the \
                     settle rule alone and may take one whose writer pauses");
                self.full_warned = true;
            }
            return;
        }
        self.files.insert(path.to_owned(), writing);
    }

    /// Closed after writing, renamed away (or replaced by a rename), or deleted.
    fn finished(&mut self, path: &Path) {
        self.files.remove(path);
        if self.files.len() <= MAX_FILES_BEING_WRITTEN / 2 {
            self.full_warned = false;
        }
    }

    /// Forgets every file; returns how many there were.
    fn clear(&mut self) -> usize {
        let held = self.files.len();
        self.files.clear();
        self.full_warned = false;
        held
    }

    /// Whether a scan must leave `path`, now `len` bytes long, alone.
    fn holds(&self, path: &Path, len: u64) -> bool {
        match self.files.get(path) {
            Some(Writing::Written) => true,
            Some(Writing::Created) => len == 0,
            None => false,
        }
    }
}

/// The inotify side of notify mode.
struct Inotify {
    /// Owns notify's thread and the inotify watch; dropping it stops both.
    watcher: RecommendedWatcher,
    /// Events from notify's thread, bounded.
    events: mpsc::Receiver<notify::Result<Event>>,
    /// Signalled by notify's thread when `events` was full and an event was dropped: the task
    /// rescans. A permit is stored if the task is busy, so the wake-up is never lost.
    overflowed: Arc<Notify>,
    /// The directory the watch is on; `None` when it was lost (the inbox was deleted or moved).
    /// A scan that finds a different directory at the inbox path watches that one instead.
    watched: Option<DirId>,
}

impl Inotify {
    /// Starts watching `inbox` (identity `id`); must happen before the first scan, so that no file
    /// falls between the listing and the watch.
    fn start(inbox: &Path, id: DirId) -> Result<Self, WatchError> {
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
    fn rearm(&mut self, inbox: &Path, id: DirId) {
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

/// What woke the watch task.
enum Wake {
    /// Stop: shutdown, or nobody listens any more.
    Stop,
    /// notify delivered an event (or `None`: its thread is gone).
    Event(Option<notify::Result<Event>>),
    /// notify dropped events: rescan.
    Overflow,
    /// A scan is due.
    Scan,
}

/// The watch task's state.
struct Watch {
    /// What to watch and how often.
    opts: WatchOptions,
    /// Where complete files go.
    tx: mpsc::Sender<PathBuf>,
    /// Shutdown.
    cancel: CancellationToken,
    /// Every candidate file the last scan saw (plus those events reported since).
    seen: HashMap<PathBuf, Seen>,
    /// Notify mode: files events showed being written, not closed yet. Scans never report them,
    /// since a writer may pause for longer than `settle`; their `CloseWrite` does. Empty in poll
    /// mode (no events), and cleared whenever events may have been lost.
    writers: Writers,
    /// Sent, and taken, once the first full scan has been sent.
    first_scan_done: Option<oneshot::Sender<()>>,
    /// `settle` after the first successful listing ended: a scan starting then has watched every
    /// file present at start long enough to judge it, so it is the first full scan.
    first_scan_due: Option<Instant>,
    /// notify mode only.
    inotify: Option<Inotify>,
    /// When the next periodic scan (rescan or poll) is due.
    periodic_due: Instant,
    /// Notify mode: when the earliest file a scan saw still changing may have settled, so that it
    /// is reported then rather than a whole `rescan_interval` later.
    settle_due: Option<Instant>,
    /// Events were lost (queue overflow, notify error): scan as soon as `earliest_scan` allows.
    rescan_requested: bool,
    /// No scan before this (`MIN_SCAN_GAP` after the last one).
    earliest_scan: Instant,
    /// The last scan failed: its warning was logged, and the next success says so, once.
    inbox_failing: bool,
}

impl Watch {
    /// Handles events and scans until shutdown or until nobody listens.
    async fn run(&mut self) {
        let cancel = self.cancel.clone();
        let tx = self.tx.clone();
        loop {
            let due = self.next_scan_at();
            let overflowed = self.inotify.as_ref().map(|i| Arc::clone(&i.overflowed));
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => Wake::Stop,
                () = tx.closed() => Wake::Stop,
                // Before events, so that a flood of them cannot starve the scans.
                () = tokio::time::sleep_until(due) => Wake::Scan,
                () = overflow_signal(overflowed.as_deref()) => Wake::Overflow,
                event = next_event(&mut self.inotify) => Wake::Event(event),
            };
            let flow = match wake {
                Wake::Stop => ControlFlow::Break(()),
                Wake::Event(Some(event)) => self.on_event(event).await,
                Wake::Event(None) => {
                    warn!(inbox = %self.opts.inbox.display(), interval = ?self.opts.rescan_interval,
                        "inotify stopped delivering events; relying on rescans");
                    self.inotify = None;
                    // No CloseWrite will come any more.
                    self.forget_writers("inotify stopped");
                    ControlFlow::Continue(())
                }
                Wake::Overflow => self.on_overflow().await,
                Wake::Scan => self.scan().await,
            };
            if flow.is_break() {
                return;
            }
        }
    }

    /// When the next scan should start.
    fn next_scan_at(&self) -> Instant {
        let mut due = self.periodic_due;
        if self.rescan_requested {
            due = Instant::now();
        }
        if let Some(settle_due) = self.settle_due {
            due = due.min(settle_due);
        }
        if let (Some(_), Some(first)) = (&self.first_scan_done, self.first_scan_due) {
            due = due.min(first);
        }
        due.max(self.earliest_scan)
    }

    /// notify's thread dropped an event (our queue was full): rescan, and forget which files are
    /// being written, since the lost event may be a `CloseWrite`.
    async fn on_overflow(&mut self) -> ControlFlow<()> {
        debug!(inbox = %self.opts.inbox.display(), "inotify events dropped; rescanning");
        // Every event queued before the lost one is still in the queue (it was full): handle them
        // before forgetting, or one of them could hold a file again whose close was lost.
        for _ in 0..EVENT_QUEUE_CAPACITY {
            let Some(event) = self.inotify.as_mut().and_then(|i| i.events.try_recv().ok()) else {
                break;
            };
            self.on_event(event).await?;
        }
        self.forget_writers("inotify events were dropped");
        self.rescan_requested = true;
        ControlFlow::Continue(())
    }

    /// Forgets which files are being written (events may have been lost): the settle rule judges
    /// them from now on.
    fn forget_writers(&mut self, why: &str) {
        let held = self.writers.clear();
        if held > 0 {
            debug!(inbox = %self.opts.inbox.display(), files = held, why,
                "forgetting which files are being written; the settle rule applies to them");
        }
    }

    /// Whether `path` is a candidate name directly in the inbox (not yet whether a regular file).
    fn in_inbox(&self, path: &Path) -> bool {
        path.parent() == Some(self.opts.inbox.as_path())
            && path.file_name().is_some_and(is_candidate_name)
    }

    /// Keeps `writers` up to date with an event (see the module docs).
    fn track_writers(&mut self, event: &Event) {
        match event.kind {
            EventKind::Create(CreateKind::File) => {
                for path in &event.paths {
                    if self.in_inbox(path) {
                        self.writers.created(path);
                    }
                }
            }
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
                for path in &event.paths {
                    if self.in_inbox(path) {
                        self.writers.written(path);
                    }
                }
            }
            // Closed after writing; renamed away, or replaced by a file renamed over it (complete:
            // the inode being written is no longer in the inbox); deleted.
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(_))
            | EventKind::Remove(_) => {
                for path in &event.paths {
                    self.writers.finished(path);
                }
            }
            _ => {}
        }
    }

    /// Tracks files being written, reports the file an event says is complete; requests a rescan
    /// (and forgets which files are being written) if events were lost.
    async fn on_event(&mut self, event: notify::Result<Event>) -> ControlFlow<()> {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(inbox = %self.opts.inbox.display(), error = %e,
                    "inotify reported an error; rescanning");
                self.rescan_requested = true;
                self.forget_writers("inotify reported an error");
                return ControlFlow::Continue(());
            }
        };
        if event.need_rescan() {
            debug!(inbox = %self.opts.inbox.display(), "inotify queue overflowed; rescanning");
            self.rescan_requested = true;
            self.forget_writers("the inotify queue overflowed");
        }
        self.track_writers(&event);
        let arrived: &[PathBuf] = match event.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write))
            | EventKind::Modify(ModifyKind::Name(RenameMode::To)) => &event.paths,
            // [from, to]; on Linux a `To` for the same path came just before: a harmless duplicate.
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => match event.paths.last() {
                Some(to) => std::slice::from_ref(to),
                None => &[],
            },
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From))
                if event.paths.iter().any(|p| p == &self.opts.inbox) =>
            {
                warn!(inbox = %self.opts.inbox.display(),
                    "the inbox was removed or moved away; watching again once it is back");
                if let Some(inotify) = &mut self.inotify {
                    inotify.watched = None;
                }
                self.forget_writers("the inbox watch was lost");
                &[]
            }
            _ => &[],
        };
        for path in arrived {
            self.on_arrival(path).await?;
        }
        ControlFlow::Continue(())
    }

    /// Sends `path` if it is a candidate regular file directly in the inbox.
    async fn on_arrival(&mut self, path: &Path) -> ControlFlow<()> {
        if !self.in_inbox(path) {
            return ControlFlow::Continue(());
        }
        let meta = match tokio::fs::symlink_metadata(path).await {
            Ok(meta) if meta.is_file() => meta,
            // Gone already (claimed by another instance, say), or not a regular file.
            _ => return ControlFlow::Continue(()),
        };
        let now = Instant::now();
        self.seen.insert(
            path.to_owned(),
            Seen {
                sig: Signature::of(&meta),
                changed_at: now,
                complete: true,
                sent_at: Some(now),
            },
        );
        self.send(path.to_owned()).await
    }

    /// Lists the inbox, sends every settled file not sent within `rescan_interval`, and sends
    /// `first_scan_done` after the first full scan.
    async fn scan(&mut self) -> ControlFlow<()> {
        let started = Instant::now();
        self.rescan_requested = false;
        match self.list().await {
            None => return ControlFlow::Break(()),
            Some(Err(e)) => self.scan_failed(&e),
            Some(Ok(listing)) => {
                // Every file the first listing saw has been watched for `settle` by a scan that
                // starts this late: that scan is the first full one.
                let first_due = *self
                    .first_scan_due
                    .get_or_insert_with(|| later(Instant::now(), self.opts.settle));
                self.report(listing).await?;
                if (started >= first_due || self.opts.settle.is_zero())
                    && let Some(done) = self.first_scan_done.take()
                {
                    // The daemon may have stopped listening; nothing to do about it here.
                    let _ = done.send(());
                }
            }
        }
        let finished = Instant::now();
        self.earliest_scan = finished + MIN_SCAN_GAP;
        let period = match self.opts.mode {
            WatchMode::Notify => self.opts.rescan_interval,
            WatchMode::Poll => self.opts.poll_interval,
        };
        self.periodic_due = later(finished, period);
        ControlFlow::Continue(())
    }

    /// Re-arms inotify if the inbox was re-created, then lists it. `None`: cancelled meanwhile.
    async fn list(&mut self) -> Option<io::Result<Listing>> {
        let inbox = self.opts.inbox.clone();
        let id = self
            .blocking(move || std::fs::metadata(&inbox).map(|m| dir_id(&m)))
            .await?;
        let id = match id {
            Ok(id) => id,
            Err(e) => return Some(Err(e)),
        };
        if let Some(inotify) = &mut self.inotify
            && inotify.watched != Some(id)
        {
            // Before the listing, so that nothing created meanwhile is missed.
            inotify.rearm(&self.opts.inbox, id);
            // Events from before the new watch are lost.
            self.forget_writers("the inbox is watched anew");
        }
        let inbox = self.opts.inbox.clone();
        self.blocking(move || list_inbox(&inbox)).await
    }

    /// Runs filesystem calls off the async threads; `None` if cancelled meanwhile (a hung NFS
    /// mount must not keep the daemon from stopping).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> io::Result<T> + Send + 'static,
    ) -> Option<io::Result<T>> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => None,
            joined = tokio::task::spawn_blocking(f) => {
                Some(joined.unwrap_or_else(|join| Err(io::Error::other(join))))
            }
        }
    }

    /// Logs a failed listing (a warning once per outage, then debug) and forgets the inotify
    /// watch, so that whatever folder comes back at the inbox path is watched afresh.
    fn scan_failed(&mut self, e: &io::Error) {
        if !self.inbox_failing {
            warn!(inbox = %self.opts.inbox.display(), error = %e,
                "cannot list the inbox; retrying at the next scan");
        } else {
            debug!(inbox = %self.opts.inbox.display(), error = %e, "inbox still unreadable");
        }
        self.inbox_failing = true;
        if let Some(inotify) = &mut self.inotify {
            // Whatever comes back at that path gets a fresh watch.
            inotify.watched = None;
        }
    }

    /// Applies the settle rule to a listing, except to files being written, and sends what is due.
    async fn report(&mut self, listing: Listing) -> ControlFlow<()> {
        if self.inbox_failing {
            info!(inbox = %self.opts.inbox.display(), "the inbox can be listed again");
            self.inbox_failing = false;
        }
        if listing.skipped > 0 {
            warn!(inbox = %self.opts.inbox.display(), skipped = listing.skipped,
                limit = MAX_FILES_PER_SCAN,
                "too many files in the inbox; the rest are left for later scans");
        }
        let mut previous = std::mem::take(&mut self.seen);
        let mut due = Vec::new();
        let mut settle_due: Option<Instant> = None;
        for file in listing.files {
            let seen = match previous.remove(&file.path) {
                Some(seen) if seen.sig == file.sig => seen,
                _ => Seen {
                    sig: file.sig,
                    changed_at: file.at,
                    complete: false,
                    sent_at: None,
                },
            };
            let settled =
                seen.complete || file.at.duration_since(seen.changed_at) >= self.opts.settle;
            if self.writers.holds(&file.path, file.sig.len) {
                // Being written: its CloseWrite reports it, not a scan (nor a wake-up to judge it).
            } else if !settled {
                let at = later(seen.changed_at, self.opts.settle);
                settle_due = Some(settle_due.map_or(at, |d| d.min(at)));
            } else if seen
                .sent_at
                .is_none_or(|sent| file.at.duration_since(sent) >= self.opts.rescan_interval)
            {
                due.push(file.path.clone());
            }
            self.seen.insert(file.path, seen);
        }
        self.settle_due = match self.opts.mode {
            WatchMode::Notify => settle_due,
            // Poll mode lists on its own schedule only.
            WatchMode::Poll => None,
        };
        due.sort();
        for path in due {
            if let Some(seen) = self.seen.get_mut(&path) {
                seen.sent_at = Some(Instant::now());
            }
            self.send(path).await?;
        }
        ControlFlow::Continue(())
    }

    /// Sends one path, waiting while the channel is full. `Break` on shutdown or a closed channel.
    async fn send(&self, path: PathBuf) -> ControlFlow<()> {
        debug!(path = %path.display(), "complete file in the inbox");
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => ControlFlow::Break(()),
            sent = self.tx.send(path) => match sent {
                Ok(()) => ControlFlow::Continue(()),
                Err(_) => ControlFlow::Break(()),
            },
        }
    }
}

/// `t + d`, or far in the future if that overflows.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or_else(|| t + FAR_FUTURE)
}

/// The next notify event; never resolves in poll mode.
async fn next_event(inotify: &mut Option<Inotify>) -> Option<notify::Result<Event>> {
    match inotify {
        Some(inotify) => inotify.events.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when notify dropped events; never in poll mode.
async fn overflow_signal(overflowed: Option<&Notify>) {
    match overflowed {
        Some(overflowed) => overflowed.notified().await,
        None => std::future::pending().await,
    }
}

/// Candidate regular files at the top of `inbox` with their signatures (blocking).
fn list_inbox(inbox: &Path) -> io::Result<Listing> {
    let mut listing = Listing {
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
                debug!(path = %entry.path().display(), error = %e, "cannot stat an inbox entry");
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
            sig: Signature::of(&meta),
            at: Instant::now(),
        });
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(name: &str) -> bool {
        is_candidate_name(OsStr::new(name))
    }

    #[test]
    fn bar_files_are_candidates() {
        assert!(candidate("AAPL_full_1min_adjsplit.txt"));
        assert!(candidate("BRK.B_full_1min_adjsplit.txt"));
        assert!(candidate("no_extension"));
        assert!(candidate("part"));
        assert!(candidate("tmp"));
        assert!(candidate("x.partial"));
        assert!(candidate("x.tmpl"));
        assert!(candidate("x.part.txt"));
    }

    #[test]
    fn dot_files_are_not_candidates() {
        assert!(!candidate(".hidden"));
        assert!(!candidate(".AAPL_full_1min_adjsplit.txt.Xa1b2c")); // rsync's temp file
        assert!(!candidate("."));
        assert!(!candidate(".."));
        assert!(!candidate(""));
    }

    #[test]
    fn partial_suffixes_are_not_candidates_in_any_case() {
        for name in [
            "x.part",
            "x.PART",
            "x.Part",
            "x.tmp",
            "x.TMP",
            "x.txt.tmp",
            "x.txt.part",
        ] {
            assert!(!candidate(name), "{name}");
        }
    }

    #[test]
    fn written_files_are_held_until_finished() {
        let mut writers = Writers::default();
        let a = Path::new("/inbox/a.txt");
        assert!(!writers.holds(a, 0));
        writers.written(a);
        assert!(writers.holds(a, 0));
        assert!(writers.holds(a, 100));
        // A later Create (events out of step) does not release it.
        writers.created(a);
        assert!(writers.holds(a, 100));
        writers.finished(a);
        assert!(!writers.holds(a, 0));
        assert!(!writers.holds(a, 100));
    }

    #[test]
    fn created_files_are_held_only_while_empty_until_written() {
        let mut writers = Writers::default();
        let a = Path::new("/inbox/a.txt");
        writers.created(a);
        // Empty: a writer may be about to write.
        assert!(writers.holds(a, 0));
        // Not empty and no write seen: a hard link, complete; the settle rule judges it.
        assert!(!writers.holds(a, 10));
        writers.written(a);
        assert!(writers.holds(a, 10));
    }

    #[test]
    fn clear_forgets_every_file() {
        let mut writers = Writers::default();
        writers.written(Path::new("/inbox/a.txt"));
        writers.created(Path::new("/inbox/b.txt"));
        assert_eq!(writers.clear(), 2);
        assert!(!writers.holds(Path::new("/inbox/a.txt"), 1));
        assert!(!writers.holds(Path::new("/inbox/b.txt"), 0));
        assert_eq!(writers.clear(), 0);
    }

    #[test]
    fn files_past_the_bound_fall_back_to_the_settle_rule() {
        let mut writers = Writers::default();
        let path = |i: usize| PathBuf::from(format!("/inbox/f{i}.txt"));
        for i in 0..MAX_FILES_BEING_WRITTEN {
            writers.written(&path(i));
        }
        let extra = path(MAX_FILES_BEING_WRITTEN);
        writers.written(&extra);
        assert!(!writers.holds(&extra, 1), "held past the bound");
        assert_eq!(writers.files.len(), MAX_FILES_BEING_WRITTEN);
        // Files already held stay held, and may still change state.
        writers.created(&path(0));
        assert!(writers.holds(&path(0), 1));
        // Room again: held again.
        writers.finished(&path(0));
        writers.written(&extra);
        assert!(writers.holds(&extra, 1));
    }

    #[cfg(unix)]
    #[test]
    fn names_need_not_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        assert!(is_candidate_name(OsStr::from_bytes(b"bars\xff.txt")));
        assert!(!is_candidate_name(OsStr::from_bytes(b"bars\xff.PaRt")));
        assert!(!is_candidate_name(OsStr::from_bytes(b".\xff")));
    }
}
