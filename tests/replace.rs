//! Replace, not merge (issue 12): a re-delivery replaces its symbol's rows on every local day
//! from its first bar's day to its last bar's day — across month edges and whole months it has
//! no row in — and nothing outside that range.

mod common;

use bar_ingest::config::Settings;
use bar_ingest::store::Schema;
use common::{Site, Stored, expected_bars, run_load, unique_keyspace};

/// Loads `versions` of `symbol` in order with `bar-ingest load`, each from its own folder;
/// returns every stored bar.
async fn load_in_order(name: &str, symbol: &str, versions: &[String]) -> Vec<Stored> {
    let site = Site::new(&unique_keyspace(name));
    let config = site.config("a", "");
    for (i, text) in versions.iter().enumerate() {
        let dir = site.dir.path().join(format!("v{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{symbol}_full_1min_adjsplit.txt"));
        std::fs::write(&file, text).unwrap();
        let (code, err) = run_load(&config, &[file.to_str().unwrap()]);
        assert_eq!(code, 0, "load of version {i} failed:\n{err}");
    }
    let settings = Settings::load(&config, None).unwrap();
    let schema = Schema::from_config(&settings.database);
    let session = common::connect(&settings).await;
    let stored = common::all_bars(&session, &schema).await;
    common::drop_keyspace(&session, &schema).await;
    stored
}

/// The rows of `text` whose New York date is not in `days`.
fn outside(symbol: &str, text: &str, days: &[&str]) -> Vec<Stored> {
    let keep: String = text
        .lines()
        .filter(|l| !days.iter().any(|d| l.starts_with(d)))
        .map(|l| format!("{l}\n"))
        .collect();
    expected_bars(symbol, &keep)
}

fn sorted(mut v: Vec<Stored>) -> Vec<Stored> {
    common::sort_bars(&mut v);
    v
}

/// The reproduction from issue 12: a day dropped at a month's end (01-29), one at a month's start
/// (02-01, also a whole month missing) and the months between all lose the old rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_dropped_at_month_edges_and_a_whole_missing_month_are_replaced() {
    let v1 = common::bars_at_open(
        &["2021-01-28", "2021-01-29", "2021-02-01", "2021-03-01"],
        5,
        1,
    );
    let v2 = common::bars_at_open(&["2021-01-28", "2021-03-01"], 5, 2);
    let stored = load_in_order("repl_edges", "REPL", &[v1, v2.clone()]).await;
    assert_eq!(stored, expected_bars("REPL", &v2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_dropped_at_a_month_start_is_replaced() {
    let v1 = common::bars_at_open(
        &["2021-04-29", "2021-04-30", "2021-05-03", "2021-05-04"],
        5,
        1,
    );
    let v2 = common::bars_at_open(&["2021-04-29", "2021-05-04"], 5, 2);
    let stored = load_in_order("repl_start", "MSTA", &[v1, v2.clone()]).await;
    assert_eq!(stored, expected_bars("MSTA", &v2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shorter_redelivery_replaces_only_its_own_range() {
    let all_days = [
        "2021-06-28",
        "2021-06-29",
        "2021-06-30",
        "2021-07-01",
        "2021-07-02",
    ];
    let v1 = common::bars_at_open(&all_days, 5, 1);
    let short = ["2021-06-30", "2021-07-01"];
    let v2 = common::bars_at_open(&short, 5, 2);
    let stored = load_in_order("repl_short", "SHRT", &[v1.clone(), v2.clone()]).await;
    let mut expected = outside("SHRT", &v1, &short);
    expected.extend(expected_bars("SHRT", &v2));
    assert_eq!(stored, sorted(expected));
}
