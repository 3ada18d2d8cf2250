//! Copies bar rows of a keyspace into its day-cell table (one cell per symbol and exchange-local
//! day, `cell::encode`, written at the current time in microseconds): a stand-in for the
//! loader's day cells so the Python tests and `scripts/bench-fetch` can read both layouts of
//! the same bars. It verifies nothing and is no migration (that is `bar-ingest migrate`).
//!
//!   cargo run --example copy_rows_to_days -- CONFIG FROM TO SYMBOL...
//!
//! FROM and TO as `bar-ingest fetch` reads them (`YYYY-MM-DD`: whole exchange days).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use bar_ingest::cell::{self, DayColumns};
use bar_ingest::config::Settings;
use bar_ingest::exchange_time::local_date;
use bar_ingest::fetch::range::{RangeEnd, parse_time};
use bar_ingest::fetch::{FetchRequest, Fetcher};
use bar_ingest::model::{Bar, Symbol};
use bar_ingest::store::{self, DayStatements, Schema};
use futures_util::{StreamExt, TryStreamExt};

/// Cell inserts in flight.
const IN_FLIGHT: usize = 32;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        bail!("usage: copy_rows_to_days CONFIG FROM TO SYMBOL...");
    }
    let settings = Settings::from_environment(Some(&PathBuf::from(&args[0])))?;
    let tz = settings.timezone;
    let from = parse_time(RangeEnd::From, &args[1], tz)?;
    let to = parse_time(RangeEnd::To, &args[2], tz)?;
    let symbols = args[3..]
        .iter()
        .map(|s| Symbol::new(s).with_context(|| format!("not a symbol: {s}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let session = Arc::new(store::connect(&settings).await?);
    let schema = Schema::from_config(&settings.database);
    let statements = DayStatements::prepare(&session, &schema).await?;
    let rows = Fetcher::prepare(Arc::clone(&session), &schema, tz).await?;
    let written = micros_now();
    let mut cells = 0usize;
    for symbol in symbols {
        let request = FetchRequest::new(symbol.clone(), from, to);
        let bars: Vec<Bar> = rows.fetch(request)?.try_collect().await?;
        let days = encode_days(tz, &bars)?;
        cells += days.len();
        futures_util::stream::iter(days)
            .map(|(day, bytes)| {
                let (session, statements, symbol) = (&session, &statements, &symbol);
                async move {
                    let header = cell::read_header(&bytes)?;
                    let bucket = day.format("%Y-%m").to_string();
                    let values = DayStatements::insert_values(
                        symbol, &bucket, day, &header, &bytes, written,
                    );
                    session.execute_unpaged(&statements.insert, values).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .try_collect::<()>()
            .await?;
    }
    eprintln!("copy_rows_to_days: {cells} day cells written");
    Ok(())
}

/// One encoded cell per exchange-local day of `bars` (in time order).
fn encode_days(
    tz: chrono_tz::Tz,
    bars: &[Bar],
) -> anyhow::Result<Vec<(chrono::NaiveDate, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < bars.len() {
        let day = local_date(tz, bars[start].ts_millis);
        let end = start + bars[start..].partition_point(|b| local_date(tz, b.ts_millis) == day);
        let mut columns = DayColumns::with_capacity(end - start);
        for b in &bars[start..end] {
            columns.push(b.ts_millis, b.open, b.high, b.low, b.close, b.volume);
        }
        out.push((day, cell::encode(columns.view())?));
        start = end;
    }
    Ok(out)
}

/// Now in microseconds since 1970 (a CQL write timestamp).
fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
