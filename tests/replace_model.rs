//! The loader's end state against an independent model (issue 12): random sequences of 2-5
//! deliveries of one symbol (random days across month edges and both 2021 DST changes, with the
//! skipped and the repeated hour) are loaded in order, and every stored row is compared with
//! what the model says the table must hold. The same model runs against each storage layout
//! (issue 20): bar rows, day cells (read back through `bar_ingest::cell::decode_into`), and both
//! (rows and cells each as the model says).
//!
//! The model shares no code with the product: New York's 2021 offsets are written out by hand,
//! and so are the replace-by-day-range, reject and identity rules.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bar_ingest::config::StorageLayout;
use bar_ingest::ingest::{FileResult, LoadOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio_util::sync::CancellationToken;

/// Days deliveries draw from: month edges, a year edge, and both DST changes of 2021.
const DAYS: [&str; 14] = [
    "2021-01-29",
    "2021-02-01",
    "2021-02-26",
    "2021-03-01",
    "2021-03-12",
    "2021-03-14", // spring forward: 02:00-02:59 does not exist
    "2021-03-15",
    "2021-04-30",
    "2021-05-03",
    "2021-11-05",
    "2021-11-07", // fall back: 01:00-01:59 happens twice
    "2021-11-08",
    "2021-12-31",
    "2022-01-03",
];

/// Wall times a day's bars draw from (in this order within a day).
const TIMES: [&str; 8] = [
    "00:00", "01:15", "01:45", "02:30", "03:00", "09:30", "15:59", "23:59",
];

/// One line of a delivery: local day, wall time, and a price level.
type Line = (&'static str, &'static str, u32);

/// A delivery: its lines in file order.
fn delivery() -> impl Strategy<Value = Vec<Line>> {
    let day = proptest::sample::subsequence(DAYS.to_vec(), 1..=5);
    (
        day,
        proptest::collection::vec(proptest::sample::subsequence(TIMES.to_vec(), 1..=4), 5),
        // Price levels from 2: a low of level - 1 stays positive (the model has no value rules).
        2u32..50,
        any::<bool>(),
    )
        .prop_map(|(days, times, level, repeat_fall_back)| {
            let mut lines = Vec::new();
            for (i, day) in days.iter().enumerate() {
                let times = &times[i % times.len()];
                for t in times {
                    lines.push((*day, *t, level));
                }
                // A vendor writing both 01:xx hours of the fall-back day, in order.
                if *day == "2021-11-07" && repeat_fall_back {
                    let repeated: Vec<Line> = lines
                        .iter()
                        .filter(|(d, t, _)| *d == *day && t.starts_with("01:"))
                        .copied()
                        .collect();
                    let at = lines
                        .iter()
                        .position(|(d, t, _)| *d == *day && *t >= "02:00")
                        .unwrap_or(lines.len());
                    for (k, r) in repeated.into_iter().enumerate() {
                        lines.insert(at + k, r);
                    }
                }
            }
            lines
        })
}

/// The file body of a delivery. `case` enters every volume, so that no two cases share a
/// content (identity across symbols is not what this test models).
fn text(lines: &[Line], version: usize, case: u32) -> String {
    lines
        .iter()
        .enumerate()
        .map(|(i, (d, t, level))| {
            let p = f64::from(*level) + version as f64 + i as f64 / 100.0;
            format!(
                "{d} {t}:00,{p},{},{},{p},{}\n",
                p + 1.0,
                p - 1.0,
                10 * i + version + 1000 * case as usize
            )
        })
        .collect()
}

// ---- the model ----

/// Seconds since the epoch of a local wall time, read as if it were UTC.
fn wall_seconds(day: &str, time: &str) -> i64 {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    let days = d.signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap());
    let (h, m) = time.split_once(':').unwrap();
    days.num_seconds() + h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60
}

/// The UTC instants (ms) a New York wall time in 2021-2022 can mean: none in the spring-forward
/// gap, two in the fall-back hour (earlier first). DST 2021: Mar 14 02:00 to Nov 7 02:00.
fn instants(day: &str, time: &str) -> Vec<i64> {
    const EST: i64 = 5 * 3600;
    const EDT: i64 = 4 * 3600;
    let wall = wall_seconds(day, time);
    let spring = wall_seconds("2021-03-14", "02:00");
    let fall = wall_seconds("2021-11-07", "01:00");
    let ms = |offset: i64| (wall + offset) * 1000;
    if wall < spring {
        vec![ms(EST)]
    } else if wall < spring + 3600 {
        vec![]
    } else if wall < fall {
        vec![ms(EDT)]
    } else if wall < fall + 3600 {
        vec![ms(EDT), ms(EST)]
    } else {
        vec![ms(EST)]
    }
}

/// Start of a New York day in UTC ms (midnight never falls in a DST change in New York).
fn day_start(day: &str) -> i64 {
    instants(day, "00:00")[0]
}

fn next_day(day: &str) -> String {
    let d = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap();
    d.succ_opt().unwrap().format("%Y-%m-%d").to_string()
}

/// Open, high, low, close, volume.
type Ohlcv = (f64, f64, f64, f64, f64);

/// A stored row: (UTC ms) -> its values.
type Table = BTreeMap<i64, Ohlcv>;

/// What the table holds after `text` was delivered on top of `table`; `loaded` is the set of
/// contents already loaded (identity).
fn apply(table: &mut Table, loaded: &mut BTreeSet<String>, text: &str, threshold: f64) {
    if loaded.contains(text) {
        return; // a duplicate: nothing written
    }
    let mut good: Vec<(String, i64, Ohlcv)> = Vec::new();
    let (mut rows_in, mut rejected) = (0u32, 0u32);
    let mut last: Option<i64> = None;
    for line in text.lines() {
        rows_in += 1;
        let f: Vec<&str> = line.split(',').collect();
        let (day, time) = f[0].split_once(' ').unwrap();
        let candidates = instants(day, &time[..5]);
        // The earlier instant unless it would not follow the last good bar.
        let at = candidates
            .iter()
            .copied()
            .find(|t| last.is_none_or(|l| *t > l));
        match at {
            Some(t) => {
                last = Some(t);
                let v: Ohlcv = (
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                    f[5].parse().unwrap(),
                );
                good.push((day.to_owned(), t, v));
            }
            None => rejected += 1,
        }
    }
    if rows_in == 0 || f64::from(rejected) / f64::from(rows_in) > threshold {
        return; // quarantined (or empty): nothing written
    }
    loaded.insert(text.to_owned());
    let first_day = good.iter().map(|g| g.0.as_str()).min().unwrap();
    let last_day = good.iter().map(|g| g.0.as_str()).max().unwrap();
    let (from, to) = (day_start(first_day), day_start(&next_day(last_day)));
    table.retain(|t, _| *t < from || *t >= to);
    for (_, t, v) in good {
        table.insert(t, v);
    }
}

#[test]
fn random_delivery_sequences_end_as_the_model_says() {
    model_test("replace_model", StorageLayout::Rows, 64);
}

#[test]
fn random_delivery_sequences_end_as_the_model_says_in_day_cells() {
    model_test("replace_model_d", StorageLayout::Days, 64);
}

#[test]
fn random_delivery_sequences_end_as_the_model_says_in_rows_and_cells() {
    model_test("replace_model_b", StorageLayout::Both, 64);
}

/// What `layout` stores of `symbol`, per table it writes (rows first).
fn stored_tables(
    rt: &tokio::runtime::Runtime,
    session: &scylla::client::session::Session,
    schema: &bar_ingest::store::Schema,
    layout: StorageLayout,
    symbol: &str,
) -> Vec<Table> {
    let mut tables = Vec::new();
    let of = |bars: Vec<common::Stored>| -> Table {
        bars.into_iter()
            .filter(|r| r.0 == symbol)
            .map(|(_, t, o, h, l, c, v)| (t, (o, h, l, c, v)))
            .collect()
    };
    if layout.writes_rows() {
        tables.push(of(rt.block_on(common::row_bars(session, schema))));
    }
    if layout.writes_days() {
        tables.push(of(rt.block_on(common::cell_bars(session, schema))));
    }
    tables
}

/// Runs `cases` random sequences against a keyspace of `layout`.
fn model_test(name: &str, layout: StorageLayout, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (session, schema, mut settings) = rt.block_on(common::fresh_schema(name));
    settings.layout = Some(layout);
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let loader = rt.block_on(common::loader(&settings, &dir.path().join("dead-letter")));
    let threshold = settings.ingest.reject_threshold;

    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    let case = std::sync::atomic::AtomicU32::new(0);
    let strategy = proptest::collection::vec(delivery(), 2..=5);
    let result = runner.run(&strategy, |deliveries| {
        let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let symbol = format!("M{n}");
        let (mut model, mut loaded) = (Table::new(), BTreeSet::new());
        for (version, lines) in deliveries.iter().enumerate() {
            let body = text(lines, version, n);
            let file = dir
                .path()
                .join(format!("{symbol}_v{version}"))
                .join(format!("{symbol}_full_1min_adjsplit.txt"));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, &body).unwrap();
            let result = rt
                .block_on(loader.load(&file, LoadOptions::default(), &cancel, None))
                .into_single()
                .expect("a plain file is one unit");
            if let FileResult::Failed(_, e) = &result {
                return Err(TestCaseError::fail(format!("load failed: {}", e.chain())));
            }
            apply(&mut model, &mut loaded, &body, threshold);
        }
        for stored in stored_tables(&rt, &session, &schema, layout, &symbol) {
            prop_assert_eq!(stored, model.clone(), "deliveries: {:#?}", deliveries);
        }
        Ok(())
    });
    eprintln!(
        "layout {}: {cases} cases of 2-5 deliveries in {:.1} s",
        layout.name(),
        started.elapsed().as_secs_f64()
    );
    rt.block_on(common::drop_keyspace(&session, &schema));
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The model itself, on the issue-12 reproduction: old rows in the covered range go.
#[test]
fn the_model_replaces_the_whole_covered_range() {
    let mut table = Table::new();
    let mut loaded = BTreeSet::new();
    let v1 = "2021-01-28 09:30:00,1,2,0.5,1,1\n2021-01-29 09:30:00,1,2,0.5,1,1\n\
              2021-02-01 09:30:00,1,2,0.5,1,1\n2021-03-01 09:30:00,1,2,0.5,1,1\n";
    let v2 = "2021-01-28 09:30:00,3,4,2.5,3,1\n2021-03-01 09:30:00,3,4,2.5,3,1\n";
    apply(&mut table, &mut loaded, v1, 0.5);
    apply(&mut table, &mut loaded, v2, 0.5);
    assert_eq!(table.len(), 2);
    assert!(table.values().all(|v| v.0 == 3.0));
    // 2021-01-28 09:30 EST is 14:30 UTC.
    assert!(table.contains_key(&1_611_844_200_000));
}
