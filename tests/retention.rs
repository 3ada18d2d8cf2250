//! Retention and the free-space floor on real folders: old files leave each archive folder and
//! young ones stay, a size cap removes the oldest first, a failed file and its sidecar go
//! together; and the daemon, run in-process against the real node, stops claiming below the
//! free-space floor (made real by allocating a large file) and resumes by itself.

mod common;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bar_ingest::config::{FolderRetention, RetentionConfig, Settings};
use bar_ingest::daemon::retention;
use bar_ingest::names::derived;
use bar_ingest::pipeline::claim::Folders;
use bar_ingest::store::Schema;
use common::{Site, unique_keyspace, wait_until_async};
use filetime::FileTime;

const DAY: Duration = Duration::from_secs(86_400);
/// Longest wait for something that must happen.
const WAIT: Duration = Duration::from_secs(90);

/// The archive folders (and an inbox and processing/) under a temp dir, all created.
fn folders(dir: &Path) -> Folders {
    let f = Folders::new(&dir.join("inbox"), &dir.join("state"), "a");
    for d in [
        &f.inbox,
        &f.processing,
        &f.done,
        &f.duplicates,
        &f.failed,
        &f.dead_letter,
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    f
}

/// Writes `bytes` bytes to `dir/name` with a modification time `age` ago.
fn file(dir: &Path, name: impl AsRef<OsStr>, bytes: usize, age: Duration) -> PathBuf {
    let path = dir.join(name.as_ref());
    std::fs::write(&path, vec![b'x'; bytes]).unwrap();
    let mtime = FileTime::from_system_time(SystemTime::now() - age);
    filetime::set_file_mtime(&path, mtime).unwrap();
    path
}

fn limits(max_age: Option<Duration>, max_bytes: Option<u64>) -> FolderRetention {
    FolderRetention {
        max_age,
        max_bytes,
        ..FolderRetention::default()
    }
}

#[test]
fn files_past_max_age_leave_every_archive_folder_and_younger_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let f = folders(dir.path());
    let month = limits(Some(DAY * 30), None);
    let config = RetentionConfig {
        done: month.clone(),
        duplicates: month.clone(),
        failed: month.clone(),
        dead_letter: month,
        ..RetentionConfig::default()
    };
    let archives = [&f.done, &f.duplicates, &f.failed, &f.dead_letter];
    let mut old = Vec::new();
    let mut young = Vec::new();
    for d in archives {
        old.push(file(d, "OLD_full_1min_adjsplit.txt", 100, DAY * 40));
        young.push(file(d, "NEW_full_1min_adjsplit.txt", 100, DAY * 20));
    }
    // Never touched, however old: the inbox and processing/; nor a dead-letter log being
    // written (written to within the day: one untouched for a day was left by a crash).
    let untouched = [
        file(&f.inbox, "IN_full_1min_adjsplit.txt", 10, DAY * 400),
        file(&f.processing, "PR_full_1min_adjsplit.txt", 10, DAY * 400),
        file(&f.dead_letter, "X.txt.a.rejects.jsonl.tmp", 10, DAY / 2),
    ];

    let sweeps = retention::sweep(&f, &config, SystemTime::now());

    for p in &old {
        assert!(
            !p.exists(),
            "{} is 40 days old and still there",
            p.display()
        );
    }
    for p in young.iter().chain(&untouched) {
        assert!(p.exists(), "{} was removed", p.display());
    }
    let folders: Vec<&str> = sweeps.iter().map(|s| s.folder).collect();
    assert_eq!(folders, ["done", "duplicates", "failed", "dead_letter"]);
    for s in &sweeps {
        assert_eq!(
            (s.removed_files, s.removed_bytes, s.errors),
            (1, 100, 0),
            "{s:?}"
        );
    }
}

#[test]
fn a_size_cap_removes_the_oldest_first_down_to_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let f = folders(dir.path());
    let config = RetentionConfig {
        done: limits(None, Some(2500)),
        ..RetentionConfig::default()
    };
    // Five files of 1000 bytes, 5 to 1 days old; names in the opposite order of age, so that
    // an order by name would pick others.
    let by_age: Vec<PathBuf> = (1..=5u32)
        .map(|days| file(&f.done, format!("F{days}.txt"), 1000, DAY * days))
        .rev()
        .collect();

    let sweeps = retention::sweep(&f, &config, SystemTime::now());

    let (oldest, newest) = by_age.split_at(3);
    for p in oldest {
        assert!(!p.exists(), "{} should have gone (oldest)", p.display());
    }
    for p in newest {
        assert!(p.exists(), "{} should stay (newest)", p.display());
    }
    let done = &sweeps[0];
    assert_eq!(done.folder, "done");
    assert_eq!((done.removed_files, done.removed_bytes), (3, 3000));
    assert_eq!((done.kept_files, done.kept_bytes), (2, 2000));
}

#[test]
fn a_failed_file_and_its_sidecar_go_together() {
    let dir = tempfile::tempdir().unwrap();
    let f = folders(dir.path());
    // By age: a file delivered with an old mtime (kept by the rename into failed/) counts from
    // when its sidecar was written, and the two stay together.
    let config = RetentionConfig {
        failed: limits(Some(DAY * 30), None),
        ..RetentionConfig::default()
    };
    let kept = file(&f.failed, "KEPT.txt", 100, DAY * 400);
    let kept_sidecar = file(&f.failed, "KEPT.txt.error.json", 10, DAY);
    let gone = file(&f.failed, "GONE.txt", 100, DAY * 60);
    let gone_sidecar = file(&f.failed, "GONE.txt.error.json", 10, DAY * 60);
    retention::sweep(&f, &config, SystemTime::now());
    assert!(kept.exists() && kept_sidecar.exists());
    assert!(!gone.exists() && !gone_sidecar.exists());

    // By size: removing the oldest file alone would fit the cap; its sidecar goes with it. A
    // name too long for the suffix pairs with its shortened sidecar name.
    let long = "L".repeat(250);
    let config = RetentionConfig {
        failed: limits(None, Some(200)),
        ..RetentionConfig::default()
    };
    let old = file(&f.failed, &long, 100, DAY * 3);
    let old_sidecar = file(
        &f.failed,
        derived(OsStr::new(&long), ".error.json"),
        10,
        DAY * 3,
    );
    std::fs::remove_file(&kept).unwrap();
    std::fs::remove_file(&kept_sidecar).unwrap();
    let new = file(&f.failed, "NEW.txt", 100, DAY);
    let new_sidecar = file(&f.failed, "NEW.txt.error.json", 10, DAY);
    let sweeps = retention::sweep(&f, &config, SystemTime::now());
    assert!(
        !old.exists() && !old_sidecar.exists(),
        "the oldest pair goes whole"
    );
    assert!(new.exists() && new_sidecar.exists());
    let failed = sweeps.iter().find(|s| s.folder == "failed").unwrap();
    assert_eq!((failed.removed_files, failed.removed_bytes), (2, 110));
}

// ---------------------------------------------------------------- the free-space floor

/// A file that really takes `len` bytes of disk (fallocate, not a sparse file), removed on drop.
struct Allocation(PathBuf);

impl Allocation {
    fn new(path: PathBuf, len: u64) -> Self {
        let file = std::fs::File::create(&path).unwrap();
        let guard = Self(path);
        rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, len)
            .expect("fallocate on the temp dir's filesystem");
        guard
    }
}

impl Drop for Allocation {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Bytes free for an unprivileged user on the filesystem of `path`.
fn free_bytes(path: &Path) -> u64 {
    let s = rustix::fs::statvfs(path).unwrap();
    s.f_bavail * s.f_frsize
}

/// The value of the series `series` (name and labels, as rendered) on `/metrics`.
fn metric(addr: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = common::http_get(addr, "/metrics").ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The daemons of this file share the process's metrics recorder (a gauge one sets, another's
/// start resets): they run one at a time.
static ONE_DAEMON_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PAUSED: &str = "bar_ingest_claims_paused{reason=\"disk_space_low\"}";
const GIB: u64 = 1 << 30;
const TEXT: &str = "2021-03-01 09:30:00,10.0,10.5,9.5,10.25,100\n\
                    2021-03-01 09:31:00,10.25,10.75,10.0,10.5,200\n";

/// Free space is taken below the floor with a 4 GiB allocation on the state root's filesystem;
/// the floor sits 2 GiB above what is left, so other writers on the disk have 2 GiB of margin
/// both ways. The daemon starts paused: a dropped file stays in the inbox, `/readyz` is 503
/// with `disk_space_low`, the gauge is 1. The allocation is removed: the daemon resumes by
/// itself, loads the file, `/readyz` is 200 and the gauge 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_free_space_floor_nothing_is_claimed_and_claiming_resumes_when_space_is_back() {
    let _alone = ONE_DAEMON_AT_A_TIME.lock().await;
    let site = Site::new(&unique_keyspace("space_floor"));
    let mut settings =
        Settings::load(&site.config("a", ""), None).expect("the test config is valid");
    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    settings.metrics_listen = addr;
    settings.retention.space_check_interval = Duration::from_millis(200);

    let allocation = Allocation::new(site.dir.path().join("ballast"), 4 * GIB);
    let free = free_bytes(site.dir.path());
    settings.retention.min_free_bytes = free + 2 * GIB;

    let daemon = common::InProcess::start(settings.clone());
    wait_until_async(WAIT, "the claims-paused gauge at 1", || async {
        metric(addr, PAUSED) == Some(1.0)
    })
    .await;
    let readyz = common::http_get(addr, "/readyz").unwrap();
    assert_eq!(readyz.0, 503, "{readyz:?}");
    assert!(readyz.1.contains("disk_space_low"), "{readyz:?}");
    let (free_now, floor) = (
        metric(addr, "bar_ingest_free_bytes").unwrap(),
        metric(addr, "bar_ingest_free_bytes_floor").unwrap(),
    );
    assert!(free_now < floor, "free {free_now} floor {floor}");

    let dropped = site.inbox().join("SPACE_full_1min_adjsplit.txt");
    std::fs::write(&dropped, TEXT).unwrap();
    // The watcher reports it within a second (rescan 1 s, settle 500 ms); give it several
    // rescans to be claimed, which it must not be.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(dropped.exists(), "claimed below the free-space floor");
    assert!(site.files_in("processing/a").is_empty() && site.files_in("done").is_empty());

    drop(allocation);
    wait_until_async(WAIT, "the file loaded once space is back", || async {
        site.files_in("done").len() == 1
    })
    .await;
    assert_eq!(metric(addr, PAUSED), Some(0.0));
    wait_until_async(WAIT, "/readyz 200", || async {
        common::http_get(addr, "/readyz").is_ok_and(|(s, _)| s == 200)
    })
    .await;

    let session = common::connect(&settings).await;
    let schema = Schema::from_config(&settings.database);
    assert_eq!(
        common::all_bars(&session, &schema).await,
        common::expected_bars("SPACE", TEXT)
    );
    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "{ended:?}");
    common::drop_keyspace(&session, &schema).await;
}

/// The daemon sweeps at start (before any file is loaded) and counts what it removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_sweeps_at_start_and_counts_what_it_removed() {
    let _alone = ONE_DAEMON_AT_A_TIME.lock().await;
    let site = Site::new(&unique_keyspace("retention_start"));
    let config = site.config("a", "\n[retention.dead_letter]\nmax_age = \"30days\"\n");
    let mut settings = Settings::load(&config, None).expect("the test config is valid");
    let addr: SocketAddr = format!("127.0.0.1:{}", common::free_port())
        .parse()
        .unwrap();
    settings.metrics_listen = addr;
    // The floor is not what this test is about.
    settings.retention.min_free_bytes = 0;
    let dead_letter = site.state().join("dead-letter");
    std::fs::create_dir_all(&dead_letter).unwrap();
    let old = file(&dead_letter, "OLD.txt.abc.rejects.jsonl", 123, DAY * 31);
    let young = file(&dead_letter, "NEW.txt.abc.rejects.jsonl", 45, DAY * 29);

    let daemon = common::InProcess::start(settings.clone());
    wait_until_async(WAIT, "the old dead-letter log removed", || async {
        !old.exists()
    })
    .await;
    assert!(young.exists());
    let removed = "bar_ingest_retention_removed_bytes_total{folder=\"dead_letter\"}";
    wait_until_async(WAIT, "the removal counted", || async {
        metric(addr, removed).is_some_and(|v| v >= 123.0)
    })
    .await;
    assert_eq!(
        metric(addr, "bar_ingest_archive_bytes{folder=\"dead_letter\"}"),
        Some(45.0)
    );
    let ended = daemon.stop().await;
    assert!(ended.is_ok(), "{ended:?}");
    let session = common::connect(&settings).await;
    common::drop_keyspace(&session, &Schema::from_config(&settings.database)).await;
}
