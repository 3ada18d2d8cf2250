//! Faults the daemon must survive without losing or doubling anything: two instances on one
//! inbox, and `kill -9` in the middle of a load.

mod common;

use std::time::Duration;

use bar_gen::GenSpec;
use bar_ingest::account::history::Outcome;
use chrono::NaiveDate;
use common::{Site, all_bars, expected_bars, history};

const WAIT: Duration = Duration::from_secs(240);

fn sorted(mut v: Vec<common::Stored>) -> Vec<common::Stored> {
    common::sort_bars(&mut v);
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_on_one_inbox_load_each_of_50_files_exactly_once() {
    let (session, schema, _) = common::fresh_schema("two_instances").await;
    let site = Site::new(&schema.keyspace);
    let a = site.config("a", "");
    let b = site.config("b", "");
    let mut da = site.spawn_daemon(&a);
    let mut db = site.spawn_daemon(&b);
    // Both watching before any file arrives, so that both can claim.
    common::wait_until(WAIT, "both instances ready", || {
        ["a", "b"]
            .iter()
            .all(|i| site.log(i).contains("first scan of the inbox done"))
    });

    let symbols: Vec<String> = (0..50).map(|i| format!("S{i:02}")).collect();
    let spec = GenSpec {
        symbols: symbols.clone(),
        start: NaiveDate::from_ymd_opt(2020, 6, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2020, 6, 1).unwrap(),
        seed: 50,
    };
    let mut expected = Vec::new();
    for sym in &symbols {
        let mut buf = Vec::new();
        bar_gen::write_symbol(&spec, sym, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        expected.extend(expected_bars(sym, &text));
        // Written elsewhere, then renamed in: complete files only.
        let tmp = site.dir.path().join(bar_gen::file_name(sym));
        std::fs::write(&tmp, &text).unwrap();
        std::fs::rename(&tmp, site.inbox().join(bar_gen::file_name(sym))).unwrap();
    }
    common::wait_until(WAIT, "50 files in done/", || {
        site.files_in("done").len() == 50
    });
    assert!(common::terminate(&mut da).success(), "{}", site.log("a"));
    assert!(common::terminate(&mut db).success(), "{}", site.log("b"));

    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 50);
    assert!(records.iter().all(|r| r.outcome == Outcome::Loaded));
    common::assert_reconciles(&records);
    assert!(
        site.files_in("duplicates").is_empty(),
        "a file was processed twice"
    );
    let by_a = records.iter().filter(|r| r.instance == "a").count();
    eprintln!("instance a loaded {by_a} files, b {}", 50 - by_a);
    assert!(
        (1..=49).contains(&by_a),
        "one instance loaded all 50 files: the inbox was not shared ({by_a} by a)"
    );
    assert_eq!(all_bars(&session, &schema).await, sorted(expected));
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_load_then_restart_loses_and_doubles_nothing() {
    let (session, schema, _) = common::fresh_schema("kill9").await;
    let site = Site::new(&schema.keyspace);
    // Small batches, few in flight and a pace cap (a day cell is one write, so batches alone no
    // longer slow a load) make the load long enough to be killed in the middle.
    let config = slow_config(&site, "k", "30s");
    // Across the November 2019 fall-back change (the days around it; bar-gen writes 04:00-20:00
    // only, so the repeated hour itself is loaded end to end by tests/replace_model.rs).
    let expected = drop_files(&site, &["KA", "KB", "KC"], (2019, 10, 28), (2019, 11, 8), 9);

    let mut daemon = site.spawn_daemon(&config);
    // Kill once some rows of the first file are in, before everything is.
    common::wait_until_async(WAIT, "some rows written", || async {
        let n = session
            .query_unpaged(format!("SELECT COUNT(*) FROM {}", schema.history()), ())
            .await
            .ok()
            .and_then(|r| r.into_rows_result().ok())
            .and_then(|r| r.first_row::<(i64,)>().ok())
            .map(|r| r.0)
            .unwrap_or(0);
        n >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    common::signal(&daemon, "KILL");
    daemon.wait().unwrap();
    let done_at_kill = site.files_in("done").len();
    assert!(
        done_at_kill < 3,
        "the kill came too late to test anything ({done_at_kill} done)"
    );
    assert!(
        !site.files_in("processing/k").is_empty(),
        "a file should be claimed at the kill"
    );

    // Restart: it resumes what it had claimed and loads the rest.
    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "3 files in done/", || {
        site.files_in("done").len() == 3
    });
    assert!(
        common::terminate(&mut daemon).success(),
        "{}",
        site.log("k")
    );

    assert_eq!(all_bars(&session, &schema).await, expected);
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 3);
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Loaded),
        "{records:?}"
    );
    common::assert_reconciles(&records);
    assert!(site.files_in("processing/k").is_empty());
    assert!(site.files_in("duplicates").is_empty());
    common::drop_keyspace(&session, &schema).await;
}

/// Writes a config for instance `name` whose loads are slow (tiny batches, 2 in flight), with
/// `deadline` as the shutdown deadline.
fn slow_config(site: &Site, name: &str, deadline: &str) -> std::path::PathBuf {
    let config = site.config(name, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[ingest]\n",
        &format!(
            "[ingest]\nbatch_rows = 5\nmax_batches_in_flight = 2\nfiles_in_parallel = 1\n\
             max_rows_per_second = 3000\nshutdown_deadline = \"{deadline}\"\n"
        ),
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Generates files for `symbols` over [from, to] into the inbox; returns the expected rows.
fn drop_files(
    site: &Site,
    symbols: &[&str],
    from: (i32, u32, u32),
    to: (i32, u32, u32),
    seed: u64,
) -> Vec<common::Stored> {
    let spec = GenSpec {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        start: NaiveDate::from_ymd_opt(from.0, from.1, from.2).unwrap(),
        end: NaiveDate::from_ymd_opt(to.0, to.1, to.2).unwrap(),
        seed,
    };
    let mut expected = Vec::new();
    for sym in &spec.symbols {
        let mut buf = Vec::new();
        bar_gen::write_symbol(&spec, sym, &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        expected.extend(expected_bars(sym, &text));
        std::fs::write(site.inbox().join(bar_gen::file_name(sym)), &text).unwrap();
    }
    sorted(expected)
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_claiming_exits_0_and_a_restart_finishes_the_rest() {
    let (session, schema, _) = common::fresh_schema("sigterm").await;
    let site = Site::new(&schema.keyspace);
    // A deadline too short for the file in flight: it is handed back, not lost.
    let config = slow_config(&site, "t", "1s");
    // Long enough that the claimed file cannot finish within the deadline.
    let expected = drop_files(&site, &["TA", "TB"], (2017, 3, 1), (2017, 4, 28), 21);
    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "a file claimed", || {
        !site.files_in("processing/t").is_empty()
    });

    let stopped = std::time::Instant::now();
    let status = common::terminate(&mut daemon);
    assert!(
        status.success(),
        "SIGTERM must exit 0: {status:?}\n{}",
        site.log("t")
    );
    // The deadline is 1 s; the rest is process start-up and shutdown on a loaded machine.
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "took {:?} to stop with a 1 s deadline",
        stopped.elapsed()
    );
    let log = site.log("t");
    assert!(log.contains("stop signal received"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in a log written to a file: {log:?}"
    );
    assert!(log.contains("deadline passed"), "{log}");
    // One file at a time: the claimed one is handed back in processing/, the other never left
    // the inbox, nothing is done.
    assert_eq!(site.files_in("processing/t").len(), 1, "{log}");
    assert_eq!(std::fs::read_dir(site.inbox()).unwrap().count(), 1, "{log}");
    assert!(site.files_in("done").is_empty(), "{log}");

    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "2 files in done/", || {
        site.files_in("done").len() == 2
    });
    assert!(common::terminate(&mut daemon).success());
    assert_eq!(all_bars(&session, &schema).await, expected);
    common::assert_reconciles(&history(&session, &schema).await);
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_exits_at_once_and_a_restart_still_loses_nothing() {
    let (session, schema, _) = common::fresh_schema("sigterm2").await;
    let site = Site::new(&schema.keyspace);
    // A long deadline: only the second signal can make it exit quickly.
    let config = slow_config(&site, "u", "10m");
    let expected = drop_files(&site, &["UA"], (2017, 3, 1), (2017, 3, 14), 22);
    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "the file claimed", || {
        !site.files_in("processing/u").is_empty()
    });

    common::signal(&daemon, "TERM");
    common::wait_until(WAIT, "the first signal seen", || {
        site.log("u").contains("stop signal received")
    });
    let second = std::time::Instant::now();
    common::signal(&daemon, "TERM");
    let status = daemon.wait().unwrap();
    assert!(
        second.elapsed() < Duration::from_secs(10),
        "second signal took {:?}",
        second.elapsed()
    );
    // 128 + SIGTERM, as a shell reports a process killed by it.
    assert_eq!(status.code(), Some(143), "{}", site.log("u"));

    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "the file in done/", || {
        site.files_in("done").len() == 1
    });
    assert!(common::terminate(&mut daemon).success());
    assert_eq!(all_bars(&session, &schema).await, expected);
    common::drop_keyspace(&session, &schema).await;
}
