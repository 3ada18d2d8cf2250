//! The write-timestamp contract (issue 12): every row of a delivery carries the client timestamp
//! its load-history row records; a restart after `kill -9` reuses it; `load --force` writes a
//! larger one; of two deliveries of the same days loaded at once, the later-claimed wins.

mod common;

use std::time::Duration;

use bar_ingest::account::history::Outcome;
use bar_ingest::config::Settings;
use bar_ingest::ingest::{FileResult, LoadOptions};
use bar_ingest::store::Schema;
use common::{Site, expected_bars, history, run_load, unique_keyspace};
use scylla::client::session::Session;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

/// `n` one-minute bars a day from 04:00 on each weekday of March 2021; `version` sets prices.
fn bars(n_days: u32, per_day: u32, version: u32) -> String {
    let mut out = String::new();
    let mut day = chrono::NaiveDate::from_ymd_opt(2021, 3, 1).unwrap();
    let mut days = 0;
    while days < n_days {
        use chrono::Datelike;
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

/// Every stored bar's write time (µs) with its instant: the write time of the day cell that
/// holds it (the default layout, days), its bars decoded with the product's codec.
async fn write_times(session: &Session, schema: &Schema) -> Vec<(i64, i64)> {
    use futures_util::TryStreamExt;
    let pager = session
        .query_iter(
            format!("SELECT cell, WRITETIME(cell) FROM {}", schema.days()),
            (),
        )
        .await
        .expect("select write times");
    let cells: Vec<(Vec<u8>, i64)> = pager
        .rows_stream::<(Vec<u8>, i64)>()
        .unwrap()
        .try_collect()
        .await
        .expect("read write times");
    let mut out = Vec::new();
    for (cell, w) in cells {
        let mut cols = bar_ingest::cell::DayColumns::default();
        bar_ingest::cell::decode_into(&cell, &mut cols).expect("a stored cell decodes");
        out.extend(cols.times.iter().map(|t| (*t, w)));
    }
    out
}

async fn open(config: &std::path::Path) -> (Session, Schema) {
    let settings = Settings::load(config, None).unwrap();
    let schema = Schema::from_config(&settings.database);
    (common::connect(&settings).await, schema)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_carries_the_history_timestamp_and_force_writes_a_larger_one() {
    let site = Site::new(&unique_keyspace("wts_force"));
    let config = site.config("a", "");
    let file = site.dir.path().join("WTS_full_1min_adjsplit.txt");
    std::fs::write(&file, bars(3, 30, 1)).unwrap();
    let (code, err) = run_load(&config, &[file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (session, schema) = open(&config).await;
    let first = history(&session, &schema).await;
    assert_eq!(first.len(), 1);
    let t1 = first[0].write_timestamp;
    let times = write_times(&session, &schema).await;
    assert_eq!(times.len(), 90);
    assert!(times.iter().all(|(_, w)| *w == t1), "{times:?} vs {t1}");

    let (code, err) = run_load(&config, &["--force", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let second = history(&session, &schema).await;
    let t2 = second[0].write_timestamp;
    assert!(t2 > t1, "--force wrote {t2}, not above {t1}");
    let times = write_times(&session, &schema).await;
    assert_eq!(times.len(), 90);
    assert!(times.iter().all(|(_, w)| *w == t2));
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_kill_9_keeps_the_recorded_write_timestamp() {
    let (session, schema, _) = common::fresh_schema("wts_kill").await;
    let site = Site::new(&schema.keyspace);
    let config = site.config("k", "");
    // Slow loads: tiny batches, one in flight, and a pace of 600 bars a second, so the 9,000
    // bars (15 day cells of 600 bars in the default layout) take about 15 s however fast the
    // machine is.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[ingest]\n",
        "[ingest]\nbatch_rows = 5\nmax_batches_in_flight = 1\nfiles_in_parallel = 1\n\
         max_rows_per_second = 600\n",
    );
    std::fs::write(&config, text).unwrap();
    let body = bars(15, 600, 2);
    std::fs::write(site.inbox().join("KILL_full_1min_adjsplit.txt"), &body).unwrap();

    let mut daemon = site.spawn_daemon(&config);
    // Kill once the history says "loading" and some rows are in.
    let started = std::time::Instant::now();
    let recorded = loop {
        let h = history(&session, &schema).await;
        assert!(
            started.elapsed() < WAIT,
            "no loading record with bars stored in {WAIT:?}; the history holds {:?}, done/ holds {:?}",
            h.iter().map(|r| r.outcome).collect::<Vec<_>>(),
            site.files_in("done")
        );
        if let Some(r) = h.iter().find(|r| r.outcome == Outcome::Loading)
            && !write_times(&session, &schema).await.is_empty()
        {
            break r.write_timestamp;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    common::signal(&daemon, "KILL");
    daemon.wait().unwrap();
    assert!(
        site.files_in("done").is_empty(),
        "the load finished before the kill; make it slower"
    );

    let mut daemon = site.spawn_daemon(&config);
    common::wait_until(WAIT, "the file in done/", || {
        site.files_in("done").len() == 1
    });
    assert!(common::terminate(&mut daemon).success());
    let h = history(&session, &schema).await;
    assert_eq!(h[0].outcome, Outcome::Loaded);
    assert_eq!(h[0].write_timestamp, recorded);
    let times = write_times(&session, &schema).await;
    assert_eq!(times.len(), expected_bars("KILL", &body).len());
    assert!(times.iter().all(|(_, w)| *w == recorded));
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_deliveries_loaded_at_once_the_later_claimed_wins() {
    let (session, schema, settings) = common::fresh_schema("wts_race").await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let loader = common::loader(&settings, &dir.path().join("dead-letter")).await;
    // The earlier-claimed delivery is the big one: it is still writing when the later one ends
    // (200 days of 900 bars, against the later one's 10 days of 60: in the day layout, 200
    // cells against 10, so no machine is fast enough to finish the early one first).
    let (early, late) = (bars(200, 900, 3), bars(10, 60, 4));
    let write = |name: &str, body: &str| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("RACE_full_1min_adjsplit.txt");
        std::fs::write(&f, body).unwrap();
        f
    };
    let (early_file, late_file) = (write("early", &early), write("late", &late));
    let first = {
        let (loader, cancel) = (loader.clone(), cancel.clone());
        tokio::spawn(async move {
            loader
                .load(&early_file, LoadOptions::default(), &cancel, None)
                .await
                .into_single()
                .expect("a plain file is one unit")
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = loader
        .load(&late_file, LoadOptions::default(), &cancel, None)
        .await
        .into_single()
        .expect("a plain file is one unit");
    assert!(
        !first.is_finished(),
        "the earlier delivery finished first: this test needs it still writing; make it bigger"
    );
    let first = first.await.unwrap();
    assert!(matches!(second, FileResult::Loaded(_)), "{second:?}");
    assert!(matches!(first, FileResult::Loaded(_)), "{first:?}");
    // The later delivery's days (1 to 12 March) hold its bars; the early one's after them stay.
    let after_late = chrono::DateTime::parse_from_rfc3339("2021-03-13T05:00:00Z")
        .unwrap()
        .timestamp_millis();
    let mut want = expected_bars("RACE", &late);
    want.extend(
        expected_bars("RACE", &early)
            .into_iter()
            .filter(|b| b.1 >= after_late),
    );
    assert_eq!(want.len(), 10 * 60 + 190 * 900);
    let stored = common::all_bars(&session, &schema).await;
    assert!(
        stored == want,
        "{} bars stored, {} expected",
        stored.len(),
        want.len()
    );
    common::drop_keyspace(&session, &schema).await;
}
