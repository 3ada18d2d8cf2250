//! Real deliveries as vendors ship them, through the daemon and `bar-ingest load` against the
//! real node: a FirstRate download of every interval stores exactly its one-minute file and
//! quarantines the others `not_one_minute`; coarser bars known by their spacing (an Alpaca
//! 5-minute CSV), their records (Databento rtype 35) or their dataset (Polygon `day_aggs`, by
//! name or by one bar per ticker at midnight) are refused alike; only the adjustment variant the
//! store holds loads; a newest-first file stores the bars of its time-ordered twin; a DBN binary
//! gets one clear reason; index files without a volume load with volume 0.

mod common;

use std::path::Path;
use std::time::Duration;

use bar_gen::GenSpec;
use bar_gen::download::{GenInterval, Order, interval_bars, write_download};
use bar_ingest::account::history::{HistoryRecord, Outcome};
use chrono::TimeZone;
use common::{Site, Stored, all_bars, expected_bars, history};

const WAIT: Duration = Duration::from_secs(120);
const NY: chrono_tz::Tz = chrono_tz::America::New_York;

/// A trading week (Thursday 7 to Wednesday 13 March 2024, over the spring-forward).
fn spec(symbols: &[&str], seed: u64) -> GenSpec {
    GenSpec {
        symbols: symbols.iter().map(|s| s.to_string()).collect(),
        start: chrono::NaiveDate::from_ymd_opt(2024, 3, 7).unwrap(),
        end: chrono::NaiveDate::from_ymd_opt(2024, 3, 13).unwrap(),
        seed,
    }
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The history row of the file named `name`.
fn row<'a>(records: &'a [HistoryRecord], name: &str) -> &'a HistoryRecord {
    records
        .iter()
        .find(|r| r.file_name == name)
        .unwrap_or_else(|| panic!("no history row for {name}: {records:?}"))
}

/// Asserts the file `name` was quarantined with the reason `code` and a message holding each
/// of `needles`.
fn assert_quarantined(records: &[HistoryRecord], name: &str, code: &str, needles: &[&str]) {
    let r = row(records, name);
    assert_eq!(r.outcome, Outcome::Quarantined, "{name}: {r:?}");
    assert_eq!(r.rows_written, 0, "{name}");
    let error = r.error.as_deref().unwrap_or_default();
    assert!(error.starts_with(&format!("{code}: ")), "{name}: {error}");
    for needle in needles {
        assert!(error.contains(needle), "{name}: {needle:?} in {error}");
    }
}

/// The bars of `text` (FirstRate lines) under `symbol`, as the store should hold them.
fn bars_of(symbol: &str, path: &Path) -> Vec<Stored> {
    expected_bars(symbol, &std::fs::read_to_string(path).unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_firstrate_download_in_the_inbox_stores_exactly_its_minute_file() {
    let (session, schema, _) = common::fresh_schema("download").await;
    let site = Site::new(&schema.keyspace);
    let spec = spec(&["DLD"], 11);
    let all: Vec<GenInterval> = GenInterval::ALL.iter().map(|(i, _)| *i).collect();
    // The reference copy, read independently of the loader.
    let reference = write_download(
        &spec,
        &all[..1],
        Order::OldestFirst,
        &site.dir.path().join("ref"),
    )
    .unwrap();
    let expected = bars_of("DLD", &reference[0].0);
    assert!(expected.len() > 2000, "{} bars", expected.len());

    let config = site.config("d", "");
    let mut daemon = site.spawn_daemon(&config);
    let written = write_download(&spec, &all, Order::OldestFirst, &site.inbox()).unwrap();
    assert_eq!(written.len(), 5);
    common::wait_until(WAIT, "1 file in done/ and 4 in failed/", || {
        let failed = site
            .files_in("failed")
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "txt"))
            .count();
        site.files_in("done").len() == 1 && failed == 4
    });
    let status = common::terminate(&mut daemon);
    assert!(status.success(), "{}", site.log("d"));

    assert_eq!(
        all_bars(&session, &schema).await,
        expected,
        "the minute series, exactly"
    );
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 5, "{records:?}");
    assert_eq!(
        row(&records, "DLD_full_1min_adjsplit.txt").outcome,
        Outcome::Loaded
    );
    for interval in ["5min", "30min", "1hour", "1day"] {
        let name = format!("DLD_full_{interval}_adjsplit.txt");
        assert_quarantined(
            &records,
            &name,
            "not_one_minute",
            &[&format!("({interval}, by its name: `{interval}`)")],
        );
    }
    // Each refused file's sidecar names the reason.
    let sidecars: Vec<serde_json::Value> = site
        .files_in("failed")
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".error.json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(sidecars.len(), 4);
    assert!(
        sidecars.iter().all(|s| s["reason"] == "not_one_minute"),
        "{sidecars:?}"
    );
    common::drop_keyspace(&session, &schema).await;
}

/// `bars` as CSV lines `YYYY-MM-DD HH:MM:SS,o,h,l,c,v` after `header`.
fn csv_of(header: &str, bars: &[bar_gen::GenBar]) -> String {
    let mut out = format!("{header}\n").into_bytes();
    for bar in bars {
        bar_gen::format_bar(&mut out, bar);
    }
    String::from_utf8(out).unwrap()
}

/// Local midnight of 7 March 2024 in New York, in nanoseconds.
fn midnight_ns() -> i64 {
    NY.with_ymd_and_hms(2024, 3, 7, 0, 0, 0)
        .unwrap()
        .timestamp_millis()
        * 1_000_000
}

/// A Polygon day-aggregates file: one bar per ticker at local midnight.
fn polygon_day(tickers: &[&str]) -> String {
    let mut out = format!("{}\n", bar_ingest::source::polygon::HEADER);
    for (i, t) in tickers.iter().enumerate() {
        out.push_str(&format!(
            "{t},{},10,10.5,11,9.5,{},{}\n",
            1000 + i,
            midnight_ns(),
            7
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn coarser_bars_known_by_spacing_records_or_dataset_and_binaries_are_refused() {
    let (session, schema, _) = common::fresh_schema("refused").await;
    let site = Site::new(&schema.keyspace);
    let dir = site.dir.path().join("in");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = spec(&["ALPC"], 5);
    // An Alpaca export of 5-minute bars: its name states no interval.
    let fives = interval_bars(&spec, "ALPC", GenInterval::FiveMinutes);
    let alpaca = csv_of("timestamp,open,high,low,close,volume", &fives);
    std::fs::write(dir.join("ALPC.csv"), &alpaca).unwrap();
    // Databento daily bars (rtype 35).
    let mut databento = format!("{}\n", bar_ingest::source::databento::HEADER);
    for day in 0..3 {
        let ns = midnight_ns() + day * 86_400_000_000_000;
        databento.push_str(&format!(
            "{ns},35,1,100,10000000000,11000000000,9000000000,10500000000,1000,DBX\n"
        ));
    }
    std::fs::write(dir.join("xnas-20240307.ohlcv.csv"), &databento).unwrap();
    // Polygon day aggregates: by the dataset in the name (three tickers), and by content (six
    // tickers, one bar each at local midnight, under a plain date name).
    std::fs::write(
        dir.join("us_stocks_sip_day_aggs_v1_2024-03-07.csv"),
        polygon_day(&["AAA", "BBB", "CCC"]),
    )
    .unwrap();
    std::fs::write(
        dir.join("2024-03-07.csv"),
        polygon_day(&["DDD", "EEE", "FFF", "GGG", "HHH", "III"]),
    )
    .unwrap();
    // A Databento DBN binary.
    let mut dbn = b"DBN\x02".to_vec();
    dbn.extend((0..4096u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(dir.join("glbx-mdp3-20240307.ohlcv-1m.dbn"), &dbn).unwrap();

    let (code, stderr) = common::run_load(&site.config("load", ""), &[arg(&dir)]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("5 quarantined"), "{stderr}");
    assert!(
        !stderr.contains("rows rejected"),
        "one reason each: {stderr}"
    );
    assert!(
        all_bars(&session, &schema).await.is_empty(),
        "nothing written"
    );
    let records = history(&session, &schema).await;
    assert_eq!(records.len(), 5, "{records:?}");
    assert_quarantined(
        &records,
        "ALPC.csv",
        "not_one_minute",
        &["(5min, by the spacing of its times", "on one 5-minute grid"],
    );
    assert_quarantined(
        &records,
        "xnas-20240307.ohlcv.csv",
        "not_one_minute",
        &["rtype 35 (ohlcv-1d)", "by its records: line 2"],
    );
    assert_quarantined(
        &records,
        "us_stocks_sip_day_aggs_v1_2024-03-07.csv",
        "not_one_minute",
        &["(1day, by its name: `day_aggs`)"],
    );
    assert_quarantined(
        &records,
        "2024-03-07.csv",
        "not_one_minute",
        &["(1day, by the spacing of its times: all 6 bars at 00:00 exchange-local)"],
    );
    assert_quarantined(
        &records,
        "glbx-mdp3-20240307.ohlcv-1m.dbn",
        "binary_unit",
        &["a Databento DBN file (version 2)", "export it as CSV"],
    );
    common::drop_keyspace(&session, &schema).await;
}

/// The FirstRate lines of `path` without their volume field (an index file).
fn without_volume(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| format!("{}\n", l.rsplit_once(',').unwrap().0))
        .collect()
}

/// FirstRate lines (`YYYY-MM-DD HH:MM:SS,...`) as Kibot writes them (`MM/DD/YYYY,HH:MM,...`).
fn kibot_lines(firstrate: &str) -> String {
    firstrate
        .lines()
        .map(|l| {
            let (stamp, values) = l.split_once(',').unwrap();
            let (date, clock) = stamp.split_once(' ').unwrap();
            let [y, m, d]: [&str; 3] = date.split('-').collect::<Vec<_>>().try_into().unwrap();
            format!("{m}/{d}/{y},{},{values}\n", &clock[..5])
        })
        .collect()
}

/// `bars` as a Databento export without a volume column (UTC nanoseconds, pretty prices).
fn databento_without_volume(bars: &[Stored]) -> String {
    let mut text =
        String::from("ts_event,rtype,publisher_id,instrument_id,open,high,low,close,symbol\n");
    for (symbol, ms, open, high, low, close, _) in bars {
        let ns = i128::from(*ms) * 1_000_000;
        // `{:?}` keeps a decimal point: a bare integer is a fixed-point price.
        text.push_str(&format!(
            "{ns},33,1,7,{open:?},{high:?},{low:?},{close:?},{symbol}\n"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread")]
async fn adjustment_variants_newest_first_files_and_index_files_load_as_they_should() {
    let (session, schema, _) = common::fresh_schema("variants").await;
    let site = Site::new(&schema.keyspace);
    let dir = site.dir.path().join("in");
    let scratch = site.dir.path().join("scratch");
    std::fs::create_dir_all(&dir).unwrap();
    // Three variants of one ticker, each different content.
    for (seed, variant) in [(1, "adjsplit"), (2, "adjsplitdiv"), (3, "UNADJUSTED")] {
        let made = bar_gen::write_all(&spec(&["ADJ"], seed), &scratch.join(variant)).unwrap();
        std::fs::copy(&made[0].0, dir.join(format!("ADJ_full_1min_{variant}.txt"))).unwrap();
    }
    // A newest-first file, and its time-ordered twin kept aside.
    let newest = write_download(
        &spec(&["NEWF"], 4),
        &[GenInterval::OneMinute],
        Order::NewestFirst,
        &dir,
    )
    .unwrap();
    let twin = write_download(
        &spec(&["NEWF"], 4),
        &[GenInterval::OneMinute],
        Order::OldestFirst,
        &scratch.join("twin"),
    )
    .unwrap();
    assert_ne!(
        std::fs::read(&newest[0].0).unwrap(),
        std::fs::read(&twin[0].0).unwrap()
    );
    // Index files without a volume: FirstRate lines of five fields, a CSV header without a
    // volume column, Kibot lines of six fields, a Databento header without `volume`.
    let index = bar_gen::write_all(
        &spec(&["SPX", "NDX", "KIX", "DBX"], 6),
        &scratch.join("index"),
    )
    .unwrap();
    std::fs::write(dir.join("SPX_full_1min.txt"), without_volume(&index[0].0)).unwrap();
    let ndx = format!(
        "timestamp,open,high,low,close\n{}",
        without_volume(&index[1].0)
    );
    std::fs::write(dir.join("NDX.csv"), ndx).unwrap();
    std::fs::write(
        dir.join("KIX.txt"),
        kibot_lines(&without_volume(&index[2].0)),
    )
    .unwrap();
    let dbx = bars_of("DBX", &index[3].0);
    std::fs::write(dir.join("DBX.ohlcv-1m.csv"), databento_without_volume(&dbx)).unwrap();

    let (code, stderr) = common::run_load(&site.config("load", ""), &[arg(&dir)]);
    assert_eq!(code, 1, "two variants quarantined: {stderr}");
    assert!(
        stderr.contains("6 loaded") && stderr.contains("2 quarantined"),
        "{stderr}"
    );
    let records = history(&session, &schema).await;
    for variant in ["adjsplitdiv", "UNADJUSTED"] {
        assert_quarantined(
            &records,
            &format!("ADJ_full_1min_{variant}.txt"),
            "other_adjustment",
            &[
                &format!("its name says `{variant}`"),
                "the store holds `adjsplit`",
            ],
        );
    }
    let zero_volume = |bars: Vec<Stored>| -> Vec<Stored> {
        bars.into_iter()
            .map(|b| (b.0, b.1, b.2, b.3, b.4, b.5, 0.0))
            .collect()
    };
    let mut expected = bars_of("ADJ", &dir.join("ADJ_full_1min_adjsplit.txt"));
    expected.extend(bars_of("NEWF", &twin[0].0));
    expected.extend(zero_volume(bars_of("SPX", &index[0].0)));
    expected.extend(zero_volume(bars_of("NDX", &index[1].0)));
    expected.extend(zero_volume(bars_of("KIX", &index[2].0)));
    expected.extend(zero_volume(dbx));
    common::sort_bars(&mut expected);
    let stored = all_bars(&session, &schema).await;
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "the stored bars are the files' bars");
    common::assert_reconciles(&records);
    for name in [
        "NEWF_full_1min_adjsplit.txt",
        "SPX_full_1min.txt",
        "NDX.csv",
        "KIX.txt",
        "DBX.ohlcv-1m.csv",
    ] {
        let r = row(&records, name);
        assert_eq!(
            (r.outcome, r.rows_rejected),
            (Outcome::Loaded, 0),
            "{name}: {r:?}"
        );
    }

    // With `input.adjustment = "unadjusted"`, the unadjusted variant loads and the split one is
    // refused.
    let config = site.config("unadj", "[input]\nadjustment = \"unadjusted\"\n");
    let again = site.dir.path().join("again");
    std::fs::create_dir_all(&again).unwrap();
    for variant in ["adjsplit", "UNADJUSTED"] {
        let from = scratch.join(variant).join("ADJ_full_1min_adjsplit.txt");
        std::fs::copy(from, again.join(format!("UNA_full_1min_{variant}.txt"))).unwrap();
    }
    let (code, stderr) = common::run_load(&config, &[arg(&again)]);
    assert_eq!(code, 1, "{stderr}");
    let records = history(&session, &schema).await;
    assert_eq!(
        row(&records, "UNA_full_1min_UNADJUSTED.txt").outcome,
        Outcome::Loaded
    );
    assert_quarantined(
        &records,
        "UNA_full_1min_adjsplit.txt",
        "other_adjustment",
        &["the store holds `UNADJUSTED` (unadjusted, input.adjustment = \"unadjusted\")"],
    );
    common::drop_keyspace(&session, &schema).await;
}
