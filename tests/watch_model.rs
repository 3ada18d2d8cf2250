//! The watcher's state machine run as an interpreter of file-system actions, against a model.
//!
//! proptest generates a setup (mode, settle, rescan and poll intervals, files present at start)
//! and a sequence of actions: create, append, close, move in, write as `.part` and rename in,
//! move away, delete, hard-link in, deliver the queued events, a spurious overflow, a forced
//! listing, time passing. Each action changes a tiny in-memory file system and queues the
//! events inotify would raise (or, when the action's events are lost, the overflow signal a real
//! queue gives instead); the harness delivers them, lists the model inbox whenever the state says
//! a scan is due, and checks what the state reports against expectations kept by the model alone:
//!
//! - **A, never half-written**: a file with an open writer is reported only if no delivered event
//!   showed that writer writing (or events were lost since), and only once its content has been
//!   unchanged for `settle`; except the documented race of a close or move event raised before
//!   the writer opened the file (a `CloseWrite` cannot say which writer closed).
//! - **B, complete files arrive**: a file that is complete (closed, moved in, linked in, or
//!   present at start with no writer) and still present is reported within
//!   `settle + rescan_interval` (plus scan gaps), even when its events were lost.
//! - **C, only present files**: every report names a candidate file present in the inbox now (so
//!   a deleted or moved-away file is never reported once that is seen).
//! - **D, first scan**: `first_scan_done` comes once, within `settle` (plus a scan gap) of the
//!   start, after every complete file present since the start has been reported.
//! - **E, no flooding**: a scan does not report a path again within `rescan_interval` unless the
//!   file changed meanwhile (events may: a close always reports).
#![cfg(unix)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bar_ingest::pipeline::watch::state::{
    EventOutcome, FileEvent, Listing, MIN_SCAN_GAP, Observed, Signature, WatchState,
};
use bar_ingest::pipeline::watch::{WatchMode, WatchOptions};
use proptest::prelude::*;
use tokio::time::Instant;

/// The inbox's candidate files; every action picks one by index.
const NAMES: [&str; 3] = ["a.txt", "b.txt", "c.txt"];
const INBOX: &str = "/inbox";
/// Test cases per run.
const CASES: u32 = 512;

/// One thing that happens to the inbox (or to time).
#[derive(Debug, Clone)]
enum Action {
    /// Opens the file for writing: creates it empty, or truncates a closed one (a rewrite).
    Create { file: usize, lost: bool },
    /// The open file's writer appends bytes (size and mtime change).
    Append { file: usize, bytes: u64, lost: bool },
    /// The writer closes the file.
    Close { file: usize, lost: bool },
    /// Renames a file from outside into the inbox (the one moved away earlier, or a new one).
    MoveIn { file: usize, lost: bool },
    /// Writes `name.part`, closes it and renames it to `name`.
    RenamePartIn { file: usize, lost: bool },
    /// Renames the file out of the inbox.
    MoveAway { file: usize, lost: bool },
    /// Deletes the file.
    Delete { file: usize, lost: bool },
    /// A complete file appears with a bare `Create` (a hard link): no close, no move.
    HardLink { file: usize },
    /// Delivers every queued event.
    Deliver,
    /// An overflow with nothing lost.
    Overflow,
    /// A listing now, off the state's schedule.
    Rescan,
    /// Time passes; scans fall due on the way.
    Advance { ms: u64 },
}

/// The watcher's settings and the inbox at start.
#[derive(Debug, Clone)]
struct Setup {
    mode: WatchMode,
    settle_ms: u64,
    rescan_ms: u64,
    poll_ms: u64,
    /// `(file, len, open)`: present at start, maybe still held open by a writer.
    start: Vec<(usize, u64, bool)>,
}

/// A writer holding a file open.
#[derive(Debug, Clone, Copy)]
struct Writer {
    /// The action that opened it; events of earlier actions are not this writer's.
    opened: u64,
    /// The delivery that last showed this writer writing (a `Written`).
    shown: Option<u64>,
    /// The delivery of its `Created`: shows it being written only while the file is empty (a
    /// hard link raises the same bare create, complete).
    created: Option<u64>,
    /// Content generation that an event raised before this writer opened (the close race)
    /// reported: a scan may report that same content again.
    raced_gen: Option<u64>,
}

/// A file in the model inbox.
#[derive(Debug, Clone)]
struct File {
    len: u64,
    /// Content generation: new on every change, so that no two contents share an mtime.
    generation: u64,
    /// When its content last changed (the start, for files present at start).
    changed_at: Instant,
    writer: Option<Writer>,
    /// When it became complete; `None` while a writer holds it.
    complete_since: Option<Instant>,
    /// Reported since it became complete.
    reported: bool,
    /// Notify mode: events were lost after it became complete (and nothing sent this content
    /// recently): the rescan that asks for must report it by then.
    rescue_by: Option<Instant>,
}

/// What the model remembers about a name across the files that bear it.
#[derive(Debug, Clone, Default)]
struct NameLog {
    last_report: Option<Instant>,
    /// The content generation of that report.
    last_report_gen: Option<u64>,
    /// The file at this name changed since its last report.
    changed_since_report: bool,
    /// The file present at start, unchanged.
    start_intact: bool,
}

/// An event on its way to the watcher.
#[derive(Debug)]
enum Queued {
    Event {
        kind: FileEvent,
        path: PathBuf,
        /// The action that raised it.
        action: u64,
    },
    /// Events were lost.
    Overflow,
}

/// Where a report came from.
#[derive(Debug, Clone, Copy)]
enum Source {
    Scan,
    /// An event raised by this action.
    Event(u64),
}

/// The model, the state machine under test, and the event queue between them.
struct Harness {
    opts: WatchOptions,
    state: WatchState,
    t0: Instant,
    now: Instant,
    files: [Option<File>; 3],
    /// Files moved out of the inbox: `(len, generation)`.
    outside: [Option<(u64, u64)>; 3],
    names: [NameLog; 3],
    queue: VecDeque<Queued>,
    /// Number of the action being applied.
    action: u64,
    next_generation: u64,
    deliveries: u64,
    last_overflow: Option<u64>,
    first_scan_done_at: Option<Instant>,
}

fn inbox_path(file: usize) -> PathBuf {
    Path::new(INBOX).join(NAMES[file])
}

fn part_path(file: usize) -> PathBuf {
    Path::new(INBOX).join(format!("{}.part", NAMES[file]))
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Harness {
    fn new(setup: &Setup) -> Self {
        let opts = WatchOptions {
            inbox: PathBuf::from(INBOX),
            mode: setup.mode,
            rescan_interval: ms(setup.rescan_ms),
            poll_interval: ms(setup.poll_ms),
            settle: ms(setup.settle_ms),
        };
        let t0 = Instant::now();
        let mut h = Self {
            state: WatchState::new(opts.clone(), t0),
            opts,
            t0,
            now: t0,
            files: [None, None, None],
            outside: [None; 3],
            names: Default::default(),
            queue: VecDeque::new(),
            action: 0,
            next_generation: 1,
            deliveries: 0,
            last_overflow: None,
            first_scan_done_at: None,
        };
        for &(file, len, open) in &setup.start {
            let writer = open.then_some(Writer {
                opened: 0,
                shown: None,
                created: None,
                raced_gen: None,
            });
            let generation = h.generation();
            h.files[file] = Some(File {
                len,
                generation,
                changed_at: t0,
                writer,
                complete_since: (!open).then_some(t0),
                reported: false,
                rescue_by: None,
            });
            h.names[file].start_intact = true;
        }
        h.run_due(t0);
        h
    }

    fn generation(&mut self) -> u64 {
        self.next_generation += 1;
        self.next_generation
    }

    /// Queues an action's events, or (lost) the overflow that replaces them. Poll mode has no
    /// inotify: nothing is queued.
    fn raise(&mut self, events: &[(FileEvent, PathBuf)], lost: bool) {
        if self.opts.mode == WatchMode::Poll {
            return;
        }
        if lost {
            self.queue.push_back(Queued::Overflow);
            return;
        }
        for (kind, path) in events {
            self.queue.push_back(Queued::Event {
                kind: *kind,
                path: path.clone(),
                action: self.action,
            });
        }
    }

    /// The name at `file` now holds different content (or none).
    fn changed(&mut self, file: usize) {
        self.names[file].changed_since_report = true;
        self.names[file].start_intact = false;
    }

    /// A complete file (no writer) at `file`, replacing whatever was there.
    fn put_complete(&mut self, file: usize, len: u64, generation: u64) {
        self.files[file] = Some(File {
            len,
            generation,
            changed_at: self.now,
            writer: None,
            complete_since: Some(self.now),
            reported: false,
            rescue_by: None,
        });
        self.changed(file);
    }

    fn apply(&mut self, action: &Action) {
        self.action += 1;
        match *action {
            Action::Create { file, lost } => self.create(file, lost),
            Action::Append { file, bytes, lost } => self.append(file, bytes, lost),
            Action::Close { file, lost } => self.close(file, lost),
            Action::MoveIn { file, lost } => self.move_in(file, lost),
            Action::RenamePartIn { file, lost } => self.rename_part_in(file, lost),
            Action::MoveAway { file, lost } => self.remove(file, FileEvent::MovedAway, lost),
            Action::Delete { file, lost } => self.remove(file, FileEvent::Removed, lost),
            Action::HardLink { file } => self.hard_link(file),
            Action::Deliver => self.deliver(),
            Action::Overflow => self.raise(&[], true),
            Action::Rescan => self.scan(),
            Action::Advance { ms: d } => {
                self.deliver();
                self.run_due(self.now + ms(d));
            }
        }
        self.run_due(self.now);
    }

    fn create(&mut self, file: usize, lost: bool) {
        let event = match &self.files[file] {
            Some(f) if f.writer.is_some() => return,
            // Opening with O_TRUNC raises a modify, not a create.
            Some(_) => FileEvent::Written,
            None => FileEvent::Created,
        };
        let generation = self.generation();
        self.files[file] = Some(File {
            len: 0,
            generation,
            changed_at: self.now,
            writer: Some(Writer {
                opened: self.action,
                shown: None,
                created: None,
                raced_gen: None,
            }),
            complete_since: None,
            reported: false,
            rescue_by: None,
        });
        self.changed(file);
        self.raise(&[(event, inbox_path(file))], lost);
    }

    fn append(&mut self, file: usize, bytes: u64, lost: bool) {
        let generation = self.generation();
        let now = self.now;
        let Some(f) = self.files[file].as_mut().filter(|f| f.writer.is_some()) else {
            return;
        };
        f.len += bytes;
        f.generation = generation;
        f.changed_at = now;
        self.changed(file);
        self.raise(&[(FileEvent::Written, inbox_path(file))], lost);
    }

    fn close(&mut self, file: usize, lost: bool) {
        let now = self.now;
        let Some(f) = self.files[file].as_mut().filter(|f| f.writer.is_some()) else {
            return;
        };
        f.writer = None;
        f.complete_since = Some(now);
        f.reported = false;
        self.raise(&[(FileEvent::ClosedAfterWrite, inbox_path(file))], lost);
    }

    fn move_in(&mut self, file: usize, lost: bool) {
        let (len, generation) = match self.outside[file].take() {
            Some(moved_away) => moved_away,
            None => (100, self.generation()),
        };
        self.put_complete(file, len, generation);
        self.raise(&[(FileEvent::MovedIn, inbox_path(file))], lost);
    }

    fn rename_part_in(&mut self, file: usize, lost: bool) {
        let generation = self.generation();
        self.put_complete(file, 50, generation);
        let (part, name) = (part_path(file), inbox_path(file));
        let events = [
            (FileEvent::Created, part.clone()),
            (FileEvent::Written, part.clone()),
            (FileEvent::ClosedAfterWrite, part.clone()),
            // notify: `Name(From)`, `Name(To)`, then the paired `Name(Both)` [from, to].
            (FileEvent::MovedAway, part.clone()),
            (FileEvent::MovedIn, name.clone()),
            (FileEvent::MovedAway, part),
            (FileEvent::MovedIn, name),
        ];
        self.raise(&events, lost);
    }

    /// Moves away or deletes; a writer still holding the file is cut off from the inbox.
    fn remove(&mut self, file: usize, event: FileEvent, lost: bool) {
        let Some(f) = self.files[file].take() else {
            return;
        };
        if event == FileEvent::MovedAway {
            self.outside[file] = Some((f.len, f.generation));
        }
        self.changed(file);
        self.raise(&[(event, inbox_path(file))], lost);
    }

    fn hard_link(&mut self, file: usize) {
        if self.files[file].is_some() {
            return;
        }
        let generation = self.generation();
        self.put_complete(file, 80, generation);
        self.raise(&[(FileEvent::Created, inbox_path(file))], false);
    }

    /// Delivers the queue as the driver would: events to the state, a stat for those it says
    /// are complete, overflows as lost events.
    fn deliver(&mut self) {
        while let Some(queued) = self.queue.pop_front() {
            self.deliveries += 1;
            let (kind, path, action) = match queued {
                Queued::Overflow => {
                    self.state.on_lost_events(self.now);
                    self.last_overflow = Some(self.deliveries);
                    self.rescue();
                    continue;
                }
                Queued::Event { kind, path, action } => (kind, path, action),
            };
            self.note_shown(kind, &path, action);
            if self.state.on_event(kind, &path) == EventOutcome::Complete
                && let Some(sig) = self.stat(&path)
            {
                self.state.on_complete(path.clone(), sig, self.now);
                self.reported(&path, Source::Event(action));
            }
        }
    }

    /// Events were lost: every complete file not reported since it became complete (and whose
    /// content was not sent before) must come with the rescan, once settled.
    fn rescue(&mut self) {
        let by = self.now + self.opts.settle + 2 * MIN_SCAN_GAP;
        for (f, name) in self.files.iter_mut().zip(&self.names) {
            let Some(f) = f.as_mut() else { continue };
            let unsent = name.last_report_gen != Some(f.generation);
            if f.complete_since.is_some() && !f.reported && unsent {
                f.rescue_by.get_or_insert(by);
            }
        }
    }

    /// A delivered `Created`/`Written` raised by the current writer shows it writing.
    fn note_shown(&mut self, kind: FileEvent, path: &Path, action: u64) {
        if !matches!(kind, FileEvent::Created | FileEvent::Written) {
            return;
        }
        let deliveries = self.deliveries;
        let file = (0..NAMES.len()).find(|&i| inbox_path(i) == path);
        let writer = file.and_then(|i| self.files[i].as_mut()?.writer.as_mut());
        if let Some(w) = writer.filter(|w| action >= w.opened) {
            match kind {
                FileEvent::Created => w.created = Some(deliveries),
                _ => w.shown = Some(deliveries),
            }
        }
    }

    fn signature(f: &File) -> Signature {
        Signature {
            len: f.len,
            mtime: Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(f.generation)),
        }
    }

    fn stat(&self, path: &Path) -> Option<Signature> {
        let file = (0..NAMES.len()).find(|&i| inbox_path(i) == path)?;
        self.files[file].as_ref().map(Self::signature)
    }

    /// Runs every scan due up to `until`, then sets the clock there.
    fn run_due(&mut self, until: Instant) {
        loop {
            let due = self.state.next_due();
            if due > until {
                break;
            }
            self.now = self.now.max(due);
            self.check_deadlines();
            self.scan();
        }
        self.now = until;
        self.check_deadlines();
    }

    /// Lists the model inbox now and feeds the listing to the state, as the driver does.
    fn scan(&mut self) {
        let now = self.now;
        let files = (0..NAMES.len()).filter_map(|i| {
            let f = self.files[i].as_ref()?;
            let (path, sig) = (inbox_path(i), Self::signature(f));
            Some(Observed { path, sig, at: now })
        });
        let listing = Listing {
            started: now,
            files: files.collect(),
            skipped: 0,
        };
        let report = self.state.on_listing(listing, now);
        for path in &report.due {
            self.reported(path, Source::Scan);
        }
        if report.first_scan_done {
            self.first_scan_done();
        }
        self.state.on_scan_finished(now);
    }

    /// Invariants A, C and E for one report.
    fn reported(&mut self, path: &Path, source: Source) {
        let file = (0..NAMES.len()).find(|&i| inbox_path(i) == path);
        let file = file.unwrap_or_else(|| panic!("C: reported {path:?}, not an inbox file"));
        let (now, settle) = (self.now, self.opts.settle);
        let last_overflow = self.last_overflow;
        let Some(f) = self.files[file].as_mut() else {
            panic!("C: reported {path:?}, which is not in the inbox");
        };
        let generation = f.generation;
        match &mut f.writer {
            Some(w) if matches!(source, Source::Event(action) if action < w.opened) => {
                w.raced_gen = Some(f.generation);
            }
            Some(w) if w.raced_gen != Some(f.generation) => {
                let shown = match f.len {
                    0 => w.shown.max(w.created),
                    _ => w.shown,
                };
                let hidden = shown.is_none_or(|s| last_overflow.is_some_and(|o| o > s));
                assert!(
                    hidden,
                    "A: {path:?} reported while events showed it being written"
                );
                let idle = now.duration_since(f.changed_at);
                assert!(
                    idle >= settle,
                    "A: {path:?} reported, open, {idle:?} after a change"
                );
            }
            Some(_) => {}
            None => f.reported = true,
        }
        let log = &mut self.names[file];
        if let (Source::Scan, Some(last), false) =
            (source, log.last_report, log.changed_since_report)
        {
            let since = now.duration_since(last);
            assert!(
                since >= self.opts.rescan_interval,
                "E: {path:?} reported again {since:?} after its last report, unchanged"
            );
        }
        log.last_report = Some(now);
        log.last_report_gen = Some(generation);
        log.changed_since_report = false;
    }

    /// Invariant D when `first_scan_done` comes.
    fn first_scan_done(&mut self) {
        assert_eq!(self.first_scan_done_at, None, "D: first_scan_done twice");
        self.first_scan_done_at = Some(self.now);
        for (i, f) in self.files.iter().enumerate() {
            let complete = f.as_ref().is_some_and(|f| f.writer.is_none());
            if complete && self.names[i].start_intact {
                assert!(
                    self.names[i].last_report.is_some(),
                    "D: first_scan_done before {} (present since start) was reported",
                    NAMES[i]
                );
            }
        }
    }

    /// Longest a complete file may wait to be reported: its content is first listed within a
    /// scan period, then settles.
    fn bound(&self) -> Duration {
        let o = &self.opts;
        match o.mode {
            WatchMode::Notify => o.settle + o.rescan_interval + MIN_SCAN_GAP,
            WatchMode::Poll => o.settle + o.rescan_interval + 2 * self.poll_period(),
        }
    }

    /// Longest a content already sent may wait to be sent again: `rescan_interval`, then the
    /// next scan; in notify mode any scan (a rescan after lost events, say) restarts the rescan
    /// period, so that next scan may come up to a whole period later.
    fn resend_bound(&self) -> Duration {
        let o = &self.opts;
        match o.mode {
            WatchMode::Notify => 2 * o.rescan_interval + MIN_SCAN_GAP,
            WatchMode::Poll => o.rescan_interval + 2 * self.poll_period(),
        }
    }

    fn poll_period(&self) -> Duration {
        self.opts.poll_interval.max(MIN_SCAN_GAP)
    }

    /// Invariants B and D's deadline at `now`.
    fn check_deadlines(&self) {
        let first_by = self.t0 + self.opts.settle + MIN_SCAN_GAP;
        assert!(
            self.first_scan_done_at.is_some() || self.now <= first_by,
            "D: no first_scan_done by {:?} after the start",
            self.now - self.t0
        );
        for (f, name) in self.files.iter().zip(NAMES.iter().zip(&self.names)) {
            let Some(f) = f else { continue };
            let (Some(since), false) = (f.complete_since, f.reported) else {
                continue;
            };
            let (name, log) = name;
            let mut by = since + self.bound();
            if let (Some(sent), Some(sent_gen)) = (log.last_report, log.last_report_gen)
                && sent_gen == f.generation
            {
                by = by.max(sent + self.resend_bound());
            }
            assert!(
                self.now <= by,
                "B: {name} complete for {:?} and not reported",
                self.now - since
            );
            assert!(
                f.rescue_by.is_none_or(|by| self.now <= by),
                "B: {name} not reported by the rescan after events were lost"
            );
        }
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    let mode = prop_oneof![3 => Just(WatchMode::Notify), 1 => Just(WatchMode::Poll)];
    let settle = prop_oneof![Just(0u64), Just(50), Just(200), Just(1000)];
    let rescan = prop_oneof![Just(100u64), Just(300), Just(2000)];
    let poll = prop_oneof![Just(20u64), Just(100), Just(500)];
    let start = proptest::collection::vec((0..NAMES.len(), 0..100u64, any::<bool>()), 0..3);
    (mode, settle, rescan, poll, start).prop_map(|(mode, settle_ms, rescan_ms, poll_ms, start)| {
        let mut start: Vec<_> = start;
        start.sort_by_key(|s| s.0);
        start.dedup_by_key(|s| s.0);
        Setup {
            mode,
            settle_ms,
            rescan_ms,
            poll_ms,
            start,
        }
    })
}

fn action() -> impl Strategy<Value = Action> {
    let file = || 0..NAMES.len();
    let lost = || proptest::bool::weighted(0.15);
    let time = prop_oneof![3 => 1..100u64, 2 => 100..3000u64];
    prop_oneof![
        3 => (file(), lost()).prop_map(|(file, lost)| Action::Create { file, lost }),
        4 => (file(), 1..50u64, lost())
            .prop_map(|(file, bytes, lost)| Action::Append { file, bytes, lost }),
        3 => (file(), lost()).prop_map(|(file, lost)| Action::Close { file, lost }),
        1 => (file(), lost()).prop_map(|(file, lost)| Action::MoveIn { file, lost }),
        1 => (file(), lost()).prop_map(|(file, lost)| Action::RenamePartIn { file, lost }),
        1 => (file(), lost()).prop_map(|(file, lost)| Action::MoveAway { file, lost }),
        1 => (file(), lost()).prop_map(|(file, lost)| Action::Delete { file, lost }),
        1 => file().prop_map(|file| Action::HardLink { file }),
        2 => Just(Action::Deliver),
        1 => Just(Action::Overflow),
        1 => Just(Action::Rescan),
        5 => time.prop_map(|ms| Action::Advance { ms }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Runs the actions, then lets time pass until everything complete must have been reported.
    #[test]
    fn watch_state_agrees_with_the_model_filesystem(
        setup in setup(),
        actions in proptest::collection::vec(action(), 1..80),
    ) {
        let mut h = Harness::new(&setup);
        for action in &actions {
            h.apply(action);
        }
        let quiet = h.bound() * 2 + ms(100);
        h.apply(&Action::Advance { ms: u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX) });
        prop_assert!(h.first_scan_done_at.is_some());
    }
}
