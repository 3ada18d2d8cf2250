//! The watcher's decisions as a pure state machine: which files to report, and when to scan.
//!
//! It reads no clock and touches no file: the driver (`watch()`) hands it what the OS said (an
//! inotify event, a listing of the inbox, that events were lost) together with the time it
//! happened, and it answers with the paths to report and when the next scan is due. The rules it
//! applies are those of the module docs of [`super`]: events report closed and moved-in files,
//! scans report settled files, files that events showed being written are left to their close.
//!
//! Public (but hidden from the docs) so that `tests/watch_model.rs` can run it against a model
//! file system; nothing outside the watcher uses it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::names::Shown;

use super::{WatchMode, WatchOptions, is_candidate_name};

/// Least time between the end of one scan and the start of the next, so that an overflow storm or
/// a zero interval cannot turn the watcher into a busy loop listing the folder.
pub const MIN_SCAN_GAP: Duration = Duration::from_millis(50);

/// Files held as being written at once (see [`Writers`]). Past this, further files keep only the
/// settle rule (with a warning): memory stays bounded however many files are written at once.
const MAX_FILES_BEING_WRITTEN: usize = 10_000;

/// Stands in for a deadline that overflows `Instant` (a test's "never" settle time, say).
const FAR_FUTURE: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// What a scan compares to decide whether a file is still changing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    /// Grows while a writer appends.
    pub len: u64,
    /// Changes on every write, even one that keeps the size; `None` where the platform has none.
    pub mtime: Option<SystemTime>,
}

/// One file as a scan saw it.
#[derive(Debug, Clone)]
pub struct Observed {
    /// `inbox/name`, built the same way as event paths so that both agree.
    pub path: PathBuf,
    /// Its size and mtime.
    pub sig: Signature,
    /// When it was looked at, right after the stat: settle time is measured between these.
    pub at: Instant,
}

/// The result of listing the inbox.
#[derive(Debug, Clone)]
pub struct Listing {
    /// When the listing started: a scan that starts `settle` after the first listing ended has
    /// watched every file present at start-up long enough to judge it.
    pub started: Instant,
    /// Candidate regular files (the driver filters names and file types, and bounds the count).
    pub files: Vec<Observed>,
    /// Candidates left out past the driver's bound (logged by the driver; later scans take them).
    pub skipped: usize,
}

/// What a listing decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListingReport {
    /// Complete files to send, sorted; already recorded as sent at the listing's time.
    pub due: Vec<PathBuf>,
    /// This was the first full scan: send `first_scan_done` once these are sent. True once only.
    pub first_scan_done: bool,
}

/// One inotify event, reduced to what the watcher acts on (the driver translates notify's kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    /// `Create(File)`: a new file, maybe about to be written (or a hard link, complete).
    Created,
    /// `Modify(Data)` or `Modify(Any)`: written or truncated.
    Written,
    /// `Access(Close(Write))`: closed after writing.
    ClosedAfterWrite,
    /// `Modify(Name(To))`, or the destination of `Modify(Name(Both))`: renamed into the inbox.
    MovedIn,
    /// Any other rename (`From`, the source of `Both`, `Any`): no longer at this path.
    MovedAway,
    /// `Remove(_)`: deleted.
    Removed,
}

/// What an event means for its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum EventOutcome {
    /// Nothing to report.
    Nothing,
    /// The file is complete if it is (still) a regular file: the driver stats it and, if so,
    /// calls [`WatchState::on_complete`] and sends it.
    Complete,
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
                debug!(path = %Shown(path), limit = MAX_FILES_BEING_WRITTEN,
                    "too many files being written at once; the settle rule judges this one");
            } else {
                warn!(path = %Shown(path), limit = MAX_FILES_BEING_WRITTEN,
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

/// The watcher's memory and rules, without I/O. Every input carries the time it happened.
#[derive(Debug)]
pub struct WatchState {
    /// What to watch and how often (only the inbox path, mode and durations are used).
    opts: WatchOptions,
    /// Every candidate file the last scan saw (plus those events reported since).
    seen: HashMap<PathBuf, Seen>,
    /// Notify mode: files events showed being written, not closed yet. Scans never report them,
    /// since a writer may pause for longer than `settle`; their `CloseWrite` does. Empty in poll
    /// mode (no events), and cleared whenever events may have been lost.
    writers: Writers,
    /// `first_scan_done` has not been reported yet.
    first_scan_pending: bool,
    /// `settle` after the first successful listing ended: a scan starting then has watched every
    /// file present at start long enough to judge it, so it is the first full scan.
    first_scan_due: Option<Instant>,
    /// When the next periodic scan (rescan or poll) is due.
    periodic_due: Instant,
    /// Notify mode: when the earliest file a scan saw still changing may have settled, so that it
    /// is reported then rather than a whole `rescan_interval` later.
    settle_due: Option<Instant>,
    /// Events were lost (queue overflow, notify error) at this time: scan as soon as
    /// `earliest_scan` allows.
    rescan_requested: Option<Instant>,
    /// No scan before this (`MIN_SCAN_GAP` after the last one).
    earliest_scan: Instant,
}

impl WatchState {
    /// A watcher started at `now`: its first scan is due at once.
    pub fn new(opts: WatchOptions, now: Instant) -> Self {
        Self {
            opts,
            seen: HashMap::new(),
            writers: Writers::default(),
            first_scan_pending: true,
            first_scan_due: None,
            periodic_due: now,
            settle_due: None,
            rescan_requested: None,
            earliest_scan: now,
        }
    }

    /// When the next scan should start (it may be in the past: then at once).
    pub fn next_due(&self) -> Instant {
        let mut due = self.periodic_due;
        if let Some(requested) = self.rescan_requested {
            due = due.min(requested);
        }
        if let Some(settle_due) = self.settle_due {
            due = due.min(settle_due);
        }
        if let (true, Some(first)) = (self.first_scan_pending, self.first_scan_due) {
            due = due.min(first);
        }
        due.max(self.earliest_scan)
    }

    /// Whether `path` is a candidate name directly in the inbox (not yet whether a regular file).
    pub fn in_inbox(&self, path: &Path) -> bool {
        path.parent() == Some(self.opts.inbox.as_path())
            && path.file_name().is_some_and(is_candidate_name)
    }

    /// Keeps track of files being written (see the module docs of [`super`]); says whether the
    /// event reports `path` as complete.
    pub fn on_event(&mut self, event: FileEvent, path: &Path) -> EventOutcome {
        match event {
            FileEvent::Created if self.in_inbox(path) => self.writers.created(path),
            FileEvent::Written if self.in_inbox(path) => self.writers.written(path),
            FileEvent::Created | FileEvent::Written => {}
            // Closed after writing, or renamed in (replacing whatever was being written there).
            FileEvent::ClosedAfterWrite | FileEvent::MovedIn => {
                self.writers.finished(path);
                if self.in_inbox(path) {
                    return EventOutcome::Complete;
                }
            }
            FileEvent::MovedAway | FileEvent::Removed => self.writers.finished(path),
        }
        EventOutcome::Nothing
    }

    /// An event said `path` is complete and a stat found this regular file at `now`: it is sent
    /// now (whenever it was last sent) and counts as settled until its signature changes.
    pub fn on_complete(&mut self, path: PathBuf, sig: Signature, now: Instant) {
        let seen = Seen {
            sig,
            changed_at: now,
            complete: true,
            sent_at: Some(now),
        };
        self.seen.insert(path, seen);
    }

    /// Events may have been lost (a queue overflow, a notify error): forgets which files are being
    /// written (the lost event may be their close) and asks for a scan as soon as allowed.
    /// Returns how many files were being written.
    pub fn on_lost_events(&mut self, now: Instant) -> usize {
        self.rescan_requested.get_or_insert(now);
        self.writers.clear()
    }

    /// No event will tell of writes before now (the inbox watch was lost or re-armed, or inotify
    /// stopped): forgets which files are being written; the settle rule judges them from now on.
    /// Returns how many there were.
    pub fn forget_writers(&mut self) -> usize {
        self.writers.clear()
    }

    /// Applies the settle rule to a listing made at `now` (except to files being written) and
    /// says which files to send; those count as sent at `now`.
    pub fn on_listing(&mut self, listing: Listing, now: Instant) -> ListingReport {
        // Every file the first listing saw has been watched for `settle` by a scan that starts
        // this late: that scan is the first full one.
        let first_due = *self
            .first_scan_due
            .get_or_insert_with(|| later(now, self.opts.settle));
        let due = self.judge(listing.files, now);
        let first_scan_done =
            self.first_scan_pending && (listing.started >= first_due || self.opts.settle.is_zero());
        if first_scan_done {
            self.first_scan_pending = false;
        }
        ListingReport {
            due,
            first_scan_done,
        }
    }

    /// A scan (successful or not) ended at `now`: schedules the next one.
    pub fn on_scan_finished(&mut self, now: Instant) {
        self.rescan_requested = None;
        self.earliest_scan = later(now, MIN_SCAN_GAP);
        let period = match self.opts.mode {
            WatchMode::Notify => self.opts.rescan_interval,
            WatchMode::Poll => self.opts.poll_interval,
        };
        self.periodic_due = later(now, period);
    }

    /// The settle rule over `files`: replaces what was seen, returns the files due (sorted) and
    /// marks them sent at `now`.
    fn judge(&mut self, files: Vec<Observed>, now: Instant) -> Vec<PathBuf> {
        let mut previous = std::mem::take(&mut self.seen);
        let mut due = Vec::new();
        let mut settle_due: Option<Instant> = None;
        for file in files {
            let mut seen = match previous.remove(&file.path) {
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
                seen.sent_at = Some(now);
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
        due
    }
}

/// `t + d`, or far in the future if that overflows.
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).unwrap_or_else(|| t + FAR_FUTURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(200);
    const RESCAN: Duration = Duration::from_millis(1000);

    fn opts(mode: WatchMode) -> WatchOptions {
        WatchOptions {
            inbox: PathBuf::from("/inbox"),
            mode,
            rescan_interval: RESCAN,
            poll_interval: Duration::from_millis(100),
            settle: SETTLE,
        }
    }

    /// `t0 + ms`.
    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    /// A listing at `t` of files `(name, len)`, each with an mtime of `len` seconds.
    fn listing(t: Instant, files: &[(&str, u64)]) -> Listing {
        let files = files.iter().map(|&(name, len)| Observed {
            path: Path::new("/inbox").join(name),
            sig: Signature {
                len,
                mtime: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(len)),
            },
            at: t,
        });
        Listing {
            started: t,
            files: files.collect(),
            skipped: 0,
        }
    }

    /// Lists at `t` and finishes the scan there; returns the names sent.
    fn scan(state: &mut WatchState, t: Instant, files: &[(&str, u64)]) -> Vec<String> {
        let report = state.on_listing(listing(t, files), t);
        state.on_scan_finished(t);
        let name = |p: PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
        report.due.into_iter().filter_map(name).collect()
    }

    /// A notify-mode state whose first full scan (of an empty inbox) is done; and its time.
    fn running() -> (WatchState, Instant) {
        let t0 = Instant::now();
        let mut state = WatchState::new(opts(WatchMode::Notify), t0);
        assert!(scan(&mut state, t0, &[]).is_empty());
        assert_eq!(state.next_due(), t0 + SETTLE);
        let report = state.on_listing(listing(t0 + SETTLE, &[]), t0 + SETTLE);
        assert!(report.first_scan_done);
        state.on_scan_finished(t0 + SETTLE);
        (state, t0 + SETTLE)
    }

    /// The proof that `tests/watch.rs` cannot give: a file whose `CloseWrite` was lost (with the
    /// overflow that says so) is reported by the rescan the loss asks for, as soon as it has
    /// settled; until the loss is known, scans leave the held file alone however long it idles.
    #[test]
    fn file_whose_close_was_lost_in_an_overflow_is_reported_by_the_rescan() {
        let (mut state, t) = running();
        let a = Path::new("/inbox/a.txt");
        assert_eq!(state.on_event(FileEvent::Created, a), EventOutcome::Nothing);
        assert_eq!(state.on_event(FileEvent::Written, a), EventOutcome::Nothing);
        // Idle far past `settle`, still held: not reported.
        assert!(scan(&mut state, at(t, 100), &[("a.txt", 10)]).is_empty());
        assert_eq!(
            state.next_due(),
            at(t, 1100),
            "no settle wake-up for a held file"
        );
        assert!(scan(&mut state, at(t, 1100), &[("a.txt", 10)]).is_empty());
        // The close is lost; the overflow says so: a rescan at once (past the scan gap).
        assert_eq!(state.on_lost_events(at(t, 1120)), 1);
        assert_eq!(state.next_due(), at(t, 1100) + MIN_SCAN_GAP);
        assert_eq!(scan(&mut state, at(t, 1150), &[("a.txt", 10)]), ["a.txt"]);
    }

    #[test]
    fn lost_events_request_a_scan_only_once_the_gap_has_passed() {
        let (mut state, t) = running();
        assert_eq!(state.on_lost_events(at(t, 10)), 0);
        assert_eq!(state.next_due(), t + MIN_SCAN_GAP);
        scan(&mut state, t + MIN_SCAN_GAP, &[]);
        assert_eq!(state.next_due(), t + MIN_SCAN_GAP + RESCAN);
    }

    #[test]
    fn held_file_is_reported_by_its_close_and_then_not_again_within_the_rescan_interval() {
        let (mut state, t) = running();
        let a = Path::new("/inbox/a.txt");
        let _ = state.on_event(FileEvent::Written, a);
        let closed = state.on_event(FileEvent::ClosedAfterWrite, a);
        assert_eq!(closed, EventOutcome::Complete);
        let sig = listing(t, &[("a.txt", 10)]).files[0].sig;
        state.on_complete(a.to_owned(), sig, at(t, 100));
        assert!(scan(&mut state, at(t, 1099), &[("a.txt", 10)]).is_empty());
        assert_eq!(scan(&mut state, at(t, 1100), &[("a.txt", 10)]), ["a.txt"]);
    }

    #[test]
    fn scanned_file_is_reported_once_settled_and_wakes_the_watcher_for_it() {
        let (mut state, t) = running();
        assert!(scan(&mut state, at(t, 300), &[("a.txt", 10)]).is_empty());
        assert_eq!(
            state.next_due(),
            at(t, 500),
            "woken when it may have settled"
        );
        // Grew meanwhile: the settle time starts again.
        assert!(scan(&mut state, at(t, 500), &[("a.txt", 20)]).is_empty());
        assert_eq!(scan(&mut state, at(t, 700), &[("a.txt", 20)]), ["a.txt"]);
    }

    #[test]
    fn first_scan_done_comes_with_the_scan_settle_after_the_first_listing() {
        let t0 = Instant::now();
        let mut state = WatchState::new(opts(WatchMode::Poll), t0);
        let first = state.on_listing(listing(t0, &[("a.txt", 10)]), at(t0, 5));
        assert_eq!(first, ListingReport::default());
        state.on_scan_finished(at(t0, 5));
        assert_eq!(state.next_due(), at(t0, 105), "the next poll");
        let second = state.on_listing(listing(at(t0, 105), &[("a.txt", 10)]), at(t0, 105));
        assert!(!second.first_scan_done);
        state.on_scan_finished(at(t0, 105));
        assert_eq!(state.next_due(), at(t0, 205), "the first full scan");
        let full = state.on_listing(listing(at(t0, 205), &[("a.txt", 10)]), at(t0, 205));
        assert_eq!(full.due, [PathBuf::from("/inbox/a.txt")]);
        assert!(full.first_scan_done);
        state.on_scan_finished(at(t0, 205));
        let later = state.on_listing(listing(at(t0, 305), &[]), at(t0, 305));
        assert!(!later.first_scan_done, "sent once only");
    }

    #[test]
    fn events_outside_the_inbox_or_for_partial_names_report_nothing() {
        let t0 = Instant::now();
        let mut state = WatchState::new(opts(WatchMode::Notify), t0);
        for path in [
            "/inbox/a.part",
            "/inbox/.a.txt",
            "/elsewhere/a.txt",
            "/inbox/sub/a.txt",
        ] {
            let path = Path::new(path);
            assert_eq!(
                state.on_event(FileEvent::Written, path),
                EventOutcome::Nothing
            );
            let closed = state.on_event(FileEvent::ClosedAfterWrite, path);
            assert_eq!(closed, EventOutcome::Nothing, "{}", path.display());
            assert_eq!(
                state.on_event(FileEvent::MovedIn, path),
                EventOutcome::Nothing
            );
        }
        assert_eq!(state.forget_writers(), 0, "none held");
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
}
