//! The inbox watcher against real files in temp dirs and real inotify.
//!
//! Every wait is on a condition with a timeout. To show that something was *not* reported by the
//! event path, a test writes a sentinel file afterwards: events are handled in order, so once the
//! sentinel arrives, everything before it has been handled.
#![cfg(target_os = "linux")]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bar_ingest::pipeline::watch::{WatchError, WatchMode, WatchOptions, watch};
use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// Longest wait for something that must happen; generous, since these machines are loaded.
const WAIT: Duration = Duration::from_secs(30);
/// Long enough never to come during a test.
const NEVER: Duration = Duration::from_secs(3600);
/// Channel capacity for most tests.
const CAPACITY: usize = 64;
/// Name of the file written last to show that earlier events were handled.
const SENTINEL: &str = "sentinel.txt";
/// A second sentinel, for a test that needs one after the first was reported.
const SENTINEL_2: &str = "sentinel-2.txt";

/// An inbox and a folder beside it (same filesystem, so renames and hard links work).
struct Dirs {
    /// Keeps the folders alive.
    _root: TempDir,
    inbox: PathBuf,
    outside: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let inbox = root.path().join("inbox");
        let outside = root.path().join("outside");
        fs::create_dir(&inbox).expect("create inbox");
        fs::create_dir(&outside).expect("create outside");
        Self {
            _root: root,
            inbox,
            outside,
        }
    }

    fn options(&self, mode: WatchMode) -> WatchOptions {
        WatchOptions {
            inbox: self.inbox.clone(),
            mode,
            rescan_interval: NEVER,
            poll_interval: Duration::from_millis(50),
            settle: Duration::from_millis(100),
        }
    }
}

/// A running watcher and its channels.
struct Running {
    rx: mpsc::Receiver<PathBuf>,
    first_scan_done: Option<oneshot::Receiver<()>>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), WatchError>>,
}

impl Running {
    fn start(opts: WatchOptions, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        let (done_tx, done_rx) = oneshot::channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(watch(opts, tx, done_tx, cancel.clone()));
        Self {
            rx,
            first_scan_done: Some(done_rx),
            cancel,
            task,
        }
    }

    /// Waits for `first_scan_done`.
    async fn first_scan(&mut self) {
        let done = self
            .first_scan_done
            .take()
            .expect("first scan awaited once");
        timeout(WAIT, done)
            .await
            .expect("first_scan_done within the timeout")
            .expect("first_scan_done sent, not dropped");
    }

    /// The next path sent, as a file name.
    async fn next(&mut self) -> OsString {
        let path = timeout(WAIT, self.rx.recv())
            .await
            .expect("a path within the timeout")
            .expect("the watcher is still sending");
        path.file_name().expect("a file name").to_owned()
    }

    /// Names received until (not including) `name`.
    async fn until(&mut self, name: &str) -> Vec<OsString> {
        let mut before = Vec::new();
        loop {
            let next = self.next().await;
            if next == name {
                return before;
            }
            before.push(next);
        }
    }

    /// Writes `{prefix}{n}.txt` files into `dir`, one every 300 ms, until one is reported: when
    /// the test cannot know the moment the watcher starts reporting events, this waits for it.
    async fn probe(&mut self, dir: &Path, prefix: &str) {
        let deadline = Instant::now() + WAIT;
        for n in 0.. {
            assert!(Instant::now() < deadline, "no {prefix}* file was reported");
            write(dir, &format!("{prefix}{n}.txt"), BARS);
            while let Ok(Some(path)) = timeout(Duration::from_millis(300), self.rx.recv()).await {
                let name = path.file_name().expect("a file name").to_string_lossy();
                if name.starts_with(prefix) {
                    return;
                }
            }
        }
    }

    /// Names already in the channel.
    fn drain(&mut self) -> Vec<OsString> {
        std::iter::from_fn(|| self.rx.try_recv().ok())
            .map(|p| p.file_name().expect("a file name").to_owned())
            .collect()
    }

    /// Cancels the watcher and checks that it stops cleanly.
    async fn stop(self) {
        self.cancel.cancel();
        let ended = timeout(WAIT, self.task)
            .await
            .expect("watcher stops on cancel");
        ended
            .expect("watcher did not panic")
            .expect("watcher ends Ok");
    }
}

fn names(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

/// Writes a file in one go (one open, one close: one CloseWrite).
fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).expect("write file");
    path
}

const BARS: &str = "2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n";

async fn file_present_at_start_is_reported_before_first_scan_done(mode: WatchMode) {
    let dirs = Dirs::new();
    write(&dirs.inbox, "AAPL_full_1min_adjsplit.txt", BARS);
    write(&dirs.inbox, ".hidden", BARS);
    write(&dirs.inbox, "a.part", BARS);
    write(&dirs.inbox, "b.TMP", BARS);
    fs::create_dir(dirs.inbox.join("sub.txt")).expect("subfolder");
    write(&dirs.inbox.join("sub.txt"), "inner.txt", BARS);
    std::os::unix::fs::symlink(
        dirs.inbox.join("AAPL_full_1min_adjsplit.txt"),
        dirs.inbox.join("link.txt"),
    )
    .expect("symlink");

    let mut w = Running::start(dirs.options(mode), CAPACITY);
    w.first_scan().await;
    // Sent before first_scan_done, so already in the channel; nothing else was.
    assert_eq!(w.drain(), names(&["AAPL_full_1min_adjsplit.txt"]));
    w.stop().await;
}

#[tokio::test]
async fn notify_file_present_at_start_is_reported_before_first_scan_done() {
    file_present_at_start_is_reported_before_first_scan_done(WatchMode::Notify).await;
}

#[tokio::test]
async fn poll_file_present_at_start_is_reported_before_first_scan_done() {
    file_present_at_start_is_reported_before_first_scan_done(WatchMode::Poll).await;
}

#[tokio::test]
async fn slowly_written_file_is_reported_only_after_close() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Notify);
    // Even a scan would not take the open file (it changes within the settle time).
    opts.settle = Duration::from_secs(1);
    let mut w = Running::start(opts, CAPACITY);
    w.first_scan().await;

    let path = dirs.inbox.join("MSFT_full_1min_adjsplit.txt");
    let mut file = fs::File::create(&path).expect("create");
    file.write_all(&BARS.as_bytes()[..20]).expect("write part");
    file.flush().expect("flush");
    write(&dirs.inbox, SENTINEL, BARS);
    assert_eq!(
        w.until(SENTINEL).await,
        Vec::<OsString>::new(),
        "open file reported"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    file.write_all(&BARS.as_bytes()[20..]).expect("write rest");
    // Once a sentinel written after the second write arrives, the watcher has handled that write.
    write(&dirs.inbox, SENTINEL_2, BARS);
    assert_eq!(
        w.until(SENTINEL_2).await,
        Vec::<OsString>::new(),
        "open file reported"
    );
    drop(file);

    assert_eq!(w.next().await, "MSFT_full_1min_adjsplit.txt");
    assert_eq!(fs::read_to_string(&path).expect("read"), BARS);
    w.stop().await;
}

/// Waits, with `file` open and idle in the inbox, until scans have had every chance to take it:
/// it has been idle at least `idle` and a hard-linked probe (a bare Create, no CloseWrite: only a
/// scan reports it, and only once it has settled) has been reported `scans` times. Fails if the
/// file itself is reported meanwhile.
async fn wait_for_scans_while_idle(
    w: &mut Running,
    dirs: &Dirs,
    file: &str,
    idle: Duration,
    scans: usize,
) {
    let idle_from = Instant::now();
    let probe = write(&dirs.outside, "probe.txt", BARS);
    fs::hard_link(&probe, dirs.inbox.join("probe.txt")).expect("hard link");
    let mut probes = 0;
    let waited = timeout(WAIT, async {
        while probes < scans || idle_from.elapsed() < idle {
            let next = w.next().await;
            assert_ne!(next, file, "file still open reported by a scan");
            if next == "probe.txt" {
                probes += 1;
            }
        }
    });
    waited.await.expect("scans within the timeout");
}

/// Waits for `name`, checking that every name received before it is in `allowed` (the probe and
/// sentinel a rescan sends again). The whole wait has a timeout: those re-sends never stop.
async fn until_only(w: &mut Running, name: &str, allowed: &[&str]) {
    let waited = timeout(WAIT, async {
        loop {
            let next = w.next().await;
            if next == name {
                return;
            }
            assert!(
                allowed.iter().any(|a| next == *a),
                "{next:?} reported before {name}"
            );
        }
    });
    waited
        .await
        .unwrap_or_else(|_| panic!("{name} not reported within the timeout"));
}

/// A writer that pauses for longer than the settle time: the settle rule alone would report the
/// half-written file at the next rescan. Notify mode saw it being written, so only its close
/// reports it.
async fn file_held_open_and_idle_is_reported_only_at_close(first: &str) {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Notify);
    let settle = Duration::from_millis(200);
    let rescan = Duration::from_millis(300);
    opts.settle = settle;
    opts.rescan_interval = rescan;
    let mut w = Running::start(opts, CAPACITY);
    w.first_scan().await;

    let name = "MSFT_full_1min_adjsplit.txt";
    let path = dirs.inbox.join(name);
    let mut file = fs::File::create(&path).expect("create");
    file.write_all(first.as_bytes()).expect("write first part");
    file.flush().expect("flush");

    wait_for_scans_while_idle(&mut w, &dirs, name, settle * 3 + rescan * 2, 3).await;
    // And the event path did not report it either.
    write(&dirs.inbox, SENTINEL, BARS);
    until_only(&mut w, SENTINEL, &["probe.txt"]).await;

    let rest = &BARS[first.len()..];
    file.write_all(rest.as_bytes()).expect("write rest");
    file.flush().expect("flush");
    // Once a sentinel written after the last write arrives, the watcher has handled that write:
    // the file still open was not reported (only rescans' re-sends of the probe and sentinel).
    write(&dirs.inbox, SENTINEL_2, BARS);
    until_only(&mut w, SENTINEL_2, &["probe.txt", SENTINEL]).await;
    drop(file);

    until_only(&mut w, name, &["probe.txt", SENTINEL, SENTINEL_2]).await;
    assert_eq!(fs::read_to_string(&path).expect("read"), BARS);
    w.stop().await;
}

#[tokio::test]
async fn file_held_open_half_written_and_idle_past_settle_is_reported_only_at_close() {
    file_held_open_and_idle_is_reported_only_at_close(&BARS[..BARS.len() / 2]).await;
}

/// Created, nothing written yet, idle: the settle rule would report the empty file.
#[tokio::test]
async fn file_created_and_idle_before_its_first_write_is_reported_only_at_close() {
    file_held_open_and_idle_is_reported_only_at_close("").await;
}

/// A file closed amid an event flood is reported, by its close or by the rescan after the flood.
///
/// What this does not prove for certain: that the close was lost. Whether notify's thread drops
/// the close (our queue full) or delivers it depends on scheduling this test cannot control, and
/// the file is reported either way. It usually is lost (with the overflow's forgetting of files
/// being written broken, this test fails), but a pass does not show it. The lost-close path (the overflow forgets which files are being written,
/// the rescan it asks for reports the file once settled) is proven deterministically by the unit
/// test `pipeline::watch::state::tests::file_whose_close_was_lost_in_an_overflow_is_reported_by_the_rescan`
/// and by the property test in `tests/watch_model.rs`, which loses events at random.
#[tokio::test]
async fn file_closed_amid_an_event_flood_is_reported_by_its_close_or_the_rescan() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Notify);
    opts.settle = Duration::from_millis(200);
    opts.rescan_interval = Duration::from_millis(300);
    let mut w = Running::start(opts, CAPACITY);
    w.first_scan().await;

    let name = "MSFT_full_1min_adjsplit.txt";
    let path = dirs.inbox.join(name);
    let mut file = fs::File::create(&path).expect("create");
    file.write_all(&BARS.as_bytes()[..20]).expect("write part");
    file.flush().expect("flush");
    // The watcher has seen the write: the file is held.
    write(&dirs.inbox, SENTINEL, BARS);
    until_only(&mut w, SENTINEL, &[]).await;

    // The test runs on one thread: until it awaits, the watch task cannot take events. A flood
    // (writes alternating between two files, which inotify cannot merge) fills the watcher's
    // event queue, the close comes amid it, and the test thread then blocks for a while so that
    // notify's thread reads on while the queue is full: the close is likely, not certain, to be
    // lost.
    let mut a = fs::File::create(dirs.inbox.join("a.part")).expect("create a");
    let mut b = fs::File::create(dirs.inbox.join("b.part")).expect("create b");
    let mut flood = |pairs: usize| {
        for _ in 0..pairs {
            a.write_all(b"x").expect("write a");
            b.write_all(b"x").expect("write b");
        }
    };
    flood(5_000);
    file.write_all(&BARS.as_bytes()[20..]).expect("write rest");
    drop(file);
    flood(5_000);
    std::thread::sleep(Duration::from_secs(1));

    until_only(&mut w, name, &[SENTINEL]).await;
    assert_eq!(fs::read_to_string(&path).expect("read"), BARS);
    w.stop().await;
}

#[tokio::test]
async fn part_file_renamed_is_reported_under_its_new_name_only() {
    let dirs = Dirs::new();
    let mut w = Running::start(dirs.options(WatchMode::Notify), CAPACITY);
    w.first_scan().await;

    let part = write(&dirs.inbox, "x.part", BARS);
    fs::rename(&part, dirs.inbox.join("x.txt")).expect("rename");
    write(&dirs.inbox, ".x.txt", BARS);
    write(&dirs.inbox, "y.tmp", BARS);
    write(&dirs.inbox, "Z.TMP", BARS);
    write(&dirs.inbox, "w.PART", BARS);
    write(&dirs.inbox, SENTINEL, BARS);

    let before: BTreeSet<OsString> = w.until(SENTINEL).await.into_iter().collect();
    // x.txt may come twice (MovedTo and the paired rename event); duplicates are allowed.
    assert_eq!(before, ["x.txt".into()].into());
    w.stop().await;
}

#[tokio::test]
async fn file_moved_in_from_another_folder_is_reported() {
    let dirs = Dirs::new();
    let mut w = Running::start(dirs.options(WatchMode::Notify), CAPACITY);
    w.first_scan().await;

    let outside = write(&dirs.outside, "IBM_full_1min_adjsplit.txt", BARS);
    fs::rename(&outside, dirs.inbox.join("IBM_full_1min_adjsplit.txt")).expect("move in");
    // A folder moved in is not a file.
    fs::create_dir(dirs.outside.join("folder.txt")).expect("folder");
    fs::rename(
        dirs.outside.join("folder.txt"),
        dirs.inbox.join("folder.txt"),
    )
    .expect("move");
    write(&dirs.inbox, SENTINEL, BARS);

    assert_eq!(
        w.until(SENTINEL).await,
        names(&["IBM_full_1min_adjsplit.txt"])
    );
    w.stop().await;
}

/// A hard link makes a complete file appear with only an inotify Create: no CloseWrite, no
/// MovedTo. The event path must leave it alone (a Create alone may be a file being written).
#[tokio::test]
async fn file_appearing_without_close_or_move_is_not_reported_by_events() {
    let dirs = Dirs::new();
    let mut w = Running::start(dirs.options(WatchMode::Notify), CAPACITY);
    w.first_scan().await;

    let outside = write(&dirs.outside, "linked.txt", BARS);
    fs::hard_link(&outside, dirs.inbox.join("linked.txt")).expect("hard link");
    write(&dirs.inbox, SENTINEL, BARS);

    assert_eq!(w.until(SENTINEL).await, Vec::<OsString>::new());
    w.stop().await;
}

/// The missed event is real: a hard link raises no event the watcher acts on (see the test
/// above), exactly like a file whose events were lost in a queue overflow. Only the rescan can
/// find it.
#[tokio::test]
async fn rescan_finds_a_file_whose_event_was_missed() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Notify);
    opts.rescan_interval = Duration::from_millis(300);
    let mut w = Running::start(opts, CAPACITY);
    w.first_scan().await;

    let outside = write(&dirs.outside, "linked.txt", BARS);
    fs::hard_link(&outside, dirs.inbox.join("linked.txt")).expect("hard link");

    assert_eq!(w.next().await, "linked.txt");
    w.stop().await;
}

#[tokio::test]
async fn file_left_in_the_inbox_is_sent_again_by_a_later_rescan() {
    let dirs = Dirs::new();
    write(&dirs.inbox, "AAPL_full_1min_adjsplit.txt", BARS);
    let mut opts = dirs.options(WatchMode::Notify);
    opts.rescan_interval = Duration::from_millis(300);
    let mut w = Running::start(opts, CAPACITY);

    assert_eq!(w.next().await, "AAPL_full_1min_adjsplit.txt");
    assert_eq!(w.next().await, "AAPL_full_1min_adjsplit.txt");
    w.stop().await;
}

#[tokio::test]
async fn poll_mode_waits_until_a_growing_file_has_settled() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Poll);
    let settle = Duration::from_secs(2);
    opts.settle = settle;
    let mut w = Running::start(opts, CAPACITY);

    let path = dirs.inbox.join("GE_full_1min_adjsplit.txt");
    let mut file = fs::File::create(&path).expect("create");
    let mut written = 0;
    let mut last_write = Instant::now();
    for _ in 0..20 {
        // Taken before the write, so that no scan can have seen this content earlier.
        last_write = Instant::now();
        file.write_all(BARS.as_bytes()).expect("append");
        file.flush().expect("flush");
        written += BARS.len();
        assert!(w.drain().is_empty(), "growing file reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(w.next().await, "GE_full_1min_adjsplit.txt");
    assert!(last_write.elapsed() >= settle, "reported before it settled");
    assert_eq!(fs::metadata(&path).expect("stat").len(), written as u64);
    drop(file);
    w.stop().await;
}

#[tokio::test]
async fn full_channel_is_waited_on_and_nothing_is_dropped() {
    let dirs = Dirs::new();
    let expected: BTreeSet<OsString> = (0..20)
        .map(|i| {
            let name = format!("S{i:02}_full_1min_adjsplit.txt");
            write(&dirs.inbox, &name, BARS);
            OsString::from(name)
        })
        .collect();
    let mut w = Running::start(dirs.options(WatchMode::Notify), 1);

    let mut got = BTreeSet::new();
    while got.len() < expected.len() {
        got.insert(w.next().await);
        // A slow consumer: the watcher waits on the full channel.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(got, expected);
    w.first_scan().await;
    w.stop().await;
}

#[tokio::test]
async fn inbox_removed_and_recreated_mid_run_is_watched_again() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Notify);
    opts.rescan_interval = Duration::from_millis(200);
    // Scans never report within the test: what arrives came through inotify.
    opts.settle = NEVER;
    let mut w = Running::start(opts, CAPACITY);

    // Wait until inotify is live.
    w.probe(&dirs.inbox, "before").await;

    fs::remove_dir_all(&dirs.inbox).expect("remove inbox");
    // A few rescans meet the missing inbox; the watcher carries on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !w.task.is_finished(),
        "watcher ended when the inbox vanished"
    );
    fs::create_dir(&dirs.inbox).expect("recreate inbox");

    // Once a rescan has re-armed inotify on the new folder, a written file is reported.
    w.probe(&dirs.inbox, "after").await;
    w.stop().await;
}

#[tokio::test]
async fn closed_channel_ends_the_watch() {
    let dirs = Dirs::new();
    let w = Running::start(dirs.options(WatchMode::Notify), CAPACITY);
    drop(w.rx);
    let ended = timeout(WAIT, w.task).await.expect("watcher stops");
    ended.expect("no panic").expect("ends Ok");
}

#[tokio::test]
async fn missing_inbox_is_an_error_at_start() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Notify);
    opts.inbox = dirs.outside.join("nope");
    let (tx, _rx) = mpsc::channel(1);
    let (done, _) = oneshot::channel();
    let err = watch(opts, tx, done, CancellationToken::new())
        .await
        .expect_err("missing inbox");
    assert!(matches!(err, WatchError::InboxUnreadable { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn inbox_that_is_a_file_is_an_error_at_start() {
    let dirs = Dirs::new();
    let mut opts = dirs.options(WatchMode::Poll);
    opts.inbox = write(&dirs.outside, "a-file", "");
    let (tx, _rx) = mpsc::channel(1);
    let (done, _) = oneshot::channel();
    let err = watch(opts, tx, done, CancellationToken::new())
        .await
        .expect_err("file as inbox");
    assert!(matches!(err, WatchError::NotADirectory { .. }), "{err:?}");
    assert!(err.to_string().contains("a-file"), "{err}");
}
