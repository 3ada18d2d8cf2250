//! The read path from day cells against the real node: the same generated bars written to the
//! bars table and to the day-cell table read back identically (bit for bit) by `fetch` for many
//! ranges (ends mid-day, across months, DST changes, empty days, half days), sessions,
//! intervals and outputs; and a damaged cell is an error naming its symbol and day.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use arrow_array::RecordBatch;
use bar_ingest::config::StorageLayout;
use bar_ingest::fetch::columnar::{BATCH_ROWS, Columns};
use bar_ingest::fetch::{FetchRequest, Fetcher, Interval, SessionFilter};
use bar_ingest::model::{Bar, Symbol};
use bar_ingest::store::{DayStatements, Schema};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Timelike, Utc};
use chrono_tz::America::New_York;
use futures_util::TryStreamExt;
use scylla::client::session::Session;

/// A New York wall time that exists once, as an instant.
fn ny(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> DateTime<Utc> {
    New_York
        .with_ymd_and_hms(y, m, d, hh, mm, 0)
        .single()
        .expect("a New York time that exists once")
        .with_timezone(&Utc)
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// A bar with awkward values: prices that are not short decimals on some bars, fractional
/// volumes on others.
fn bar_at(ms: i64, i: u64) -> Bar {
    let x = i as f64;
    let open = if i.is_multiple_of(13) {
        100.0 + x / 3.0
    } else {
        100.0 + (i % 997) as f64 * 0.01
    };
    Bar {
        ts_millis: ms,
        open,
        high: open + 0.37,
        low: open - 0.21 - 1e-9 * (i % 11) as f64,
        close: open + 0.05 * ((i % 5) as f64 - 2.0),
        volume: (1000 + (i * 37) % 997) as f64 + (i % 4) as f64 * 0.125,
    }
}

/// The bars of one generated day: every minute of 04:00–20:00 local, from midnight on `full`
/// days (the DST Sundays: 23 and 25 hours), none on `empty` days, a few on weekends.
fn day_bars(day: NaiveDate, first_i: u64) -> Vec<Bar> {
    let full = [date(2024, 3, 10), date(2024, 11, 3), date(2024, 3, 1)];
    let empty = [date(2024, 3, 6), date(2024, 11, 26)];
    if empty.contains(&day) {
        return Vec::new();
    }
    let midnight = |d: NaiveDate| ny(d.year(), d.month(), d.day(), 0, 0);
    let (start, end) = (midnight(day), midnight(day.succ_opt().unwrap()));
    let weekend = day.weekday().number_from_monday() >= 6;
    let mut out = Vec::new();
    let mut t = start;
    let mut i = first_i;
    while t < end {
        let local = t.with_timezone(&New_York);
        let minute = local.hour() * 60 + local.minute();
        let keep = if full.contains(&day) {
            // Every minute from midnight: 1,380 bars on the spring-forward Sunday, all 1,500
            // of the fall-back Sunday (its repeated hour included), 1,440 on a Friday.
            true
        } else if weekend {
            (600..606).contains(&minute)
        } else {
            (240..1200).contains(&minute)
        };
        if keep {
            out.push(bar_at(t.timestamp_millis(), i));
            i += 1;
        }
        t += TimeDelta::minutes(1);
    }
    out
}

/// Every bar of the days in the given spans (inclusive).
fn generate(spans: &[(NaiveDate, NaiveDate)], seed: u64) -> Vec<Bar> {
    let mut out = Vec::new();
    for &(from, to) in spans {
        let mut d = from;
        while d <= to {
            let i = seed + out.len() as u64;
            out.extend(day_bars(d, i));
            d = d.succ_opt().unwrap();
        }
    }
    out
}

/// The same bars of two symbols in both stores; returns fetchers of the rows and of the days.
async fn both_stores(session: &Arc<Session>, schema: &Schema) -> (Fetcher, Fetcher) {
    let main = generate(
        &[
            // Leap day, month end, spring forward (March 10), an empty day (March 6).
            (date(2024, 2, 26), date(2024, 3, 12)),
            // Fall back (November 3), an empty day, Thanksgiving, its half day, month end.
            (date(2024, 10, 30), date(2024, 12, 3)),
        ],
        0,
    );
    let other = generate(&[(date(2024, 3, 4), date(2024, 3, 8))], 7);
    for (name, bars) in [("DAYS", &main), ("OTHER", &other)] {
        let symbol = Symbol::new(name).unwrap();
        common::insert_bar_rows(session, schema, New_York, &symbol, bars).await;
        common::insert_day_cells(session, schema, New_York, &symbol, bars, 1_000).await;
    }
    let fetcher = |layout| Fetcher::prepare_layout(Arc::clone(session), schema, New_York, layout);
    (
        fetcher(StorageLayout::Rows).await.unwrap(),
        fetcher(StorageLayout::Days).await.unwrap(),
    )
}

/// A bar as the bits of its fields (bit-exact comparison).
fn bits(symbol: &str, b: &Bar) -> (String, i64, [u64; 5]) {
    (
        symbol.to_owned(),
        b.ts_millis,
        [b.open, b.high, b.low, b.close, b.volume].map(f64::to_bits),
    )
}

async fn chunks(fetcher: &Fetcher, request: FetchRequest) -> Vec<(String, i64, [u64; 5])> {
    let chunks: Vec<_> = fetcher
        .fetch_chunks(request)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks
        .iter()
        .flat_map(|c| c.bars.iter().map(|b| bits(c.symbol.as_str(), b)))
        .collect()
}

async fn batches(
    fetcher: &Fetcher,
    request: FetchRequest,
    columns: Columns,
) -> Option<RecordBatch> {
    let batches: Vec<RecordBatch> = fetcher
        .record_batches(request, columns, BATCH_ROWS)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    if batches.is_empty() {
        return None;
    }
    Some(arrow_select::concat::concat_batches(&columns.schema(), &batches).unwrap())
}

/// The ranges compared: whole spans, ends mid-day and mid-minute, across months and DST
/// changes, one minute, an empty day, a fall-back hour, Thanksgiving and its half day.
fn ranges() -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let fall_back_first = Utc.with_ymd_and_hms(2024, 11, 3, 5, 30, 0).unwrap();
    vec![
        (ny(2024, 2, 1, 0, 0), ny(2024, 12, 31, 0, 0)),
        (ny(2024, 2, 29, 13, 7), ny(2024, 3, 1, 9, 45)),
        (
            ny(2024, 3, 8, 10, 17) + TimeDelta::seconds(30),
            ny(2024, 3, 11, 15, 3),
        ),
        (ny(2024, 3, 5, 9, 30), ny(2024, 3, 5, 9, 30)),
        (ny(2024, 3, 6, 0, 0), ny(2024, 3, 6, 23, 59)),
        (
            fall_back_first,
            fall_back_first + TimeDelta::hours(1) + TimeDelta::minutes(5),
        ),
        (ny(2024, 11, 27, 12, 0), ny(2024, 12, 2, 10, 0)),
        (ny(2024, 11, 30, 23, 0), ny(2024, 12, 1, 0, 30)),
        (
            ny(2024, 3, 9, 12, 0) + TimeDelta::microseconds(1),
            ny(2024, 3, 10, 12, 0),
        ),
    ]
}

#[tokio::test]
async fn day_cells_read_back_exactly_as_the_rows() {
    let (session, schema, _settings) = common::fresh_schema("fetch_days").await;
    let session = Arc::new(session);
    let (rows, days) = both_stores(&session, &schema).await;
    let symbols = vec![Symbol::new("OTHER").unwrap(), Symbol::new("DAYS").unwrap()];
    let sessions = [
        SessionFilter::All,
        SessionFilter::Regular,
        SessionFilter::Extended,
    ];
    let intervals = [
        Interval::Minute1,
        Interval::Minutes5,
        Interval::Hour1,
        Interval::Day1,
    ];
    let mut compared = 0;
    let mut nonempty = 0;
    for (from, to) in ranges() {
        for session_filter in sessions {
            for interval in intervals {
                if interval == Interval::Day1 && session_filter == SessionFilter::Extended {
                    continue;
                }
                let mut request = FetchRequest::symbols(symbols.clone(), from, to);
                request.session = session_filter;
                request.interval = interval;
                request.concurrency = 3;
                let what = format!("{from}..{to} {session_filter:?} {interval:?}");
                let want = chunks(&rows, request.clone()).await;
                assert_eq!(chunks(&days, request.clone()).await, want, "bars: {what}");
                for columns in [
                    Columns {
                        zone: None,
                        symbol: true,
                    },
                    Columns {
                        zone: Some(New_York),
                        symbol: false,
                    },
                ] {
                    let a = batches(&rows, request.clone(), columns).await;
                    let b = batches(&days, request.clone(), columns).await;
                    assert_eq!(a, b, "batches {columns:?}: {what}");
                }
                compared += 1;
                nonempty += usize::from(!want.is_empty());
            }
        }
    }
    assert!(nonempty >= compared / 2, "{nonempty} of {compared}");
    common::drop_keyspace(&session, &schema).await;
}

fn run_fetch(config: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .env("BAR_INGEST_CONTACT_POINTS", common::contact_points())
        .env_remove("BAR_INGEST_CONFIG")
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(config)
        .arg("fetch")
        .args(args)
        .output()
        .expect("run bar-ingest");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn config(dir: &Path, keyspace: &str, layout: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{layout}.toml"));
    std::fs::write(
        &path,
        format!(
            "[database]\nkeyspace = \"{keyspace}\"\nconsistency = \"ONE\"\n\
             [storage]\nlayout = \"{layout}\"\n"
        ),
    )
    .unwrap();
    path
}

/// The batches of an Arrow IPC stream or a Parquet file, as one.
fn read_back(bytes: Vec<u8>, parquet: bool) -> RecordBatch {
    let bytes = bytes::Bytes::from(bytes);
    let batches: Vec<RecordBatch> = if parquet {
        parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes, 1 << 20)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    } else {
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    arrow_select::concat::concat_batches(&batches[0].schema(), &batches).unwrap()
}

#[tokio::test]
async fn the_fetch_command_prints_the_same_from_both_layouts() {
    let (session, schema, settings) = common::fresh_schema("fetch_days_cli").await;
    let session = Arc::new(session);
    both_stores(&session, &schema).await;
    let dir = tempfile::tempdir().unwrap();
    let keyspace = &settings.database.keyspace;
    let (rows, days) = (
        config(dir.path(), keyspace, "rows"),
        config(dir.path(), keyspace, "days"),
    );
    let both = config(dir.path(), keyspace, "both");
    let base = [
        "DAYS",
        "OTHER",
        "--from",
        "2024-03-01 10:03",
        "--to",
        "2024-11-29 12:30",
    ];
    for extra in [
        &["--format", "csv"][..],
        &["--format", "jsonl", "--session", "regular", "--utc"],
        &[
            "--format",
            "csv",
            "--interval",
            "15m",
            "--session",
            "extended",
        ],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let want = run_fetch(&rows, &args);
        assert!(want.len() > 10_000, "{args:?}");
        assert_eq!(run_fetch(&days, &args), want, "{args:?}");
        assert_eq!(run_fetch(&both, &args), want, "{args:?}");
    }
    for (format, parquet) in [("arrow", false), ("parquet", true)] {
        let args: Vec<&str> = base.iter().copied().chain(["--format", format]).collect();
        let want = read_back(run_fetch(&rows, &args), parquet);
        assert!(want.num_rows() > 10_000);
        assert_eq!(
            read_back(run_fetch(&days, &args), parquet),
            want,
            "{format}"
        );
    }
    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test]
async fn a_damaged_cell_or_an_unknown_version_is_an_error_naming_symbol_and_day() {
    let (session, schema, _settings) = common::fresh_schema("fetch_days_bad").await;
    let session = Arc::new(session);
    let symbol = Symbol::new("BAD").unwrap();
    let bars = generate(&[(date(2024, 5, 6), date(2024, 5, 8))], 0);
    common::insert_day_cells(&session, &schema, New_York, &symbol, &bars, 1_000).await;
    let days =
        Fetcher::prepare_layout(Arc::clone(&session), &schema, New_York, StorageLayout::Days)
            .await
            .unwrap();
    let request = FetchRequest::new(symbol.clone(), ny(2024, 5, 1, 0, 0), ny(2024, 5, 31, 0, 0));
    let good = chunks(&days, request.clone()).await;
    assert_eq!(good.len(), bars.len());

    let statements = DayStatements::prepare(&session, &schema).await.unwrap();
    let day = date(2024, 5, 7);
    let write = |cell: Vec<u8>, version: i32| {
        let statements = statements.clone();
        let session = Arc::clone(&session);
        let symbol = symbol.clone();
        async move {
            let header = bar_ingest::cell::CellHeader {
                version: 1,
                bars: 960,
                first_millis: ny(2024, 5, 7, 4, 0).timestamp_millis(),
                last_millis: ny(2024, 5, 7, 19, 59).timestamp_millis(),
            };
            let mut values =
                DayStatements::insert_values(&symbol, "2024-05", day, &header, &cell, 2_000);
            values.3 = version;
            session
                .execute_unpaged(&statements.insert, values)
                .await
                .unwrap();
        }
    };
    let fails = |needle: &'static str| {
        let days = days.clone();
        let request = request.clone();
        async move {
            let err = days
                .fetch_chunks(request)
                .unwrap()
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains("BAD") && err.contains("2024-05-07"), "{err}");
            assert!(err.contains(needle), "{needle}: {err}");
        }
    };
    // A cell cut short.
    write(vec![1, 0, 0xc0, 3, 1, 2, 3], 1).await;
    fails("truncated").await;
    // A cell of a later format version (header and row both say 2).
    let mut later =
        bar_ingest::cell::encode(bar_ingest::cell::DayColumns::default().view()).unwrap();
    later[0] = 2;
    write(later, 2).await;
    fails("version 2").await;
    common::drop_keyspace(&session, &schema).await;
}
