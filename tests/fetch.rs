//! The read side against the real node: round trip, month edges, the session filter on DST and
//! half days, resampling against a reference, and the `fetch` command's output and exit codes.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use bar_ingest::fetch::{self, FetchRequest, Interval, SessionFilter};
use bar_ingest::model::{Bar, Symbol};
use bar_ingest::store::{BarStatements, Schema};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::America::New_York;
use futures_util::TryStreamExt;
use scylla::client::session::Session;

/// An exchange-local (New York) wall time that exists, as a UTC instant.
fn ny(y: i32, m: u32, d: u32, hh: u32, mm: u32) -> DateTime<Utc> {
    New_York
        .with_ymd_and_hms(y, m, d, hh, mm, 0)
        .single()
        .expect("unambiguous local time")
        .with_timezone(&Utc)
}

fn local(ms: i64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .unwrap()
        .with_timezone(&New_York)
        .naive_local()
}

/// A deterministic bar with awkward doubles; `i` varies the values.
fn bar_at(ts: DateTime<Utc>, i: u32) -> Bar {
    let i64v = i64::from(i);
    let open = 100.0 + f64::from(i) * 0.01 + (0.1 + 0.2) * f64::from(i % 7) / 1000.0;
    Bar {
        ts_millis: ts.timestamp_millis(),
        open,
        high: open + 0.37 + f64::from(i % 3) * 0.1,
        low: open - 0.21 - 1e-9 * f64::from(i % 11),
        close: open + 0.05 * (f64::from(i % 5) - 2.0),
        // Whole and fractional volumes (quarters: their sums are exact in f64 too).
        volume: (1000 + (i64v * 37) % 997) as f64 + f64::from(i % 4) * 0.25,
    }
}

/// Every minute of `date` from `from` (inclusive) to `to` (exclusive), local `(h, m)` pairs.
fn minutes(date: (i32, u32, u32), from: (u32, u32), to: (u32, u32), first_i: u32) -> Vec<Bar> {
    let (y, m, d) = date;
    let start = ny(y, m, d, from.0, from.1);
    let end = ny(y, m, d, to.0, to.1);
    let mut out = Vec::new();
    let mut t = start;
    let mut i = first_i;
    while t < end {
        out.push(bar_at(t, i));
        t += chrono::TimeDelta::minutes(1);
        i += 1;
    }
    out
}

async fn insert(session: &Session, schema: &Schema, symbol: &Symbol, bars: &[Bar]) {
    let statements = BarStatements::prepare(session, schema).await.unwrap();
    for bar in bars {
        // The bucket is the exchange-local month, written out here rather than by the product.
        let bucket = local(bar.ts_millis).format("%Y-%m").to_string();
        session
            .execute_unpaged(
                &statements.insert,
                BarStatements::insert_values(symbol, &bucket, bar, statements.volume_column),
            )
            .await
            .unwrap();
    }
}

async fn fetch_all(session: &Arc<Session>, schema: &Schema, request: FetchRequest) -> Vec<Bar> {
    fetch::fetch_bars(Arc::clone(session), schema, New_York, request)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}

fn request(symbol: &Symbol, from: DateTime<Utc>, to: DateTime<Utc>) -> FetchRequest {
    FetchRequest::new(symbol.clone(), from, to)
}

#[tokio::test]
async fn every_bar_comes_back_identical_and_in_order_across_months() {
    let (session, schema, _settings) = common::fresh_schema("fetch_all").await;
    let session = Arc::new(session);
    let symbol = Symbol::new("BRK.B").unwrap();
    // Five months, a few bars a day on some days: 300 bars, inserted newest first.
    let mut bars = Vec::new();
    let mut i = 0;
    for (y, m) in [(2023, 11), (2023, 12), (2024, 1), (2024, 2), (2024, 3)] {
        for d in [1, 2, 15, 28] {
            for (h, mm) in [(4, 0), (9, 30), (9, 31), (12, 0), (15, 59), (16, 0)] {
                if let Some(t) = New_York.with_ymd_and_hms(y, m, d, h, mm, 0).single() {
                    bars.push(bar_at(t.with_timezone(&Utc), i));
                    i += 1;
                }
            }
        }
        // The month's last minute (local).
        let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
        let last_day = chrono::NaiveDate::from_ymd_opt(ny, nm, 1)
            .unwrap()
            .pred_opt()
            .unwrap();
        let t = New_York
            .from_local_datetime(&last_day.and_hms_opt(23, 59, 0).unwrap())
            .single()
            .unwrap();
        bars.push(bar_at(t.with_timezone(&Utc), i));
        i += 1;
    }
    bars.extend(minutes((2024, 2, 5), (9, 30), (10, 55), 1000));
    bars.sort_by_key(|b| b.ts_millis);
    let mut reversed = bars.clone();
    reversed.reverse();
    insert(&session, &schema, &symbol, &reversed).await;
    assert_eq!(bars.len(), 210);

    let all = request(&symbol, ny(2023, 11, 1, 0, 0), ny(2024, 3, 31, 23, 59));
    assert_eq!(fetch_all(&session, &schema, all.clone()).await, bars);
    let one_at_a_time = FetchRequest {
        concurrency: 1,
        ..all.clone()
    };
    assert_eq!(fetch_all(&session, &schema, one_at_a_time).await, bars);
    // A range well beyond the data returns the same; a range without data returns nothing.
    let wide = request(&symbol, ny(2020, 1, 1, 0, 0), ny(2026, 1, 1, 0, 0));
    assert_eq!(fetch_all(&session, &schema, wide).await, bars);
    let empty = request(&symbol, ny(2024, 4, 1, 0, 0), ny(2024, 6, 1, 0, 0));
    assert!(fetch_all(&session, &schema, empty).await.is_empty());
    let unknown = request(
        &Symbol::new("NOPE").unwrap(),
        ny(2023, 1, 1, 0, 0),
        ny(2025, 1, 1, 0, 0),
    );
    assert!(fetch_all(&session, &schema, unknown).await.is_empty());
    // A bad request is refused before any query.
    let backwards = request(&symbol, ny(2024, 2, 1, 0, 0), ny(2024, 1, 1, 0, 0));
    assert!(matches!(
        fetch::fetch_bars(Arc::clone(&session), &schema, New_York, backwards).await,
        Err(fetch::FetchError::InvalidRequest(_))
    ));

    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test]
async fn month_edges_are_inclusive_at_both_ends() {
    let (session, schema, _settings) = common::fresh_schema("fetch_edges").await;
    let session = Arc::new(session);
    let symbol = Symbol::new("EDGE").unwrap();
    // 23:58 and 23:59 of Jan 31 (bucket 2024-01), 00:00 and 00:01 of Feb 1 (bucket 2024-02).
    let bars = [
        bar_at(ny(2024, 1, 31, 23, 58), 1),
        bar_at(ny(2024, 1, 31, 23, 59), 2),
        bar_at(ny(2024, 2, 1, 0, 0), 3),
        bar_at(ny(2024, 2, 1, 0, 1), 4),
    ];
    insert(&session, &schema, &symbol, &bars).await;

    let got = |from, to| fetch_all(&session, &schema, request(&symbol, from, to));
    // Exactly the last minute of January to the first of February: both, both included.
    assert_eq!(
        got(ny(2024, 1, 31, 23, 59), ny(2024, 2, 1, 0, 0)).await,
        bars[1..3]
    );
    // A single instant.
    assert_eq!(
        got(ny(2024, 2, 1, 0, 0), ny(2024, 2, 1, 0, 0)).await,
        bars[2..3]
    );
    // One millisecond short at either end drops the edge bar.
    let ms = chrono::TimeDelta::milliseconds(1);
    assert_eq!(
        got(ny(2024, 1, 31, 23, 59) + ms, ny(2024, 2, 1, 0, 1) - ms).await,
        bars[2..3]
    );
    // Dates as the CLI reads them: --to 2024-01-31 is the whole day, --from 2024-02-01 its start.
    let parse = |end, s: &str| fetch::range::parse_time(end, s, New_York).unwrap();
    use fetch::range::RangeEnd;
    assert_eq!(
        got(
            parse(RangeEnd::From, "2024-01-31"),
            parse(RangeEnd::To, "2024-01-31")
        )
        .await,
        bars[0..2]
    );
    assert_eq!(
        got(
            parse(RangeEnd::From, "2024-02-01"),
            parse(RangeEnd::To, "2024-02-01")
        )
        .await,
        bars[2..4]
    );

    common::drop_keyspace(&session, &schema).await;
}

/// Local (h, m) of every bar, grouped by local date.
fn by_day(bars: &[Bar]) -> BTreeMap<NaiveDate, Vec<(u32, u32)>> {
    let mut out: BTreeMap<NaiveDate, Vec<(u32, u32)>> = BTreeMap::new();
    for b in bars {
        let t = local(b.ts_millis);
        out.entry(t.date())
            .or_default()
            .push((t.hour(), t.minute()));
    }
    out
}

#[tokio::test]
async fn regular_session_across_dst_changes_half_days_and_holidays() {
    let (session, schema, _settings) = common::fresh_schema("fetch_session").await;
    let session = Arc::new(session);
    let symbol = Symbol::new("SESS").unwrap();
    let times = [
        (4, 0),
        (9, 29),
        (9, 30),
        (12, 59),
        (13, 0),
        (15, 59),
        (16, 0),
        (19, 59),
    ];
    // Friday before / Monday after spring forward (2024-03-10) and fall back (2024-11-03),
    // the Saturday between, Thanksgiving (closed) and the half day after it.
    let days = [
        (2024, 3, 8),
        (2024, 3, 9),
        (2024, 3, 11),
        (2024, 11, 1),
        (2024, 11, 4),
        (2024, 11, 28),
        (2024, 11, 29),
    ];
    let mut bars = Vec::new();
    for (n, &(y, m, d)) in days.iter().enumerate() {
        for (k, &(h, mm)) in times.iter().enumerate() {
            bars.push(bar_at(ny(y, m, d, h, mm), (n * 10 + k) as u32));
        }
    }
    insert(&session, &schema, &symbol, &bars).await;
    let range = |filter| FetchRequest {
        session: filter,
        ..request(&symbol, ny(2024, 3, 1, 0, 0), ny(2024, 11, 30, 23, 59))
    };

    let regular = fetch_all(&session, &schema, range(SessionFilter::Regular)).await;
    let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let full_day = vec![(9, 30), (12, 59), (13, 0), (15, 59)];
    let expected: BTreeMap<NaiveDate, Vec<(u32, u32)>> = [
        (date(2024, 3, 8), full_day.clone()),
        (date(2024, 3, 11), full_day.clone()),
        (date(2024, 11, 1), full_day.clone()),
        (date(2024, 11, 4), full_day.clone()),
        (date(2024, 11, 29), vec![(9, 30), (12, 59)]),
    ]
    .into_iter()
    .collect();
    assert_eq!(by_day(&regular), expected);
    // The instants move with daylight saving: 09:30 is 14:30Z in EST and 13:30Z in EDT.
    let first_of = |d: NaiveDate| {
        regular
            .iter()
            .find(|b| local(b.ts_millis).date() == d)
            .map(|b| b.ts_millis)
            .unwrap()
    };
    let z = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
    assert_eq!(first_of(date(2024, 3, 8)), z("2024-03-08T14:30:00Z"));
    assert_eq!(first_of(date(2024, 3, 11)), z("2024-03-11T13:30:00Z"));
    assert_eq!(first_of(date(2024, 11, 1)), z("2024-11-01T13:30:00Z"));
    assert_eq!(first_of(date(2024, 11, 4)), z("2024-11-04T14:30:00Z"));
    // The values are the stored ones.
    assert!(regular.iter().all(|b| bars.contains(b)));

    let extended = fetch_all(&session, &schema, range(SessionFilter::Extended)).await;
    let ext = by_day(&extended);
    assert_eq!(ext[&date(2024, 3, 8)], [(4, 0), (9, 29), (16, 0), (19, 59)]);
    assert_eq!(
        ext[&date(2024, 11, 29)],
        [(4, 0), (9, 29), (13, 0), (15, 59), (16, 0), (19, 59)]
    );
    assert!(
        !ext.contains_key(&date(2024, 3, 9)),
        "Saturday is not a trading day"
    );
    assert!(
        !ext.contains_key(&date(2024, 11, 28)),
        "Thanksgiving is closed"
    );
    assert_eq!(regular.len() + extended.len(), bars.len() - 2 * times.len());

    let all = fetch_all(&session, &schema, range(SessionFilter::All)).await;
    assert_eq!(all, bars);

    common::drop_keyspace(&session, &schema).await;
}

/// The reference aggregation, written plainly in wall-clock minutes (no DST on these days):
/// bins of `n` minutes anchored at 09:30, cut at the open and at the close, post-market anchored
/// at the close; daily (`n` = None) from the regular session, labelled 09:30.
fn reference(bars: &[Bar], n: Option<u32>, regular_only: bool) -> Vec<Bar> {
    const OPEN: u32 = 9 * 60 + 30;
    let mut groups: BTreeMap<NaiveDateTime, Vec<Bar>> = BTreeMap::new();
    for b in bars {
        let t = local(b.ts_millis);
        let close = if t.date() == NaiveDate::from_ymd_opt(2024, 11, 29).unwrap() {
            13 * 60
        } else {
            16 * 60
        };
        let minute = t.hour() * 60 + t.minute();
        let regular = (OPEN..close).contains(&minute);
        if (regular_only || n.is_none()) && !regular {
            continue;
        }
        let start = match n {
            None => OPEN,
            Some(n) if minute < OPEN => {
                let back = (OPEN - minute).div_ceil(n) * n;
                OPEN.saturating_sub(back)
            }
            Some(n) if regular => OPEN + (minute - OPEN) / n * n,
            Some(n) => close + (minute - close) / n * n,
        };
        let label = t.date().and_hms_opt(start / 60, start % 60, 0).unwrap();
        groups.entry(label).or_default().push(*b);
    }
    groups
        .into_iter()
        .map(|(label, group)| Bar {
            ts_millis: New_York
                .from_local_datetime(&label)
                .single()
                .unwrap()
                .timestamp_millis(),
            open: group[0].open,
            high: group.iter().map(|b| b.high).fold(f64::MIN, f64::max),
            low: group.iter().map(|b| b.low).fold(f64::MAX, f64::min),
            close: group[group.len() - 1].close,
            volume: group.iter().map(|b| b.volume).sum(),
        })
        .collect()
}

#[tokio::test]
async fn resampling_matches_a_plain_reference() {
    let (session, schema, _settings) = common::fresh_schema("fetch_resample").await;
    let session = Arc::new(session);
    let symbol = Symbol::new("RSMP").unwrap();
    // The half day 2024-11-29 from 08:07 to 14:13 (crosses the open and the 13:00 close, with
    // ragged edges) and 2024-12-02 from 09:00 to 10:47 with a gap: 455 bars in two months.
    let mut bars = minutes((2024, 11, 29), (8, 7), (14, 13), 0);
    bars.extend(minutes((2024, 12, 2), (9, 0), (9, 41), 500));
    bars.extend(minutes((2024, 12, 2), (9, 53), (10, 47), 600));
    insert(&session, &schema, &symbol, &bars).await;

    let base = request(&symbol, ny(2024, 11, 29, 0, 0), ny(2024, 12, 2, 23, 59));
    for (interval, n) in [
        (Interval::Minutes5, 5),
        (Interval::Minutes15, 15),
        (Interval::Minutes30, 30),
        (Interval::Hour1, 60),
    ] {
        for (filter, regular_only) in [(SessionFilter::All, false), (SessionFilter::Regular, true)]
        {
            let req = FetchRequest {
                interval,
                session: filter,
                ..base.clone()
            };
            let got = fetch_all(&session, &schema, req).await;
            assert_eq!(
                got,
                reference(&bars, Some(n), regular_only),
                "{interval:?} {filter:?}"
            );
        }
    }
    let daily = FetchRequest {
        interval: Interval::Day1,
        ..base.clone()
    };
    let got = fetch_all(&session, &schema, daily).await;
    assert_eq!(got, reference(&bars, None, true));
    assert_eq!(got.len(), 2);
    // 1m with a filter is the filter alone.
    let one = FetchRequest {
        session: SessionFilter::Regular,
        ..base.clone()
    };
    assert_eq!(
        fetch_all(&session, &schema, one).await,
        reference(&bars, Some(1), true)
    );

    common::drop_keyspace(&session, &schema).await;
}

/// Runs the real binary: `bar-ingest --config CONFIG fetch ARGS...`.
fn run_fetch(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bar-ingest"))
        .env("BAR_INGEST_CONTACT_POINTS", common::contact_points())
        .env_remove("BAR_INGEST_CONFIG")
        .env("RUST_LOG", "warn")
        .arg("--config")
        .arg(config)
        .arg("fetch")
        .args(args)
        .output()
        .expect("run bar-ingest")
}

fn write_config(dir: &Path, keyspace: &str) -> std::path::PathBuf {
    let path = dir.join("bar-ingest.toml");
    std::fs::write(
        &path,
        format!("[database]\nkeyspace = \"{keyspace}\"\nconsistency = \"ONE\"\n"),
    )
    .unwrap();
    path
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn the_fetch_command_writes_csv_jsonl_and_files() {
    let (session, schema, _settings) = common::fresh_schema("fetch_cli").await;
    let symbol = Symbol::new("CLI").unwrap();
    let bars = [
        Bar {
            ts_millis: ny(2005, 1, 3, 8, 0).timestamp_millis(),
            open: 0.9911,
            high: 0.9911,
            low: 0.9839,
            close: 0.9839,
            volume: 19209.0,
        },
        Bar {
            ts_millis: ny(2005, 1, 3, 9, 30).timestamp_millis(),
            open: 0.1 + 0.2,
            high: 1e-7 + 0.5,
            low: 1e-7,
            close: 0.3,
            volume: 0.0,
        },
    ];
    insert(&session, &schema, &symbol, &bars).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &schema.keyspace);

    let out = run_fetch(
        &config,
        &["cli", "--from", "2005-01-03", "--to", "2005-01-03"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "timestamp,open,high,low,close,volume\n\
         2005-01-03 08:00:00,0.9911,0.9911,0.9839,0.9839,19209\n\
         2005-01-03 09:30:00,0.30000000000000004,0.5000001,0.0000001,0.3,0\n"
    );

    let out = run_fetch(
        &config,
        &[
            "CLI",
            "--from",
            "2005-01-03 09:00",
            "--to",
            "2005-01-03T14:30:00Z",
            "--format",
            "jsonl",
            "--utc",
            "--session",
            "regular",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"timestamp\":\"2005-01-03T14:30:00Z\",\"open\":0.30000000000000004,\
         \"high\":0.5000001,\"low\":0.0000001,\"close\":0.3,\"volume\":0}\n"
    );

    let file = dir.path().join("out.csv");
    let out = run_fetch(
        &config,
        &[
            "CLI",
            "--from",
            "2005-01-01",
            "--to",
            "2005-01-31",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.lines().count(), 3);
    assert!(!dir.path().join("out.csv.tmp").exists());

    common::drop_keyspace(&session, &schema).await;
}

#[tokio::test]
async fn unknown_symbol_prints_the_header_only_and_exits_0() {
    let (session, schema, _settings) = common::fresh_schema("fetch_unknown").await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &schema.keyspace);

    let out = run_fetch(
        &config,
        &["NOSUCH", "--from", "2020-01-01", "--to", "2020-12-31"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "timestamp,open,high,low,close,volume\n");
    // JSON lines have no header: nothing at all.
    let out = run_fetch(
        &config,
        &[
            "NOSUCH",
            "--from",
            "2020-01-01",
            "--to",
            "2020-01-01",
            "--format",
            "jsonl",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());

    common::drop_keyspace(&session, &schema).await;
}

#[test]
fn bad_dates_and_reversed_ranges_exit_2_naming_the_argument() {
    // Arguments are checked before connecting, so no keyspace is needed.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "t_fetch_never_created");
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["AAPL", "--from", "2024-02-30", "--to", "2024-03-01"],
            &["--from", "2024-02-30"],
        ),
        (
            &["AAPL", "--from", "2024-02-01", "--to", "tomorrow"],
            &["--to", "tomorrow"],
        ),
        (
            &["AAPL", "--from", "2024-03-02", "--to", "2024-03-01"],
            &["--from", "after --to"],
        ),
        (
            &["AAPL", "--from", "2024-03-10 02:30", "--to", "2024-03-11"],
            &["--from", "does not exist"],
        ),
    ];
    for (args, needles) in cases {
        let out = run_fetch(&config, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        for needle in needles {
            assert!(stderr.contains(needle), "{args:?}: {stderr}");
        }
    }
}

/// `(symbol, bar)` pairs of a chunked fetch, in the order they came.
async fn fetch_labelled(
    session: &Arc<Session>,
    schema: &Schema,
    request: FetchRequest,
) -> Vec<(String, Bar)> {
    let fetcher = fetch::Fetcher::prepare(Arc::clone(session), schema, New_York)
        .await
        .unwrap();
    let chunks: Vec<fetch::BarChunk> = fetcher
        .fetch_chunks(request)
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    chunks
        .into_iter()
        .flat_map(|c| {
            assert!(!c.bars.is_empty(), "an empty chunk of {}", c.symbol);
            let name = c.symbol.to_string();
            c.bars.into_iter().map(move |b| (name.clone(), b))
        })
        .collect()
}

/// Three symbols with bars in three months each (a different number per symbol).
async fn three_symbols(session: &Session, schema: &Schema) -> Vec<(String, Bar)> {
    let mut want = Vec::new();
    for (k, name) in ["AAA", "MMM", "ZZZ"].into_iter().enumerate() {
        let symbol = Symbol::new(name).unwrap();
        let mut bars = Vec::new();
        for (m, day) in [(1, 2), (2, 5), (3, 4)] {
            let n = 20 + 7 * k as u32;
            let end = 9 * 60 + 30 + n;
            bars.extend(minutes(
                (2024, m, day),
                (9, 30),
                (end / 60, end % 60),
                100 * m,
            ));
        }
        insert(session, schema, &symbol, &bars).await;
        want.extend(bars.into_iter().map(|b| (name.to_owned(), b)));
    }
    want
}

#[tokio::test]
async fn several_symbols_come_back_symbol_by_symbol_under_one_bound() {
    let (session, schema, _settings) = common::fresh_schema("fetch_many").await;
    let session = Arc::new(session);
    let want = three_symbols(&session, &schema).await;

    // Asked out of order, one twice, one without rows: sorted, each once, nothing for NONE.
    let names = ["ZZZ", "AAA", "NONE", "MMM", "aaa"];
    let symbols: Vec<Symbol> = names.iter().map(|n| Symbol::new(n).unwrap()).collect();
    for concurrency in [1, 2, 8] {
        let mut req = FetchRequest::symbols(
            symbols.clone(),
            ny(2024, 1, 1, 0, 0),
            ny(2024, 3, 31, 23, 0),
        );
        req.concurrency = concurrency;
        let got = fetch_labelled(&session, &schema, req).await;
        assert_eq!(got, want, "concurrency {concurrency}");
    }
    // The flat stream has the same bars in the same order.
    let req = FetchRequest::symbols(symbols, ny(2024, 1, 1, 0, 0), ny(2024, 3, 31, 23, 0));
    let flat = fetch_all(&session, &schema, req).await;
    let bars: Vec<Bar> = want.iter().map(|(_, b)| *b).collect();
    assert_eq!(flat, bars);
    // No symbol at all is an invalid request, not an empty result.
    let fetcher = fetch::Fetcher::prepare(Arc::clone(&session), &schema, New_York)
        .await
        .unwrap();
    let empty = FetchRequest::symbols(Vec::new(), ny(2024, 1, 1, 0, 0), ny(2024, 1, 2, 0, 0));
    assert!(matches!(
        fetcher.fetch_chunks(empty),
        Err(fetch::FetchError::InvalidRequest(_))
    ));

    common::drop_keyspace(&session, &schema).await;
}

/// The rows of record batches as CSV lines like `fetch --utc --format csv` prints them (the
/// symbol first when the batches have that column).
fn batches_as_csv(batches: &[arrow_array::RecordBatch]) -> Vec<String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, TimestampNanosecondType};
    let mut lines = Vec::new();
    for b in batches {
        let symbol = b
            .column_by_name("symbol")
            .map(|c| c.as_string::<i32>().clone());
        let ts = b
            .column_by_name("timestamp")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>();
        let price = |name: &str| {
            b.column_by_name(name)
                .unwrap()
                .as_primitive::<Float64Type>()
                .clone()
        };
        let (open, high, low, close) = (price("open"), price("high"), price("low"), price("close"));
        let volume = b
            .column_by_name("volume")
            .unwrap()
            .as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let t = DateTime::from_timestamp_nanos(ts.value(i));
            let mut line = symbol
                .as_ref()
                .map(|s| format!("{},", s.value(i)))
                .unwrap_or_default();
            line += &format!(
                "{},{},{},{},{},{}",
                t.format("%Y-%m-%dT%H:%M:%SZ"),
                open.value(i),
                high.value(i),
                low.value(i),
                close.value(i),
                volume.value(i)
            );
            lines.push(line);
        }
    }
    lines
}

fn read_parquet(path: &Path) -> (arrow_schema::SchemaRef, Vec<arrow_array::RecordBatch>) {
    let file = std::fs::File::open(path).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = Arc::clone(builder.schema());
    let batches = builder.build().unwrap().map(Result::unwrap).collect();
    (schema, batches)
}

#[tokio::test]
async fn parquet_and_arrow_outputs_hold_the_values_of_the_csv_output() {
    let (session, schema, _settings) = common::fresh_schema("fetch_columnar").await;
    three_symbols(&session, &schema).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &schema.keyspace);
    let range = [
        "--from",
        "2024-01-01",
        "--to",
        "2024-03-31",
        "--session",
        "regular",
    ];
    fn with<'a>(range: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
        [&["MMM", "ZZZ", "AAA"][..], range, extra].concat()
    }

    let out = run_fetch(&config, &with(&range, &["--utc"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    let mut csv_lines = csv.lines();
    assert_eq!(
        csv_lines.next(),
        Some("symbol,timestamp,open,high,low,close,volume")
    );
    let csv_rows: Vec<String> = csv_lines.map(str::to_owned).collect();
    assert_eq!(csv_rows.len(), 3 * (20 + 27 + 34));

    let file = dir.path().join("bars.parquet");
    let out = run_fetch(
        &config,
        &with(
            &range,
            &["--format", "parquet", "-o", file.to_str().unwrap()],
        ),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join("bars.parquet.tmp").exists());
    let (parquet_schema, batches) = read_parquet(&file);
    let fields: Vec<String> = parquet_schema
        .fields()
        .iter()
        .map(|f| format!("{}:{}", f.name(), f.data_type()))
        .collect();
    assert_eq!(
        fields,
        [
            "symbol:Utf8",
            "timestamp:Timestamp(ns, \"UTC\")",
            "open:Float64",
            "high:Float64",
            "low:Float64",
            "close:Float64",
            "volume:Float64"
        ]
    );
    assert_eq!(batches_as_csv(&batches), csv_rows);

    // Arrow IPC into a pipe (stdout of the child), labelled with the exchange's zone.
    let out = run_fetch(
        &config,
        &with(&range, &["--format", "arrow", "--exchange-time"]),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(out.stdout), None).unwrap();
    let ipc_schema = reader.schema();
    let batches: Vec<_> = reader.map(Result::unwrap).collect();
    assert_eq!(
        ipc_schema
            .field_with_name("timestamp")
            .unwrap()
            .data_type()
            .to_string(),
        "Timestamp(ns, \"America/New_York\")"
    );
    assert_eq!(batches_as_csv(&batches), csv_rows);

    // One symbol: no symbol column; an unknown one: a valid file with the schema and no rows.
    let parquet_of = |symbol: &str| {
        let path = file.to_str().unwrap();
        let args = [
            &[symbol][..],
            &range[..],
            &["--format", "parquet", "-o", path],
        ]
        .concat();
        let out = run_fetch(&config, &args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        read_parquet(&file)
    };
    let (one_schema, batches) = parquet_of("AAA");
    assert!(one_schema.field_with_name("symbol").is_err());
    let aaa: Vec<String> = csv_rows
        .iter()
        .filter_map(|r| r.strip_prefix("AAA,").map(str::to_owned))
        .collect();
    assert_eq!(batches_as_csv(&batches), aaa);
    let (empty_schema, batches) = parquet_of("NOSUCH");
    assert_eq!(empty_schema.fields().len(), 6);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

    common::drop_keyspace(&session, &schema).await;
}
