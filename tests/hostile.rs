//! A hostile inbox (issue 11, first part): whatever is at a claimed path is opened once, without
//! following a symbolic link or blocking on a FIFO, and only a regular file is read. A symlink,
//! a FIFO or a directory goes to failed/ with its reason, at claim and at resume.

mod common;

use std::time::Duration;

use bar_ingest::config::Settings;
use bar_ingest::ingest::{FileResult, LoadError, LoadOptions};
use common::{Site, unique_keyspace, wait_until_async};
use tokio_util::sync::CancellationToken;

const GOOD: &str = "2021-03-01 09:30:00,10,11,9,10.5,100\n";
/// Longest a load of a non-regular file may take: it must not read or wait on it.
const PROMPTLY: Duration = Duration::from_secs(10);

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// Loads `path` with a loader on a fresh keyspace; the result must come promptly.
async fn load_once(name: &str, path: &std::path::Path) -> (FileResult, tempfile::TempDir) {
    let (session, schema, settings) = common::fresh_schema(name).await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
    let result = tokio::time::timeout(
        PROMPTLY,
        loader.load(path, LoadOptions::default(), &cancel, None),
    )
    .await
    .expect("the load returned promptly (a FIFO must not block it)")
    .into_single()
    .expect("a delivery that cannot be opened has one result");
    common::drop_keyspace(&session, &schema).await;
    (result, dir)
}

fn not_regular_kind(result: &FileResult) -> &'static str {
    match result {
        FileResult::Failed(_, LoadError::NotRegular { kind, .. }) => kind,
        other => panic!("expected a not-regular failure, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swapped_in_is_not_followed_and_its_target_never_reaches_the_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    // A secret-looking target with a bad line, so that reading it would dead-letter its text.
    let target = dir.path().join("secret");
    std::fs::write(&target, "root:hunter2-not-for-logs:0:0\n").unwrap();
    let link = dir.path().join("LINK_full_1min_adjsplit.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (result, state) = load_once("hostile_link", &link).await;
    assert_eq!(not_regular_kind(&result), "a symbolic link");
    let dead_letters = state.path().join("dead-letter");
    assert!(
        !dead_letters.exists() || std::fs::read_dir(&dead_letters).unwrap().count() == 0,
        "nothing may be dead-lettered from a link's target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_to_dev_urandom_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("RAND_full_1min_adjsplit.txt");
    std::os::unix::fs::symlink("/dev/urandom", &link).unwrap();
    let (result, _state) = load_once("hostile_urandom", &link).await;
    assert_eq!(not_regular_kind(&result), "a symbolic link");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_swapped_in_fails_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("FIFO_full_1min_adjsplit.txt");
    mkfifo(&fifo);
    let (result, _state) = load_once("hostile_fifo", &fifo).await;
    assert_eq!(not_regular_kind(&result), "a FIFO");
}

/// At resume: a FIFO, a symlink and a directory left in processing/ go to failed/ with a
/// sidecar naming what they are; a regular file beside them still loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_regular_entries_in_processing_are_failed_at_resume_not_left_or_hung_on() {
    let site = Site::new(&unique_keyspace("hostile_resume"));
    let settings = Settings::load(&site.config("a", ""), None).unwrap();
    let processing = site.state().join("processing").join("a");
    std::fs::create_dir_all(&processing).unwrap();
    mkfifo(&processing.join("PIPE_full_1min_adjsplit.txt"));
    std::os::unix::fs::symlink(
        "/dev/urandom",
        processing.join("URND_full_1min_adjsplit.txt"),
    )
    .unwrap();
    std::fs::create_dir(processing.join("DIRX_full_1min_adjsplit.txt")).unwrap();
    std::fs::write(processing.join("GOOD_full_1min_adjsplit.txt"), GOOD).unwrap();

    let daemon = common::InProcess::start(settings.clone());
    let failed = site.state().join("failed");
    let sidecars = || {
        std::fs::read_dir(&failed)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".error.json"))
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    wait_until_async(
        Duration::from_secs(60),
        "three sidecars in failed/",
        || async { sidecars().len() == 3 },
    )
    .await;
    wait_until_async(
        Duration::from_secs(60),
        "the regular file in done/",
        || async { site.files_in("done").len() == 1 },
    )
    .await;
    let all = sidecars().join("\n");
    for kind in ["a FIFO", "a symbolic link", "a directory"] {
        assert!(all.contains(kind), "no sidecar says {kind}:\n{all}");
    }
    assert_eq!(
        std::fs::read_dir(&processing).unwrap().count(),
        0,
        "processing/ must be empty"
    );
    assert!(daemon.stop().await.is_ok());
    let session = common::connect(&settings).await;
    let schema = bar_ingest::store::Schema::from_config(&settings.database);
    common::drop_keyspace(&session, &schema).await;
}
