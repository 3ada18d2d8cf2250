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
//!
//! Layout: [`state`] makes every decision above as a pure state machine (plain inputs, the time
//! passed in, no I/O); `os` lists the inbox, runs inotify and translates its events; this file
//! holds the public API and `watch()`, the driver that feeds one to the other and sends.

use std::ffi::OsStr;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Event;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::names::Shown;

mod os;
#[doc(hidden)]
pub mod state;

use os::Inotify;
use state::{EventOutcome, WatchState};

pub use crate::config::WatchMode;

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
    let inbox_id = os::check_inbox(&opts.inbox).await?;
    let inotify = match opts.mode {
        WatchMode::Notify => Some(Inotify::start(&opts.inbox, inbox_id)?),
        WatchMode::Poll => None,
    };
    info!(inbox = %opts.inbox.display(), mode = ?opts.mode, "watching the inbox");
    let mut watch = Watch {
        state: WatchState::new(opts.clone(), Instant::now()),
        opts,
        tx,
        cancel,
        first_scan_done: Some(first_scan_done),
        inotify,
        inbox_failing: false,
    };
    watch.run().await;
    Ok(())
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

/// The watch task: gathers events and listings from the OS, feeds them to the [`WatchState`],
/// and sends what it says.
struct Watch {
    /// What to watch and how often.
    opts: WatchOptions,
    /// Every decision: what to report, when to scan.
    state: WatchState,
    /// Where complete files go.
    tx: mpsc::Sender<PathBuf>,
    /// Shutdown.
    cancel: CancellationToken,
    /// Sent, and taken, once the state says the first full scan has been sent.
    first_scan_done: Option<oneshot::Sender<()>>,
    /// notify mode only.
    inotify: Option<Inotify>,
    /// The last scan failed: its warning was logged, and the next success says so, once.
    inbox_failing: bool,
}

impl Watch {
    /// Handles events and scans until shutdown or until nobody listens.
    async fn run(&mut self) {
        let cancel = self.cancel.clone();
        let tx = self.tx.clone();
        loop {
            let due = self.state.next_due();
            let overflowed = self.inotify.as_ref().map(|i| Arc::clone(&i.overflowed));
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => Wake::Stop,
                () = tx.closed() => Wake::Stop,
                // Before events, so that a flood of them cannot starve the scans.
                () = tokio::time::sleep_until(due) => Wake::Scan,
                () = os::overflow_signal(overflowed.as_deref()) => Wake::Overflow,
                event = os::next_event(&mut self.inotify) => Wake::Event(event),
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

    /// notify's thread dropped an event (our queue was full): rescan, and forget which files are
    /// being written, since the lost event may be a `CloseWrite`.
    async fn on_overflow(&mut self) -> ControlFlow<()> {
        debug!(inbox = %self.opts.inbox.display(), "inotify events dropped; rescanning");
        // Every event queued before the lost one is still in the queue (it was full): handle them
        // before forgetting, or one of them could hold a file again whose close was lost.
        for _ in 0..os::EVENT_QUEUE_CAPACITY {
            let Some(event) = self.inotify.as_mut().and_then(|i| i.events.try_recv().ok()) else {
                break;
            };
            self.on_event(event).await?;
        }
        self.lost_events("inotify events were dropped");
        ControlFlow::Continue(())
    }

    /// Events may have been lost: the state forgets which files are being written and asks for
    /// a rescan.
    fn lost_events(&mut self, why: &str) {
        let held = self.state.on_lost_events(Instant::now());
        self.log_forgotten(held, why);
    }

    /// No event will tell of earlier writes: the settle rule judges the files being written.
    fn forget_writers(&mut self, why: &str) {
        let held = self.state.forget_writers();
        self.log_forgotten(held, why);
    }

    fn log_forgotten(&self, held: usize, why: &str) {
        if held > 0 {
            debug!(inbox = %self.opts.inbox.display(), files = held, why,
                "forgetting which files are being written; the settle rule applies to them");
        }
    }

    /// Feeds an event to the state and sends the file it says is complete; requests a rescan
    /// (and forgets which files are being written) if events were lost.
    async fn on_event(&mut self, event: notify::Result<Event>) -> ControlFlow<()> {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                warn!(inbox = %self.opts.inbox.display(), error = %e,
                    "inotify reported an error; rescanning");
                self.lost_events("inotify reported an error");
                return ControlFlow::Continue(());
            }
        };
        if event.need_rescan() {
            debug!(inbox = %self.opts.inbox.display(), "inotify queue overflowed; rescanning");
            self.lost_events("the inotify queue overflowed");
        }
        for (kind, path) in os::file_events(&event) {
            if self.state.on_event(kind, path) == EventOutcome::Complete {
                self.on_complete(path).await?;
            }
        }
        if os::inbox_gone(&event, &self.opts.inbox) {
            warn!(inbox = %self.opts.inbox.display(),
                "the inbox was removed or moved away; watching again once it is back");
            if let Some(inotify) = &mut self.inotify {
                inotify.watched = None;
            }
            self.forget_writers("the inbox watch was lost");
        }
        ControlFlow::Continue(())
    }

    /// Sends `path`, which an event said is complete, if it is (still) a regular file.
    async fn on_complete(&mut self, path: &Path) -> ControlFlow<()> {
        let Some(sig) = os::regular_file(path).await else {
            return ControlFlow::Continue(());
        };
        self.state.on_complete(path.to_owned(), sig, Instant::now());
        self.send(path.to_owned()).await
    }

    /// Lists the inbox, sends every file the state says is due, and sends `first_scan_done`
    /// after the first full scan.
    async fn scan(&mut self) -> ControlFlow<()> {
        let started = Instant::now();
        match self.list(started).await {
            None => return ControlFlow::Break(()),
            Some(Err(e)) => self.scan_failed(&e),
            Some(Ok(listing)) => {
                self.log_listing(&listing);
                let report = self.state.on_listing(listing, Instant::now());
                for path in report.due {
                    self.send(path).await?;
                }
                if report.first_scan_done
                    && let Some(done) = self.first_scan_done.take()
                {
                    // The daemon may have stopped listening; nothing to do about it here.
                    let _ = done.send(());
                }
            }
        }
        self.state.on_scan_finished(Instant::now());
        ControlFlow::Continue(())
    }

    /// Re-arms inotify if the inbox was re-created, then lists it. `None`: cancelled meanwhile.
    async fn list(&mut self, started: Instant) -> Option<io::Result<state::Listing>> {
        let inbox = self.opts.inbox.clone();
        let id = self
            .blocking(move || std::fs::metadata(&inbox).map(|m| os::dir_id(&m)))
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
        self.blocking(move || os::list_inbox(&inbox, started)).await
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

    /// Logs a listing's news: the inbox readable again, files left for later scans.
    fn log_listing(&mut self, listing: &state::Listing) {
        if self.inbox_failing {
            info!(inbox = %self.opts.inbox.display(), "the inbox can be listed again");
            self.inbox_failing = false;
        }
        if listing.skipped > 0 {
            warn!(inbox = %self.opts.inbox.display(), skipped = listing.skipped,
                limit = os::MAX_FILES_PER_SCAN,
                "too many files in the inbox; the rest are left for later scans");
        }
    }

    /// Sends one path, waiting while the channel is full. `Break` on shutdown or a closed channel.
    async fn send(&self, path: PathBuf) -> ControlFlow<()> {
        debug!(path = %Shown(&path), "complete file in the inbox");
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

    #[cfg(unix)]
    #[test]
    fn names_need_not_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        assert!(is_candidate_name(OsStr::from_bytes(b"bars\xff.txt")));
        assert!(!is_candidate_name(OsStr::from_bytes(b"bars\xff.PaRt")));
        assert!(!is_candidate_name(OsStr::from_bytes(b".\xff")));
    }
}
