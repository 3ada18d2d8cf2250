//! The day store's write path (issue 20) against the real node: vendor files (FirstRate files,
//! a Polygon day file of many tickers, a zip of several members) load into day cells bar for
//! bar with layouts `days` and `both`; a re-delivery covering fewer days replaces exactly its
//! covered days (a covered day without bars keeps no cell); `both` leaves rows and cells equal;
//! the load history counts bars written into cells.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bar_gen::GenSpec;
use bar_gen::layouts::{OutLayout, utc_millis, write_layout};
use bar_gen::pack::{Pack, pack};
use bar_ingest::config::StorageLayout;
use bar_ingest::ingest::{FileResult, LoadOptions, Loader};
use chrono::NaiveDate;
use common::Stored;
use tokio_util::sync::CancellationToken;

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// Symbols over Wednesday 2024-01-31 to Friday 2024-02-02 (a month edge inside).
fn spec(symbols: &[&str]) -> GenSpec {
    GenSpec {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        start: date("2024-01-31"),
        end: date("2024-02-02"),
        seed: 20,
    }
}

/// The bars bar-gen generates for `spec`, as the tests compare them (prices and volumes as the
/// files print them, which parsing yields exactly).
fn generated(spec: &GenSpec) -> Vec<Stored> {
    let mut out = Vec::new();
    for symbol in &spec.symbols {
        for b in bar_gen::SymbolBars::new(spec, symbol) {
            let price = bar_gen::ticks_to_price;
            out.push((
                symbol.clone(),
                utc_millis(&b),
                price(b.open),
                price(b.high),
                price(b.low),
                price(b.close),
                b.volume as f64,
            ));
        }
    }
    common::sort_bars(&mut out);
    out
}

/// A fresh keyspace with `layout` configured (None: the default) and a loader on it.
async fn setup(
    name: &str,
    layout: Option<StorageLayout>,
) -> (
    scylla::client::session::Session,
    bar_ingest::store::Schema,
    Arc<Loader>,
    tempfile::TempDir,
) {
    let (session, schema, mut settings) = common::fresh_schema(name).await;
    settings.layout = layout;
    let dir = tempfile::tempdir().unwrap();
    let loader = common::loader(&settings, dir.path()).await;
    (session, schema, loader, dir)
}

/// Loads `path` (each unit must load) and returns the bars written per unit.
async fn load(loader: &Arc<Loader>, path: &Path) -> Vec<u64> {
    let result = loader
        .load(
            path,
            LoadOptions::default(),
            &CancellationToken::new(),
            None,
        )
        .await;
    result
        .units
        .into_iter()
        .map(|u| match u {
            FileResult::Loaded(s) => {
                assert_eq!(s.rows_in, s.rows_written + s.rows_rejected, "{s:?}");
                s.rows_written
            }
            other => panic!("{} did not load: {other:?}", path.display()),
        })
        .collect()
}

/// FirstRate files (one per symbol), a Polygon day file of many tickers and a zip of FirstRate
/// members, all into one keyspace of `layout`; returns what bar-gen generated for all of them.
async fn load_vendor_files(loader: &Arc<Loader>, scratch: &Path) -> Vec<Stored> {
    let firstrate = spec(&["FRA", "FRB"]);
    let polygon_symbols: Vec<String> = (0..40).map(|i| format!("P{i:03}")).collect();
    let polygon_refs: Vec<&str> = polygon_symbols.iter().map(String::as_str).collect();
    let polygon = spec(&polygon_refs);
    let zipped = spec(&["ZIA", "ZIB", "ZIC"]);
    for (path, _) in write_layout(&firstrate, OutLayout::FirstRate, &scratch.join("fr")).unwrap() {
        load(loader, &path).await;
    }
    let days: Vec<PathBuf> = write_layout(&polygon, OutLayout::Polygon, &scratch.join("pg"))
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(days.len(), 3, "one Polygon file per day");
    for path in &days {
        load(loader, path).await;
    }
    let members = write_layout(&zipped, OutLayout::FirstRate, &scratch.join("zm")).unwrap();
    let zip = pack(&members, Pack::Zip, &scratch.join("zm")).unwrap();
    let written = load(loader, &zip[0].0).await;
    assert_eq!(written.len(), 3, "one result per member");
    let mut all = generated(&firstrate);
    all.extend(generated(&polygon));
    all.extend(generated(&zipped));
    common::sort_bars(&mut all);
    all
}

/// The default layout of a new keyspace is `days`: nothing goes to the bars table, and the
/// cells hold every bar of every vendor file, bar for bar, one cell per symbol and day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_files_load_into_day_cells_bar_for_bar() {
    let (session, schema, loader, dir) = setup("cells_days", None).await;
    assert_eq!(loader.layout(), StorageLayout::Days);
    let expected = load_vendor_files(&loader, dir.path()).await;
    assert_eq!(common::cell_bars(&session, &schema).await, expected);
    assert!(common::row_bars(&session, &schema).await.is_empty());
    // 45 symbols x 3 days, one cell each.
    assert_eq!(common::all_cells(&session, &schema).await.len(), 45 * 3);
    let history = common::history(&session, &schema).await;
    common::assert_reconciles(&history);
    let written: i64 = history.iter().map(|h| h.rows_written).sum();
    assert_eq!(written, expected.len() as i64, "bars written into cells");
    common::drop_keyspace(&session, &schema).await;
}

/// `both` writes rows and cells, equal to each other and to the files; the bars written are
/// counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layout_both_leaves_rows_and_cells_equal() {
    let (session, schema, loader, dir) = setup("cells_both", Some(StorageLayout::Both)).await;
    let expected = load_vendor_files(&loader, dir.path()).await;
    assert_eq!(common::cell_bars(&session, &schema).await, expected);
    assert_eq!(common::row_bars(&session, &schema).await, expected);
    let history = common::history(&session, &schema).await;
    let written: i64 = history.iter().map(|h| h.rows_written).sum();
    assert_eq!(written, expected.len() as i64, "each bar counted once");
    common::drop_keyspace(&session, &schema).await;
}

/// A re-delivery covering 01-30 to 02-01 without bars on 01-31 replaces exactly those three
/// days: 01-31 keeps no cell, 01-29 and 02-02 keep the first delivery's.
async fn redelivery_replaces_its_covered_days(name: &str, layout: Option<StorageLayout>) {
    let (session, schema, loader, dir) = setup(name, layout).await;
    let all = [
        "2024-01-29",
        "2024-01-30",
        "2024-01-31",
        "2024-02-01",
        "2024-02-02",
    ];
    let v1 = common::bars_at_open(&all, 3, 1);
    let v2 = common::bars_at_open(&["2024-01-30", "2024-02-01"], 3, 2);
    for (i, text) in [&v1, &v2].into_iter().enumerate() {
        let sub = dir.path().join(format!("v{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let file = sub.join("REDL_full_1min_adjsplit.txt");
        std::fs::write(&file, text).unwrap();
        load(&loader, &file).await;
    }
    let kept = common::bars_at_open(&["2024-01-29", "2024-02-02"], 3, 1);
    let mut expected = common::expected_bars("REDL", &kept);
    expected.extend(common::expected_bars("REDL", &v2));
    common::sort_bars(&mut expected);
    assert_eq!(common::cell_bars(&session, &schema).await, expected);
    let days: Vec<NaiveDate> = common::all_cells(&session, &schema)
        .await
        .into_iter()
        .map(|c| c.2)
        .collect();
    let want: Vec<NaiveDate> = ["2024-01-29", "2024-01-30", "2024-02-01", "2024-02-02"]
        .map(date)
        .to_vec();
    assert_eq!(days, want, "the covered day without bars keeps no cell");
    if layout == Some(StorageLayout::Both) {
        assert_eq!(common::row_bars(&session, &schema).await, expected);
    }
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_of_fewer_days_replaces_exactly_its_covered_days_in_cells() {
    redelivery_replaces_its_covered_days("cells_redl", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_of_fewer_days_replaces_the_same_days_in_rows_and_cells_with_both() {
    redelivery_replaces_its_covered_days("cells_redlb", Some(StorageLayout::Both)).await;
}

/// Each cell is written at the delivery's write timestamp, the one the load history records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_carry_the_recorded_write_timestamp() {
    let (session, schema, loader, dir) = setup("cells_wts", None).await;
    let file = dir.path().join("WTS_full_1min_adjsplit.txt");
    std::fs::write(
        &file,
        common::bars_at_open(&["2024-03-04", "2024-03-05"], 3, 1),
    )
    .unwrap();
    load(&loader, &file).await;
    let recorded = common::history(&session, &schema).await[0].write_timestamp;
    let q = format!("SELECT WRITETIME(cell) FROM {}", schema.days());
    let rows = session
        .query_unpaged(q, ())
        .await
        .unwrap()
        .into_rows_result()
        .unwrap();
    let stamps: Vec<i64> = rows
        .rows::<(i64,)>()
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(stamps, vec![recorded, recorded]);
    common::drop_keyspace(&session, &schema).await;
}
