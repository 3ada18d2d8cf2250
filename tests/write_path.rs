//! The write path's regression tests (issue 19, the review's findings): each test is named after
//! the defect it pins, runs the real loader or the real binary on real folders against the real
//! node, and failed before its fix.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bar_ingest::account::history::Outcome;
use bar_ingest::ingest::{FileResult, LoadOptions, Progress};
use common::{Stored, expected_bars, history};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

/// `per_day` one-minute bars a day from 04:00 on each of `n_days` weekdays from 2021-03-01;
/// `version` sets the prices and volumes.
fn bars(n_days: u32, per_day: u32, version: u32) -> String {
    bars_from(
        chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap(),
        n_days,
        per_day,
        version,
    )
}

fn bars_from(mut day: chrono::NaiveDate, n_days: u32, per_day: u32, version: u32) -> String {
    use chrono::Datelike;
    let mut out = String::new();
    let mut days = 0;
    while days < n_days {
        if day.weekday().number_from_monday() <= 5 {
            for m in 0..per_day {
                let t = chrono::NaiveTime::from_hms_opt(4, 0, 0).unwrap()
                    + chrono::TimeDelta::minutes(i64::from(m));
                let p = f64::from(version) * 10.0 + f64::from(m % 50) / 10.0;
                out.push_str(&format!(
                    "{day} {t},{p},{},{},{p},{}\n",
                    p + 1.0,
                    p - 1.0,
                    m + version
                ));
            }
            days += 1;
        }
        day = day.succ_opt().unwrap();
    }
    out
}

fn write_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let f = dir.join(name);
    std::fs::write(&f, body).unwrap();
    f
}

/// How a file is changed once pass 1 has read it whole.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// A day of bars appended.
    Append,
    /// The last line's volume rewritten in place (same length).
    Rewrite,
}

/// Pass 2 read to the file's current end and wrote its rows before the fingerprints were
/// compared: rows appended (or changed) after pass 1 were written unvalidated. Now pass 2 reads
/// only pass 1's content, each chunk checked first, and a changed file is handed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pass_2_wrote_rows_appended_or_changed_after_pass_1() {
    for change in [Change::Append, Change::Rewrite] {
        let (session, schema, mut settings) = common::fresh_schema("wp_grow").await;
        // Pass 2 paced so that it is still reading when the file changes.
        settings.ingest.pace.rows_per_second = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
        let mut body = bars(50, 960, 1);
        // The last line, with a volume of its own that the rewrite changes.
        body.push_str("2021-05-28 19:00:00,5,6,4,5,11111\n");
        let file = write_file(&dir.path().join("in"), "GROW_full_1min_adjsplit.txt", &body);
        let size = body.len() as u64;
        let progress = Arc::new(Progress::default());
        let changer = {
            let (progress, file) = (progress.clone(), file.clone());
            std::thread::spawn(move || {
                let start = std::time::Instant::now();
                // Pass 2 has begun (both passes count their bytes): pass 1 is over.
                while progress.bytes.load(Ordering::Relaxed) <= size {
                    assert!(start.elapsed() < WAIT, "pass 1 never ended");
                    std::thread::sleep(Duration::from_millis(1));
                }
                match change {
                    Change::Append => {
                        let later = chrono::NaiveDate::from_ymd_opt(2021, 6, 1).unwrap();
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .open(&file)
                            .unwrap();
                        f.write_all(bars_from(later, 1, 60, 9).as_bytes()).unwrap();
                    }
                    Change::Rewrite => {
                        use std::os::unix::fs::FileExt;
                        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
                        f.write_all_at(b"22222", size - 6).unwrap();
                    }
                }
            })
        };
        let result = loader
            .load(
                &file,
                LoadOptions::default(),
                &CancellationToken::new(),
                Some(progress),
            )
            .await
            .into_single()
            .expect("one unit");
        changer.join().unwrap();
        assert!(
            matches!(result, FileResult::Changed(_)),
            "{change:?}: {result:?}"
        );
        let validated = expected_bars("GROW", &body);
        let by_time: std::collections::HashMap<i64, &Stored> =
            validated.iter().map(|b| (b.1, b)).collect();
        let stored = common::all_bars(&session, &schema).await;
        let unvalidated: Vec<&Stored> = stored
            .iter()
            .filter(|b| by_time.get(&b.1) != Some(b))
            .collect();
        assert!(
            unvalidated.is_empty(),
            "{change:?}: {} rows written that pass 1 never validated, e.g. {:?}",
            unvalidated.len(),
            unvalidated.first()
        );
        common::drop_keyspace(&session, &schema).await;
    }
}

/// Loads `file` with `loader`: its one unit's result.
async fn load_one(
    loader: &Arc<bar_ingest::ingest::Loader>,
    file: &Path,
    progress: Option<Arc<Progress>>,
) -> FileResult {
    loader
        .load(
            file,
            LoadOptions::default(),
            &CancellationToken::new(),
            progress,
        )
        .await
        .into_single()
        .expect("a plain file is one unit")
}

/// A permanent failure mid-load left the history at `loading` for ever (nothing wrote
/// `failed`), and a re-drop of the same content then reused that old write timestamp: it lost
/// to a delivery of the same days loaded in between. Now the failure is recorded as `failed`
/// with its error, and the re-drop takes a new timestamp and replaces the partial rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_load_stayed_loading_and_its_redrop_lost_to_a_later_delivery() {
    let (session, schema, mut settings) = common::fresh_schema("wp_failed").await;
    settings.ingest.pace.rows_per_second = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
    let name = "FAIL_full_1min_adjsplit.txt";
    let (first, between) = (bars(20, 960, 1), bars(20, 960, 2));
    let first_file = write_file(&dir.path().join("first"), name, &first);
    let between_file = write_file(&dir.path().join("between"), name, &between);

    // The bars table vanishes mid-load: a permanent error.
    let progress = Arc::new(Progress::default());
    let loading = {
        let (loader, file, progress) = (loader.clone(), first_file.clone(), progress.clone());
        tokio::spawn(async move { load_one(&loader, &file, Some(progress)).await })
    };
    common::wait_until_async(WAIT, "some rows written", || {
        let p = progress.clone();
        async move { p.rows_written.load(Ordering::Relaxed) > 0 }
    })
    .await;
    for table in [schema.bars(), schema.days()] {
        session
            .query_unpaged(format!("DROP TABLE {table}"), ())
            .await
            .expect("drop the bar tables");
    }
    let failed = loading.await.unwrap();
    assert!(matches!(failed, FileResult::Failed(..)), "{failed:?}");
    let after_failure = history(&session, &schema).await;
    bar_ingest::store::init_schema(&session, &schema)
        .await
        .expect("the bars table again");

    // A delivery of the same days, then the failed content dropped again.
    let loaded = load_one(&loader, &between_file, None).await;
    assert!(matches!(loaded, FileResult::Loaded(_)), "{loaded:?}");
    let again = load_one(&loader, &first_file, None).await;
    assert!(matches!(again, FileResult::Loaded(_)), "{again:?}");
    let stored = common::all_bars(&session, &schema).await;
    assert!(
        stored == expected_bars("FAIL", &first),
        "the re-dropped content lost to the delivery loaded before it ({} rows stored)",
        stored.len()
    );
    assert_eq!(after_failure.len(), 1, "{after_failure:?}");
    let record = &after_failure[0];
    assert_eq!(record.outcome, Outcome::Failed, "{record:?}");
    assert!(
        record.error.is_some() && record.finished_at.is_some(),
        "{record:?}"
    );
    common::drop_keyspace(&session, &schema).await;
}

/// A zip of a big member and then a member of symbol `ZIPX`.
fn zip_of(members: &[(&str, &str)]) -> Vec<u8> {
    use zip::write::SimpleFileOptions;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, content) in members {
        w.start_file(*name, SimpleFileOptions::default()).unwrap();
        w.write_all(content.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The write timestamp was taken when each unit started, not at claim: the second member of
/// a zip claimed before another delivery of its days, but started after that one loaded,
/// replaced the newer delivery. Now every member writes at the delivery's claim time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_member_outranked_a_delivery_claimed_after_its_zip() {
    let (session, schema, mut settings) = common::fresh_schema("wp_zipts").await;
    settings.ingest.pace.rows_per_second = 5_000;
    let dir = tempfile::tempdir().unwrap();
    let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
    let (big, in_zip, newer) = (bars(20, 960, 1), bars(3, 60, 2), bars(3, 60, 3));
    let zip_body = zip_of(&[
        ("BIGZ_full_1min_adjsplit.txt", &big),
        ("ZIPX_full_1min_adjsplit.txt", &in_zip),
    ]);
    let zip_file = dir.path().join("bundle.zip");
    std::fs::write(&zip_file, zip_body).unwrap();
    let newer_file = write_file(
        &dir.path().join("newer"),
        "ZIPX_full_1min_adjsplit.txt",
        &newer,
    );

    let progress = Arc::new(Progress::default());
    let zip_load = {
        let (loader, file, progress) = (loader.clone(), zip_file.clone(), progress.clone());
        tokio::spawn(async move {
            loader
                .load(
                    &file,
                    LoadOptions::default(),
                    &CancellationToken::new(),
                    Some(progress),
                )
                .await
        })
    };
    // The zip is claimed and writing its first member; the newer delivery comes and loads.
    common::wait_until_async(WAIT, "the first member writing", || {
        let p = progress.clone();
        async move { p.rows_written.load(Ordering::Relaxed) > 0 }
    })
    .await;
    let newer_result = load_one(&loader, &newer_file, None).await;
    assert!(
        matches!(newer_result, FileResult::Loaded(_)),
        "{newer_result:?}"
    );
    assert!(
        !zip_load.is_finished(),
        "the zip finished before the newer delivery: make its first member bigger"
    );
    let zipped = zip_load.await.unwrap();
    assert!(zipped.all_loaded(), "{zipped:?}");
    let stored: Vec<Stored> = common::all_bars(&session, &schema)
        .await
        .into_iter()
        .filter(|b| b.0 == "ZIPX")
        .collect();
    assert!(
        stored == expected_bars("ZIPX", &newer),
        "the zip's member replaced the delivery claimed after the zip"
    );
    let records = history(&session, &schema).await;
    let zip_times: std::collections::BTreeSet<i64> = records
        .iter()
        .filter(|r| r.file_name.starts_with("bundle.zip!"))
        .map(|r| r.write_timestamp)
        .collect();
    assert_eq!(
        zip_times.len(),
        1,
        "every member at the claim time: {records:?}"
    );
    common::drop_keyspace(&session, &schema).await;
}

/// A file resumed at start-up after a crash in pass 1 (no history row yet) took the time it
/// resumed as its write timestamp: it replaced a delivery of its days claimed after it and
/// loaded while it waited. Now it keeps its claim time (the claim rename's status-change time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_resumed_after_a_crash_in_pass_1_outranked_a_newer_delivery() {
    let (session, schema, settings) = common::fresh_schema("wp_resume").await;
    let dir = tempfile::tempdir().unwrap();
    let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
    let name = "RES_full_1min_adjsplit.txt";
    let (claimed_first, newer) = (bars(3, 60, 1), bars(3, 60, 2));
    // Claimed by an earlier run (renamed into processing/), which then crashed in pass 1.
    let staged = write_file(&dir.path().join("inbox"), name, &claimed_first);
    std::fs::create_dir_all(dir.path().join("processing")).unwrap();
    let claimed = dir.path().join("processing").join(name);
    std::fs::rename(&staged, &claimed).unwrap();
    // A newer delivery of the same days, claimed after it, loads first.
    std::thread::sleep(Duration::from_millis(5));
    let newer_file = write_file(&dir.path().join("newer"), name, &newer);
    let loaded = load_one(&loader, &newer_file, None).await;
    assert!(matches!(loaded, FileResult::Loaded(_)), "{loaded:?}");
    // The restart resumes the claimed file.
    let options = LoadOptions {
        resuming: true,
        ..LoadOptions::default()
    };
    let resumed = loader
        .load(&claimed, options, &CancellationToken::new(), None)
        .await
        .into_single()
        .expect("one unit");
    assert!(matches!(resumed, FileResult::Loaded(_)), "{resumed:?}");
    let stored = common::all_bars(&session, &schema).await;
    assert!(
        stored == expected_bars("RES", &newer),
        "the resumed file, claimed first, replaced the newer delivery"
    );
    common::drop_keyspace(&session, &schema).await;
}

/// A failed move out of processing/ was never retried (the file sat there until a restart),
/// and while it sat there every new delivery of its name was refused without a log line: a
/// ticker with a fixed daily file name stopped updating, silently. Now the move is retried with
/// backoff, and the waiting delivery is named in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_move_out_of_processing_was_never_retried_and_blocked_its_name_silently() {
    let (session, schema, _) = common::fresh_schema("wp_stuck").await;
    let site = common::Site::new(&schema.keyspace);
    let config = site.config("a", "");
    let mut daemon = site.spawn_daemon(&config);
    let done = site.state().join("done");
    common::wait_until(WAIT, "the daemon ready", || {
        site.log("a").contains("first scan of the inbox done")
    });
    // done/ is not a folder any more: the move of a loaded file fails (ENOTDIR).
    std::fs::remove_dir(&done).unwrap();
    std::fs::write(&done, "not a folder").unwrap();
    let name = "DAILY_full_1min_adjsplit.txt";
    std::fs::write(site.inbox().join(name), bars(1, 30, 1)).unwrap();
    common::wait_until(WAIT, "the move out of processing/ failing", || {
        site.log("a").contains("cannot move")
    });
    // The next day's file of the same name arrives while the first is stuck.
    std::fs::write(site.inbox().join(name), bars(1, 30, 2)).unwrap();
    common::wait_until(
        Duration::from_secs(30),
        "a log line naming the delivery that waits behind a file of its name in processing/",
        || site.log("a").contains("still in processing/"),
    );
    // done/ back: the stuck file moves on without a restart, then the waiting one loads.
    std::fs::remove_file(&done).unwrap();
    std::fs::create_dir(&done).unwrap();
    common::wait_until(WAIT, "both deliveries in done/", || {
        site.files_in("done").len() == 2
    });
    assert!(site.files_in("processing/a").is_empty());
    assert!(common::terminate(&mut daemon).success());
    let log = site.log("a");
    assert!(log.contains("retrying"), "{log}");
    common::drop_keyspace(&session, &schema).await;
}

/// `ingest.shutdown_deadline` was not enforced during pass 1: the scan never looked at the
/// cancellation, so a stop waited for a big file to be read whole. Now pass 1 stops within a
/// few thousand rows of the cancellation, and the unit is interrupted (resumed at next start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_during_pass_1_waited_for_the_whole_file_to_be_read() {
    let (session, schema, settings) = common::fresh_schema("wp_stop1").await;
    let dir = tempfile::tempdir().unwrap();
    let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
    // About 40 MB: pass 1 takes seconds, even in a release build.
    let body = bars(1000, 960, 1);
    let size = body.len() as u64;
    let file = write_file(&dir.path().join("in"), "BIG_full_1min_adjsplit.txt", &body);
    drop(body);
    let (progress, cancel) = (Arc::new(Progress::default()), CancellationToken::new());
    let load = {
        let (loader, file, progress, cancel) = (
            loader.clone(),
            file.clone(),
            progress.clone(),
            cancel.clone(),
        );
        tokio::spawn(async move {
            loader
                .load(&file, LoadOptions::default(), &cancel, Some(progress))
                .await
        })
    };
    common::wait_until_async(WAIT, "pass 1 reading", || {
        let p = progress.clone();
        async move { p.bytes.load(Ordering::Relaxed) > 0 }
    })
    .await;
    let stopped = std::time::Instant::now();
    cancel.cancel();
    let result = load.await.unwrap();
    let read = progress.bytes.load(Ordering::Relaxed);
    assert!(result.interrupted(), "{result:?}");
    assert!(
        read < size,
        "pass 1 read all {size} bytes after the stop ({:?} after it)",
        stopped.elapsed()
    );
    assert!(history(&session, &schema).await.is_empty());
    common::drop_keyspace(&session, &schema).await;
}

/// `load DIR` skipped symbolic links silently: a folder of links (how many people stage files)
/// said "0 files" and exited 0. Now it names what it skipped and why, and exits non-zero when
/// nothing was loadable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_of_a_folder_of_symlinks_said_0_files_and_exit_0() {
    let (session, schema, _) = common::fresh_schema("wp_links").await;
    let site = common::Site::new(&schema.keyspace);
    let real = write_file(
        &site.dir.path().join("real"),
        "LNK_full_1min_adjsplit.txt",
        &bars(1, 10, 1),
    );
    let staged = site.dir.path().join("staged");
    std::fs::create_dir_all(&staged).unwrap();
    std::os::unix::fs::symlink(&real, staged.join("LNK_full_1min_adjsplit.txt")).unwrap();
    let config = site.config("l", "");
    let (code, stderr) = common::run_load(&config, &[staged.to_str().unwrap()]);
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert!(stderr.contains("LNK_full_1min_adjsplit.txt"), "{stderr}");
    common::drop_keyspace(&session, &schema).await;
}

/// A quarantine recorded its outcome over the history row of the same identity, even one that
/// said `loaded` (the same content, quarantined after a lower `reject_threshold`): the history
/// then denied rows that are in the database. Now a loaded row is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarantine_overwrote_the_loaded_history_row_of_its_content() {
    let (session, schema, mut settings) = common::fresh_schema("wp_quar").await;
    let dir = tempfile::tempdir().unwrap();
    let mut body = bars(1, 7, 1);
    body.push_str("bad line\nbad line\nbad line\n");
    let file = write_file(&dir.path().join("in"), "QRT_full_1min_adjsplit.txt", &body);
    settings.ingest.reject_threshold = 0.5;
    let lenient = common::loader(&settings, &dir.path().join("dead-letter")).await;
    let first = load_one(&lenient, &file, None).await;
    assert!(matches!(first, FileResult::Loaded(_)), "{first:?}");
    settings.ingest.reject_threshold = 0.1;
    let strict = common::loader(&settings, &dir.path().join("dead-letter")).await;
    let second = load_one(&strict, &file, None).await;
    assert!(matches!(second, FileResult::Quarantined(..)), "{second:?}");
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].outcome, Outcome::Loaded, "{:?}", records[0]);
    assert_eq!(records[0].rows_written, 7);
    common::drop_keyspace(&session, &schema).await;
}

/// A mistyped `database.local_datacenter` came out as the driver's "empty plan" error on the
/// first query (or, retried, as a database that does not answer). Now the connection says the
/// key names no datacenter of the cluster and which ones it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_local_datacenter_did_not_say_so() {
    let (session, schema, _) = common::fresh_schema("wp_dc").await;
    let site = common::Site::new(&schema.keyspace);
    let file = write_file(&site.inbox(), "DC_full_1min_adjsplit.txt", &bars(1, 5, 1));
    let config = site.config("d", "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[database]\n",
        "[database]\nlocal_datacenter = \"dc-typo\"\n",
    );
    std::fs::write(&config, text).unwrap();
    let (code, stderr) = common::run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("database.local_datacenter") && stderr.contains("dc-typo"),
        "{stderr}"
    );
    common::drop_keyspace(&session, &schema).await;
}

/// A file handed back beside a new delivery of its name lands as `<name>.<suffix>`, and that
/// name no longer matched `[[source]]` patterns such as `*_utc.txt`: it was read under the
/// default rule (New York time), five hours off. Now the suffix a move adds is not part of the
/// name rules and symbols are read from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_back_name_with_a_suffix_no_longer_matched_its_source_rule() {
    let (session, schema, _) = common::fresh_schema("wp_suffix").await;
    let site = common::Site::new(&schema.keyspace);
    let body = bars(2, 30, 1);
    // As `claim::archive` names a hand-back whose name is taken.
    let file = write_file(&site.inbox(), "UTCQ_utc.txt.1733400000123456", &body);
    let rules = "[[source]]\npattern = \"*_utc.txt\"\nlayout = \"firstrate\"\ntimezone = \"UTC\"\n";
    let (code, stderr) = common::run_load(&site.config("s", rules), &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let utc = |line: &str| {
        let t = chrono::NaiveDateTime::parse_from_str(&line[..19], "%Y-%m-%d %H:%M:%S").unwrap();
        t.and_utc().timestamp_millis()
    };
    let expected: Vec<i64> = body.lines().map(utc).collect();
    let stored: Vec<i64> = common::all_bars(&session, &schema)
        .await
        .into_iter()
        .map(|b| {
            assert_eq!(b.0, "UTCQ");
            b.1
        })
        .collect();
    assert_eq!(stored, expected, "read under another rule than `*_utc.txt`");
    common::drop_keyspace(&session, &schema).await;
}

/// Two members of one zip for the same symbol whose days overlap: both were written at the
/// delivery's one write timestamp, so in the day table the two cells of a shared day tied and
/// the larger byte string won (one member's bars of that day were lost whole), while the bars
/// table merged them. Each member is its own delivery: the later member (in the zip's order)
/// replaces the earlier over the days it covers, the same in every layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zip_members_of_one_symbol_sharing_days_tied_and_one_cell_won() {
    use bar_ingest::config::StorageLayout;
    let start = chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap();
    // The first member: 1-5 March; the second: 4-10 March, other prices, fewer bars a day.
    let (early, late) = (
        bars_from(start, 5, 60, 1),
        bars_from(start + chrono::TimeDelta::days(3), 5, 30, 2),
    );
    let zip_body = zip_of(&[
        ("a/OVL_full_1min_adjsplit.txt", &early),
        ("b/OVL_full_1min_adjsplit.txt", &late),
    ]);
    // What a later delivery of the second member leaves: the first's 1-3 March, then the second.
    let late_first = expected_bars("OVL", &late)[0].1;
    let mut want: Vec<Stored> = expected_bars("OVL", &early)
        .into_iter()
        .filter(|b| b.1 < late_first)
        .collect();
    assert_eq!(want.len(), 3 * 60);
    want.extend(expected_bars("OVL", &late));
    for (name, layout) in [
        ("wp_zovl_d", StorageLayout::Days),
        ("wp_zovl_r", StorageLayout::Rows),
        ("wp_zovl_b", StorageLayout::Both),
    ] {
        let (session, schema, mut settings) = common::fresh_schema(name).await;
        settings.layout = Some(layout);
        let dir = tempfile::tempdir().unwrap();
        let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
        let zip_file = dir.path().join("bundle.zip");
        std::fs::write(&zip_file, &zip_body).unwrap();
        let loaded = loader
            .load(
                &zip_file,
                LoadOptions::default(),
                &CancellationToken::new(),
                None,
            )
            .await;
        assert!(loaded.all_loaded(), "{layout:?}: {loaded:?}");
        if layout.writes_rows() {
            let rows = common::row_bars(&session, &schema).await;
            assert!(
                rows == want,
                "{layout:?}: the bars table merged the members"
            );
        }
        if layout.writes_days() {
            let cells = common::cell_bars(&session, &schema).await;
            assert_eq!(
                cells.len(),
                want.len(),
                "{layout:?}: the day cells lost a member's bars of the shared days"
            );
            assert!(cells == want, "{layout:?}: the day cells differ");
        }
        common::drop_keyspace(&session, &schema).await;
    }
}
