//! Times `coverage` (src/coverage) on a filled keyspace: 500 symbols x 10 years of day cells
//! (written directly: full regular sessions, one day in 50 with a 10-minute hole), and the same
//! report from bar rows on a smaller set (2 symbols x 1 year) against day cells of that set.
//!
//! `cargo run --release --example coverage_bench` (or `scripts/bench-coverage`). Environment:
//! COVERAGE_SYMBOLS (500), COVERAGE_YEARS (10, ending 2024), COVERAGE_SKIP_FILL=1 (the keyspaces
//! are already filled), COVERAGE_KEEP=1 (keep the keyspaces), BAR_INGEST_TEST_CONTACT_POINTS.
//! A measurement, not a test: it prints the times and asserts the row counts only.

use std::sync::Arc;
use std::time::Instant;

use bar_ingest::calendar;
use bar_ingest::cell::{self, Compression, DayColumns};
use bar_ingest::config::Settings;
use bar_ingest::coverage::{CoverageRequest, Reader};
use bar_ingest::model::{Bucket, Symbol};
use bar_ingest::store::{self, DayStatements, Schema};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::New_York;
use futures_util::StreamExt;
use scylla::client::session::Session;

const IN_FLIGHT: usize = 128;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n_symbols = env_or("COVERAGE_SYMBOLS", 500);
    let years = env_or("COVERAGE_YEARS", 10) as i32;
    let skip_fill = std::env::var("COVERAGE_SKIP_FILL").is_ok();
    let from = NaiveDate::from_ymd_opt(2025 - years, 1, 1).unwrap();
    let to = NaiveDate::from_ymd_opt(2024, 12, 31).unwrap();
    let symbols: Vec<Symbol> = (0..n_symbols)
        .map(|i| Symbol::new(&format!("S{i:04}")).unwrap())
        .collect();
    let (days_session, days_schema) = keyspace("bench_coverage_days").await?;
    let (rows_session, rows_schema) = keyspace("bench_coverage_rows").await?;
    let few: Vec<Symbol> = symbols.iter().take(2).cloned().collect();
    let year = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    if !skip_fill {
        let t = Instant::now();
        let cells = fill_cells(&days_session, &days_schema, &symbols, from, to).await?;
        println!(
            "filled {cells} day cells in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let t = Instant::now();
        let rows = fill_rows(&rows_session, &rows_schema, &few, year, to).await?;
        println!(
            "filled {rows} bar rows in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let days = Arc::new(days_session);
    for run in 1..=2 {
        let (rows, secs) = report(&days, &days_schema, symbols.clone(), from, to).await?;
        println!(
            "run {run}: day cells, {n_symbols} symbols x {years} years: {rows} symbol-days in {secs:.2} s"
        );
    }
    let (rows, secs) = report(&days, &days_schema, few.clone(), year, to).await?;
    println!("day cells, 2 symbols x 1 year: {rows} symbol-days in {secs:.3} s");
    let rows_session = Arc::new(rows_session);
    let (rows, secs) = report(&rows_session, &rows_schema, few, year, to).await?;
    println!("bar rows, 2 symbols x 1 year: {rows} symbol-days in {secs:.3} s");
    if std::env::var("COVERAGE_KEEP").is_err() {
        for (s, schema) in [(&*days, &days_schema), (&*rows_session, &rows_schema)] {
            s.query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", schema.keyspace), ())
                .await?;
        }
    }
    Ok(())
}

async fn keyspace(name: &str) -> anyhow::Result<(Session, Schema)> {
    let points =
        std::env::var("BAR_INGEST_TEST_CONTACT_POINTS").unwrap_or_else(|_| "127.0.0.1:9042".into());
    let mut settings = Settings::defaults(Some(&points))?;
    settings.database.keyspace = name.to_owned();
    settings.database.consistency = scylla::statement::Consistency::One;
    let session = store::connect(&settings).await?;
    let schema = Schema::from_config(&settings.database);
    store::init_schema(&session, &schema).await?;
    Ok((session, schema))
}

/// The report of `symbols` over `[from, to]`: symbol-days and seconds.
async fn report(
    session: &Arc<Session>,
    schema: &Schema,
    symbols: Vec<Symbol>,
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<(usize, f64)> {
    let t = Instant::now();
    let reader = Reader::prepare(Arc::clone(session), schema, New_York, None).await?;
    let mut rows = 0;
    reader
        .run(CoverageRequest::new(symbols, from, to), |r| {
            rows += r.days.len();
            Ok(())
        })
        .await?;
    Ok((rows, t.elapsed().as_secs_f64()))
}

/// A full regular session of `day`, less 10 minutes one day in 50.
fn day_bars(day: NaiveDate, ordinal: usize) -> DayColumns {
    let (open, close) = calendar_session(day);
    let mut cols = DayColumns::default();
    let mut t = open;
    let mut i = 0;
    while t < close {
        let hole = ordinal % 50 == 7 && (100..110).contains(&i);
        if !hole {
            let p = 100.0 + f64::from(i % 17) / 100.0;
            cols.push(t, p, p + 0.01, p - 0.01, p, 1000.0 + f64::from(i));
        }
        t += 60_000;
        i += 1;
    }
    cols
}

fn calendar_session(day: NaiveDate) -> (i64, i64) {
    let at = |h, m| {
        New_York
            .from_local_datetime(&day.and_hms_opt(h, m, 0).unwrap())
            .unwrap()
            .timestamp_millis()
    };
    let close = if calendar::early_close(day).is_some() {
        at(13, 0)
    } else {
        at(16, 0)
    };
    (at(9, 30), close)
}

fn trading_days(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .filter(|d| calendar::is_trading_day(*d))
        .collect()
}

/// Writes every symbol's cells (the same bars for all); returns the count.
async fn fill_cells(
    session: &Session,
    schema: &Schema,
    symbols: &[Symbol],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<usize> {
    let statements = DayStatements::prepare(session, schema).await?;
    let cells: Vec<(NaiveDate, String, Vec<u8>)> = trading_days(from, to)
        .into_iter()
        .enumerate()
        .map(|(i, day)| {
            let bytes = cell::encode_with(day_bars(day, i).view(), Compression::Zstd { level: 1 })
                .expect("valid columns");
            (day, Bucket::of_local_date(day).to_string(), bytes)
        })
        .collect();
    let jobs = symbols
        .iter()
        .flat_map(|s| cells.iter().map(move |c| (s, c)));
    let mut writes = futures_util::stream::iter(jobs)
        .map(|(symbol, (day, bucket, bytes))| {
            let header = cell::read_header(bytes).expect("encoded");
            let values = DayStatements::insert_values(symbol, bucket, *day, &header, bytes, 1);
            session.execute_unpaged(&statements.insert, values)
        })
        .buffer_unordered(IN_FLIGHT);
    let mut n = 0;
    while let Some(done) = writes.next().await {
        done?;
        n += 1;
    }
    Ok(n)
}

/// Writes every symbol's bars as rows; returns the count.
async fn fill_rows(
    session: &Session,
    schema: &Schema,
    symbols: &[Symbol],
    from: NaiveDate,
    to: NaiveDate,
) -> anyhow::Result<usize> {
    let insert = session
        .prepare(format!(
            "INSERT INTO {} (symbol, bucket, ts, open, high, low, close, volume) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            schema.bars()
        ))
        .await?;
    let mut bars = Vec::new();
    for (i, day) in trading_days(from, to).into_iter().enumerate() {
        let cols = day_bars(day, i);
        let bucket = Bucket::of_local_date(day).to_string();
        for j in 0..cols.len() {
            bars.push((
                bucket.clone(),
                cols.times[j],
                cols.open[j],
                cols.close[j],
                cols.volume[j],
            ));
        }
    }
    let jobs = symbols
        .iter()
        .flat_map(|s| bars.iter().map(move |b| (s, b)));
    let mut writes = futures_util::stream::iter(jobs)
        .map(|(symbol, (bucket, t, o, c, v))| {
            let ts = scylla::value::CqlTimestamp(*t);
            let values = (
                symbol.as_str(),
                bucket.as_str(),
                ts,
                o,
                o + 0.01,
                o - 0.01,
                c,
                v,
            );
            session.execute_unpaged(&insert, values)
        })
        .buffer_unordered(IN_FLIGHT);
    let mut n = 0;
    while let Some(done) = writes.next().await {
        done?;
        n += 1;
    }
    Ok(n)
}
